"""End to end: Redis, the simulator, a worker and the API as separate
processes, driven over HTTP the way a client drives them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from eslengine.apikeys import KeyStore, scoped_id
from eslengine.stack import LocalStack
from eslengine.store import Keys, connect

pytestmark = pytest.mark.e2e

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture(scope="module")
def stack(engine_redis_url: str) -> Iterator[LocalStack]:
    s = LocalStack(switch_args=["--ring-time", "0.2", "--talk-time", "1.0"], redis_url=engine_redis_url,
                   env={"ESLENGINE_KEY_PREFIX": "e2e-%s" % uuid.uuid4().hex[:6]})
    s.start()
    yield s
    s.stop()
    s.cleanup()


def wait_final(stack: LocalStack, job_id: str, timeout: float = 15.0, *, may_be_unknown: bool = False) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while True:
        code, doc, _ = stack.http("GET", "/v1/calls/%s" % job_id)
        if not (may_be_unknown and code == 404):
            assert code == 200, doc
            if doc["status"] in FINAL:
                return doc
        if time.monotonic() > deadline:
            raise AssertionError("call %s still %s" % (job_id, doc.get("status")))
        time.sleep(0.05)


def test_click_to_call_completes(stack: LocalStack) -> None:
    code, doc, headers = stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "user/1000",
                                                          "caller_id_name": "Acme Support", "variables": {"c": "1"}})
    assert code == 202 and doc["status"] == "queued"
    assert headers["Location"].endswith("/v1/calls/%s" % doc["id"])
    final = wait_final(stack, doc["id"])
    assert (final["status"], final["hangup_cause"]) == ("completed", "NORMAL_CLEARING")
    assert [h["status"] for h in final["history"]] == ["queued", "dialing", "ringing", "answered", "bridged",
                                                        "completed"]
    assert final["variables"] == {"c": "1"}


@pytest.mark.parametrize(("body", "status", "cause"), [
    ({"a": "+15551230001", "b": "+15551230486"}, "failed", "USER_BUSY"),
    ({"a": "+15551230404", "b": "+15551230002"}, "failed", "UNALLOCATED_NUMBER"),
])
def test_failures_carry_the_hangup_cause(stack: LocalStack, body: dict[str, Any], status: str, cause: str) -> None:
    code, doc, _ = stack.http("POST", "/v1/calls", body)
    assert code == 202
    final = wait_final(stack, doc["id"])
    assert (final["status"], final["hangup_cause"]) == (status, cause)


def test_cancel_a_ringing_call(stack: LocalStack) -> None:
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230408", "b": "+15551230002", "timeout": 30})
    assert code == 202
    deadline = time.monotonic() + 10
    while stack.http("GET", "/v1/calls/%s" % doc["id"])[1]["status"] != "ringing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, reply, _ = stack.http("DELETE", "/v1/calls/%s" % doc["id"])
    assert code == 202 and reply["cancel"] == "requested"
    final = wait_final(stack, doc["id"])
    assert (final["status"], final["hangup_cause"]) == ("cancelled", "ORIGINATOR_CANCEL")
    assert stack.http("DELETE", "/v1/calls/%s" % doc["id"])[0] == 409


def test_job_pushed_straight_into_redis(stack: LocalStack) -> None:
    job_id = str(uuid.uuid4())
    client = connect(stack.redis_url)
    client.xadd(Keys(stack.engine_env["ESLENGINE_KEY_PREFIX"]).jobs,
                {"job": json.dumps({"id": job_id, "a": "+15551230001", "b": "+15551230002"})})
    client.close()
    # A bare XADD has no record until a worker reads the entry.
    assert wait_final(stack, job_id, may_be_unknown=True)["status"] == "completed"
    # Then it is listed like any call.
    code, page, _ = stack.http("GET", "/v1/calls?status=completed&limit=100")
    assert code == 200 and job_id in [c["id"] for c in page["calls"]]


def test_a_client_keys_call_is_placed_under_its_own_id(stack: LocalStack) -> None:
    client = connect(stack.redis_url)
    store = KeyStore(client, stack.engine_env["ESLENGINE_KEY_PREFIX"])
    one, one_token = store.create("shop one")
    _, two_token = store.create("shop two")
    chosen = str(uuid.uuid4())
    body = {"id": chosen, "a": "+15551230001", "b": "+15551230002"}
    assert stack.http("POST", "/v1/calls", body, key=one_token)[0] == 202
    assert stack.http("POST", "/v1/calls", body, key=two_token)[0] == 202
    deadline = time.monotonic() + 15
    while True:
        code, doc, _ = stack.http("GET", "/v1/calls/" + chosen, key=one_token)
        assert code == 200, doc
        if doc["status"] in FINAL or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (doc["id"], doc["status"], doc["key"]) == (chosen, "completed", one.id)
    # The switch saw the first leg under the key's own uuid for the id.
    assert doc["a_uuid"] == scoped_id(one, chosen)
    # The operator key reads it under that uuid; the other shop's call is its own.
    code, seen, _ = stack.http("GET", "/v1/calls/" + scoped_id(one, chosen))
    assert code == 200 and seen["key"] == one.id
    assert stack.http("GET", "/v1/calls/" + chosen, key=two_token)[1]["key"] != one.id
    client.close()


def test_bad_requests_are_4xx_and_name_the_field(stack: LocalStack) -> None:
    assert stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "+15551230002"}, key="wrong")[0] == 401
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+1555 &bridge(sofia/gateway/x/900)", "b": "user/1000"})
    assert code == 422 and doc["field"] == "a"
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "user/1000",
                                                    "variables": {"x": "a\nb"}})
    assert code == 422 and doc["field"] == "variables.x"
    assert stack.http("GET", "/v1/calls/%s" % uuid.uuid4())[0] == 404


def test_healthz(stack: LocalStack) -> None:
    code, doc, _ = stack.http("GET", "/healthz")
    assert code == 200 and doc["redis"] == "ok"


def test_make_demo_runs_and_checks_its_outcomes() -> None:
    proc = subprocess.run([sys.executable, "-m", "eslengine", "demo"], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "demo ok" in proc.stdout
    for label, outcome in [("connects", "completed  NORMAL_CLEARING"), ("b busy", "failed     USER_BUSY"),
                           ("no answer", "failed     NO_ANSWER"), ("cancelled", "cancelled  ORIGINATOR_CANCEL"),
                           ("via redis", "completed  NORMAL_CLEARING")]:
        assert any(line.startswith(label) and outcome in line for line in proc.stdout.splitlines()), label


def test_stack_refuses_a_second_process_under_a_running_ones_name(tmp_path: Any) -> None:
    """Otherwise stop() would lose track of the first one and leave it running."""
    local = LocalStack(dir=str(tmp_path))
    first = local.spawn("api", [sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ValueError):
            local.spawn("api", [sys.executable, "-c", "pass"])
        other = local.spawn("api_bare", [sys.executable, "-c", "import time; time.sleep(30)"])
    finally:
        local.stop()
    assert first.proc.poll() is not None and other.proc.poll() is not None

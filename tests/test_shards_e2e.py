"""End to end with the store in three shards (ESLENGINE_REDIS_SHARDS=3):
Redis (with ``ESLENGINE_TEST_REDIS=cluster`` a three-primary cluster), the
simulator, a worker and the API as separate processes, driven over HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from eslengine.stack import LocalStack
from eslengine.store import Keys, connect, shards
from tests.test_e2e import wait_final

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(engine_redis_url: str) -> Iterator[LocalStack]:
    s = LocalStack(switch_args=["--ring-time", "0.1", "--talk-time", "1.0"], redis_url=engine_redis_url,
                   env={"ESLENGINE_KEY_PREFIX": "e2e-%s" % uuid.uuid4().hex[:6], "ESLENGINE_REDIS_SHARDS": "3"})
    s.start()
    yield s
    s.stop()
    s.cleanup()


def test_calls_go_to_their_shards_and_are_listed_from_all_of_them(stack: LocalStack) -> None:
    prefix = stack.engine_env["ESLENGINE_KEY_PREFIX"]
    placed = []
    for n in range(12):
        code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+1555123%04d" % n, "b": "user/1000"})
        assert code == 202, doc
        placed.append(doc["id"])
    for job_id in placed:
        assert (final := wait_final(stack, job_id))["status"] == "completed", final
    client = connect(stack.redis_url)
    try:
        for job_id in placed:
            assert client.exists(Keys(prefix, shards.shard_of(job_id, 3)).call(job_id)), job_id
    finally:
        client.close()
    assert len({shards.shard_of(job_id, 3) for job_id in placed}) > 1
    listed: list[str] = []
    path = "/v1/calls?limit=5"
    while True:
        code, page, _ = stack.http("GET", path)
        assert code == 200, page
        listed += [c["id"] for c in page["calls"]]
        if not page.get("next_cursor"):
            break
        path = "/v1/calls?limit=5&cursor=%s" % page["next_cursor"]
    assert set(placed) <= set(listed) and len(listed) == len(set(listed))


def test_a_repeated_idempotency_key_without_an_id_is_the_same_call(stack: LocalStack) -> None:
    def post(body: dict[str, str]) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(stack.api_url + "/v1/calls", data=json.dumps(body).encode(), method="POST")
        request.add_header("Authorization", "Bearer %s" % stack.api_key)
        request.add_header("Content-Type", "application/json")
        request.add_header("Idempotency-Key", "order-%s" % uuid.uuid4().hex)
        with urllib.request.urlopen(request, timeout=10) as response:
            first = (response.status, json.loads(response.read()))
        with urllib.request.urlopen(request, timeout=10) as response:
            again = (response.status, json.loads(response.read()))
        assert again[1]["id"] == first[1]["id"], (first, again)
        return first

    code, doc = post({"a": "+15551230001", "b": "user/1000"})
    assert code == 202
    assert wait_final(stack, doc["id"])["status"] == "completed"


def test_a_cancel_reaches_the_calls_shard(stack: LocalStack) -> None:
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230408", "b": "+15551230002", "timeout": 30})
    assert code == 202
    code, reply, _ = stack.http("DELETE", "/v1/calls/%s" % doc["id"])
    assert code == 202, reply
    final = wait_final(stack, doc["id"])
    assert (final["status"], final["hangup_cause"]) == ("cancelled", "ORIGINATOR_CANCEL")


def _id_in(shard: int) -> str:
    while True:
        call_id = str(uuid.uuid4())
        if shards.shard_of(call_id, 3) == shard:
            return call_id


def test_do_not_call_numbers_are_refused_and_skipped_in_every_shard_and_bulk_calls_placed(
        stack: LocalStack) -> None:
    prefix = stack.engine_env["ESLENGINE_KEY_PREFIX"]
    code, doc, _ = stack.http("POST", "/v1/dnc", ["+15551239901"])
    assert code in (200, 201), doc
    for shard in range(3):
        code, doc, _ = stack.http("POST", "/v1/calls", {"id": _id_in(shard), "a": "+15551230001",
                                                        "b": "+15551239901", "lane": "bulk"})
        assert (code, doc.get("error"), doc.get("field"), doc.get("list")) == (422, "do_not_call", "b", "global"), doc
    # Listed between two attempts (the first one busy): the second is skipped
    # by the worker of the call's shard.
    retried = _id_in(2)
    code, doc, _ = stack.http("POST", "/v1/calls", {"id": retried, "a": "+15551230486", "b": "+15551230002",
                                                    "retry": {"attempts": 3, "backoff": 1}})
    assert code == 202, doc
    bulk = _id_in(2)
    code, doc, _ = stack.http("POST", "/v1/calls", {"id": bulk, "a": "+15551230003", "b": "user/1000",
                                                    "lane": "bulk"})
    assert code == 202, doc
    client = connect(stack.redis_url)
    try:
        record = Keys(prefix, 2).call(retried)
        for _ in range(100):
            if client.hget(record, "attempts") == "1" and client.hget(record, "status") == "queued":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the first attempt of %s did not end busy and wait for the next" % retried)
        code, doc, _ = stack.http("POST", "/v1/dnc", ["+15551230486"])
        assert code in (200, 201), doc
        assert wait_final(stack, bulk)["status"] == "completed"
        assert client.hget(Keys(prefix, 2).call(bulk), "lane") == "bulk"
    finally:
        client.close()
    for _ in range(150):
        code, final, _ = stack.http("GET", "/v1/calls/%s" % retried)
        if final.get("status") in ("skipped_dnc", "completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    assert final["status"] == "skipped_dnc" and "a +15551230486" in final["error"], final
    code, doc, _ = stack.http("GET", "/v1/dnc")
    assert code == 200 and doc["refused"]["api"] >= 3 and doc["refused"]["dial"] >= 1, doc

"""Accounts and saved click-to-call end to end: the API and a worker as
processes, the simulator in this process (so the test reads the channels
each call made). An account, its key, a user and a click-to-call resource
are made over HTTP; a contact connects; the call completes on the switch
with the right party first and the right caller IDs, and shows in the
resource's history."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from eslengine.fakeswitch import FakeSwitch
from eslengine.stack import LocalStack

pytestmark = pytest.mark.e2e

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture(scope="module")
def switch() -> Iterator[FakeSwitch]:
    sw = FakeSwitch(("127.0.0.1", 0), "pw-accounts", ring_time=0.1, talk_time=0.5)
    sw.start()
    yield sw
    sw.stop()


@pytest.fixture(scope="module")
def stack(engine_redis_url: str, switch: FakeSwitch) -> Iterator[LocalStack]:
    s = LocalStack(redis_url=engine_redis_url, switch_port=switch.address[1], switch_password="pw-accounts", env={
        "ESLENGINE_KEY_PREFIX": "acct-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": "esl://:pw-accounts@127.0.0.1:%d?name=fs1&sps=1000" % switch.address[1],
    })
    s.start()
    yield s
    s.stop()
    s.cleanup()


def ok(stack: LocalStack, method: str, path: str, body: Any = None, *, key: str | None = None,
       code: int = 201) -> dict[str, Any]:
    got, doc, _ = stack.http(method, path, body, key=key)
    assert got == code, (method, path, doc)
    return doc


def final(stack: LocalStack, job_id: str, key: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, doc, _ = stack.http("GET", "/v1/calls/%s" % job_id, key=key)
        assert code == 200, doc
        if doc["status"] in FINAL:
            return doc
        assert time.monotonic() < deadline, doc
        gevent.sleep(0.05)


def creates(switch: FakeSwitch, job_id: str) -> list[dict[str, str]]:
    """The CHANNEL_CREATE of each of a job's legs, oldest first."""
    return [h for name, h in switch.events_for(job_id)
            if name == "CHANNEL_CREATE" and h.get("variable_loopback_leg") != "B"]


class Account:
    def __init__(self, stack: LocalStack, name: str) -> None:
        self.id = ok(stack, "POST", "/v1/accounts", {"name": name})["id"]
        self.path = "/v1/accounts/" + self.id
        self.token = ok(stack, "POST", self.path + "/keys", {"name": name + " app"})["token"]


def test_a_saved_click_to_call_connects_a_contact(stack: LocalStack, switch: FakeSwitch) -> None:
    acme = Account(stack, "acme")
    user = ok(stack, "POST", acme.path + "/users", {"name": "Ann", "endpoint": "user/1000"}, key=acme.token)
    c2c = ok(stack, "POST", acme.path + "/clicktocall", {
        "name": "Acme sales", "extension": "user:" + user["id"], "caller_id_number": "+15557770000",
        "caller_id_name": "Acme", "whitelist": [r"^\+1555"], "custom_application_vars": {"source": "web"}},
        key=acme.token)
    path = "%s/clicktocall/%s" % (acme.path, c2c["id"])
    # Blocking: the answer comes once the first party's channel exists.
    placed = ok(stack, "POST", path + "/connect?wait=originate", {"contact": "+15551230004"}, key=acme.token,
                code=202)
    assert placed["status"] in ("ringing", "answered", "bridged", "completed"), placed
    doc = final(stack, placed["id"], acme.token)
    assert (doc["status"], doc["hangup_cause"], doc["account"]) == ("completed", "NORMAL_CLEARING", acme.id)
    assert doc["variables"] == {"source": "web"}
    legs = creates(switch, placed["id"])
    # The extension rings first; it sees the contact's number and the resource's name.
    assert [h["variable_eslengine_leg"] for h in legs][:2] == ["a", "b"]
    assert "1000" in legs[0]["Channel-Name"]
    assert (legs[0]["Caller-Caller-ID-Number"], legs[0]["Caller-Caller-ID-Name"]) == ("+15551230004", "Acme sales")
    # The contact sees the resource's caller ID.
    assert legs[1]["Channel-Name"] == "sofia/gateway/demo/15551230004"
    assert (legs[1]["Caller-Caller-ID-Number"], legs[1]["Caller-Caller-ID-Name"]) == ("+15557770000", "Acme")
    history = ok(stack, "GET", path + "/history", key=acme.token, code=200)["connects"]
    assert [(c["id"], c["status"], c["hangup_cause"], c["contact"]) for c in history] == [
        (placed["id"], "completed", "NORMAL_CLEARING", "+15551230004")]
    assert {"created", "ringing", "answered", "bridged", "ended"} <= set(history[0]["timestamps"])
    # A contact off the whitelist is refused, naming the field.
    code, doc, _ = stack.http("POST", path + "/connect", {"contact": "+445551230004"}, key=acme.token)
    assert code == 422 and doc["field"] == "contact"
    # Another account's key sees none of it.
    other = Account(stack, "other")
    for where in ("/v1/calls/" + placed["id"], path, path + "/history", acme.path + "/users/" + user["id"]):
        assert stack.http("GET", where, key=other.token)[0] == 404, where


def test_a_public_resource_rings_the_contact_first_without_a_key(stack: LocalStack, switch: FakeSwitch) -> None:
    shop = Account(stack, "shop")
    group = ok(stack, "POST", shop.path + "/groups", {"name": "sales", "strategy": "simultaneous",
                                                      "members": [{"endpoint": "+15551230408"},
                                                                  {"endpoint": "+15551230001"}]}, key=shop.token)
    c2c = ok(stack, "POST", shop.path + "/clicktocall", {
        "name": "Call me", "extension": "group:" + group["id"], "auth_required": False, "dial_first": "contact",
        "outbound_callee_id_number": "+15550001111", "outbound_callee_id_name": "Web lead"}, key=shop.token)
    path = "%s/clicktocall/%s" % (shop.path, c2c["id"])
    placed = ok(stack, "POST", path + "/connect", {"contact": "+15551230005"}, key="", code=202)
    doc = final(stack, placed["id"], shop.token)
    assert doc["status"] == "completed", doc
    legs = creates(switch, placed["id"])
    assert legs[0]["variable_eslengine_leg"] == "b" and legs[0]["Channel-Name"] == "sofia/gateway/demo/15551230005"
    group_legs = {h["Channel-Name"]: h for h in legs if h["variable_eslengine_leg"] == "a"}
    assert set(group_legs) == {"sofia/gateway/demo/15551230408", "sofia/gateway/demo/15551230001"}
    leg = group_legs["sofia/gateway/demo/15551230001"]
    assert (leg["Caller-Caller-ID-Number"], leg["Caller-Caller-ID-Name"]) == ("+15550001111", "Web lead")
    # GET without a key is refused (prefetchers would place calls).
    assert stack.http("GET", path + "/connect?contact=%2B15551230005", key="")[0] == 405


def test_a_blocking_start_carries_the_hangup_cause_of_a_call_that_never_rang(stack: LocalStack) -> None:
    shop = Account(stack, "busy shop")
    c2c = ok(stack, "POST", shop.path + "/clicktocall", {"name": "line", "extension": "+15551230001",
                                                         "dial_first": "contact"}, key=shop.token)
    path = "%s/clicktocall/%s/connect?wait=originate" % (shop.path, c2c["id"])
    code, doc, _ = stack.http("POST", path, {"contact": "+15551230486"}, key=shop.token)
    assert code == 502, doc
    assert (doc["error"], doc["status"], doc["hangup_cause"]) == ("originate_failed", "failed", "USER_BUSY")
    # The native API has the same choice.
    code, doc, _ = stack.http("POST", "/v1/calls?wait=originate", {"a": "+15551230404", "b": "+15551230001"})
    assert code == 502 and doc["hangup_cause"] == "UNALLOCATED_NUMBER"
    code, doc, _ = stack.http("POST", "/v1/calls?wait=originate", {"a": "+15551230001", "b": "+15551230002"})
    assert code == 202 and doc["status"] != "queued"

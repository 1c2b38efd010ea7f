"""The Kazoo facade end to end: the API and a worker as processes, the
simulator in this process. The vendor's examples (a clicktocall connected
by GET and by POST, blocking and not; a quickcall by GET and by POST) place
calls that ring as Kazoo documents: the extension (or the user's device)
first, showing the contact's number and the resource's name ("Device
QuickCall" for a quickcall), then the other party, showing the resource's
caller ID (cid-number / cid-name)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from eslengine.fakeswitch import FakeSwitch
from eslengine.stack import LocalStack
from tests.test_accounts_e2e import creates, final, ok

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def switch() -> Iterator[FakeSwitch]:
    sw = FakeSwitch(("127.0.0.1", 0), "pw-kazoo", ring_time=0.1, talk_time=0.5)
    sw.start()
    yield sw
    sw.stop()


@pytest.fixture(scope="module")
def stack(engine_redis_url: str, switch: FakeSwitch) -> Iterator[LocalStack]:
    s = LocalStack(redis_url=engine_redis_url, switch_port=switch.address[1], switch_password="pw-kazoo", env={
        "ESLENGINE_KEY_PREFIX": "kazoo-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": "esl://:pw-kazoo@127.0.0.1:%d?name=fs1&sps=1000" % switch.address[1],
    })
    s.start()
    yield s
    s.stop()
    s.cleanup()


def kazoo(stack: LocalStack, method: str, path: str, token: str | None, data: str | None = None,
          timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """A request as the examples' curl sends it (X-Auth-Token, -d)."""
    request = urllib.request.Request(stack.api_url + path, data=data.encode() if data is not None else None,
                                     method=method)
    if token is not None:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())








class Account:
    """An account (native API) with its token, a user and the user's device."""

    def __init__(self, stack: LocalStack, name: str, device_endpoint: str = "user/1001") -> None:
        self.id = ok(stack, "POST", "/v1/accounts", {"name": name})["id"]
        native = "/v1/accounts/" + self.id
        self.path = "/v2/accounts/" + self.id
        self.token = ok(stack, "POST", native + "/keys", {"name": name + " app"})["token"]
        self.user = ok(stack, "POST", native + "/users", {"name": "Ann", "endpoint": "user/1000"},
                       key=self.token)["id"]
        self.device = ok(stack, "POST", native + "/devices", {"name": "desk", "endpoint": device_endpoint},
                         key=self.token)["id"]


def test_a_kazoo_clicktocall_rings_the_extension_then_the_contact(stack: LocalStack, switch: FakeSwitch) -> None:
    acme = Account(stack, "acme")
    code, doc = kazoo(stack, "PUT", acme.path + "/clicktocall", acme.token, json.dumps({"data": {
        "name": "Acme sales", "auth_required": False, "extension": "1000", "caller_id_number": "+15557770000",
        "caller_id_name": "Acme"}}))
    assert code == 201, doc
    c2c = doc["data"]["id"]
    # Non-blocking (GET ?contact=): 202 at once.
    code, doc = kazoo(stack, "GET", "%s/clicktocall/%s/connect?contact=%%2B15551230004" % (acme.path, c2c),
                      acme.token)
    assert code == 202 and doc["status"] == "success", doc
    call_id = doc["data"]["call_id"]
    record = final(stack, call_id, acme.token)
    assert (record["status"], record["hangup_cause"], record["account"]) == ("completed", "NORMAL_CLEARING", acme.id)
    legs = creates(switch, call_id)
    # The extension rings first, showing the contact's number and the resource's name.
    assert [h["variable_eslengine_leg"] for h in legs][:2] == ["a", "b"]
    assert "1000" in legs[0]["Channel-Name"]
    assert (legs[0]["Caller-Caller-ID-Number"], legs[0]["Caller-Caller-ID-Name"]) == ("+15551230004", "Acme sales")
    # The contact is shown the resource's caller ID.
    assert legs[1]["Channel-Name"] == "sofia/gateway/demo/15551230004"
    assert (legs[1]["Caller-Caller-ID-Number"], legs[1]["Caller-Caller-ID-Name"]) == ("+15557770000", "Acme")
    assert record["variables"] == {"contact": "+15551230004"}
    # Blocking, by POST without a token (auth_required false): the history entry.
    code, doc = kazoo(stack, "POST", "%s/clicktocall/%s/connect" % (acme.path, c2c), None,
                      json.dumps({"data": {"contact": "+15551230005", "blocking": True}}))
    assert code == 200 and doc["data"]["result"] == "success", doc
    final(stack, doc["data"]["call_id"], acme.token)
    # A contact that is busy, with the contact rung first: the blocking connect says why.
    code, doc = kazoo(stack, "PATCH", "%s/clicktocall/%s" % (acme.path, c2c), acme.token,
                      json.dumps({"data": {"dial_first": "contact"}}))
    assert code == 200, doc
    code, doc = kazoo(stack, "GET", "%s/clicktocall/%s/connect?contact=%%2B15551230486&blocking=true"
                      % (acme.path, c2c), acme.token)
    assert code == 200, doc
    assert (doc["data"]["result"], doc["data"]["cause"]) == ("error", "USER_BUSY")
    code, doc = kazoo(stack, "GET", "%s/clicktocall/%s/history" % (acme.path, c2c), acme.token)
    assert code == 200
    assert [(h["contact"], h["result"]) for h in doc["data"]] == [
        ("+15551230486", "error"), ("+15551230005", "success"), ("+15551230004", "success")]


def test_a_quickcall_rings_the_device_then_the_number(stack: LocalStack, switch: FakeSwitch) -> None:
    acme = Account(stack, "quick")
    # Non-blocking (GET), options and a CAV in the query string.
    code, doc = kazoo(stack, "GET", "%s/devices/%s/quickcall/%s?cid-number=%%2B15557770000&cid-name=Acme&foo=bar"
                      % (acme.path, acme.device, "+1%20555%20123%200002"), acme.token)
    assert code == 202, doc
    call_id = doc["data"]["call_id"]
    record = final(stack, call_id, acme.token)
    assert (record["status"], record["variables"]) == ("completed", {"foo": "bar"})
    legs = creates(switch, call_id)
    assert "1001" in legs[0]["Channel-Name"] and legs[0]["variable_eslengine_leg"] == "a"
    # The device is shown "Device QuickCall" and the number it is calling.
    assert (legs[0]["Caller-Caller-ID-Number"], legs[0]["Caller-Caller-ID-Name"]) == ("+15551230002",
                                                                                      "Device QuickCall")
    assert legs[0].get("variable_sip_auto_answer") == "true"
    # The number is shown cid-number / cid-name.
    assert legs[1]["Channel-Name"] == "sofia/gateway/demo/15551230002"
    assert (legs[1]["Caller-Caller-ID-Number"], legs[1]["Caller-Caller-ID-Name"]) == ("+15557770000", "Acme")
    # Blocking (POST): 202 once the device's channel exists, CAVs from the body.
    code, doc = kazoo(stack, "POST", "%s/users/%s/quickcall/+15551230003" % (acme.path, acme.user), acme.token,
                      '{"data":{"custom_application_vars":{"foo":"bar"}}}')
    assert code == 202, doc
    assert doc["data"]["status"] in ("ringing", "answered", "bridged", "completed"), doc
    assert final(stack, doc["data"]["call_id"], acme.token)["variables"] == {"foo": "bar"}


def test_a_blocking_quickcall_to_a_device_that_fails_answers_as_kazoo_documents(stack: LocalStack) -> None:
    acme = Account(stack, "broken", device_endpoint="+15551230404")
    code, doc = kazoo(stack, "POST", "%s/devices/%s/quickcall/+15551230003" % (acme.path, acme.device), acme.token)
    assert code == 502, doc
    assert (doc["status"], doc["error"], doc["message"]) == ("error", "502", "quickcall initiation failed")
    assert doc["data"]["error_message"] == "UNALLOCATED_NUMBER"
    assert doc["data"]["request"]["endpoints"] == [{"invite_format": "route", "route": "+15551230404"}]

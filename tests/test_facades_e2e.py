"""The TeleCMI and Sarv facades end to end, from the vendors' own example
requests (placeholders filled in): the API and a worker as processes, the
simulator in this process (so the test reads the channels each call made).
Each example gets the vendor's documented reply and places the documented
call: who rings first, what each party sees, the time limit and its alerts.

The simulator runs at ten times FreeSWITCH's speed (``time_scale``): a
10-second limit ends after one second.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.stack import LocalStack
from tests.test_accounts_e2e import creates, final, ok

pytestmark = pytest.mark.e2e



@pytest.fixture(scope="module")
def switch() -> Iterator[FakeSwitch]:
    # The agent's phone (user/103) and ...777 talk until the time limit ends the call.
    scenario = Scenario.from_dict({"rules": [{"match": "777$", "outcome": "answer", "talk": 60},
                                             {"match": "(^|/)103(@|$)", "outcome": "answer", "talk": 60}]})
    sw = FakeSwitch(("127.0.0.1", 0), "pw-facades", ring_time=0.05, talk_time=0.6, scenario=scenario,
                    time_scale=10.0, playback_time=0.05)
    sw.start()
    yield sw
    sw.stop()


@pytest.fixture(scope="module")
def stack(engine_redis_url: str, switch: FakeSwitch) -> Iterator[LocalStack]:
    s = LocalStack(redis_url=engine_redis_url, switch_port=switch.address[1], switch_password="pw-facades", env={
        "ESLENGINE_KEY_PREFIX": "fac-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": "esl://:pw-facades@127.0.0.1:%d?name=fs1&sps=1000" % switch.address[1],
        "ESLENGINE_DEFAULT_REGION": "IN",
        "ESLENGINE_MEDIA_URL_PREFIXES": "https://media.example.com/",
    })
    s.start()
    yield s
    s.stop()
    s.cleanup()




def raw(stack: LocalStack, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """A request as a vendor's client sends it: no bearer key."""
    request = urllib.request.Request(stack.api_url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())






def played(switch: FakeSwitch, job_id: str) -> list[str]:
    return [h["Application-Data"] for name, h in switch.events_for(job_id)
            if name == "CHANNEL_EXECUTE" and h.get("Application") == "playback"]


class Account:
    """An account with a user (softphone user/101, desk phone user/102,
    follow-me number), another user, a group, an announcement and a key."""

    def __init__(self, stack: LocalStack, name: str) -> None:
        self.id = ok(stack, "POST", "/v1/accounts", {"name": name})["id"]
        base = "/v1/accounts/" + self.id
        self.user = ok(stack, "POST", base + "/users", {"name": "Ann", "endpoint": "user/101",
                                                         "follow_me": "+919812345678"})["id"]
        ok(stack, "POST", base + "/devices", {"name": "desk", "endpoint": "user/102", "owner": self.user})
        self.agent = ok(stack, "POST", base + "/users", {"name": "Bob", "endpoint": "user/103"})["id"]
        self.group = ok(stack, "POST", base + "/groups", {"name": "sales", "strategy": "sequential", "members": [
            {"user": self.agent}, {"endpoint": "+919812300009"}]})["id"]
        ok(stack, "POST", base + "/media", {"name": "1610448601_84.wav", "file": "sarv/1610448601_84.wav"})
        self.key = ok(stack, "POST", base + "/keys", {"name": name + " app"})["token"]


@pytest.fixture(scope="module")
def account(stack: LocalStack) -> Account:
    return Account(stack, "vendor")


# ------------------------------------------------------------------ TeleCMI


def test_telecmi_get_example(stack: LocalStack, switch: FakeSwitch, account: Account) -> None:
    # https://rest.telecmi.com/v2/webrtc/click2call?user_id=101_1111112&secret=2e0d75-d843-45-945-4171dd7a
    #   &to=919200000000&extra_params[name]={"click2call":"true"}&webrtc=true&followme=false&callerid=919800000000
    path = ("/v2/webrtc/click2call?user_id=%s&secret=%s&to=919200000000&extra_params[name]=%s&webrtc=true"
            "&followme=false&callerid=919800000000" % (account.user, account.key, quote('{"click2call":"true"}')))
    code, reply = raw(stack, "GET", path)
    assert code == 200, reply
    assert (reply["code"], reply["msg"], set(reply)) == (200, "Call initiated", {"code", "msg", "request_id"})
    doc = final(stack, reply["request_id"], account.key)
    assert (doc["status"], doc["account"]) == ("completed", account.id)
    assert doc["request"]["metadata"] == {"name": '{"click2call":"true"}'}
    legs = creates(switch, reply["request_id"])
    # The user's softphones ring first, at once, and show the number they are connected to.
    first = [h for h in legs if h["variable_eslengine_leg"] == "a"]
    assert {h["Channel-Name"].split("/")[-1].split("@")[0] for h in first} == {"101", "102"}
    assert all(h["Caller-Caller-ID-Number"] == "+919200000000" for h in first)
    # Then 'to', showing callerid.
    second = [h for h in legs if h["variable_eslengine_leg"] == "b"]
    assert legs.index(second[0]) > legs.index(first[0])
    assert second[0]["Channel-Name"] == "sofia/gateway/demo/919200000000"
    assert second[0]["Caller-Caller-ID-Number"] == "+919800000000"


def test_telecmi_post_example(stack: LocalStack, switch: FakeSwitch, account: Account) -> None:
    body = {"user_id": account.user, "secret": account.key, "to": 919200000000, "extra_params": {"crm": True},
            "webrtc": True, "followme": False, "callerid": 919800000000}
    code, reply = raw(stack, "POST", "/v2/webrtc/click2call", json.dumps(body).encode(),
                      {"Content-Type": "application/json"})
    assert (code, reply["code"], reply["msg"]) == (200, 200, "Call initiated"), reply
    doc = final(stack, reply["request_id"], account.key)
    assert doc["status"] == "completed" and doc["request"]["metadata"] == {"crm": True}
    legs = creates(switch, reply["request_id"])
    assert legs[0]["variable_eslengine_leg"] == "a" and legs[-1]["Channel-Name"] == "sofia/gateway/demo/919200000000"


def test_telecmi_followme_rings_the_users_mobile(stack: LocalStack, switch: FakeSwitch, account: Account) -> None:
    body = {"user_id": account.user, "secret": account.key, "to": 919200000000, "webrtc": False, "followme": True}
    code, reply = raw(stack, "POST", "/v2/webrtc/click2call", json.dumps(body).encode(),
                      {"Content-Type": "application/json"})
    assert code == 200, reply
    assert final(stack, reply["request_id"], account.key)["status"] == "completed"
    legs = creates(switch, reply["request_id"])
    assert [h["Channel-Name"] for h in legs] == ["sofia/gateway/demo/919812345678",
                                                 "sofia/gateway/demo/919200000000"]


def test_telecmi_documented_errors(stack: LocalStack, account: Account) -> None:
    for query, status, msg in [
        ("secret=%s&to=919200000000" % account.key, 400, "user_id parameter missing"),
        ("user_id=%s&to=919200000000" % account.user, 400, "secret parameter missing"),
        ("user_id=%s&secret=%s&to=919200000000&webrtc=false" % (account.user, account.key), 400,
         "Enable webrtc or followme"),
        ("user_id=101_1111112&secret=%s&to=919200000000" % account.key, 404, "invalid user_id"),
        ("user_id=%s&secret=2e0d75-d843-45-945-4171dd7a&to=919200000000" % account.user, 407, "invalid app secret"),
    ]:
        assert raw(stack, "GET", "/v2/webrtc/click2call?" + query) == (status, {"code": status, "msg": msg})


# ------------------------------------------------------------------ Sarv


def test_sarv_example(stack: LocalStack, switch: FakeSwitch, account: Account) -> None:
    # curl -X POST 'https://s-ct3.sarv.com/v2/clickToCall/para?user_id=USER_ID&token=TOKEN&from=FROM_NUMBER
    #   &to=TO_NUMBER' -H 'cache-control: no-cache'   (and the same with Node's request, qs and headers)
    query = urlencode({"user_id": account.id, "token": account.key, "from": "9876543210", "to": "9812345678"})
    code, reply = raw(stack, "POST", "/v2/clickToCall/para?" + query, headers={"cache-control": "no-cache"})
    assert code == 200, reply
    assert set(reply) == {"callid", "status", "code"} and (reply["status"], reply["code"]) == ("success", "200")
    doc = final(stack, reply["callid"], account.key)
    assert (doc["status"], doc["hangup_cause"]) == ("completed", "NORMAL_CLEARING")
    legs = creates(switch, reply["callid"])
    assert [(h["variable_eslengine_leg"], h["Channel-Name"]) for h in legs] == [
        ("a", "sofia/gateway/demo/919876543210"), ("b", "sofia/gateway/demo/919812345678")]


def test_sarv_agent_to_number_with_time_limit_alerts_ring_tone_and_clis(stack: LocalStack, switch: FakeSwitch,
                                                                         account: Account) -> None:
    query = urlencode({"user_id": account.id, "token": account.key, "fromType": "agent", "from": account.agent,
                       "to": "9812300777", "timeLimit": "10", "timeLimtAlert": "2,5",
                       "alertAudio": "1610448601_84.wav", "ringTone": "1610448601_84.wav",
                       "fromCLI": "8040001000", "toCLI": "8040001001", "fromRingTime": "20"})
    code, reply = raw(stack, "POST", "/v2/clickToCall/para?" + query)
    assert code == 200, reply
    doc = final(stack, reply["callid"], account.key)
    assert (doc["status"], doc["hangup_cause"]) == ("completed", "ALLOTTED_TIMEOUT")
    assert 0.6 < doc["durations"]["talk_seconds"] < 3.0  # 10 s at ten times speed
    legs = creates(switch, reply["callid"])
    agent, number = legs[0], legs[-1]
    assert agent["variable_eslengine_leg"] == "a" and "103" in agent["Channel-Name"]
    assert agent["Caller-Caller-ID-Number"] == "8040001000"
    assert agent["variable_transfer_ringback"] == "sarv/1610448601_84.wav"
    assert number["Channel-Name"] == "sofia/gateway/demo/919812300777"
    assert number["Caller-Caller-ID-Number"] == "8040001001"
    # Both parties hear the announcement at each alert.
    assert played(switch, reply["callid"]).count("sarv/1610448601_84.wav") == 4


def test_sarv_group_one_by_one(stack: LocalStack, switch: FakeSwitch, account: Account) -> None:
    query = urlencode({"user_id": account.id, "token": account.key, "from": "9876543210", "toType": "group",
                       "to": account.group, "toRingTime": "5"})
    code, reply = raw(stack, "GET", "/v2/clickToCall/para?" + query)
    assert code == 200, reply
    assert final(stack, reply["callid"], account.key)["status"] == "completed"
    legs = [h for h in creates(switch, reply["callid"]) if h["variable_eslengine_leg"] == "b"]
    # The group's first member (the agent's phone) answers; the second is never rung.
    assert len(legs) == 1 and "103" in legs[0]["Channel-Name"]


def test_sarv_errors(stack: LocalStack, account: Account) -> None:
    base = {"user_id": account.id, "token": account.key, "from": "9876543210", "to": "9812345678"}
    for change, status, code in [({"token": "esk_wrong"}, 401, "1020"), ({"fromRingTime": "51"}, 400, "1550"),
                                 ({"to": "9876543210"}, 400, "1520"), ({"sticky": "yes"}, 400, "1539")]:
        got, reply = raw(stack, "POST", "/v2/clickToCall/para?" + urlencode({**base, **change}))
        assert (got, reply["status"], reply["code"]) == (status, "error", code), reply

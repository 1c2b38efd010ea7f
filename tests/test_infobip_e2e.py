"""The Infobip facade end to end, from the vendor's own example request
(its placeholders filled in: credentials of an account, and a delivery
report receiver on 127.0.0.1 for notifyUrl): the API and a worker as
processes, the simulator in this process (so the test reads the channels
each call made). The example gets the documented reply and places the
documented call: destinationA rings first and is shown ``from``, hears the
text before destinationB is rung, destinationB is shown ``fromB``, the
connected call ends at maxDuration with a beep warningTime before, and the
delivery report arrives signed, as JSON or XML.

The simulator runs at ten times FreeSWITCH's speed (``time_scale``): the
example's 60-second limit ends after six seconds.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.stack import LocalStack
from tests.test_infobip import EXAMPLE, REPLY

pytestmark = pytest.mark.e2e

SECRET = "infobip-hook-secret"
BEEP = "tone_stream://%(500,0,800)"


class Reports:
    """A delivery report receiver on 127.0.0.1."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = "http://127.0.0.1:%d/voice/clicktocall" % self.server.server_port

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        headers = {k: v for k, v in environ.items() if k.startswith(("HTTP_", "CONTENT_"))}
        self.received.append((headers, environ["wsgi.input"].read()))
        start_response("200 OK", [])
        return []

    def wait_for(self, message_id: str, stack: LocalStack, timeout: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while True:
            mine = [(h, b) for h, b in self.received if message_id.encode() in b]
            if mine:
                gevent.sleep(0.3)  # nothing else is to come for it
                return [(h, b) for h, b in self.received if message_id.encode() in b]
            assert time.monotonic() < deadline, (self.received, stack.processes["worker"].log()[-4000:])
            gevent.sleep(0.05)


@pytest.fixture(scope="module")
def reports() -> Iterator[Reports]:
    r = Reports()
    yield r
    r.server.stop()


@pytest.fixture(scope="module")
def switch() -> Iterator[FakeSwitch]:
    scenario = Scenario.from_dict({"rules": [{"match": "4179302672[0-9]$", "outcome": "answer", "talk": 600},
                                             {"match": "41793026731$", "outcome": "answer", "talk": 600},
                                             {"match": "41793026486$", "outcome": "busy"}]})
    sw = FakeSwitch(("127.0.0.1", 0), "pw-infobip", ring_time=0.05, talk_time=0.6, scenario=scenario,
                    time_scale=10.0, playback_time=0.1)
    sw.start()
    yield sw
    sw.stop()


@pytest.fixture(scope="module")
def stack(engine_redis_url: str, switch: FakeSwitch, reports: Reports) -> Iterator[LocalStack]:
    s = LocalStack(redis_url=engine_redis_url, switch_port=switch.address[1], switch_password="pw-infobip", env={
        "ESLENGINE_KEY_PREFIX": "ib-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": "esl://:pw-infobip@127.0.0.1:%d?name=fs1&sps=1000" % switch.address[1],
        "ESLENGINE_TTS_ENGINE": "flite",
        "ESLENGINE_TTS_VOICE": "kal",
        "ESLENGINE_MEDIA_URL_PREFIXES": "https://media.example.com/",
        "ESLENGINE_WEBHOOK_ALLOW": r"http://127\.0\.0\.1:[0-9]+/voice/clicktocall",
        "ESLENGINE_WEBHOOK_SECRET": SECRET,
        "ESLENGINE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
    })
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def account(stack: LocalStack) -> tuple[str, str]:
    code, doc, _ = stack.http("POST", "/v1/accounts", {"name": "infobip"})
    assert code == 201, doc
    code, key, _ = stack.http("POST", "/v1/accounts/%s/keys" % doc["id"], {"name": "ctc"})
    assert code == 201, key
    return doc["id"], key["token"]


def send(stack: LocalStack, body: dict[str, Any], authorization: str) -> tuple[int, dict[str, Any]]:
    """The request as Infobip's examples send it: no bearer key."""
    request = urllib.request.Request(stack.api_url + "/voice/ctc/1/send", data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": authorization,
                                                             "Content-Type": "application/json",
                                                             "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def the_call(stack: LocalStack, token: str, message_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """The account's call of ``message_id``, once final."""
    deadline = time.monotonic() + timeout
    while True:
        code, listed, _ = stack.http("GET", "/v1/calls?limit=100", key=token)
        assert code == 200, listed
        for item in listed["calls"]:
            code, doc, _ = stack.http("GET", "/v1/calls/%s" % item["id"], key=token)
            if (doc["request"].get("metadata") or {}).get("messageId") == message_id and \
                    doc["status"] in ("completed", "failed", "cancelled"):
                return doc
        assert time.monotonic() < deadline
        gevent.sleep(0.1)


def one_report(received: list[tuple[dict[str, str], bytes]]) -> tuple[dict[str, str], bytes]:
    """The one delivery report of a call. A receiver may see a delivery
    twice (one whose answer was lost is sent again); its delivery id says so."""
    assert len({h["HTTP_X_ESLENGINE_DELIVERY"] for h, _ in received}) == 1, received
    assert {h["HTTP_X_ESLENGINE_EVENT"] for h, _ in received} <= {"call.completed", "call.failed"}
    return received[-1]


def signed(headers: dict[str, str], body: bytes) -> bool:
    stamp, _, mac = headers["HTTP_X_ESLENGINE_SIGNATURE"].partition(",v1=")
    return stamp.startswith("t=") and abs(int(stamp[2:]) - time.time()) < 60 and hmac.compare_digest(
        mac, hmac.new(SECRET.encode(), stamp[2:].encode() + b"." + body, hashlib.sha256).hexdigest())


def test_the_documented_example(stack: LocalStack, switch: FakeSwitch, reports: Reports,
                                account: tuple[str, str]) -> None:
    account_id, token = account
    body = copy.deepcopy(EXAMPLE)
    body["messages"][0]["notifyUrl"] = reports.url
    basic = "Basic " + base64.b64encode(("%s:%s" % (account_id, token)).encode()).decode()
    code, reply = send(stack, body, basic)
    assert (code, reply) == (200, REPLY)
    doc = the_call(stack, token, "MESSAGE-ID-123-xyz")
    assert (doc["status"], doc["hangup_cause"], doc["account"]) == ("completed", "ALLOTTED_TIMEOUT", account_id)
    assert 5.0 < doc["durations"]["talk_seconds"] < 8.0  # maxDuration 60 s at ten times speed
    log = switch.events_for(doc["id"])
    legs = [(i, h) for i, (n, h) in enumerate(log) if n == "CHANNEL_CREATE" and h.get("variable_loopback_leg") != "B"]
    (first_at, first), (second_at, second) = legs[0], legs[-1]
    # destinationA rings first, shown from; destinationB after it, shown fromB.
    assert (first["variable_eslengine_leg"], first["Channel-Name"]) == ("a", "sofia/gateway/demo/41793026727")
    assert first["Caller-Caller-ID-Number"] == "+41793026700"
    assert (second["variable_eslengine_leg"], second["Channel-Name"]) == ("b", "sofia/gateway/demo/41793026731")
    assert second["Caller-Caller-ID-Number"] == "+41793026701"
    # The text is spoken to destinationA before destinationB is rung.
    spoken = [i for i, (n, h) in enumerate(log) if n == "CHANNEL_EXECUTE" and h.get("Application") == "speak"
              and h.get("variable_eslengine_leg") == "a"]
    assert spoken and spoken[0] < second_at and log[spoken[0]][1]["Application-Data"] == "flite|kal|Test Voice message."
    # Both hear the warning beep (5 s before the end).
    beeps = [h for n, h in log if n == "CHANNEL_EXECUTE" and h.get("Application") == "playback"
             and h.get("Application-Data") == BEEP]
    assert len(beeps) == 2
    # One delivery report, at the end, as JSON, signed.
    headers, raw = one_report(reports.wait_for("MESSAGE-ID-123-xyz", stack))
    assert headers["CONTENT_TYPE"] == "application/json" and signed(headers, raw)
    [result] = json.loads(raw)["results"]
    assert {k: result[k] for k in ("bulkId", "messageId", "to", "from", "duration")} == {
        "bulkId": "BULK-ID-123-xyz", "messageId": "MESSAGE-ID-123-xyz", "to": "41793026727", "from": "41793026700",
        "duration": round(doc["durations"]["talk_seconds"])}
    assert (result["status"]["name"], result["error"]["name"]) == ("DELIVERED_TO_HANDSET", "VOICE_ANSWERED")
    assert first_at < second_at


def test_an_xml_report_of_a_busy_destination_with_app_auth(stack: LocalStack, switch: FakeSwitch,
                                                           reports: Reports, account: tuple[str, str]) -> None:
    _, token = account
    message = {"messageId": "XML-BUSY-1", "from": "41793026700", "destinationA": "41793026486",
               "destinationB": "41793026731", "audioFileUrl": "https://media.example.com/hello.mp3",
               "notifyUrl": reports.url, "notifyContentType": "application/xml"}
    code, reply = send(stack, {"messages": [message]}, "App " + token)
    assert code == 200 and reply["messages"][0]["messageId"] == "XML-BUSY-1", reply
    doc = the_call(stack, token, "XML-BUSY-1")
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "USER_BUSY")
    assert [h["Channel-Name"] for n, h in switch.events_for(doc["id"]) if n == "CHANNEL_CREATE"] == [
        "sofia/gateway/demo/41793026486"]  # destinationB is never rung
    headers, raw = one_report(reports.wait_for("XML-BUSY-1", stack))
    assert headers["CONTENT_TYPE"] == "application/xml" and signed(headers, raw)
    result = ElementTree.fromstring(raw).find("results/result")
    assert result is not None and result.findtext("to") == "41793026486"
    assert (result.findtext("status/name"), result.findtext("error/name")) == ("UNDELIVERABLE_NOT_DELIVERED",
                                                                               "EC_VOICE_USER_BUSY")


def test_no_anonymization_shows_destination_a_to_destination_b(stack: LocalStack, switch: FakeSwitch,
                                                               account: tuple[str, str]) -> None:
    _, token = account
    message = {"messageId": "SHOW-A-1", "from": "41793026700", "destinationA": "41793026728",
               "destinationB": "41793026731", "maxDuration": 10}
    code, reply = send(stack, {"messages": [message]}, "App " + token)
    assert code == 200, reply
    doc = the_call(stack, token, "SHOW-A-1")
    assert doc["status"] == "completed"
    b = [h for n, h in switch.events_for(doc["id"]) if n == "CHANNEL_CREATE" and h["variable_eslengine_leg"] == "b"
         and h.get("variable_loopback_leg") != "B"]
    assert b[0]["Caller-Caller-ID-Number"] == "+41793026728"

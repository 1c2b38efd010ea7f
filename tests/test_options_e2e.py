"""Every click-to-call option, end to end: HTTP into the API process, a
worker process placing the call, and the simulator (in this process, so the
test can read the events the options produced).

The simulator runs at ten times FreeSWITCH's speed (``time_scale``): a
10-second limit ends after one second.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.stack import LocalStack

pytestmark = pytest.mark.e2e

FINAL = ("completed", "failed", "cancelled")
SECRET = "hook-secret"


class Hooks:
    """A webhook receiver on 127.0.0.1."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_port

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read()
        headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
        self.received.append((headers, body))
        start_response("204 No Content", [])
        return []


@pytest.fixture(scope="module")
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.server.stop()


@pytest.fixture(scope="module")
def switch() -> Iterator[FakeSwitch]:
    scenario = Scenario.from_dict({"rules": [
        {"match": "777$", "outcome": "answer", "talk": 60},
        {"match": "183$", "outcome": "early_media", "after": 0.3},
    ]})
    sw = FakeSwitch(("127.0.0.1", 0), "pw-options", ring_time=0.05, talk_time=0.6, scenario=scenario,
                    time_scale=10.0, playback_time=0.1)
    sw.start()
    yield sw
    sw.stop()


@pytest.fixture(scope="module")
def stack(engine_redis_url: str, switch: FakeSwitch, hooks: Hooks) -> Iterator[LocalStack]:
    s = LocalStack(redis_url=engine_redis_url, switch_port=switch.address[1], switch_password="pw-options", env={
        "ESLENGINE_KEY_PREFIX": "opt-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": "esl://:pw-options@127.0.0.1:%d?name=fs1&sps=1000" % switch.address[1],
        "ESLENGINE_SIP_DOMAINS": r"pbx\.example\.com",
        "ESLENGINE_TTS_ENGINE": "flite",
        "ESLENGINE_TTS_VOICE": "kal",
        "ESLENGINE_MEDIA_URL_PREFIXES": "https://media.example.com/",
        "ESLENGINE_WEBHOOK_ALLOW": r"http://127\.0\.0\.1:[0-9]+/hook",
        "ESLENGINE_WEBHOOK_SECRET": SECRET,
        "ESLENGINE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
        "ESLENGINE_RECORDINGS_DIR": "/srv/recordings",
    })
    s.start()
    yield s
    s.stop()
    s.cleanup()


def place(stack: LocalStack, body: dict[str, Any]) -> str:
    code, doc, _ = stack.http("POST", "/v1/calls", body)
    assert code == 202, doc
    return str(doc["id"])


def final(stack: LocalStack, job_id: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, doc, _ = stack.http("GET", "/v1/calls/%s" % job_id)
        assert code == 200, doc
        if doc["status"] in FINAL:
            return doc
        assert time.monotonic() < deadline, doc
        gevent.sleep(0.05)


def events(switch: FakeSwitch, job_id: str, name: str | None = None, **match: str) -> list[dict[str, str]]:
    out = []
    for event_name, headers in switch.events_for(job_id):
        if name is not None and event_name != name:
            continue
        if all(headers.get(k) == v for k, v in match.items()):
            out.append(headers)
    return out


def creates(switch: FakeSwitch, job_id: str, party: str) -> list[dict[str, str]]:
    return [h for h in events(switch, job_id, "CHANNEL_CREATE", variable_eslengine_leg=party)
            if h.get("variable_loopback_leg") != "B"]


def test_dial_first_b(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "dial_first": "b"})
    doc = final(stack, job)
    assert doc["status"] == "completed"
    order = [h["variable_eslengine_leg"] for h in events(switch, job, "CHANNEL_CREATE")]
    assert order[0] == "b" and "a" in order
    assert creates(switch, job, "b")[0]["Unique-ID"] == job  # the first party carries the job id
    assert doc["b_uuid"] == job and doc["a_uuid"] != job


def test_sequential_destinations_fail_over(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": {"to": ["+15551230486", "+15551230001"]}, "b": "+15551230002"})
    doc = final(stack, job)
    assert doc["status"] == "completed"
    dialed = [h["Channel-Name"] for h in creates(switch, job, "a")]
    assert dialed == ["sofia/gateway/demo/15551230486", "sofia/gateway/demo/15551230001"]


def test_simultaneous_destinations_first_answer_wins(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": {"to": ["+15551230408", "+15551230001"], "mode": "simultaneous"},
                        "b": "+15551230002"})
    doc = final(stack, job)
    assert doc["status"] == "completed"
    legs = {h["Channel-Name"]: h["Unique-ID"] for h in creates(switch, job, "a")}
    assert set(legs) == {"sofia/gateway/demo/15551230408", "sofia/gateway/demo/15551230001"}
    assert doc["a_uuid"] == legs["sofia/gateway/demo/15551230001"]
    loser = events(switch, job, "CHANNEL_HANGUP_COMPLETE", **{"Unique-ID": legs["sofia/gateway/demo/15551230408"]})
    assert loser and loser[0]["Hangup-Cause"] in ("LOSE_RACE", "ORIGINATOR_CANCEL")


@pytest.mark.parametrize(("number_filter", "typed", "dialed"), [
    ("digits", "+1 (555) 123-0001", "15551230001"),
    ({"regex": r"^(?:tel:)?(\+?[0-9]+)$"}, "tel:+15551230003", "15551230003"),
])
def test_number_filter(stack: LocalStack, switch: FakeSwitch, number_filter: Any, typed: str, dialed: str) -> None:
    job = place(stack, {"a": typed, "b": "+15551230002", "number_filter": number_filter})
    assert final(stack, job)["status"] == "completed"
    assert creates(switch, job, "a")[0]["Channel-Name"] == "sofia/gateway/demo/" + dialed


def test_party_ring_timeout_no_answer(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": "+15551230001", "b": {"to": "+15551230408", "timeout": 5}})
    doc = final(stack, job)
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "NO_ANSWER")
    assert creates(switch, job, "b")[0]["variable_originate_timeout"] == "5"


def test_retries(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": {"to": "+15551230503", "retries": 2}, "b": "+15551230002"})
    doc = final(stack, job)
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "NORMAL_TEMPORARY_FAILURE")
    attempts = creates(switch, job, "a")
    assert len(attempts) == 3 and {h["Unique-ID"] for h in attempts} == {job}


def test_early_media_counts_as_answer_when_not_ignored(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": {"to": "+15551230183", "ignore_early_media": False}, "b": "+15551230002"})
    final(stack, job)
    names = [n for n, h in list(switch.events)
             if (n == "BACKGROUND_JOB" and h.get("_body", "").strip() == "+OK " + job)
             or (n == "CHANNEL_ANSWER" and h.get("variable_eslengine_job_id") == job
                 and h.get("variable_eslengine_leg") == "a")]
    assert names[:2] == ["BACKGROUND_JOB", "CHANNEL_ANSWER"]  # +OK on early media, before the answer


def test_caller_ids_per_party(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {
        "a": {"to": "+15551230001", "caller_id_number": "+15557770000", "caller_id_name": "Acme Support"},
        "b": {"to": "+15551230002", "show_other_number": True, "caller_id_name": "Web lead"}})
    assert final(stack, job)["status"] == "completed"
    a, b = creates(switch, job, "a")[0], creates(switch, job, "b")[0]
    assert (a["Caller-Caller-ID-Number"], a["Caller-Caller-ID-Name"]) == ("+15557770000", "Acme Support")
    assert (b["Caller-Caller-ID-Number"], b["Caller-Caller-ID-Name"]) == ("+15551230001", "Web lead")


def test_anonymous_presence_auto_answer_and_sip_headers(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": {"to": "user/1000", "auto_answer": True, "presence_id": "1000@pbx.example.com",
                              "sip_headers": {"X-Campaign": "spring sale"}},
                        "b": {"to": "+15551230002", "anonymous": True}})
    assert final(stack, job)["status"] == "completed"
    a, b = creates(switch, job, "a")[0], creates(switch, job, "b")[0]
    assert a["variable_sip_auto_answer"] == "true" and a["variable_presence_id"] == "1000@pbx.example.com"
    assert a["variable_sip_h_X-Campaign"] == "spring sale"
    assert b["variable_origination_privacy"] == "hide_name:hide_number"
    assert "variable_sip_h_X-Campaign" not in b


def test_sip_uri_destination_and_refusals(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": "sip:alice@pbx.example.com", "b": "+15551230002"})
    assert final(stack, job)["status"] == "completed"
    assert creates(switch, job, "a")[0]["Channel-Name"] == "sofia/external/alice@pbx.example.com"
    for body, field in [({"a": "sip:eve@evil.example.net", "b": "+15551230002"}, "a"),
                        ({"a": "+19005550199", "b": "+15551230002"}, "a"),  # premium rate
                        ({"a": "+15551230001", "b": "+881612345678"}, "b")]:  # satellite
        code, doc, _ = stack.http("POST", "/v1/calls", body)
        assert (code, doc["field"]) == (422, field), doc


def test_ringback_and_media_mode(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "ringback": "uk-ring"})
    assert final(stack, job)["status"] == "completed"
    a = creates(switch, job, "a")[0]
    assert a["variable_transfer_ringback"] == "%(400,200,400,450);%(400,2000,400,450)"
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "media": "bypass"})
    assert final(stack, job)["status"] == "completed"
    assert creates(switch, job, "a")[0]["variable_bypass_media"] == "true"
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "+15551230002", "media": "bypass",
                                                    "record": True})
    assert (code, doc["field"]) == (422, "record")


@pytest.mark.parametrize(("announcement", "app", "data"), [
    ({"file": "ivr/welcome.wav"}, "playback", "ivr/welcome.wav"),
    ({"url": "https://media.example.com/hello.mp3"}, "playback", "http_cache://https://media.example.com/hello.mp3"),
    ({"say": "Connecting you to Acme, please hold.", "voice": "slt"}, "speak",
     "flite|slt|Connecting you to Acme, please hold."),
])
def test_announcement_before_connecting(stack: LocalStack, switch: FakeSwitch, announcement: dict[str, str],
                                        app: str, data: str) -> None:
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "announcement": announcement})
    assert final(stack, job)["status"] == "completed"
    log = switch.events_for(job)
    played = [i for i, (n, h) in enumerate(log) if n == "CHANNEL_EXECUTE" and h.get("Application") == app
              and h.get("Application-Data") == data and h.get("variable_eslengine_leg") == "a"]
    b_created = [i for i, (n, h) in enumerate(log) if n == "CHANNEL_CREATE" and h.get("variable_eslengine_leg") == "b"]
    assert played and b_created and played[0] < b_created[0]


def test_max_duration_and_warnings(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": "+15551230777", "b": "+15551230777", "max_duration": 10,
                        "warnings": [{"before_end": 5}, {"after": 2, "sound": {"file": "ivr/two.wav"}}]})
    doc = final(stack, job)
    assert (doc["status"], doc["hangup_cause"]) == ("completed", "ALLOTTED_TIMEOUT")
    assert 0.6 < doc["durations"]["talk_seconds"] < 3.0  # 10 s at ten times speed
    played = [h["Application-Data"] for h in events(switch, job, "CHANNEL_EXECUTE", Application="playback")]
    assert played.count("tone_stream://%(500,0,800)") == 2  # both parties hear the beep
    assert played.count("ivr/two.wav") == 2


def test_recording(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "record": {"format": "mp3", "stereo": True}})
    doc = final(stack, job)
    assert doc["recording"] == "/srv/recordings/%s.mp3" % job
    started = events(switch, job, "RECORD_START")
    assert started and started[0]["Record-File-Path"] == doc["recording"]
    assert started[0]["variable_RECORD_STEREO"] == "true"


def test_custom_variables_in_status_cdr_and_webhooks(stack: LocalStack, switch: FakeSwitch, hooks: Hooks) -> None:
    before = len(hooks.received)
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "variables": {"campaign": "spring", "lead": 42},
                        "callback_url": hooks.url})
    doc = final(stack, job)
    assert doc["variables"] == {"campaign": "spring", "lead": "42"}
    cdr = events(switch, job, "CHANNEL_HANGUP_COMPLETE", variable_eslengine_leg="a")[0]
    assert cdr["variable_eslengine_var_campaign"] == "spring" and cdr["variable_eslengine_var_lead"] == "42"
    deadline = time.monotonic() + 10
    while True:
        mine = [(h, json.loads(b)) for h, b in hooks.received[before:] if json.loads(b)["call"]["id"] == job]
        if mine and mine[-1][1]["event"] == "call.completed":
            break
        assert time.monotonic() < deadline, mine
        gevent.sleep(0.05)
    assert [p["event"] for _, p in mine] == ["call.dialing", "call.ringing", "call.answered", "call.bridged",
                                             "call.completed"]
    for _headers, payload in mine:
        assert payload["call"]["variables"] == {"campaign": "spring", "lead": "42"}
    raw = [b for h, b in hooks.received[before:] if json.loads(b)["call"]["id"] == job][-1]
    stamp, _, mac = mine[-1][0]["HTTP_X_ESLENGINE_SIGNATURE"].partition(",v1=")
    assert stamp.startswith("t=") and abs(int(stamp[2:]) - time.time()) < 60
    assert mac == hmac.new(SECRET.encode(), stamp[2:].encode() + b"." + raw, hashlib.sha256).hexdigest()
    deliveries = [h["HTTP_X_ESLENGINE_DELIVERY"] for h, _ in mine]
    assert deliveries == [p["delivery"] for _, p in mine] and len(set(deliveries)) == 5
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "+15551230002",
                                                    "callback_url": "http://169.254.169.254/latest/meta-data"})
    assert (code, doc["field"]) == (422, "callback_url")


def test_node_and_target_call(stack: LocalStack, switch: FakeSwitch) -> None:
    held = place(stack, {"a": "+15551230777", "b": "+15551230777", "node": "fs1"})
    deadline = time.monotonic() + 10
    while stack.http("GET", "/v1/calls/%s" % held)[1]["status"] != "bridged":
        assert time.monotonic() < deadline
        gevent.sleep(0.05)
    job = place(stack, {"a": "+15551230001", "b": "+15551230002", "target_call_id": held})
    assert final(stack, job)["node"] == "fs1"
    missing = place(stack, {"a": "+15551230001", "b": "+15551230002", "target_call_id": str(uuid.uuid4())})
    doc = final(stack, missing)
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "TARGET_CALL_NOT_FOUND")
    assert stack.http("DELETE", "/v1/calls/%s" % held)[0] == 202
    ended = final(stack, held)
    assert (ended["status"], ended["ended_by"]) == ("completed", "api")  # it had connected
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "+15551230002", "node": "fs9"})
    assert (code, doc["field"]) == (422, "node")


def test_simultaneous_destinations_the_first_leg_answers(stack: LocalStack, switch: FakeSwitch) -> None:
    job = place(stack, {"a": {"to": ["+15551230001", "+15551230408"], "mode": "simultaneous"},
                        "b": "+15551230002"})
    doc = final(stack, job)
    assert doc["status"] == "completed" and doc["a_uuid"] == job
    legs = {h["Channel-Name"]: h["Unique-ID"] for h in creates(switch, job, "a")}
    assert legs == {"sofia/gateway/demo/15551230001": job,
                    "sofia/gateway/demo/15551230408": legs["sofia/gateway/demo/15551230408"]}


@pytest.mark.parametrize("value", ["O'Brien", "back\\slash", "a, b = 'c' \"d\" \\e ;!@~", "in  side", "US$5 ^ :_ _:"])
@pytest.mark.parametrize("extra", [{}, {"announcement": {"file": "ivr/welcome.wav"}}, {"media": "bypass"}])
def test_client_text_arrives_exactly_on_both_parties(stack: LocalStack, switch: FakeSwitch, value: str,
                                                     extra: dict[str, Any]) -> None:
    job = place(stack, {"a": "+15551230001", "b": {"to": "+15551230002", "sip_headers": {"X-Note": value}},
                        "variables": {"note": value}, **extra})
    assert final(stack, job)["status"] == "completed"
    a, b = creates(switch, job, "a")[0], creates(switch, job, "b")[0]
    assert a["variable_eslengine_var_note"] == value == b["variable_eslengine_var_note"]
    assert b["variable_sip_h_X-Note"] == value


@pytest.mark.parametrize(("body", "field", "reason"), [
    ({"variables": {"note": "',^^~execute_on_answer~log CRIT marker"}}, "variables.note", "'^^'"),
    ({"variables": {"note": ":_:sofia/gateway/gw/+19005550000"}}, "variables.note", "':_:'"),
    ({"variables": {"note": "a:_:b"}}, "variables.note", "':_:'"),
    ({"variables": {"note": "US$$5"}}, "variables.note", "'$$'"),
    ({"b": {"to": "+15551230002", "caller_id_name": "',^^~execute_on_answer~log CRIT x"}}, "b.caller_id_name",
     "'^^'"),
    ({"caller_id_name": 'Say "hi"'}, "caller_id_name", "'\"'"),
    ({"a": {"to": "+15551230001", "sip_headers": {"X-A": "x:_:y"}}}, "a.sip_headers.X-A", "':_:'"),
    ({"a": {"to": "+15551230001", "sip_headers": {"X-A": " edges "}}}, "a.sip_headers.X-A", "space"),
])
def test_text_no_escape_can_carry_is_refused_naming_the_field(stack: LocalStack, body: dict[str, Any], field: str,
                                                              reason: str) -> None:
    code, doc, _ = stack.http("POST", "/v1/calls", {"a": "+15551230001", "b": "+15551230002", **body})
    assert (code, doc["field"]) == (422, field), doc
    assert reason in doc["reason"]

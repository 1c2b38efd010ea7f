"""Infobip's click-to-call: the translation (pure tables), the delivery
reports, then the surface over HTTP (the Flask test client, a real Redis),
from Infobip's own example request."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine import calls, infobip
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect
from eslengine.webhooks import Delivery, body_of

OPERATOR = "op-infobip-7731"

# The request of infobip-click-to-call.txt, as every one of its examples sends it.
EXAMPLE: dict[str, Any] = {
    "bulkId": "BULK-ID-123-xyz",
    "messages": [{
        "messageId": "MESSAGE-ID-123-xyz",
        "from": "41793026700",
        "fromB": "41793026701",
        "destinationA": "41793026727",
        "destinationB": "41793026731",
        "text": "Test Voice message.",
        "language": "en",
        "anonymization": False,
        "notifyUrl": "https://www.example.com/voice/clicktocall",
        "notifyContentType": "application/json",
        "maxDuration": 60,
        "warningTime": 5,
        "retry": {"minPeriod": 1, "maxPeriod": 5, "maxCount": 5},
    }],
}
# Its documented reply.
REPLY = {"bulkId": "BULK-ID-123-xyz", "messages": [{
    "to": "41793026727",
    "status": {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
               "description": "Message accepted, pending for delivery."},
    "messageId": "MESSAGE-ID-123-xyz"}]}
CONFIG = Config(tts_engine="flite", webhook_allow=(r"https://www\.example\.com/.*",),
                media_url_prefixes=("https://media.example.com/",))


def message(**change: Any) -> dict[str, Any]:
    out = copy.deepcopy(EXAMPLE["messages"][0])
    for name, value in change.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def native(**change: Any) -> dict[str, Any]:
    send = infobip.parse_request({"messages": [message(**change)]})
    return infobip.native_request(send.messages[0], send.bulk_id)


# ------------------------------------------------------------------ pure


def test_the_documented_example_becomes_one_native_call() -> None:
    send = infobip.parse_request(EXAMPLE)
    assert send.bulk_id == "BULK-ID-123-xyz" and len(send.messages) == 1
    document = infobip.native_request(send.messages[0], send.bulk_id)
    assert document == {
        "a": {"to": "+41793026727", "caller_id_number": "+41793026700"},
        "b": {"to": "+41793026731", "caller_id_number": "+41793026701"},
        "dial_first": "a",
        "announcement": {"say": "Test Voice message.", "language": "en"},
        "max_duration": 60,
        "warnings": [{"before_end": 5}],
        # maxCount 5 is 4 (Infobip: "Higher value, if entered will be set to 4"):
        # after 1 min, 2 min, then maxPeriod (5 min) for the rest.
        "retry": {"attempts": 5, "delays": [60, 120, 300, 300]},
        "callback_url": "https://www.example.com/voice/clicktocall",
        "callback_format": "infobip+json",
        "metadata": {"messageId": "MESSAGE-ID-123-xyz", "bulkId": "BULK-ID-123-xyz"},
    }
    call = calls.parse_request(document, CONFIG)
    assert call.retry.delays == (60, 120, 300, 300) and call.callback_format == "infobip+json"
    assert [call.retry.delay(n) for n in (1, 2, 3, 4)] == [60.0, 120.0, 300.0, 300.0]


@pytest.mark.parametrize(("low", "high", "count", "minutes"), [
    (1, 5, 4, [1, 2, 5, 5]),
    (1, 1440, 4, [1, 2, 5, 10]),
    (10, 60, 4, [10, 20, 30, 60]),
    (3, 1440, 4, [3, 5, 10, 20]),
    (30, 30, 3, [30, 30, 30]),
    (240, 1440, 4, [240, 480, 960, 1440]),
    (1, 1, 0, []),
])
def test_retries_follow_infobips_ladder_from_min_to_max_period(low: int, high: int, count: int,
                                                                 minutes: list[int]) -> None:
    assert infobip.retry_delays(low, high, count) == tuple(60 * m for m in minutes)


@pytest.mark.parametrize(("change", "a", "b"), [
    # fromB set: from to A, fromB to B, anonymization or not.
    ({"anonymization": True}, {"caller_id_number": "+41793026700"}, {"caller_id_number": "+41793026701"}),
    # No fromB, anonymization: from to both.
    ({"fromB": None, "anonymization": True}, {"caller_id_number": "+41793026700"},
     {"caller_id_number": "+41793026700"}),
    # No fromB, no anonymization: B is shown destinationA.
    ({"fromB": None}, {"caller_id_number": "+41793026700"}, {"show_other_number": True}),
    ({"fromB": None, "from": None}, {}, {"show_other_number": True}),
])
def test_the_documented_caller_id_rules(change: dict[str, Any], a: dict[str, Any], b: dict[str, Any]) -> None:
    document = native(**change)
    assert {k: v for k, v in document["a"].items() if k != "to"} == a
    assert {k: v for k, v in document["b"].items() if k != "to"} == b


def test_audio_file_url_record_false_and_no_retry_or_notify() -> None:
    document = native(text=None, language=None, audioFileUrl="https://media.example.com/hello.mp3", record="false",
                      retry=None, notifyUrl=None, notifyContentType=None, messageId=None, warningTime=None)
    assert document["announcement"] == {"url": "https://media.example.com/hello.mp3"}
    assert not {"retry", "callback_url", "callback_format", "warnings", "metadata"} & set(document)


def test_text_without_language_is_english_and_xml_reports() -> None:
    document = native(language=None, notifyContentType="application/xml")
    assert document["announcement"] == {"say": "Test Voice message.", "language": "en"}
    assert document["callback_format"] == "infobip+xml"


@pytest.mark.parametrize(("change", "field"), [
    ({"destinationA": None}, "messages[0].destinationA"),
    ({"destinationB": "+41 79"}, "messages[0].destinationB"),
    ({"from": "Acme"}, "messages[0].from"),
    ({"audioFileUrl": "https://media.example.com/a.wav"}, "messages[0].audioFileUrl"),
    ({"text": None}, "messages[0].language"),
    ({"record": True}, "messages[0].record"),
    ({"record": "yes"}, "messages[0].record"),
    ({"anonymization": "no"}, "messages[0].anonymization"),
    ({"from": None, "fromB": None, "anonymization": True}, "messages[0].anonymization"),
    ({"notifyContentType": "text/plain"}, "messages[0].notifyContentType"),
    ({"notifyUrl": None}, "messages[0].notifyContentType"),
    ({"maxDuration": None}, "messages[0].warningTime"),
    ({"maxDuration": "60"}, "messages[0].maxDuration"),
    ({"retry": {"minPeriod": 5, "maxPeriod": 1}}, "messages[0].retry.maxPeriod"),
    ({"retry": {"maxPeriod": 5}}, "messages[0].retry.minPeriod"),
    ({"retry": {"minPeriod": 1, "maxPeriod": 2000}}, "messages[0].retry.maxPeriod"),
    ({"retry": {"minPeriod": 1, "maxPeriod": 5, "maxCount": -1}}, "messages[0].retry.maxCount"),
    ({"retry": {"minPeriod": 1, "maxPeriod": 5, "validity": 5}}, "messages[0].retry.validity"),
    ({"callbackData": "x"}, "messages[0].callbackData"),
    ({"messageId": ""}, "messages[0].messageId"),
])
def test_bad_messages_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(infobip.Refused) as caught:
        infobip.parse_request({"messages": [message(**change)]})
    assert (caught.value.status, caught.value.field) == (400, field)
    assert caught.value.text.startswith(field + ": ")


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"), ({"messages": []}, "messages"), ({"messages": {}}, "messages"), ({"bulkId": 5, "messages": [{}]},
                                                                                   "bulkId"),
    ({"messages": [message()], "notify": 1}, "notify"), ({"messages": [message(), message()]},
                                                         "messages[1].messageId"),
    ({"messages": [message(), "x"]}, "messages[1]"),
])
def test_bad_bodies_are_refused_naming_the_field(body: object, field: str) -> None:
    with pytest.raises(infobip.Refused) as caught:
        infobip.parse_request(body)
    assert caught.value.field == field


@pytest.mark.parametrize(("native_field", "field"), [
    ("a", "messages[0].destinationA"), ("b.to.0", "messages[0].destinationB"), ("a.caller_id_number",
                                                                                  "messages[0].from"),
    ("b.caller_id_number", "messages[0].fromB"), ("b.show_other_number", "messages[0].anonymization"),
    ("announcement.say", "messages[0].text"), ("announcement.url", "messages[0].audioFileUrl"),
    ("announcement.language", "messages[0].language"), ("max_duration", "messages[0].maxDuration"),
    ("warnings.0.before_end", "messages[0].warningTime"), ("retry.attempts", "messages[0].retry.maxCount"),
    ("callback_url", "messages[0].notifyUrl"), ("caller_id_number", "messages[0].from"),
])
def test_native_refusals_name_the_infobip_field(native_field: str, field: str) -> None:
    got = infobip.refusal(ValidationError(native_field, "no"), infobip.parse_request(EXAMPLE).messages[0])
    assert (got.status, got.field, got.text) == (400, field, field + ": no")


def test_b_caller_id_refusals_without_fromb_name_where_it_came_from() -> None:
    anonymous = infobip.parse_request({"messages": [message(fromB=None, anonymization=True)]}).messages[0]
    assert infobip.refusal(ValidationError("b.caller_id_number", "no"), anonymous).field == \
        "messages[0].anonymization"


@pytest.mark.parametrize(("header", "expected"), [
    ("App esk_abc", infobip.Credentials("esk_abc")),
    ("app  esk_abc ", infobip.Credentials("esk_abc")),
    ("Basic " + base64.b64encode(b"acct:esk_abc").decode(), infobip.Credentials("esk_abc", "acct")),
    # Infobip's examples drop base64 padding; so may clients copied from them.
    ("Basic " + base64.b64encode(b"acct:esk_abc").decode().rstrip("="), infobip.Credentials("esk_abc", "acct")),
    ("Basic " + base64.b64encode(b"acct:pass:word").decode(), infobip.Credentials("pass:word", "acct")),
])
def test_credentials(header: str, expected: infobip.Credentials) -> None:
    assert infobip.credentials(header) == expected


@pytest.mark.parametrize("header", [None, "", "Bearer x", "App", "Basic !!!", "Basic " +
                                    base64.b64encode(b"no-colon").decode(), "Basic " +
                                    base64.b64encode(b":pw").decode(), "Basic " +
                                    base64.b64encode(b"\xff\xfe:pw").decode(), "App a\x00b"])
def test_bad_credentials_are_401(header: str | None) -> None:
    with pytest.raises(infobip.Refused) as caught:
        infobip.credentials(header)
    assert caught.value.status == 401


def test_error_bodies_are_infobips() -> None:
    assert infobip.error_reply(401, "Invalid login details") == {
        "requestError": {"serviceException": {"messageId": "UNAUTHORIZED", "text": "Invalid login details"}}}
    assert infobip.error_reply(400, "messages[0].from: bad", "messages[0].from") == {"requestError": {
        "serviceException": {"messageId": "BAD_REQUEST", "text": "messages[0].from: bad",
                             "validationErrors": {"messages[0].from": ["bad"]}}}}


# ------------------------------------------------------------------ delivery reports


def a_call(status: str, cause: str, **extra: Any) -> dict[str, Any]:
    request = calls.parse_request(infobip.native_request(infobip.parse_request(EXAMPLE).messages[0],
                                                         "BULK-ID-123-xyz"), CONFIG).to_json()
    stamps = {"created": "2026-03-01T10:00:00.000Z", "dialing": "2026-03-01T10:00:00.250Z",
              "answered": "2026-03-01T10:00:03.000Z", "ended": "2026-03-01T10:01:05.500Z", status: "2026-03-01T10:01:05.500Z"}
    return {"id": request["id"], "status": status, "hangup_cause": cause, "request": request, "timestamps": stamps,
            "durations": {"talk_seconds": 59.6}, **extra}


def test_a_completed_call_reports_delivered_answered() -> None:
    body, content_type = infobip.report(a_call("completed", "NORMAL_CLEARING"), "infobip+json") or (b"", "")
    assert content_type == "application/json"
    assert json.loads(body) == {"results": [{
        "bulkId": "BULK-ID-123-xyz", "messageId": "MESSAGE-ID-123-xyz", "to": "41793026727", "from": "41793026700",
        "sentAt": "2026-03-01T10:00:00.000+0000", "doneAt": "2026-03-01T10:01:05.500+0000",
        "startTime": "2026-03-01T10:00:00.250+0000", "answerTime": "2026-03-01T10:00:03.000+0000",
        "endTime": "2026-03-01T10:01:05.500+0000", "duration": 60,
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
                   "description": "Message delivered to handset"},
        "error": {"groupId": 0, "groupName": "OK", "id": 5000, "name": "VOICE_ANSWERED",
                  "description": "Call answered by human", "permanent": True}}]}


@pytest.mark.parametrize(("cause", "error_id", "name", "permanent"), [
    ("USER_BUSY", 5002, "EC_VOICE_USER_BUSY", False),
    ("NO_ANSWER", 5003, "EC_VOICE_NO_ANSWER", False),
    ("UNALLOCATED_NUMBER", 5404, "EC_VOICE_ERROR_DESTINATION_NOT_FOUND", True),
    ("SUBSCRIBER_ABSENT", 5480, "EC_VOICE_ERROR_TEMPORARILY_NOT_AVAILABLE", False),
    ("NORMAL_TEMPORARY_FAILURE", 5503, "EC_VOICE_SERVICE_UNAVAILABLE", False),
    ("CALL_REJECTED", 5603, "EC_UNKNOWN_ERROR", True),
    ("ORIGINATOR_CANCEL", 5487, "EC_UNKNOWN_ERROR", True),
    ("SOMETHING_NEW", 5500, "EC_VOICE_INTERNAL_SERVER_ERROR", False),
])
def test_a_failed_call_reports_undeliverable_with_the_cause(cause: str, error_id: int, name: str,
                                                            permanent: bool) -> None:
    result = infobip.report_result(a_call("failed", cause))
    assert result is not None
    assert result["status"]["name"] == "UNDELIVERABLE_NOT_DELIVERED"
    assert (result["error"]["id"], result["error"]["name"], result["error"]["permanent"]) == (error_id, name,
                                                                                               permanent)


def test_the_xml_report_carries_the_same_fields() -> None:
    body, content_type = infobip.report(a_call("failed", "USER_BUSY"), "infobip+xml") or (b"", "")
    assert content_type == "application/xml"
    root = ElementTree.fromstring(body)
    assert root.tag == "reportResponse"
    result = root.find("results/result")
    assert result is not None
    assert result.findtext("messageId") == "MESSAGE-ID-123-xyz" and result.findtext("to") == "41793026727"
    assert result.findtext("status/name") == "UNDELIVERABLE_NOT_DELIVERED"
    assert (result.findtext("error/id"), result.findtext("error/permanent")) == ("5002", "false")


def test_only_the_final_status_is_reported() -> None:
    for status in ("dialing", "ringing", "answered", "bridged"):
        assert infobip.report(a_call(status, ""), "infobip+json") is None
        assert body_of(a_call("completed", ""), Delivery("x.2", status, 0.0)) is None
    assert body_of(a_call("completed", ""), Delivery("x.6", "completed", 0.0)) is not None


def test_the_native_format_stays_the_default() -> None:
    call = a_call("ringing", "")
    del call["request"]["callback_format"]
    body, content_type = body_of(call, Delivery("x.3", "ringing", 0.0)) or (b"", "")
    assert content_type == "application/json" and json.loads(body)["event"] == "call.ringing"


# ------------------------------------------------------------------ native additions


def test_retry_delays_round_trip_and_are_bounded() -> None:
    call = calls.parse_request({"a": "+41793026727", "b": "+41793026731",
                                "retry": {"attempts": 3, "delays": [60, 86400]}}, CONFIG)
    assert calls.parse_request(call.to_json(), CONFIG) == call
    assert [call.retry.delay(n) for n in (1, 2, 3)] == [60.0, 86400.0, 86400.0]
    for retry, field in [({"attempts": 2, "delays": [86401]}, "retry.delays.0"),
                         ({"attempts": 2, "delays": []}, "retry.delays"),
                         ({"attempts": 2, "delays": [1, 2, 3, 4, 5]}, "retry.delays"),
                         ({"attempts": 2, "delays": [5], "backoff": 5}, "retry.delays")]:
        with pytest.raises(ValidationError) as caught:
            calls.parse_request({"a": "+41793026727", "b": "+41793026731", "retry": retry}, CONFIG)
        assert caught.value.field == field


def test_callback_format_needs_a_callback_url() -> None:
    with pytest.raises(ValidationError) as caught:
        calls.parse_request({"a": "+41793026727", "b": "+41793026731", "callback_format": "infobip+xml"}, CONFIG)
    assert caught.value.field == "callback_format"


# ------------------------------------------------------------------ HTTP


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                    tts_engine="flite", webhook_allow=(r"https://www\.example\.com/.*",),
                    media_url_prefixes=("https://media.example.com/",))
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=600))
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Tenant:
    def __init__(self, client: FlaskClient, **key: Any) -> None:
        auth = {"Authorization": "Bearer " + OPERATOR}
        response = client.post("/v1/accounts", json={"name": "infobip"}, headers=auth)
        self.account = response.get_json()["id"]
        response = client.post("/v1/accounts/%s/keys" % self.account, headers=auth,
                               json={"name": "ctc", "scopes": ["place", "read"], **key})
        assert response.status_code == 201, response.get_json()
        self.key_id, self.token = response.get_json()["id"], response.get_json()["token"]

    def basic(self, user: str | None = None, pad: bool = True) -> str:
        encoded = base64.b64encode(("%s:%s" % (user or self.account, self.token)).encode()).decode()
        return "Basic " + (encoded if pad else encoded.rstrip("="))


@pytest.fixture
def tenant(client: FlaskClient) -> Tenant:
    return Tenant(client)


def calls_of(client: FlaskClient, token: str) -> list[dict[str, Any]]:
    response = client.get("/v1/calls", headers={"Authorization": "Bearer " + token})
    assert response.status_code == 200
    out = []
    for item in response.get_json()["calls"]:
        got = client.get("/v1/calls/" + item["id"], headers={"Authorization": "Bearer " + token})
        out.append(got.get_json())
    return out


# The examples differ in their Authorization header: Basic with "==" (the
# HTTP request) or with one "=" (PHP, Ruby, Python, Java, C#, JavaScript).
@pytest.mark.parametrize("pad", [True, False])
@pytest.mark.parametrize("accept", [{"Accept": "application/json"}, {}])
def test_the_documented_example_gets_the_documented_reply(client: FlaskClient, tenant: Tenant, pad: bool,
                                                          accept: dict[str, str]) -> None:
    response = client.post("/voice/ctc/1/send", data=json.dumps(EXAMPLE, indent=3),
                           headers={"Authorization": tenant.basic(pad=pad), "Content-Type": "application/json",
                                    **accept})
    assert (response.status_code, response.get_json()) == (200, REPLY)
    [call] = calls_of(client, tenant.token)
    assert (call["status"], call["account"], call["key"]) == ("queued", tenant.account, tenant.key_id)
    assert call["request"]["metadata"] == {"messageId": "MESSAGE-ID-123-xyz", "bulkId": "BULK-ID-123-xyz"}
    assert call["request"]["callback_url"] == "https://www.example.com/voice/clicktocall"


def test_app_auth_and_one_call_per_message(client: FlaskClient, tenant: Tenant) -> None:
    body = {"messages": [message(messageId=None), message(messageId=None, destinationA="41793026728")]}
    response = client.post("/voice/ctc/1/send", json=body, headers={"Authorization": "App " + tenant.token})
    assert response.status_code == 200, response.get_json()
    reply = response.get_json()
    assert "bulkId" not in reply and [m["to"] for m in reply["messages"]] == ["41793026727", "41793026728"]
    placed = {c["id"]: c for c in calls_of(client, tenant.token)}
    # Without a messageId, a message's id is its call's.
    assert {m["messageId"] for m in reply["messages"]} == set(placed)
    assert {c["a"]["to"] for c in placed.values()} == {"+41793026727", "+41793026728"}


def test_the_operator_key_names_the_account_as_the_basic_user(client: FlaskClient, tenant: Tenant) -> None:
    header = "Basic " + base64.b64encode(("%s:%s" % (tenant.account, OPERATOR)).encode()).decode()
    response = client.post("/voice/ctc/1/send", json=EXAMPLE, headers={"Authorization": header})
    assert response.status_code == 200, response.get_json()
    [call] = calls_of(client, OPERATOR)
    assert call["account"] == tenant.account


@pytest.mark.parametrize("header", [
    None, "App esk_nope", "Bearer whatever", "Basic " + base64.b64encode(b"acct:esk_nope").decode()])
def test_wrong_credentials_are_infobips_401(client: FlaskClient, header: str | None) -> None:
    response = client.post("/voice/ctc/1/send", json=EXAMPLE, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.get_json()["requestError"]["serviceException"]["messageId"] == "UNAUTHORIZED"


def test_another_accounts_id_as_the_basic_user_is_401(client: FlaskClient, tenant: Tenant) -> None:
    other = Tenant(client)
    response = client.post("/voice/ctc/1/send", json=EXAMPLE, headers={"Authorization": tenant.basic(other.account)})
    assert response.status_code == 401
    # The key's own id is a user too.
    response = client.post("/voice/ctc/1/send", json=EXAMPLE, headers={"Authorization": tenant.basic(tenant.key_id)})
    assert response.status_code == 200


def test_a_key_without_the_place_scope_is_403(client: FlaskClient) -> None:
    tenant = Tenant(client, scopes=["read"])
    response = client.post("/voice/ctc/1/send", json=EXAMPLE, headers={"Authorization": "App " + tenant.token})
    assert response.status_code == 403
    assert response.get_json()["requestError"]["serviceException"]["messageId"] == "FORBIDDEN"


def test_one_bad_message_places_nothing(client: FlaskClient, tenant: Tenant) -> None:
    body = {"messages": [message(messageId="1"), message(messageId="2", maxDuration=5)]}
    response = client.post("/voice/ctc/1/send", json=body, headers={"Authorization": "App " + tenant.token})
    assert response.status_code == 400
    exception = response.get_json()["requestError"]["serviceException"]
    assert exception["messageId"] == "BAD_REQUEST" and list(exception["validationErrors"]) == [
        "messages[1].maxDuration"]
    assert calls_of(client, tenant.token) == []


@pytest.mark.parametrize(("change", "field"), [
    ({"audioFileUrl": "https://elsewhere.example.org/a.wav", "text": None, "language": None},
     "messages[0].audioFileUrl"),
    ({"notifyUrl": "https://hooks.example.org/x"}, "messages[0].notifyUrl"),
    ({"warningTime": 60}, "messages[0].warningTime"),
    # A satellite number (ESLENGINE_BLOCKED_PREFIXES).
    ({"destinationA": "870772123456"}, "messages[0].destinationA"),
])
def test_native_refusals_answer_in_infobips_shape(client: FlaskClient, tenant: Tenant, change: dict[str, Any],
                                                  field: str) -> None:
    body = {"messages": [message(**change)]}
    response = client.post("/voice/ctc/1/send", json=body, headers={"Authorization": "App " + tenant.token})
    exception = response.get_json()["requestError"]["serviceException"]
    assert response.status_code == 400 and list(exception["validationErrors"]) == [field], exception


def test_a_keys_caller_id_list_applies(client: FlaskClient) -> None:
    tenant = Tenant(client, caller_ids=["+41793026700"])
    headers = {"Authorization": "App " + tenant.token}
    response = client.post("/voice/ctc/1/send", json={"messages": [message()]}, headers=headers)
    exception = response.get_json()["requestError"]["serviceException"]
    assert response.status_code == 400 and list(exception["validationErrors"]) == ["messages[0].fromB"]
    response = client.post("/voice/ctc/1/send", json={"messages": [message(fromB=None)]}, headers=headers)
    exception = response.get_json()["requestError"]["serviceException"]
    assert response.status_code == 400 and list(exception["validationErrors"]) == ["messages[0].anonymization"]
    response = client.post("/voice/ctc/1/send", json={"messages": [message(fromB=None, anonymization=True)]},
                           headers=headers)
    assert response.status_code == 200, response.get_json()


def test_a_keys_rate_applies(client: FlaskClient) -> None:
    tenant = Tenant(client, rate_per_minute=1)
    headers = {"Authorization": "App " + tenant.token}
    assert client.post("/voice/ctc/1/send", json=EXAMPLE, headers=headers).status_code == 200
    response = client.post("/voice/ctc/1/send", json=EXAMPLE, headers=headers)
    assert response.status_code == 429 and response.headers["Retry-After"]
    assert response.get_json()["requestError"]["serviceException"]["messageId"] == "TOO_MANY_REQUESTS"


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"data": b"{"}, 400), ({"data": b"\xff"}, 400), ({"data": b"x" * 70000}, 413), ({"json": []}, 400),
])
def test_bad_bodies_get_infobips_shape(client: FlaskClient, tenant: Tenant, kwargs: dict[str, Any],
                                       status: int) -> None:
    response = client.post("/voice/ctc/1/send", headers={"Authorization": "App " + tenant.token}, **kwargs)
    assert response.status_code == status
    assert set(response.get_json()["requestError"]["serviceException"]) >= {"messageId", "text"}


def test_the_openapi_document_describes_the_message_fields(client: FlaskClient) -> None:
    document = client.get("/v1/openapi/infobip.json").get_json()
    assert tuple(document["components"]["schemas"]["Message"]["properties"]) == infobip.MESSAGE_FIELDS
    assert tuple(document["components"]["schemas"]["Message"]["properties"]["retry"]["properties"]) == \
        infobip.RETRY_FIELDS


def test_a_message_to_a_do_not_call_number_refuses_the_request_with_nothing_queued(client: FlaskClient,
                                                                                  tenant: Tenant) -> None:
    response = client.post("/v1/dnc", json=["+41793026728"], headers={"Authorization": "Bearer " + OPERATOR})
    assert response.status_code == 201
    body = {"messages": [message(messageId=None), message(messageId=None, destinationA="41793026728")]}
    response = client.post("/voice/ctc/1/send", json=body, headers={"Authorization": "App " + tenant.token})
    assert response.status_code == 400
    error = response.get_json()["requestError"]["serviceException"]
    assert "messages[1]" in error["text"] and "do_not_call" in error["text"]
    assert calls_of(client, tenant.token) == []

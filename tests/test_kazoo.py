"""The Kazoo crossbar facade: its pure rules (envelope, translation), then
every example request of the vendor's documents (../shared/seed-apis/
kazoo-clicktocall.txt and kazoo-quickcall.txt, placeholders filled in) sent
over HTTP to the Flask app with a real Redis, answered in the documented
shape; the same resources seen through the native API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine import accounts
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.http import create_app
from eslengine.http.kazoo import crossbar, translate
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "op-kazoo-4471"
CONFIG = Config(allow_unvalidated_numbers=True, default_region="US")
META = crossbar.Meta(request_id="r1", auth_token="t", timestamp="2026-01-01T00:00:00Z", node="n")
ENVELOPE = {"auth_token", "data", "node", "request_id", "revision", "status", "timestamp", "version"}
ERROR_ENVELOPE = {"auth_token", "data", "error", "message", "node", "request_id", "status", "timestamp", "version"}


# ------------------------------------------------------------------ pure: the envelope


def test_a_success_carries_the_crossbar_envelope() -> None:
    doc = crossbar.success({"id": "x"}, META, page_size=1)
    assert set(doc) == ENVELOPE | {"page_size"}
    assert (doc["status"], doc["version"], doc["request_id"], doc["auth_token"]) == ("success", "4.3.1", "r1", "t")
    assert doc["revision"] == crossbar.revision({"id": "x"}) != crossbar.revision({"id": "y"})


def test_a_validation_error_keys_the_field_then_the_code() -> None:
    doc = crossbar.validation_error("media.ignore_early_media", "must be true or false", META)
    assert set(doc) == ERROR_ENVELOPE
    assert (doc["status"], doc["error"], doc["message"]) == ("error", "400", "validation error")
    assert doc["data"] == {"media.ignore_early_media": {"type": {"message": "must be true or false"}}}


@pytest.mark.parametrize(("reason", "code"), [
    ("required: 1 to 128 characters", "required"),
    ("must be extension or contact", "enum"),
    ("must be one of bypass, process", "enum"),
    ("must be true or false", "type"),
    ("unknown field (known: a, b)", "additionalProperties"),
    ("not a valid regular expression (RE2 syntax): missing )", "invalid"),
])
def test_validation_codes(reason: str, code: str) -> None:
    assert crossbar.validation_code(reason) == code


def test_system_errors_name_the_error_and_say_it() -> None:
    doc = crossbar.system_error(401, META)
    assert (doc["error"], doc["message"], doc["data"]) == ("401", "invalid_credentials",
                                                           {"message": "invalid credentials"})
    assert crossbar.system_error(404, META, "no clicktocall with this id")["data"]["message"] == \
        "no clicktocall with this id"


@pytest.mark.parametrize(("body", "required", "out", "field"), [
    (None, False, {}, None),
    (None, True, None, "data"),
    ({"data": {"contact": "1"}}, True, {"contact": "1"}, None),
    ({}, False, {}, None),
    ({"data": None}, True, None, "data"),
    ([1], False, None, "data"),
    ({"data": [1]}, False, None, "data"),
    ({"data": {}, "verb": "PUT"}, False, None, "verb"),
    ({"data": {}, "auth_token": "x"}, False, None, "auth_token"),
])
def test_the_request_envelope(body: object, required: bool, out: dict[str, Any] | None, field: str | None) -> None:
    if field is None:
        assert crossbar.request_data(body, required=required) == out
    else:
        with pytest.raises(ValidationError) as info:
            crossbar.request_data(body, required=required)
        assert info.value.field == field


# ------------------------------------------------------------------ pure: translation


@pytest.mark.parametrize(("kazoo", "native"), [
    ("1000", "user/1000"), ("123456", "user/123456"), ("1234567", "1234567"), ("+15551230001", "+15551230001"),
    ("user:" + "a" * 32, "user:" + "a" * 32), ("sip:ann@pbx.example.com", "sip:ann@pbx.example.com"), (5, 5),
])
def test_a_short_extension_is_the_directory_user(kazoo: object, native: object) -> None:
    assert translate.extension_in(kazoo) == native


@pytest.mark.parametrize(("native", "kazoo"), [
    ("user/1000", "1000"), ("user/1000@pbx.example.com", "user/1000@pbx.example.com"), ("user/abc", "user/abc"),
    ("+15551230001", "+15551230001"),
])
def test_a_directory_user_shows_as_its_extension(native: str, kazoo: str) -> None:
    assert translate.extension_out(native) == kazoo


def test_a_document_sent_back_loses_what_the_engine_writes() -> None:
    doc = translate.resource_in({"id": "i", "name": "n", "extension": "1000", "created_at": "t", "updated_at": "t",
                                 "bypass_media": "true", "music_on_hold": {}}, "i")
    assert doc == {"name": "n", "extension": "user/1000", "bypass_media": True}


@pytest.mark.parametrize(("data", "field"), [
    ({"id": "other"}, "id"),
    ({"bypass_media": "auto"}, "bypass_media"),
    ({"bypass_media": "sometimes"}, "bypass_media"),
])
def test_kazoo_values_the_engine_cannot_honour_are_refused(data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        translate.resource_in(data, "mine")
    assert info.value.field == field


def test_a_resource_as_kazoo_shows_it() -> None:
    shown = translate.resource_out({"id": "i", "name": "n", "extension": "user/1000", "created_at": "t"})
    assert shown == {"id": "i", "name": "n", "extension": "1000", "custom_application_vars": {}}
    assert translate.summary_out({"id": "i", "name": "n", "extension": "user/1000", "timeout": 5}) == {
        "id": "i", "name": "n", "extension": "1000"}


def test_a_patch_merges_objects_and_null_removes() -> None:
    assert accounts.merge_patch({"a": 1, "m": {"x": 1, "y": 2}}, {"a": None, "m": {"y": 3}, "b": 2}) == {
        "m": {"x": 1, "y": 3}, "b": 2}


@pytest.mark.parametrize(("number", "number_filter", "out"), [
    ("+1 (555) 123-0001", None, "+15551230001"),
    ("+1 (555) 123-0001", True, "+15551230001"),
    ("+1 (555) 123-0001", "true", "+15551230001"),
    ("1.555,123", "true", "1555123"),
    ("+1 (555) 123-0001", "false", "+1 (555) 123-0001"),
    ("tel:+15551230001;x", r"tel:(\+[0-9]+)", "+15551230001"),
    ("5551230001", r"^9([0-9]+)", "5551230001"),  # no match: as it is (Kazoo)
])
def test_kazoo_number_filter(number: str, number_filter: object, out: str) -> None:
    assert translate.filter_number(number, number_filter) == out


@pytest.mark.parametrize("number_filter", ["(", "[0-9]+", "x" * 101, 5, "(a)\\1"])
def test_a_bad_number_filter_is_refused(number_filter: object) -> None:
    with pytest.raises(ValidationError) as info:
        translate.filter_number("123", number_filter)
    assert info.value.field == "number_filter"


def test_quickcall_options_from_the_query_string_and_the_body() -> None:
    query = {"cid-name": "Sales", "timeout": "20", "campaign": "spring", "auto_answer": "false"}
    data = {"cid-name": "Support", "custom_application_vars": {"lead": "42"}, "ignore-early-media": False}
    found = translate.parse_quickcall("+1 555 123 0002", query, data, CONFIG)
    assert found == translate.Quickcall(number="+15551230002", auto_answer=False, cid_name="Support",
                                        ignore_early_media=False, timeout=20,
                                        variables={"lead": "42", "campaign": "spring"})


@pytest.mark.parametrize(("query", "data", "field"), [
    ({"auto_answer": "yes"}, {}, "auto_answer"),
    ({}, {"ignore-early-media": "maybe"}, "ignore-early-media"),
    ({"media": "proxy"}, {}, "media"),
    ({"timeout": "ten"}, {}, "timeout"),
    ({"timeout": "3"}, {}, "timeout"),
    ({"timeout": "100000"}, {}, "timeout"),
    ({}, {"timeout": True}, "timeout"),
    ({"cid-name": ""}, {}, "cid-name"),
    ({}, {"custom_application_vars": [1]}, "custom_application_vars"),
    ({}, {"colour": "red"}, "colour"),
    ({"number_filter": "[0-9]"}, {}, "number_filter"),
])
def test_bad_quickcall_options_are_refused_naming_them(query: dict[str, str], data: dict[str, Any],
                                                       field: str) -> None:
    with pytest.raises(ValidationError) as info:
        translate.parse_quickcall("+15551230002", query, data, CONFIG)
    assert info.value.field == field


def test_a_quickcall_rings_the_endpoints_first_showing_device_quickcall() -> None:
    options = translate.Quickcall(number="1001", cid_number="+15557770000", cid_name="Acme", media="bypass",
                                  timeout=20, target_call_id="t", variables={"x": "1"})
    assert translate.quickcall_request(options, ["user/1000", "+15551230009"], "simultaneous") == {
        "a": {"to": ["user/1000", "+15551230009"], "mode": "simultaneous", "caller_id_name": "Device QuickCall",
              "show_other_number": True, "auto_answer": True, "ignore_early_media": True},
        "b": {"to": "user/1001", "caller_id_number": "+15557770000", "caller_id_name": "Acme"},
        "dial_first": "a", "timeout": 20, "media": "bypass", "target_call_id": "t", "variables": {"x": "1"}}


@pytest.mark.parametrize(("native", "kazoo"), [
    ("b", "number"), ("b.to", "number"), ("b.caller_id_number", "cid-number"), ("b.caller_id_name", "cid-name"),
    ("a.show_other_number", "cid-number"), ("a.to.0", "endpoint"), ("timeout", "timeout"),
    ("variables.bad-name", "custom_application_vars.bad-name"), ("target_call_id", "target_call_id"),
])
def test_native_fields_name_the_quickcall_option(native: str, kazoo: str) -> None:
    assert translate.quickcall_field(native) == kazoo


def test_history_entries_say_the_result_as_kazoo_does() -> None:
    assert translate.history_entry("c", "+1", 0.0, True, "ringing", "") == {
        "id": "c", "call_id": "c", "contact": "+1", "timestamp": 62_167_219_200, "status": "ringing",
        "result": "success"}
    failed = translate.history_entry("c", "+1", 10.0, False, "failed", "USER_BUSY")
    assert (failed["result"], failed["cause"], failed["timestamp"]) == ("error", "USER_BUSY", 62_167_219_210)
    assert translate.history_entry("c", "+1", 0.0, None, "queued", "")["result"] == "pending"


def test_connect_variables_gather_as_kazoo_does() -> None:
    found = translate.connect_variables({"custom_application_vars": {"a": "1", "b": "1"}},
                                        {"contact": "+1", "blocking": "true", "b": "2"},
                                        {"custom_application_vars": {"c": "3"}}, "+15551230004")
    assert found == {"a": "1", "b": "2", "c": "3", "contact": "+15551230004"}


# ------------------------------------------------------------------ the API, with Redis


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> Config:
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                  allow_unvalidated_numbers=True, default_region="US")


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=600), max_wait=0.2)
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Account:
    """An account made through the native API, with a key (its Kazoo
    token), a user on user/1000 and a device on user/1001."""

    def __init__(self, client: FlaskClient, name: str, scopes: list[str] | None = None) -> None:
        op = {"Authorization": "Bearer " + OPERATOR}
        self.id = self._made(client.post("/v1/accounts", json={"name": name}, headers=op))["id"]
        self.native = "/v1/accounts/" + self.id
        self.kazoo = "/v2/accounts/" + self.id
        body: dict[str, Any] = {"name": name + " app"}
        if scopes:
            body["scopes"] = scopes
        self.token = self._made(client.post(self.native + "/keys", json=body, headers=op))["token"]
        self.user = self._made(client.post(self.native + "/users", json={"name": "Ann", "endpoint": "user/1000"},
                                           headers=op))["id"]
        self.device = self._made(client.post(self.native + "/devices", json={
            "name": "desk", "endpoint": "user/1001", "owner": self.user}, headers=op))["id"]

    @staticmethod
    def _made(resp: Any) -> dict[str, Any]:
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()  # type: ignore[no-any-return]

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


@pytest.fixture
def acme(client: FlaskClient) -> Account:
    return Account(client, "acme")


def curl(client: FlaskClient, method: str, path: str, token: str | None, data: str | None = None) -> Any:
    """A request as the examples' curl sends it: -H "X-Auth-Token: ...", and
    -d (a form's Content-Type, whatever the body is)."""
    headers = {"X-Auth-Token": token} if token is not None else {}
    if data is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return client.open(path, method=method, data=data, headers=headers)


def ok(resp: Any, code: int = 200) -> Any:
    doc = resp.get_json()
    assert resp.status_code == code, doc
    assert set(doc) >= ENVELOPE and doc["status"] == "success", doc
    assert resp.headers["X-Request-ID"] == doc["request_id"]
    return doc["data"]


def failed(resp: Any, code: int, message: str | None = None) -> dict[str, Any]:
    doc = resp.get_json()
    assert resp.status_code == code, doc
    assert set(doc) == ERROR_ENVELOPE and doc["status"] == "error" and doc["error"] == str(code), doc
    if message is not None:
        assert doc["message"] == message, doc
    return doc  # type: ignore[no-any-return]


def create(client: FlaskClient, acme: Account, data: dict[str, Any]) -> dict[str, Any]:
    return ok(curl(client, "PUT", acme.kazoo + "/clicktocall", acme.token, json.dumps({"data": data})), 201)


# The example's own body (kazoo-clicktocall.txt, "Create a clicktocall
# endpoint"), placeholders filled in: it lacks the quote after the name.
EXAMPLE_CREATE = '{"data":{"name":"Sales line, "auth_required":false, "extension":"1000"}}'


def test_the_create_example_as_written_is_malformed_json(client: FlaskClient, acme: Account) -> None:
    doc = failed(curl(client, "PUT", acme.kazoo + "/clicktocall", acme.token, EXAMPLE_CREATE), 400,
                 "validation error")
    assert list(doc["data"]) == ["json"] and "malformed JSON" in doc["data"]["json"]["invalid"]["message"]


def test_every_clicktocall_example(client: FlaskClient, acme: Account) -> None:
    base = acme.kazoo + "/clicktocall"
    # Create (the example, its quote put back).
    made = ok(curl(client, "PUT", base, acme.token, EXAMPLE_CREATE.replace('line, ', 'line", ')), 201)
    assert {"auth_required": False, "custom_application_vars": {}, "extension": "1000", "name": "Sales line"}.items() \
        <= made.items()
    c2c = made["id"]
    assert len(c2c) == 32
    # List.
    resp = curl(client, "GET", base, acme.token)
    assert ok(resp) == [{"extension": "1000", "id": c2c, "name": "Sales line"}]
    assert resp.get_json()["page_size"] == 1 and resp.get_json()["auth_token"] == acme.token
    # Fetch.
    assert ok(curl(client, "GET", "%s/%s" % (base, c2c), acme.token)) == made
    # Change, as the example sends it (no body): the document is required.
    doc = failed(curl(client, "POST", "%s/%s" % (base, c2c), acme.token), 400, "validation error")
    assert doc["data"] == {"data": {"required": {"message": 'required: the request body is {"data": {...}}'}}}
    changed = ok(curl(client, "POST", "%s/%s" % (base, c2c), acme.token, json.dumps(
        {"data": {**made, "name": "Sales", "dial_first": "contact"}})))
    assert (changed["name"], changed["dial_first"], changed["id"]) == ("Sales", "contact", c2c)
    # Patch, as the example sends it (no body): nothing changes.
    assert ok(curl(client, "PATCH", "%s/%s" % (base, c2c), acme.token)) == changed
    patched = ok(curl(client, "PATCH", "%s/%s" % (base, c2c), acme.token, json.dumps(
        {"data": {"media": {"ignore_early_media": False}, "caller_id_number": "+15557770000"}})))
    assert (patched["media"], patched["caller_id_number"], patched["name"]) == (
        {"ignore_early_media": False}, "+15557770000", "Sales")
    # History (nothing yet).
    assert ok(curl(client, "GET", "%s/%s/history" % (base, c2c), acme.token)) == []
    # Connect, non-blocking (GET ?contact=): 202 with the call as Kazoo describes it.
    placed = ok(curl(client, "GET", "%s/%s/connect?contact=%%2B15551230004" % (base, c2c), acme.token), 202)
    assert placed["application_name"] == "transfer" and placed["continue_on_fail"] is True
    assert placed["custom_application_vars"] == {"contact": "+15551230004"}
    assert placed["custom_channel_vars"] == {"account_id": acme.id, "authorizing_id": c2c,
                                             "authorizing_type": "clicktocall", "inherit_codec": False,
                                             "retain_cid": True}
    # dial_first is contact now: the contact rings first, then the extension.
    assert placed["endpoints"] == [{"invite_format": "route", "route": "+15551230004"}]
    assert placed["application_data"] == {"route": "user/1000"}
    assert (placed["outbound_caller_id_number"], placed["timeout"]) == ("+15557770000", 30)
    # Connect by POST, as the example sends it (no body): the contact is required.
    doc = failed(curl(client, "POST", "%s/%s/connect" % (base, c2c), acme.token), 400, "validation error")
    assert list(doc["data"]) == ["contact"] and "required" in doc["data"]["contact"]
    second = ok(curl(client, "POST", "%s/%s/connect" % (base, c2c), acme.token,
                     json.dumps({"data": {"contact": "+1 (555) 123-0005"}})), 202)
    assert second["endpoints"] == [{"invite_format": "route", "route": "+15551230005"}]
    # Blocking (no worker here: the wait ends with the call still pending).
    blocked = ok(curl(client, "POST", "%s/%s/connect" % (base, c2c), acme.token,
                      json.dumps({"data": {"contact": "+15551230006", "blocking": True}})))
    assert (blocked["result"], blocked["contact"], blocked["status"]) == ("pending", "+15551230006", "queued")
    history = ok(curl(client, "GET", "%s/%s/history" % (base, c2c), acme.token))
    assert [(h["call_id"], h["contact"]) for h in history] == [
        (blocked["call_id"], "+15551230006"), (second["call_id"], "+15551230005"),
        (placed["call_id"], "+15551230004")]
    page = curl(client, "GET", "%s/%s/history?page_size=2" % (base, c2c), acme.token).get_json()
    rest = ok(curl(client, "GET", "%s/%s/history?page_size=2&start_key=%s" % (base, c2c, page["next_start_key"]),
                   acme.token))
    assert [h["call_id"] for h in page["data"] + rest] == [h["call_id"] for h in history]
    # Remove.
    gone = ok(curl(client, "DELETE", "%s/%s" % (base, c2c), acme.token))
    assert gone["id"] == c2c and gone["_read_only"] == {"deleted": True}
    failed(curl(client, "GET", "%s/%s" % (base, c2c), acme.token), 404, "bad_identifier")


def test_the_native_call_is_what_the_connect_described(client: FlaskClient, acme: Account) -> None:
    c2c = create(client, acme, {"name": "Acme sales", "extension": "1000", "caller_id_number": "+15557770000",
                                "custom_application_vars": {"source": "web"}})["id"]
    placed = ok(curl(client, "GET", "%s/clicktocall/%s/connect?contact=%%2B15551230004&campaign=spring"
                     % (acme.kazoo, c2c), acme.token), 202)
    # The documented shape: the extension rings first, showing the contact's
    # number and the resource's name.
    assert placed["endpoints"] == [{"invite_format": "route", "route": "user/1000"}]
    assert placed["application_data"] == {"route": "+15551230004"}
    assert (placed["outbound_caller_id_number"], placed["outbound_caller_id_name"]) == ("+15551230004", "Acme sales")
    assert placed["outbound_callee_id_number"] == "+15557770000"
    assert placed["custom_application_vars"] == {"source": "web", "campaign": "spring", "contact": "+15551230004"}
    record = client.get("/v1/calls/" + placed["call_id"], headers={"Authorization": "Bearer " + acme.token})
    assert record.status_code == 200
    call = record.get_json()
    assert (call["account"], call["status"], call["variables"]) == (acme.id, "queued", placed["custom_application_vars"])


def test_one_storage_two_surfaces(client: FlaskClient, acme: Account) -> None:
    bearer = {"Authorization": "Bearer " + acme.token}
    made = create(client, acme, {"name": "Made in Kazoo", "extension": "1000", "throttle": 5})
    native = client.get("%s/clicktocall/%s" % (acme.native, made["id"]), headers=bearer).get_json()
    assert (native["name"], native["extension"], native["throttle"]) == ("Made in Kazoo", "user/1000", 5)
    resp = client.post(acme.native + "/clicktocall", headers=bearer, json={
        "name": "Made natively", "extension": "device:" + acme.device, "auth_required": False})
    assert resp.status_code == 201
    other = resp.get_json()["id"]
    shown = ok(curl(client, "GET", "%s/clicktocall/%s" % (acme.kazoo, other), acme.token))
    assert (shown["name"], shown["extension"], shown["auth_required"]) == ("Made natively", "device:" + acme.device,
                                                                           False)
    listed = ok(curl(client, "GET", acme.kazoo + "/clicktocall", acme.token))
    assert {c["id"] for c in listed} == {made["id"], other}
    # A Kazoo change is seen natively, and the native history holds Kazoo's connects.
    ok(curl(client, "PATCH", "%s/clicktocall/%s" % (acme.kazoo, other), acme.token,
            json.dumps({"data": {"name": "Renamed"}})))
    assert client.get("%s/clicktocall/%s" % (acme.native, other), headers=bearer).get_json()["name"] == "Renamed"
    placed = ok(curl(client, "POST", "%s/clicktocall/%s/connect" % (acme.kazoo, other), None,
                     json.dumps({"data": {"contact": "+15551230007"}})), 202)
    connects = client.get("%s/clicktocall/%s/history" % (acme.native, other), headers=bearer).get_json()["connects"]
    assert [c["id"] for c in connects] == [placed["call_id"]]


def test_auth_failures_are_kazoos(client: FlaskClient, acme: Account) -> None:
    base = acme.kazoo + "/clicktocall"
    for token in (None, "", "esk_not-a-key"):
        doc = failed(curl(client, "GET", base, token), 401, "invalid_credentials")
        assert doc["data"] == {"message": "invalid credentials"}
    # Bearer works too; an operator key sees every account.
    assert client.get(base, headers={"Authorization": "Bearer " + acme.token}).status_code == 200
    assert curl(client, "GET", base, OPERATOR).status_code == 200
    other = Account(client, "other")
    failed(curl(client, "GET", base, other.token), 403, "forbidden")
    reader = Account(client, "reader", scopes=["read"])
    failed(curl(client, "PUT", reader.kazoo + "/clicktocall", reader.token,
                json.dumps({"data": {"name": "x", "extension": "1000"}})), 403, "forbidden")
    failed(curl(client, "GET", "/v2/accounts/%s/clicktocall" % ("f" * 32), OPERATOR), 404, "bad_identifier")
    doc = failed(curl(client, "GET", base + "?auth_token=" + acme.token, None), 400)
    assert list(doc["data"]) == ["auth_token"]


def test_a_resource_without_auth_connects_without_a_token_by_post(client: FlaskClient, acme: Account) -> None:
    secret = create(client, acme, {"name": "private", "extension": "1000"})["id"]
    public = create(client, acme, {"name": "public", "extension": "1000", "auth_required": False})["id"]
    path = acme.kazoo + "/clicktocall/%s/connect"
    failed(curl(client, "POST", path % secret, None, '{"data":{"contact":"+15551230004"}}'), 401)
    failed(curl(client, "POST", path % ("0" * 32), None, '{"data":{"contact":"+15551230004"}}'), 401)
    ok(curl(client, "POST", path % public, None, '{"data":{"contact":"+15551230004"}}'), 202)
    resp = curl(client, "GET", (path % public) + "?contact=%2B15551230004", None)
    failed(resp, 405, "invalid_method")
    assert resp.headers["Allow"] == "POST"


@pytest.mark.parametrize(("data", "field"), [
    ({"extension": "1000"}, "name"),
    ({"name": "x"}, "extension"),
    ({"name": "x", "extension": "1000", "colour": "red"}, "colour"),
    ({"name": "x", "extension": "1000", "music_on_hold": {"media_id": 5}}, "music_on_hold.media_id"),
    ({"name": "x", "extension": "1000", "bypass_media": "auto"}, "bypass_media"),
    ({"name": "x", "extension": "1000", "dial_first": "both"}, "dial_first"),
    ({"name": "x", "extension": "1000", "whitelist": ["("]}, "whitelist.0"),
    ({"name": "x", "extension": "1000", "custom_sip_headers": {"in": {"X-A": "1"}}}, "custom_sip_headers.in"),
    ({"name": "x", "extension": "1000", "custom_application_vars": {"bad-name": "1"}},
     "custom_application_vars.bad-name"),
    ({"name": "x", "extension": "1000", "media": {"ignore_early_media": "no"}}, "media.ignore_early_media"),
    ({"name": "x", "extension": "1000", "presence_id": "not an address"}, "presence_id"),
    ({"name": "x", "extension": "1000", "timeout": 1}, "timeout"),
    ({"name": "x", "extension": "user:" + "0" * 32}, "extension"),
])
def test_bad_resources_get_a_validation_error_naming_the_field(client: FlaskClient, acme: Account,
                                                               data: dict[str, Any], field: str) -> None:
    doc = failed(curl(client, "PUT", acme.kazoo + "/clicktocall", acme.token, json.dumps({"data": data})), 400,
                 "validation error")
    assert list(doc["data"]) == [field], doc["data"]


def test_connect_refusals(client: FlaskClient, acme: Account) -> None:
    c2c = create(client, acme, {"name": "x", "extension": "1000", "whitelist": [r"^\+1555"], "throttle": 2})["id"]
    path = "%s/clicktocall/%s/connect" % (acme.kazoo, c2c)
    doc = failed(curl(client, "GET", path + "?contact=%2B442071234567", acme.token), 400,
                 "Contact doesn't match whitelist")
    assert doc["data"] == "+442071234567"
    doc = failed(curl(client, "GET", path + "?contact=%2B15551230004&blocking=maybe", acme.token), 400)
    assert list(doc["data"]) == ["blocking"]
    doc = failed(curl(client, "POST", path, acme.token, '{"data":{"contact":"+15551230004","x":1}}'), 400)
    assert list(doc["data"]) == ["x"]
    ok(curl(client, "GET", path + "?contact=%2B15551230004", acme.token), 202)
    ok(curl(client, "GET", path + "?contact=%2B15551230004", acme.token), 202)
    resp = curl(client, "GET", path + "?contact=%2B15551230004", acme.token)
    failed(resp, 429, "too_many_requests")
    assert int(resp.headers["Retry-After"]) >= 1


def test_unknown_paths_and_methods_answer_in_the_envelope(client: FlaskClient, acme: Account) -> None:
    resp = curl(client, "POST", acme.kazoo + "/clicktocall", acme.token, "{}")
    failed(resp, 405, "invalid_method")
    assert set(resp.headers["Allow"].split(", ")) == {"GET", "PUT"}
    failed(curl(client, "GET", acme.kazoo + "/vmboxes", acme.token), 404, "bad_identifier")
    failed(curl(client, "GET", "/v2/accounts", acme.token), 404)
    # A newline in the path: no route takes it, the catch-all neither; still the envelope.
    failed(curl(client, "GET", acme.kazoo + "/users/%s/quickcall/1555%%0A" % acme.user, acme.token), 404)
    failed(curl(client, "GET", acme.kazoo + "/vm%0Aboxes", acme.token), 404)
    # Elsewhere, the native JSON.
    assert client.get("/v1/nothing%0Ahere").get_json()["error"] == "not_found"
    resp = curl(client, "PUT", acme.kazoo + "/clicktocall", acme.token, '{"data": {"name": "' + "x" * 70_000 + '"}}')
    assert failed(resp, 413)["data"]["file"]["maxSize"]


def test_every_quickcall_example(client: FlaskClient, acme: Account) -> None:
    # Non-blocking: GET /v2/accounts/{ACCOUNT_ID}/{ENDPOINTS}/{ENDPOINT_ID}/quickcall/{NUMBER}
    for kind, item, routes in (("devices", acme.device, ["user/1001"]), ("users", acme.user,
                                                                          ["user/1000", "user/1001"])):
        placed = ok(curl(client, "GET", "%s/%s/%s/quickcall/%s" % (acme.kazoo, kind, item, "+15551230002"),
                         acme.token), 202)
        assert [e["route"] for e in placed["endpoints"]] == routes
        assert placed["application_data"] == {"route": "+15551230002"}
        assert (placed["application_name"], placed["continue_on_fail"], placed["timeout"]) == ("transfer", False, 30)
        assert (placed["outbound_caller_id_name"], placed["outbound_caller_id_number"]) == (
            "Device QuickCall", "+15551230002")
        assert placed["custom_channel_vars"]["authorizing_type"] == kind[:-1]
        assert placed["custom_channel_vars"]["authorizing_id"] == item
        assert placed["ignore_early_media"] is True and placed["media"] == "process"
    # With CAVs in the query string, and every option.
    placed = ok(curl(client, "GET", "%s/devices/%s/quickcall/%s?foo=bar&cid-name=Acme&cid-number=%%2B15557770000"
                     "&auto_answer=false&ignore-early-media=false&media=bypass&timeout=20&number_filter=true"
                     % (acme.kazoo, acme.device, "555-123-0003"), acme.token), 202)
    assert placed["custom_application_vars"] == {"foo": "bar"}
    assert placed["application_data"] == {"route": "+15551230003"}
    assert (placed["outbound_callee_id_name"], placed["outbound_callee_id_number"]) == ("Acme", "+15557770000")
    assert (placed["media"], placed["timeout"], placed["ignore_early_media"]) == ("bypass", 20, False)
    assert "auto_answer" not in placed["custom_channel_vars"]
    # Blocking: POST, CAVs in the body (no worker: the wait ends, 202 with the call still queued).
    resp = curl(client, "POST", "%s/users/%s/quickcall/1002" % (acme.kazoo, acme.user), acme.token,
                '{"data":{"custom_application_vars":{"foo":"bar"}}}')
    placed = ok(resp, 202)
    assert placed["custom_application_vars"] == {"foo": "bar"}
    assert placed["application_data"] == {"route": "user/1002"} and placed["status"] == "queued"
    call = client.get("/v1/calls/" + placed["call_id"], headers={"Authorization": "Bearer " + acme.token}).get_json()
    assert (call["variables"], call["account"]) == ({"foo": "bar"}, acme.id)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/devices/{d}/quickcall/+15551230002?timeout=4", None, "timeout"),
    ("/devices/{d}/quickcall/+15551230002?media=proxy", None, "media"),
    ("/devices/{d}/quickcall/+15551230002?target_call_id=abc", None, "target_call_id"),
    ("/devices/{d}/quickcall/+15551230002?cid-number=12ab", None, "cid-number"),
    ("/devices/{d}/quickcall/+15551230002?bad-name=1", None, "custom_application_vars.bad-name"),
    ("/devices/{d}/quickcall/+881612345678", None, "number"),
    ("/devices/{d}/quickcall/call-me", None, "number"),
    ("/devices/{d}/quickcall/+15551230002", '{"data":{"auto_answer":"yes"}}', "auto_answer"),
    ("/devices/{d}/quickcall/+15551230002", '{"data":{"speed":"fast"}}', "speed"),
])
def test_bad_quickcalls_get_a_validation_error_naming_the_option(client: FlaskClient, acme: Account, path: str,
                                                                 body: str | None, field: str) -> None:
    method = "GET" if body is None else "POST"
    doc = failed(curl(client, method, acme.kazoo + path.format(d=acme.device), acme.token, body), 400)
    assert list(doc["data"]) == [field], doc["data"]


def test_quickcall_refusals(client: FlaskClient, acme: Account) -> None:
    failed(curl(client, "GET", "%s/devices/%s/quickcall/+15551230002" % (acme.kazoo, "0" * 32), acme.token), 404)
    failed(curl(client, "GET", "%s/users/%s/quickcall/+15551230002" % (acme.kazoo, acme.device), acme.token), 404)
    failed(curl(client, "GET", "%s/devices/%s/quickcall/+15551230002" % (acme.kazoo, acme.device), None), 401)
    failed(curl(client, "PUT", "%s/devices/%s/quickcall/+15551230002" % (acme.kazoo, acme.device), acme.token),
           405)
    lonely = client.post(acme.native + "/users", json={"name": "Nobody"},
                         headers={"Authorization": "Bearer " + OPERATOR}).get_json()["id"]
    doc = failed(curl(client, "GET", "%s/users/%s/quickcall/+15551230002" % (acme.kazoo, lonely), acme.token), 400)
    assert list(doc["data"]) == ["endpoints"]


def test_the_openapi_document_is_served_and_separate(client: FlaskClient) -> None:
    doc = client.get("/v2/kazoo/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["token"] == {"type": "apiKey", "in": "header",
                                                             "name": "X-Auth-Token"}
    assert set(doc["paths"]) == {
        "/v2/accounts/{account}/clicktocall", "/v2/accounts/{account}/clicktocall/{id}",
        "/v2/accounts/{account}/clicktocall/{id}/history", "/v2/accounts/{account}/clicktocall/{id}/connect",
        "/v2/accounts/{account}/{kind}/{id}/quickcall/{number}"}
    native = client.get("/v1/openapi.json").get_json()
    assert not any(p.startswith("/v2/") for p in native["paths"])


def test_the_document_describes_every_kazoo_route(app: Flask, client: FlaskClient) -> None:
    doc = client.get("/v2/kazoo/openapi.json").get_json()
    documented = {(path, method.upper()) for path, item in doc["paths"].items() for method in item
                  if method != "parameters"}
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("kazoo.") or rule.endpoint in ("kazoo.elsewhere", "kazoo.openapi"):
            continue
        path = re.sub(r"<(?:[\w()]+,?[\w]*\)?:)?(\w+)>", r"{\1}", rule.rule.replace("<any(users,devices):kind>",
                                                                                  "{kind}"))
        path = path.replace("{account_id}", "{account}").replace("{item_id}", "{id}")
        routes |= {(path, m) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    assert documented == routes


def test_a_quickcall_to_a_do_not_call_number_is_a_validation_error(client: FlaskClient, acme: Account) -> None:
    response = client.post(acme.native + "/dnc", json=["+15551230002"], headers={"Authorization": "Bearer " + OPERATOR})
    assert response.status_code == 201
    doc = failed(curl(client, "GET", "%s/users/%s/quickcall/+15551230002" % (acme.kazoo, acme.user), acme.token),
                 400)
    assert "do_not_call" in json.dumps(doc)
    ok(curl(client, "GET", "%s/users/%s/quickcall/+15551230003" % (acme.kazoo, acme.user), acme.token), 202)

"""Accounts, their endpoints and media, saved click-to-call resources and
blocking starts: the pure rules, then the API with a real Redis (the Flask
test client), each account's keys kept to their own account."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine import accounts, clicktocall
from eslengine.accounts import Directory
from eslengine.apikeys import ApiKey, KeyStore
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.http import create_app
from eslengine.http.blocking import Outcome, outcome, parse_wait, wait_for_originate
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "op-acct-7731"
AUTH = {"Authorization": "Bearer " + OPERATOR}
CONFIG = Config(allow_unvalidated_numbers=True, user_domains=frozenset({"pbx.example.com"}),
                sip_domains=(r"pbx\.example\.com",), media_url_prefixes=("https://media.example.com/",))
U1, U2, D1, D2, G1, M1 = (uuid.UUID(int=i).hex for i in range(1, 7))


# ------------------------------------------------------------------ pure: items


@pytest.mark.parametrize(("parse", "data", "field"), [
    (accounts.parse_user, {}, "name"),
    (accounts.parse_user, {"name": " padded"}, "name"),
    (accounts.parse_user, {"name": "Ann", "endpoint": "user/1000 &bridge(x)"}, "endpoint"),
    (accounts.parse_user, {"name": "Ann", "endpoint": "user/1000@evil.example.com"}, "endpoint"),
    (accounts.parse_user, {"name": "Ann", "follow_me": "user/1001"}, "follow_me"),
    (accounts.parse_user, {"name": "Ann", "ring": "loudly"}, "ring"),
    (accounts.parse_user, {"name": "Ann", "colour": "red"}, "colour"),
    (accounts.parse_device, {"name": "desk"}, "endpoint"),
    (accounts.parse_device, {"name": "desk", "endpoint": "sip:bob@other.example.com"}, "endpoint"),
    (accounts.parse_device, {"name": "desk", "endpoint": "user/1000", "owner": "bob"}, "owner"),
    (accounts.parse_group, {"name": "sales"}, "members"),
    (accounts.parse_group, {"name": "sales", "members": [{"user": U1, "device": D1}]}, "members.0"),
    (accounts.parse_group, {"name": "sales", "members": [{"endpoint": "+1900"}]}, "members.0.endpoint"),
    (accounts.parse_group, {"name": "sales", "members": [{"user": U1}], "strategy": "random"}, "strategy"),
    (accounts.parse_media, {"name": "hello"}, "file"),
    (accounts.parse_media, {"name": "hello", "file": "../../etc/passwd.wav"}, "file"),
    (accounts.parse_media, {"name": "hello", "url": "https://elsewhere.example.com/a.wav"}, "url"),
    (accounts.parse_media, {"name": "hello", "say": "hi"}, "say"),
])
def test_bad_items_are_refused_naming_the_field(parse: Any, data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse(data, CONFIG)
    assert info.value.field == field


def test_items_are_normalised() -> None:
    assert accounts.parse_user({"name": "Ann", "endpoint": "user/1000@pbx.example.com",
                                "follow_me": "+1 555 123 0009"}, CONFIG) == {
        "name": "Ann", "endpoint": "user/1000@pbx.example.com", "follow_me": "+15551230009", "ring": "simultaneous"}
    assert accounts.parse_media({"name": "welcome", "file": "ivr/ivr-welcome.wav"}, CONFIG) == {
        "name": "welcome", "file": "ivr/ivr-welcome.wav"}
    assert accounts.parse_group({"name": "sales", "members": [{"user": U1}, {"endpoint": "+15551230003"}]},
                                CONFIG)["strategy"] == "simultaneous"


def test_merge_patch_removes_on_null_and_merges_objects() -> None:
    assert accounts.merge_patch({"a": 1, "b": {"x": 1, "y": 2}, "c": 3}, {"a": None, "b": {"y": None, "z": 3}}) == {
        "b": {"x": 1, "z": 3}, "c": 3}


DIRECTORY = Directory(
    users={U1: {"name": "Ann", "endpoint": "user/1000", "follow_me": "+15551230009", "ring": "sequential"},
           U2: {"name": "Bob", "ring": "simultaneous"}},
    devices={D1: {"name": "Ann's desk", "endpoint": "sip:ann@pbx.example.com", "owner": U1},
             D2: {"name": "lobby", "endpoint": "user/1002"}},
    groups={G1: {"name": "sales", "strategy": "simultaneous",
                 "members": [{"user": U1}, {"device": D2}, {"endpoint": "+15551230003"}, {"device": D1}]}},
    media={M1: {"name": "welcome", "file": "ivr/ivr-welcome.wav"}},
)


@pytest.mark.parametrize(("reference", "destinations", "mode"), [
    ("user:" + U1, ["user/1000", "sip:ann@pbx.example.com", "+15551230009"], "sequential"),
    ("device:" + D2, ["user/1002"], "sequential"),
    ("group:" + G1, ["user/1000", "sip:ann@pbx.example.com", "+15551230009", "user/1002", "+15551230003"],
     "simultaneous"),
    ("+15551230001", ["+15551230001"], "sequential"),
])
def test_what_an_extension_rings(reference: str, destinations: list[str], mode: str) -> None:
    assert accounts.resolve_extension("extension", reference, DIRECTORY) == (destinations, mode)


@pytest.mark.parametrize("reference", ["user:" + U2, "device:" + uuid.uuid4().hex, "group:" + D1])
def test_an_extension_with_nothing_to_ring_is_refused(reference: str) -> None:
    with pytest.raises(ValidationError) as info:
        accounts.resolve_extension("extension", reference, DIRECTORY)
    assert info.value.field == "extension"


def test_user_destinations_can_leave_out_devices_or_follow_me() -> None:
    assert accounts.user_destinations(U1, DIRECTORY, devices=False) == ["+15551230009"]
    assert accounts.user_destinations(U1, DIRECTORY, follow_me=False) == ["user/1000", "sip:ann@pbx.example.com"]


def test_referrers_name_what_uses_an_item() -> None:
    c2c = Directory(**{**DIRECTORY.__dict__, "clicktocall": {"c" * 32: {"extension": "user:" + U1, "ringback": M1}}})
    assert accounts.referrers("users", U1, c2c) == ["devices/" + D1, "groups/" + G1, "clicktocall/" + "c" * 32]
    assert accounts.referrers("media", M1, c2c) == ["clicktocall/" + "c" * 32]
    assert accounts.referrers("devices", D2, c2c) == ["groups/" + G1]
    assert accounts.referrers("groups", G1, c2c) == []


def test_check_references_names_the_missing_id() -> None:
    with pytest.raises(ValidationError) as info:
        accounts.check_references("groups", {"members": [{"user": U1}, {"device": "f" * 32}]}, DIRECTORY)
    assert info.value.field == "members.1.device"
    with pytest.raises(ValidationError) as info:
        accounts.check_references("devices", {"owner": "f" * 32}, DIRECTORY)
    assert info.value.field == "owner"


# ------------------------------------------------------------------ pure: click-to-call


def resource(**fields: Any) -> dict[str, Any]:
    return clicktocall.parse_resource({"name": "Sales line", "extension": "user:" + U1, **fields}, CONFIG)


def test_a_resource_is_normalised_with_every_default() -> None:
    assert resource() == {
        "name": "Sales line", "extension": "user:" + U1, "whitelist": [], "throttle": 0, "auth_required": True,
        "allow_get_connect": False, "per_ip_per_hour": clicktocall.PUBLIC_PER_IP,
        "per_contact_per_hour": clicktocall.PUBLIC_PER_CONTACT, "dial_first": "extension", "bypass_media": False,
        "media": {"ignore_early_media": True}}


@pytest.mark.parametrize(("fields", "field"), [
    ({"extension": "user:nope"}, "extension"),
    ({"whitelist": ["(a"]}, "whitelist.0"),
    ({"whitelist": [r"(a)\1"]}, "whitelist.0"),  # back references: not RE2
    ({"whitelist": "^\\+1"}, "whitelist"),
    ({"throttle": -1}, "throttle"),
    ({"throttle": True}, "throttle"),
    ({"dial_first": "both"}, "dial_first"),
    ({"custom_sip_headers": {"in": {"X-A": "1"}}}, "custom_sip_headers.in"),
    ({"music_on_hold": {"media_id": 7}}, "music_on_hold.media_id"),
    ({"music_on_hold": {"file": "x.wav"}}, "music_on_hold.file"),
    ({"ringback": "bells"}, "ringback"),
    ({"media": {"ignore_early_media": "yes"}}, "media.ignore_early_media"),
    ({"timeout": 1}, "timeout"),
    ({"per_ip_per_hour": 0}, "per_ip_per_hour"),
    ({"unknown": 1}, "unknown"),
])
def test_bad_resources_are_refused_naming_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        resource(**fields)
    assert info.value.field == field


@pytest.mark.parametrize(("fields", "field"), [
    ({"caller_id_number": "12ab"}, "caller_id_number"),
    ({"caller_id_name": 'say "hi"'}, "caller_id_name"),
    ({"outbound_callee_id_number": "+1 555"}, "outbound_callee_id_number"),
    ({"outbound_callee_id_name": "a{b}"}, "outbound_callee_id_name"),
    ({"name": 'the "best" line'}, "name"),  # the extension's phone shows the name
    ({"custom_application_vars": {"x": "${evil}"}}, "custom_application_vars.x"),
    ({"custom_sip_headers": {"Foo": "bar"}}, "custom_sip_headers.Foo"),
    ({"presence_id": "nobody"}, "presence_id"),
    ({"bypass_media": True, "ringback": "moh"}, "ringback"),
    ({"ringback": "f" * 32}, "ringback"),
    ({"music_on_hold": {"media_id": "f" * 32}}, "music_on_hold.media_id"),
    ({"bypass_media": True, "music_on_hold": {"media_id": "moh"}}, "music_on_hold.media_id"),
])
def test_a_resource_is_checked_as_the_native_request_it_makes(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        clicktocall.check_resource(resource(**fields), DIRECTORY, CONFIG)
    assert info.value.field == field


def test_a_connect_is_a_native_request() -> None:
    doc = resource(dial_first="contact", caller_id_number="+15557770000", caller_id_name="Acme",
                   custom_application_vars={"campaign": "spring"}, custom_sip_headers={"out": {"X-Lead": "web"}},
                   ringback=M1, presence_id="1000@pbx.example.com", media={"ignore_early_media": False}, timeout=20)
    call = clicktocall.connect_request(doc, DIRECTORY, "+1 (555) 123-0004", CONFIG)
    assert call.dial_first == "b" and call.timeout == 20
    assert [str(d) for d in call.a.destinations] == ["user/1000", "sip:ann@pbx.example.com", "+15551230009"]
    assert call.a.mode == "sequential" and call.a.show_other_number and call.a.caller_id_name == "Sales line"
    assert call.a.sip_headers == (("X-Lead", "web"),) and call.a.presence_id == "1000@pbx.example.com"
    assert call.a.ignore_early_media is False
    assert [str(d) for d in call.b.destinations] == ["+15551230004"]
    assert (call.b.caller_id_number, call.b.caller_id_name) == ("+15557770000", "Acme")
    assert dict(call.variables) == {"campaign": "spring"}
    assert call.ringback is not None and call.ringback.value == "ivr/ivr-welcome.wav"
    assert call.music_on_hold is None


def test_a_resources_music_on_hold_is_the_calls() -> None:
    held = clicktocall.connect_request(resource(music_on_hold={"media_id": M1}), DIRECTORY, "+15551230004", CONFIG)
    assert held.music_on_hold is not None and held.music_on_hold.value == "ivr/ivr-welcome.wav"
    moh = clicktocall.connect_request(resource(music_on_hold={"media_id": "moh"}), DIRECTORY, "+15551230004", CONFIG)
    assert moh.music_on_hold is not None and moh.music_on_hold.kind == "tone"


def test_the_extension_sees_the_callee_id_when_one_is_set() -> None:
    call = clicktocall.connect_request(resource(outbound_callee_id_number="+15550001111",
                                                outbound_callee_id_name="Web lead"), DIRECTORY, "+15551230004", CONFIG)
    assert (call.a.caller_id_number, call.a.caller_id_name, call.a.show_other_number) == (
        "+15550001111", "Web lead", False)


@pytest.mark.parametrize(("whitelist", "contact", "ok"), [
    ([], "+15551230004", True),
    ([r"^\+1555"], "+15551230004", True),
    ([r"^\+1555"], "+445551230004", False),
    ([r"^\+44", r"^\+1555123000[0-9]$"], "+15551230004", True),
    ([r"^\+1555123000[0-3]$"], "+15551230004", False),
    # Matched as dialed: a typed number is matched in E.164.
    ([r"^\+15551230004$"], "(555) 123-0004", None),
])
def test_whitelist(whitelist: list[str], contact: str, ok: bool | None) -> None:
    doc = resource(whitelist=whitelist)
    config = dataclasses.replace(CONFIG, default_region="US")
    if ok is False:
        with pytest.raises(ValidationError) as info:
            clicktocall.connect_request(doc, DIRECTORY, contact, config)
        assert info.value.field == "contact" and "whitelist" in info.value.reason
    else:
        clicktocall.connect_request(doc, DIRECTORY, contact, config)


def test_a_whitelist_runs_in_linear_time() -> None:
    started = time.monotonic()
    assert not clicktocall.whitelisted(["(1*)1*1*1*1*1*1*1*1*1*x"], "+" + "1" * 60)
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(("contact", "reason"), [
    (None, "required"), ("", "required"), (5, "required"), ("+1" + "5" * 200, "at most"),
    ("+15551230004 &bridge(sofia/gateway/x/900)", "E.164"),
])
def test_a_bad_contact_names_contact(contact: object, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        clicktocall.connect_request(resource(), DIRECTORY, contact, CONFIG)
    assert info.value.field == "contact" and reason in info.value.reason


@pytest.mark.parametrize(("now", "index", "left"), [(0.0, 0, 60.0), (59.5, 0, 0.5), (60.0, 1, 60.0),
                                                     (125.25, 2, 54.75)])
def test_throttle_windows(now: float, index: int, left: float) -> None:
    assert clicktocall.window(now, 60) == (index, left)


def test_limits_of_a_connect() -> None:
    doc = resource(throttle=5, per_ip_per_hour=7)
    assert clicktocall.limits(doc, public=False, ip="10.0.0.1", contact="+15551230004", now=3630.0) == [
        ("rate:60", 5, 60, 30.0)]
    assert clicktocall.limits(doc, public=True, ip="10.0.0.1", contact="+15551230004", now=3630.0) == [
        ("rate:60", 5, 60, 30.0), ("ip:10.0.0.1:1", 7, 3600, 3570.0), ("contact:+15551230004:1", 3, 3600, 3570.0)]
    assert clicktocall.limits(resource(), public=False, ip="", contact="", now=0.0) == []
    counters = clicktocall.limits(doc, public=True, ip="10.0.0.1", contact="+15551230004", now=3630.0)
    assert clicktocall.retry_after([], counters) == 0.0
    assert clicktocall.retry_after([0], counters) == 30.0
    assert clicktocall.retry_after([0, 2], counters) == 3570.0


# ------------------------------------------------------------------ pure: blocking starts


@pytest.mark.parametrize(("record", "expected"), [
    ({"status": "queued"}, None),
    ({"status": "dialing"}, None),
    ({"status": "ringing", "ringing_at": "t"}, Outcome(True, "ringing")),
    ({"status": "answered", "answered_at": "t"}, Outcome(True, "answered")),
    ({"status": "failed", "ringing_at": "t", "hangup_cause": "NO_ANSWER"}, Outcome(True, "failed")),
    ({"status": "failed", "hangup_cause": "USER_BUSY"}, Outcome(False, "failed", "USER_BUSY")),
    ({"status": "cancelled", "hangup_cause": "ORIGINATOR_CANCEL"}, Outcome(False, "cancelled", "ORIGINATOR_CANCEL")),
    ({}, None),
])
def test_what_a_record_says_of_a_start(record: dict[str, str], expected: Outcome | None) -> None:
    assert outcome(record) == expected


def test_waiting_reads_until_the_record_decides_or_the_deadline() -> None:
    now = [0.0]
    records = iter([{"status": "queued"}, {"status": "dialing"}, {"status": "ringing", "ringing_at": "t"}])
    found = wait_for_originate(lambda: next(records), 5, clock=lambda: now[0],
                               sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert found == Outcome(True, "ringing") and now[0] == pytest.approx(0.2)
    now[0] = 0.0
    found = wait_for_originate(lambda: {"status": "dialing"}, 1, clock=lambda: now[0],
                               sleep=lambda s: now.__setitem__(0, now[0] + s))
    assert found == Outcome(None, "dialing") and now[0] == pytest.approx(1.0)


@pytest.mark.parametrize(("args", "expected"), [
    ({}, None), ({"wait": "originate"}, 20.0), ({"wait": "originate", "wait_timeout": "5"}, 5.0),
    ({"wait": "answer"}, "wait"), ({"wait": "originate", "wait_timeout": "0"}, "wait_timeout"),
    ({"wait": "originate", "wait_timeout": "61"}, "wait_timeout"), ({"wait_timeout": "5"}, "wait_timeout"),
    ({"wait": "originate", "wait_timeout": "٣"}, "wait_timeout"),
])
def test_parse_wait(args: dict[str, str], expected: object) -> None:
    if isinstance(expected, str):
        with pytest.raises(ValidationError) as info:
            parse_wait(args)
        assert info.value.field == expected
    else:
        assert parse_wait(args) == expected


# ------------------------------------------------------------------ the API


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> Config:
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                  allow_unvalidated_numbers=True, user_domains=frozenset({"pbx.example.com"}),
                  media_url_prefixes=("https://media.example.com/",))


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=600), max_wait=0.5)
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def make(client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    resp = client.post(path, json=body, headers=AUTH if headers is None else headers)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


class Tenant:
    """An account, a key of it, a user and a click-to-call resource."""

    def __init__(self, client: FlaskClient, name: str, **c2c: Any) -> None:
        self.account = make(client, "/v1/accounts", {"name": name})["id"]
        self.path = "/v1/accounts/" + self.account
        key = make(client, self.path + "/keys", {"name": name + " key"})
        self.key_id, self.token = key["id"], key["token"]
        self.auth = bearer(self.token)
        self.user = make(client, self.path + "/users", {"name": "Ann", "endpoint": "user/1000"}, self.auth)["id"]
        self.c2c = make(client, self.path + "/clicktocall", {"name": "Sales", "extension": "user:" + self.user,
                                                             **c2c}, self.auth)["id"]
        self.c2c_path = "%s/clicktocall/%s" % (self.path, self.c2c)


def test_accounts_are_made_by_operator_keys_and_seen_by_their_own_keys(client: FlaskClient) -> None:
    one, two = Tenant(client, "one"), Tenant(client, "two")
    listed = client.get("/v1/accounts", headers=AUTH).get_json()["accounts"]
    assert {one.account, two.account} <= {a["id"] for a in listed}
    assert [a["id"] for a in client.get("/v1/accounts", headers=one.auth).get_json()["accounts"]] == [one.account]
    assert client.post("/v1/accounts", json={"name": "mine"}, headers=one.auth).status_code == 403
    keys = client.get(one.path + "/keys", headers=one.auth).get_json()["keys"]
    assert [k["id"] for k in keys] == [one.key_id] and keys[0]["account"] == one.account
    assert "token" not in keys[0]


def test_one_accounts_key_never_sees_another_accounts_things(client: FlaskClient) -> None:
    one, two = Tenant(client, "one"), Tenant(client, "two")
    media = make(client, two.path + "/media", {"name": "hi", "file": "ivr/ivr-welcome.wav"}, two.auth)["id"]
    for method, path in [("GET", two.path), ("GET", two.path + "/users"), ("GET", two.path + "/keys"),
                         ("GET", "%s/users/%s" % (two.path, two.user)), ("GET", "%s/media/%s" % (two.path, media)),
                         ("GET", two.c2c_path), ("GET", two.c2c_path + "/history"),
                         ("PATCH", two.path), ("DELETE", "%s/users/%s" % (two.path, two.user)),
                         ("DELETE", "%s/keys/%s" % (two.path, two.key_id)),
                         ("POST", two.c2c_path + "/connect"), ("POST", two.path + "/users")]:
        resp = client.open(path, method=method, json={"contact": "+15551230004", "name": "x"}, headers=one.auth)
        assert resp.status_code == 404, (method, path, resp.get_json())
        assert resp.get_json()["reason"].startswith("no account")
    # Its own ids under its own account are no better: another account's user is no user of its.
    resp = client.get("%s/users/%s" % (one.path, two.user), headers=one.auth)
    assert resp.status_code == 404
    # A resource naming another account's user is refused.
    resp = client.post(one.path + "/clicktocall", json={"name": "x", "extension": "user:" + two.user},
                       headers=one.auth)
    assert resp.status_code == 422 and resp.get_json()["field"] == "extension"
    # Calls: a call of account two is "no call with this id" to account one's key.
    placed = client.post(two.c2c_path + "/connect", json={"contact": "+15551230004"}, headers=two.auth).get_json()
    assert client.get("/v1/calls/" + placed["id"], headers=one.auth).status_code == 404
    assert client.delete("/v1/calls/" + placed["id"], headers=one.auth).status_code == 404
    assert client.get("/v1/calls/" + placed["id"], headers=two.auth).get_json()["account"] == two.account
    assert placed["id"] not in [c["id"] for c in client.get("/v1/calls", headers=one.auth).get_json()["calls"]]
    assert placed["id"] in [c["id"] for c in client.get("/v1/calls", headers=two.auth).get_json()["calls"]]


def test_an_account_key_sees_every_call_of_its_account(client: FlaskClient) -> None:
    one = Tenant(client, "one")
    second = make(client, one.path + "/keys", {"name": "second", "scopes": ["place", "read"]}, one.auth)
    resp = client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=bearer(second["token"]))
    assert resp.status_code == 202
    call_id = resp.get_json()["id"]
    doc = client.get("/v1/calls/" + call_id, headers=one.auth).get_json()
    assert (doc["account"], doc["key"]) == (one.account, second["id"])
    assert call_id in [c["id"] for c in client.get("/v1/calls", headers=one.auth).get_json()["calls"]]


def test_an_account_key_makes_keys_with_its_own_scopes_at_most(client: FlaskClient) -> None:
    one = Tenant(client, "one")
    reader = make(client, one.path + "/keys", {"name": "reader", "scopes": ["read"]}, one.auth)
    resp = client.post(one.path + "/keys", json={"name": "escalate", "scopes": ["place"]},
                       headers=bearer(reader["token"]))
    assert resp.status_code == 403  # reader lacks manage
    for body, field in [({"name": "x", "scopes": ["admin"]}, "scopes"), ({"name": "x{"}, "name"),
                        ({"name": "x", "caller_ids": ["abc"]}, "caller_ids"),
                        ({"name": "x", "rate_per_minute": -1}, "rate_per_minute")]:
        resp = client.post(one.path + "/keys", json=body, headers=AUTH)
        assert resp.status_code == 422 and resp.get_json()["field"] == field
    assert client.delete("%s/keys/%s" % (one.path, reader["id"]), headers=one.auth).status_code == 204
    assert client.delete("%s/keys/%s" % (one.path, reader["id"]), headers=one.auth).status_code == 404


def test_items_are_created_listed_fetched_changed_patched_and_deleted(client: FlaskClient) -> None:
    one = Tenant(client, "one")
    path = one.path + "/devices"
    device = make(client, path, {"name": "desk", "endpoint": "user/1001", "owner": one.user}, one.auth)
    item = "%s/%s" % (path, device["id"])
    assert client.get(item, headers=one.auth).get_json() == device
    assert [d["id"] for d in client.get(path, headers=one.auth).get_json()["items"]] == [device["id"]]
    replaced = client.put(item, json={"name": "desk 2", "endpoint": "user/1003"}, headers=one.auth).get_json()
    assert (replaced["name"], replaced["endpoint"], "owner" in replaced) == ("desk 2", "user/1003", False)
    assert replaced["created_at"] == device["created_at"]
    # A document as fetched may be sent back.
    assert client.post(item, json=replaced, headers=one.auth).status_code == 200
    patched = client.patch(item, json={"owner": one.user}, headers=one.auth).get_json()
    assert (patched["name"], patched["owner"]) == ("desk 2", one.user)
    resp = client.patch(item, json={"endpoint": "+1900 5551234 &x"}, headers=one.auth)
    assert resp.status_code == 422 and resp.get_json()["field"] == "endpoint"
    resp = client.patch(item, json={"id": "f" * 32}, headers=one.auth)
    assert resp.status_code == 422 and resp.get_json()["field"] == "id"
    # The user is named by the device and the click-to-call: it stays.
    resp = client.delete("%s/users/%s" % (one.path, one.user), headers=one.auth)
    assert resp.status_code == 409 and "devices/" + device["id"] in resp.get_json()["reason"]
    assert client.delete(item, headers=one.auth).status_code == 204
    assert client.get(item, headers=one.auth).status_code == 404
    assert client.get(path + "/not-an-id", headers=one.auth).status_code == 404


def test_a_key_without_manage_reads_but_does_not_change(client: FlaskClient) -> None:
    one = Tenant(client, "one")
    reader = bearer(make(client, one.path + "/keys", {"name": "reader", "scopes": ["read"]}, one.auth)["token"])
    assert client.get(one.path + "/users", headers=reader).status_code == 200
    assert client.post(one.path + "/users", json={"name": "x"}, headers=reader).status_code == 403
    assert client.post(one.c2c_path + "/connect", json={"contact": "+15551230004"}, headers=reader).status_code == 403


def test_a_connect_places_the_saved_call_and_its_history_shows_it(client: FlaskClient, app: Flask) -> None:
    one = Tenant(client, "one", caller_id_number="+15557770000", whitelist=[r"^\+1555"])
    resp = client.post(one.c2c_path + "/connect", json={"contact": "+1 555 123 0004"}, headers=one.auth)
    assert resp.status_code == 202, resp.get_json()
    placed = resp.get_json()
    assert (placed["status"], placed["contact"], placed["a"], placed["b"]) == (
        "queued", "+15551230004", ["user/1000"], ["+15551230004"])
    assert resp.headers["Location"] == "/v1/calls/" + placed["id"]
    call = client.get("/v1/calls/" + placed["id"], headers=one.auth).get_json()
    assert call["request"]["b"] == {"to": "+15551230004", "caller_id_number": "+15557770000"}
    assert (call["account"], call["key"]) == (one.account, one.key_id)
    # A GET with a key connects too.
    resp = client.get(one.c2c_path + "/connect?contact=%2B15551230005", headers=one.auth)
    assert resp.status_code == 202
    history = client.get(one.c2c_path + "/history", headers=one.auth).get_json()
    assert [c["id"] for c in history["connects"]] == [resp.get_json()["id"], placed["id"]]
    assert history["connects"][1]["contact"] == "+15551230004" and history["connects"][1]["status"] == "queued"
    assert "created" in history["connects"][1]["timestamps"] and history["next_cursor"] is None
    page = client.get(one.c2c_path + "/history?limit=1", headers=one.auth).get_json()
    assert len(page["connects"]) == 1 and page["next_cursor"]
    rest = client.get(one.c2c_path + "/history?limit=1&cursor=" + page["next_cursor"], headers=one.auth).get_json()
    assert [c["id"] for c in rest["connects"]] == [placed["id"]]
    resp = client.post(one.c2c_path + "/connect", json={"contact": "+445551230004"}, headers=one.auth)
    assert resp.status_code == 422 and resp.get_json()["field"] == "contact"
    resp = client.post(one.c2c_path + "/connect", json={"contact": "+15551230004", "x": 1}, headers=one.auth)
    assert resp.status_code == 422 and resp.get_json()["field"] == "x"
    # Deleting the resource forgets its history.
    assert client.delete(one.c2c_path, headers=one.auth).status_code == 204
    assert client.get(one.c2c_path + "/history", headers=one.auth).status_code == 404


def test_throttle_is_enforced_per_resource(client: FlaskClient) -> None:
    one = Tenant(client, "one", throttle=2)
    other = make(client, one.path + "/clicktocall", {"name": "other", "extension": "+15551230001"}, one.auth)["id"]
    codes = [client.post(one.c2c_path + "/connect", json={"contact": "+1555123000%d" % i},
                         headers=one.auth).status_code for i in range(3)]
    assert codes == [202, 202, 429]
    resp = client.post(one.c2c_path + "/connect", json={"contact": "+15551230009"}, headers=one.auth)
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    # Invalid connects are not counted, and other resources have their own.
    assert client.post("%s/clicktocall/%s/connect" % (one.path, other), json={"contact": "+15551230004"},
                       headers=one.auth).status_code == 202


def test_a_public_resource_connects_without_a_key_by_post_within_its_limits(client: FlaskClient) -> None:
    one = Tenant(client, "one", auth_required=False, per_contact_per_hour=2, per_ip_per_hour=3)
    url = one.c2c_path + "/connect"
    assert client.post(url, json={"contact": "+15551230004"}).status_code == 202
    resp = client.get(url + "?contact=%2B15551230004")
    assert resp.status_code == 405 and resp.headers["Allow"] == "POST"
    assert client.post(url, json={"contact": "+15551230004"}).status_code == 202
    resp = client.post(url, json={"contact": "+15551230004"})
    # Per contact, a fixed hour: until the hour ends (under a minute just before it).
    assert resp.status_code == 429 and 0 < int(resp.headers["Retry-After"]) <= 3600
    assert client.post(url, json={"contact": "+15551230005"}).status_code == 202
    assert client.post(url, json={"contact": "+15551230006"}).status_code == 429  # per address
    assert client.post(url, json={"contact": "+15551230006"}, environ_base={
        "REMOTE_ADDR": "192.0.2.9"}).status_code == 202
    # A wrong key is refused, not taken for none.
    assert client.post(url, json={"contact": "+15551230007"}, headers=bearer("esk_wrong")).status_code == 401
    # The calls belong to the account, to no key.
    history = client.get(one.c2c_path + "/history", headers=one.auth).get_json()["connects"]
    assert len(history) == 4 and all("key" not in c for c in history)


def test_a_resource_needing_a_key_and_a_missing_one_answer_alike_without_a_key(client: FlaskClient) -> None:
    one = Tenant(client, "one")
    missing = "%s/clicktocall/%s/connect" % (one.path, "f" * 32)
    for url in (one.c2c_path + "/connect", missing, "/v1/accounts/nope/clicktocall/x/connect"):
        resp = client.post(url, json={"contact": "+15551230004"})
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"


def test_public_get_connects_when_the_resource_allows_them(client: FlaskClient) -> None:
    one = Tenant(client, "one", auth_required=False, allow_get_connect=True)
    assert client.get(one.c2c_path + "/connect?contact=%2B15551230004").status_code == 202


def test_deleting_an_account_deletes_what_it_holds_and_its_keys(client: FlaskClient, app: Flask) -> None:
    one = Tenant(client, "one")
    assert client.delete(one.path, headers=one.auth).status_code == 403
    assert client.delete(one.path, headers=AUTH).status_code == 204
    assert client.get(one.path, headers=AUTH).status_code == 404
    assert client.get(one.path + "/users", headers=AUTH).status_code == 404
    store = app.extensions["eslengine.keys"]
    assert isinstance(store, KeyStore) and store.get(one.key_id) is None


def test_blocking_connect_waits_for_the_first_partys_channel(client: FlaskClient, app: Flask) -> None:
    """The worker's part is played by writing the record as a worker would."""
    import gevent

    one = Tenant(client, "one")
    queue = app.extensions["eslengine"]

    def ring_then_fail(cause: str, ring: bool) -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ids = queue.redis.zrange(queue.keys.index("account:" + one.account), 0, -1)
            fresh = [i for i in ids if queue.record(i).get("status") == "queued"]
            if fresh:
                if ring:
                    queue.transition(fresh[0], "dialing")
                    queue.transition(fresh[0], "ringing")
                else:
                    queue.transition(fresh[0], "failed", {"hangup_cause": cause})
                return
            gevent.sleep(0.01)

    helper = gevent.spawn(ring_then_fail, "", True)
    resp = client.post(one.c2c_path + "/connect?wait=originate", json={"contact": "+15551230004"}, headers=one.auth)
    helper.join()
    assert resp.status_code == 202 and resp.get_json()["status"] == "ringing"
    helper = gevent.spawn(ring_then_fail, "USER_BUSY", False)
    resp = client.post("/v1/calls?wait=originate&wait_timeout=5", json={"a": "+15551230001", "b": "user/1000"},
                       headers=one.auth)
    helper.join()
    assert resp.status_code == 502
    assert resp.get_json()["hangup_cause"] == "USER_BUSY" and resp.get_json()["status"] == "failed"
    # Nobody moves it: the deadline (the app's max_wait) answers with the status it has.
    resp = client.post("/v1/calls?wait=originate", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH)
    assert resp.status_code == 202 and resp.get_json()["status"] == "queued"
    resp = client.post("/v1/calls?wait=soon", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH)
    assert resp.status_code == 400 and resp.get_json()["field"] == "wait"


def test_an_account_less_client_key_works_as_before(client: FlaskClient, app: Flask) -> None:
    store = app.extensions["eslengine.keys"]
    key, token = store.create("plain")
    assert key.account == ""
    resp = client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=bearer(token))
    assert resp.status_code == 202
    doc = client.get("/v1/calls/" + resp.get_json()["id"], headers=bearer(token)).get_json()
    assert doc["key"] == key.id and "account" not in doc
    assert client.get("/v1/accounts", headers=bearer(token)).get_json() == {"accounts": []}
    one = Tenant(client, "one")
    assert client.get(one.path, headers=bearer(token)).status_code == 404


def test_the_key_store_keeps_an_accounts_keys_apart(app: Flask) -> None:
    store = app.extensions["eslengine.keys"]
    key, _ = store.create("acct key", account="a" * 32)
    store.create("plain")
    assert [k.id for k in store.list("a" * 32)] == [key.id]
    assert all(k.account == "" for k in store.list(""))
    assert ApiKey(id="k", account="a" * 32, scopes=frozenset({"read"})).sees_account("a" * 32)
    assert not ApiKey(id="k", account="a" * 32, scopes=frozenset({"read"})).sees_account("b" * 32)
    from eslengine.errors import ConfigError

    with pytest.raises(ConfigError):
        store.create("admin of an account", ("admin",), account="a" * 32)


def test_stored_documents_are_json(app: Flask, client: FlaskClient) -> None:
    one = Tenant(client, "one")
    accounts = app.extensions["eslengine.accounts"]
    raw = app.extensions["eslengine"].redis.hget(accounts.keys.account_items(one.account, "users"), one.user)
    assert json.loads(raw)["endpoint"] == "user/1000"


# ------------------------------------------------------------------ the CLI


def _cli(args: list[str], redis_url: str, prefix: str) -> Any:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "ESLENGINE_REDIS_URL": redis_url, "ESLENGINE_KEY_PREFIX": prefix,
           "ESLENGINE_ALLOW_UNVALIDATED_NUMBERS": "1"}
    return subprocess.run([sys.executable, "-m", "eslengine", "accounts", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_cli_manages_accounts_as_the_api_does(redis_server: Any, key_prefix: str, app: Flask) -> None:
    url = redis_server.url
    made = _cli(["create", "--name", "Acme"], url, key_prefix)
    assert made.returncode == 0, made.stderr
    account = made.stdout.strip()
    assert _cli(["list"], url, key_prefix).stdout.split("\t")[:2] == [account, "Acme"]
    key = _cli(["key", account, "--name", "site", "--scopes", "place,read"], url, key_prefix)
    key_id, token = key.stdout.strip().split("\t")
    assert key_id in _cli(["keys", account], url, key_prefix).stdout
    user = _cli(["add", account, "users", '{"name": "Ann", "endpoint": "user/1000"}'], url, key_prefix)
    assert user.returncode == 0, user.stderr
    user_id = user.stdout.strip()
    c2c = _cli(["add", account, "clicktocall", json.dumps({"name": "line", "extension": "user:" + user_id})],
               url, key_prefix)
    assert c2c.returncode == 0, c2c.stderr
    bad = _cli(["add", account, "clicktocall", '{"name": "line", "extension": "user:%s"}' % ("f" * 32)],
               url, key_prefix)
    assert bad.returncode == 2 and "extension: no user" in bad.stderr and bad.stderr.count("\n") == 1
    assert _cli(["set", account, "users", user_id, '{"name": "Ann B", "endpoint": "user/1001"}'], url,
                key_prefix).returncode == 0
    items = [json.loads(line) for line in _cli(["items", account, "users"], url, key_prefix).stdout.splitlines()]
    assert [(i["id"], i["name"], i["endpoint"]) for i in items] == [(user_id, "Ann B", "user/1001")]
    refused = _cli(["remove", account, "users", user_id], url, key_prefix)
    assert refused.returncode == 1 and "clicktocall/" in refused.stderr
    # What the CLI made, the API serves to the account's key.
    client = app.test_client()
    resp = client.post("/v1/accounts/%s/clicktocall/%s/connect" % (account, c2c.stdout.strip()),
                       json={"contact": "+15551230004"}, headers=bearer(token))
    assert resp.status_code == 202, resp.get_json()
    assert _cli(["delete", account], url, key_prefix).returncode == 0
    assert _cli(["keys", account], url, key_prefix).returncode == 1


def test_a_key_with_a_caller_id_list_connects_only_resources_presenting_listed_numbers(client: FlaskClient) -> None:
    one = Tenant(client, "one")
    limited = bearer(make(client, one.path + "/keys", {"name": "limited", "caller_ids": ["+15557770002", "+1555777*"]},
                          one.auth)["token"])
    resp = client.post(one.c2c_path + "/connect", json={"contact": "+15551230004"}, headers=limited)
    assert resp.status_code == 422 and resp.get_json()["field"] == "outbound_callee_id_number"
    assert client.patch(one.c2c_path, json={"outbound_callee_id_number": "+15557770001",
                                            "caller_id_number": "+15550000000"}, headers=one.auth).status_code == 200
    resp = client.post(one.c2c_path + "/connect", json={"contact": "+15551230004"}, headers=limited)
    assert resp.status_code == 422 and resp.get_json()["field"] == "caller_id_number"
    assert client.patch(one.c2c_path, json={"caller_id_number": "+15557770002"}, headers=one.auth).status_code == 200
    assert client.post(one.c2c_path + "/connect", json={"contact": "+15551230004"}, headers=limited).status_code == 202

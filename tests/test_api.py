"""The HTTP API against a real Redis (the suite's private redis-server)."""

from __future__ import annotations

import dataclasses
import http.client
import io
import json
import logging
import os
import queue as stdlib_queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from eslengine import calls
from eslengine.config import Config, Node
from eslengine.errors import ConfigError
from eslengine.http import MAX_BODY, authorized, create_app, openapi_document, serve
from eslengine.http.fast_intake import FastIntake
from eslengine.store import JobQueue, Keys, connect

KEY = "k-3f9a1c0e7d5b"
OTHER_KEY = "k-other-8842"
AUTH = {"Authorization": "Bearer " + KEY}
VALID = {"a": "+15551230001", "b": "user/1000"}


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> Config:
    # The suite dials the fictional 555-01xx range, which libphonenumber does not validate.
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY, OTHER_KEY}),
                  allow_unvalidated_numbers=True)


@pytest.fixture
def queue(config: Config) -> Iterator[JobQueue]:
    client = connect(config.redis_url)
    yield JobQueue(client, Keys(config.key_prefix), record_ttl=config.record_ttl)
    client.close()


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def app(request: pytest.FixtureRequest, config: Config, queue: JobQueue) -> Flask:
    """Every test of the app runs twice: Flask alone, and with the fast
    path for POST /v1/calls that ``serve`` puts in front of it."""
    return create_app(config, queue, fast_intake=request.param)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, body: object, headers: dict[str, str] | None = None) -> Any:
    return client.post("/v1/calls", json=body, headers=AUTH if headers is None else headers)


def place(client: FlaskClient, **fields: object) -> str:
    resp = post(client, {**VALID, **fields})
    assert resp.status_code == 202, resp.get_json()
    return str(resp.get_json()["id"])


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ POST


def test_post_queues_the_job_in_the_stream_and_records_it(
    client: FlaskClient, redis_client: redis.Redis, key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = {**VALID, "caller_id_number": "+15550000000", "caller_id_name": "Sales Desk", "timeout": 25,
            "variables": {"campaign": "spring 2024", "attempt": 2, "vip": True}}
    with caplog.at_level(logging.DEBUG, logger="eslengine.http"):
        resp = post(client, body)

    assert resp.status_code == 202
    data = resp.get_json()
    job_id = data["id"]
    assert str(uuid.UUID(job_id)) == job_id
    assert data == {"id": job_id, "status": "queued", "a": ["+15551230001"], "b": ["user/1000"]}
    assert resp.headers["Location"] == "/v1/calls/%s" % job_id

    entries = redis_client.xrange(Keys(key_prefix).jobs)
    assert len(entries) == 1
    job = json.loads(entries[0][1]["job"])
    assert job == {"id": job_id, "a": "+15551230001", "b": "user/1000", "timeout": 25,
                   "caller_id_number": "+15550000000", "caller_id_name": "Sales Desk",
                   "variables": {"campaign": "spring 2024", "attempt": "2", "vip": "true"},
                   "retry": {"attempts": 1, "backoff": 60, "on": ["busy", "no_answer", "temporary"]}}
    record = redis_client.hgetall(Keys(key_prefix).call(job_id))
    assert record["status"] == "queued"
    assert record["a"] == "+15551230001" and record["b"] == "user/1000"
    assert [r.getMessage() for r in caplog.records if job_id in r.getMessage()] != []


def test_post_keeps_a_client_supplied_id_in_canonical_form(client: FlaskClient, redis_client: redis.Redis,
                                                            key_prefix: str) -> None:
    mine = uuid.uuid4()
    resp = post(client, {**VALID, "id": str(mine).upper()})
    assert resp.status_code == 202
    assert resp.get_json()["id"] == str(mine)
    assert resp.headers["Location"] == "/v1/calls/%s" % mine
    assert redis_client.hget(Keys(key_prefix).call(mine), "status") == "queued"


def test_duplicate_id_is_409_and_not_queued_twice(client: FlaskClient, redis_client: redis.Redis,
                                                  key_prefix: str) -> None:
    mine = str(uuid.uuid4())
    assert post(client, {**VALID, "id": mine}).status_code == 202
    for again in (mine, mine.upper()):
        resp = post(client, {**VALID, "id": again})
        assert resp.status_code == 409
        assert resp.get_json() == {"error": "conflict", "field": "id", "id": mine,
                                   "reason": "a call with this id already exists"}
    assert redis_client.xlen(Keys(key_prefix).jobs) == 1


# ------------------------------------------------------------------ GET


def test_get_returns_the_call_document(client: FlaskClient) -> None:
    job_id = place(client, caller_id_name="Support", variables={"ticket": "T-1"})
    resp = client.get("/v1/calls/%s" % job_id, headers=AUTH)
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["id"] == job_id
    assert doc["status"] == "queued"
    assert (doc["a"], doc["b"]) == ("+15551230001", "user/1000")
    assert doc["caller_id_name"] == "Support" and doc["caller_id_number"] is None
    assert doc["timeout"] == 30
    assert doc["variables"] == {"ticket": "T-1"}
    assert doc["attempts"] == 0
    assert set(doc["timestamps"]) == {"created", "queued", "updated"}
    assert [h["status"] for h in doc["history"]] == ["queued"]
    assert doc["durations"] == {}


def test_get_accepts_an_uppercase_id(client: FlaskClient) -> None:
    job_id = place(client)
    resp = client.get("/v1/calls/%s" % job_id.upper(), headers=AUTH)
    assert resp.status_code == 200 and resp.get_json()["id"] == job_id


@pytest.mark.parametrize("path", ["/v1/calls/%s" % uuid.uuid4(), "/v1/calls/not-a-uuid", "/v1/calls/%20",
                                  "/v1/calls/..", "/v1/nothing", "/nothing"])
def test_unknown_is_404_json(client: FlaskClient, path: str) -> None:
    resp = client.get(path, headers=AUTH)
    assert resp.status_code == 404
    assert resp.is_json and resp.get_json()["error"] == "not_found"


# ------------------------------------------------------------------ DELETE


def test_delete_queued_cancels_it(client: FlaskClient, queue: JobQueue, redis_client: redis.Redis,
                                  key_prefix: str) -> None:
    job_id = place(client)
    resp = client.delete("/v1/calls/%s" % job_id, headers=AUTH)
    assert resp.status_code == 200
    assert resp.get_json() == {"id": job_id, "status": "cancelled"}
    # No worker exists: the API itself made it final.
    assert redis_client.hget(Keys(key_prefix).call(job_id), "status") == "cancelled"
    doc = client.get("/v1/calls/%s" % job_id, headers=AUTH).get_json()
    assert doc["status"] == "cancelled"
    assert [h["status"] for h in doc["history"]] == ["queued", "cancelled"]
    # Cancelling again: already final.
    again = client.delete("/v1/calls/%s" % job_id, headers=AUTH)
    assert again.status_code == 409
    assert again.get_json()["status"] == "cancelled"


def test_delete_live_call_asks_a_worker_to_hang_up(client: FlaskClient, queue: JobQueue,
                                                   redis_client: redis.Redis, key_prefix: str) -> None:
    job_id = place(client)
    assert queue.transition(job_id, "dialing") and queue.transition(job_id, "ringing")
    pubsub = redis_client.pubsub()
    pubsub.subscribe(Keys(key_prefix).cancel)
    try:
        deadline = time.monotonic() + 5
        while pubsub.get_message(timeout=0.5) is None:  # the subscribe confirmation
            assert time.monotonic() < deadline
        resp = client.delete("/v1/calls/%s" % job_id, headers=AUTH)
        assert resp.status_code == 202
        assert resp.get_json() == {"id": job_id, "status": "ringing", "cancel": "requested"}
        message = None
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        assert message is not None and message["data"] == job_id
    finally:
        pubsub.close()
    # Still ringing until the worker hangs up.
    assert redis_client.hget(Keys(key_prefix).call(job_id), "status") == "ringing"


@pytest.mark.parametrize("final", ["completed", "failed"])
def test_delete_of_a_finished_call_is_409(client: FlaskClient, queue: JobQueue, final: str) -> None:
    job_id = place(client)
    assert queue.transition(job_id, final)
    resp = client.delete("/v1/calls/%s" % job_id, headers=AUTH)
    assert resp.status_code == 409
    assert resp.get_json() == {"error": "conflict", "id": job_id, "status": final,
                               "reason": "the call is already %s" % final}


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "nope"])
def test_delete_missing_is_404(client: FlaskClient, job_id: str) -> None:
    resp = client.delete("/v1/calls/%s" % job_id, headers=AUTH)
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer " + KEY + "x"},
        {"Authorization": "Bearer " + KEY[:-1]},
        {"Authorization": "Basic " + KEY},
        {"Authorization": KEY},
        {"Authorization": "Bearer " + KEY + " " + KEY},
        {"Authorization": "Bearer \xe9\xff"},
    ],
    ids=lambda h: repr(h.get("Authorization")),
)
@pytest.mark.parametrize("method,path", [("POST", "/v1/calls"), ("GET", "/v1/calls/%s" % uuid.uuid4()),
                                         ("DELETE", "/v1/calls/%s" % uuid.uuid4())])
def test_missing_or_wrong_key_is_401(client: FlaskClient, redis_client: redis.Redis, key_prefix: str,
                                     headers: dict[str, str], method: str, path: str) -> None:
    resp = client.open(path, method=method, json=VALID, headers=headers)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.get_json()["error"] == "unauthorized"
    assert redis_client.exists(Keys(key_prefix).jobs) == 0


@pytest.mark.parametrize("header", ["Bearer " + KEY, "bearer " + KEY, "Bearer " + OTHER_KEY, "  Bearer   %s " % KEY])
def test_any_configured_key_is_accepted(client: FlaskClient, header: str) -> None:
    assert post(client, VALID, {"Authorization": header}).status_code == 202


def test_authorized_compares_whole_keys() -> None:
    keys = frozenset({"abc", "def"})
    assert authorized("Bearer abc", keys) and authorized("Bearer def", keys)
    for header in (None, "", "Bearer ab", "Bearer abcd", "Bearer ABC", "Token abc", "Bearer \ud800"):
        assert not authorized(header, keys)
    assert not authorized("Bearer abc", frozenset())


def test_no_keys_refuses_to_create_the_app(config: Config, queue: JobQueue) -> None:
    open_config = Config(redis_url=config.redis_url, key_prefix=config.key_prefix, allow_unvalidated_numbers=True)
    with pytest.raises(ConfigError):
        create_app(open_config, queue)
    with pytest.raises(ConfigError):
        serve(open_config, "127.0.0.1:0")
    demo = create_app(open_config, queue, allow_no_auth=True).test_client()
    assert demo.post("/v1/calls", json=VALID).status_code == 202
    assert "security" not in demo.get("/v1/openapi.json").get_json()


# ------------------------------------------------------------------ 400 / 413 / 422


@pytest.mark.parametrize(
    "data,content_type,reason",
    [
        (b'{"a": "+15551230001",', "application/json", "is not valid JSON"),
        (b"", "application/json", "is not valid JSON"),
        (b"[]", "application/json", "must be a JSON object"),
        (b'[{"a": "+15551230001", "b": "user/1000"}]', "application/json", "must be a JSON object"),
        (b'"text"', "application/json", "must be a JSON object"),
        (b"null", "application/json", "must be a JSON object"),
        (b"42", "application/json", "must be a JSON object"),
        (b'{"a": NaN}', "application/json", "is not valid JSON"),
        (b'{"timeout": Infinity}', "application/json", "is not valid JSON"),
        (b'{"a": "\xff\xfe"}', "application/json", "is not UTF-8"),
        (b"\xef\xbb\xbf{}", "application/json", "is not valid JSON"),
        (b'{"a": "\\ud800"}', "application/json", "is not valid JSON"),  # a lone surrogate is not text
        (b'{"timeout": 1e400}', "application/json", "is not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "is nested too deeply"),
        (b'{"timeout": 1' + b"0" * 5000 + b"}", "application/json", "is not valid JSON"),
        (json.dumps(VALID).encode(), "text/plain", "Content-Type must be application/json"),
        (json.dumps(VALID).encode(), "application/x-www-form-urlencoded", "Content-Type must be application/json"),
        (json.dumps(VALID).encode(), "", "Content-Type must be application/json"),
    ],
)
def test_body_that_is_not_a_json_object_is_400(client: FlaskClient, redis_client: redis.Redis, key_prefix: str,
                                               data: bytes, content_type: str, reason: str) -> None:
    resp = client.post("/v1/calls", data=data, headers={**AUTH, "Content-Type": content_type})
    assert resp.status_code == 400
    body = resp.get_json()
    assert (body["error"], body["field"]) == ("bad_request", "body")
    assert body["reason"].startswith(reason)
    assert redis_client.exists(Keys(key_prefix).jobs) == 0


def test_body_over_64_kib_is_413(client: FlaskClient, redis_client: redis.Redis, key_prefix: str) -> None:
    def body(size: int) -> bytes:
        head = b'{"a": "+15551230001", "b": "user/1000", "caller_id_name": "'
        return head + b"x" * (size - len(head) - 2) + b'"}'

    resp = client.post("/v1/calls", data=body(MAX_BODY + 1), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.is_json and resp.get_json()["error"] == "request_entity_too_large"
    # At the limit the body is read and judged on its content.
    resp = client.post("/v1/calls", data=body(MAX_BODY), headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 422 and resp.get_json()["field"] == "caller_id_name"
    assert redis_client.exists(Keys(key_prefix).jobs) == 0


@pytest.mark.parametrize(
    "change,field",
    [
        ({"a": None}, "a"),
        ({"a": ""}, "a"),
        ({"a": 15551230001}, "a"),
        ({"a": "15551230001"}, "a"),
        ({"a": "+0551230001"}, "a"),
        ({"a": "+123456"}, "a"),  # E.164: too short
        ({"a": "+1234567890123456"}, "a"),  # E.164: too long
        ({"b": "sofia/gateway/x/123"}, "b"),
        ({"b": "user/1000 &park()"}, "b"),
        ({"b": "user/"}, "b"),
        ({"b": []}, "b"),
        ({"b": "+1555123000\n1"}, "b"),
        ({"c": "x"}, "c"),
        ({"callback_url": "http://x"}, "callback_url"),
        ({"timeout": 4}, "timeout"),
        ({"timeout": 121}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "30"}, "timeout"),
        ({"timeout": 30.5}, "timeout"),
        ({"caller_id_number": "12ab"}, "caller_id_number"),
        ({"caller_id_number": ""}, "caller_id_number"),
        ({"caller_id_number": 5551234}, "caller_id_number"),
        ({"caller_id_name": "Sales\nDesk"}, "caller_id_name"),
        ({"caller_id_name": "Sales\x00"}, "caller_id_name"),
        ({"caller_id_name": "Sales\x1b[0m"}, "caller_id_name"),
        ({"caller_id_name": "Sales\u200bDesk"}, "caller_id_name"),
        ({"caller_id_name": "x" * 65}, "caller_id_name"),
        ({"caller_id_name": "a}b"}, "caller_id_name"),
        ({"variables": []}, "variables"),
        ({"variables": "a=b"}, "variables"),
        ({"variables": {"": "x"}}, "variables."),
        ({"variables": {"1abc": "x"}}, "variables.1abc"),
        ({"variables": {"my-var": "x"}}, "variables.my-var"),
        ({"variables": {"a b": "x"}}, "variables.a b"),
        ({"variables": {"x" * 33: "x"}}, "variables." + "x" * 33),
        ({"variables": {"ok": "line\nbreak"}}, "variables.ok"),
        ({"variables": {"ok": "cr\rlf"}}, "variables.ok"),
        ({"variables": {"ok": "{x}"}}, "variables.ok"),
        ({"variables": {"ok": "a{"}}, "variables.ok"),
        ({"variables": {"ok": "${sip_h_X}"}}, "variables.ok"),
        ({"variables": {"ok": "$${domain}"}}, "variables.ok"),
        ({"variables": {"ok": "x" * 257}}, "variables.ok"),
        ({"variables": {"ok": None}}, "variables.ok"),
        ({"variables": {"ok": ["x"]}}, "variables.ok"),
        ({"variables": {"ok": {"x": 1}}}, "variables.ok"),
        ({"variables": {"v%d" % i: "x" for i in range(33)}}, "variables"),
        ({"id": "not-a-uuid"}, "id"),
        ({"id": 12}, "id"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client: FlaskClient, redis_client: redis.Redis, key_prefix: str,
                                                 change: dict[str, object], field: str) -> None:
    resp = post(client, {**VALID, **change})
    assert resp.status_code == 422, resp.get_json()
    body = resp.get_json()
    assert body["error"] == "invalid"
    assert body["field"] == field
    assert body["reason"]
    assert redis_client.exists(Keys(key_prefix).jobs) == 0


def test_missing_destinations_are_422(client: FlaskClient) -> None:
    assert post(client, {"b": "user/1000"}).get_json()["field"] == "a"
    assert post(client, {"a": "user/1000"}).get_json()["field"] == "b"
    assert post(client, {}).status_code == 422


def test_limits_come_from_the_config(redis_server: Any, key_prefix: str, queue: JobQueue) -> None:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY}),
                    max_ring_timeout=60, max_variables=2, blocked_prefixes=("+1900",), allow_unvalidated_numbers=True)
    client = create_app(config, queue).test_client()
    assert post(client, {**VALID, "timeout": 60}).status_code == 202
    assert post(client, {**VALID, "timeout": 61}).get_json()["field"] == "timeout"
    assert post(client, {**VALID, "variables": {"x": 1, "y": 2, "z": 3}}).get_json()["field"] == "variables"
    assert post(client, {**VALID, "b": "+19005550100"}).get_json()["field"] == "b"
    doc = client.get("/v1/openapi.json").get_json()
    props = doc["components"]["schemas"]["CallRequest"]["properties"]
    assert props["timeout"]["maximum"] == 60 and props["variables"]["maxProperties"] == 2


# ------------------------------------------------------------------ other HTTP errors


@pytest.mark.parametrize("method,path,allowed", [
    ("PUT", "/v1/calls/%s" % uuid.uuid4(), {"GET", "DELETE"}),
    ("PUT", "/v1/calls", {"GET", "POST"}),
    ("DELETE", "/v1/calls", {"GET", "POST"}),
    ("POST", "/healthz", {"GET"}),
])
def test_wrong_method_is_405_json(client: FlaskClient, method: str, path: str, allowed: set[str]) -> None:
    resp = client.open(path, method=method, headers=AUTH)
    assert resp.status_code == 405
    assert resp.is_json and resp.get_json()["error"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in resp.headers["Allow"].split(",")}


def test_an_unexpected_exception_is_500_json_and_logged(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> str:
        raise KeyError("boom")

    app.add_url_rule("/broken", view_func=broken)
    with caplog.at_level(logging.ERROR, logger="eslengine.http"):
        resp = app.test_client().get("/broken")
    assert resp.status_code == 500
    assert resp.get_json() == {"error": "internal", "reason": "internal error"}
    assert [r.exc_info is not None for r in caplog.records if r.name == "eslengine.http.responses"] == [True]


# ------------------------------------------------------------------ fast intake


@pytest.fixture
def fast(config: Config, queue: JobQueue) -> tuple[Flask, list[str]]:
    """An app with the fast path, and the list of requests that reached Flask."""
    app = create_app(config, queue, fast_intake=True)
    intake: Any = app.wsgi_app
    while not isinstance(intake, FastIntake):  # inside the request counter
        intake = intake.app
    flask_app, reached = intake.app, []

    def flask_side(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append("%s %s" % (environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        return flask_app(environ, start_response)

    intake.app = flask_side
    return app, reached


def test_fast_intake_queues_a_call_without_flask(fast: tuple[Flask, list[str]], queue: JobQueue) -> None:
    app, reached = fast
    resp = app.test_client().post("/v1/calls", data=json.dumps({**VALID, "variables": {"crm_id": "42"}}),
                                  headers={**AUTH, "Content-Type": "application/json; charset=utf-8"})
    assert resp.status_code == 202 and reached == []
    job_id = resp.get_json()["id"]
    assert resp.get_json() == {"id": job_id, "status": "queued", "a": ["+15551230001"], "b": ["user/1000"]}
    assert resp.headers["Location"] == "/v1/calls/%s" % job_id
    assert resp.headers["Content-Type"] == "application/json"
    record = queue.get(job_id)
    assert record is not None and record["status"] == "queued" and record["request"]["variables"] == {"crm_id": "42"}


@pytest.mark.parametrize("headers,body,status", [
    ({}, VALID, 401),
    ({"Authorization": "Bearer wrong"}, VALID, 401),
    ({**AUTH, "Content-Type": "text/plain"}, VALID, 400),
    ({**AUTH, "Content-Type": "application/merge-patch+json"}, VALID, 202),
    (AUTH, {"a": "+15551230001"}, 422),
    (AUTH, ["not", "an", "object"], 400),
    (AUTH, b"{not json", 400),
    (AUTH, b"\xff\xfe", 400),
    (AUTH, b"", 400),
], ids=["no-auth", "bad-key", "not-json-type", "json-suffix-type", "invalid", "array", "bad-json", "not-utf8",
        "empty"])
def test_what_the_fast_path_does_not_take_flask_answers(fast: tuple[Flask, list[str]], headers: dict[str, str],
                                                        body: object, status: int) -> None:
    app, reached = fast
    data = body if isinstance(body, bytes) else json.dumps(body)
    resp = app.test_client().post("/v1/calls", data=data, headers={"Content-Type": "application/json", **headers})
    assert resp.status_code == status, resp.get_json()
    assert reached == ["POST /v1/calls"]
    if status == 422:
        # Flask read the body the fast path had already read.
        doc = resp.get_json()
        assert (doc["error"], doc["field"]) == ("invalid", "b") and doc["reason"].startswith("required")


def test_the_fast_path_leaves_other_routes_and_oversize_bodies_to_flask(fast: tuple[Flask, list[str]]) -> None:
    app, reached = fast
    client = app.test_client()
    job_id = client.post("/v1/calls", json=VALID, headers=AUTH).get_json()["id"]
    assert client.get("/v1/calls/%s" % job_id, headers=AUTH).status_code == 200
    assert client.post("/v1/calls/", json=VALID, headers=AUTH).status_code == 404
    big = json.dumps({**VALID, "pad": "x" * MAX_BODY})
    assert client.post("/v1/calls", data=big, headers={**AUTH, "Content-Type": "application/json"}).status_code == 413
    assert reached == ["GET /v1/calls/%s" % job_id, "POST /v1/calls/", "POST /v1/calls"]


def test_a_fast_path_body_cut_short_goes_to_flask(fast: tuple[Flask, list[str]]) -> None:
    app, reached = fast
    body = json.dumps(VALID).encode()
    resp = app.test_client().post("/v1/calls", input_stream=io.BytesIO(body[:-3]),
                                  headers={**AUTH, "Content-Type": "application/json",
                                           "Content-Length": str(len(body))})
    assert resp.status_code == 400 and reached == ["POST /v1/calls"]


def test_a_fast_path_bug_is_500_json_and_logged(fast: tuple[Flask, list[str]], queue: JobQueue,
                                                monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    app, reached = fast

    def broken(call: object) -> str:
        raise KeyError("boom")

    monkeypatch.setattr(queue, "enqueue", broken)
    with caplog.at_level(logging.ERROR, logger="eslengine.http"):
        resp = app.test_client().post("/v1/calls", json=VALID, headers=AUTH)
    assert resp.status_code == 500 and reached == []
    assert resp.get_json() == {"error": "internal", "reason": "internal error"}
    assert [r.exc_info is not None for r in caplog.records if r.name == "eslengine.http.fast_intake"] == [True]


# ------------------------------------------------------------------ Redis down


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def down_client(request: pytest.FixtureRequest) -> Iterator[FlaskClient]:
    config = Config(redis_url="redis://127.0.0.1:%d/0" % closed_port(), api_keys=frozenset({KEY}),
                    allow_unvalidated_numbers=True)
    app = create_app(config, fast_intake=request.param)
    yield app.test_client()
    app.extensions["eslengine"].redis.close()


@pytest.mark.parametrize("method,path", [("POST", "/v1/calls"), ("GET", "/v1/calls/%s" % uuid.uuid4()),
                                         ("DELETE", "/v1/calls/%s" % uuid.uuid4())])
def test_redis_unreachable_is_503_with_retry_after(down_client: FlaskClient, method: str, path: str) -> None:
    resp = down_client.open(path, method=method, json=VALID, headers=AUTH)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.get_json()["error"] == "unavailable"


def test_healthz(client: FlaskClient, down_client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json() == {"status": "ok", "redis": "ok"}
    resp = down_client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json() == {"status": "unavailable", "redis": "unavailable"}
    assert resp.headers["Retry-After"] == "1"


def test_readyz_needs_redis_and_a_worker_on_a_node(config: Config, queue: JobQueue,
                                                  down_client: FlaskClient) -> None:
    nodes = (Node("127.0.0.1", 8021, "pw", name="fs1"), Node("127.0.0.1", 8022, "pw", name="fs2"))
    client = create_app(dataclasses.replace(config, nodes=nodes), queue).test_client()
    resp = client.get("/readyz")  # no key needed
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert resp.get_json() == {"status": "unavailable", "redis": "ok", "nodes": {"fs1": "down", "fs2": "down"},
                               "reason": "no worker is connected to any node"}
    queue.pace_node("fs2", "worker-1", 5.0, 0, 10)  # a worker connected to fs2 keeps its place there
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ready", "redis": "ok", "nodes": {"fs1": "down", "fs2": "up"}}
    queue.leave_node("fs2", "worker-1")
    assert client.get("/readyz").status_code == 503
    resp = down_client.get("/readyz")
    assert resp.status_code == 503 and resp.get_json() == {"status": "unavailable", "redis": "unavailable"}


def test_create_app_builds_its_queue_from_the_config(config: Config, redis_client: redis.Redis) -> None:
    app = create_app(config)
    try:
        assert isinstance(app.extensions["eslengine"], JobQueue)
        job_id = place(app.test_client())
        assert redis_client.hget(Keys(config.key_prefix).call(job_id), "status") == "queued"
    finally:
        app.extensions["eslengine"].redis.close()


# ------------------------------------------------------------------ OpenAPI


def test_openapi_document_describes_every_route(app: Flask, client: FlaskClient) -> None:
    resp = client.get("/v1/openapi.json")  # no key needed
    assert resp.status_code == 200
    doc = json.loads(resp.data)
    assert doc["openapi"].startswith("3.0.")
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or not rule.endpoint.startswith(("calls_v1.", "accounts_v1.", "campaigns_v1.",
                                                                       "dnc_v1.")):
            continue  # a facade's routes are in its own document
        path = re.sub(r"<(\w+)>", "{id}", rule.rule)
        # <any(a,b):name> is one documented path for each of a, b.
        choices = re.search(r"<any\(([^)]*)\):\w+>", path)
        for expanded in ([path.replace(choices.group(0), c) for c in choices.group(1).split(",")] if choices
                         else [path]):
            routes |= {(expanded, method.lower()) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    documented = {(re.sub(r"\{\w+\}", "{id}", path), method) for path, item in doc["paths"].items()
                  for method in item if method != "parameters"}
    assert documented == routes
    request_schema = doc["components"]["schemas"]["CallRequest"]
    assert set(request_schema["properties"]) == calls.KNOWN_FIELDS
    assert request_schema["required"] == ["a", "b"]
    # Every $ref resolves.
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)):
        assert ref in doc["components"]["schemas"]
    assert doc["security"] == [{"bearer": []}]
    assert set(doc["paths"]["/v1/calls"]["post"]["responses"]) == {"202", "400", "401", "403", "409", "413", "422", "429",
                                                                   "502", "503"}
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def _schema(name: str) -> Any:
    schemas = openapi_document(Config())["components"]["schemas"]
    if name in ("a", "b"):
        return schemas["Destination"]
    return schemas["CallRequest"]["properties"][name]


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_openapi_patterns_describe_what_the_validator_accepts(data: st.DataObject) -> None:
    # The schema describes syntax; the toll-fraud policy is the operator's.
    config = Config(blocked_prefixes=(), refused_number_types=(), allow_unvalidated_numbers=True)
    schema = _schema("a")
    destination = data.draw(st.from_regex(schema["pattern"].replace("$", r"\Z"), fullmatch=True)
                            .filter(lambda v: len(v) <= schema["maxLength"]))
    config = Config(blocked_prefixes=(), refused_number_types=(), sip_domains=(".*",), allow_unvalidated_numbers=True)
    if re.fullmatch(r"\+[1-9][0-9]{6,14}|user/.*|sips?:.*", destination):
        calls.parse_destination("a", destination, config, check_policy=False)  # does not raise
    else:
        # A number as a person types it: its syntax is right; whether it is a
        # number is libphonenumber's to say, in the request's region.
        event("typed number")
        try:
            calls.parse_destination("a", destination, config, check_policy=False, region="US")
        except calls.ValidationError as exc:
            assert exc.reason.startswith(("not a possible phone number", "not a phone number", "must be a phone")), exc
    cid = data.draw(st.from_regex(_schema("caller_id_number")["pattern"].replace("$", r"\Z"), fullmatch=True))
    assert calls.parse_request({**VALID, "caller_id_number": cid}, config).caller_id_number == cid


@pytest.mark.parametrize("value,ok", [("Sales Desk", True), ("Zoë & Co.", True), ("a\nb", False), ("a{b", False),
                                       ("${x}", False), ("a$b", True), ("\x85", False)])
def test_openapi_text_pattern_agrees_with_the_validator(value: str, ok: bool) -> None:
    assert bool(re.fullmatch(_schema("caller_id_name")["pattern"].strip("^$"), value)) is ok
    try:
        calls.parse_request({**VALID, "caller_id_name": value}, Config(allow_unvalidated_numbers=True))
    except calls.ValidationError:
        assert not ok
    else:
        assert ok


# ------------------------------------------------------------------ hostile input

_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=40))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
_fields = st.dictionaries(st.sampled_from(sorted(calls.KNOWN_FIELDS)) | st.text(max_size=12), _json, max_size=6)
_near_valid = st.fixed_dictionaries(
    {"a": st.sampled_from(["+15551230001", "user/1000", "user/1000@example.com"]),
     "b": st.sampled_from(["+442071838750", "user/1001"])},
    optional={"caller_id_number": _json | st.from_regex(r"\+?[0-9]{1,22}", fullmatch=True),
              "caller_id_name": _json, "timeout": _json | st.integers(0, 200),
              "variables": st.dictionaries(st.text(max_size=36), _scalars, max_size=34) | _json,
              "id": _json | st.uuids().map(str)},
)
_ACCEPTABLE = {202, 400, 409, 413, 422}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_json | _fields | _near_valid)
def test_arbitrary_json_never_5xx(client: FlaskClient, body: object) -> None:
    resp = post(client, body)
    event("status %d" % resp.status_code)
    assert resp.status_code in _ACCEPTABLE, (resp.status_code, resp.data)
    assert resp.is_json


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300) | _json.map(lambda v: json.dumps(v).encode()[:-1])
       | _near_valid.map(lambda v: json.dumps(v, ensure_ascii=False).encode()),
       content_type=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"]))
def test_arbitrary_bytes_never_5xx(client: FlaskClient, raw: bytes, content_type: str) -> None:
    resp = client.post("/v1/calls", data=raw, headers={**AUTH, "Content-Type": content_type})
    event("status %d" % resp.status_code)
    assert resp.status_code in _ACCEPTABLE, (resp.status_code, resp.data)
    assert resp.is_json


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60))
def test_arbitrary_authorization_headers_are_401(client: FlaskClient, header: str) -> None:
    resp = client.get("/v1/calls/%s" % uuid.uuid4(), headers={"Authorization": header})
    assert resp.status_code == 401 and resp.is_json


# ------------------------------------------------------------------ serve()

_SERVE = """
from gevent import monkey
monkey.patch_all()
import logging, sys
logging.basicConfig(level=logging.INFO)
from eslengine.http import serve
from eslengine.config import Config
serve(Config(redis_url=sys.argv[1], key_prefix=sys.argv[2], api_keys=frozenset([sys.argv[3]]),
             allow_unvalidated_numbers=True),
      "127.0.0.1:0", workers=2)
"""


def test_serve_runs_gunicorn_gevent_workers(redis_server: Any, key_prefix: str, redis_client: redis.Redis) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SERVE, redis_server.url, key_prefix, KEY],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: stdlib_queue.Queue[str] = stdlib_queue.Queue()

    def read() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 20
        port = 0
        while not port or sum("Booting worker" in line for line in seen) < 2:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(line)
            if match := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line):
                port = int(match.group(1))
        assert any("Using worker: gevent" in line for line in seen), seen

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            assert (resp.status, json.loads(resp.read())) == (200, {"status": "ok", "redis": "ok"})
            conn.request("POST", "/v1/calls", body=json.dumps(VALID),
                         headers={**AUTH, "Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 202
            job_id = json.loads(resp.read())["id"]
        finally:
            conn.close()
        assert redis_client.hget(Keys(key_prefix).call(job_id), "status") == "queued"
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=5)
        stderr.close()


def test_a_typed_national_number_is_answered_in_e164(client: FlaskClient) -> None:
    resp = post(client, {"a": "(212) 555-0123", "b": "user/1000", "region": "US"})
    assert resp.status_code == 202
    assert resp.get_json()["a"] == ["+12125550123"]
    view = client.get("/v1/calls/" + resp.get_json()["id"], headers=AUTH).get_json()
    assert view["a"] == "+12125550123"
    refused = post(client, {"a": "555 123 0001", "b": "user/1000"})
    assert refused.status_code == 422
    assert refused.get_json()["field"] == "a"
    assert "write it in E.164 (+15551230001), or set the region" in refused.get_json()["reason"]


# ------------------------------------------------------------------ Idempotency-Key


def test_an_idempotency_key_places_one_call_for_the_same_request(client: FlaskClient, redis_client: redis.Redis,
                                                                  key_prefix: str) -> None:
    headers = {**AUTH, "Idempotency-Key": "order-1234"}
    first = post(client, VALID, headers)
    again = post(client, dict(reversed(list(VALID.items()))), headers)  # the same JSON, keys in another order
    assert first.status_code == again.status_code == 202
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert redis_client.xlen(Keys(key_prefix).jobs) == 1
    other = post(client, {**VALID, "b": "user/1001"}, headers)
    assert other.status_code == 422
    assert other.get_json() == {"error": "invalid", "field": "Idempotency-Key",
                                "reason": "this Idempotency-Key was used with a different request"}
    # Another key (value) is another call; so is the same value from another API key.
    assert post(client, VALID, {**AUTH, "Idempotency-Key": "order-1235"}).get_json()["id"] != first.get_json()["id"]
    assert redis_client.xlen(Keys(key_prefix).jobs) == 2
    bad = post(client, VALID, {**AUTH, "Idempotency-Key": "é"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "Idempotency-Key"


def test_an_idempotency_key_with_a_chosen_id_replays_that_id(client: FlaskClient) -> None:
    chosen = str(uuid.uuid4())
    headers = {**AUTH, "Idempotency-Key": "k1"}
    assert post(client, {**VALID, "id": chosen}, headers).get_json()["id"] == chosen
    assert post(client, {**VALID, "id": chosen}, headers).get_json()["id"] == chosen
    # Without the key, the same id is a conflict as before.
    assert post(client, {**VALID, "id": chosen}).status_code == 409


# ------------------------------------------------------------------ GET /v1/calls


def _page(client: FlaskClient, query: str = "", headers: dict[str, str] | None = None) -> Any:
    resp = client.get("/v1/calls" + query, headers=AUTH if headers is None else headers)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_listing_pages_through_every_call_newest_first(client: FlaskClient) -> None:
    placed = [place(client, variables={"n": str(i), "campaign": "spring" if i % 2 else "autumn"}) for i in range(7)]
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = _page(client, "?limit=3" + ("&cursor=" + cursor if cursor else ""))
        assert len(page["calls"]) <= 3
        seen += [c["id"] for c in page["calls"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(placed))
    spring = _page(client, "?variables.campaign=spring")["calls"]
    assert [c["id"] for c in spring] == [placed[i] for i in (5, 3, 1)]
    assert spring[0]["variables"] == {"n": "5", "campaign": "spring"} and spring[0]["status"] == "queued"
    assert _page(client, "?status=completed")["calls"] == []
    client.delete("/v1/calls/" + placed[0], headers=AUTH)
    assert [c["id"] for c in _page(client, "?status=cancelled,failed")["calls"]] == [placed[0]]
    assert _page(client, "?since=2999-01-01T00:00:00Z") == {"calls": [], "next_cursor": None}
    assert len(_page(client, "?until=2999-01-01T00:00:00Z&since=2000-01-01")["calls"]) == 7


@pytest.mark.parametrize(("query", "field"), [
    ("?status=ringing,nope", "status"), ("?limit=0", "limit"), ("?limit=101", "limit"), ("?limit=x", "limit"),
    ("?since=yesterday", "since"), ("?cursor=@@@", "cursor"), ("?colour=red", "colour"),
    ("?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z", "since"),
])
def test_listing_refuses_bad_queries_naming_the_parameter(client: FlaskClient, query: str, field: str) -> None:
    resp = client.get("/v1/calls" + query, headers=AUTH)
    assert resp.status_code == 422 and resp.get_json()["field"] == field


def test_listing_shows_a_client_key_only_its_own_calls(app: Flask, client: FlaskClient) -> None:
    from eslengine.http.context import KEYS_EXTENSION

    store = app.extensions[KEYS_EXTENSION]
    _, token = store.create("shop")
    chosen = str(uuid.uuid4())
    assert client.post("/v1/calls", json={**VALID, "id": chosen}, headers={"Authorization": "Bearer " + token})\
        .status_code == 202
    operators = place(client)
    mine = _page(client, headers={"Authorization": "Bearer " + token})["calls"]
    assert [c["id"] for c in mine] == [chosen]
    # The operator key sees every call, the client key's under the id it chose.
    listed = {c["id"]: c for c in _page(client)["calls"]}
    assert {chosen, operators} <= set(listed) and listed[chosen]["key"] == mine[0]["key"]

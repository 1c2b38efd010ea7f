"""Client API keys: pure rules, the Redis key store, and the API scoping
each key to its own calls (real Redis, the Flask app)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st

from eslengine import apikeys, calls
from eslengine.apikeys import ApiKey, KeyStore
from eslengine.config import Config
from eslengine.errors import ConfigError, ValidationError
from eslengine.http import create_app, openapi_document
from eslengine.http.context import KEYS_EXTENSION
from eslengine.store import JobQueue, Keys, connect, enqueue
from eslengine.webhooks import Webhooks

OPERATOR = "op-secret-5d1e"
VALID = {"a": "+15551230001", "b": "user/1000"}


# ------------------------------------------------------------------ pure rules


def test_scoped_ids_are_stable_per_key_and_differ_between_keys() -> None:
    chosen = str(uuid.uuid4())
    one, two = ApiKey(id="key_1"), ApiKey(id="key_2")
    assert apikeys.scoped_id(one, chosen) == apikeys.scoped_id(one, chosen)
    assert apikeys.scoped_id(one, chosen) != apikeys.scoped_id(two, chosen)
    assert apikeys.scoped_id(one, chosen) != chosen
    assert str(uuid.UUID(apikeys.scoped_id(one, chosen))) == apikeys.scoped_id(one, chosen)
    # Operator keys keep the ids they choose.
    assert apikeys.scoped_id(apikeys.operator_key("x"), chosen) == chosen


@given(st.uuids(), st.uuids())
def test_scoped_ids_of_different_ids_never_meet(a: uuid.UUID, b: uuid.UUID) -> None:
    key = ApiKey(id="key_abc")
    assert (apikeys.scoped_id(key, str(a)) == apikeys.scoped_id(key, str(b))) == (a == b)


@pytest.mark.parametrize(("allowed", "number", "ok"), [
    ((), "+15551230001", True),
    (("+15551230001",), "+15551230001", True),
    (("+15551230001",), "+15551230002", False),
    (("+15551230001",), "15551230001", False),
    (("+1555123*",), "+15551239999", True),
    (("+1555123*",), "+15551240000", False),
    (("+15551230001", "+4420*"), "+442071234567", True),
])
def test_caller_id_allow_list(allowed: tuple[str, ...], number: str, ok: bool) -> None:
    assert apikeys.caller_id_allowed(ApiKey(id="k", caller_ids=allowed), number) is ok


def _request(**fields: Any) -> calls.CallRequest:
    return calls.parse_request({**VALID, **fields}, Config(allow_unvalidated_numbers=True))


def test_apply_caller_ids_checks_every_number_a_call_presents() -> None:
    key = ApiKey(id="k", caller_ids=("+15550001111", "+1555000*"))
    assert apikeys.apply_caller_ids(key, _request(caller_id_number="+15550009999")).caller_id_number == "+15550009999"
    for fields, field in (({"caller_id_number": "+15557770000"}, "caller_id_number"),
                          ({"a": {"to": "+15551230001", "caller_id_number": "+15557770000"}}, "a.caller_id_number"),
                          ({"b": {"to": "user/1000", "caller_id_number": "+19995550000"}}, "b.caller_id_number"),
                          ({"b": {"to": "user/1000", "show_other_number": True}}, "b.show_other_number")):
        with pytest.raises(ValidationError) as info:
            apikeys.apply_caller_ids(key, _request(**fields))
        assert info.value.field == field


def test_apply_caller_ids_presents_the_first_allowed_number_when_none_is_given() -> None:
    key = ApiKey(id="k", caller_ids=("+1555000*", "+15550001111"))
    assert apikeys.apply_caller_ids(key, _request()).caller_id_number == "+15550001111"
    with pytest.raises(ValidationError) as info:
        apikeys.apply_caller_ids(ApiKey(id="k", caller_ids=("+1555*",)), _request())
    assert info.value.field == "caller_id_number"
    # No list: the request is left as it is.
    request = _request()
    assert apikeys.apply_caller_ids(ApiKey(id="k"), request) is request


def test_rate_window_and_scopes() -> None:
    assert apikeys.rate_window(120.0) == (2, 60.0)
    assert apikeys.rate_window(179.5) == (2, 0.5)
    assert apikeys.parse_scopes("place, read") == frozenset({"place", "read"})
    for bad in ("", "place,dial"):
        with pytest.raises(ConfigError):
            apikeys.parse_scopes(bad)
    assert ApiKey(id="k", scopes=frozenset({"admin"})).may("cancel")
    assert not ApiKey(id="k", scopes=frozenset({"read"})).may("place")


def test_bearer_tokens() -> None:
    assert apikeys.bearer_token("Bearer  abc ") == "abc"
    assert apikeys.bearer_token("Basic abc") == ""
    assert apikeys.bearer_token(None) == ""
    assert apikeys.operator_token("abc", {"x", "abc"})
    assert not apikeys.operator_token("", {""})


# ------------------------------------------------------------------ the store


@pytest.fixture
def client_redis(redis_server: Any) -> Iterator[redis.Redis]:
    client = connect(redis_server.url)
    yield client
    client.close()


def test_store_keeps_only_a_digest_of_the_token(client_redis: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(client_redis, key_prefix)
    key, token = store.create("web shop", ("place", "read"), caller_ids=["+15550001111"], rate_per_minute=5)
    assert token.startswith(apikeys.TOKEN_PREFIX)
    stored = {k: client_redis.hgetall(k) for k in client_redis.scan_iter(Keys(key_prefix).apikey("*"))}
    assert token not in json.dumps(stored)
    assert store.by_token(token) == key
    assert store.by_token(token + "x") is None
    assert [k.id for k in store.list()] == [key.id]
    assert store.revoke(key.id) and not store.revoke(key.id)
    assert store.get(key.id) is None


def test_a_revoked_key_stops_working_after_the_cache_time(client_redis: redis.Redis, key_prefix: str) -> None:
    now = [100.0]
    store = KeyStore(client_redis, key_prefix, clock=lambda: now[0])
    key, token = store.create("app")
    assert store.by_token(token) == key
    store.revoke(key.id)
    assert store.by_token(token) == key  # cached
    now[0] += apikeys.CACHE_SECONDS
    assert store.by_token(token) is None


def test_store_refuses_bad_names_and_caller_ids(client_redis: redis.Redis, key_prefix: str) -> None:
    store = KeyStore(client_redis, key_prefix)
    for kwargs in ({"name": ""}, {"name": "x\ny"}, {"name": "ok", "caller_ids": ["+1555;x"]},
                   {"name": "ok", "scopes": ("dial",)}, {"name": "ok", "rate_per_minute": -1}):
        with pytest.raises(ConfigError):
            store.create(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the API


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> Config:
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                  allow_unvalidated_numbers=True)


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def app(request: pytest.FixtureRequest, config: Config, client_redis: redis.Redis) -> Flask:
    return create_app(config, JobQueue(client_redis, Keys(config.key_prefix)), fast_intake=request.param)


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> KeyStore:
    return app.extensions[KEYS_EXTENSION]  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def test_a_client_key_sees_and_cancels_only_its_own_calls(http: FlaskClient, store: KeyStore) -> None:
    _, mine = store.create("mine")
    _, theirs = store.create("theirs")
    resp = http.post("/v1/calls", json=VALID, headers=bearer(mine))
    assert resp.status_code == 202
    call_id = resp.get_json()["id"]
    assert http.get("/v1/calls/" + call_id, headers=bearer(mine)).get_json()["id"] == call_id
    for method in (http.get, http.delete):
        resp = method("/v1/calls/" + call_id, headers=bearer(theirs))
        assert resp.status_code == 404
        assert resp.get_json() == {"error": "not_found", "reason": "no call with this id"}
    # The operator sees every call; the owner can cancel it.
    assert http.get("/v1/calls/" + call_id, headers=bearer(OPERATOR)).status_code == 200
    assert http.delete("/v1/calls/" + call_id, headers=bearer(mine)).get_json() == {"id": call_id,
                                                                                    "status": "cancelled"}


def test_a_chosen_id_is_the_keys_own_and_tells_nothing_of_other_keys(
    http: FlaskClient, store: KeyStore, client_redis: redis.Redis, key_prefix: str
) -> None:
    one, one_token = store.create("one")
    two, two_token = store.create("two")
    chosen = str(uuid.uuid4())
    first = http.post("/v1/calls", json={**VALID, "id": chosen}, headers=bearer(one_token))
    # The same id from another key is a new call, not a conflict.
    second = http.post("/v1/calls", json={**VALID, "id": chosen}, headers=bearer(two_token))
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.get_json() == second.get_json() == {"id": chosen, "status": "queued", "a": ["+15551230001"],
                                                     "b": ["user/1000"]}
    assert first.headers["Location"] == "/v1/calls/" + chosen
    # The same id again from the same key is.
    again = http.post("/v1/calls", json={**VALID, "id": chosen}, headers=bearer(one_token))
    assert again.status_code == 409 and again.get_json()["id"] == chosen
    # Each key reads its own call under the id it chose.
    views = [http.get("/v1/calls/" + chosen, headers=bearer(t)).get_json() for t in (one_token, two_token)]
    assert [v["id"] for v in views] == [chosen, chosen]
    assert [v["request"]["id"] for v in views] == [chosen, chosen]
    assert [v["key"] for v in views] == [one.id, two.id]
    # Stored (and dialed) under ids derived from each key.
    for key in (one, two):
        stored = apikeys.scoped_id(key, chosen)
        record = client_redis.hgetall(Keys(key_prefix).call(stored))
        assert record["owner"] == key.id and record["client_id"] == chosen
        assert json.loads(record["request"])["id"] == stored
    assert not client_redis.exists(Keys(key_prefix).call(chosen))


def test_scopes_are_enforced(http: FlaskClient, store: KeyStore) -> None:
    _, reader = store.create("reader", ("read",))
    _, placer = store.create("placer", ("place",))
    _, admin = store.create("admin", ("admin",))
    resp = http.post("/v1/calls", json=VALID, headers=bearer(reader))
    assert resp.status_code == 403
    assert resp.get_json() == {"error": "forbidden", "reason": "this key may not place calls (it lacks the scope "
                                                                "'place')"}
    call_id = http.post("/v1/calls", json=VALID, headers=bearer(placer)).get_json()["id"]
    assert http.get("/v1/calls/" + call_id, headers=bearer(placer)).status_code == 403
    assert http.delete("/v1/calls/" + call_id, headers=bearer(placer)).status_code == 403
    # An admin client key sees and cancels another key's call.
    assert http.get("/v1/calls/" + call_id, headers=bearer(admin)).get_json()["id"] == call_id
    assert http.delete("/v1/calls/" + call_id, headers=bearer(admin)).status_code == 200


def test_unknown_and_revoked_tokens_get_401(http: FlaskClient, store: KeyStore) -> None:
    key, token = store.create("gone")
    store.revoke(key.id)
    for header in (bearer(token), bearer("esk_nope"), bearer("nope"), {}):
        resp = http.post("/v1/calls", json=VALID, headers=header)
        assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"


def test_a_key_rate_limit_answers_429_with_retry_after(http: FlaskClient, store: KeyStore) -> None:
    _, token = store.create("slow", rate_per_minute=2)
    codes = [http.post("/v1/calls", json=VALID, headers=bearer(token)).status_code for _ in range(2)]
    refused = http.post("/v1/calls", json=VALID, headers=bearer(token))
    assert codes == [202, 202]
    assert refused.status_code == 429
    assert refused.get_json() == {"error": "rate_limited", "reason": "this key may place 2 calls a minute"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Invalid requests do not use up the allowance; operator keys have none.
    _, other = store.create("other", rate_per_minute=1)
    assert http.post("/v1/calls", json={"a": "nope"}, headers=bearer(other)).status_code == 422
    assert http.post("/v1/calls", json=VALID, headers=bearer(other)).status_code == 202
    assert http.post("/v1/calls", json=VALID, headers=bearer(OPERATOR)).status_code == 202


def test_caller_ids_outside_a_keys_list_are_refused(http: FlaskClient, store: KeyStore) -> None:
    _, token = store.create("shop", caller_ids=["+15550001111"])
    resp = http.post("/v1/calls", json={**VALID, "caller_id_number": "+15559990000"}, headers=bearer(token))
    assert resp.status_code == 422
    assert resp.get_json() == {"error": "invalid", "field": "caller_id_number",
                               "reason": "not a caller ID this key may present (allowed: +15550001111)"}
    call_id = http.post("/v1/calls", json=VALID, headers=bearer(token)).get_json()["id"]
    view = http.get("/v1/calls/" + call_id, headers=bearer(token)).get_json()
    assert view["caller_id_number"] == "+15550001111"


def test_the_openapi_document_names_the_key_answers(config: Config) -> None:
    document = openapi_document(config)
    post = document["paths"]["/v1/calls"]["post"]["responses"]
    assert {"403", "429"} <= set(post)
    assert "403" in document["paths"]["/v1/calls/{id}"]["get"]["responses"]


def test_enqueue_with_an_owner_gives_the_call_to_that_key(
    http: FlaskClient, store: KeyStore, client_redis: redis.Redis, config: Config
) -> None:
    key, token = store.create("app")
    _, other = store.create("other")
    job_id = enqueue(client_redis, VALID, config=config, owner=key.id)
    unowned = enqueue(client_redis, VALID, config=config)
    assert http.get("/v1/calls/" + job_id, headers=bearer(token)).status_code == 200
    assert http.get("/v1/calls/" + job_id, headers=bearer(other)).status_code == 404
    assert http.get("/v1/calls/" + unowned, headers=bearer(token)).status_code == 404
    assert http.get("/v1/calls/" + unowned, headers=bearer(OPERATOR)).status_code == 200


def test_webhooks_are_signed_with_the_keys_own_secret(client_redis: redis.Redis, key_prefix: str,
                                                        config: Config) -> None:
    store = KeyStore(client_redis, key_prefix)
    own, _ = store.create("signed", webhook_secret="per-key-secret")
    plain, _ = store.create("plain")
    queue = JobQueue(client_redis, Keys(key_prefix))
    sender = Webhooks(queue, Config(webhook_secret="global-secret"))
    assert sender._secret({"key": own.id}) == "per-key-secret"
    assert sender._secret({"key": plain.id}) == "global-secret"
    assert sender._secret({}) == "global-secret"


# ------------------------------------------------------------------ CLI


def _cli(args: list[str], redis_url: str, prefix: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "ESLENGINE_REDIS_URL": redis_url, "ESLENGINE_KEY_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "eslengine", "keys", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def test_cli_creates_lists_and_revokes_keys(redis_server: Any, key_prefix: str, client_redis: redis.Redis) -> None:
    made = _cli(["create", "--name", "web shop", "--scopes", "place,read", "--caller-id", "+15550001111",
                 "--rate", "30"], redis_server.url, key_prefix)
    assert made.returncode == 0, made.stderr
    key_id, token = made.stdout.strip().split("\t")
    assert "shown only this once" in made.stderr
    assert KeyStore(client_redis, key_prefix).by_token(token) == KeyStore(client_redis, key_prefix).get(key_id)
    listed = _cli(["list"], redis_server.url, key_prefix)
    assert listed.stdout.split("\t")[:5] == [key_id, "web shop", "place,read", "+15550001111", "30/min"]
    assert token not in listed.stdout
    bad = _cli(["create", "--name", "x", "--scopes", "dial"], redis_server.url, key_prefix)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown scope dial" in bad.stderr
    assert _cli(["revoke", key_id], redis_server.url, key_prefix).returncode == 0
    gone = _cli(["revoke", key_id], redis_server.url, key_prefix)
    assert gone.returncode == 1 and "no key %s" % key_id in gone.stderr

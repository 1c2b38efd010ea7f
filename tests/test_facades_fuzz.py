"""The TeleCMI and Sarv surfaces fuzzed from their own OpenAPI documents
(schemathesis): whatever a client sends, no response is a server error, and
every response is one the document describes. Half the cases carry real
credentials of an account with users, a group and media, so the fuzzer
reaches past the authentication."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import checks

from eslengine.config import Config
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "k-facade-fuzz-2291"


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                    default_region="IN", media_url_prefixes=("https://media.example.com/",))
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=60))
    client.close()


@pytest.fixture
def tenant(app: Flask) -> dict[str, str]:
    client = app.test_client()
    auth = {"Authorization": "Bearer " + OPERATOR}

    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = client.post(path, json=body, headers=auth)
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    account = made("/v1/accounts", {"name": "fuzzed"})["id"]
    base = "/v1/accounts/" + account
    user = made(base + "/users", {"name": "Ann", "endpoint": "user/101", "follow_me": "+919812345678"})["id"]
    group = made(base + "/groups", {"name": "sales", "members": [{"user": user}]})["id"]
    made(base + "/media", {"name": "alert.wav", "file": "sarv/alert.wav"})
    token = made(base + "/keys", {"name": "fuzz"})["token"]
    return {"account": account, "user": user, "group": group, "token": token}


def operations(app: Flask, document: str) -> list[Any]:
    loaded = schemathesis.openapi.from_wsgi(document, app)
    return [result.ok() for result in loaded.get_all_operations()]


EXCLUDED = [checks.ignored_auth, checks.positive_data_acceptance]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_telecmi_fuzzed(app: Flask, tenant: dict[str, str], data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(operations(app, "/v1/openapi/telecmi.json")))
    case = data.draw(operation.as_strategy())
    if data.draw(st.booleans()):
        real = {"user_id": tenant["user"], "secret": tenant["token"]}
        if case.query is not None:
            case.query.update(real)
        elif isinstance(case.body, dict):
            case.body.update(real)
    response = case.call()
    case.validate_response(response, excluded_checks=EXCLUDED)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_sarv_fuzzed(app: Flask, tenant: dict[str, str], data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(operations(app, "/v1/openapi/sarv.json")))
    case = data.draw(operation.as_strategy())
    if data.draw(st.booleans()):
        case.query = {**(case.query or {}), "user_id": tenant["account"], "token": tenant["token"]}
        if data.draw(st.booleans()):
            case.query.update({"fromType": "agent", "from": tenant["user"], "toType": "number"})
    response = case.call()
    case.validate_response(response, excluded_checks=EXCLUDED)


@pytest.mark.parametrize(("blueprint", "document"), [("telecmi_v2", "/v1/openapi/telecmi.json"),
                                                     ("sarv_v2", "/v1/openapi/sarv.json")])
def test_each_facades_document_describes_its_every_route(app: Flask, blueprint: str, document: str) -> None:
    routes = {(rule.rule, method.lower()) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith(blueprint + ".") for method in rule.methods or ()
              if method not in ("HEAD", "OPTIONS")}
    paths = app.test_client().get(document).get_json()["paths"]
    assert {(path, method) for path, item in paths.items() for method in item} == routes

"""The Infobip surface fuzzed from its own OpenAPI document (schemathesis):
whatever a client sends, no response is a server error, and every response
is one the document describes. Half the cases carry real credentials (App
or Basic), so the fuzzer reaches past the authentication into the messages."""

from __future__ import annotations

import base64
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

OPERATOR = "k-infobip-fuzz-4410"
DOCUMENT = "/v1/openapi/infobip.json"


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                    tts_engine="flite", media_url_prefixes=("https://media.example.com/",),
                    webhook_allow=(r"https://www\.example\.com/.*",), allow_unvalidated_numbers=True)
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=60))
    client.close()


@pytest.fixture
def credentials(app: Flask) -> list[str]:
    client = app.test_client()
    auth = {"Authorization": "Bearer " + OPERATOR}
    account = client.post("/v1/accounts", json={"name": "fuzzed"}, headers=auth).get_json()["id"]
    token = client.post("/v1/accounts/%s/keys" % account, json={"name": "fuzz"}, headers=auth).get_json()["token"]
    return ["App " + token, "Basic " + base64.b64encode(("%s:%s" % (account, token)).encode()).decode()]


EXCLUDED = [checks.ignored_auth, checks.positive_data_acceptance]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_infobip_fuzzed(app: Flask, credentials: list[str], data: st.DataObject) -> None:
    operations = [result.ok() for result in schemathesis.openapi.from_wsgi(DOCUMENT, app).get_all_operations()]
    operation = data.draw(st.sampled_from(operations))
    case = data.draw(operation.as_strategy())
    if data.draw(st.booleans()):
        case.headers = {**(case.headers or {}), "Authorization": data.draw(st.sampled_from(credentials))}
    response = case.call()
    case.validate_response(response, excluded_checks=EXCLUDED)


def test_the_document_describes_every_route(app: Flask) -> None:
    routes = {(rule.rule, method.lower()) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("infobip_ctc.") for method in rule.methods or ()
              if method not in ("HEAD", "OPTIONS")}
    paths = app.test_client().get(DOCUMENT).get_json()["paths"]
    assert {(path, method) for path, item in paths.items() for method in item} == routes

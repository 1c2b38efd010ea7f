"""The API fuzzed from its own OpenAPI document (schemathesis): whatever a
client sends, no response is a server error, and every response is one the
document describes (status code, content type, body schema).

Runs in-process against the Flask app (and again with the fast path for
POST /v1/calls in front of it), with a real Redis behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from schemathesis import checks
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eslengine.http import create_app
from eslengine.config import Config
from eslengine.queue import JobQueue, Keys, connect

KEY = "k-fuzz-5512"


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def fuzzed_app(request: pytest.FixtureRequest, redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY}),
                    sip_domains=(r"pbx\.example\.com",), media_url_prefixes=("https://media.example.com/",),
                    webhook_allow=(r"https://hooks\.example\.com/.*",), tts_engine="flite")
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=60),
                     fast_intake=request.param)
    client.close()


@pytest.fixture
def operations(fuzzed_app: Flask) -> list[Any]:
    """Every operation of the document the app serves at /v1/openapi.json."""
    loaded = schemathesis.openapi.from_wsgi("/v1/openapi.json", fuzzed_app)
    return [result.ok() for result in loaded.get_all_operations()]


def test_the_document_has_every_route(operations: list[Any]) -> None:
    assert {(op.method.upper(), op.path) for op in operations} >= {
        ("POST", "/v1/calls"), ("GET", "/v1/calls/{id}"), ("DELETE", "/v1/calls/{id}")}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_server_error_and_every_response_as_documented(operations: list[Any], data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(operations))
    case = data.draw(operation.as_strategy())
    authorized = data.draw(st.booleans())
    response = case.call(headers={"Authorization": "Bearer " + KEY} if authorized else {})
    # ignored_auth takes the valid key this test sends for one schemathesis
    # made up; a request without it is checked here (401) all the same.
    # positive_data_acceptance expects every document-valid call to be
    # accepted, but the toll-fraud policy (countries, number types, SIP
    # domains) is configuration no schema can say: such calls are a 422 the
    # document lists.
    case.validate_response(response, excluded_checks=[checks.ignored_auth, checks.positive_data_acceptance])
    if not authorized and operation.path.startswith("/v1/"):
        assert response.status_code == 401


def _nested(depth: int) -> str:
    return '{"a": "+12025550123", "b": "+12025550124", "variables": {"v": ' + "[" * depth + "]" * depth + "}}"


@pytest.mark.parametrize(("body", "status", "field"), [
    (b'{"a": "+12025550123", "b": ', 400, "body"),
    (b"\xff\xfe not json", 400, "body"),
    (b"[1, 2]", 400, "body"),
    (b'"just a string"', 400, "body"),
    (_nested(30_000).encode(), 400, "body"),
    (_nested(40).encode(), 422, "variables.v"),
    (b'{"a": 5, "b": "+12025550124"}', 422, "a"),
    (b'{"a": "+12025550123", "b": "+12025550124", "timeout": "ten"}', 422, "timeout"),
    (b'{"a": "+12025550123", "b": "+12025550124", "variables": [1]}', 422, "variables"),
    (b'{"a": {"to": ["+12025550123"], "mode": {"x": 1}}, "b": "+12025550124"}', 422, "a.mode"),
    (b'{"a": "+12025550123", "b": "+12025550124", "record": "yes please"}', 422, "record"),
    (b'{"a": "+12025550123", "b": "+12025550124", "x": ' + b'"y" ' * 1 + b"}", 422, "x"),
    (b'{"a": "+12025550123", "b": "+12025550124", "pad": "' + b"z" * 70_000 + b'"}', 413, None),
], ids=["truncated", "not-utf8", "array", "string", "nested-30000", "nested-40", "a-number", "timeout-text",
        "variables-list", "mode-object", "record-text", "unknown-field", "oversized"])
def test_bad_bodies_get_a_json_4xx_naming_the_field(fuzzed_app: Flask, body: bytes, status: int,
                                                     field: str | None) -> None:
    response = fuzzed_app.test_client().post("/v1/calls", data=body, headers={
        "Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    doc = response.get_json()
    assert isinstance(doc, dict) and doc.get("reason")
    if field is not None:
        assert doc["field"] == field

"""The Kazoo facade fuzzed from its own OpenAPI document (schemathesis):
whatever a client sends, no server error, and every response is one the
document describes, aimed at an account that exists with its own token."""

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

OPERATOR = "k-kazoo-fuzz-2210"


@pytest.fixture
def fuzzed_app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                    sip_domains=(r"pbx\.example\.com",), default_region="US")
    client = connect(config.redis_url)
    # No worker runs here: a blocking start waits out its deadline.
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=60), max_wait=0.05)
    client.close()


@pytest.fixture
def operations(fuzzed_app: Flask) -> list[Any]:
    loaded = schemathesis.openapi.from_wsgi("/v2/kazoo/openapi.json", fuzzed_app)
    return [result.ok() for result in loaded.get_all_operations()]


@pytest.fixture
def account(fuzzed_app: Flask) -> dict[str, str]:
    client = fuzzed_app.test_client()
    op = {"Authorization": "Bearer " + OPERATOR}

    def make(path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = client.post(path, json=body, headers=op)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()  # type: ignore[no-any-return]

    account_id = make("/v1/accounts", {"name": "fuzzed"})["id"]
    base = "/v1/accounts/" + account_id
    user = make(base + "/users", {"name": "Ann", "endpoint": "user/1000"})["id"]
    return {"account": account_id, "token": make(base + "/keys", {"name": "k"})["token"], "users": user,
            "devices": make(base + "/devices", {"name": "desk", "endpoint": "user/1001", "owner": user})["id"],
            "clicktocall": make(base + "/clicktocall", {"name": "line", "extension": "user:" + user,
                                                        "auth_required": False})["id"]}


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_kazoo_routes_fuzzed_on_a_real_account(operations: list[Any], account: dict[str, str],
                                                   data: st.DataObject) -> None:
    operation = data.draw(st.sampled_from(operations))
    case = data.draw(operation.as_strategy())
    case.path_parameters["account"] = account["account"]
    if data.draw(st.booleans()):
        kind = case.path_parameters.get("kind", "clicktocall")
        case.path_parameters["id"] = account.get(kind, account["clicktocall"])
    authorized = data.draw(st.booleans())
    response = case.call(headers={"X-Auth-Token": account["token"]} if authorized else {})
    # No 5xx but 503 (Redis down) and 502 (a blocking quickcall whose call
    # failed; no worker runs here, so none).
    case.validate_response(response, excluded_checks=[checks.ignored_auth, checks.positive_data_acceptance])
    assert response.status_code < 500

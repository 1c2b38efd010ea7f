"""Sarv's clickToCall/para: the translation (pure tables), then the surface
over HTTP (the Flask test client, a real Redis), from Sarv's own examples."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine import sarv
from eslengine.accounts import Directory
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "op-sarv-4410"
CONFIG = Config(default_region="IN", api_keys=frozenset({OPERATOR}))
ACCOUNT, U1, U2, U3, D1, G1, G2, M1, M2 = (uuid.UUID(int=i).hex for i in range(1, 10))
DIRECTORY = Directory(
    users={U1: {"name": "Ann", "endpoint": "user/1001", "follow_me": "+919812300001", "ring": "sequential"},
           U2: {"name": "Bob", "endpoint": "user/1002", "ring": "simultaneous"},
           U3: {"name": "Cy", "ring": "simultaneous"}},
    devices={D1: {"name": "desk", "endpoint": "user/1011", "owner": U2}},
    groups={G1: {"name": "sales", "members": [{"user": U1}, {"endpoint": "+919812300009"}],
                 "strategy": "simultaneous"},
            G2: {"name": "empty", "members": [{"user": U3}], "strategy": "sequential"}},
    media={M1: {"name": "1610448601_84.wav", "file": "sarv/1610448601_84.wav"},
           M2: {"name": "1610448601_85.wav", "url": "https://media.example.com/85.wav"}},
)
BASE = {"user_id": ACCOUNT, "token": "t", "from": "9876543210", "to": "9812345678"}


def parse(**change: str | None) -> sarv.ClickToCall:
    params = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    return sarv.parse_request(sarv.parameters(list(params.items())), CONFIG)


def native(**change: str | None) -> dict[str, Any]:
    return sarv.native_request(parse(**change), DIRECTORY, CONFIG)


# ------------------------------------------------------------------ pure


def test_the_documented_example_rings_from_then_to() -> None:
    assert native() == {"a": {"to": ["+919876543210"], "mode": "sequential", "timeout": 30},
                        "b": {"to": ["+919812345678"], "mode": "sequential", "timeout": 30}, "dial_first": "a"}


@pytest.mark.parametrize(("change", "a"), [
    ({"from": "9876543210,9876543211", "fromStrategy": "TO_ALL"},
     {"to": ["+919876543210", "+919876543211"], "mode": "simultaneous"}),
    ({"from": "9876543210,+919876543211", "fromStrategy": "one_by_one"},
     {"to": ["+919876543210", "+919876543211"], "mode": "sequential"}),
    ({"fromType": "agent", "from": U1}, {"to": ["user/1001", "+919812300001"], "mode": "sequential"}),
    ({"fromType": "Agent", "from": U2}, {"to": ["user/1002", "user/1011"], "mode": "simultaneous"}),
    ({"fromType": "agent", "from": "%s,%s" % (U1, U2)},
     {"to": ["user/1001", "+919812300001", "user/1002", "user/1011"], "mode": "sequential"}),
    ({"fromType": "agent", "from": U1, "fromStrategy": "TO_ALL"},
     {"to": ["user/1001", "+919812300001"], "mode": "simultaneous"}),
    ({"fromType": "group", "from": G1}, {"to": ["user/1001", "+919812300001", "+919812300009"],
                                         "mode": "simultaneous"}),
    ({"fromType": "group", "from": G1, "fromStrategy": "ONE_BY_ONE"},
     {"to": ["user/1001", "+919812300001", "+919812300009"], "mode": "sequential"}),
])
def test_numbers_agents_and_groups_with_their_strategies(change: dict[str, str], a: dict[str, Any]) -> None:
    assert native(**change)["a"] == {**a, "timeout": 30}


def test_ring_times_retries_and_clis_are_each_partys() -> None:
    document = native(fromRingTime="20", toRingTime="50", fromRetryCount="1", toRetryCount="3",
                      fromCLI="8040001000", toCLI="+918040001001")
    assert document["a"] == {"to": ["+919876543210"], "mode": "sequential", "timeout": 20, "retries": 1,
                             "caller_id_number": "8040001000"}
    assert document["b"] == {"to": ["+919812345678"], "mode": "sequential", "timeout": 50, "retries": 3,
                             "caller_id_number": "+918040001001"}


@pytest.mark.parametrize(("change", "expected"), [
    ({"timeLimit": "300"}, {"max_duration": 300}),
    ({"timeLimit": "0"}, {}),
    ({"timeLimit": "300", "timeLimitHangup": "false"}, {}),
    ({"timeLimit": "300", "timeLimtAlert": "120,240"}, {"max_duration": 300, "warnings": [{"after": 120},
                                                                                          {"after": 240}]}),
    ({"timeLimit": "300", "timeLimitAlert": "120"}, {"max_duration": 300, "warnings": [{"after": 120}]}),
    ({"timeLimit": "300", "timeLimitHangup": "FALSE", "timeLimtAlert": "120"},
     {"warnings": [{"after": 120}]}),
    ({"timeLimit": "300", "timeLimtAlert": "120,240", "alertAudio": "1610448601_84.wav"},
     {"max_duration": 300, "warnings": [{"after": 120, "sound": {"file": "sarv/1610448601_84.wav"}},
                                        {"after": 240, "sound": {"file": "sarv/1610448601_84.wav"}}]}),
    ({"timeLimit": "300", "timeLimtAlert": "120,240", "alertAudio": "%s,1610448601_85.wav" % M1},
     {"max_duration": 300, "warnings": [{"after": 120, "sound": {"file": "sarv/1610448601_84.wav"}},
                                        {"after": 240, "sound": {"url": "https://media.example.com/85.wav"}}]}),
    ({"ringTone": "1610448601_84.wav"}, {"ringback": {"file": "sarv/1610448601_84.wav"}}),
    ({"ringTone": M2}, {"ringback": {"url": "https://media.example.com/85.wav"}}),
])
def test_time_limit_alerts_and_ring_tone(change: dict[str, str], expected: dict[str, Any]) -> None:
    document = native(**change)
    assert {k: v for k, v in document.items() if k not in ("a", "b", "dial_first")} == expected


@pytest.mark.parametrize(("change", "code"), [
    ({"user_id": None}, "1002"),
    ({"user_id": "123"}, "1013"),
    ({"token": None}, "1014"),
    ({"token": ""}, "1014"),
    ({"fromType": ""}, "1502"),
    ({"fromType": "person"}, "1503"),
    ({"toType": ""}, "1504"),
    ({"toType": "queue"}, "1505"),
    ({"from": None}, "1506"),
    ({"to": ""}, "1507"),
    ({"from": "98765abc"}, "1508"),
    ({"from": "12"}, "1508"),
    ({"to": "5550123"}, "1509"),
    ({"from": "9876543210,09876543210"}, "1510"),
    ({"to": "9812345678,+919812345678"}, "1511"),
    ({"fromType": "agent", "from": "42"}, "1512"),
    ({"toType": "agent", "to": "42"}, "1513"),
    ({"fromType": "agent", "from": "%s,%s" % (U1, U1)}, "1514"),
    ({"toType": "agent", "to": "%s, %s" % (U1, U1)}, "1515"),
    ({"fromType": "group", "from": "%s,%s" % (G1, G1)}, "1516"),
    ({"toType": "group", "to": "%s,%s" % (G1, G2)}, "1517"),
    ({"fromType": "group", "from": "sales"}, "1518"),
    ({"toType": "group", "to": "sales"}, "1519"),
    ({"from": None, "to": None}, "1521"),
    ({"fromStrategy": "RANDOM"}, "1522"),
    ({"toStrategy": ""}, "1523"),
    ({"fromRingTime": "ten"}, "1524"),
    ({"fromRingTime": "3"}, "1524"),
    ({"fromRingTime": "-5"}, "1525"),
    ({"toRingTime": "1.5"}, "1526"),
    ({"toRingTime": "-1"}, "1527"),
    ({"fromRetryCount": "x"}, "1528"),
    ({"fromRetryCount": "-1"}, "1529"),
    ({"toRetryCount": "2.0"}, "1530"),
    ({"toRetryCount": "-3"}, "1531"),
    ({"timeLimit": ""}, "1532"),
    ({"timeLimit": "-60"}, "1533"),
    ({"timeLimit": "sixty"}, "1534"),
    ({"timeLimit": "5"}, "1534"),
    ({"timeLimit": "99999"}, "1534"),
    ({"mode": "Test"}, "1539"),
    ({"colour": "red"}, "1539"),
    ({"timeLimitHangup": "yes"}, "1539"),
    ({"sticky": "yes"}, "1539"),
    ({"timeLimtAlert": "120"}, "1545"),
    ({"timeLimit": "300", "timeLimtAlert": "120,abc"}, "1545"),
    ({"timeLimit": "300", "timeLimtAlert": "120,120"}, "1545"),
    ({"timeLimit": "300", "timeLimtAlert": "1,2,3,4,5,6"}, "1545"),
    ({"timeLimit": "300", "timeLimtAlert": "120", "timeLimitAlert": "120"}, "1545"),
    ({"alertAudio": M1}, "1546"),
    ({"timeLimit": "300", "timeLimtAlert": "120,200,250", "alertAudio": "%s,%s" % (M1, M2)}, "1546"),
    ({"timeLimit": "300", "timeLimtAlert": "300"}, "1547"),
    ({"fromRetryCount": "4"}, "1548"),
    ({"toRetryCount": "9"}, "1549"),
    ({"fromRingTime": "51"}, "1550"),
    ({"toRingTime": "60"}, "1551"),
    ({"from": ",".join("98765432%02d" % i for i in range(6))}, "1552"),
    ({"to": ",".join("98123456%02d" % i for i in range(6))}, "1553"),
    ({"fromCLI": "abc"}, "1554"),
    ({"toCLI": "+91 80"}, "1555"),
    ({"stickyTimeType": "Day"}, "1561"),
    ({"stickyAgentBusy": "retrySame", "sticky": "no"}, "1561"),
    ({"toType": "group", "to": G1, "queueTimeout": "60"}, "1563"),
    ({"fromWebLogin": "login"}, "1564"),
    ({"fromCallLogin": "logout"}, "1565"),
    ({"toWebLogin": "login"}, "1566"),
    ({"toCallLogin": "login"}, "1567"),
    ({"queueTimeout": "60"}, "1568"),
    ({"fromCLI": "1" * 51}, "1569"),
    ({"fromCLI": "AGENT_CLI"}, "1582"),
    ({"toCLI": "AGENT_CLI"}, "1583"),
])
def test_every_supported_parameters_documented_error_code(change: dict[str, str | None], code: str) -> None:
    with pytest.raises(sarv.Refused) as info:
        native(**change)
    assert info.value.code == code, info.value.message
    assert info.value.message


@pytest.mark.parametrize(("change", "code"), [
    ({"fromType": "agent", "from": U3}, "1578"),
    ({"toType": "group", "to": G2}, "1579"),
    ({"fromType": "agent", "from": uuid.UUID(int=99).hex}, "1512"),
    ({"toType": "group", "to": uuid.UUID(int=99).hex}, "1519"),
    ({"fromType": "agent", "from": U1, "to": "9812300001"}, "1520"),
    ({"ringTone": "nothing.wav"}, "1535"),
    ({"timeLimit": "300", "timeLimtAlert": "120", "alertAudio": "nothing.wav"}, "1546"),
])
def test_what_the_account_does_not_hold_is_refused(change: dict[str, str], code: str) -> None:
    with pytest.raises(sarv.Refused) as info:
        native(**change)
    assert info.value.code == code, info.value.message


def test_agents_expanding_past_the_destination_limit_are_1552() -> None:
    config = dataclasses.replace(CONFIG, max_destinations=3)
    request = sarv.parse_request(sarv.parameters(list({**BASE, "fromType": "agent",
                                                       "from": "%s,%s" % (U1, U2)}.items())), config)
    with pytest.raises(sarv.Refused) as info:
        sarv.native_request(request, DIRECTORY, config)
    assert info.value.code == "1552"


@pytest.mark.parametrize(("args", "code"), [
    ([("from", "1"), ("from", "2")], "1539"),
    ([("x" * 100, "1")], "1539"),
    ([("\x00", "1")], "1539"),
])
def test_repeated_and_unknown_parameters(args: list[tuple[str, str]], code: str) -> None:
    with pytest.raises(sarv.Refused) as info:
        sarv.parameters(args)
    assert info.value.code == code


@pytest.mark.parametrize(("field", "code"), [
    ("a", "1508"), ("a.to.1", "1508"), ("b.to", "1509"), ("a.timeout", "1524"), ("b.timeout", "1526"),
    ("a.retries", "1528"), ("b.retries", "1530"), ("a.caller_id_number", "1554"), ("b.caller_id_number", "1555"),
    ("caller_id_number", "1555"), ("max_duration", "1534"), ("warnings.0.after", "1545"),
    ("warnings.1.sound.url", "1546"), ("ringback.url", "1535"), ("node", "1539"),
])
def test_native_refusals_carry_the_parameters_code(field: str, code: str) -> None:
    assert sarv.refusal(ValidationError(field, "x"), parse()).code == code


def test_native_refusals_of_an_agent_are_unavailable() -> None:
    assert sarv.refusal(ValidationError("a.to.0", "x"), parse(fromType="agent", **{"from": U1})).code == "1578"


def test_accepted_no_op_values() -> None:
    assert native(sticky="no", fromWebLogin="na", toCallLogin="NA", mode="Live") == native()


# ------------------------------------------------------------------ HTTP


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = dataclasses.replace(CONFIG, redis_url=redis_server.url, key_prefix=key_prefix,
                                 media_url_prefixes=("https://media.example.com/",))
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=600))
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Tenant:
    """An account with two agents, a group, an announcement and a token."""

    def __init__(self, client: FlaskClient, **key: Any) -> None:
        auth = {"Authorization": "Bearer " + OPERATOR}

        def made(path: str, body: dict[str, Any]) -> str:
            response = client.post(path, json=body, headers=auth)
            assert response.status_code == 201, response.get_json()
            return str(response.get_json()["id"])

        self.id = made("/v1/accounts", {"name": "sarv"})
        base = "/v1/accounts/" + self.id
        self.ann = made(base + "/users", {"name": "Ann", "endpoint": "user/1001"})
        self.bob = made(base + "/users", {"name": "Bob", "follow_me": "+919812300002"})
        self.group = made(base + "/groups", {"name": "sales", "members": [{"user": self.ann}, {"user": self.bob}],
                                             "strategy": "sequential"})
        self.media = made(base + "/media", {"name": "1610448601_84.wav", "file": "sarv/84.wav"})
        response = client.post(base + "/keys", json={"name": "sarv", "scopes": ["place", "read"], **key}, headers=auth)
        self.token = response.get_json()["token"]


@pytest.fixture
def tenant(client: FlaskClient) -> Tenant:
    return Tenant(client)


def call(client: FlaskClient, tenant: Tenant, method: str = "post", **params: str) -> tuple[int, dict[str, Any]]:
    query = urlencode({"user_id": tenant.id, "token": tenant.token, **params})
    response = getattr(client, method)("/v2/clickToCall/para?" + query, headers={"cache-control": "no-cache"})
    return response.status_code, response.get_json()


def the_call(client: FlaskClient, tenant: Tenant, callid: str) -> dict[str, Any]:
    response = client.get("/v1/calls/" + callid, headers={"Authorization": "Bearer " + tenant.token})
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("method", ["post", "get"])
def test_the_documented_example(client: FlaskClient, tenant: Tenant, method: str) -> None:
    # curl -X POST 'https://s-ct3.sarv.com/v2/clickToCall/para?user_id=USER_ID&token=TOKEN&from=FROM_NUMBER&to=TO_NUMBER'
    status, reply = call(client, tenant, method, **{"from": "9876543210", "to": "9812345678"})
    assert status == 200, reply
    assert set(reply) == {"callid", "status", "code"} and (reply["status"], reply["code"]) == ("success", "200")
    placed = the_call(client, tenant, reply["callid"])
    assert placed["account"] == tenant.id
    assert (placed["a"], placed["b"]) == ("+919876543210", "+919812345678")


def test_agents_groups_time_limit_and_alerts(client: FlaskClient, tenant: Tenant) -> None:
    status, reply = call(client, tenant, **{"fromType": "agent", "from": tenant.ann, "toType": "number",
                                            "to": "9812345678", "timeLimit": "300", "timeLimtAlert": "120,240",
                                            "alertAudio": "1610448601_84.wav", "toCLI": "8040001000"})
    assert status == 200, reply
    placed = the_call(client, tenant, reply["callid"])["request"]
    assert placed["a"] == {"to": "user/1001", "mode": "simultaneous"}
    assert placed["b"] == {"to": "+919812345678", "caller_id_number": "8040001000"}
    assert placed["max_duration"] == 300
    assert placed["warnings"] == [{"after": 120, "sound": {"file": "sarv/84.wav"}},
                                  {"after": 240, "sound": {"file": "sarv/84.wav"}}]
    status, reply = call(client, tenant, **{"from": "9876543210", "toType": "group", "to": tenant.group})
    assert status == 200, reply
    assert the_call(client, tenant, reply["callid"])["b"] == ["user/1001", "+919812300002"]


@pytest.mark.parametrize(("params", "status", "code"), [
    ({"user_id": None}, 401, "1002"),
    ({"token": None}, 401, "1014"),
    ({"token": "esk_wrong"}, 401, "1020"),
    ({"user_id": uuid.UUID(int=5).hex}, 401, "1013"),
    ({"from": None}, 400, "1506"),
    ({"fromRingTime": "99"}, 400, "1550"),
    ({"sticky": "yes"}, 400, "1539"),
])
def test_errors_in_sarvs_shape(client: FlaskClient, tenant: Tenant, params: dict[str, str | None], status: int,
                               code: str) -> None:
    query = {"user_id": tenant.id, "token": tenant.token, "from": "9876543210", "to": "9812345678", **params}
    response = client.post("/v2/clickToCall/para?" + urlencode({k: v for k, v in query.items() if v is not None}))
    assert response.status_code == status
    reply = response.get_json()
    assert set(reply) == {"message", "status", "code"} and (reply["status"], reply["code"]) == ("error", code)


def test_another_accounts_token_is_an_invalid_user_id(client: FlaskClient, tenant: Tenant) -> None:
    other = Tenant(client)
    query = urlencode({"user_id": tenant.id, "token": other.token, "from": "9876543210", "to": "9812345678"})
    response = client.post("/v2/clickToCall/para?" + query)
    assert (response.status_code, response.get_json()["code"]) == (401, "1013")


def test_a_form_encoded_body_is_read_too(client: FlaskClient, tenant: Tenant) -> None:
    response = client.post("/v2/clickToCall/para?" + urlencode({"user_id": tenant.id, "token": tenant.token}),
                           data={"from": "9876543210", "to": "9812345678"})
    assert response.status_code == 200, response.get_json()
    response = client.post("/v2/clickToCall/para?" + urlencode({"user_id": tenant.id, "token": tenant.token}),
                           json={"from": "9876543210", "to": "9812345678"})
    assert (response.status_code, response.get_json()["code"]) == (400, "1539")


@pytest.mark.parametrize(("key", "params", "status", "code"), [
    ({"scopes": ["read"]}, {}, 403, "403"),
    ({"caller_ids": ["8040001000"]}, {"toCLI": "8040009999"}, 400, "1555"),
])
def test_the_tokens_scopes_and_caller_ids_apply(client: FlaskClient, key: dict[str, Any], params: dict[str, str],
                                                status: int, code: str) -> None:
    tenant = Tenant(client, **key)
    got, reply = call(client, tenant, **{"from": "9876543210", "to": "9812345678", **params})
    assert (got, reply["code"]) == (status, code), reply


def test_a_tokens_rate_is_429(client: FlaskClient) -> None:
    tenant = Tenant(client, rate_per_minute=1)
    assert call(client, tenant, **{"from": "9876543210", "to": "9812345678"})[0] == 200
    assert call(client, tenant, **{"from": "9876543210", "to": "9812345678"})[1]["code"] == "429"


def test_other_methods_are_405(client: FlaskClient) -> None:
    response = client.delete("/v2/clickToCall/para")
    assert response.status_code == 405 and response.headers["Allow"]


def test_the_openapi_document_lists_every_parameter(client: FlaskClient) -> None:
    document = json.loads(client.get("/v1/openapi/sarv.json").data)
    post = document["paths"]["/v2/clickToCall/para"]["post"]
    assert [p["name"] for p in post["parameters"]] == list(sarv.PARAMETERS)


def test_a_number_on_a_do_not_call_list_is_refused_in_sarvs_shape(client: FlaskClient, tenant: Tenant) -> None:
    response = client.post("/v1/dnc", json=["+919812345678"], headers={"Authorization": "Bearer " + OPERATOR})
    assert response.status_code == 201
    status, reply = call(client, tenant, **{"from": "9876543210", "to": "9812345678"})
    assert status == 400 and reply["status"] == "error"
    assert "do_not_call" in reply["message"]
    status, reply = call(client, tenant, **{"from": "9876543210", "to": "9812345679"})
    assert status == 200, reply

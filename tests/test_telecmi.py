"""TeleCMI's click2call: the translation (pure tables), then the surface
over HTTP (the Flask test client, a real Redis), from TeleCMI's own examples."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine import telecmi
from eslengine.accounts import Directory
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "op-telecmi-5521"
U1, U2, D1, A1 = (uuid.UUID(int=i).hex for i in (1, 2, 3, 9))
DIRECTORY = Directory(
    users={U1: {"name": "Ann", "endpoint": "user/101", "follow_me": "+919812345678", "ring": "simultaneous"},
           U2: {"name": "Bob", "ring": "sequential"}},
    devices={D1: {"name": "desk", "endpoint": "user/102", "owner": U1}},
)
BASE = {"user_id": U1, "secret": "s", "to": 919200000000}


# ------------------------------------------------------------------ pure


def test_the_documented_json_example_reads_as_given() -> None:
    got = telecmi.parse_request({"user_id": U1, "secret": "2e0d75-d843-45-945-4171dd7a", "to": 919200000000,
                                 "extra_params": {"crm": True}, "webrtc": True, "followme": False,
                                 "callerid": 919800000000})
    assert got == telecmi.Click2Call(user_id=U1, secret="2e0d75-d843-45-945-4171dd7a", to="+919200000000",
                                     webrtc=True, followme=False, callerid="+919800000000",
                                     extra_params={"crm": True})


def test_the_documented_query_string_reads_as_the_json_body() -> None:
    args = [("user_id", U1), ("secret", "x"), ("to", "919200000000"),
            ("extra_params[name]", '{"click2call":"true"}'), ("webrtc", "true"), ("followme", "false"),
            ("callerid", "919800000000")]
    document = telecmi.query_request(args)
    assert document["extra_params"] == {"name": '{"click2call":"true"}'}
    got = telecmi.parse_request(document)
    assert (got.to, got.callerid, got.webrtc, got.followme) == ("+919200000000", "+919800000000", True, False)


@pytest.mark.parametrize(("args", "expected"), [
    ([("extra_params", '{"crm": true}')], {"extra_params": {"crm": True}}),
    ([("extra_params[a]", "1"), ("extra_params[b]", "2")], {"extra_params": {"a": "1", "b": "2"}}),
    ([("to", "+919200000000")], {"to": "+919200000000"}),
])
def test_query_strings(args: list[tuple[str, str]], expected: dict[str, Any]) -> None:
    assert telecmi.query_request(args) == expected


@pytest.mark.parametrize(("args", "msg"), [
    ([("to", "1"), ("to", "2")], "to given more than once"),
    ([("colour", "red")], "unknown parameter 'colour'"),
    ([("extra_params[a]", "1"), ("extra_params[a]", "2")], "extra_params[a] given more than once"),
    ([("extra_params", "{}"), ("extra_params[a]", "2")], "extra_params given both"),
    ([("extra_params", "{nope")], "extra_params: a JSON object"),
    ([("extra_params[a][b]", "1")], "unknown parameter"),
])
def test_bad_query_strings_are_400_naming_the_parameter(args: list[tuple[str, str]], msg: str) -> None:
    with pytest.raises(telecmi.Refused) as info:
        telecmi.query_request(args)
    assert info.value.status == 400 and info.value.msg.startswith(msg)


@pytest.mark.parametrize(("change", "status", "msg"), [
    ({"user_id": None}, 400, "user_id parameter missing"),
    ({"user_id": ""}, 400, "user_id parameter missing"),
    ({"secret": None}, 400, "secret parameter missing"),
    ({"to": None}, 400, "to parameter missing"),
    ({"webrtc": False}, 400, "Enable webrtc or followme"),
    ({"webrtc": "false", "followme": "false"}, 400, "Enable webrtc or followme"),
    ({"webrtc": "yes"}, 400, "webrtc: true or false"),
    ({"followme": 1}, 400, "followme: true or false"),
    ({"to": "91 92000"}, 400, "to: a number"),
    ({"to": True}, 400, "to: a number"),
    ({"to": -5}, 400, "to: a number"),
    ({"to": "1234567890123456"}, 400, "to: a number"),
    ({"callerid": "anonymous"}, 400, "callerid: a number"),
    ({"extra_params": [1]}, 400, "extra_params: a JSON object"),
    ({"user_id": 101}, 400, "user_id: a string"),
    ({"secret": "x" * 300}, 400, "secret: a string"),
    ({"colour": "red"}, 400, "unknown parameter 'colour'"),
])
def test_bad_requests_are_refused_as_telecmi_does(change: dict[str, Any], status: int, msg: str) -> None:
    data = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(telecmi.Refused) as info:
        telecmi.parse_request(data)
    assert (info.value.status, info.value.msg[:len(msg)]) == (status, msg)


def test_a_body_that_is_not_an_object_is_400() -> None:
    with pytest.raises(telecmi.Refused) as info:
        telecmi.parse_request([1])
    assert info.value.status == 400


@pytest.mark.parametrize(("webrtc", "followme", "ring"), [
    (True, False, ["user/101", "user/102"]),
    (False, True, ["+919812345678"]),
    (True, True, ["user/101", "user/102", "+919812345678"]),
])
def test_webrtc_rings_the_users_devices_and_followme_its_number(webrtc: bool, followme: bool,
                                                               ring: list[str]) -> None:
    request = telecmi.Click2Call(user_id=U1, secret="s", to="+919200000000", webrtc=webrtc, followme=followme,
                                 callerid="+919800000000", extra_params={"crm": True})
    assert telecmi.native_request(request, DIRECTORY) == {
        "a": {"to": ring, "mode": "simultaneous", "show_other_number": True},
        "b": {"to": "+919200000000", "caller_id_number": "+919800000000"},
        "dial_first": "a", "metadata": {"crm": True}}


def test_a_key_with_a_caller_id_list_does_not_show_the_user_the_number() -> None:
    request = telecmi.Click2Call(user_id=U1, secret="s", to="+919200000000")
    assert telecmi.native_request(request, DIRECTORY, show_to_number=False)["a"] == {
        "to": ["user/101", "user/102"], "mode": "simultaneous"}


@pytest.mark.parametrize(("user_id", "webrtc", "followme", "status", "msg"), [
    (U2, True, False, 400, "the user has no a registered device (webrtc) to ring"),
    (U2, False, True, 400, "the user has no a follow-me number (followme) to ring"),
    (uuid.UUID(int=77).hex, True, False, 404, "invalid user_id"),
])
def test_a_user_with_nothing_to_ring_or_none_at_all(user_id: str, webrtc: bool, followme: bool, status: int,
                                                    msg: str) -> None:
    request = telecmi.Click2Call(user_id=user_id, secret="s", to="+919200000000", webrtc=webrtc, followme=followme)
    with pytest.raises(telecmi.Refused) as info:
        telecmi.native_request(request, DIRECTORY)
    assert (info.value.status, info.value.msg) == (status, msg)


@pytest.mark.parametrize(("user_id", "key_account", "sees_all", "account"), [
    (U1, A1, False, A1),
    (U1 + "_" + A1, A1, False, A1),
    (U1 + "_" + A1, "", True, A1),
    (U1, "", True, None),
    (U1 + "_" + U2, A1, False, None),
    ("101_1111112", A1, False, None),
    (U1 + "_nothex", "", True, None),
])
def test_which_account_a_user_id_names(user_id: str, key_account: str, sees_all: bool, account: str | None) -> None:
    request = telecmi.Click2Call(user_id=user_id, secret="s", to="+919200000000")
    if account is None:
        with pytest.raises(telecmi.Refused) as info:
            telecmi.account_of(request, key_account, sees_all)
        assert info.value.status == 404
    else:
        assert telecmi.account_of(request, key_account, sees_all) == account


@pytest.mark.parametrize(("field", "msg"), [
    ("b", "to: x"), ("b.caller_id_number", "callerid: x"), ("caller_id_number", "callerid: x"),
    ("a.to.1", "user_id: x"), ("metadata", "extra_params: x"), ("timeout", "timeout: x"),
])
def test_native_refusals_name_the_telecmi_parameter(field: str, msg: str) -> None:
    refused = telecmi.refusal(ValidationError(field, "x"))
    assert (refused.status, refused.msg) == (400, msg)


# ------------------------------------------------------------------ HTTP


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}))
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=600))
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Tenant:
    """An account with a user (softphone, desk phone, follow-me number) and
    a key whose token is the TeleCMI secret."""

    def __init__(self, client: FlaskClient, **key: Any) -> None:
        auth = {"Authorization": "Bearer " + OPERATOR}

        def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = client.post(path, json=body, headers=auth)
            assert response.status_code == 201, response.get_json()
            return response.get_json()  # type: ignore[no-any-return]

        self.account = made("/v1/accounts", {"name": "telecmi"})["id"]
        base = "/v1/accounts/" + self.account
        self.user = made(base + "/users", {"name": "Ann", "endpoint": "user/101", "follow_me": "+919812345678"})["id"]
        made(base + "/devices", {"name": "desk", "endpoint": "user/102", "owner": self.user})
        self.secret = made(base + "/keys", {"name": "crm", "scopes": ["place", "read"], **key})["token"]


@pytest.fixture
def tenant(client: FlaskClient) -> Tenant:
    return Tenant(client)


def the_call(client: FlaskClient, request_id: str, secret: str) -> dict[str, Any]:
    response = client.get("/v1/calls/" + request_id, headers={"Authorization": "Bearer " + secret})
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_the_documented_get_example(client: FlaskClient, tenant: Tenant) -> None:
    url = ("/v2/webrtc/click2call?user_id=%s&secret=%s&to=919200000000&extra_params[name]=%s"
           "&webrtc=true&followme=false&callerid=919800000000"
           % (tenant.user, tenant.secret, quote('{"click2call":"true"}')))
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    reply = response.get_json()
    assert set(reply) == {"code", "msg", "request_id"}
    assert (reply["code"], reply["msg"]) == (200, "Call initiated")
    call = the_call(client, reply["request_id"], tenant.secret)
    assert call["account"] == tenant.account
    assert call["a"] == {"to": ["user/101", "user/102"], "mode": "simultaneous", "show_other_number": True}
    assert call["b"] == {"to": "+919200000000", "caller_id_number": "+919800000000"}
    assert call["request"]["metadata"] == {"name": '{"click2call":"true"}'}


def test_the_documented_post_example(client: FlaskClient, tenant: Tenant) -> None:
    response = client.post("/v2/webrtc/click2call", json={
        "user_id": tenant.user, "secret": tenant.secret, "to": 919200000000, "extra_params": {"crm": True},
        "webrtc": True, "followme": False, "callerid": 919800000000})
    assert response.status_code == 200, response.get_json()
    reply = response.get_json()
    assert (reply["code"], reply["msg"]) == (200, "Call initiated")
    call = the_call(client, reply["request_id"], tenant.secret)
    assert call["b"]["to"] == "+919200000000" and call["request"]["metadata"] == {"crm": True}


def test_followme_rings_the_users_number(client: FlaskClient, tenant: Tenant) -> None:
    response = client.post("/v2/webrtc/click2call", json={
        "user_id": tenant.user + "_" + tenant.account, "secret": tenant.secret, "to": "919200000000",
        "webrtc": False, "followme": True})
    assert response.status_code == 200, response.get_json()
    assert the_call(client, response.get_json()["request_id"], tenant.secret)["a"]["to"] == "+919812345678"


@pytest.mark.parametrize(("query", "status", "msg"), [
    ("secret={secret}&to=919200000000", 400, "user_id parameter missing"),
    ("user_id={user}&to=919200000000", 400, "secret parameter missing"),
    ("user_id={user}&secret={secret}&to=919200000000&webrtc=false", 400, "Enable webrtc or followme"),
    ("user_id={user}&secret=2e0d75-d843-45-945-4171dd7a&to=919200000000", 407, "invalid app secret"),
    ("user_id={user}&secret=esk_nothing&to=919200000000", 407, "invalid app secret"),
    ("user_id=101_1111112&secret={secret}&to=919200000000", 404, "invalid user_id"),
    ("user_id={other}&secret={secret}&to=919200000000", 404, "invalid user_id"),
    ("user_id={user}&secret={secret}&to=919200000000&callerid=12", 400, "callerid: a number"),
    ("user_id={user}&secret={secret}&to=919200000000&extra_params[a%%7Bb]=%%24%%7Bx%%7D&x=1", 400,
     "unknown parameter 'x'"),
])
def test_documented_errors(client: FlaskClient, tenant: Tenant, query: str, status: int, msg: str) -> None:
    other = uuid.UUID(int=5).hex
    response = client.get("/v2/webrtc/click2call?" + query.format(user=tenant.user, secret=tenant.secret,
                                                                  other=other))
    assert response.status_code == status
    assert response.get_json() == {"code": status, "msg": response.get_json()["msg"]}
    assert response.get_json()["msg"].startswith(msg)


def test_another_accounts_user_is_an_invalid_user_id(client: FlaskClient, tenant: Tenant) -> None:
    other = Tenant(client)
    response = client.post("/v2/webrtc/click2call", json={"user_id": other.user, "secret": tenant.secret,
                                                           "to": 919200000000})
    assert (response.status_code, response.get_json()["msg"]) == (404, "invalid user_id")


def test_the_operator_key_names_the_account_in_the_user_id(client: FlaskClient, tenant: Tenant) -> None:
    body = {"user_id": tenant.user, "secret": OPERATOR, "to": 919200000000}
    assert client.post("/v2/webrtc/click2call", json=body).status_code == 404
    body["user_id"] = tenant.user + "_" + tenant.account
    response = client.post("/v2/webrtc/click2call", json=body)
    assert response.status_code == 200, response.get_json()


def test_a_secret_without_the_place_scope_is_403(client: FlaskClient) -> None:
    tenant = Tenant(client, scopes=["read"])
    response = client.post("/v2/webrtc/click2call", json={"user_id": tenant.user, "secret": tenant.secret,
                                                           "to": 919200000000})
    assert response.status_code == 403 and response.get_json()["code"] == 403


def test_a_secrets_caller_id_list_applies(client: FlaskClient) -> None:
    tenant = Tenant(client, caller_ids=["+919800000000"])
    body = {"user_id": tenant.user, "secret": tenant.secret, "to": 919200000000, "callerid": 919811111111}
    response = client.post("/v2/webrtc/click2call", json=body)
    assert response.status_code == 400 and response.get_json()["msg"].startswith("callerid: not a caller ID")
    del body["callerid"]
    response = client.post("/v2/webrtc/click2call", json=body)
    assert response.status_code == 200, response.get_json()
    call = the_call(client, response.get_json()["request_id"], tenant.secret)
    assert call["caller_id_number"] == "+919800000000" and "show_other_number" not in call["a"]


def test_a_secrets_rate_applies(client: FlaskClient) -> None:
    tenant = Tenant(client, rate_per_minute=1)
    body = {"user_id": tenant.user, "secret": tenant.secret, "to": 919200000000}
    assert client.post("/v2/webrtc/click2call", json=body).status_code == 200
    response = client.post("/v2/webrtc/click2call", json=body)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(("method", "kwargs", "status"), [
    ("post", {"data": b"{not json", "content_type": "application/json"}, 400),
    ("post", {"data": b"user_id=x", "content_type": "application/x-www-form-urlencoded"}, 400),
    ("post", {"json": [1, 2]}, 400),
    ("post", {"data": b'{"a": "' + b"x" * 70_000 + b'"}', "content_type": "application/json"}, 413),
])
def test_bad_bodies_and_methods_get_telecmis_shape(client: FlaskClient, method: str, kwargs: dict[str, Any],
                                                   status: int) -> None:
    response = getattr(client, method)("/v2/webrtc/click2call", **kwargs)
    assert response.status_code == status
    reply = response.get_json()
    assert reply["code"] == status and reply["msg"]


def test_other_methods_are_405(client: FlaskClient) -> None:
    response = client.put("/v2/webrtc/click2call", json={})
    assert response.status_code == 405 and response.headers["Allow"]


def test_a_post_with_a_query_string_is_refused(client: FlaskClient, tenant: Tenant) -> None:
    response = client.post("/v2/webrtc/click2call?user_id=" + tenant.user,
                           json={"secret": tenant.secret, "to": 919200000000})
    assert response.status_code == 400 and "query string" in response.get_json()["msg"]


def test_redis_down_is_503_in_telecmis_shape(redis_server: Any, key_prefix: str) -> None:
    config = Config(redis_url="redis://127.0.0.1:1/0", key_prefix=key_prefix, api_keys=frozenset({OPERATOR}))
    app = create_app(config, JobQueue(connect(config.redis_url, timeout=0.5), Keys(key_prefix), record_ttl=60))
    response = app.test_client().post("/v2/webrtc/click2call", json={
        "user_id": U1 + "_" + A1, "secret": OPERATOR, "to": 919200000000})
    assert response.status_code == 503 and response.get_json()["code"] == 503


def test_the_openapi_document_names_the_documented_codes(client: FlaskClient) -> None:
    document = json.loads(client.get("/v1/openapi/telecmi.json").data)
    operations = document["paths"]["/v2/webrtc/click2call"]
    assert {"200", "400", "404", "407"} <= set(operations["get"]["responses"]) & set(operations["post"]["responses"])
    assert set(document["components"]["schemas"]["Click2Call"]["properties"]) == set(telecmi.PARAMETERS)


def test_a_number_on_a_do_not_call_list_is_refused_as_telecmi_does(client: FlaskClient, tenant: Tenant) -> None:
    response = client.post("/v1/accounts/%s/dnc" % tenant.account, json=["+919200000000"],
                           headers={"Authorization": "Bearer " + OPERATOR})
    assert response.status_code == 201
    body = {"user_id": tenant.user, "secret": tenant.secret, "to": 919200000000, "webrtc": True, "followme": False}
    response = client.post("/v2/webrtc/click2call", json=body)
    assert response.status_code == 400
    assert response.get_json() == {"code": 400, "msg": "to: do_not_call"}
    response = client.post("/v2/webrtc/click2call", json={**body, "to": 919200000001})
    assert response.status_code == 200, response.get_json()

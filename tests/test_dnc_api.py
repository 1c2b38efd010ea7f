"""Do-not-call lists on the native API, and calls to listed numbers refused
(POST /v1/calls, a click-to-call connect), with a real Redis."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eslengine.config import Config
from eslengine.http import create_app
from eslengine.http.dnc_v1 import MAX_JSON_NUMBERS
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "op-dnc-5521"
AUTH = {"Authorization": "Bearer " + OPERATOR}


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> Config:
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                  allow_unvalidated_numbers=True, default_region="US")


@pytest.fixture
def queue(config: Config) -> Iterator[JobQueue]:
    client = connect(config.redis_url)
    yield JobQueue(client, Keys(config.key_prefix), record_ttl=600)
    client.close()


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def app(request: pytest.FixtureRequest, config: Config, queue: JobQueue) -> Flask:
    return create_app(config, queue, fast_intake=request.param)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def made(client: FlaskClient, path: str, body: dict[str, Any], headers: dict[str, str] = AUTH) -> dict[str, Any]:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


class Account:
    def __init__(self, client: FlaskClient, *scopes: str) -> None:
        self.id = made(client, "/v1/accounts", {"name": "acme"})["id"]
        key = made(client, "/v1/accounts/%s/keys" % self.id, {"name": "k", "scopes": list(scopes or ("place", "read", "manage"))})
        self.auth = {"Authorization": "Bearer " + key["token"]}
        self.path = "/v1/accounts/%s/dnc" % self.id


def test_numbers_are_added_checked_listed_and_removed(client: FlaskClient) -> None:
    response = client.post("/v1/dnc", json={"numbers": ["(555) 123-0001", {"number": "+1 555 123 0002",
                                                                           "reason": "complaint",
                                                                           "expires_at": "2999-01-01"}]},
                           headers=AUTH)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["written"], body["added"]) == (2, 2)
    assert [e["number"] for e in body["entries"]] == ["+15551230001", "+15551230002"]
    # Adding again adds nothing new: 200.
    again = client.post("/v1/dnc", json=["+15551230001"], headers=AUTH)
    assert again.status_code == 200 and again.get_json()["added"] == 0
    check = client.get("/v1/dnc/+15551230002", headers=AUTH).get_json()
    assert check["do_not_call"] is True
    assert check["entries"] == [{"list": "global", "number": "+15551230002", "reason": "complaint",
                                 "added_at": check["entries"][0]["added_at"], "expires_at": "2999-01-01T00:00:00Z"}]
    assert client.get("/v1/dnc/5551230009", headers=AUTH).get_json() == {"number": "+15551230009",
                                                                         "do_not_call": False, "entries": []}
    listed = client.get("/v1/dnc?limit=10", headers=AUTH).get_json()
    assert listed["size"] == 2 and listed["next_cursor"] is None
    assert [e["number"] for e in listed["entries"]] == ["+15551230001", "+15551230002"]
    assert client.delete("/v1/dnc/+15551230001", headers=AUTH).status_code == 204
    assert client.delete("/v1/dnc/+15551230001", headers=AUTH).status_code == 404
    removed = client.delete("/v1/dnc", json={"numbers": ["+15551230002", "+15551230003"]}, headers=AUTH)
    assert removed.get_json() == {"removed": 1}
    assert client.get("/v1/dnc", headers=AUTH).get_json()["size"] == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"numbers": []}, "numbers"),
    ({"numbers": "+15551230001"}, "numbers"),
    ({"numbers": ["+15551230001", "nope"]}, "numbers[1]"),
    ({"numbers": [{"number": "+15551230001", "expires_at": "2001-01-01"}]}, "numbers[0].expires_at"),
    ({"numbers": ["+15551230001"], "colour": "red"}, "colour"),
    ({"numbers": ["5551230001"], "region": "XX"}, "region"),
    ({"numbers": ["+15551230001"] * (MAX_JSON_NUMBERS + 1)}, "numbers"),
    (["+15551230001", 7], "numbers[1]"),
])
def test_a_bad_add_is_422_naming_the_field_and_adds_nothing(client: FlaskClient, body: object, field: str) -> None:
    response = client.post("/v1/dnc", json=body, headers=AUTH)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == field and response.get_json()["reason"]
    assert client.get("/v1/dnc", headers=AUTH).get_json()["size"] == 0


@pytest.mark.parametrize(("path", "query", "status"), [
    ("/v1/dnc/not-a-number", "", 422),
    ("/v1/dnc", "?limit=0", 422),
    ("/v1/dnc", "?cursor=-1", 422),
    ("/v1/dnc", "?limit=abc", 422),
])
def test_bad_reads_are_4xx_naming_the_field(client: FlaskClient, path: str, query: str, status: int) -> None:
    response = client.get(path + query, headers=AUTH)
    assert response.status_code == status
    assert response.get_json()["field"]


def test_a_bulk_import_streams_its_lines_and_reports_bad_ones(client: FlaskClient) -> None:
    lines = ["number,reason"] + ["555%07d,imported from the 2027 list" % i for i in range(4000)]
    lines[7] = "garbage"
    lines[2000] = "+15551230001,ok,1999-01-01"
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 64 * 1024  # more than any other request may send
    response = client.post("/v1/dnc", data=io.BytesIO(body), headers={**AUTH, "Content-Type": "text/csv"})
    assert response.status_code == 200, response.get_json()
    result = response.get_json()
    assert (result["lines"], result["written"], result["refused"]) == (4001, 3998, 2)
    assert [(e["line"], e["reason"].split(":")[0]) for e in result["errors"]] == [(8, "number"), (2001, "expires")]
    assert client.get("/v1/dnc/+15550000042", headers=AUTH).get_json()["do_not_call"] is True
    plain = client.post("/v1/dnc?region=GB", data=b"020 7946 0958\r\n\r\n# note\n",
                        headers={**AUTH, "Content-Type": "text/plain; charset=utf-8"})
    assert plain.get_json()["written"] == 1
    assert client.get("/v1/dnc/+442079460958", headers=AUTH).get_json()["do_not_call"] is True


def test_the_global_list_is_the_operators_and_an_accounts_list_its_own(client: FlaskClient) -> None:
    acme = Account(client)
    other = Account(client)
    # An account's key neither reads nor changes the global list.
    assert client.get("/v1/dnc", headers=acme.auth).status_code == 403
    assert client.post("/v1/dnc", json=["+15551230001"], headers=acme.auth).status_code == 403
    assert client.post(acme.path, json=["+15551230002"], headers=acme.auth).status_code == 201
    # Another account's list is "no such account".
    assert client.get(acme.path, headers=other.auth).status_code == 404
    assert client.post(acme.path, json=["+15551230003"], headers=other.auth).status_code == 404
    assert client.get("/v1/accounts/nobody/dnc", headers=AUTH).status_code == 404
    reader = made(client, "/v1/accounts/%s/keys" % acme.id, {"name": "r", "scopes": ["read"]})
    reader_auth = {"Authorization": "Bearer " + reader["token"]}
    assert client.get(acme.path, headers=reader_auth).status_code == 200
    assert client.post(acme.path, json=["+15551230004"], headers=reader_auth).status_code == 403
    # The operator sees the account's list; a check there answers for both lists.
    client.post("/v1/dnc", json=["+15551230002"], headers=AUTH)
    found = client.get(acme.path + "/+15551230002", headers=acme.auth).get_json()
    assert sorted(e["list"] for e in found["entries"]) == ["account", "global"]
    assert client.get(acme.path, headers=AUTH).get_json()["size"] == 1
    assert client.get("/v1/dnc", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_a_call_to_a_listed_number_is_refused_422_and_counted(client: FlaskClient, queue: JobQueue) -> None:
    client.post("/v1/dnc", json=["+15551230002"], headers=AUTH)
    response = client.post("/v1/calls", json={"a": "+15551230001", "b": "+15551230002"}, headers=AUTH)
    assert response.status_code == 422
    assert response.get_json() == {"error": "do_not_call", "reason": "do_not_call", "field": "b",
                                   "number": "+15551230002", "list": "global"}
    # However the number is written.
    response = client.post("/v1/calls", json={"a": {"to": ["user/1000", "+1 (555) 123-0002"]}, "b": "user/1001"},
                           headers=AUTH)
    assert response.status_code == 422 and response.get_json()["field"] == "a[1]"
    assert queue.redis.xlen(queue.keys.jobs) == 0
    assert client.get("/v1/dnc", headers=AUTH).get_json()["refused"] == {"api": 2, "dial": 0}
    # An extension is never on a list; a number that is not listed is placed.
    assert client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH).status_code == 202


def test_an_accounts_list_refuses_its_own_calls_only(client: FlaskClient) -> None:
    acme = Account(client)
    other = Account(client)
    client.post(acme.path, json=["+15551230002"], headers=acme.auth)
    body = {"a": "+15551230001", "b": "+15551230002"}
    refused = client.post("/v1/calls", json=body, headers=acme.auth)
    assert refused.status_code == 422 and refused.get_json()["list"] == "account"
    assert client.post("/v1/calls", json=body, headers=other.auth).status_code == 202
    assert client.get(acme.path, headers=acme.auth).get_json()["refused"] == {"api": 1, "dial": 0}


def test_a_saved_click_to_call_connect_to_a_listed_contact_is_refused(client: FlaskClient) -> None:
    acme = Account(client)
    resource = made(client, "/v1/accounts/%s/clicktocall" % acme.id,
                    {"name": "sales", "extension": "+15551230001", "auth_required": True}, headers=acme.auth)
    client.post(acme.path, json=["+15551230005"], headers=acme.auth)
    path = "/v1/accounts/%s/clicktocall/%s/connect" % (acme.id, resource["id"])
    response = client.post(path, json={"contact": "+15551230005"}, headers=acme.auth)
    assert response.status_code == 422, response.get_json()
    assert (response.get_json()["reason"], response.get_json()["field"]) == ("do_not_call", "b")
    assert client.post(path, json={"contact": "+15551230006"}, headers=acme.auth).status_code == 202


def test_a_call_asks_for_its_lane(client: FlaskClient, queue: JobQueue) -> None:
    response = client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000", "lane": "bulk"}, headers=AUTH)
    assert response.status_code == 202
    assert queue.redis.xlen(queue.keys.jobs_bulk) == 1 and queue.redis.xlen(queue.keys.jobs) == 0
    call = client.get(response.headers["Location"], headers=AUTH).get_json()
    assert call["request"]["lane"] == "bulk"
    bad = client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000", "lane": "fast"}, headers=AUTH)
    assert bad.status_code == 422 and bad.get_json()["field"] == "lane"
    assert client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH).status_code == 202
    assert queue.redis.xlen(queue.keys.jobs) == 1


def test_the_openapi_document_describes_the_lane(client: FlaskClient) -> None:
    doc = json.loads(client.get("/v1/openapi.json").data)
    assert doc["components"]["schemas"]["CallRequest"]["properties"]["lane"]["enum"] == ["interactive", "bulk"]


def test_the_openapi_document_describes_every_dnc_route(app: Flask, client: FlaskClient) -> None:
    import re

    doc = json.loads(client.get("/v1/openapi.json").data)
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("dnc_v1."):
            path = re.sub(r"<(\w+)>", r"{\1}", rule.rule).replace("{account_id}", "{account}")
            routes |= {(path, m.lower()) for m in rule.methods or () if m not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, item in doc["paths"].items() if "dnc" in path
                  for method in item if method != "parameters"}
    assert documented == routes
    for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', json.dumps(doc)):
        assert ref in doc["components"]["schemas"]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4), max_leaves=12)
_item = st.sampled_from(["+15551230001", "(555) 123-0002", "", "+1", "user/1000"]) | st.fixed_dictionaries(
    {}, optional={"number": _json, "reason": _json, "expires_at": _json, "other": _json})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_json, st.lists(_item, max_size=4), st.fixed_dictionaries(
    {}, optional={"numbers": st.lists(_item, max_size=4) | _json, "region": _json, "x": _json})),
    raw=st.binary(max_size=200), number=st.text(max_size=30))
def test_no_client_input_gets_a_500(client: FlaskClient, body: object, raw: bytes, number: str) -> None:
    for response in (
        client.post("/v1/dnc", json=body, headers=AUTH),
        client.delete("/v1/dnc", json=body, headers=AUTH),
        client.post("/v1/dnc", data=raw, headers={**AUTH, "Content-Type": "text/csv"}),
        client.post("/v1/dnc", data=raw, headers={**AUTH, "Content-Type": "application/json"}),
        client.get("/v1/dnc/" + quote(number, safe=""), headers=AUTH),
        client.get("/v1/dnc?cursor=%s&limit=%s" % (quote(number), quote(number)), headers=AUTH),
    ):
        assert response.status_code < 500, (response.status_code, response.get_data()[:300])
        if response.status_code >= 400 and response.status_code != 404:
            assert response.is_json and response.get_json()["reason"], response.get_data()[:300]


@pytest.mark.parametrize(("chunks", "lines"), [
    ([b"a\nb", b"c\n", b"d"], [b"a\n", b"bc\n", b"d"]),
    ([b"a\n", b"", b"\n"], [b"a\n", b"\n"]),
    ([b"x" * 5000 + b"\nok\n"], [b"x" * 4096 + b"\n", b"ok\n"]),
    ([b"y" * 3000, b"y" * 3000, b"y" * 3000, b"\nok"], [b"y" * 4096, b"ok"]),
    ([], []),
])
def test_a_body_is_split_into_lines_as_it_comes(chunks: list[bytes], lines: list[bytes]) -> None:
    from eslengine.http.dnc_v1 import split_lines

    assert list(split_lines(iter(chunks))) == lines

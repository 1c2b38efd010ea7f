"""Campaigns over HTTP (eslengine.http.campaigns_v1) against the suite's Redis."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eslengine.apikeys import KeyStore
from eslengine.config import Config
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect

KEY = "k-camp-1"
OTHER = "k-camp-2"
AUTH = {"Authorization": "Bearer " + KEY}
CAMPAIGN: dict[str, Any] = {"name": "autumn", "call": {"b": "user/1000"}, "pacing": {"cps": 5, "max_concurrent": 2}}


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY, OTHER}),
                    allow_unvalidated_numbers=True)
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(key_prefix)))
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def create(client: FlaskClient, **extra: Any) -> dict[str, Any]:
    reply = client.post("/v1/campaigns", json={**CAMPAIGN, **extra}, headers=AUTH)
    assert reply.status_code == 201, reply.json
    return reply.json  # type: ignore[no-any-return]


def test_a_campaign_is_created_with_its_contacts_and_shows_its_counters(client: FlaskClient) -> None:
    made = create(client, contacts=[{"number": "+15551230001"}, {"number": "nope"},
                                    {"number": "+15551230002", "id": "c2", "variables": {"city": "Oslo"}}])
    assert made["upload"]["added"] == 2 and made["upload"]["refused"] == 1
    assert made["upload"]["errors"] == [{"row": 2, "field": "number", "reason": made["upload"]["errors"][0]["reason"]}]
    shown = client.get("/v1/campaigns/" + made["id"], headers=AUTH).json
    assert shown["state"] == "created" and shown["contacts"] == 2
    assert shown["counters"]["queued"] == 2 and shown["counters"]["done"] == 0
    assert shown["campaign"]["pacing"] == {"cps": 5.0, "max_concurrent": 2}
    contact = client.get("/v1/campaigns/%s/contacts/c2" % made["id"], headers=AUTH).json
    assert contact["numbers"] == ["+15551230002"] and contact["state"] == "queued" and contact["tries"] == 0


def test_a_csv_upload_adds_the_good_rows_and_reports_each_bad_one(client: FlaskClient) -> None:
    made = create(client)
    rows = ["number,id,caller_id,var_first,city"]
    rows += ["+1555123%04d,c%d,,Ann,Oslo" % (i, i) for i in range(2500)]
    rows += ["1000 &bridge(x),bad1,,,", "+15551239999,c7,,,", "+15551239998,c9999,12ab,,", ""]
    body = ("\n".join(rows) + "\n").encode()
    reply = client.post("/v1/campaigns/%s/contacts" % made["id"], data=io.BytesIO(body), headers=AUTH,
                        content_type="text/csv")
    assert reply.status_code == 200, reply.json
    result = reply.json
    assert (result["rows"], result["added"], result["refused"]) == (2503, 2500, 3)
    assert [(e["row"], e["field"]) for e in result["errors"]] == [(2502, "number"), (2503, "id"), (2504, "caller_id")]
    shown = client.get("/v1/campaigns/" + made["id"], headers=AUTH).json
    assert shown["contacts"] == 2500 and shown["counters"]["queued"] == 2500
    # The same ids again: every row refused, nothing counted twice.
    again = client.post("/v1/campaigns/%s/contacts" % made["id"], data=body, headers=AUTH, content_type="text/csv")
    assert again.json["added"] == 0 and again.json["refused"] == 2503
    assert client.get("/v1/campaigns/" + made["id"], headers=AUTH).json["contacts"] == 2500


@pytest.mark.parametrize("body, content_type, code, field", [
    (b"name,city\nx,y\n", "text/csv", 422, "header"),
    (b"", "text/csv", 422, "body"),
    (b"number\n\xff\xfe\n", "text/csv", 400, "body"),
    (b"number\n1\n", "text/plain", 415, "body"),
])
def test_a_bad_upload_is_a_4xx_naming_the_field(client: FlaskClient, body: bytes, content_type: str, code: int,
                                                field: str) -> None:
    made = create(client)
    reply = client.post("/v1/campaigns/%s/contacts" % made["id"], data=body, headers=AUTH, content_type=content_type)
    assert reply.status_code == code and reply.json["field"] == field


def test_a_bad_campaign_is_a_422_naming_the_field(client: FlaskClient) -> None:
    reply = client.post("/v1/campaigns", json={**CAMPAIGN, "pacing": {"cps": -1}}, headers=AUTH)
    assert reply.status_code == 422 and reply.json["field"] == "pacing.cps"
    reply = client.post("/v1/campaigns", data="x", headers=AUTH, content_type="application/json")
    assert reply.status_code == 400


def test_actions_move_the_state_and_refuse_what_the_state_does_not_allow(client: FlaskClient) -> None:
    made = create(client, contacts=[{"number": "+15551230001"}])
    path = "/v1/campaigns/%s/" % made["id"]
    assert client.post(path + "resume", headers=AUTH).status_code == 409
    assert client.post(path + "start", headers=AUTH).json["state"] == "running"
    assert client.post(path + "pause", headers=AUTH).json["state"] == "paused"
    assert client.post(path + "resume", headers=AUTH).json["state"] == "running"
    assert client.post(path + "cancel", headers=AUTH).json["state"] == "cancelled"
    refused = client.post(path + "start", headers=AUTH)
    assert refused.status_code == 409 and refused.json["state"] == "cancelled"
    assert client.post(path + "explode", headers=AUTH).status_code == 404
    upload = client.post(path + "contacts", data="number\n+15551230002\n", headers=AUTH, content_type="text/csv")
    assert upload.status_code == 409


def test_campaigns_are_listed_newest_first_and_unknown_ids_are_404(client: FlaskClient) -> None:
    first, second = create(client, name="one"), create(client, name="two")
    listed = client.get("/v1/campaigns", headers=AUTH).json["campaigns"]
    assert [c["id"] for c in listed][:2] == [second["id"], first["id"]]
    assert client.get("/v1/campaigns/" + "0" * 32, headers=AUTH).status_code == 404
    assert client.get("/v1/campaigns/not-an-id", headers=AUTH).status_code == 404
    assert client.get("/v1/campaigns").status_code == 401


def test_a_client_key_sees_its_own_campaigns_and_presents_only_its_caller_ids(app: Flask, client: FlaskClient,
                                                                             key_prefix: str) -> None:
    keys = KeyStore(connect(app.config["ESLENGINE_CONFIG"].redis_url), key_prefix)
    _, token = keys.create("shop", caller_ids=["+15550000001", "+1555000009*"])
    mine = {"Authorization": "Bearer " + token}
    made = client.post("/v1/campaigns", json={**CAMPAIGN, "contacts": [
        {"number": "+15551230001", "caller_id": "+15550000099"}, {"number": "+15551230002", "caller_id": "+1999"},
        {"number": "+15551230003"}]}, headers=mine)
    assert made.status_code == 201
    assert made.json["campaign"]["call"]["caller_id_number"] == "+15550000001"  # the list's first, by default
    assert [(e["row"], e["field"]) for e in made.json["upload"]["errors"]] == [(2, "caller_id")]
    refused = client.post("/v1/campaigns", json={**CAMPAIGN, "call": {"b": "user/1000", "caller_id_number": "+1999"}},
                          headers=mine)
    assert refused.status_code == 422 and refused.json["field"] == "call.caller_id_number"
    assert client.get("/v1/campaigns/" + made.json["id"], headers=mine).status_code == 200
    theirs = create(client)
    assert client.get("/v1/campaigns/" + theirs["id"], headers=mine).status_code == 404
    assert client.post("/v1/campaigns/%s/start" % theirs["id"], headers=mine).status_code == 404
    assert [c["id"] for c in client.get("/v1/campaigns", headers=mine).json["campaigns"]] == [made.json["id"]]


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=20)
CSV_TEXT = st.text(alphabet=st.sampled_from(list('number,id,caller_id,var_x"\n\r+1555123 0\x00;\u00e9')), max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_whatever_a_client_sends_a_campaign_is_never_a_server_error(app: Flask, data: st.DataObject) -> None:
    client = app.test_client()
    campaign_id = create(client)["id"]
    path = "/v1/campaigns/%s/contacts" % campaign_id
    kind = data.draw(st.sampled_from(["csv bytes", "csv text", "json contacts", "campaign"]))
    if kind == "csv bytes":
        reply = client.post(path, data=data.draw(st.binary(max_size=300)), headers=AUTH, content_type="text/csv")
    elif kind == "csv text":
        body = "number,id,caller_id,var_x\n" + data.draw(CSV_TEXT)
        reply = client.post(path, data=body.encode(), headers=AUTH, content_type="text/csv")
    elif kind == "json contacts":
        reply = client.post(path, data=json.dumps(data.draw(JSON_VALUES)), headers=AUTH,
                            content_type="application/json")
    else:
        document = data.draw(st.fixed_dictionaries(
            {"name": JSON_VALUES, "call": JSON_VALUES},
            optional={name: JSON_VALUES for name in ("pacing", "calling_window", "retry", "valid_until", "contacts",
                                                     "contact_party", "notify_url", "notify_format")}))
        reply = client.post("/v1/campaigns", data=json.dumps(document), headers=AUTH, content_type="application/json")
    assert reply.status_code < 500, (kind, reply.status_code, reply.data[:300])
    assert reply.is_json

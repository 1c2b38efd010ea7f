"""Managing campaigns over HTTP for the long run (eslengine.http.campaigns_v1):
paged listings, contacts, changes while running, deletion; against the
suite's Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eslengine.apikeys import KeyStore
from eslengine.campaign.dispatcher import Dispatcher
from eslengine.campaign.model import attempt_id, parse_campaign
from eslengine.config import Config
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect
from eslengine.store.campaigns import CampaignStore

KEY = "k-manage-1"
AUTH = {"Authorization": "Bearer " + KEY}
CAMPAIGN: dict[str, Any] = {"name": "winter", "call": {"b": "user/1000"}, "pacing": {"cps": 5, "max_concurrent": 2},
                            "retry": {"on": ["busy"], "delay": "10m", "max_retries": 2}}
CONFIG = Config(allow_unvalidated_numbers=True)


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY}),
                    allow_unvalidated_numbers=True)
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(key_prefix)))
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def queue(app: Flask, key_prefix: str) -> Iterator[JobQueue]:
    client = connect(app.config["ESLENGINE_CONFIG"].redis_url)
    yield JobQueue(client, Keys(key_prefix), record_ttl=60)
    client.close()


@pytest.fixture
def store(queue: JobQueue) -> CampaignStore:
    return CampaignStore(queue.redis, queue.keys, record_ttl=60)


def create(client: FlaskClient, contacts: int = 0, **extra: Any) -> str:
    body = {**CAMPAIGN, **extra, "contacts": [{"number": "+1555123%04d" % i, "id": "c%d" % i} for i in range(contacts)]}
    reply = client.post("/v1/campaigns", json=body, headers=AUTH)
    assert reply.status_code == 201, reply.json
    return str(reply.json["id"])


def act(client: FlaskClient, campaign_id: str, action: str) -> None:
    assert client.post("/v1/campaigns/%s/%s" % (campaign_id, action), headers=AUTH).status_code == 200


def pages(client: FlaskClient, path: str, name: str) -> list[list[dict[str, Any]]]:
    out = []
    cursor = None
    while True:
        reply = client.get(path + ("&cursor=" + cursor if cursor else ""), headers=AUTH)
        assert reply.status_code == 200, reply.json
        out.append(reply.json[name])
        cursor = reply.json["next_cursor"]
        if cursor is None:
            return out


# ------------------------------------------------------------ GET /v1/campaigns

def test_campaigns_are_listed_page_by_page_newest_first_each_once(client: FlaskClient) -> None:
    made = [create(client, name="w%d" % i) for i in range(5)]
    got = pages(client, "/v1/campaigns?limit=2", "campaigns")
    assert [len(p) for p in got] == [2, 2, 1]
    assert [c["id"] for p in got for c in p] == made[::-1]
    assert all("campaign" not in c for p in got for c in p)


def test_the_state_filter_finds_campaigns_past_any_number_of_newer_ones(client: FlaskClient, store: CampaignStore,
                                                                        queue: JobQueue) -> None:
    running = create(client, contacts=1)
    act(client, running, "start")
    campaign = parse_campaign(CAMPAIGN, CONFIG)
    for i in range(1200):
        store.create("%032x" % i, campaign)
    assert client.get("/v1/campaigns?limit=100", headers=AUTH).json["campaigns"][0]["state"] == "created"
    got = pages(client, "/v1/campaigns?state=running,paused&limit=100", "campaigns")
    assert len(got) == 2 and got[0] == []  # the first page read its 1,000 and found none
    assert [c["id"] for c in got[1]] == [running]


@pytest.mark.parametrize("query, field", [
    ("state=sleeping", "state"), ("state=", "state"), ("limit=0", "limit"), ("limit=1001", "limit"),
    ("limit=x", "limit"), ("cursor=%%%", "cursor"), ("cursor=bm9wZQ", "cursor"), ("sort=name", "sort"),
])
def test_a_bad_listing_query_is_a_400_naming_the_parameter(client: FlaskClient, query: str, field: str) -> None:
    campaign_id = create(client)
    for path in ("/v1/campaigns?", "/v1/campaigns/%s/contacts?" % campaign_id):
        reply = client.get(path + query, headers=AUTH)
        assert reply.status_code == 400 and reply.json["field"] == field, (path, reply.json)


# ------------------------------------------------------------ GET /v1/campaigns/<id>/contacts

def test_contacts_are_listed_in_order_with_their_state_attempts_and_next_call(
        client: FlaskClient, store: CampaignStore) -> None:
    campaign_id = create(client, contacts=5)
    act(client, campaign_id, "start")
    now = time.time()
    for contact in ("c0", "c1", "c2"):
        assert store.take(campaign_id, contact, 0, "call-" + contact, now, 5) == 1
    store.outcome(campaign_id, "c0", "call-c0", "finish", outcome="failed", cause="NO_ANSWER")
    store.outcome(campaign_id, "c1", "call-c1", "retry", when=now + 600, cause="USER_BUSY")
    got = pages(client, "/v1/campaigns/%s/contacts?limit=2" % campaign_id, "contacts")
    assert [[c["id"] for c in p] for p in got] == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    c0, c1, c2, c3 = [c for p in got for c in p][:4]
    assert (c0["state"], c0["outcome"], c0["cause"], c0["attempts"], c0["next_due"]) == (
        "done", "failed", "NO_ANSWER", 1, None)
    assert (c1["state"], c1["last_cause"], c1["attempts"], c1["retries"], c1["outcome"]) == (
        "retrying", "USER_BUSY", 1, 1, None)
    assert c1["next_due"] is not None and c1["next_due"] > time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now + 500))
    assert (c2["state"], c2["call"], c3["state"], c3["attempts"], c3["next_due"]) == (
        "dialing", "call-c2", "queued", 0, None)
    assert c3["numbers"] == ["+15551230003"]
    failed = client.get("/v1/campaigns/%s/contacts?state=failed,retrying" % campaign_id, headers=AUTH).json
    assert [c["id"] for c in failed["contacts"]] == ["c0", "c1"] and failed["next_cursor"] is None
    assert client.get("/v1/campaigns/%s/contacts" % ("0" * 32), headers=AUTH).status_code == 404


# ------------------------------------------------------------ PATCH /v1/campaigns/<id>

def test_pacing_changed_while_running_is_what_the_dispatcher_uses_next(
        client: FlaskClient, store: CampaignStore, queue: JobQueue) -> None:
    campaign_id = create(client, contacts=3)
    act(client, campaign_id, "start")
    dispatcher = Dispatcher(CONFIG, queue, store=store)
    assert dispatcher.campaign(campaign_id, store.raw(campaign_id)).cps == 5.0
    reply = client.patch("/v1/campaigns/" + campaign_id, json={"pacing": {"cps": 0.5}}, headers=AUTH)
    assert reply.status_code == 200, reply.json
    assert reply.json["campaign"]["pacing"] == {"cps": 0.5, "max_concurrent": 2}
    assert reply.json["campaign"]["retry"] == parse_campaign(CAMPAIGN, CONFIG).ladder.to_json()  # the rest kept
    now = dispatcher.campaign(campaign_id, store.raw(campaign_id))
    assert (now.cps, now.max_concurrent) == (0.5, 2)


def test_a_changed_window_has_every_waiting_contact_looked_at_again(client: FlaskClient, store: CampaignStore) -> None:
    campaign_id = create(client, contacts=3)
    act(client, campaign_id, "start")
    later = time.time() + 3600
    for contact in ("c0", "c1"):
        assert store.wait(campaign_id, contact, later)
    reply = client.patch("/v1/campaigns/" + campaign_id, json={"calling_window": {"hours": "00:00-23:59"}},
                         headers=AUTH)
    assert reply.status_code == 200, reply.json
    assert reply.json["campaign"]["calling_window"]["hours"] == "00:00-23:59"
    assert sorted(store.due(campaign_id, time.time(), 10)) == ["c0", "c1", "c2"]
    cleared = client.patch("/v1/campaigns/" + campaign_id, json={"calling_window": None}, headers=AUTH)
    assert "calling_window" not in cleared.json["campaign"]


@pytest.mark.parametrize("body, code, field", [
    ({"pacing": {"cps": 0}}, 422, "pacing.cps"),
    ({"pacing": {"max_concurrent": 10**9}}, 422, "pacing.max_concurrent"),
    ({"pacing": {"burst": 3}}, 422, "pacing"),
    ({"pacing": 3}, 422, "pacing"),
    ({"calling_window": {"hours": "25:00-26:00"}}, 422, "calling_window.hours"),
    ({"name": "renamed"}, 422, "name"),
    ({}, 422, "body"),
    ([1], 422, "body"),
])
def test_a_bad_change_is_a_4xx_naming_the_field(client: FlaskClient, body: Any, code: int, field: str) -> None:
    campaign_id = create(client)
    reply = client.patch("/v1/campaigns/" + campaign_id, json=body, headers=AUTH)
    assert reply.status_code == code and reply.json["field"].startswith(field), reply.json


def test_an_ended_campaign_cannot_be_changed(client: FlaskClient) -> None:
    campaign_id = create(client)
    act(client, campaign_id, "cancel")
    reply = client.patch("/v1/campaigns/" + campaign_id, json={"pacing": {"cps": 2}}, headers=AUTH)
    assert reply.status_code == 409 and reply.json["state"] == "cancelled"


# ------------------------------------------------------------ DELETE /v1/campaigns/<id>

def test_a_campaign_is_deleted_only_when_it_has_no_calls_to_make(client: FlaskClient, queue: JobQueue) -> None:
    campaign_id = create(client, contacts=3)
    act(client, campaign_id, "start")
    refused = client.delete("/v1/campaigns/" + campaign_id, headers=AUTH)
    assert refused.status_code == 409 and refused.json["state"] == "running" and "cancel" in refused.json["reason"]
    act(client, campaign_id, "cancel")
    reply = client.delete("/v1/campaigns/" + campaign_id, headers=AUTH)
    assert reply.status_code == 200 and reply.json == {"id": campaign_id, "deleted": True, "was": "cancelled",
                                                       "contacts": 3}
    assert queue.redis.keys(queue.keys.campaign(campaign_id) + ":*") == []
    for path in ("", "/contacts", "/contacts/c0"):
        assert client.get("/v1/campaigns/" + campaign_id + path, headers=AUTH).status_code == 404
    assert client.delete("/v1/campaigns/" + campaign_id, headers=AUTH).status_code == 404
    assert client.post("/v1/campaigns/%s/start" % campaign_id, headers=AUTH).status_code == 404
    assert campaign_id not in [c["id"] for c in client.get("/v1/campaigns", headers=AUTH).json["campaigns"]]


def test_another_keys_campaign_cannot_be_deleted_or_changed(app: Flask, client: FlaskClient, key_prefix: str) -> None:
    redis_client = connect(app.config["ESLENGINE_CONFIG"].redis_url)
    _, token = KeyStore(redis_client, key_prefix).create("shop")
    redis_client.close()
    theirs = {"Authorization": "Bearer " + token}
    campaign_id = create(client)
    assert client.delete("/v1/campaigns/" + campaign_id, headers=theirs).status_code == 404
    assert client.patch("/v1/campaigns/" + campaign_id, json={"pacing": {"cps": 1}}, headers=theirs).status_code == 404
    assert client.get("/v1/campaigns/%s/contacts" % campaign_id, headers=theirs).status_code == 404
    assert client.get("/v1/campaigns/" + campaign_id, headers=AUTH).status_code == 200


# ------------------------------------------------------------ attempt ids

def test_a_campaigns_secret_is_kept_and_never_shown(client: FlaskClient, queue: JobQueue) -> None:
    campaign_id = create(client, contacts=1)
    nonce = queue.redis.hget(queue.keys.campaign(campaign_id), "nonce")
    assert isinstance(nonce, str) and len(nonce) == 32
    for path in ("/v1/campaigns/" + campaign_id, "/v1/campaigns", "/v1/campaigns/%s/contacts" % campaign_id,
                 "/v1/campaigns/%s/contacts/c0" % campaign_id):
        assert nonce not in client.get(path, headers=AUTH).get_data(as_text=True)
    assert attempt_id(campaign_id, "c0", 1, nonce) != attempt_id(campaign_id, "c0", 1)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=20)
QUERY_TEXT = st.text(alphabet=st.sampled_from(list("state=limit&cursor,running0123456789%+-_.~ \u00e9")), max_size=40)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_whatever_a_client_sends_to_manage_a_campaign_is_never_a_server_error(app: Flask, data: st.DataObject) -> None:
    client = app.test_client()
    campaign_id = create(client, contacts=2)
    kind = data.draw(st.sampled_from(["patch", "patch pacing", "patch window", "list", "contacts"]))
    if kind == "patch":
        reply = client.patch("/v1/campaigns/" + campaign_id, data=json.dumps(data.draw(JSON_VALUES)), headers=AUTH,
                             content_type="application/json")
    elif kind == "patch pacing":
        reply = client.patch("/v1/campaigns/" + campaign_id, json={"pacing": data.draw(JSON_VALUES)}, headers=AUTH)
    elif kind == "patch window":
        reply = client.patch("/v1/campaigns/" + campaign_id, json={"calling_window": data.draw(JSON_VALUES)},
                             headers=AUTH)
    elif kind == "list":
        reply = client.get("/v1/campaigns?" + data.draw(QUERY_TEXT), headers=AUTH)
    else:
        reply = client.get("/v1/campaigns/%s/contacts?%s" % (campaign_id, data.draw(QUERY_TEXT)), headers=AUTH)
    assert reply.status_code < 500, (kind, reply.status_code, reply.data[:300])
    assert reply.is_json
    if reply.status_code >= 400:
        assert reply.json["field"]


def test_a_lower_max_concurrent_holds_from_the_dispatchers_next_round(
        client: FlaskClient, store: CampaignStore, queue: JobQueue) -> None:
    campaign_id = create(client, contacts=5, pacing={"cps": 100, "max_concurrent": 5})
    act(client, campaign_id, "start")
    clock = [time.time()]
    dispatcher = Dispatcher(CONFIG, queue, store=store, clock=lambda: clock[0])
    started = dispatcher.dispatch_campaign(campaign_id)
    assert started >= 1
    assert client.patch("/v1/campaigns/" + campaign_id, json={"pacing": {"max_concurrent": started}},
                        headers=AUTH).status_code == 200
    for _ in range(5):
        clock[0] += 1.0
        assert dispatcher.dispatch_campaign(campaign_id) == 0
    assert store.show(campaign_id)["counters"]["dialing"] == started  # type: ignore[index]

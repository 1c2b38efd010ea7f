"""The "call me" widget: its settings, tokens and proof of work (pure), and
its endpoints with a real Redis: each abuse control refuses with its own
status and reason, and is counted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine import metrics, widget
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect

OPERATOR = "op-widget-4412"
AUTH = {"Authorization": "Bearer " + OPERATOR}
SECRET = "s" * 40
PAGE = "https://www.example.com"
NOW = 1_796_180_000.0

# ------------------------------------------------------------------ pure


@pytest.mark.parametrize(("value", "normal"), [
    ("https://www.example.com", "https://www.example.com"),
    ("HTTPS://WWW.Example.com:443/", "https://www.example.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:80", "http://[::1]"),
    ("https://www.example.com/page", ""),
    ("https://user@www.example.com", ""),
    ("ftp://www.example.com", ""),
    ("www.example.com", ""),
    ("null", ""),
    ("https://www.example.com:99999", ""),
])
def test_origins_are_normalised_or_refused(value: str, normal: str) -> None:
    assert widget.normalize_origin(value) == normal


@pytest.mark.parametrize(("spec", "field"), [
    ([], "widget"),
    ({}, "widget.origins"),
    ({"origins": []}, "widget.origins"),
    ({"origins": ["https://a.example.com/path"]}, "widget.origins.0"),
    ({"origins": [PAGE], "region": "USA"}, "widget.region"),
    ({"origins": [PAGE], "language": "fr"}, "widget.language"),
    ({"origins": [PAGE], "texts": {"shout": "hi"}}, "widget.texts.shout"),
    ({"origins": [PAGE], "texts": {"button": "<b>Call</b>"}}, "widget.texts.button"),
    ({"origins": [PAGE], "hours": {"days": ["mon"]}}, "widget.hours"),
    ({"origins": [PAGE], "hours": {"timezone": "Mars/Olympus"}}, "widget.hours.timezone"),
    ({"origins": [PAGE], "per_network_per_hour": 0}, "widget.per_network_per_hour"),
    ({"origins": [PAGE], "challenge": "captcha"}, "widget.challenge"),
    ({"origins": [PAGE], "pow_bits": 40}, "widget.pow_bits"),
    ({"origins": [PAGE], "colour": "red"}, "widget.colour"),
])
def test_bad_widget_settings_name_their_field(spec: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        widget.parse_widget(spec)
    assert info.value.field == field


def test_settings_round_trip_and_texts_fall_back_to_the_language() -> None:
    spec = widget.parse_widget({"origins": [PAGE + "/"], "language": "es", "texts": {"button": "Llamar"},
                                "hours": {"timezone": "Europe/Madrid", "days": ["mon", "tue"], "hours": "09:00-18:00"}})
    settings = widget.settings_of({"widget": spec})
    assert settings is not None and settings.origins == (PAGE,)
    assert settings.text()["button"] == "Llamar" and settings.text()["busy"].startswith("L\u00ednea ocupada")
    assert settings.hours is not None and settings.hours.zone == "Europe/Madrid"
    assert set(widget.TEXTS["es"]) == set(widget.TEXTS["en"])


def test_tokens_bind_the_resource_the_origin_and_a_deadline() -> None:
    token = widget.make_token(SECRET, "acct", "res", PAGE, NOW)
    widget.check_token(SECRET, token, "acct", "res", PAGE, NOW + 599)
    for args, reason in [((SECRET, token, "acct", "res", PAGE, NOW + 601), "expired"),
                         ((SECRET, token, "acct", "other", PAGE, NOW), "not for this click-to-call"),
                         ((SECRET, token, "acct", "res", "https://evil.example.com", NOW), "not for this page"),
                         (("t" * 40, token, "acct", "res", PAGE, NOW), "not valid"),
                         ((SECRET, token[:-2] + "AA", "acct", "res", PAGE, NOW), "not valid"),
                         ((SECRET, None, "acct", "res", PAGE, NOW), "missing or malformed"),
                         ((SECRET, "x.y.z", "acct", "res", PAGE, NOW), "missing or malformed")]:
        with pytest.raises(ValidationError) as info:
            widget.check_token(*args)  # type: ignore[arg-type]
        assert info.value.reason.startswith(reason), (args, info.value.reason)
    watch = widget.make_watch(SECRET, "job-1", PAGE, NOW)
    assert widget.check_watch(SECRET, watch, "job-1", NOW) == PAGE
    with pytest.raises(ValidationError):
        widget.check_watch(SECRET, watch, "job-2", NOW)
    with pytest.raises(ValidationError):  # a watch token is no widget token, nor the reverse
        widget.check_token(SECRET, watch, "acct", "res", PAGE, NOW)


def test_proof_of_work() -> None:
    nonce = widget.solve_pow("tok", 12)
    assert widget.pow_ok("tok", nonce, 12)
    assert not widget.pow_ok("tok", "", 1) and not widget.pow_ok("tok", "x" * 33, 1) and not widget.pow_ok("tok", None, 1)


@pytest.mark.parametrize(("address", "network"), [
    ("203.0.113.77", "203.0.113.0/24"),
    ("::ffff:203.0.113.9", "203.0.113.0/24"),
    ("2001:db8:1234:5678::1", "2001:db8:1234::/48"),
    ("not an address", "unknown"),
])
def test_addresses_count_per_network(address: str, network: str) -> None:
    assert widget.network_of(address) == network


# ------------------------------------------------------------------ the endpoints


@pytest.fixture
def config(redis_server: Any, key_prefix: str) -> Config:
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                  allow_unvalidated_numbers=True, widget_secret=SECRET, widget_per_destination=2)


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(config.key_prefix), record_ttl=600))
    client.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Site:
    """An account with a user and a public click-to-call resource with a widget."""

    def __init__(self, client: FlaskClient, **settings: Any) -> None:
        self.client = client
        self.account = self._make("/v1/accounts", {"name": "shop"})["id"]
        path = "/v1/accounts/" + self.account
        user = self._make(path + "/users", {"name": "Ann", "endpoint": "user/1000"})["id"]
        c2c = {"name": "Sales", "extension": "user:" + user, "auth_required": False, "per_ip_per_hour": 50,
               "per_contact_per_hour": 50, "widget": {"origins": [PAGE], "region": "US", **settings}}
        self.c2c = self._make(path + "/clicktocall", c2c)["id"]
        self.base = "/v1/widget/%s/%s" % (self.account, self.c2c)

    def _make(self, path: str, body: dict[str, Any]) -> Any:
        resp = self.client.post(path, json=body, headers=AUTH)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def session(self, origin: str = PAGE, address: str = "198.51.100.7") -> Any:
        return self.client.get(self.base + "/session", headers={"Origin": origin},
                               environ_overrides={"REMOTE_ADDR": address})

    def call(self, number: str, *, token: str | None = None, origin: str = PAGE, address: str = "198.51.100.7",
             nonce: str | None = None) -> Any:
        if token is None:
            token = self.session(origin, address).get_json()["token"]
        return self.client.post(self.base + "/calls", json={"number": number, "token": token, "nonce": nonce},
                                headers={"Origin": origin}, environ_overrides={"REMOTE_ADDR": address})

    def refusals(self) -> dict[str, int]:
        resp = self.client.get("/v1/accounts/%s/clicktocall/%s/widget/refusals" % (self.account, self.c2c),
                               headers=AUTH)
        return {k: v for k, v in resp.get_json()["refusals"].items() if v}


def test_a_widget_needs_a_public_resource(client: FlaskClient) -> None:
    site = Site(client)
    resp = client.post("/v1/accounts/%s/clicktocall" % site.account, headers=AUTH,
                       json={"name": "x", "extension": "user/1000", "widget": {"origins": [PAGE]}})
    assert resp.status_code == 422 and resp.get_json()["field"] == "widget"


def test_the_script_and_the_frame(client: FlaskClient) -> None:
    site = Site(client)
    js = client.get(site.base + "/widget.js")
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    text = js.get_data(as_text=True)
    assert "__ESLENGINE_CONFIG__" not in text and '"button":"Call me"' in text and site.base + "/calls" in text
    frame = client.get(site.base + "/frame")
    assert frame.status_code == 200 and "frame-ancestors %s" % PAGE in frame.headers["Content-Security-Policy"]
    assert 'src="%s/widget.js"' % site.base in frame.get_data(as_text=True)
    # A resource without a widget, or unknown: 404 alike.
    assert client.get("/v1/widget/%s/%s/widget.js" % (site.account, uuid.uuid4().hex)).status_code == 404


def test_a_call_from_an_allowed_page_is_queued_and_its_status_streams(client: FlaskClient) -> None:
    site = Site(client)
    session = site.session()
    assert session.status_code == 200 and session.headers["Access-Control-Allow-Origin"] == PAGE
    body = session.get_json()
    assert body["open"] and body["texts"]["connecting"] == "Connecting you to {name}\u2026"
    assert body["texts"]["name"] == "Sales" and body["challenge"] is None
    resp = site.call("(555) 123-0004", token=body["token"])
    assert resp.status_code == 202, resp.get_json()
    assert resp.headers["Access-Control-Allow-Origin"] == PAGE
    placed = resp.get_json()
    doc = client.get("/v1/calls/%s" % placed["id"], headers=AUTH).get_json()
    assert doc["b"] == "+15551230004"  # read in the widget's region
    stream = client.get(placed["events"], headers={"Origin": PAGE}, buffered=False)
    assert stream.status_code == 200 and stream.headers["Access-Control-Allow-Origin"] == PAGE
    chunks = iter(stream.response)
    next(chunks)
    first = next(chunks).decode()
    data = json.loads(first.split("data: ", 1)[1])
    assert data["status"] == "queued"
    assert set(data["call"]) <= {"id", "status", "history", "final", "hangup_cause", "failed_party", "ended_by"}
    stream.close()
    # Another call's events, or no watch token: refused.
    other = client.get("/v1/widget/calls/%s/events?watch=%s" % (uuid.uuid4(), placed["watch"]))
    assert other.status_code == 403


def test_preflight_answers_only_allowed_origins(client: FlaskClient) -> None:
    site = Site(client)
    ok = client.options(site.base + "/calls", headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == PAGE
    assert ok.headers["Access-Control-Allow-Methods"] == "POST"
    bad = client.options(site.base + "/calls", headers={"Origin": "https://evil.example.com"})
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad.headers


def test_each_abuse_control_refuses_with_its_reason_and_is_counted(client: FlaskClient) -> None:
    site = Site(client, per_network_per_hour=3)
    reasons = ("origin_not_allowed", "token_invalid", "invalid", "destination_limited", "rate_limited")
    before = {r: metrics.REGISTRY.get_sample_value("eslengine_widget_refusals_total", {"reason": r}) or 0.0
              for r in reasons}
    # Origin: another page gets no token and no CORS answer.
    resp = site.session(origin="https://evil.example.com")
    assert resp.status_code == 403 and resp.get_json()["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in resp.headers
    # A page that is not the resource's; a token made for another page
    # (the frame form is served from this server's own origin); a forged one.
    token = site.session().get_json()["token"]
    resp = site.call("+15551230004", token=token, origin="https://other.example.com")
    assert resp.status_code == 403 and resp.get_json()["error"] == "origin_not_allowed"
    resp = site.call("+15551230004", token=token, origin="http://localhost")
    assert resp.status_code == 403 and resp.get_json()["reason"] == "not for this page: reload the page"
    resp = site.call("+15551230004", token="forged.token")
    assert resp.status_code == 403 and resp.get_json()["error"] == "token_invalid"
    # The number: the validation message is what the visitor reads.
    resp = site.call("call me maybe")
    assert resp.status_code == 422 and resp.get_json()["field"] == "number"
    assert resp.get_json()["message"] == resp.get_json()["reason"]
    # The same number through any widget: at most 2 an hour here.
    assert site.call("+15551230005").status_code == 202
    assert site.call("+15551230005", address="198.51.100.8").status_code == 202
    resp = site.call("+15551230005", address="198.51.100.9")
    assert resp.status_code == 429 and resp.get_json()["error"] == "destination_limited"
    assert int(resp.headers["Retry-After"]) > 0
    # The network: 3 calls an hour from 198.51.100.0/24 (the two above, then one more).
    assert site.call("+15551230006", address="198.51.100.20").status_code == 202
    resp = site.call("+15551230007", address="198.51.100.21")
    assert resp.status_code == 429 and resp.get_json()["error"] == "rate_limited"
    assert resp.get_json()["message"].startswith("Too many calls")
    assert site.call("+15551230007", address="203.0.113.5").status_code == 202
    assert site.refusals() == {"origin_not_allowed": 2, "token_invalid": 2, "invalid": 1, "destination_limited": 1,
                               "rate_limited": 1}
    # And in the process's metrics, by reason.
    assert {r: (metrics.REGISTRY.get_sample_value("eslengine_widget_refusals_total", {"reason": r}) or 0.0) - before[r]
            for r in reasons} == site.refusals()


def test_business_hours_refuse_with_the_next_opening(client: FlaskClient) -> None:
    now = datetime.now(timezone.utc)
    shut = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            if d != ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()]]
    site = Site(client, hours={"timezone": "UTC", "days": shut, "hours": "00:00-24:00"})
    body = site.session().get_json()
    assert body["open"] is False and body["opens"].endswith("00:00")
    resp = site.call("+15551230004", token=body["token"])
    assert resp.status_code == 403 and resp.get_json()["error"] == "closed"
    assert resp.get_json()["message"] == "We are closed; we open at %s" % body["opens"]
    assert site.refusals() == {"closed": 1}


def test_a_resource_under_attack_asks_for_a_proof_of_work(client: FlaskClient) -> None:
    site = Site(client, challenge="pow", pow_bits=8)
    body = site.session().get_json()
    assert body["challenge"] == {"kind": "pow", "bits": 8}
    resp = site.call("+15551230004", token=body["token"], nonce="zz")
    assert resp.status_code == 403 and resp.get_json()["error"] == "challenge_failed"
    nonce = widget.solve_pow(body["token"], 8)
    assert site.call("+15551230004", token=body["token"], nonce=nonce).status_code == 202


def test_without_a_secret_widgets_are_off(redis_server: Any, key_prefix: str) -> None:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({OPERATOR}),
                    allow_unvalidated_numbers=True)
    client = create_app(config).test_client()
    site = Site(client)
    resp = site.session()
    assert resp.status_code == 503 and resp.get_json()["error"] == "widgets_off"


def test_a_resource_takes_only_so_many_calls_at_once(client: FlaskClient, app: Flask) -> None:
    site = Site(client)
    resp = client.patch("/v1/accounts/%s/clicktocall/%s" % (site.account, site.c2c), json={"max_concurrent": 2},
                        headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    first = site.call("+15551230011").get_json()["id"]
    assert site.call("+15551230012").status_code == 202
    resp = site.call("+15551230013")
    assert resp.status_code == 429 and resp.get_json()["error"] == "rate_limited"
    # One ends: room for another.
    app.extensions["eslengine"].transition(first, "failed", {"hangup_cause": "USER_BUSY"})
    assert site.call("+15551230013").status_code == 202


def test_a_visitor_number_on_a_do_not_call_list_is_refused_and_counted(client: FlaskClient) -> None:
    site = Site(client)
    assert client.post("/v1/accounts/%s/dnc" % site.account, json=["+15551230004"], headers=AUTH).status_code == 201
    resp = site.call("(555) 123-0004")
    assert resp.status_code == 422 and resp.headers["Access-Control-Allow-Origin"] == PAGE
    body = resp.get_json()
    assert (body["error"], body["reason"], body["field"]) == ("do_not_call", "do_not_call", "number")
    assert body["message"] == "The call could not be made \u2014 try again later"
    assert site.refusals() == {"do_not_call": 1}
    assert site.call("(555) 123-0005").status_code == 202

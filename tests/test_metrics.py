"""Prometheus metrics: what each part counts, the worker's /metrics port, the
API's GET /metrics, and the README table and Grafana dashboard kept to what
eslengine/metrics.py declares.

Metrics live in the process's registry, shared by every test: each test
reads the change it causes (series labelled by its own simulator's node, or
deltas read before and after)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from eslengine import calls, dnc, metrics
from eslengine.campaign.model import Contact, parse_campaign
from eslengine.config import Config
from eslengine.errors import ConfigError, QueueUnavailable
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect, redis_errors
from eslengine.store.campaigns import CampaignStore
from tests.conftest import STORE_CONFIG, RedisServer, free_port
from tests.rig import Rig, wait_for

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = metrics.REGISTRY


def value(name: str, **labels: str) -> float:
    """A sample's value in this process's registry (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Since:
    """The registry's samples now, to read what changed after."""

    def __init__(self) -> None:
        self.before = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in REGISTRY.collect() for s in family.samples}

    def __call__(self, name: str, **labels: str) -> float:
        """How much ``name{labels}`` moved since."""
        return value(name, **labels) - self.before.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A text exposition as {(sample name, sorted labels): value}."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# ---------------------------------------------------------------- pure rules


@pytest.mark.parametrize(("cause", "label"), [
    ("NORMAL_CLEARING", "NORMAL_CLEARING"),
    ("USER_BUSY", "USER_BUSY"),
    ("", "none"),
    ("-USAGE: originate <call url>", "other"),
    ("normal_clearing", "other"),
    ("A" * 65, "other"),
    ("NORMAL CLEARING", "other"),
])
def test_a_hangup_cause_label_is_a_cause_name_or_a_fixed_word(cause: str, label: str) -> None:
    assert metrics.cause_label(cause) == label


@pytest.mark.parametrize(("command", "label"), [
    ("bgapi originate {x=1}user/1000 &park()", "bgapi"),
    ("api uuid_exists 1234", "api"),
    ("event json CHANNEL_ANSWER", "event"),
    ("auth", "auth"),
    ("filter eslengine_worker w1", "filter"),
    ("BGAPI x", "other"),
    ("", "other"),
])
def test_a_command_is_labelled_by_its_word(command: str, label: str) -> None:
    assert metrics.command_label(command) == label


@pytest.mark.parametrize(("method", "label"), [("GET", "GET"), ("POST", "POST"), ("DELETE", "DELETE"),
                                                ("BREW", "other"), ("get", "other"), ("", "other")])
def test_only_standard_methods_are_labels(method: str, label: str) -> None:
    assert metrics.method_label(method) == label


@pytest.mark.parametrize(("first_id", "now_ms", "age"), [
    ("1700000000000-0", 1700000012500.0, 12.5),
    ("1700000000000-7", 1700000000000.0, 0.0),
    ("1700000001000-0", 1700000000000.0, 0.0),  # a clock behind the id: never negative
    ("5-0", 1700000000000.0, 1699999999.995),
    (None, 1700000000000.0, 0.0),
    ("", 1700000000000.0, 0.0),
    ("x-1", 1700000000000.0, 0.0),
])
def test_the_oldest_jobs_age_comes_from_its_entry_id(first_id: str | None, now_ms: float, age: float) -> None:
    assert metrics.oldest_age(first_id, now_ms) == pytest.approx(age)


def test_every_declared_name_is_eslengines_with_a_unit_or_kind_suffix() -> None:
    names = [f.name for f in metrics.FAMILIES]
    assert len(names) == len(set(names))
    for family in metrics.FAMILIES:
        assert re.fullmatch(r"eslengine_[a-z0-9_]+", family.name), family.name
        assert "job_id" not in family.labels and "id" not in family.labels
        if family.type == "counter":
            assert family.name.endswith("_total"), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name


# ---------------------------------------------------------------- the README and the dashboard


def readme_table() -> dict[str, tuple[str, tuple[str, ...], str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, tuple[str, ...], str]] = {}
    for line in section.splitlines():
        match = re.fullmatch(r"\| `(eslengine_\w+)` \| (\w+) \| ([^|]*) \| ([^|]+) \|", line)
        if match:
            labels = tuple(re.findall(r"`(\w+)`", match.group(3)))
            rows[match.group(1)] = (match.group(2), labels, match.group(4).strip())
    return rows


def test_the_readme_lists_every_metric_with_its_type_and_labels() -> None:
    table = readme_table()
    assert {name: (kind, labels) for name, (kind, labels, _) in table.items()} == \
        {f.name: (f.type, f.labels) for f in metrics.FAMILIES}
    assert all(meaning for _, _, meaning in table.values())


def dashboard() -> dict[str, Any]:
    with resources.files("eslengine").joinpath("deploy/grafana-dashboard.json").open(encoding="utf-8") as fh:
        return json.load(fh)


def queries(doc: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' and its variables'."""
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            exprs.append(variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"])
    return exprs


def family_of(series: str) -> str:
    """The declared name a series of a scrape belongs to (a histogram's
    ``_bucket``, ``_sum`` and ``_count`` belong to the histogram)."""
    histograms = {f.name for f in metrics.FAMILIES if f.type == "histogram"}
    for suffix in ("_bucket", "_sum", "_count"):
        if series.endswith(suffix) and series[:-len(suffix)] in histograms:
            return series[:-len(suffix)]
    return series


def test_the_dashboard_queries_only_declared_metrics_and_shows_every_one() -> None:
    doc = dashboard()
    declared = {f.name for f in metrics.FAMILIES}
    named = {family_of(name) for expr in queries(doc) for name in re.findall(r"\beslengine_\w+", expr)}
    assert named - declared == set()
    assert declared - named == set()


def test_the_dashboards_panels_each_have_a_place_and_a_query() -> None:
    doc = dashboard()
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
            # Balanced brackets: a query cut short would show nothing.
            for target in panel["targets"]:
                expr = target["expr"]
                assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr


def test_the_dashboard_ships_in_the_package() -> None:
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    assert re.search(r"^eslengine = .*deploy/\*\.json", setup, re.M)


# ---------------------------------------------------------------- Redis errors


def test_each_redis_error_is_counted_by_its_class() -> None:
    before = value("eslengine_redis_errors_total", error="ConnectionError")
    response = value("eslengine_redis_errors_total", error="ResponseError")
    with pytest.raises(QueueUnavailable), redis_errors("read"):
        raise redis.ConnectionError("Connection refused")
    with pytest.raises(redis.ResponseError), redis_errors("read"):
        raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert value("eslengine_redis_errors_total", error="ConnectionError") == before + 1
    assert value("eslengine_redis_errors_total", error="ResponseError") == response + 1


# ---------------------------------------------------------------- the worker


def test_a_workers_calls_connection_and_commands_are_counted_and_served_on_its_port(rig: Rig) -> None:
    port = free_port()
    moved = Since()
    worker = rig.start_worker(metrics_port=port)
    node = worker.nodes[0].node.label
    wait_for(lambda: worker.nodes[0].up)
    assert value("eslengine_esl_connection_up", node=node) == 1
    assert moved("eslengine_esl_connect_attempts_total", node=node, result="ok") == 1
    answered = rig.submit(a="+15551230001", b="+15551230002")
    # Answered and talking for a second: a live call on the node.
    wait_for(lambda: value("eslengine_live_calls", node=node) == 1)
    busy = rig.submit(a="+15551230486", b="+15551230003")
    assert rig.final(busy)["hangup_cause"] == "USER_BUSY"
    assert rig.final(answered)["status"] == "completed"
    wait_for(lambda: value("eslengine_live_calls", node=node) == 0)
    assert moved("eslengine_originates_total", node=node, outcome="ok") == 1
    assert moved("eslengine_originates_total", node=node, outcome="failed") == 1
    assert moved("eslengine_pacing_delay_seconds_count", node=node) == 2
    # Two originates, and the answered call's transfer to the connect extension.
    assert moved("eslengine_esl_command_seconds_count", node=node, command="bgapi") == 3
    assert moved("eslengine_esl_command_seconds_count", node=node, command="auth") == 1
    assert moved("eslengine_esl_command_seconds_sum", node=node, command="bgapi") > 0

    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        served = scrape(resp.read().decode())
    assert served[("eslengine_originates_total", (("node", node), ("outcome", "ok")))] == \
        value("eslengine_originates_total", node=node, outcome="ok")
    assert served[("eslengine_esl_connection_up", (("node", node),))] == 1
    assert served[("eslengine_live_calls", (("node", node),))] == 0
    assert ("eslengine_calls_followed", ()) in served
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen("http://127.0.0.1:%d/other" % port, timeout=5)
    assert info.value.code == 404
    info.value.close()

    # Stopped by the worker: down, but not lost; and the port is closed.
    worker.stop(grace=1)
    rig.workers.remove(worker)
    assert value("eslengine_esl_connection_up", node=node) == 0
    assert moved("eslengine_esl_connections_lost_total", node=node) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_calls_ended_count_each_final_status_once_by_cause(rig: Rig) -> None:
    rig.start_worker()
    moved = Since()
    jobs = [rig.submit(a="+15551230001", b="+15551230002"), rig.submit(a="+15551230486", b="+15551230003"),
            rig.submit(a="+15551230011", b="+15551230486")]
    docs = [rig.final(job_id) for job_id in jobs]
    assert [(d["status"], d["hangup_cause"]) for d in docs] == \
        [("completed", "NORMAL_CLEARING"), ("failed", "USER_BUSY"), ("failed", "USER_BUSY")]
    assert moved("eslengine_calls_ended_total", status="completed", cause="NORMAL_CLEARING") == 1
    assert moved("eslengine_calls_ended_total", status="failed", cause="USER_BUSY") == 2


def test_a_call_skipped_at_dial_time_for_a_do_not_call_number_is_counted_dial(rig: Rig) -> None:
    moved = Since()
    listed = rig.submit(a="+15551230001", b="+15551230002")
    free = rig.submit(a="+15551230003", b="+15551230004")
    rig.queue.dnc.add("", [dnc.Entry("+15551230002", added=time.time())])  # after it was queued
    rig.start_worker()
    assert rig.final(listed)["status"] == "skipped_dnc"
    assert rig.final(free)["status"] == "completed"
    assert moved("eslengine_dnc_refusals_total", where="dial") == 1
    assert moved("eslengine_dnc_refusals_total", where="api") == 0


def test_a_lost_connection_and_a_refused_originate_are_counted(rig: Rig) -> None:
    moved = Since()
    worker = rig.start_worker()
    node = worker.nodes[0].node.label
    wait_for(lambda: worker.nodes[0].up)
    rig.switch.drop_connections()
    wait_for(lambda: moved("eslengine_esl_connections_lost_total", node=node) == 1)
    # Reconnected: a second successful connect.
    wait_for(lambda: moved("eslengine_esl_connect_attempts_total", node=node, result="ok") == 2, timeout=15)
    wait_for(lambda: worker.nodes[0].up and value("eslengine_esl_connection_up", node=node) == 1)
    rig.switch.refuse_bgapi(1)
    job_id = rig.submit(a="+15551230001", b="+15551230002")
    assert rig.final(job_id)["status"] == "completed"
    assert moved("eslengine_originates_total", node=node, outcome="refused") == 1
    assert moved("eslengine_originates_total", node=node, outcome="ok") == 1


def test_an_originate_whose_reply_was_lost_is_counted_lost(redis_server: RedisServer, key_prefix: str) -> None:
    # The connection dies right after the originate is written; the switch
    # runs it, the call ends while the worker is away, and the attempt
    # marker tells the outcome (no result ever comes).
    rig = Rig(redis_server, key_prefix, ring_time=0.05, talk_time=0.2)
    try:
        moved = Since()
        worker = rig.start_worker(bridge="switch")
        node = worker.nodes[0].node.label
        wait_for(lambda: worker.nodes[0].up)
        rig.switch.lose_originate(run=True, stall=1.5)
        job_id = rig.submit(a="+15551230001", b="+15551230002")
        assert rig.final(job_id, timeout=20)["status"] == "completed"
        assert moved("eslengine_originates_total", node=node, outcome="lost") == 1
        assert moved("eslengine_originates_total", node=node, outcome="ok") == 0
        assert moved("eslengine_esl_connections_lost_total", node=node) == 1
        assert moved("eslengine_calls_ended_total", status="completed", cause="NORMAL_CLEARING") == 1
    finally:
        rig.close()


def test_a_switch_that_cannot_be_reached_counts_failed_connects_and_is_down(redis_server: RedisServer,
                                                                            key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)
    rig.switch.stop()
    try:
        moved = Since()
        worker = rig.start_worker(reconnect_max_delay=0.5)
        node = worker.nodes[0].node.label
        wait_for(lambda: moved("eslengine_esl_connect_attempts_total", node=node, result="failed") >= 2)
        assert value("eslengine_esl_connection_up", node=node) == 0
        assert moved("eslengine_esl_connect_attempts_total", node=node, result="ok") == 0
    finally:
        rig.close()


def test_throttle_refusals_are_counted_by_node(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, sps=30, talk_time=1.0)
    try:
        moved = Since()
        worker = rig.start_worker()
        node = worker.nodes[0].node.label
        wait_for(lambda: worker.nodes[0].pacer.rate == 29, timeout=10)
        assert moved("eslengine_throttle_refusals_total", node=node) == 0
        rig.switch.board.sps = 1
        second = int(time.time())
        wait_for(lambda: int(time.time()) != second, timeout=2)
        jobs = [rig.submit(a="+1555125%04d" % (2 * i), b="+1555125%04d" % (2 * i + 1)) for i in range(5)]
        wait_for(lambda: rig.switch.stats.refused_over_limit >= 2, timeout=5)
        rig.switch.board.sps = 30
        assert {rig.final(job_id, timeout=20)["status"] for job_id in jobs} == {"completed"}
        # Each refused originate slowed the node down once (a second
        # party's leg the switch refuses is no originate of the worker's).
        assert 2 <= moved("eslengine_throttle_refusals_total", node=node) <= rig.switch.stats.refused_over_limit
    finally:
        rig.close()


def test_a_metrics_port_in_use_stops_the_worker_with_the_setting_named(rig: Rig) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="ESLENGINE_METRICS_PORT: cannot listen on 127.0.0.1:%d"
                           % taken.getsockname()[1]):
            rig.start_worker(metrics_port=taken.getsockname()[1])


# ---------------------------------------------------------------- the API


KEY = "k-metrics-1"
AUTH = {"Authorization": "Bearer " + KEY}


@pytest.fixture
def config(redis_server: RedisServer, key_prefix: str) -> Config:
    return Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY}),
                  allow_unvalidated_numbers=True)


@pytest.fixture
def queue(config: Config) -> Iterator[JobQueue]:
    client = connect(config.redis_url)
    yield JobQueue(client, Keys(config.key_prefix), record_ttl=60)
    client.close()


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def app(request: pytest.FixtureRequest, config: Config, queue: JobQueue) -> Flask:
    return create_app(config, queue, fast_intake=request.param)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def requests(route: str, method: str, status: str) -> float:
    return value("eslengine_http_requests_total", route=route, method=method, status=status)


def test_api_requests_are_counted_by_route_method_and_status(client: FlaskClient) -> None:
    before = {key: requests(*key) for key in [("/v1/calls", "POST", "202"), ("/v1/calls", "POST", "422"),
                                              ("/v1/calls/<job_id>", "GET", "200"), ("unmatched", "GET", "404"),
                                              ("unmatched", "other", "404"), ("/v1/calls", "GET", "401")]}
    timed = value("eslengine_http_request_duration_seconds_count", route="/v1/calls")
    job_id = client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH).get_json()["id"]
    assert client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH).status_code == 202
    assert client.post("/v1/calls", json={"a": "not a number", "b": "user/1000"}, headers=AUTH).status_code == 422
    assert client.get("/v1/calls/" + job_id, headers=AUTH).status_code == 200
    assert client.get("/v1/calls").status_code == 401
    assert client.get("/no/such/path/" + job_id).status_code == 404
    assert client.open("/no/such/path", method="BREW").status_code == 404
    after = {key: requests(*key) for key in before}
    assert {key: after[key] - before[key] for key in before} == {
        ("/v1/calls", "POST", "202"): 2, ("/v1/calls", "POST", "422"): 1, ("/v1/calls/<job_id>", "GET", "200"): 1,
        ("unmatched", "GET", "404"): 1, ("unmatched", "other", "404"): 1, ("/v1/calls", "GET", "401"): 1}
    assert value("eslengine_http_request_duration_seconds_count", route="/v1/calls") == timed + 4


INTERACTIVE, BULK = (("lane", "interactive"),), (("lane", "bulk"),)


def test_api_metrics_show_the_queue_read_from_redis(client: FlaskClient, queue: JobQueue) -> None:
    for _ in range(3):
        assert client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH).status_code == 202
    for _ in range(2):
        assert client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000", "lane": "bulk"},
                           headers=AUTH).status_code == 202
    queue.ensure_group()
    # One job of each lane claimed by a worker, not yet acknowledged.
    queue.redis.xreadgroup("workers", "w1", {queue.keys.jobs: ">", queue.keys.jobs_bulk: ">"}, count=1)
    queue.redis.zadd(queue.keys.retry, {"job-a": time.time() + 60, "job-b": time.time() + 90})
    queue.redis.xadd(queue.keys.dead, {"job": "{}", "reason": "test"})
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain")
    served = scrape(resp.get_data(as_text=True))
    assert served[("eslengine_queue_up", ())] == 1
    assert (served[("eslengine_queue_jobs", INTERACTIVE)], served[("eslengine_queue_jobs", BULK)]) == (3, 2)
    assert (served[("eslengine_queue_pending_jobs", INTERACTIVE)],
            served[("eslengine_queue_pending_jobs", BULK)]) == (1, 1)
    assert served[("eslengine_retry_jobs", ())] == 2
    assert served[("eslengine_dead_jobs", ())] == 1
    assert 0 <= served[("eslengine_queue_oldest_job_age_seconds", INTERACTIVE)] < 60
    assert 0 <= served[("eslengine_queue_oldest_job_age_seconds", BULK)] < 60
    assert ("eslengine_queue_jobs", ()) not in served  # no series without its lane
    assert ("eslengine_http_requests_total", (("method", "POST"), ("route", "/v1/calls"), ("status", "202"))) in served
    assert [name for name, _ in served if name.endswith("_created")] == []


def test_with_shards_the_queue_gauges_sum_every_shards_streams(config: Config) -> None:
    from eslengine.store import ShardedQueue

    client = connect(config.redis_url)
    try:
        sharded = ShardedQueue(client, Keys(config.key_prefix), shards=3, record_ttl=60)
        app = create_app(Config(**{**config.__dict__, "redis_shards": 3}), sharded)
        now_ms = int(time.time() * 1000)
        for shard, (interactive, bulk) in enumerate([(2, 0), (1, 3), (0, 1)]):
            keys = sharded.of_shard(shard).keys
            for n in range(interactive):
                client.xadd(keys.jobs, {"job": "{}"}, id="%d-%d" % (now_ms - 1000 * (shard + 1), n + 1))
            for n in range(bulk):
                client.xadd(keys.jobs_bulk, {"job": "{}"}, id="%d-%d" % (now_ms - 70_000 * shard, n + 1))
            client.zadd(keys.retry, {"job-%d" % shard: time.time() + 60})
        sharded.of_shard(2).dead_letter_job("x", "{}", "test")
        for queue in sharded.shards:
            queue.ensure_group()
        client.xreadgroup("workers", "w1.s1", {sharded.of_shard(1).keys.jobs_bulk: ">"}, count=2)
        served = scrape(app.test_client().get("/metrics").get_data(as_text=True))
        assert served[("eslengine_queue_up", ())] == 1
        assert (served[("eslengine_queue_jobs", INTERACTIVE)], served[("eslengine_queue_jobs", BULK)]) == (3, 4)
        assert (served[("eslengine_queue_pending_jobs", INTERACTIVE)],
                served[("eslengine_queue_pending_jobs", BULK)]) == (0, 2)
        assert 140 <= served[("eslengine_queue_oldest_job_age_seconds", BULK)] < 150  # shard 2's
        assert 2 <= served[("eslengine_queue_oldest_job_age_seconds", INTERACTIVE)] < 10  # shard 1's
        assert (served[("eslengine_retry_jobs", ())], served[("eslengine_dead_jobs", ())]) == (3, 1)
        assert not any(label == "shard" for _, labels in served for label, _ in labels)
    finally:
        client.close()


def test_the_oldest_jobs_age_is_its_entrys_age(client: FlaskClient, queue: JobQueue) -> None:
    now_ms = int(time.time() * 1000)
    queue.redis.xadd(queue.keys.jobs, {"job": "{}"}, id="%d-0" % (now_ms - 90_000))
    queue.redis.xadd(queue.keys.jobs, {"job": "{}"}, id="%d-0" % (now_ms - 5_000))
    queue.redis.xadd(queue.keys.jobs_bulk, {"job": "{}"}, id="%d-0" % (now_ms - 30_000))
    served = scrape(client.get("/metrics").get_data(as_text=True))
    assert 90 <= served[("eslengine_queue_oldest_job_age_seconds", INTERACTIVE)] < 100
    assert 30 <= served[("eslengine_queue_oldest_job_age_seconds", BULK)] < 40
    # No consumer group yet: nothing pending.
    assert served[("eslengine_queue_pending_jobs", INTERACTIVE)] == 0
    assert served[("eslengine_queue_pending_jobs", BULK)] == 0


def test_an_empty_queue_is_zero_deep_and_zero_old(client: FlaskClient) -> None:
    served = scrape(client.get("/metrics").get_data(as_text=True))
    assert [served[(name, ())] for name in ("eslengine_queue_up", "eslengine_dead_jobs", "eslengine_retry_jobs",
                                           "eslengine_cdr_entries", "eslengine_campaigns_running")] == [1, 0, 0, 0, 0]
    assert [served[(name, lane)] for name in ("eslengine_queue_jobs", "eslengine_queue_oldest_job_age_seconds")
            for lane in (INTERACTIVE, BULK)] == [0, 0, 0, 0]
    # Every contact state is there, at 0, before any campaign runs.
    assert {labels: v for (name, labels), v in served.items() if name == "eslengine_campaign_contacts"} == {
        (("state", state),): 0 for state in ("queued", "retrying", "waiting_window", "dialing")}


def test_api_metrics_show_the_running_campaigns_contacts_and_the_cdr_stream(client: FlaskClient,
                                                                            queue: JobQueue) -> None:
    store = CampaignStore(queue.redis, queue.keys, record_ttl=60)
    campaign = parse_campaign({"name": "n", "call": {"b": "user/1000"}}, STORE_CONFIG)
    for campaign_id, contacts, actions in (("a" * 32, 3, ("start",)), ("b" * 32, 4, ("start",)),
                                           ("c" * 32, 9, ("start", "pause")), ("d" * 32, 5, ())):
        store.create(campaign_id, campaign)
        assert store.add_contacts(campaign_id, [Contact("r%d" % i, ("+1555124000%d" % i,))
                                                for i in range(contacts)]) == []
        for action in actions:
            store.act(campaign_id, action)
    now = queue.redis.time()[0]
    assert store.take_many("b" * 32, [("r0", 0, "call-1"), ("r1", 0, "call-2")], now, 10) == [1, 1]
    for _ in range(3):
        queue.redis.xadd(queue.keys.cdr, {"cdr": "{}"})
    served = scrape(client.get("/metrics").get_data(as_text=True))
    # Two running (the paused and the never started left out), their seven contacts by state.
    assert served[("eslengine_campaigns_running", ())] == 2
    assert {labels[0][1]: v for (name, labels), v in served.items() if name == "eslengine_campaign_contacts"} == \
        {"queued": 5, "retrying": 0, "waiting_window": 0, "dialing": 2}
    assert served[("eslengine_cdr_entries", ())] == 3
    # No campaign id is a label anywhere.
    assert not any("a" * 32 in value or "b" * 32 in value for _, labels in served for _, value in labels)


def test_do_not_call_refusals_are_counted_by_where_they_happen(client: FlaskClient, queue: JobQueue) -> None:
    moved = Since()
    queue.dnc.add("", [dnc.Entry("+15551230002", added=time.time())])
    resp = client.post("/v1/calls", json={"a": "+15551230001", "b": "+15551230002"}, headers=AUTH)
    assert resp.status_code == 422 and resp.get_json()["error"] == "do_not_call"
    assert client.post("/v1/calls", json={"a": "+15551230001", "b": "+15551230003"},
                       headers=AUTH).status_code == 202
    assert moved("eslengine_dnc_refusals_total", where="api") == 1
    assert moved("eslengine_dnc_refusals_total", where="dial") == 0
    served = scrape(client.get("/metrics").get_data(as_text=True))
    assert served[("eslengine_dnc_refusals_total", (("where", "api"),))] == \
        value("eslengine_dnc_refusals_total", where="api")


def test_api_metrics_answer_without_the_queue_when_redis_does_not(config: Config) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    down = connect("redis://127.0.0.1:%d/0" % closed, timeout=0.5)
    app = create_app(config, JobQueue(down, Keys(config.key_prefix)))
    started = time.monotonic()
    resp = app.test_client().get("/metrics")
    assert time.monotonic() - started < metrics.QUEUE_READ_DEADLINE + 1.5
    assert resp.status_code == 200
    served = scrape(resp.get_data(as_text=True))
    assert served[("eslengine_queue_up", ())] == 0
    assert not any(name in ("eslengine_queue_jobs", "eslengine_campaign_contacts", "eslengine_cdr_entries")
                   for name, _ in served)
    down.close()


def test_a_redis_that_answers_too_slowly_leaves_the_queue_out_within_the_deadline(config: Config,
                                                                                  queue: JobQueue) -> None:
    collector = metrics.QueueCollector(queue.redis, queue.keys, "workers", deadline=0.3)
    # CLIENT PAUSE holds every other client's commands on the suite's
    # Redis for a moment: the read waits past its deadline.
    blocker = redis.Redis.from_url(config.redis_url, socket_timeout=5)
    blocker.execute_command("CLIENT", "PAUSE", "2000", "ALL")
    try:
        started = time.monotonic()
        families = {f.name: f for f in collector.collect()}
        assert time.monotonic() - started < 0.9
    finally:
        blocker.execute_command("CLIENT", "UNPAUSE")
        blocker.close()
    assert [s.value for s in families["eslengine_queue_up"].samples] == [0]
    assert set(families) == {"eslengine_queue_up"}
    # The connection the deadline cut is not reused half-read.
    assert [s.value for s in next(iter(collector.collect())).samples] == [1]


def test_api_metrics_need_the_token_when_one_is_set(config: Config, queue: JobQueue) -> None:
    app = create_app(Config(**{**config.__dict__, "metrics_token": "scrape-secret"}), queue)
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, AUTH, {"Authorization": "Basic scrape-secret"}):
        resp = client.get("/metrics", headers=headers)
        assert resp.status_code == 401, headers
        assert resp.get_json()["field"] == "Authorization" and resp.get_json()["error"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert resp.status_code == 200 and b"eslengine_queue_up 1.0" in resp.data


def test_api_metrics_without_a_token_are_open_and_only_answer_get(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200
    resp = client.post("/metrics")
    assert resp.status_code == 405 and resp.is_json


def test_a_final_status_is_counted_once_where_it_is_written(queue: JobQueue) -> None:
    moved = Since()
    request = calls.parse_request({"a": "+15551230001", "b": "user/1000"}, Config(allow_unvalidated_numbers=True))
    queue.enqueue(request)
    queue.transition(request.id, "dialing")
    queue.transition(request.id, "cancelled", {"hangup_cause": "ORIGINATOR_CANCEL"})
    # Refused: already final.
    assert not queue.transition(request.id, "failed", {"hangup_cause": "USER_BUSY"})
    # A bare XADD's job the worker cannot read gets a failed record, once.
    assert queue.record_unreadable("unreadable-1", "{", "invalid job: a: required")
    assert not queue.record_unreadable("unreadable-1", "{", "invalid job: a: required")
    assert moved("eslengine_calls_ended_total", status="cancelled", cause="ORIGINATOR_CANCEL") == 1
    assert moved("eslengine_calls_ended_total", status="failed", cause="USER_BUSY") == 0
    assert moved("eslengine_calls_ended_total", status="failed", cause="CALL_REJECTED") == 1


# ---------------------------------------------------------------- several processes


MULTIPROCESS_CHILD = """
import sys
from eslengine import metrics
metrics.HTTP_REQUESTS.labels("/v1/calls", "POST", "202").inc(int(sys.argv[1]))
if sys.argv[2] == "show":
    sys.stdout.write(metrics.exposition().decode())
"""


def test_with_a_multiprocess_dir_a_scrape_adds_up_every_process(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for count, show in ((2, "no"), (3, "no"), (4, "show")):
        proc = subprocess.run([sys.executable, "-c", MULTIPROCESS_CHILD, str(count), show], capture_output=True,
                              text=True, env=env, timeout=60, check=True)
    served = scrape(proc.stdout)
    assert served[("eslengine_http_requests_total", (("method", "POST"), ("route", "/v1/calls"),
                                                     ("status", "202")))] == 9


# ---------------------------------------------------------------- the command line


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run([sys.executable, "-m", "eslengine", *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("env", "needle"), [
    ({"ESLENGINE_METRICS_PORT": "lots"}, "ESLENGINE_METRICS_PORT must be a port number"),
    ({"ESLENGINE_METRICS_ADDRESS": "localhost"}, "ESLENGINE_METRICS_ADDRESS must be an IP address"),
    ({"PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"}, "PROMETHEUS_MULTIPROC_DIR /nonexistent/metrics"),
])
def test_a_bad_metrics_setting_stops_the_worker_with_one_line(redis_server: RedisServer, env: dict[str, str],
                                                              needle: str) -> None:
    proc = run_cli("worker", env={"ESLENGINE_REDIS_URL": redis_server.url, "ESLENGINE_METRICS_PORT": str(free_port()),
                                  "ESLENGINE_FREESWITCH": "esl://:pw@127.0.0.1:%d" % free_port(), **env})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], proc.stderr


def test_a_metrics_port_in_use_stops_the_worker_command_with_one_line(redis_server: RedisServer) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("worker", env={"ESLENGINE_REDIS_URL": redis_server.url, "ESLENGINE_METRICS_PORT": str(port),
                                      "ESLENGINE_FREESWITCH": "esl://:pw@127.0.0.1:%d" % free_port()})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("eslengine: error: ESLENGINE_METRICS_PORT: cannot listen on 127.0.0.1:%d" % port)


def test_a_bad_multiprocess_dir_stops_the_api_with_one_line() -> None:
    proc = run_cli("api", "--bind", "127.0.0.1:%d" % free_port(),
                   env={"ESLENGINE_API_KEYS": "k", "PROMETHEUS_MULTIPROC_DIR": "/nonexistent/metrics"})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "PROMETHEUS_MULTIPROC_DIR" in lines[0], proc.stderr

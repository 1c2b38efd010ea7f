"""Every Prometheus metric eslengine exposes, declared in one place.

Names are ``eslengine_*`` with their unit in the name; labels are few and
bounded (a node's label, an outcome, a hangup cause, a status, a route),
never a job id or a number. The parts of the engine count at their edges
with one call each:

========================  ===============================================
where                     what
========================  ===============================================
``worker/life.py``        originate results by node and outcome
``store/records.py``      calls ended, by final status and hangup cause
``worker/nodes.py``       throttle refusals; pacing delay (``acquire``)
``esl.py``                connection state, connects, losses, command latency
``store/connection.py``   Redis errors (``redis_errors``, the one translation point)
``webhooks.py``           webhook deliveries by result
``http/widget.py``        widget refusals by reason
``store/dnc.py``          do-not-call refusals, at intake and at dial time
``http/metrics.py``       HTTP requests by route, method and status; ``GET /metrics``
========================  ===============================================

Two collectors read state when scraped instead of counting: ``QueueCollector``
(both lanes' job streams, retries, dead letters, the CDR stream and the
running campaigns' contacts in Redis, within ``QUEUE_READ_DEADLINE``) and the live calls of the workers in this process
(``watch_worker``).

Counters and histograms live in ``prometheus_client``'s default registry
(``REGISTRY``), one per process. With ``PROMETHEUS_MULTIPROC_DIR`` set before
the process starts, ``prometheus_client`` keeps them in files in that
directory instead, and ``exposition`` adds them up over the processes (the
API's gunicorn workers).

``FAMILIES`` lists every metric as a scrape shows it (name, type, labels,
meaning): the README's table and the Grafana dashboard are checked against it.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .calls import LANES
from .opsview import CAMPAIGN_FIELDS, running_contacts

log = logging.getLogger(__name__)

# No ``*_created`` series beside every counter and histogram: they double a
# scrape and no panel uses them.
disable_created_metrics()

__all__ = ["CONTENT_TYPE_LATEST", "FAMILIES", "REGISTRY", "Family", "QueueCollector", "exposition"]

# How long a scrape may wait for Redis to say how deep the queue is.
QUEUE_READ_DEADLINE = 1.0

# Latency buckets (seconds): an ESL command answers in well under a
# millisecond on a quiet switch; a pacer turn may be seconds away.
COMMAND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
PACING_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True)
class Family:
    """One metric as a scrape shows it: ``name`` is what a query names
    (a counter's ``_total`` included; a histogram's ``_bucket``, ``_sum``
    and ``_count`` series follow from it)."""

    name: str
    type: str
    labels: tuple[str, ...]
    doc: str


FAMILIES: list[Family] = []


def _declare(name: str, kind: str, labels: Sequence[str], doc: str) -> None:
    FAMILIES.append(Family(name, kind, tuple(labels), doc))


def _counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    _declare(name + "_total", "counter", labels, doc)
    return Counter(name, doc, labels)


def _gauge(name: str, doc: str, labels: Sequence[str] = (), mode: str = "livesum") -> Gauge:
    _declare(name, "gauge", labels, doc)
    return Gauge(name, doc, labels, multiprocess_mode=mode)  # type: ignore[arg-type]


def _histogram(name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]) -> Histogram:
    _declare(name, "histogram", labels, doc)
    return Histogram(name, doc, labels, buckets=buckets)


# ---------------------------------------------------------------- worker

ORIGINATES = _counter(
    "eslengine_originates",
    "Originate results by node: ok (the switch placed the first leg), failed (the switch answered -ERR <cause>, "
    "its throttle's refusals included), refused (the switch refused the bgapi command itself), lost (no result: "
    "the connection dropped or it came too late; the call is reconciled, and a result that comes after all is "
    "counted too)",
    ("node", "outcome"))
CALLS_ENDED = _counter(
    "eslengine_calls_ended",
    "Calls that reached a final status (completed, failed, cancelled), by that status and the hangup cause "
    "(none when the call has none); counted by the process that wrote the status",
    ("status", "cause"))
THROTTLE_REFUSALS = _counter(
    "eslengine_throttle_refusals",
    "Session starts a node's switch refused with its sps throttle or session limit (DESTINATION_OUT_OF_ORDER "
    "with no channel created); the worker slows down there",
    ("node",))
PACING_DELAY = _histogram(
    "eslengine_pacing_delay_seconds",
    "How long a call waited for its node's pacer turn (sessions per second and session limit) before it was "
    "originated, by the node that gave the turn",
    ("node",), PACING_BUCKETS)
_declare("eslengine_live_calls", "gauge", ("node",),
         "Calls a worker follows that hold sessions on the node now (placed and not yet ended)")
_declare("eslengine_calls_followed", "gauge", (),
         "Calls a worker follows now, on a node or waiting for one")

# ---------------------------------------------------------------- event socket

ESL_UP = _gauge(
    "eslengine_esl_connection_up",
    "1 while the worker's event-socket connection to the node is up and subscribed, else 0", ("node",), "liveall")
ESL_CONNECTS = _counter(
    "eslengine_esl_connect_attempts",
    "Event-socket connects to the node by result: ok, auth (password refused) or failed (no connection, "
    "no greeting, a step got no answer); every attempt after the first is a reconnect",
    ("node", "result"))
ESL_LOST = _counter(
    "eslengine_esl_connections_lost",
    "Event-socket connections to the node that ended while up (not closed by the worker)", ("node",))
ESL_COMMAND_SECONDS = _histogram(
    "eslengine_esl_command_seconds",
    "Time from writing an event-socket command to its reply, by node and command word (api, bgapi, event, "
    "filter, auth ...); a bgapi's reply is the switch taking the job, not its result",
    ("node", "command"), COMMAND_BUCKETS)

# ---------------------------------------------------------------- Redis, webhooks, HTTP

REDIS_ERRORS = _counter(
    "eslengine_redis_errors",
    "Errors redis-py raised where the engine talks to Redis, by error class (ConnectionError, TimeoutError, "
    "ResponseError ...)",
    ("error",))
WEBHOOK_DELIVERIES = _counter(
    "eslengine_webhook_deliveries",
    "Webhook delivery attempts by result: delivered (2xx), failed (tried again later), refused (a 4xx: dropped), "
    "expired (not delivered within ESLENGINE_WEBHOOK_MAX_AGE: dropped), dropped (the record is gone or the URL "
    "no longer allowed)",
    ("result",))
WIDGET_REFUSALS = _counter(
    "eslengine_widget_refusals",
    "Calls the \"call me\" widget refused, by reason (origin_not_allowed, token_invalid, challenge_failed, "
    "closed, invalid, rate_limited, destination_limited)",
    ("reason",))
HTTP_REQUESTS = _counter(
    "eslengine_http_requests",
    "API requests by route (the URL rule, e.g. /v1/calls/<job_id>; unmatched for none), method and status code",
    ("route", "method", "status"))
HTTP_SECONDS = _histogram(
    "eslengine_http_request_duration_seconds",
    "Time the API took to answer a request, up to its response headers, by route", ("route",), HTTP_BUCKETS)

# ---------------------------------------------------------------- do-not-call

DNC_REFUSALS = _counter(
    "eslengine_dnc_refusals",
    "Calls refused because a number they would ring is on a do-not-call list, by where: api (at intake: the API, "
    "enqueue, the facades and the widget) or dial (the worker, right before it dials: the call ends skipped_dnc); "
    "counted by the process that refused it",
    ("where",))

# ---------------------------------------------------------------- the queue (read at scrape time)

# name -> (labels, meaning); ``lane`` is ``interactive`` or ``bulk`` (README "Lanes"), ``state`` one of
# ``opsview.CONTACT_STATES``.
_QUEUE_FAMILIES: dict[str, tuple[tuple[str, ...], str]] = {
    "eslengine_queue_up": ((), "1 when Redis answered this scrape's queue reads in time, else 0 (the queue, "
                               "campaign and CDR figures are then absent)"),
    "eslengine_queue_jobs": (("lane",), "Entries in the lane's job stream: waiting, or claimed and not yet "
                                        "acknowledged"),
    "eslengine_queue_pending_jobs": (("lane",), "Entries of the lane's job stream a worker has claimed and not yet "
                                                "acknowledged"),
    "eslengine_queue_oldest_job_age_seconds": (("lane",), "Age of the oldest entry in the lane's job stream (by its "
                                                          "id's time), 0 when it is empty"),
    "eslengine_retry_jobs": ((), "Calls waiting for their next attempt"),
    "eslengine_dead_jobs": ((), "Entries in the dead-letter stream"),
    "eslengine_cdr_entries": ((), "Entries in the call detail record stream (one per call that reached a final "
                                  "status, trimmed to about ESLENGINE_CDR_MAX)"),
    "eslengine_campaigns_running": ((), "Campaigns in the running state"),
    "eslengine_campaign_contacts": (("state",), "Contacts of the running campaigns not done yet, by state: queued "
                                                "(to be called), retrying (waiting for their next attempt), "
                                                "waiting_window (outside their calling window), dialing (a call "
                                                "queued or under way)"),
}
for _queue_name, (_queue_labels, _queue_doc) in _QUEUE_FAMILIES.items():
    _declare(_queue_name, "gauge", _queue_labels, _queue_doc)

_CAUSE = re.compile(r"[A-Z][A-Z0-9_]{0,63}\Z")
_COMMAND = re.compile(r"[a-z_]{1,20}\Z")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def cause_label(cause: str) -> str:
    """A hangup cause as a label value: FreeSWITCH's cause names as they
    are, ``none`` for no cause, ``other`` for anything else (a label must
    not take arbitrary text)."""
    if not cause:
        return "none"
    return cause if _CAUSE.match(cause) else "other"


def command_label(command: str) -> str:
    """The command word of an event-socket command (``bgapi originate ...`` -> ``bgapi``)."""
    word = command.split(" ", 1)[0]
    return word if _COMMAND.match(word) else "other"


def method_label(method: str) -> str:
    """An HTTP method as a label value: one a client may send freely is
    ``other`` unless it is a standard one."""
    return method if method in _METHODS else "other"


def oldest_age(first_id: str | None, now_ms: float) -> float:
    """Seconds since the stream entry ``first_id`` (``<ms>-<seq>``) was
    added, by Redis's clock ``now_ms``; 0 with no entry or an id that is
    no time (an entry added with an explicit small id)."""
    if not first_id:
        return 0.0
    ms, _, _ = first_id.partition("-")
    if not ms.isdigit():
        return 0.0
    return max(0.0, (now_ms - int(ms)) / 1000.0)


# ---------------------------------------------------------------- one-line counts for the parts
#
# The calls made once or more per call keep the labelled series they use
# (``labels()`` costs more than the count itself), by label values only:
# what a client or a switch sends never grows these.

_FINAL = frozenset({"completed", "failed", "cancelled"})
_originates: dict[tuple[str, str], Any] = {}
_ended: dict[tuple[str, str], Any] = {}
_pacing: dict[str, Any] = {}
_requests: dict[tuple[str, str, str], tuple[Any, Any]] = {}
_dnc: dict[str, Any] = {}
_DNC_WHERE = frozenset({"api", "dial"})


def count_originate(node: Any, outcome: str) -> None:
    """An originate's result on ``node`` (a ``NodeState``, or None when the
    call was on none)."""
    key = (node.node.label if node is not None else "none", outcome)
    child = _originates.get(key)
    if child is None:
        child = _originates[key] = ORIGINATES.labels(*key)
    child.inc()


def count_call_ended(status: str, fields: Any) -> None:
    """A call moved to ``status`` with ``fields`` (counted when final)."""
    if status not in _FINAL:
        return
    key = (status, cause_label((fields or {}).get("hangup_cause", "")))
    child = _ended.get(key)
    if child is None:
        child = _ended[key] = CALLS_ENDED.labels(*key)
    child.inc()


def observe_pacing(node: str, seconds: float) -> None:
    child = _pacing.get(node)
    if child is None:
        child = _pacing[node] = PACING_DELAY.labels(node)
    child.observe(seconds)


def count_request(route: str, method: str, status: str, seconds: float) -> None:
    """An API request answered: its route, method and status, and how long it took."""
    key = (route, method_label(method), status)
    children = _requests.get(key)
    if children is None:
        children = _requests[key] = (HTTP_REQUESTS.labels(*key), HTTP_SECONDS.labels(route))
    children[0].inc()
    children[1].observe(seconds)


def count_dnc_refusal(where: str) -> None:
    """A call refused for a do-not-call number ``where`` (``api`` or ``dial``)."""
    child = _dnc.get(where)
    if child is None:
        child = _dnc[where] = DNC_REFUSALS.labels(where if where in _DNC_WHERE else "other")
    child.inc()


def count_redis_error(exc: BaseException) -> None:
    REDIS_ERRORS.labels(type(exc).__name__).inc()


def esl_state(label: str, up: bool) -> None:
    ESL_UP.labels(label).set(1 if up else 0)


# ---------------------------------------------------------------- collectors


class QueueCollector(Collector):
    """The queue's depth, read from Redis at scrape time, in two round trips
    within ``deadline`` seconds: ``XLEN`` and ``XPENDING`` of each lane's
    job stream and its first entry's id (its age), ``ZCARD {p}:retry``,
    ``XLEN {p}:dead``, ``XLEN {p}:cdr`` and the active campaigns; then each
    of those campaigns' state and contact counters. Redis not answering in
    time gives ``eslengine_queue_up 0`` and no other figure, never a failed
    scrape.

    With several shards (``shards``: each shard's ``Keys``, shard 0 first)
    the per-shard figures are summed over the shards under the same labels
    (a lane's oldest job: the oldest of any shard); the campaigns are the
    base shard's, read once."""

    def __init__(self, client: Any, keys: Any, group: str, *, deadline: float = QUEUE_READ_DEADLINE,
                 shards: Sequence[Any] = ()) -> None:
        self.client = client
        self.keys = keys
        self.shards = list(shards) or [keys]
        self.group = group
        self.deadline = deadline

    def read(self) -> dict[str, dict[tuple[str, ...], float]]:
        """The figures by metric name (``eslengine_queue_up`` aside), each
        label values -> value. Raises what redis-py raises, or
        ``gevent.Timeout`` after ``deadline``."""
        keys = self.keys
        per_shard = 3 * len(LANES) + 3
        with gevent.Timeout(self.deadline):
            pipe = self.client.pipeline(transaction=False)
            for shard in self.shards:
                for lane in LANES:
                    pipe.xlen(shard.stream(lane))
                    pipe.xpending(shard.stream(lane), self.group)
                    pipe.xrange(shard.stream(lane), "-", "+", count=1)
                pipe.zcard(shard.retry)
                pipe.xlen(shard.dead)
                pipe.xlen(shard.cdr)
            pipe.smembers(keys.active_campaigns)
            pipe.time()
            replies = pipe.execute(raise_on_error=False)
            active, now = replies[per_shard * len(self.shards):]
            totals = [0, 0, 0]
            for n in range(len(self.shards)):
                for i, reply in enumerate(replies[per_shard * n + 3 * len(LANES):per_shard * (n + 1)]):
                    if isinstance(reply, Exception):
                        raise reply
                    totals[i] += int(reply)
            for reply in (active, now):
                if isinstance(reply, Exception):
                    raise reply
            campaigns = []
            if active:
                pipe = self.client.pipeline(transaction=False)
                for campaign_id in sorted(active):
                    pipe.hmget(keys.campaign(campaign_id), CAMPAIGN_FIELDS)
                campaigns = [dict(zip(CAMPAIGN_FIELDS, values)) for values in pipe.execute()]
        retry, dead, cdr = totals
        now_ms = now[0] * 1000.0 + now[1] / 1000.0
        figures: dict[str, dict[tuple[str, ...], float]] = {
            "eslengine_queue_jobs": {}, "eslengine_queue_pending_jobs": {},
            "eslengine_queue_oldest_job_age_seconds": {}}
        for i, lane in enumerate(LANES):
            total_jobs, total_pending, oldest = 0, 0, 0.0
            for n in range(len(self.shards)):
                jobs, pending, first = replies[per_shard * n + 3 * i:per_shard * n + 3 * i + 3]
                for reply in (jobs, first):
                    if isinstance(reply, Exception):
                        raise reply
                # No consumer group yet (no worker ever ran): nothing is pending.
                total_jobs += int(jobs)
                total_pending += 0 if isinstance(pending, Exception) else int(pending.get("pending") or 0)
                oldest = max(oldest, oldest_age(first[0][0] if first else None, now_ms))
            figures["eslengine_queue_jobs"][(lane,)] = float(total_jobs)
            figures["eslengine_queue_pending_jobs"][(lane,)] = float(total_pending)
            figures["eslengine_queue_oldest_job_age_seconds"][(lane,)] = oldest
        seen = running_contacts(campaigns)
        figures.update({
            "eslengine_retry_jobs": {(): float(retry)},
            "eslengine_dead_jobs": {(): float(dead)},
            "eslengine_cdr_entries": {(): float(cdr)},
            "eslengine_campaigns_running": {(): float(seen.running)},
            "eslengine_campaign_contacts": {(state,): float(count) for state, count in seen.contacts.items()},
        })
        return figures

    def collect(self) -> Iterator[Metric]:
        figures: dict[str, dict[tuple[str, ...], float]] | None = None
        try:
            figures = self.read()
        except gevent.Timeout:
            log.warning("metrics: queue not read: Redis gave no answer within %.1fs", self.deadline)
        except Exception as exc:
            log.warning("metrics: queue not read: %s", exc)
        yield GaugeMetricFamily("eslengine_queue_up", _QUEUE_FAMILIES["eslengine_queue_up"][1],
                                value=0.0 if figures is None else 1.0)
        for name, samples in (figures or {}).items():
            labels, doc = _QUEUE_FAMILIES[name]
            family = GaugeMetricFamily(name, doc, labels=labels)
            for values, value in samples.items():
                family.add_metric(values, value)
            yield family

    def describe(self) -> Iterable[Metric]:
        return []


class _WorkerCollector(Collector):
    """Live calls of the workers in this process, counted at scrape time."""

    def __init__(self) -> None:
        self.workers: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[Metric]:
        workers = list(self.workers)
        if not workers:
            return  # no worker in this process (the API)
        followed = 0
        by_node: dict[str, int] = {}
        for worker in workers:
            calls = list(worker.calls.values())
            followed += len(calls)
            for state in worker.nodes:
                by_node.setdefault(state.node.label, 0)
            for call in calls:
                if call.node is not None:
                    by_node[call.node.node.label] = by_node.get(call.node.node.label, 0) + 1
        live = GaugeMetricFamily("eslengine_live_calls", _doc("eslengine_live_calls"), labels=("node",))
        for label, count in sorted(by_node.items()):
            live.add_metric((label,), count)
        yield live
        yield GaugeMetricFamily("eslengine_calls_followed", _doc("eslengine_calls_followed"), value=followed)

    def describe(self) -> Iterable[Metric]:
        return []


def _doc(name: str) -> str:
    return next(f.doc for f in FAMILIES if f.name == name)


_WORKERS = _WorkerCollector()
REGISTRY.register(_WORKERS)


def watch_worker(worker: Any) -> None:
    """Count ``worker``'s calls in ``eslengine_live_calls`` while it lives."""
    _WORKERS.workers.add(worker)


def unwatch_worker(worker: Any) -> None:
    _WORKERS.workers.discard(worker)


# ---------------------------------------------------------------- exposition


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set (``prometheus_client`` reads it
    when it is imported)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def check_multiprocess_dir() -> None:
    """``ConfigError`` when ``PROMETHEUS_MULTIPROC_DIR`` is set to anything
    but a directory this process may write (every count would fail)."""
    from .errors import ConfigError

    path = multiprocess_dir()
    if path is not None and not (os.path.isdir(path) and os.access(path, os.W_OK)):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR %s is not a directory this process may write" % path)


def exposition(extra: Sequence[Collector] = ()) -> bytes:
    """This process's metrics and ``extra`` collectors in the text format.
    With ``PROMETHEUS_MULTIPROC_DIR``: every process's counters and histograms
    added up (gauges as their ``multiprocess_mode`` says) instead of this one's."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_WORKERS)  # live calls are counted at scrape time, not kept in files
    else:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Forward(Collector):
    """Another registry's metrics, collected when this one is."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        return iter(self.registry.collect())

    def describe(self) -> Iterable[Metric]:
        return []


def process_ended(pid: int) -> None:
    """A process of a multiprocess set ended: its live gauges go (gunicorn's
    ``child_exit``)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


# ---------------------------------------------------------------- the worker's /metrics server


class WorkerMetrics:
    """A worker's metrics while it runs: its live calls counted, and
    ``GET /metrics`` served on ``ESLENGINE_METRICS_PORT`` (none for 0)."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        config = worker.config
        self.server = MetricsServer(config.metrics_address, config.metrics_port) if config.metrics_port else None

    def start(self) -> None:
        """``ConfigError`` when the metrics port cannot be listened on."""
        from .errors import ConfigError

        check_multiprocess_dir()
        if self.server is not None:
            try:
                self.server.start()
            except OSError as exc:
                raise ConfigError("ESLENGINE_METRICS_PORT: cannot listen on %s:%d: %s" % (
                    self.server.address, self.server.port, exc.strerror or exc)) from exc
        watch_worker(self.worker)

    def stop(self) -> None:
        unwatch_worker(self.worker)
        if self.server is not None:
            self.server.stop()



class MetricsServer:
    """``GET /metrics`` of this process on ``address:port``, a gevent WSGI
    server (for the worker: ``ESLENGINE_METRICS_PORT``). Any other path is 404."""

    def __init__(self, address: str, port: int, extra: Callable[[], Sequence[Collector]] = lambda: ()) -> None:
        self.address = address
        self.port = port
        self._extra = extra
        self._server: Any = None

    def start(self) -> None:
        """Listen; ``OSError`` when the address cannot be bound."""
        import socket

        from gevent.pywsgi import WSGIServer

        listener = socket.socket(socket.AF_INET6 if ":" in self.address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.address, self.port))
            listener.listen(64)
        except OSError:
            listener.close()
            raise
        self._server = WSGIServer(listener, self._app, log=None, error_log=log)
        self._server.start()
        self.port = self._server.server_port
        log.info("serving GET /metrics on http://%s:%d/metrics", self.address, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics is here\n"]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain"), ("Allow", "GET, HEAD")])
            return [b"GET /metrics\n"]
        body = exposition(self._extra())
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))])
        return [body] if environ["REQUEST_METHOD"] == "GET" else []

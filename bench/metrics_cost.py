"""What the metrics cost on the hot path, in microseconds of CPU.

The end-to-end throughput run (``bench.throughput``) moves by several per
cent from run to run on a shared machine, more than the metrics cost; this
times the metric calls themselves instead. One originate through
``bench.throughput``'s path (a busy first party: the pacer's turn, the bgapi
reply, the originate's result, the failed status) makes the calls of
``per_originate``; one API request the request counter's. Each is run in a
loop and the fastest of several repeats kept. The engine's CPU per originate,
to set them against, is ``bench.throughput``'s worker CPU share divided by
its rate (about 400 µs on the reference machine).
"""

from __future__ import annotations

import timeit
from typing import Any

from eslengine import metrics
from eslengine.http.metrics import RequestMetrics

from .harness import Result

NODE = "127.0.0.1:8021"


class _State:
    """What ``metrics.count_originate`` reads of a node's state."""

    class node:  # the attribute a NodeState has
        label = NODE


def per_originate() -> None:
    metrics.observe_pacing(NODE, 0.0002)  # Nodes.acquire
    _bgapi.observe(0.0004)  # EslConnection._replied (a cached series)
    metrics.count_originate(_STATE, "failed")  # CallLife._settle
    metrics.count_call_ended("failed", {"hangup_cause": "USER_BUSY"})  # Records.transition


_STATE: Any = _State()
_bgapi = metrics.ESL_COMMAND_SECONDS.labels(NODE, "bgapi")


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("202 ACCEPTED", [])
    return []


def _bare_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    return _app(environ, start_response)


_counted = RequestMetrics(_app)
_ENVIRON = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/calls", "eslengine.route": "/v1/calls"}


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def per_request() -> None:
    _counted(dict(_ENVIRON), _start_response)


def bare_request() -> None:
    _bare_app(dict(_ENVIRON), _start_response)


def _best_us(fn: Any, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6


def run(quick: bool) -> list[Result]:
    number = 20_000 if quick else 100_000
    originate = _best_us(per_originate, number)
    request = _best_us(per_request, number) - _best_us(bare_request, number)
    return [
        Result("metrics CPU per originate", round(originate, 2), "µs", "(reported)", None,
               "pacing delay, bgapi latency, originate result and final status, timed in a loop; the engine spends "
               "about 400 µs of CPU per originate (bench.throughput)"),
        Result("metrics CPU per API request", round(request, 2), "µs", "(reported)", None,
               "the request counter around a WSGI app, less the same app without it"),
    ]

"""Interactive calls while a campaign runs: the p99 of ``202 Accepted`` to
the originate on the wire for interactive calls offered at a steady rate
through the real API, first with nothing else going on (idle), then while a
100,000-contact campaign is being dialed at the node's ceiling, through one
worker (whose campaign dispatcher queues the campaign's calls in the bulk
lane) and the simulator at a node's usual limits.

The campaign is made the way a client makes one: created over HTTP, its
contacts uploaded as one streamed CSV (``bench.campaigns.Rows``), started
over HTTP, paced at the node's sessions per second with room for far more
calls under way than the node ever holds, so that the campaign alone keeps
the node at its ceiling for minutes. Every contact's number is busy
(``...486``): each call fails at once, sessions never pile up, and the
limit that binds is the node's sessions per second, which the interactive
calls must share with the campaign. The interactive calls are measured only
once the campaign's calls reach the switch at its ceiling. Target: the
loaded p99 at most twice the idle one (the same as ``bench.lanes``, whose
bulk lane is filled with bare ``XADD``s instead: this one adds the
dispatcher's work, its pacer and its CDR reading, to the worker).
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from typing import Any

from .campaigns import Rows, _post
from .harness import BenchStack, CpuMeter, Result, core_split, percentile, pin, wait_until
from .lanes import MAX_SESSIONS, RATE, SPS, TARGET_RATIO, _interactive


def _get(stack: BenchStack, path: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=60)
    connection.request("GET", path, headers={"Authorization": "Bearer " + stack.api_key})
    response = connection.getresponse()
    document: dict[str, Any] = json.loads(response.read() or b"{}")
    connection.close()
    if response.status >= 300:
        raise RuntimeError("GET %s: %d %s" % (path, response.status, document))
    return document


def _api_worker(pid: int) -> int:
    """The gunicorn worker serving the API (the master only watches it)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid), encoding="ascii") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        children = []
    return children[0] if children else pid


def _run_delay(pid: int) -> float:
    """Seconds the threads of ``pid`` have waited for a CPU while runnable
    (``/proc/<pid>/task/*/schedstat``): what other processes took from it."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, task), encoding="ascii") as fh:
                total += int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


def _worst(latencies: list[float], duration: float, n: int = 6) -> str:
    """The ``n`` slowest calls: latency (ms) @ about when in the phase (s)."""
    ranked = sorted(range(len(latencies)), key=lambda i: latencies[i], reverse=True)[:n]
    return " ".join("%.1f@%.0fs" % (latencies[i], i * duration / max(len(latencies), 1)) for i in ranked)


def _originate_rate(stack: BenchStack, window: float = 1.0) -> float:
    """Originates the switch received a second, over the next ``window`` seconds."""
    before = stack.switch_stats(counts=True)["originates"]
    time.sleep(window)
    return float(stack.switch_stats(counts=True)["originates"] - before) / window


def run(quick: bool) -> list[Result]:
    contacts = 10_000 if quick else 100_000
    duration = 10 if quick else 30
    stack = BenchStack(switch_args=["--sps", str(SPS), "--max-sessions", str(MAX_SESSIONS)],
                       node_query="sps=%d&max_sessions=%d" % (SPS, MAX_SESSIONS))
    stack.start()
    results: list[Result] = []
    split = core_split()
    switch_cpus, engine_cpus = split if split is not None else (None, None)
    before_pin = os.sched_getaffinity(0) if split is not None else None
    ok = False
    try:
        # The switch on a core of its own, as a node has a machine of its
        # own; the worker (with its dispatcher), the API, Redis and the load
        # generator (a child of this process) on the other.
        pin(stack.processes["fakeswitch"].proc.pid, switch_cpus)
        for name in ("worker", "api", "redis"):
            pin(stack.processes[name].proc.pid, engine_cpus)
        pin(os.getpid(), engine_cpus)
        stack.wait_worker_connected()
        pids = {name: stack.processes[name].proc.pid for name in ("worker", "fakeswitch", "redis")}
        pids["api"] = _api_worker(stack.processes["api"].proc.pid)
        t0 = time.monotonic()
        idle_wait = _run_delay(pids["worker"])
        idle, idle_note = _interactive(stack, duration)
        idle_wait = (_run_delay(pids["worker"]) - idle_wait) / max(time.monotonic() - t0, 1e-9)

        made = _post(stack, "/v1/campaigns", {"name": "lanes bench", "call": {"b": "+15551230002"},
                                              "pacing": {"cps": SPS, "max_concurrent": MAX_SESSIONS}})
        campaign_id = str(made["id"])
        rows = Rows(contacts)
        t0 = time.monotonic()
        added = _post(stack, "/v1/campaigns/%s/contacts" % campaign_id, rows, "text/csv", rows.size)
        upload_s = time.monotonic() - t0
        if added.get("added") != contacts:
            raise RuntimeError("upload: %d of %d contacts added: %s" % (
                added.get("added", 0), contacts, str(added.get("refused", ""))[:200]))
        _post(stack, "/v1/campaigns/%s/start" % campaign_id, {})
        # The campaign's calls reach the switch at its ceiling before the
        # measure starts (nine tenths of it in one second: the pacer's
        # spacing and the switch's own clock leave a few starts between
        # seconds).
        t0 = time.monotonic()
        wait_until(lambda: _originate_rate(stack) >= SPS * 0.9, 60, "the campaign never reached the node's ceiling",
                   stack.processes["worker"], interval=0.0)
        ramp_s = time.monotonic() - t0
        started = stack.switch_stats(counts=True)["originates"]
        meter = CpuMeter(pids)
        meter.start()
        waited = {name: _run_delay(pid) for name, pid in pids.items()}
        t0 = time.monotonic()
        loaded, loaded_note = _interactive(stack, duration)
        cpu = meter.stop()
        waited = {name: (_run_delay(pid) - waited[name]) / max(time.monotonic() - t0, 1e-9)
                  for name, pid in pids.items()}
        dialed = stack.switch_stats(counts=True)["originates"] - started
        campaign_rate = (dialed - len(loaded)) / max(time.monotonic() - t0, 1e-9)
        shown = _get(stack, "/v1/campaigns/%s" % campaign_id)
        counters = shown.get("counters", {})
        done = int(counters.get("done", 0))
        left = int(shown.get("contacts", contacts)) - done
        idle_p99, loaded_p99 = percentile(idle, 99), percentile(loaded, 99)
        ratio = loaded_p99 / idle_p99 if idle_p99 > 0 else float("nan")
        cpu_text = ", ".join("%s %.2f" % item for item in sorted(cpu.items()))
        wait_text = ", ".join("%s %.3f" % item for item in sorted(waited.items()))
        print("  idle      p50 %7.2f ms  p99 %7.2f ms  %s" % (percentile(idle, 50), idle_p99, idle_note),
              file=sys.stderr)
        print("  campaign  p50 %7.2f ms  p99 %7.2f ms  %s; %d contacts uploaded in %.1fs, at the ceiling %.1fs "
              "after the start, %d originates while measured (campaign %.0f/s), contacts done %d, left %d; "
              "CPU %s" % (percentile(loaded, 50), loaded_p99, loaded_note, contacts, upload_s, ramp_s, dialed,
                          campaign_rate, done, left, cpu_text), file=sys.stderr)
        print("  slowest idle: %s; slowest loaded: %s; waiting for a CPU (s/s): worker idle %.3f; while loaded %s" % (
            _worst(idle, duration), _worst(loaded, duration), idle_wait, wait_text), file=sys.stderr)
        note = ("%d interactive calls/s for %ds; node at %d sps; a campaign of %d contacts paced at %d cps "
                "(%.0f campaign originates/s while measured), contacts done %d, left %d at the end; "
                "CPU while loaded: %s; runnable but waiting for a CPU (s/s): %s" % (
                    RATE, duration, SPS, contacts, SPS, campaign_rate, done, left, cpu_text, wait_text))
        results.append(Result("interactive 202 -> originate p50, idle (campaign run)", round(percentile(idle, 50), 2),
                              "ms", "(reported)", None))
        results.append(Result("interactive 202 -> originate p50, campaign dialing", round(percentile(loaded, 50), 2),
                              "ms", "(reported)", None))
        results.append(Result("interactive 202 -> originate p99, idle (campaign run)", round(idle_p99, 2), "ms",
                              "(reported)", None, idle_note))
        results.append(Result("interactive 202 -> originate p99, campaign dialing", round(loaded_p99, 2), "ms",
                              "(reported)", None, loaded_note))
        results.append(Result("campaign contacts done at the end of the measure", done, "contacts", "(reported)", None,
                              "%d left of %d" % (left, contacts)))
        results.append(Result("interactive p99 campaign-loaded / idle", round(ratio, 2), "x",
                              "<= %.0f" % TARGET_RATIO, ratio <= TARGET_RATIO and left > 0, note))
        ok = True
    finally:
        pin(os.getpid(), before_pin)
        stack.stop()
        if ok:
            stack.cleanup()
        else:
            print("  logs kept in %s" % stack.dir, file=sys.stderr)
    return results

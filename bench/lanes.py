"""Interactive calls while the bulk lane is full: the p99 of ``202 Accepted``
to the originate on the wire for interactive calls offered at a steady rate
through the real API, first with nothing else queued (idle), then while
100,000 bulk-lane jobs are queued and being dialed, through one worker and
the simulator at a node's usual limits (the bulk lane alone would keep the
node at its sessions-per-second ceiling for minutes).

Bulk jobs are bare ``XADD``s to ``{eslengine}:jobs:bulk`` (a campaign's
way); every call's first leg is busy (``...486``), so the switch fails it
at once and sessions never pile up: the limit that binds is the node's
sessions per second, which the interactive calls must share with the bulk
lane. Target: the loaded p99 at most twice the idle one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .harness import BenchStack, CpuMeter, Result, core_split, fill_stream, job, percentile, pin, wait_until

SPS = 200
MAX_SESSIONS = 2000
RATE = 20  # interactive calls a second
TARGET_RATIO = 2.0
BULK_STREAM = "{eslengine}:jobs:bulk"


def _interactive(stack: BenchStack, duration: float) -> tuple[list[float], str]:
    """Offer interactive calls at RATE for ``duration`` seconds; their
    202 -> originate latencies (ms) and a note."""
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", stack.api_url + "/v1/calls", "--key", stack.api_key,
                          "--duration", str(duration), "--rate", str(RATE)],
                         capture_output=True, text=True, timeout=duration + 90, check=True,
                         cwd=os.path.dirname(os.path.dirname(__file__))).stdout
    doc = json.loads(out)
    accepted = {job_id: t for job_id, status, t in doc["responses"] if status == 202}

    def arrived() -> dict[str, float]:
        return {j: t for t, j in stack.switch_stats()["originates"] if j in accepted}

    try:
        wait_until(lambda: len(arrived()) >= len(accepted), 60, "originates missing", interval=0.5)
    except TimeoutError:
        pass
    seen = arrived()
    latencies = [(seen[j] - t) * 1000 for j, t in accepted.items() if j in seen]
    return latencies, "%d accepted, %d originated, %d errors" % (len(accepted), len(seen), doc["errors"])


def run(quick: bool) -> list[Result]:
    bulk_jobs = 10_000 if quick else 100_000
    duration = 10 if quick else 30
    stack = BenchStack(switch_args=["--sps", str(SPS), "--max-sessions", str(MAX_SESSIONS)],
                       node_query="sps=%d&max_sessions=%d" % (SPS, MAX_SESSIONS))
    stack.start()
    results: list[Result] = []
    split = core_split()
    switch_cpus, engine_cpus = split if split is not None else (None, None)
    before_pin = os.sched_getaffinity(0) if split is not None else None
    try:
        # The switch on a core of its own, as a node has a machine of its
        # own; the worker, the API, Redis and the load generator (a child of
        # this process) on the other.
        pin(stack.processes["fakeswitch"].proc.pid, switch_cpus)
        for name in ("worker", "api", "redis"):
            pin(stack.processes[name].proc.pid, engine_cpus)
        pin(os.getpid(), engine_cpus)
        stack.wait_worker_connected()
        idle, idle_note = _interactive(stack, duration)
        client = stack.client()
        t0 = time.monotonic()
        fill_stream(client, ({**job(), "lane": "bulk"} for _ in range(bulk_jobs)), stream=BULK_STREAM)
        fill_s = time.monotonic() - t0
        before = stack.switch_stats(counts=True)["originates"]
        # The bulk lane is being dialed at the node's ceiling before the measure starts.
        wait_until(lambda: stack.switch_stats(counts=True)["originates"] - before >= SPS, 60,
                   "the bulk lane is not being dialed")
        started = stack.switch_stats(counts=True)["originates"]
        meter = CpuMeter({name: stack.processes[name].proc.pid for name in ("worker", "fakeswitch", "redis")})
        meter.start()
        loaded, loaded_note = _interactive(stack, duration)
        cpu = meter.stop()
        dialed = stack.switch_stats(counts=True)["originates"] - started
        left = client.xlen(BULK_STREAM)
        idle_p99, loaded_p99 = percentile(idle, 99), percentile(loaded, 99)
        ratio = loaded_p99 / idle_p99 if idle_p99 > 0 else float("nan")
        print("  idle    p50 %7.2f ms  p99 %7.2f ms  %s" % (percentile(idle, 50), idle_p99, idle_note), file=sys.stderr)
        print("  loaded  p50 %7.2f ms  p99 %7.2f ms  %s; %d bulk jobs queued in %.1fs, %d originates meanwhile, "
              "%d still queued" % (percentile(loaded, 50), loaded_p99, loaded_note, bulk_jobs, fill_s, dialed, left),
              file=sys.stderr)
        note = ("%d interactive calls/s for %ds; node at %d sps; %d bulk jobs queued, %d still queued at the end; "
                "CPU while loaded: %s" % (RATE, duration, SPS, bulk_jobs, left,
                                          ", ".join("%s %.2f" % item for item in sorted(cpu.items()))))
        results.append(Result("interactive 202 -> originate p50, idle", round(percentile(idle, 50), 2), "ms",
                              "(reported)", None))
        results.append(Result("interactive 202 -> originate p50, bulk lane full", round(percentile(loaded, 50), 2),
                              "ms", "(reported)", None))
        results.append(Result("interactive 202 -> originate p99, idle", round(idle_p99, 2), "ms", "(reported)", None,
                              idle_note))
        results.append(Result("interactive 202 -> originate p99, bulk lane full", round(loaded_p99, 2), "ms",
                              "(reported)", None, loaded_note))
        results.append(Result("interactive p99 bulk-loaded / idle", round(ratio, 2), "x",
                              "<= %.0f" % TARGET_RATIO, ratio <= TARGET_RATIO and left > 0, note))
    finally:
        pin(os.getpid(), before_pin)
        stack.stop()
        stack.cleanup()
    return results

"""Pacing: one node limited to N sessions/s and M channels, a queue deeper
than the run, and what the simulator observes.

Every call is two sofia legs (one session each); the A leg's session starts
with the originate, the B leg's when the worker transfers the answered A leg
to the connect extension (ESLENGINE_BRIDGE=engine, the default), in its own
turn on the pacer. Observed: session starts per second over the
measured window (against N and N - 1), the most starts in any sliding and
any clock-aligned one-second window, the peak of live channels, and the
sessions the switch refused for being over a limit. Then the same node
with two workers, each given the node's whole limits, sharing them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .harness import BenchStack, Result, fill_stream, job, wait_until

RING = 0.2


def _max_in_window(times: list[float], width: float = 1.0) -> int:
    best = lo = 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _observe(sps: int, max_sessions: int, talk: float, seconds: float, switch_limit: int,
             workers: int = 1) -> dict[str, Any]:
    stack = BenchStack(switch_args=["--sps", str(sps), "--max-sessions", str(switch_limit), "--ring-time",
                                    str(RING), "--talk-time", str(talk)],
                       node_query="sps=%d&max_sessions=%d" % (sps, max_sessions),
                       start_api=False, workers=0)
    stack.start()
    try:
        client = stack.client()
        fill_stream(client, (job(a="+1555123%04d" % (i % 10000), b="+15551239999") for i in range(
            int(sps * (seconds + 10)))))
        worker = stack.start_worker()
        wait_until(lambda: bool(stack.switch_stats()["session_starts"]), 30, "no session started", worker, 0.2)
        for k in range(2, workers + 1):
            stack.start_worker("worker%d" % k)
        first = stack.switch_stats()["session_starts"][0]
        # A worker that joins starts after about 4 s (Timings.join_wait).
        warmup = 2.0 if workers == 1 else 7.0
        start, end = first + warmup, first + warmup + seconds
        wait_until(lambda: time.time() > end + 0.5, seconds + 30, "pacing run", worker, 0.2)
        stats = stack.switch_stats()
    finally:
        stack.stop()
        stack.cleanup()
    starts = sorted(stats["session_starts"])
    window = [t for t in starts if start <= t < end]
    per_second: dict[int, int] = {}
    for t in starts:
        per_second[int(t)] = per_second.get(int(t), 0) + 1
    return {"rate": len(window) / seconds, "sliding": _max_in_window(starts),
            "aligned": max(per_second.values()), "peak": stats["peak_sessions"],
            "refused": stats["refused_over_limit"] + len(stats["session_refusals"]) * 0, "starts": len(starts)}


def run(quick: bool) -> list[Result]:
    seconds = 8.0 if quick else 30.0
    n, m = 100, 1000
    rate = _observe(n, m, 1.0, seconds, m)
    print("  N=%d M=%d: %.2f sessions/s, max %d in a sliding 1 s window, %d in a clock second, peak %d live, "
          "%d refused" % (n, m, rate["rate"], rate["sliding"], rate["aligned"], rate["peak"], rate["refused"]),
          file=sys.stderr)
    m2 = 40
    ceiling = _observe(n, m2, 2.0, seconds / 2, m2)
    print("  N=%d M=%d: %.2f sessions/s, peak %d live, %d refused" % (
        n, m2, ceiling["rate"], ceiling["peak"], ceiling["refused"]), file=sys.stderr)
    shared = _observe(n, m, 1.0, seconds / 2, m, workers=2)
    print("  N=%d M=%d, 2 workers: %.2f sessions/s, max %d in a sliding 1 s window, %d refused" % (
        n, m, shared["rate"], shared["sliding"], shared["refused"]), file=sys.stderr)
    dev_n = rate["rate"] / n - 1
    dev_n1 = rate["rate"] / (n - 1) - 1
    b_leg = ("B legs start when the worker transfers the answered A leg (ring %.1fs), paced like the "
             "originates" % RING)
    return [
        Result("pacing: observed sessions/s, N=%d, %ds" % (n, seconds), round(rate["rate"], 2), "sessions/s",
               "within 2%% of N=%d" % n, abs(dev_n) <= 0.02,
               "%+.1f%% vs N, %+.1f%% vs N-1=%d; calls are 2 sofia legs" % (dev_n * 100, dev_n1 * 100, n - 1)),
        Result("pacing: most session starts in any sliding 1 s window", rate["sliding"], "sessions",
               "<= N=%d" % n, rate["sliding"] <= n, b_leg),
        Result("pacing: most session starts in one clock second", rate["aligned"], "sessions", "<= N=%d" % n,
               rate["aligned"] <= n),
        Result("pacing: peak live channels, M=%d (rate-bound run)" % m, rate["peak"], "channels", "<= %d" % m,
               rate["peak"] <= m),
        Result("pacing: peak live channels, M=%d (channel-bound run)" % m2, ceiling["peak"], "channels",
               "<= %d" % m2, ceiling["peak"] <= m2,
               "talk 2 s so M binds; switch max-sessions also %d; %.1f sessions/s" % (m2, ceiling["rate"])),
        Result("pacing: sessions refused by the switch", rate["refused"] + ceiling["refused"], "sessions", "== 0",
               rate["refused"] + ceiling["refused"] == 0),
        Result("pacing, 2 workers sharing the node: observed sessions/s", round(shared["rate"], 2), "sessions/s",
               "(reported)", None, "each worker given N=%d; shares of N-1: 2 x %d" % (n, (n - 1) // 2)),
        Result("pacing, 2 workers: most session starts in any sliding 1 s window", shared["sliding"], "sessions",
               "<= N=%d" % n, shared["sliding"] <= n),
        Result("pacing, 2 workers: sessions refused by the switch", shared["refused"], "sessions", "== 0",
               shared["refused"] == 0),
    ]

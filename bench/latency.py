"""Latency from ``202 Accepted`` to the originate on the wire, at fixed
offered rates, through the real API, Redis, one worker and the simulator
(limits lifted).

``bench.loadgen`` offers calls at a fixed rate and records when each 202
arrived; the simulator records when each originate arrived (by the job id
it carries). Both clocks are this machine's ``time.time()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .harness import NO_LIMIT_SESSIONS, NO_LIMIT_SPS, BenchStack, Result, percentile, wait_until

RATES = (50, 200, 1000)
TARGET_P99_AT_200 = 25.0


def run(quick: bool) -> list[Result]:
    duration = 3 if quick else 10
    stack = BenchStack(
        switch_args=["--sps", str(NO_LIMIT_SPS), "--max-sessions", str(NO_LIMIT_SESSIONS)],
        node_query="sps=%d&max_sessions=%d" % (NO_LIMIT_SPS, NO_LIMIT_SESSIONS),
    )
    stack.start()
    results: list[Result] = []
    try:
        stack.wait_worker_connected()
        for rate in RATES:
            out = subprocess.run([sys.executable, "-m", "bench.loadgen", stack.api_url + "/v1/calls", "--key",
                                  stack.api_key, "--duration", str(duration), "--rate", str(rate)],
                                 capture_output=True, text=True, timeout=duration + 90, check=True,
                                 cwd=os.path.dirname(os.path.dirname(__file__))).stdout
            doc = json.loads(out)
            accepted = {job_id: t for job_id, status, t in doc["responses"] if status == 202}

            def arrived(accepted: dict[str, float] = accepted) -> dict[str, float]:
                return {j: t for t, j in stack.switch_stats()["originates"] if j in accepted}

            try:
                wait_until(lambda: len(arrived()) >= len(accepted), 60, "originates missing", interval=0.5)  # noqa: B023
            except TimeoutError:
                pass
            seen = arrived()
            lat = [(seen[j] - t) * 1000 for j, t in accepted.items() if j in seen]
            p50, p99 = percentile(lat, 50), percentile(lat, 99)
            achieved = doc["requests"] / doc["elapsed"]
            note = "offered %d/s for %ds, achieved %.0f/s, %d accepted, %d originated, %d errors" % (
                rate, duration, achieved, len(accepted), len(seen), doc["errors"])
            print("  %5d/s  p50 %7.2f ms  p99 %7.2f ms  %s" % (rate, p50, p99, note), file=sys.stderr)
            results.append(Result("202 -> originate p50 at %d/s" % rate, round(p50, 2), "ms", "(reported)", None,
                                  note))
            target = "< %.0f" % TARGET_P99_AT_200 if rate == 200 else "(reported)"
            ok = (p99 < TARGET_P99_AT_200 and len(seen) == len(accepted)) if rate == 200 else None
            results.append(Result("202 -> originate p99 at %d/s" % rate, round(p99, 2), "ms", target, ok))
            time.sleep(1)
    finally:
        stack.stop()
        stack.cleanup()
    return results

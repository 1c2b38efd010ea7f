"""API intake: ``POST /v1/calls`` under gunicorn with one gevent worker,
next to a bare Flask endpoint that only answers 202 (``bench.bare``), in the
same run, with the same load generator.

Both generators are run against the bare endpoint first (wrk, when installed,
and ``bench.loadgen``); the one that gets more requests/s through it is the
one that limits the server least on these 2 cores, and it is used for both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

from eslengine.stack import free_port, wait_for_port

from .harness import BenchStack, Result

TARGET_RATE = 2500.0
TARGET_RATIO = 0.7
CONNECTIONS = 50

# Every request rings a different first party (as visitors of a "call me"
# button would) and the same second party (the company's line), so the
# engine's per-number caches see what they would in production.
_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"a": "+1212555%%04d", "b": "+15551230002"}', counter %% 10000)
  return wrk.format(nil, nil, nil, body)
end
"""


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, key: str, duration: float, workdir: str) -> dict[str, Any]:
    script = os.path.join(workdir, "post.lua")
    with open(script, "w", encoding="utf-8") as fh:
        fh.write(_LUA % key)
    out = subprocess.run(["wrk", "-t1", "-c%d" % CONNECTIONS, "-d%ds" % duration, "--latency", "-s", script, url],
                         capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", out).group(1))  # type: ignore[union-attr]
    secs = re.search(r"requests in ([\d.]+)(ms|s|m)", out)
    elapsed = _ms(secs.group(1) + secs.group(2)) / 1000  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    accepted = total - (int(non2xx.group(1)) if non2xx else 0)
    return {"rps": total / elapsed, "accepted_rps": accepted / elapsed,
            "p50_ms": _ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "p99_ms": _ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
            "errors": errors.group(1) if errors else "", "generator": "wrk"}


def loadgen(url: str, key: str, duration: float) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", url, "--key", key, "--duration", str(duration),
                          "--connections", str(CONNECTIONS)], capture_output=True, text=True,
                         timeout=duration + 60, check=True, cwd=os.path.dirname(os.path.dirname(__file__))).stdout
    doc = json.loads(out)
    return {"rps": doc["rps"], "accepted_rps": doc["accepted"] / doc["elapsed"], "p50_ms": doc["p50_ms"],
            "p99_ms": doc["p99_ms"], "errors": doc["errors"], "generator": "bench.loadgen"}


def run(quick: bool) -> list[Result]:
    duration = 4 if quick else 15
    stack = BenchStack(start_api=True, workers=0)
    stack.start()
    try:
        bare_port = free_port()
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        bare = stack.spawn("api_bare", [gunicorn, "-k", "gevent", "-w", "1", "--worker-connections", "1000",
                                   "-b", "127.0.0.1:%d" % bare_port, "--log-level", "warning", "bench.bare:app"])
        wait_for_port(bare_port, 20, bare.proc)
        bare_url = "http://127.0.0.1:%d/v1/calls" % bare_port
        api_url = stack.api_url + "/v1/calls"
        generators = {"bench.loadgen": lambda u, k: loadgen(u, k, duration)}
        if shutil.which("wrk"):
            generators["wrk"] = lambda u, k: wrk(u, k, duration, stack.dir)
        probe = {name: gen(bare_url, "") for name, gen in generators.items()}
        for name, r in probe.items():
            print("  bare endpoint with %-14s %7.0f req/s  p50 %.2f ms  p99 %.2f ms" % (name, r["rps"], r["p50_ms"],
                                                                                     r["p99_ms"]), file=sys.stderr)
        best = max(probe, key=lambda n: probe[n]["rps"])
        bare_r = probe[best]
        api_r = generators[best](api_url, stack.api_key)
        queued = stack.client().xlen("{eslengine}:jobs")
        print("  POST /v1/calls with %-13s %7.0f accepted/s  p50 %.2f ms  p99 %.2f ms  (%d queued)" % (
            best, api_r["accepted_rps"], api_r["p50_ms"], api_r["p99_ms"], queued), file=sys.stderr)
    finally:
        stack.stop()
        stack.cleanup()
    ratio = api_r["accepted_rps"] / bare_r["rps"]
    note = "generator %s (%s), %d connections, %ds; gunicorn, redis and the generator share 2 cores" % (
        best, ", ".join("%s %.0f/s on bare" % (n, r["rps"]) for n, r in probe.items()), CONNECTIONS, duration)
    return [
        Result("API accepted calls/s (1 gunicorn gevent worker)", round(api_r["accepted_rps"]), "calls/s",
               ">= %d" % TARGET_RATE, api_r["accepted_rps"] >= TARGET_RATE, note),
        Result("API POST /v1/calls p50", round(api_r["p50_ms"], 2), "ms", "(reported)", None),
        Result("API POST /v1/calls p99", round(api_r["p99_ms"], 2), "ms", "(reported)", None),
        Result("bare Flask 202 endpoint req/s", round(bare_r["rps"]), "req/s", "(reference)", None,
               "p50 %.2f ms, p99 %.2f ms" % (bare_r["p50_ms"], bare_r["p99_ms"])),
        Result("API / bare endpoint", round(ratio, 3), "ratio", ">= %.1f" % TARGET_RATIO, ratio >= TARGET_RATIO),
    ]

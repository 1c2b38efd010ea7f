"""Campaigns: throughput against the node's limits, next to single jobs;
CSV upload rate; Redis memory per queued contact.

One node whose limit (``--sps``, and the same ``sps`` in the worker's node
URL) is what paces: 100 and then 400 sessions a second; one worker, the API. Every call's first party is busy
(``...486``), so each ends at once and only the pacing shows.

* single jobs: N jobs pushed onto the stream at once; the rate is taken
  from the times the switch finished the originates (the first tenth
  skipped, as in ``bench.throughput``).
* campaign: N contacts, ``cps`` above the node's limit, uploaded and
  started over HTTP; the same rate, from the same switch. Target: at least
  0.95 of the single jobs' rate at 100 sessions a second. The 400 run is a
  reference: on a 2-core machine the worker (and its dispatcher) share the
  CPUs with the switch, Redis and the API, and there the single jobs
  themselves fall short of the node's limit.
* upload: a campaign's CSV of R rows streamed to ``POST
  /v1/campaigns/<id>/contacts`` (rows a second, wall clock), and Redis's
  ``used_memory`` grown by the R queued contacts, per contact. The API
  process's resident size is sampled while it reads the upload: the rows
  are read and stored a batch at a time, so it grows only by what the
  number parser's bounded caches keep (``destinations``: 65,536 numbers at
  most), not with the file.
"""

from __future__ import annotations

import http.client
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import gevent

from eslengine.campaign import model

from .harness import BenchStack, Result, fill_stream, job, rss_bytes, wait_until

TARGET_RATIO = 0.95
# The node limits the campaigns are measured against.
NODE_SPS = (100, 400)


def _rate(times: list[float], k: int) -> float:
    times = sorted(times)[:k]
    first = len(times) // 10
    span = times[-1] - times[first]
    return (len(times) - 1 - first) / span if span > 0 else float("nan")


def _finished(stack: BenchStack, before: int, n: int, timeout: float, what: str) -> list[float]:
    """When the switch finished each of the ``n`` originates after the first ``before``."""
    wait_until(lambda: stack.switch_stats(counts=True)["results"] - before >= n, timeout, what, interval=0.2)
    return list(stack.switch_stats()["results"][before:before + n])


def _post(stack: BenchStack, path: str, body: Any, content_type: str = "application/json",
          length: int | None = None) -> dict[str, Any]:
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=600)
    headers = {"Authorization": "Bearer " + stack.api_key, "Content-Type": content_type}
    if length is not None:
        headers["Content-Length"] = str(length)
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    document: dict[str, Any] = json.loads(response.read() or b"{}")
    connection.close()
    if response.status >= 300:
        raise RuntimeError("POST %s: %d %s" % (path, response.status, document))
    return document


class Rows:
    """A CSV of ``count`` contacts, made as it is read."""

    def __init__(self, count: int, busy: bool = True) -> None:
        lines = ["number,id,first\n"] + ["+1555%03d%04d,k%d,Ann\n" % (i // 10000 % 1000, i % 10000, i)
                                           if not busy else "+1555%03d%01d486,k%d,Ann\n" % (i // 10, i % 10, i)
                                           for i in range(count)]
        self.size = sum(len(line) for line in lines)
        self._lines: Iterator[str] = iter(lines)
        self._left = b""

    def read(self, size: int = 65536) -> bytes:
        out = [self._left]
        have = len(self._left)
        for line in self._lines:
            data = line.encode()
            out.append(data)
            have += len(data)
            if have >= size:
                break
        block = b"".join(out)
        self._left = block[size:]
        return block[:size]


def _tree_rss(pid: int) -> int:
    """The resident size of ``pid`` and its children (gunicorn's workers)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid), encoding="ascii") as fh:
            children = [int(c) for c in fh.read().split()]
    except OSError:
        children = []
    return rss_bytes(pid) + sum(rss_bytes(c) for c in children)


def _campaign(stack: BenchStack, contacts: int, cps: float) -> str:
    made = _post(stack, "/v1/campaigns", {"name": "bench", "call": {"b": "+15551230002"},
                                          "pacing": {"cps": cps, "max_concurrent": 5000}})
    rows = Rows(contacts)
    _post(stack, "/v1/campaigns/%s/contacts" % made["id"], rows, "text/csv", rows.size)
    return str(made["id"])


def _stack(sps: int) -> BenchStack:
    stack = BenchStack(switch_args=["--sps", str(sps), "--max-sessions", "10000"],
                       node_query="sps=%d&max_sessions=10000" % sps, workers=1)
    stack.start()
    return stack


def _throughput(stack: BenchStack, sps: int, n: int) -> Result:
    """N single jobs, then a campaign of N contacts, against a node limited to ``sps``."""
    stack.wait_worker_connected()
    client = stack.client()
    before = stack.switch_stats(counts=True)["results"]
    fill_stream(client, (job() for _ in range(n)))
    single = _rate(_finished(stack, before, n, 300, "single jobs not done"), n)
    # The same through a campaign whose cps is above the node's limit.
    campaign_id = _campaign(stack, n, min(sps * 2, model.MAX_CPS))
    before = stack.switch_stats(counts=True)["results"]
    _post(stack, "/v1/campaigns/%s/start" % campaign_id, {})
    campaign = _rate(_finished(stack, before, n, 300, "campaign calls not done"), n)
    print("  node sps %4d: single jobs %6.1f originates/s, campaign %6.1f" % (sps, single, campaign),
          file=sys.stderr)
    target = sps == NODE_SPS[0]
    return Result("campaign originates/s / single jobs (node sps %d)" % sps, round(campaign / single, 3), "ratio",
                  ">= %.2f" % TARGET_RATIO if target else "(reference)",
                  campaign / single >= TARGET_RATIO if target else None,
                  "%d calls each: campaign %.1f/s, single jobs %.1f/s" % (n, campaign, single))


def _upload(stack: BenchStack, upload_rows: int) -> list[Result]:
    """Upload rate and memory per contact (a campaign never started)."""
    client = stack.client()
    memory_before = int(client.info("memory")["used_memory"])
    api_pid = stack.processes["api"].proc.pid
    made = _post(stack, "/v1/campaigns", {"name": "upload", "call": {"b": "+15551230002"}})
    rows = Rows(upload_rows, busy=False)
    peak = [_tree_rss(api_pid)]

    def sample() -> None:
        while True:
            peak.append(_tree_rss(api_pid))
            gevent.sleep(0.1)

    sampler = gevent.spawn(sample)
    t0 = time.monotonic()
    result = _post(stack, "/v1/campaigns/%s/contacts" % made["id"], rows, "text/csv", rows.size)
    elapsed = time.monotonic() - t0
    sampler.kill()
    assert result["added"] == upload_rows, result
    per_contact = (int(client.info("memory")["used_memory"]) - memory_before) / upload_rows
    rate = upload_rows / elapsed
    print("  upload %6.0f rows/s, %.0f bytes a contact, API RSS %.1f -> peak %.1f MB" % (
        rate, per_contact, peak[0] / 1e6, max(peak) / 1e6), file=sys.stderr)
    return [
        Result("campaign CSV upload rate", round(rate), "rows/s", "(reference)", None,
               "%d rows, %.1f MB streamed in %.1fs" % (upload_rows, rows.size / 1e6, elapsed)),
        Result("Redis memory per queued contact", round(per_contact), "bytes", "(reference)", None,
               "used_memory grown by %d contacts" % upload_rows),
        Result("API resident size growth during the upload", round((max(peak) - peak[0]) / 1e6, 1), "MB",
               "(reference)", None, "a %.1f MB CSV of %d rows, read a row at a time" % (rows.size / 1e6,
                                                                                       upload_rows)),
    ]


def run(quick: bool) -> list[Result]:
    results: list[Result] = []
    for i, sps in enumerate(NODE_SPS):
        stack = _stack(sps)
        ok = False
        try:
            # About 6 s (quick) or 30 s of calls at the node's limit.
            results.append(_throughput(stack, sps, sps * (6 if quick else 30)))
            if i == 0:
                results += _upload(stack, 20_000 if quick else 100_000)
            ok = True
        finally:
            stack.stop()
            if ok:
                stack.cleanup()
            else:
                print("  logs kept in %s" % stack.dir, file=sys.stderr)
    return results

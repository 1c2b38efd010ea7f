"""Memory: Redis bytes per queued job and per finished call record, and the
worker's resident memory with many calls up.

A live call's cost in the worker is ``(RSS with N calls up - RSS at rest) /
N``: the resident memory of the worker once all N calls are up, less that
of a worker with the same settings, connected and with nothing to do,
divided by N. Target: under TARGET_KIB, a worker that follows 50,000 calls
in 500 MiB.

Redis figures are ``INFO memory`` ``used_memory`` deltas on a private,
otherwise empty Redis, divided by the count: jobs queued through
``JobQueue.enqueue`` (record, history and stream entry, what the API
writes), then the same calls once finished (stream entry gone, record and
history kept for ``ESLENGINE_RECORD_TTL``).
"""

from __future__ import annotations

import sys
import time

import redis

from eslengine import calls
from eslengine.config import Config, Node
from eslengine.esl import EslConnection
from eslengine.store import JobQueue, Keys

from .harness import NO_LIMIT_SPS, BenchStack, Result, job, rss_bytes, wait_until

TARGET_KIB = 10.0


def _used(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def run(quick: bool) -> list[Result]:
    count = 2_000 if quick else 10_000
    stack = BenchStack(
        switch_args=["--sps", str(NO_LIMIT_SPS), "--max-sessions", str(4 * count), "--ring-time", "0.1"],
        node_query="sps=%d&max_sessions=%d" % (NO_LIMIT_SPS, 4 * count),
        start_api=False, workers=0, env={"ESLENGINE_CONCURRENCY": str(count + 100)},
    )
    stack.start()
    try:
        client = stack.client()
        # The worker at rest: connected, nothing queued.
        idle = stack.start_worker("idle-worker")
        stack.wait_worker_connected("idle-worker")
        time.sleep(2)
        rest = rss_bytes(idle.proc.pid)
        idle.stop()
        queue = JobQueue(client, Keys("eslengine"))
        config = Config(allow_unvalidated_numbers=True)  # the fictional +1555 numbers
        queue.ensure_group()
        before = _used(client)
        for _ in range(count):
            queue.enqueue(calls.parse_request(job(a="+15551230001"), config))
        per_job = (_used(client) - before) / count
        worker = stack.start_worker()
        try:
            wait_until(lambda: stack.switch_stats()["live_sessions"] >= 2 * count, 120,
                       "%d calls never all up" % count, worker, 0.5)
            time.sleep(2)
        except TimeoutError:
            print("  not all %d calls came up within 120 s" % count, file=sys.stderr)
        rss = rss_bytes(worker.proc.pid)
        warnings = sum(1 for line in worker.log().splitlines() if " WARNING " in line or " ERROR " in line)
        # Hang every call up, let the records go final.
        conn_stats = stack.switch_stats()
        up = conn_stats["live_sessions"] // 2
        esl = EslConnection(Node("127.0.0.1", stack.switch_port, stack.switch_password), events=(), timeout=60)
        esl.connect()
        esl.api("hupall NORMAL_CLEARING")
        esl.close()
        per_record = float("nan")
        statuses: set[str | None] = set()
        try:
            wait_until(lambda: client.xlen("{eslengine}:jobs") == 0 and stack.switch_stats()["live_sessions"] == 0,
                       120, "calls never finished", worker, 0.5)
            wait_until(lambda: int(client.xinfo_groups("{eslengine}:jobs")[0]["pending"]) == 0, 60, "pending", worker)
            time.sleep(3)
            finished = [k for k in client.scan_iter("{eslengine}:call:*", count=1000) if not k.endswith(":history")]
            statuses = {client.hget(k, "status") for k in finished[:50]}
            worker.stop(timeout=60)
            client.xtrim("{eslengine}:jobs", maxlen=0)
            per_record = (_used(client) - before) / count
        except TimeoutError as exc:
            print("  finished-record size not measured: %s" % exc, file=sys.stderr)
        per_call = (rss - rest) / max(up, 1) / 1024
        print("  %d calls: %.0f B/queued job, %.0f B/finished record, worker RSS %.1f MiB with %d channels up, "
              "%.1f MiB at rest: %.2f KiB per live call (statuses %s)" % (
                  count, per_job, per_record, rss / 2**20, conn_stats["live_sessions"], rest / 2**20, per_call,
                  statuses), file=sys.stderr)
    finally:
        stack.stop()
        stack.cleanup()
    return [
        Result("Redis bytes per queued job", round(per_job), "bytes", "(reported)", None,
               "record + history + stream entry, as the API writes them"),
        Result("Redis bytes per finished call record", round(per_record) if per_record == per_record else per_record,
               "bytes", "(reported)", None if per_record == per_record else False,
               "record + history after the call ended; kept for ESLENGINE_RECORD_TTL"),
        Result("worker RSS with %d calls up" % count, round(rss / 2**20, 1), "MiB", "%d calls up" % count,
               up >= count, "%d answered calls (%d channels) were up when measured; %d worker warnings/errors by then" % (
                   up, 2 * up, warnings)),
        Result("worker RSS at rest", round(rest / 2**20, 1), "MiB", "(reported)", None,
               "a worker with the same settings, connected, nothing queued"),
        Result("worker memory per live call", round(per_call, 2), "KiB", "< %g" % TARGET_KIB,
               up >= count and per_call < TARGET_KIB,
               "(RSS with the calls up - RSS at rest) / calls up; 50,000 calls would take %.0f MiB" % (
                   (rest + 50_000 * per_call * 1024) / 2**20)),
    ]

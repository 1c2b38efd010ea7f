"""Engine throughput on a Redis Cluster of 1, 2 and 3 primaries, with the
store in as many shards as primaries (``ESLENGINE_REDIS_SHARDS``) and as
many worker processes as primaries, process i serving shard i
(``ESLENGINE_WORKER_SHARDS``); once more at 3 with each process serving
every shard (9 workers, 9 event sockets on the switch).

The key prefix is picked so that each shard's hash slot is on a primary of
its own (``spread_prefix``): what an operator gets from one prefix by
choosing the shard count, or simply by running more shards than primaries.
Jobs are bare ``XADD``s into each shard's stream, every first leg busy
(``...486``) as in ``bench.throughput``: each job runs the worker's whole
path with no live calls piling up. The rate is taken from the times the
switch finished the jobs, skipping the first tenth (start-up).

Besides the rate, each primary's own CPU (``INFO cpu``: used_cpu_user +
used_cpu_sys, as a share of one core over the run) shows how the store's
work spreads over the primaries; on a machine with few cores the worker
processes' CPU caps the rate long before Redis does.

Not in ``--quick`` (about 3 minutes): ``python -m bench --only cluster``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from redis.crc import key_slot

from eslengine.store import Keys, connect

from .harness import NO_LIMIT_SESSIONS, NO_LIMIT_SPS, BenchStack, CpuMeter, Result, core_split, fill_stream, job, pin, wait_until
from .throughput import _rate

SLOTS = 16384
ROUNDS = 2
MASTERS = tuple(int(m) for m in os.environ.get("BENCH_CLUSTER_MASTERS", "1,2,3").split(","))


def primary_of_slot(slot: int, masters: int) -> int:
    """Which of ``masters`` primaries (the slots split evenly, the last one
    taking the rest, as ``tests.redisha.RedisCluster`` does) owns ``slot``."""
    return min(slot // (SLOTS // masters), masters - 1)


def spread_prefix(masters: int, shards: int, base: str = "bench") -> str:
    """The first ``<base><n>`` whose ``shards`` shard tags spread over
    ``masters`` primaries as evenly as they can."""
    want = -(-shards // masters)
    for n in range(100_000):
        prefix = "%s%d" % (base, n)
        counts = [0] * masters
        for shard in range(shards):
            counts[primary_of_slot(key_slot(Keys(prefix, shard).jobs.encode()), masters)] += 1
        if max(counts) <= want:
            return prefix
    raise RuntimeError("no prefix spreads %d shards over %d primaries" % (shards, masters))


def _cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _one(masters: int, k: int, *, every_shard: bool = False) -> dict[str, Any]:
    """One run: worker process i serves shard i (``ESLENGINE_WORKER_SHARDS``),
    or with ``every_shard`` each serves every shard (a worker per shard in
    each process)."""
    from tests.redisha import RedisCluster

    shards = masters
    prefix = spread_prefix(masters, shards)
    cluster = RedisCluster(primaries=masters)
    stack = BenchStack(
        switch_args=["--sps", str(NO_LIMIT_SPS), "--max-sessions", str(NO_LIMIT_SESSIONS)],
        node_query="sps=%d&max_sessions=%d" % (NO_LIMIT_SPS, NO_LIMIT_SESSIONS),
        start_api=False, workers=0, redis_url=cluster.url,
        env={"ESLENGINE_CONCURRENCY": "2000", "ESLENGINE_KEY_PREFIX": prefix,
             "ESLENGINE_REDIS_SHARDS": str(shards)},
    )
    ok = False
    try:
        stack.start()
        split = core_split()
        switch_cpus, engine_cpus = split if split is not None else (None, None)
        pin(stack.processes["fakeswitch"].proc.pid, switch_cpus)
        for primary in cluster.primaries:
            pin(primary.proc.pid, engine_cpus)
        names = ["worker" if i == 0 else "worker%d" % i for i in range(masters)]
        for i, name in enumerate(names):
            env = stack.engine_env if every_shard else {**stack.engine_env, "ESLENGINE_WORKER_SHARDS": str(i)}
            pin(stack.spawn(name, [sys.executable, "-m", "eslengine", "worker"], env).proc.pid, engine_cpus)
        served = shards if every_shard else 1
        for name in names:
            wait_until(lambda name=name: stack.processes[name].log().count("event socket connected") >= served, 30,
                       "%s never connected" % name, stack.processes[name])
        client = connect(cluster.url)
        primaries = [p.client() for p in cluster.primaries]
        mark = time.time()
        finished_before = stack.switch_stats(counts=True)["results"]
        cpu_before = [_cpu(p) for p in primaries]
        meter = CpuMeter({**{name: stack.processes[name].proc.pid for name in names},
                          "switch": stack.processes["fakeswitch"].proc.pid})
        meter.start()
        t0 = time.monotonic()
        per_shard = k // shards
        for shard in range(shards):
            fill_stream(client, (job() for _ in range(per_shard)), stream=Keys(prefix, shard).jobs)
        wait_until(lambda: stack.switch_stats(counts=True)["results"] - finished_before >= per_shard * shards, 300,
                   "%d master(s): the switch finished fewer than %d originates" % (masters, per_shard * shards),
                   interval=0.5)
        wall = time.monotonic() - t0
        redis_cpu = [(_cpu(p) - b) / wall for p, b in zip(primaries, cpu_before)]
        workers_cpu = meter.stop()
        switch_cpu = workers_cpu.pop("switch")
        stats = stack.switch_stats()
        rate = _rate([t for t in stats["results"] if t >= mark], per_shard * shards)
        client.close()
        ok = True
    finally:
        stack.stop()
        cluster.stop()
        if ok:
            stack.cleanup()
        else:
            print("  logs kept in %s" % stack.dir, file=sys.stderr)
    print("  %d master(s), %d shard(s), %d worker(s): %7.0f originates/s  redis CPU per master %s  workers CPU %s"
          "  switch CPU %.2f" % (masters, shards, masters, rate, ["%.2f" % c for c in redis_cpu], workers_cpu,
                                 switch_cpu), file=sys.stderr)
    return {"rate": rate, "redis_cpu": redis_cpu, "workers_cpu": sum(workers_cpu.values()), "switch_cpu": switch_cpu,
            "prefix": prefix}


def table(rows: dict[str, dict[str, Any]]) -> str:
    lines = ["| masters = shards = worker processes | originates/s | Redis CPU per master (1.0 = one core) "
             "| the same per 1,000 originates/s | workers' CPU | switch CPU |", "|---|---|---|---|---|---|"]
    for label, row in rows.items():
        lines.append("| %s | %.0f | %s | %s | %.2f | %.2f |" % (
            label, row["rate"], " / ".join("%.2f" % c for c in row["redis_cpu"]),
            " / ".join("%.3f" % (1000 * c / row["rate"]) for c in row["redis_cpu"]), row["workers_cpu"],
            row["switch_cpu"]))
    return "\n".join(lines)


def run(quick: bool) -> list[Result]:
    if quick:
        return []
    k = 15_000
    top = MASTERS[-1]
    runs: dict[str, list[dict[str, Any]]] = {}
    # Two rounds, the faster run of each kept: on a shared machine the rate
    # moves by tens of per cent from run to run.
    for _ in range(ROUNDS):
        for masters in MASTERS:
            runs.setdefault("%d" % masters, []).append(_one(masters, k))
        runs.setdefault("%d, each process every shard" % top, []).append(_one(top, k, every_shard=True))
    rows = {label: max(found, key=lambda r: r["rate"]) for label, found in runs.items()}
    print(table(rows), file=sys.stderr)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    results = []
    for label, row in rows.items():
        results.append(Result(
            "engine originates/s, %s cluster master(s)" % label, round(row["rate"]), "originates/s", "(reported)",
            None, "as many shards and worker processes, %d jobs; Redis CPU per master %s; workers' CPU %.2f, "
            "switch's %.2f; %d CPU(s)" % (k, " / ".join("%.2f" % c for c in row["redis_cpu"]), row["workers_cpu"],
                                           row["switch_cpu"], cores)))
    return results


if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()
    for result in run(False):
        print(result.as_dict())

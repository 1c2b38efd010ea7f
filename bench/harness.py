"""Processes and measurements shared by the benchmarks.

``BenchStack`` is ``eslengine.stack.LocalStack`` with the simulator replaced
by ``bench.switch`` (the same FakeSwitch plus a stats port). Everything binds
127.0.0.1; every process is stopped by PID.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import redis

from eslengine.stack import LocalStack, Process, free_port, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Far above anything one worker can reach: "limits lifted".
NO_LIMIT_SPS = 1_000_000
NO_LIMIT_SESSIONS = 10_000_000


@dataclass
class Result:
    name: str
    value: float
    unit: str
    target: str
    ok: bool | None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "unit": self.unit, "target": self.target,
                "ok": self.ok, "note": self.note}


@dataclass
class BenchStack(LocalStack):
    """``switch_args`` go to ``bench.switch``; ``node_query`` is appended to
    the worker's node URL (``sps=..&max_sessions=..``)."""

    node_query: str = ""

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Process:
        # Processes run in the stack's directory; ``bench`` must stay importable.
        path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
        return super().spawn(name, argv, {**(env or {}), "PYTHONPATH": path})

    def start_switch(self) -> None:
        self.switch_port = free_port()
        self.stats_port = free_port()
        proc = self.spawn("fakeswitch", [sys.executable, "-m", "bench.switch",
                                         "--bind", "127.0.0.1:%d" % self.switch_port,
                                         "--stats", "127.0.0.1:%d" % self.stats_port,
                                         "--password", self.switch_password, *self.switch_args])
        wait_for_port(self.switch_port, 15, proc.proc)
        wait_for_port(self.stats_port, 15, proc.proc)

    @property
    def engine_env(self) -> dict[str, str]:
        env = dict(super().engine_env)
        if self.node_query and "ESLENGINE_FREESWITCH" not in self.env:
            env["ESLENGINE_FREESWITCH"] += "?" + self.node_query
        return env

    def switch_stats(self, timeout: float = 30.0, *, counts: bool = False) -> dict[str, Any]:
        """The bench switch's snapshot (``bench.switch``), or with ``counts``
        only how many originates it received and finished: cheap enough to
        poll while a benchmark measures the switch's CPU."""
        chunks = []
        with socket.create_connection(("127.0.0.1", self.stats_port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"counts\n" if counts else b"all\n")
            while True:
                data = sock.recv(1 << 20)
                if not data:
                    break
                chunks.append(data)
        return json.loads(b"".join(chunks))  # type: ignore[no-any-return]

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True, socket_timeout=60)

    def wait_worker_connected(self, name: str = "worker", timeout: float = 20.0) -> None:
        """Until the worker's log says its event socket is up."""
        process = self.processes[name]
        wait_until(lambda: "event socket connected" in process.log(), timeout,
                   "%s never connected; log:\n%s" % (name, process.log()[-2000:]), process)


def core_split() -> tuple[set[int], set[int]] | None:
    """The CPUs this process may use, split in two: the last one for the
    switch, the rest for everything else; None with fewer than two.

    A simulated switch on the bench machine takes its CPU from the same
    cores as the engine it is measured against, which no FreeSWITCH node
    does: it runs on a machine of its own. A consumer that uses more CPU
    then slows the switch too, and the comparison measures both at once.
    Pinning the switch to a core of its own keeps the switch's capacity
    the same for every consumer."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return None
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


def pin(pid: int, cpus: set[int] | None) -> None:
    """Restrict a process to ``cpus`` (None: leave it as it is)."""
    if cpus is not None:
        os.sched_setaffinity(pid, cpus)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               process: Process | None = None, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and process.proc.poll() is not None:
            raise RuntimeError("%s exited (%s): %s" % (process.name, process.proc.returncode, what))
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(interval)


def job(a: str = "+15551230486", b: str = "+15551230002", job_id: str | None = None) -> dict[str, str]:
    return {"id": job_id or str(uuid.uuid4()), "a": a, "b": b}


def fill_stream(client: redis.Redis, jobs: Iterable[dict[str, str]], stream: str = "{eslengine}:jobs",
                batch: int = 2000) -> int:
    """Bare ``XADD``s (the documented non-HTTP way), pipelined; returns the count."""
    count = 0
    pipe = client.pipeline(transaction=False)
    for doc in jobs:
        pipe.xadd(stream, {"job": json.dumps(doc, separators=(",", ":"))})
        count += 1
        if count % batch == 0:
            pipe.execute()
    pipe.execute()
    return count


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0..100; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def rss_bytes(pid: int) -> int:
    with open("/proc/%d/status" % pid, encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far."""
    with open("/proc/%d/stat" % pid, encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU share of some processes between ``start()`` and ``stop()``. A
    process that exits before ``stop()`` is measured up to its last sample
    (taken every 0.2 s)."""

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _last: dict[str, tuple[float, float]] = field(default_factory=dict)
    _t0: float = 0.0
    _sampler: Any = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._start = {n: cpu_seconds(p) for n, p in self.pids.items()}
        self._last = {n: (self._t0, c) for n, c in self._start.items()}
        self._sampler = gevent.spawn(self._sample_forever)

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                self._last[name] = (time.monotonic(), cpu_seconds(pid))
            except OSError:
                pass  # gone: keep its last sample

    def _sample_forever(self) -> None:
        while True:
            gevent.sleep(0.2)
            self._sample()

    def stop(self) -> dict[str, float]:
        if self._sampler is not None:
            self._sampler.kill()
        self._sample()
        return {n: round((c - self._start[n]) / max(t - self._t0, 1e-9), 2) for n, (t, c) in self._last.items()}

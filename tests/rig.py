"""The worker's test rig: a simulator on a free loopback port, the suite's
Redis, and workers started in this process (shared by the worker's tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gevent
import redis

from eslengine.calls import parse_request
from eslengine.config import Config, Node
from eslengine.fakeswitch import FakeSwitch
from eslengine.status import FINAL
from eslengine.store import JobQueue, Keys
from eslengine.worker import Timings, Worker
from tests.conftest import RedisServer


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.1fs" % timeout)
        gevent.sleep(0.02)


class Rig:
    def __init__(self, redis_server: RedisServer, prefix: str, **switch: Any) -> None:
        switch.setdefault("ring_time", 0.05)
        self.switch = FakeSwitch(("127.0.0.1", 0), "s3cret", **switch)
        self.switch.start()
        host, port = self.switch.address
        self.config = Config(
            redis_url=redis_server.url,
            key_prefix=prefix,
            nodes=(Node(host, port, "s3cret", sps=switch.get("sps", 30), max_sessions=switch.get("max_sessions", 1000)),),
            esl_timeout=2.0,
            claim_idle_ms=60_000,
            # The suite dials the fictional 555-01xx range, which
            # libphonenumber does not validate.
            allow_unvalidated_numbers=True,
        )
        self.client = redis.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=5)
        self.queue = JobQueue(self.client, Keys(prefix), record_ttl=600)
        self.workers: list[Worker] = []

    def start_worker(self, *, timings: Timings | None = None, **overrides: Any) -> Worker:
        config = Config(**{**self.config.__dict__, **overrides})
        worker = Worker(config, JobQueue(self.client, Keys(config.key_prefix), record_ttl=600), timings=timings)
        worker.start()
        self.workers.append(worker)
        return worker

    def crash(self, worker: Worker) -> None:
        """Stop ``worker`` dead: it acknowledges, records and renews nothing
        more, and its event sockets close."""
        worker.halt()
        self.workers.remove(worker)

    def submit(self, **body: Any) -> str:
        return self.queue.enqueue(parse_request(body, self.config))

    def final(self, job_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(lambda: (d := self.queue.get(job_id)) and d["status"] in FINAL and d, timeout)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop(grace=1)
        self.switch.stop()
        self.client.close()


def statuses(doc: dict[str, Any]) -> list[str]:
    return [h["status"] for h in doc["history"]]

"""Shared fixtures: a private redis-server for the whole session.

The server is started by this suite on a free loopback port, with no
persistence, and stopped by PID at the end; the user's own Redis is never
touched. Each test gets its own key prefix, so tests cannot see each other's
keys.
"""

from __future__ import annotations

# The worker, the ESL client and the simulator run as greenlets inside the
# test process; redis-py and subprocess must cooperate with them, as they do
# in the real processes (cli.py patches at start-up the same way).
from gevent import monkey

monkey.patch_all()

import contextlib  # noqa: E402
import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis

from eslengine.calls import CallRequest, parse_request
from eslengine.config import Config
from eslengine.redisbatch import CommandBatcher
from eslengine.stack import free_port  # one helper for the suite and the stack
from eslengine.store import JobQueue, Keys

if TYPE_CHECKING:
    from tests.rig import Rig

__all__ = ["STORE_CONFIG", "call_request", "free_port", "maybe_batched"]


class RedisServer:
    def __init__(self, *options: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run `make test`, which installs it")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="eslengine-redis-")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning", *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = "redis://127.0.0.1:%d/0" % self.port
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=self.port, socket_timeout=1).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start on port %d" % self.port) from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, 9)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # What `make test-redis-ha` selects (-m engine_redis) to run on a cluster.
    for item in items:
        if "engine_redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine_redis)


@pytest.fixture(scope="session")
def engine_redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The ``ESLENGINE_REDIS_URL`` of the end-to-end stacks: the suite's
    redis-server, or with ``ESLENGINE_TEST_REDIS=cluster`` a Redis Cluster of
    three primaries (``tests/redisha.py``) started for the session."""
    kind = os.environ.get("ESLENGINE_TEST_REDIS", "single")
    if kind == "single":
        yield redis_server.url
        return
    if kind != "cluster":
        raise pytest.UsageError("ESLENGINE_TEST_REDIS must be single or cluster, not %r" % kind)
    from tests.redisha import RedisCluster

    cluster = RedisCluster()
    try:
        yield cluster.url
    finally:
        cluster.stop()


_prefixes = itertools.count()


@pytest.fixture
def key_prefix() -> str:
    return "t%d-%d" % (os.getpid(), next(_prefixes))


@pytest.fixture
def rig(redis_server: RedisServer, key_prefix: str) -> Iterator[Rig]:
    """A simulator (calls talk for a second) and the suite's Redis, for
    workers started in the test (``Rig.start_worker``)."""
    from tests.rig import Rig

    r = Rig(redis_server, key_prefix, talk_time=1.0)
    yield r
    r.close()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=5)
    yield client
    client.close()


# The suite dials the fictional 555-01xx range (+1 555 123 0001), which libphonenumber
# does not validate: configs that dial it allow unvalidated numbers.
STORE_CONFIG = Config(allow_unvalidated_numbers=True)


def call_request(**extra: object) -> CallRequest:
    """A valid call request (first party +15551230001, second user/1000) with ``extra`` fields."""
    return parse_request({"a": "+15551230001", "b": "user/1000", **extra}, STORE_CONFIG)


@pytest.fixture
def queue(redis_client: redis.Redis, key_prefix: str) -> JobQueue:
    """A JobQueue on the suite's Redis under the test's own prefix."""
    return JobQueue(redis_client, Keys(key_prefix), record_ttl=60)


@contextlib.contextmanager
def maybe_batched(queue: JobQueue, batched: bool) -> Iterator[None]:
    """``queue`` sending through a CommandBatcher (as the worker's does) when ``batched``."""
    batcher = CommandBatcher(queue.redis) if batched else None
    if batcher is not None:
        batcher.start()
        queue.use_batcher(batcher)
    try:
        yield
    finally:
        if batcher is not None:
            batcher.stop()

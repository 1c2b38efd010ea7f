"""Group commit: many greenlets' commands in shared pipelines, each caller
getting its own reply."""

from __future__ import annotations

import gevent
import pytest
import redis

from eslengine.errors import QueueUnavailable
from eslengine.redisbatch import CommandBatcher
from eslengine.store import connect
from tests.conftest import RedisServer, free_port


@pytest.fixture
def batcher(redis_server: RedisServer) -> CommandBatcher:
    b = CommandBatcher(connect(redis_server.url), max_batch=64)
    b.start()
    yield b  # type: ignore[misc]
    b.stop()


def test_concurrent_callers_share_pipelines_and_get_their_own_replies(
    batcher: CommandBatcher, redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real = batcher._pipeline
    monkeypatch.setattr(batcher, "_pipeline", lambda commands: sizes.append(len(commands)) or real(commands))
    key = key_prefix + ":n"
    jobs = [gevent.spawn(batcher.call, "INCR", key) for _ in range(500)]
    gevent.joinall(jobs, timeout=10)
    replies = sorted(int(j.value) for j in jobs)
    assert replies == list(range(1, 501))  # every caller got its own INCR's reply
    assert int(redis_client.get(key)) == 500
    assert sum(sizes) == 500 and max(sizes) > 1 and max(sizes) <= 64  # batched, bounded


def test_errors_reach_only_their_caller(batcher: CommandBatcher, key_prefix: str) -> None:
    batcher.call("SET", key_prefix + ":s", "x")
    bad = gevent.spawn(batcher.call, "INCR", key_prefix + ":s")  # not an integer
    good = gevent.spawn(batcher.call, "GET", key_prefix + ":s")
    gevent.joinall([bad, good], timeout=5)
    assert isinstance(bad.exception, redis.ResponseError)
    assert good.value == "x"


def test_scripts_are_reloaded_after_a_script_flush(batcher: CommandBatcher, redis_client: redis.Redis,
                                                   key_prefix: str) -> None:
    source = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    sha = redis_client.script_load(source)
    batcher.add_script(sha, source)
    assert batcher.call("EVALSHA", sha, 1, key_prefix + ":e", 2) == 2
    redis_client.script_flush()
    assert batcher.call("EVALSHA", sha, 1, key_prefix + ":e", 3) == 5


def test_unreachable_redis_is_queue_unavailable() -> None:
    b = CommandBatcher(connect("redis://127.0.0.1:%d/0" % free_port(), timeout=0.5), timeout=2)
    b.start()
    try:
        with pytest.raises(QueueUnavailable):
            b.call("PING")
        with pytest.raises(RuntimeError):
            CommandBatcher(connect("redis://127.0.0.1:1/0")).call("PING")  # not started
    finally:
        b.stop()


def test_replies_are_parsed_as_the_client_would(batcher: CommandBatcher, key_prefix: str) -> None:
    batcher.call("HSET", key_prefix + ":h", "a", "1", "b", "2")
    assert batcher.call("HGETALL", key_prefix + ":h") == {"a": "1", "b": "2"}
    assert batcher.call("EXISTS", key_prefix + ":nothing") == 0


def test_a_killed_connection_is_made_again(batcher: CommandBatcher, redis_client: redis.Redis,
                                           key_prefix: str) -> None:
    assert batcher.call("INCR", key_prefix + ":k") == 1
    killed = redis_client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert killed >= 1
    assert batcher.call("INCR", key_prefix + ":k") == 2  # sent again on a new connection, once
    assert int(redis_client.get(key_prefix + ":k")) == 2


def test_a_command_queued_past_its_deadline_fails_unsent(redis_server: RedisServer, redis_client: redis.Redis,
                                                         key_prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    b = CommandBatcher(connect(redis_server.url), timeout=0.3)
    real = b._pipeline
    key = key_prefix + ":late"

    def slow(commands: list[tuple[object, ...]]) -> list[object]:
        gevent.sleep(0.6)  # the writer is busy with this batch while the next command waits
        return real(commands)

    monkeypatch.setattr(b, "_pipeline", slow)
    b.start()
    try:
        first = gevent.spawn(b.call, "INCR", key)
        gevent.sleep(0.05)  # the first batch is in flight
        second = gevent.spawn(b.call, "INCRBY", key, 10)
        gevent.joinall([first, second], timeout=5)
        assert first.value == 1
        assert isinstance(second.exception, QueueUnavailable)
        assert int(redis_client.get(key)) == 1  # the late command never reached Redis
    finally:
        b.stop()


def test_stopping_fails_every_waiting_caller(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    b = CommandBatcher(connect(redis_server.url), timeout=30)
    monkeypatch.setattr(b, "_pipeline", lambda commands: gevent.sleep(60))
    b.start()
    callers = [gevent.spawn(b.call, "PING") for _ in range(3)]
    gevent.sleep(0.1)  # one in the writer's hands, the others queued
    b.stop()
    gevent.joinall(callers, timeout=5)
    assert all(isinstance(c.exception, QueueUnavailable) for c in callers)

"""One executor for batched and direct commands (eslengine.store.executor)."""

from __future__ import annotations

import pytest
import redis

from eslengine.redisbatch import CommandBatcher
from eslengine.store import Keys
from eslengine.store.executor import Executor
from tests.conftest import call_request


@pytest.fixture(params=[False, True], ids=["direct", "batched"])
def run(request: pytest.FixtureRequest, redis_client: redis.Redis) -> object:
    executor = Executor(redis_client)
    if not request.param:
        yield executor
        return
    batcher = CommandBatcher(redis_client)
    batcher.start()
    executor.use_batcher(batcher)
    yield executor
    batcher.stop()


def test_commands_give_the_same_replies_batched_or_direct(run: Executor, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    assert run.command("SADD", keys.live("w1"), "a") == 1
    assert run.commands(("SADD", keys.live("w1"), "b"), ("SCARD", keys.live("w1"))) == [1, 2]
    assert run.redis.smembers(keys.live("w1")) == {"a", "b"}


def test_scripts_give_the_same_replies_batched_or_direct(run: Executor, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    request = call_request()
    keys_ = [keys.call(request.id), keys.history(request.id), keys.live(""), keys.webhook(request.id), keys.webhooks,
             keys.index()]
    # ttl, now, 4 initial items, the id, 1 field name; then the initial record and the name.
    args = ["3600", "now", "4", request.id, "1", "status", "queued", "id", request.id, "status"]
    assert run.script("claim", keys_, args) == ["status", "queued", "created", "1"]
    assert run.script("claim", keys_, args) == ["status", "queued"]
    assert run.script("beat", [keys.heartbeat("w1"), keys.workers], ["t", "60000", "w1"]) == 0


def test_only_the_hot_path_scripts_share_the_batchers_pipelines(redis_client: redis.Redis, key_prefix: str) -> None:
    sent: list[tuple[object, ...]] = []

    class Recorder:
        def add_script(self, sha: str, source: str) -> None:
            redis_client.script_load(source)

        def call(self, *command: object) -> object:
            sent.append(command)
            return redis_client.execute_command(*command)

    run = Executor(redis_client)
    run.use_batcher(Recorder())
    keys = Keys(key_prefix)
    run.script("beat", [keys.heartbeat("w1"), keys.workers], ["t", "60000", "w1"])
    assert sent == []
    run.script("transition", [keys.call("x"), keys.history("x"), keys.live(""), keys.jobs, keys.webhook("x"),
                              keys.webhooks], ["", "now", "60", "0", "x", "0", "", "workers"])
    assert [command[0] for command in sent] == ["EVALSHA"]

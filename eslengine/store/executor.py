"""One way to run the store's scripts and commands, batched or not.

A worker sends its hot-path writes through a ``redisbatch.CommandBatcher``:
the commands of many greenlets then share pipelines. The API and the tools
send theirs directly. ``Executor`` hides which: the store's parts call it
the same way either way.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
import redis.cluster

from ..errors import QueueUnavailable
from .lua import BATCHED, Scripts

log = logging.getLogger(__name__)


def _log_failure(waiter: Any) -> None:
    if not waiter.successful():
        log.warning("redis: a record update was not stored: %s", waiter.exception)


class Executor:
    """Runs a script or a command through the batcher set with
    ``use_batcher`` (the scripts of ``lua.BATCHED``, and every command sent
    with ``command`` or ``commands``), else directly on the client. Errors
    are redis-py's (or ``QueueUnavailable`` from the batcher): callers
    translate them with ``redis_errors``."""

    def __init__(self, client: Any, scripts: Scripts | None = None, *, wait_replicas: int = 0,
                 wait_ms: int = 1000) -> None:
        # Any: redis-py's annotations do not know decode_responses=True (every
        # reply here is str), so replies are typed where they are read.
        self.redis: Any = client
        self.scripts = scripts if scripts is not None else Scripts(client)
        self.batcher: Any = None
        # What script_replicated waits for: this many replicas, at most wait_ms.
        self.wait_replicas = wait_replicas
        self.wait_ms = wait_ms

    def use_batcher(self, batcher: Any) -> None:
        """Send the hot-path scripts and commands through ``batcher`` from now on."""
        for name in BATCHED:
            script = self.scripts[name]
            batcher.add_script(script.sha, script.script)
        self.batcher = batcher

    def script(self, name: str, keys: list[str], args: list[str]) -> Any:
        """Run script ``name`` and return its reply."""
        script = self.scripts[name]
        if self.batcher is not None and name in BATCHED:
            return self.batcher.call("EVALSHA", script.sha, len(keys), *keys, *args)
        return script(keys=keys, args=args)

    def script_replicated(self, name: str, keys: list[str], args: list[str]) -> Any:
        """``script``; with ``wait_replicas``, its reply is returned only once
        that many replicas hold what it wrote (``WAIT``, sent on the same
        connection right after it), so that a failover cannot lose it.
        Fewer within ``wait_ms`` raise ``QueueUnavailable``: the write may
        then be on the primary alone."""
        if not self.wait_replicas:
            return self.script(name, keys, args)
        script = self.scripts[name]
        wait = ("WAIT", self.wait_replicas, self.wait_ms)
        if self.batcher is not None and name in BATCHED:
            # The batcher's writer sends both on its one connection, in order.
            written = self.batcher.submit("EVALSHA", script.sha, len(keys), *keys, *args)
            acked = self.batcher.submit(*wait)
            reply, replicas = self.batcher.wait(written), self.batcher.wait(acked)
        else:
            client = self.redis
            if isinstance(client, redis.cluster.RedisCluster):  # the primary of the keys' slot
                client = client.get_node_from_key(keys[0]).redis_connection
            for attempt in (1, 2):
                pipe = client.pipeline(transaction=False)
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                pipe.execute_command(*wait)
                reply, replicas = pipe.execute(raise_on_error=False)
                if isinstance(reply, redis.exceptions.NoScriptError) and attempt == 1:
                    client.script_load(script.script)
                    continue
                break
            for result in (reply, replicas):
                if isinstance(result, Exception):
                    raise result
        if int(replicas) < self.wait_replicas:
            raise QueueUnavailable("%s: written, but on %s of %d replicas within %d ms" % (
                name, replicas, self.wait_replicas, self.wait_ms))
        return reply

    def script_later(self, name: str, keys: list[str], args: list[str]) -> None:
        """Run script ``name`` without waiting for its reply when batched
        (the batch keeps it in order with the commands queued after it; a
        failure is only logged); directly, wait for it as ``script`` does."""
        if self.batcher is None or name not in BATCHED:
            self.script(name, keys, args)
            return
        waiter = self.batcher.submit("EVALSHA", self.scripts[name].sha, len(keys), *keys, *args)
        waiter.rawlink(_log_failure)

    def command(self, *command: Any) -> Any:
        """Run one command and return its reply."""
        if self.batcher is not None:
            return self.batcher.call(*command)
        return self.redis.execute_command(*command)

    def commands(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run commands in order and return their replies: directly, in one
        MULTI/EXEC transaction; batched, one after another in the batcher's
        pipelines."""
        if self.batcher is not None:
            waiters = [self.batcher.submit(*command) for command in commands]
            return [self.batcher.wait(waiter) for waiter in waiters]
        pipe = self.redis.pipeline(transaction=True)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()

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

    def __init__(self, client: redis.Redis, scripts: Scripts | None = None) -> None:
        # Any: redis-py's annotations do not know decode_responses=True (every
        # reply here is str), so replies are typed where they are read.
        self.redis: Any = client
        self.scripts = scripts if scripts is not None else Scripts(client)
        self.batcher: Any = None

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

"""Group commit for Redis: the commands of many greenlets in one pipeline.

A worker follows thousands of calls, each writing a few small commands
(status transitions, acknowledgements). Sent one by one, every command costs
a round trip and redis-py's per-command overhead, and that, not FreeSWITCH,
limits how many originates a worker can place. ``CommandBatcher`` queues
commands from any greenlet and one writer greenlet sends whatever has
accumulated as one pipeline; each caller still waits for (and gets) its own
reply, in order, so the semantics of a blocking call are kept.

The writer owns one connection of its own, outside the client's pool: a
pooled pipeline pays for a poll() of the socket, the pool's lock and the
retry wrapper on every send, which at a few thousand pipelines a second is
a visible share of a worker's CPU.

With a Redis Cluster client the writer's connection goes to the primary
that owns ``route_key``'s hash slot (every key of one store prefix shares
it, ``store.keys``); a MOVED, ASK, CLUSTERDOWN or TRYAGAIN reply, or a
READONLY one from a primary Sentinel has demoted, drops that connection, and
the next batch finds the primary again (asking the cluster for its slot map,
or the Sentinels for the primary, as redis-py's own clients do). Commands
refused with MOVED were not run: they are sent once more, to the new primary.

Every caller's wait is bounded without a timer of its own: a command still
queued ``timeout`` seconds after it was submitted fails unsent, and a sent
pipeline is bounded by the client's socket timeout (``store.connect`` sets
one), after which its callers get ``QueueUnavailable``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import gevent.event
import gevent.queue
import redis
import redis.cluster
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)

from .errors import QueueUnavailable

try:
    from hiredis import pack_command as _pack_command
except ImportError:  # pragma: no cover - redis[hiredis] is a dependency
    _pack_command = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# Replies that say the batch went to a server that no longer holds its keys'
# primary (AskError covers MovedError).
_ELSEWHERE = (AskError, ClusterDownError, TryAgainError, redis.ReadOnlyError)


def _pack(conn: Any, commands: list[tuple[Any, ...]]) -> Any:
    """The commands in the Redis protocol. Our commands are one-word names
    with str/bytes/int arguments, which hiredis packs as they are; the
    client's own packer first re-checks every argument in Python."""
    if _pack_command is None:
        return conn.pack_commands(commands)
    return [b"".join([_pack_command(command) for command in commands])]


class CommandBatcher:
    """Send queued commands in pipelines of up to ``max_batch``."""

    def __init__(self, client: Any, *, max_batch: int = 512, timeout: float = 5.0, route_key: str = "") -> None:
        self.client = client
        self.route_key = route_key  # with a cluster client: whose slot's primary to write to
        self.max_batch = max_batch
        self.timeout = timeout
        self._queue: gevent.queue.Queue = gevent.queue.Queue()
        self._greenlet: gevent.Greenlet | None = None
        self._scripts: dict[str, str] = {}  # sha -> source, reloaded after NOSCRIPT
        self._conn: Any = None  # the writer's own connection, made on first use
        self._callbacks: Any = None  # the response callbacks of the client that made it

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(timeout=2)
            self._greenlet = None
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
        self._fail_queued(QueueUnavailable("redis batcher stopped"))

    def add_script(self, sha: str, source: str) -> None:
        self._scripts[sha] = source

    def submit(self, *command: Any) -> gevent.event.AsyncResult:
        """Queue ``command`` for the next pipeline; its reply (or the error
        that stopped it) will be in the returned AsyncResult."""
        if self._greenlet is None:
            raise RuntimeError("CommandBatcher not started")
        waiter = gevent.event.AsyncResult()
        self._queue.put((command, waiter, time.monotonic() + self.timeout))
        return waiter

    def call(self, *command: Any) -> Any:
        """Run ``command`` in the next pipeline and return its reply
        (QueueUnavailable when Redis fails or the reply is late)."""
        return self.wait(self.submit(*command))

    def wait(self, waiter: gevent.event.AsyncResult) -> Any:
        # No timer here: the writer settles every waiter (see the module doc).
        return waiter.get()

    def _run(self) -> None:
        batch: list[tuple[tuple[Any, ...], gevent.event.AsyncResult, float]] = []
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except gevent.queue.Empty:
                        break
                now = time.monotonic()
                if batch[0][2] < now:  # the queue is FIFO: the oldest is first
                    late = QueueUnavailable("no reply from Redis within %ss" % self.timeout)
                    for _, waiter, deadline in batch:
                        if deadline < now:
                            waiter.set_exception(late)
                    batch = [item for item in batch if item[2] >= now]
                try:
                    self._send(batch)
                except Exception as exc:  # top of the writer greenlet: fail this batch, keep going
                    log.exception("redis batch of %d failed", len(batch))
                    for _, waiter, _ in batch:
                        if not waiter.ready():
                            waiter.set_exception(QueueUnavailable("redis batch failed: %s" % exc))
                batch = []
        finally:
            # Killed (stop): nobody may be left waiting.
            for _, waiter, _ in batch:
                if not waiter.ready():
                    waiter.set_exception(QueueUnavailable("redis batcher stopped"))
            self._fail_queued(QueueUnavailable("redis batcher stopped"))

    def _fail_queued(self, error: Exception) -> None:
        while True:
            try:
                _, waiter, _ = self._queue.get_nowait()
            except gevent.queue.Empty:
                return
            waiter.set_exception(error)

    def _send(self, batch: list[tuple[tuple[Any, ...], gevent.event.AsyncResult, float]]) -> None:
        if not batch:
            return
        try:
            replies = self._pipeline([c for c, _, _ in batch])
            moved = [i for i, r in enumerate(replies) if isinstance(r, MovedError)]
            if moved:
                # Refused, not run: the slot has another primary now. Sent once
                # more, to the primary the refreshed slot map names.
                self._drop_connection(refresh=True)
                again = self._pipeline([batch[i][0] for i in moved])
                for i, reply in zip(moved, again):
                    replies[i] = reply
            retry = [i for i, r in enumerate(replies) if isinstance(r, redis.exceptions.NoScriptError)]
            if retry:
                for source in self._scripts.values():
                    self.client.script_load(source)
                again = self._pipeline([batch[i][0] for i in retry])
                for i, reply in zip(retry, again):
                    replies[i] = reply
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, SlotNotCoveredError) as exc:
            error = QueueUnavailable("redis: %s" % exc)
            for _, waiter, _ in batch:
                waiter.set_exception(error)
            return
        if any(isinstance(reply, _ELSEWHERE) for reply in replies):
            # The slot moved or the primary changed: find it again for the next batch.
            self._drop_connection(refresh=True)
        for (_, waiter, _), reply in zip(batch, replies):
            if isinstance(reply, Exception):
                waiter.set_exception(reply)
            else:
                waiter.set(reply)

    def _pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in one write and read their replies (an error
        reply is returned in its place). A broken connection is made again
        and the batch sent once more after a short pause, as the client's
        own retry policy would; a second failure is raised."""
        for attempt in (1, 2):
            if self._conn is None:
                self._connect()
            conn = self._conn
            try:
                # Connected here, not by the send: a Sentinel-managed
                # connection asks the Sentinels for the primary in connect().
                conn.connect()
                conn.send_packed_command(_pack(conn, commands))
                # What the client's parse_response does, minus its per-call options.
                callbacks = self._callbacks
                replies: list[Any] = []
                for command in commands:
                    try:
                        reply = conn.read_response()
                    except redis.ResponseError as exc:
                        replies.append(exc)
                        continue
                    callback = callbacks.get(command[0])
                    replies.append(reply if callback is None else callback(reply))
                return replies
            except (redis.ConnectionError, redis.TimeoutError):
                self._drop_connection(refresh=True)
                if attempt == 2:
                    raise
                gevent.sleep(0.05)
            except BaseException:
                # Killed or failed half-way: replies may be left unread on it.
                self._drop_connection()
                raise
        raise AssertionError("unreachable")

    def _connect(self) -> None:
        client = self.client
        if isinstance(client, redis.cluster.RedisCluster):
            # The slot's primary, from the client's slot map (SlotNotCoveredError
            # while a failover leaves it uncovered: the batch fails, as a lost
            # connection would fail it).
            client = client.get_node_from_key(self.route_key).redis_connection
        # Made like the pool's own, but not by the pool: a pool counts what it
        # made until it is handed back, and this one is dropped instead (each
        # reconnect would use up one of a cluster node's pool for good).
        pool = client.connection_pool
        self._conn = pool.connection_class(**pool.connection_kwargs)
        self._callbacks = client.response_callbacks

    def _drop_connection(self, *, refresh: bool = False) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None
        if refresh and isinstance(self.client, redis.cluster.RedisCluster):
            try:
                self.client.nodes_manager.initialize()
            except (redis.RedisError, RedisClusterException):
                log.warning("redis: the cluster's slot map could not be read again", exc_info=True)

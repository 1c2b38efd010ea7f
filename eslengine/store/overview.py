"""What ``eslengine status`` reads: each worker's own account of itself
(``Keys.worker_info``, published with its heartbeat), the workers' places
on the nodes, the job stream, the retries and the dead letters, as one
``opsview.Snapshot``.

A worker's info hash lives ``ttl`` seconds (the value it holds in its
``ttl`` field) after its last renewal; the time left on it says how long ago
that was, on Redis's clock, whatever the clocks of the worker and the reader.
``Keys.workers_seen`` names the workers that published one in the last
``SEEN_KEPT`` seconds: a dead worker leaves the workers set once another
has adopted it, and is still shown, gone, as long as its info lives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from ..opsview import QueueSeen, Snapshot, WorkerSeen, info_nodes
from .connection import redis_errors
from .keys import GROUP, Keys
from .registry import Registry

# How long a worker stays in ``Keys.workers_seen`` after it last published.
SEEN_KEPT = 3600


def _entry_ms(entry_id: str | None) -> int | None:
    """The creation time (ms since the epoch) a stream entry id holds."""
    if not entry_id:
        return None
    millis, _, _ = str(entry_id).partition("-")
    return int(millis) if millis.isdigit() else None


def _ok(value: Any) -> Any:
    """A pipeline reply, or None where the command failed (a key of the
    wrong type, a stream or group not made yet)."""
    return None if isinstance(value, redis.ResponseError) else value


class Overview:
    """The operator's view of one prefix, and the worker's side of it."""

    def __init__(self, keys: Keys, registry: Registry) -> None:
        self.keys = keys
        self.registry = registry
        self.redis: Any = registry.redis

    def publish(self, worker: str, fields: Mapping[str, str], ttl: float, now: float) -> None:
        """Store what ``worker`` says of itself, to live ``ttl`` seconds;
        ``now``: its time (epoch seconds)."""
        key = self.keys.worker_info(worker)
        with redis_errors("publish worker info"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(key, mapping={**fields, "ttl": "%g" % ttl})
            pipe.pexpire(key, max(1, int(ttl * 1000)))
            pipe.zadd(self.keys.workers_seen, {worker: now})
            pipe.zremrangebyscore(self.keys.workers_seen, "-inf", now - SEEN_KEPT)
            pipe.execute()

    def read(self, nodes: Iterable[str] = ()) -> Snapshot:
        """Everything ``eslengine status`` shows, in three round trips:
        ``nodes`` are read with those the workers name in their info."""
        keys = self.keys
        with redis_errors("read status"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.time()
            pipe.smembers(keys.workers)
            pipe.zrange(keys.workers_seen, 0, -1)
            pipe.xlen(keys.jobs)
            pipe.xinfo_groups(keys.jobs)
            pipe.xpending(keys.jobs, GROUP)
            pipe.zcard(keys.retry)
            pipe.zrange(keys.retry, 0, 0, withscores=True)
            pipe.xlen(keys.dead)
            pipe.xrevrange(keys.dead, "+", "-", count=1)
            (secs, micros), members, seen, length, groups, pending, retries, next_retry, dead, newest_dead = (
                _ok(v) for v in pipe.execute(raise_on_error=False))
            now = secs + micros / 1e6
            members = set(members or ())
            names = sorted(members | set(seen or ()))
            group = next((g for g in groups or () if g.get("name") == GROUP), None)
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.exists(keys.heartbeat(name))
                pipe.hgetall(keys.worker_info(name))
                pipe.pttl(keys.worker_info(name))
                pipe.scard(keys.live(name))
            if group is not None:
                pipe.xrange(keys.jobs, "(" + group["last-delivered-id"], "+", count=1)
            else:
                pipe.xrange(keys.jobs, "-", "+", count=1)
            replies = [_ok(v) for v in pipe.execute(raise_on_error=False)]
        held = {c["name"]: int(c["pending"]) for c in (pending or {}).get("consumers") or ()}
        workers = []
        for i, name in enumerate(names):
            alive, info, pttl, live = replies[4 * i:4 * i + 4]
            info = info or {}
            seen_ago = None
            if info and pttl is not None and pttl >= 0:
                try:
                    seen_ago = max(0.0, float(info.get("ttl", "0")) - pttl / 1000)
                except ValueError:
                    seen_ago = None
            if alive or info or name in members:  # else gone, adopted, and its info expired
                workers.append(WorkerSeen(name, bool(alive), info, seen_ago, int(live or 0), held.get(name)))
        first_waiting = replies[-1] or []
        pending_count = int((pending or {}).get("pending") or 0)
        queue = QueueSeen(
            waiting=max(0, int(length or 0) - pending_count),
            oldest_waiting_ms=_entry_ms(first_waiting[0][0]) if first_waiting else None,
            claimed=pending_count,
            oldest_claimed_ms=_entry_ms((pending or {}).get("min")) if pending_count else None,
            retries=int(retries or 0),
            next_retry=float(next_retry[0][1]) if next_retry else None,
            dead_letters=int(dead or 0),
            newest_dead_ms=_entry_ms(newest_dead[0][0]) if newest_dead else None,
        )
        named = sorted({label for w in workers for label in info_nodes(w.info)})
        labels = list(dict.fromkeys([*nodes, *named]))
        pacers = {label: self.registry.node_pacers(label) for label in labels}
        return Snapshot(now=now, workers=tuple(workers), pacers=pacers, queue=queue)


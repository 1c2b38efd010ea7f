"""What ``eslengine status`` reads: each worker's own account of itself
(``Keys.worker_info``, published with its heartbeat), the workers' places
on the nodes, both lanes' job streams, the retries and the dead letters,
the running campaigns' contact counters and the do-not-call refusal
counts, as one ``opsview.Snapshot``.

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

from ..opsview import (
    CAMPAIGN_FIELDS,
    LaneSeen,
    QueueSeen,
    Snapshot,
    WorkerSeen,
    info_nodes,
    lanes_together,
    refusal_counts,
    running_contacts,
)
from .connection import redis_errors
from .keys import GROUP, LANES, Keys
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
            pipe.zcard(keys.retry)
            pipe.zrange(keys.retry, 0, 0, withscores=True)
            pipe.xlen(keys.dead)
            pipe.xrevrange(keys.dead, "+", "-", count=1)
            pipe.smembers(keys.active_campaigns)
            pipe.hgetall(keys.dnc_refused)
            for lane in LANES:
                pipe.xlen(keys.stream(lane))
                pipe.xinfo_groups(keys.stream(lane))
                pipe.xpending(keys.stream(lane), GROUP)
            replies = [_ok(v) for v in pipe.execute(raise_on_error=False)]
            (secs, micros), members, seen, retries, next_retry, dead, newest_dead, active, refused = replies[:9]
            streams = [replies[9 + 3 * i:12 + 3 * i] for i in range(len(LANES))]
            now = secs + micros / 1e6
            members = set(members or ())
            names = sorted(members | set(seen or ()))
            campaign_ids = sorted(active or ())
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                pipe.exists(keys.heartbeat(name))
                pipe.hgetall(keys.worker_info(name))
                pipe.pttl(keys.worker_info(name))
                pipe.scard(keys.live(name))
            for lane, (_, groups, _) in zip(LANES, streams):
                group = next((g for g in groups or () if g.get("name") == GROUP), None)
                after = "(" + group["last-delivered-id"] if group is not None else "-"
                pipe.xrange(keys.stream(lane), after, "+", count=1)
            for campaign_id in campaign_ids:
                pipe.hmget(keys.campaign(campaign_id), CAMPAIGN_FIELDS)
            replies = [_ok(v) for v in pipe.execute(raise_on_error=False)]
        firsts = replies[4 * len(names):4 * len(names) + len(LANES)]
        campaigns = replies[4 * len(names) + len(LANES):]
        held: dict[str, int] = {}
        lanes = {}
        for lane, (length, _, pending), first_waiting in zip(LANES, streams, firsts):
            for consumer in (pending or {}).get("consumers") or ():
                held[consumer["name"]] = held.get(consumer["name"], 0) + int(consumer["pending"])
            pending_count = int((pending or {}).get("pending") or 0)
            lanes[lane] = LaneSeen(
                waiting=max(0, int(length or 0) - pending_count),
                oldest_waiting_ms=_entry_ms(first_waiting[0][0]) if first_waiting else None,
                claimed=pending_count,
                oldest_claimed_ms=_entry_ms((pending or {}).get("min")) if pending_count else None,
            )
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
        total = lanes_together(lanes.values())
        queue = QueueSeen(
            waiting=total.waiting,
            oldest_waiting_ms=total.oldest_waiting_ms,
            claimed=total.claimed,
            oldest_claimed_ms=total.oldest_claimed_ms,
            retries=int(retries or 0),
            next_retry=float(next_retry[0][1]) if next_retry else None,
            dead_letters=int(dead or 0),
            newest_dead_ms=_entry_ms(newest_dead[0][0]) if newest_dead else None,
            lanes=lanes,
        )
        named = sorted({label for w in workers for label in info_nodes(w.info)})
        labels = list(dict.fromkeys([*nodes, *named]))
        pacers = {label: self.registry.node_pacers(label) for label in labels}
        return Snapshot(now=now, workers=tuple(workers), pacers=pacers, queue=queue,
                        campaigns=running_contacts(dict(zip(CAMPAIGN_FIELDS, values)) for values in campaigns
                                                   if values),
                        dnc_refused=refusal_counts(refused or {}))

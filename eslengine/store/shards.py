"""Which shard a call's keys live in, and how listings of several shards
merge (pure: no Redis here).

With ``ESLENGINE_REDIS_SHARDS=N`` the per-call keys (records, the job
stream, retries, the outbox, heartbeats: ``keys.Keys``) exist in N hash
tags, ``{<prefix>}`` (shard 0) and ``{<prefix>#1}`` ... ``{<prefix>#N-1}``.
On a Redis Cluster each tag is one hash slot, so N shards spread over up to
N primaries; every script still touches the keys of one shard only.

A call the API or ``enqueue()`` queues goes to ``shard_of(its id, N)``.
Jobs another app ``XADD``s to ``{<prefix>}:jobs`` and campaign calls stay
in shard 0, so a call is looked for in ``shard_of`` first, then in shard 0
(``lookup_order``).
"""

from __future__ import annotations

import heapq
import uuid
import zlib
from collections.abc import Iterable, Sequence
from typing import TypeVar

from ..opsview import LaneSeen, QueueSeen, Snapshot, lanes_together

T = TypeVar("T")

# The namespace of ids derived from an Idempotency-Key (``idempotent_id``).
IDEMPOTENCY_NAMESPACE = uuid.UUID("0e6f5a0c-6a43-4d2b-9d6c-1f7f3a0b5e21")


def shard_of(call_id: str, shards: int) -> int:
    """The shard (0 ... shards-1) a call of this id is queued in: CRC-32 of
    the id's UTF-8 bytes, modulo ``shards``."""
    if shards <= 1:
        return 0
    return zlib.crc32(call_id.encode("utf-8")) % shards


def lookup_order(call_id: str, shards: int) -> tuple[int, ...]:
    """The shards to look for a call in, in order: its own, then shard 0
    (jobs pushed straight into ``{<prefix>}:jobs``, campaign calls)."""
    own = shard_of(call_id, shards)
    return (own,) if own == 0 else (own, 0)


def idempotent_id(owner: str, key_digest: str) -> str:
    """The call id of a request with an Idempotency-Key and no id of its
    own, when calls are sharded: the same owner and key always give the same
    id, so a repeat goes to the shard holding the key's record."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, "%d:%s%s" % (len(owner), owner, key_digest)))


def by_shard(call_ids: Iterable[str], shards: int) -> dict[int, list[int]]:
    """The positions of ``call_ids`` grouped by each id's shard."""
    groups: dict[int, list[int]] = {}
    for position, call_id in enumerate(call_ids):
        groups.setdefault(shard_of(call_id, shards), []).append(position)
    return groups


def merge_newest_first(listings: Sequence[Sequence[tuple[int, str, T]]], count: int) -> list[tuple[int, str, T]]:
    """The first ``count`` of several listings, each newest first by
    (score, id) descending: the order one index would list them in, so the
    (score, id) cursor of the last one continues every shard's listing."""
    merged = heapq.merge(*listings, key=lambda item: (item[0], item[1]), reverse=True)
    out: list[tuple[int, str, T]] = []
    for item in merged:
        if len(out) >= count:
            break
        out.append(item)
    return out


def qualify_entry(shard: int, entry_id: str) -> str:
    """A stream entry's id as the CLI shows it: shard 0's as it is, another
    shard's as ``<shard>/<entry id>``."""
    return entry_id if shard == 0 else "%d/%s" % (shard, entry_id)


def parse_entry(text: str, shards: int) -> tuple[int, str]:
    """(shard, entry id) of what ``qualify_entry`` wrote; ValueError for a
    shard that does not exist."""
    head, sep, tail = text.partition("/")
    if not sep:
        return 0, text
    if not (head.isascii() and head.isdigit()) or not 0 <= int(head) < shards:
        raise ValueError("no shard %r (shards 0 to %d)" % (head, shards - 1))
    return int(head), tail


def _least(values: Iterable[T | None]) -> T | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None  # type: ignore[type-var]


def merge_snapshots(snapshots: Sequence[Snapshot]) -> Snapshot:
    """What ``eslengine status`` shows of every shard (one ``Snapshot``
    each, shard 0 first): every shard's workers, each lane's counts summed
    over the shards (the oldest waiting or claimed job of any), the queue's
    the lanes together, the next retry of any, the newest dead letter of
    any; node places, campaigns and do-not-call refusals are the base
    shard's keys, read once: shard 0's."""
    if len(snapshots) == 1:
        return snapshots[0]
    queues = [s.queue for s in snapshots]
    newest_dead = [q.newest_dead_ms for q in queues if q.newest_dead_ms is not None]
    pacers = {label: dict(found) for s in snapshots for label, found in s.pacers.items()}
    names = list(dict.fromkeys(lane for q in queues for lane in q.lanes))
    lanes = {lane: lanes_together(q.lanes[lane] for q in queues if lane in q.lanes) for lane in names}
    total = lanes_together(lanes.values()) if lanes else lanes_together(
        LaneSeen(q.waiting, q.oldest_waiting_ms, q.claimed, q.oldest_claimed_ms) for q in queues)
    return Snapshot(
        now=max(s.now for s in snapshots),
        workers=tuple(w for s in snapshots for w in s.workers),
        pacers=pacers,
        queue=QueueSeen(
            waiting=total.waiting,
            oldest_waiting_ms=total.oldest_waiting_ms,
            claimed=total.claimed,
            oldest_claimed_ms=total.oldest_claimed_ms,
            retries=sum(q.retries for q in queues),
            next_retry=_least(q.next_retry for q in queues),
            dead_letters=sum(q.dead_letters for q in queues),
            newest_dead_ms=max(newest_dead) if newest_dead else None,
            lanes=lanes,
        ),
        campaigns=snapshots[0].campaigns,
        dnc_refused=snapshots[0].dnc_refused,
    )

"""Workers in Redis: heartbeats, the calls each follows, adoption of a dead
one's calls and entries, and the shares of a node's limits the workers
pacing it keep to.

A worker's heartbeat (``Keys.heartbeat``) holds its process's token and
expires when it dies; ``Keys.live`` holds the ids of the calls it follows,
so that one other worker adopts them (``adopt``) once it is gone.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from .connection import redis_errors
from .executor import Executor
from .jobs import entries
from .keys import GROUP, Keys, lane_entry

# How long the worker that adopts a dead one keeps it to itself.
ADOPT_HOLD = 60

# How many times ``adopt`` reads a dead worker's live set again when it
# changed between the reading and the adoption.
ADOPT_READS = 5


def _held_share(text: str) -> tuple[int, int]:
    """A worker's "<sessions held> <session share>" on a node (``share.lua``)."""
    held, _, share = text.partition(" ")
    return int(held), int(share)


class Registry:
    """The workers under one prefix."""

    def __init__(self, keys: Keys, run: Executor, *, record_ttl: int) -> None:
        self.keys = keys
        self.run = run
        self.redis = run.redis
        self.record_ttl = record_ttl

    def beat(self, worker: str, ttl: float, token: str = "1") -> bool:
        """This worker is alive for ``ttl`` more seconds from when Redis
        runs this. ``token`` is the value its heartbeat holds (one per
        worker process). Returns whether the heartbeat was still there with
        that token: False the first time, and after it lapsed (then another
        worker may have adopted this one's jobs meanwhile)."""
        with redis_errors("heartbeat"):
            return bool(self.run.script("beat", [self.keys.heartbeat(worker), self.keys.workers],
                                        [token, str(int(ttl * 1000)), worker]))

    def owns(self, worker: str, token: str, job_id: str, entry_id: str = "") -> bool:
        """Whether ``worker`` (whose heartbeat holds ``token``) still owns the
        job: its stream entry ``entry_id``, while unacknowledged, is held by
        the worker; without one, the call's record names the worker.
        False when the heartbeat is not the worker's (lapsed)."""
        stream, entry = self.keys.entry_of(entry_id)
        keys = [self.keys.heartbeat(worker), stream, self.keys.call(job_id)]
        with redis_errors("check owner"):
            return bool(self.run.script("owns", keys, [token, worker, GROUP, entry]))

    def forget_worker(self, worker: str) -> None:
        with redis_errors("forget worker"):
            self.redis.delete(self.keys.heartbeat(worker))

    def dead_workers(self, me: str) -> list[str]:
        with redis_errors("list workers"):
            names = sorted(self.redis.smembers(self.keys.workers) - {me})
            alive = self.alive(names)
        return [n for n in names if not alive[n]]

    def alive(self, names: Collection[str]) -> dict[str, bool]:
        """Whether each of ``names`` has a live heartbeat (one round trip)."""
        names = list(names)
        if not names:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self.keys.heartbeat(name))
        return {name: bool(up) for name, up in zip(names, pipe.execute())}

    def follow(self, worker: str, job_id: str) -> None:
        with redis_errors("follow"):
            self.run.command("SADD", self.keys.live(worker), job_id)

    def unfollow(self, worker: str, job_id: str) -> None:
        with redis_errors("unfollow"):
            self.redis.srem(self.keys.live(worker), job_id)

    def adopt(self, dead: str, me: str,
              count: int = 1000) -> tuple[list[str], list[tuple[str, dict[str, str]]]] | None:
        """Take over a dead worker: the ids of the calls it followed (their
        records name ``me`` as their worker from now on), and the stream
        entries it held unacknowledged. One worker adopts it: the first to
        ask holds it for ADOPT_HOLD seconds (and may ask again); any other
        gets None, and so does everyone if its heartbeat is back (tested in
        the same step as the taking: see ``adopt.lua``). Entries of both
        lanes' streams are taken, their ids as ``keys.lane_entry`` makes them."""
        reply = -1
        with redis_errors("adopt"):
            for _ in range(ADOPT_READS):
                followed = sorted(self.redis.smembers(self.keys.live(dead)))
                keys = [self.keys.heartbeat(dead), self.keys.adopter(dead), self.keys.live(dead), self.keys.jobs,
                        self.keys.workers, self.keys.jobs_bulk, *[self.keys.call(job_id) for job_id in followed]]
                reply = self.run.script("adopt", keys, [me, str(ADOPT_HOLD), GROUP, str(count), dead, *followed])
                if reply != -1:
                    break
        if not reply or reply == -1:
            return None
        calls_, held, held_bulk = cast(list[Any], reply)
        return sorted(str(c) for c in calls_), ([(e, f) for e, f in entries(held) if f]
                                                + [(lane_entry("bulk", e), f) for e, f in entries(held_bulk) if f])

    def take_attempt(self, job_id: str, attempt: int, worker: str) -> bool:
        """Whether ``worker`` may place attempt ``attempt`` of a job it took
        over or found never run, in one step: not when the call is final
        (another follower finished it) or its record already counts that
        attempt; else the first worker to ask gets it (and may ask again),
        and any other gets False and must leave the job alone. Kept as long
        as the call record."""
        with redis_errors("take attempt"):
            return bool(self.run.script("take_attempt", [self.keys.call(job_id), self.keys.placing(job_id, attempt)],
                                        [worker, str(attempt), str(self.record_ttl)]))

    # ------------------------------------------------------------ node shares

    def pace_node(self, node: str, worker: str, ttl: float, held: int,
                  share: int) -> tuple[bool, dict[str, tuple[int, int]]]:
        """Keep ``worker`` among the workers pacing ``node`` for ``ttl`` more
        seconds, saying it holds ``held`` sessions there under a session
        share of ``share``. Returns whether it was not there before (new, or
        lapsed), and every worker there, itself included, with what each
        said: (held, share)."""
        keys = [self.keys.node_workers(node), self.keys.node_held(node)]
        with redis_errors("pace node"):
            added, flat = self.run.script("share", keys, [worker, repr(ttl), "%d %d" % (held, share)])
        return bool(added), {name: _held_share(value) for name, value in zip(flat[::2], flat[1::2])}

    def node_pacers(self, node: str) -> dict[str, tuple[int, int, float]]:
        """The workers pacing ``node`` as they last said: (sessions held,
        session share, seconds until the place lapses), lapsed ones left out."""
        with redis_errors("read node"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.time()
            pipe.zrange(self.keys.node_workers(node), 0, -1, withscores=True)
            pipe.hgetall(self.keys.node_held(node))
            (secs, micros), places, said = pipe.execute()
        now = secs + micros / 1e6
        pacers: dict[str, tuple[int, int, float]] = {}
        for worker, lapses in places:
            if lapses > now:
                pacers[worker] = (*_held_share(said.get(worker, "0 0")), lapses - now)
        return pacers

    def leave_node(self, node: str, worker: str) -> None:
        """``worker`` no longer paces ``node``: the others' shares grow."""
        with redis_errors("leave node"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.zrem(self.keys.node_workers(node), worker)
            pipe.hdel(self.keys.node_held(node), worker)
            pipe.execute()

"""The job streams: enqueue, read, take over stale entries, acknowledge,
dead letters and the retries pump.

Two lanes (``keys.LANES``), a stream each: ``Keys.jobs``, the interactive
lane (what a person waits for on the phone, and what any app that ``XADD``s
to it places), and ``Keys.jobs_bulk``, the bulk lane (campaigns, bulk
API clients), which workers read only with the room the interactive lane
leaves. Entry ids are handed out lane-qualified (``keys.lane_entry``): the
store's methods that take an entry id know its stream from it. A call
queued in the bulk lane says so in its record (``lane``), so that its
retries and requeues go back to the bulk lane.

Workers read the stream through the consumer group ``GROUP`` (created at
id 0, so jobs added before any worker existed are dialed too), acknowledge
an entry only once its originate's outcome is known, and take over entries
a dead reader held. A job that cannot be dialed goes to ``Keys.dead``,
capped at about ``dead_letter_max`` entries, the oldest dropped first.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import redis

from .. import dnc
from ..calls import CallRequest
from ..errors import DoNotCall, IdempotencyKeyUsed, JobExists
from .clock import now_iso
from .connection import redis_errors
from .executor import Executor
from .keys import GROUP, JOB_FIELD, LANES, Keys, account_index, lane_entry, lane_of
from .records import initial_record

if TYPE_CHECKING:
    from .registry import Registry

# claim_stale reads at most this many pages of idle pending entries a round.
STALE_PAGES = 10


def entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """XCLAIM's reply from a script: [[id, [field, value, ...]], ...]."""
    out = []
    for item in reply or []:
        if not item:
            continue  # an entry deleted meanwhile (older Redis versions)
        entry_id, flat = item[0], item[1] or []
        out.append((str(entry_id), dict(zip(flat[::2], flat[1::2]))))
    return out


class Jobs:
    """The job stream under one prefix."""

    def __init__(self, keys: Keys, run: Executor, registry: Registry, *, record_ttl: int,
                 dead_letter_max: int) -> None:
        self.keys = keys
        self.run = run
        self.redis = run.redis
        self.registry = registry
        self.record_ttl = record_ttl
        self.dead_letter_max = dead_letter_max

    # ------------------------------------------------------------ producers

    def enqueue(self, request: CallRequest, *, owner: str = "", client_id: str = "",
                idempotency: tuple[str, str] | None = None, account: str = "", lane: str = "") -> str:
        """Store the call record (``queued``) and add the job, atomically.
        Raises ``JobExists`` when the id was already accepted. ``owner``: the
        id of the API key that placed it; ``client_id``: the id that key
        knows the call by, when it is not ``request.id`` (apikeys.scoped_id);
        ``account``: the account it is placed for (indexed under
        ``account_index``).

        ``idempotency``: (key digest, request digest) of an Idempotency-Key:
        when the owner used that key before (within the records' lifetime),
        nothing is queued and ``IdempotencyKeyUsed`` says which call it
        placed and with what request digest.

        ``lane``: ``"interactive"`` (``Keys.jobs``) or ``"bulk"``
        (``Keys.jobs_bulk``); by default the request's own.

        In the same step, a number the call would ring
        (``dnc.checked_numbers``) that is on the global do-not-call list or
        on ``account``'s refuses it: ``DoNotCall``, nothing queued (in
        shard 0 only: the lists are the base shard's, and another shard's
        caller checks them before, ``JobQueue.enqueue``)."""
        lane = lane or request.lane
        if lane not in LANES:
            raise ValueError("unknown lane %r (one of %s)" % (lane, ", ".join(LANES)))
        ts = time.time()
        now = now_iso(ts)
        document = request.dumps()
        score = int(ts * 1_000_000)
        numbers = dnc.checked_numbers(request)
        lists = [dnc.GLOBAL, dnc.ACCOUNT] if account else [dnc.GLOBAL]
        if not numbers or self.keys.shard:
            # Another shard's script cannot read the base shard's lists:
            # JobQueue.enqueue checks them before.
            lists = []
        args: list[str] = [str(self.record_ttl), document, now, str(score), str(score - self.record_ttl * 1_000_000),
                           request.id, idempotency[1] if idempotency else "", str(len(lists)), repr(ts),
                           str(len(numbers)), *[number for _, number in numbers]]
        extra = {"owner": owner} if owner else {}
        if account:
            extra["account"] = account
        if client_id and client_id != request.id:
            extra["client_id"] = client_id
        if lane != "interactive":
            extra["lane"] = lane
        for key, value in {**initial_record(request, now, document), **extra}.items():
            args += [key, value]
        keys = [self.keys.call(request.id), self.keys.history(request.id), self.keys.stream(lane),
                *[self.keys.dnc(account if name == dnc.ACCOUNT else "") for name in lists], self.keys.index()]
        if owner:
            keys.append(self.keys.index(owner))
        if account:
            keys.append(self.keys.index(account_index(account)))
        if idempotency:
            keys.append(self.keys.idempotency(owner, idempotency[0]))
        with redis_errors("enqueue"):
            added = self.run.script_replicated("enqueue", keys, args)
        if isinstance(added, (str, bytes)):
            job_id, _, digest = (added.decode() if isinstance(added, bytes) else added).partition(" ")
            raise IdempotencyKeyUsed(job_id, digest)
        if isinstance(added, list):  # ['dnc', i, k]: the i-th number is on the k-th list
            field, number = numbers[int(added[1]) - 1]
            raise DoNotCall(field, number, lists[int(added[2]) - 1])
        if not added:
            raise JobExists(request.id)
        return request.id

    # ------------------------------------------------------------ consumers

    def ensure_group(self) -> None:
        """Create the consumer group of each lane's stream (and the stream)."""
        with redis_errors("create group"):
            for lane in LANES:
                try:
                    self.redis.xgroup_create(self.keys.stream(lane), GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    def read(self, consumer: str, count: int, block_ms: int | None,
             lanes: tuple[str, ...] = ("interactive",)) -> list[tuple[str, dict[str, str]]]:
        """New entries for this consumer from ``lanes``' streams (at most
        ``count`` from each), waiting at most ``block_ms`` (None: not at
        all) for one. Ids as ``keys.lane_entry`` makes them."""
        streams = {self.keys.stream(lane): ">" for lane in lanes}
        with redis_errors("read jobs"):
            reply = self.redis.xreadgroup(GROUP, consumer, streams, count=count, block=block_ms)
        return [(lane_entry("bulk" if stream == self.keys.jobs_bulk else "interactive", entry_id), fields or {})
                for stream, found in reply or [] for entry_id, fields in found]

    def claim_stale(self, consumer: str, min_idle_ms: int, count: int = 100,
                    in_hand: Collection[str] = ()) -> list[tuple[str, dict[str, str]]]:
        """Entries read but not acknowledged within ``min_idle_ms`` that
        nobody is working on, now ``consumer``'s: those of a reader that is
        no worker (no heartbeat, not among the workers; a dead worker's go
        to the worker that adopts it, with its calls: ``Registry.adopt``),
        and ``consumer``'s own that are not ``in_hand`` (a job it gave up on
        when Redis failed). A live worker's entries stay its own however long
        they wait: its pacer may hold a job for a while (a node down, a share
        just cut), and it will still place it. Taking such an entry over
        would place the call twice. Both lanes' streams, the interactive
        lane's first, ``count`` at most in all."""
        taken: list[tuple[str, dict[str, str]]] = []
        for lane in LANES:
            if len(taken) < count:
                taken += self._claim_stale(lane, consumer, min_idle_ms, count - len(taken), in_hand)
        return taken

    def _claim_stale(self, lane: str, consumer: str, min_idle_ms: int, count: int,
                     in_hand: Collection[str]) -> list[tuple[str, dict[str, str]]]:
        stream = self.keys.stream(lane)
        with redis_errors("claim stale jobs"):
            held: list[tuple[str, str]] = []
            alive: dict[str, bool] = {}
            start = "-"
            # Page on past a live worker's entries, a few pages at most.
            for _ in range(STALE_PAGES):
                pending = self.redis.xpending_range(stream, GROUP, start, "+", count, idle=min_idle_ms)
                alive.update(self.registry.alive({p["consumer"] for p in pending} - {consumer} - alive.keys()))
                held += [(p["message_id"], p["consumer"]) for p in pending
                         if (lane_entry(lane, p["message_id"]) not in in_hand if p["consumer"] == consumer
                             else not alive[p["consumer"]])]
                if len(pending) < count or len(held) >= count:
                    break
                start = "(" + pending[-1]["message_id"]
            held = held[:count]
            if not held:
                return []
            # The holders' heartbeats are tested again in the script that
            # takes the entries (a worker that renewed since keeps them), and
            # XCLAIM tests the idle time again: an entry acknowledged or
            # taken by someone else meanwhile is not taken.
            keys = [stream, self.keys.workers, *[self.keys.heartbeat(holder) for _, holder in held]]
            args = [GROUP, consumer, str(min_idle_ms)]
            for entry_id, holder in held:
                args += [entry_id, holder]
            taken = entries(self.run.script("claim_stale", keys, args))
        return [(lane_entry(lane, entry_id), fields) for entry_id, fields in taken if fields]

    def ack(self, entry_id: str) -> None:
        """The entry's outcome is known: acknowledge it and drop it from the stream."""
        stream, entry = self.keys.entry_of(entry_id)
        with redis_errors("ack"):
            self.run.commands(("XACK", stream, GROUP, entry), ("XDEL", stream, entry))

    # ------------------------------------------------------------ dead letters

    def dead_letter(self, entry_id: str, fields: Mapping[str, str], reason: str, job_id: str = "") -> None:
        """Move an entry to ``Keys.dead`` with its reason, atomically with the ack."""
        entry = dict(fields)
        entry.update(reason=reason, entry_id=entry_id, job_id=job_id, at=now_iso())
        stream, stream_id = self.keys.entry_of(entry_id)
        with redis_errors("dead-letter"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.xadd(self.keys.dead, entry, maxlen=self.dead_letter_max, approximate=True)
            pipe.xack(stream, GROUP, stream_id)
            pipe.xdel(stream, stream_id)
            pipe.execute()

    def dead_letter_job(self, job_id: str, request_json: str, reason: str) -> None:
        """Record a job that keeps failing in ``Keys.dead`` (its call record stays)."""
        with redis_errors("dead-letter"):
            self.redis.xadd(self.keys.dead, {JOB_FIELD: request_json, "job_id": job_id, "reason": reason,
                                             "at": now_iso()}, maxlen=self.dead_letter_max, approximate=True)

    def dead_letters(self, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        with redis_errors("list dead letters"):
            return [(i, f) for i, f in self.redis.xrange(self.keys.dead, count=count)]

    def requeue_dead(self, entry_id: str) -> str:
        """Queue a dead letter's job again and drop the dead letter. Returns
        the job id; ValueError when the entry is unknown or unreadable."""
        with redis_errors("requeue"):
            found = self.redis.xrange(self.keys.dead, entry_id, entry_id)
        if not found:
            raise ValueError("no dead letter %s" % entry_id)
        fields = found[0][1]
        job_id = fields.get("job_id", "")
        now = now_iso()
        with redis_errors("requeue"):
            # Back to its own lane: the record's, else the entry's it came from.
            lane = (self.redis.hget(self.keys.call(job_id), "lane") if job_id else None) or \
                lane_of(fields.get("entry_id", ""))
            if job_id and self.redis.exists(self.keys.call(job_id)):
                result = self.run.script("requeue", [self.keys.call(job_id), self.keys.history(job_id),
                                                     self.keys.stream(lane)], [now])
                if result != 1:
                    raise ValueError("job %s is not finished (%s)" % (job_id, result))
            elif "job" in fields:
                self.redis.xadd(self.keys.stream(lane), {JOB_FIELD: fields["job"]})
            else:
                raise ValueError("dead letter %s holds no job" % entry_id)
            self.redis.xdel(self.keys.dead, entry_id)
        return job_id

    # ------------------------------------------------------------ retries

    def schedule_retry(self, job_id: str, due: float, cause: str) -> bool:
        """Send a failed (not yet final) call back to ``queued``, to be placed
        again at ``due`` (epoch seconds)."""
        keys = [self.keys.call(job_id), self.keys.history(job_id), self.keys.retry]
        with redis_errors("schedule retry"):
            return bool(self.run.script("retry", keys, [repr(due), now_iso(), cause, now_iso(due), job_id]))

    def move_due_retries(self, now: float, limit: int = 200) -> int:
        """Move the calls due by ``now`` (at most ``limit``) from the retry
        set back into the stream of their lane; each moves once, whoever
        else moves them."""
        with redis_errors("due retries"):
            due = self.redis.zrangebyscore(self.keys.retry, "-inf", repr(now), start=0, num=limit)
            if not due:
                return 0
            keys = [self.keys.retry, self.keys.jobs, self.keys.jobs_bulk, *[self.keys.call(job_id) for job_id in due]]
            return int(self.run.script("due", keys, [repr(now), *due]))

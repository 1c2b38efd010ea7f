"""Call records: one hash a call (``Keys.call``), its history list and the
indexes that list calls by creation time.

Status changes go through one script (``transition.lua``) that only moves a
call forward, so late or duplicated events cannot undo a final status. The
same scripts queue a webhook delivery for every status move of a call with
a ``callback_url`` (its record's ``callback`` field, ``outbox.py``), so no
status change is ever written without its delivery.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from .. import metrics
from ..calls import CallRequest
from ..config import CDR_MAX
from ..status import STATUSES
from .clock import now_iso
from .connection import redis_errors
from .executor import Executor
from .keys import GROUP, Keys

# What a caller of ``Records.claim`` reads of the record: the worker decides
# from these whether to place, resume or leave the job (``worker.py``:
# ``_dial``, ``_resume``). The claim script needs the first four itself.
CLAIM_FIELDS = ("status", "originated", "cancel_requested", "attempts", "throttled", "attempt_state", "node",
                "a_uuid", "b_uuid", "answered_at", "bridged_at")


def initial_record(request: CallRequest, now: str, document: str | None = None) -> dict[str, str]:
    """The fields of a new call's record, ``queued``."""
    record = {
        "id": request.id,
        "status": "queued",
        "a": ",".join(str(d) for d in request.a.destinations),
        "b": ",".join(str(d) for d in request.b.destinations),
        "request": document if document is not None else request.dumps(),
        "created_at": now,
        "queued_at": now,
        "updated_at": now,
    }
    if request.callback_url:
        record["callback"] = "1"  # every status move queues a webhook delivery
    return record


class Records:
    """The call records under one prefix."""

    def __init__(self, keys: Keys, run: Executor, *, record_ttl: int, cdr_max: int = CDR_MAX) -> None:
        self.keys = keys
        self.run = run
        self.redis = run.redis
        self.record_ttl = record_ttl
        # The CDR stream (``Keys.cdr``) is trimmed to about this many entries.
        self.cdr_max = cdr_max

    def transition(
        self, job_id: str, status: str = "", fields: Mapping[str, str] | None = None, *,
        keep_fields: bool = False, worker: str = "", ack: str = "",
    ) -> bool:
        """Move the call to ``status`` (``""``: only store ``fields``). Returns
        whether anything was written: a move backwards, out of a final status,
        or onto a missing record writes nothing — except
        that ``keep_fields`` stores the fields when only the move is refused
        (a call placed again while already marked dialing).

        With ``worker``, the call joins that worker's live set on a live
        status and leaves it on a final one. With ``ack``, that stream entry
        is acknowledged (and deleted) by the same script, whatever else it
        writes."""
        keys, args = self._transition_call(job_id, status, fields, keep_fields, worker, ack)
        with redis_errors("update call"):
            result = self.run.script("transition", keys, args)
        if int(result) > 0:
            metrics.count_call_ended(status, fields)
        return int(result) > 0

    def annotate(self, job_id: str, fields: Mapping[str, str]) -> None:
        """Store informational ``fields`` on an existing record without
        waiting for Redis when commands are batched: nothing the caller does
        next depends on them, and the batch keeps them in order with the
        call's later transitions. A failure is only logged then."""
        keys, args = self._transition_call(job_id, "", fields)
        with redis_errors("update call"):
            self.run.script_later("transition", keys, args)

    def _transition_call(self, job_id: str, status: str, fields: Mapping[str, str] | None,
                         keep_fields: bool = False, worker: str = "", ack: str = "") -> tuple[list[str], list[str]]:
        """The keys and arguments of ``transition.lua``."""
        if status and status not in STATUSES:
            raise ValueError("unknown status %r" % status)
        live = "1" if worker and status else "0"
        args: list[str] = [status, now_iso(), str(self.record_ttl), "1" if keep_fields else "0", job_id, live,
                           ack, GROUP, str(self.cdr_max)]
        for key, value in (fields or {}).items():
            args += [key, value]
        keys = [self.keys.call(job_id), self.keys.history(job_id), self.keys.live(worker), self.keys.jobs,
                self.keys.webhook(job_id), self.keys.webhooks, self.keys.cdr]
        return keys, args

    def claim(self, request: CallRequest, dialing: Mapping[str, str] | None = None, *,
              worker: str = "") -> dict[str, str]:
        """The record of a job read off the stream, created (``queued``) when
        a producer added the job with a bare XADD (then its ``created`` is
        "1"); one round trip either way. With ``dialing`` fields, in the same
        step, a job still queued and never originated moves to ``dialing`` with
        those fields, ``attempts`` one up, in ``worker``'s live set; the reply
        then has ``claimed`` (the attempt number) beside the record as it was.
        A job whose cancel was asked for is not claimed. Nothing here decides
        whether the job may be dialed: the caller passes ``dialing`` only for
        a request its own policy allows. The reply holds the fields of
        ``CLAIM_FIELDS`` the record has, not the whole record."""
        now = now_iso()
        initial: list[str] = []
        for key, value in initial_record(request, now).items():
            initial += [key, value]
        args: list[str] = [str(self.record_ttl), now, str(len(initial)), request.id, str(len(CLAIM_FIELDS)),
                           *initial, *CLAIM_FIELDS]
        for key, value in (dialing or {}).items():
            args += [key, value]
        keys = [self.keys.call(request.id), self.keys.history(request.id), self.keys.live(worker),
                self.keys.webhook(request.id), self.keys.webhooks, self.keys.index()]
        with redis_errors("read call"):
            flat = self.run.script_replicated("claim", keys, args)
        return dict(zip(flat[::2], flat[1::2]))

    def record_unreadable(self, job_id: str, raw: str, reason: str) -> bool:
        """A job with an id that cannot be placed (a producer's bare ``XADD``
        the worker refuses): give it a record, ``failed`` with the reason,
        unless a call with the id exists (that call is left alone). Returns
        whether a record was made."""
        now = now_iso()
        fields = {"id": job_id, "status": "failed", "request": raw if raw.startswith("{") else "{}",
                  "error": reason, "hangup_cause": "CALL_REJECTED", "created_at": now, "queued_at": now,
                  "failed_at": now, "ended_at": now, "updated_at": now}
        ts = time.time()
        with redis_errors("record refused job"):
            made = self.run.script(
                "unreadable",
                [self.keys.call(job_id), self.keys.history(job_id), self.keys.index(), self.keys.cdr],
                [str(self.record_ttl), now, str(int(ts * 1_000_000)), str(int((ts - self.record_ttl) * 1_000_000)),
                 job_id, str(self.cdr_max), *[item for pair in fields.items() for item in pair]])
        if made:
            metrics.count_call_ended("failed", fields)
        return bool(made)

    def record(self, job_id: str) -> dict[str, str]:
        with redis_errors("read call"):
            return self.redis.hgetall(self.keys.call(job_id))

    def read(self, job_id: str) -> tuple[dict[str, str], list[str]] | None:
        """The call's record and history (``<status> <iso time>`` each), or None."""
        with redis_errors("read call"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.keys.call(job_id))
            pipe.lrange(self.keys.history(job_id), 0, -1)
            record, history = pipe.execute()
        if not record:
            return None
        return record, history

    def owners(self, job_ids: Sequence[str]) -> list[str | None]:
        """Each call's owner (the id of the key that placed it; '' for none),
        or None where there is no such call."""
        with redis_errors("read call"):
            pipe = self.redis.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hmget(self.keys.call(job_id), ["status", "owner"])
            found = pipe.execute()
        return [None if status is None else (owner or "") for status, owner in found]

    def holders(self, job_ids: Sequence[str]) -> list[tuple[str, str] | None]:
        """Each call's (owner, account), '' for none, or None where there
        is no such call."""
        with redis_errors("read call"):
            pipe = self.redis.pipeline(transaction=False)
            for job_id in job_ids:
                pipe.hmget(self.keys.call(job_id), ["status", "owner", "account"])
            found = pipe.execute()
        return [None if status is None else (owner or "", account or "") for status, owner, account in found]

    def request_cancel(self, job_id: str, cause: str = "ORIGINATOR_CANCEL", *, queued_only: bool = False) -> str:
        """``cancelled`` (it was still queued: it ends with hangup cause
        ``cause``), ``cancelling:<status>`` (a worker will hang it up),
        ``final:<status>`` or ``missing``; with ``queued_only``, a live call
        is left alone: ``live:<status>``."""
        keys = [self.keys.call(job_id), self.keys.history(job_id), self.keys.cancel, self.keys.webhook(job_id),
                self.keys.webhooks, self.keys.cdr]
        with redis_errors("cancel"):
            return str(self.run.script("cancel", keys, [now_iso(), job_id, str(self.record_ttl), str(self.cdr_max),
                                                        cause, "1" if queued_only else "0"]))

    def list_calls(self, owner: str = "", *, newest: float | None = None, oldest: float | None = None,
                   after: tuple[int, str] | None = None, count: int = 200) -> list[tuple[int, str, dict[str, str]]]:
        """Up to ``count`` calls of the index (every call, or ``owner``'s),
        newest first, created between ``oldest`` and ``newest`` (epoch
        seconds) and after the cursor ``after`` (score, id): (score, id,
        record) each; a call whose record has expired is taken
        out of the index, and listed with an empty record)."""
        index = self.keys.index(owner)
        top: str = "+inf" if newest is None else str(int(newest * 1_000_000))
        if after is not None:
            top = str(after[0])
        bottom = "-inf" if oldest is None else str(int(oldest * 1_000_000))
        with redis_errors("list calls"):
            entries = self.redis.zrevrangebyscore(index, top, bottom, start=0, num=count + 50, withscores=True)
            if after is not None:
                # Ties on the cursor's microsecond come in descending id order.
                entries = [(m, sc) for m, sc in entries if int(sc) < after[0] or m < after[1]]
            entries = entries[:count]
            pipe = self.redis.pipeline(transaction=False)
            for member, _ in entries:
                pipe.hgetall(self.keys.call(member))
            records = pipe.execute()
            gone = [m for (m, _), r in zip(entries, records) if not r]
            if gone:
                self.redis.zrem(index, *gone)
        return [(int(sc), m, r) for (m, sc), r in zip(entries, records)]

    def idempotency_used(self, owner: str, digest: str) -> tuple[str, str] | None:
        """(call id, request digest) an Idempotency-Key of ``owner`` placed, or None."""
        with redis_errors("read idempotency key"):
            used = self.redis.get(self.keys.idempotency(owner, digest))
        if not used:
            return None
        job_id, _, request_digest = str(used).partition(" ")
        return job_id, request_digest

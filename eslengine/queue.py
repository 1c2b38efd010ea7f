"""Jobs and call records in Redis.

Keys (``<p>`` is the configured prefix, ``eslengine`` by default):

``<p>:jobs``               stream; one entry per job, one field ``job`` holding
                           the request JSON. Any app can ``XADD`` to it.
``<p>:dead``               stream of jobs that cannot be dialed, with ``reason``;
                           capped at about ``dead_letter_max`` entries, the
                           oldest dropped first.
``<p>:call:<id>``          hash: the call's status, timestamps, causes, request.
``<p>:call:<id>:history``  list of ``<status> <iso time>`` in order.
``<p>:cancel``             pub/sub channel: ids whose live call must be hung up.
``<p>:retry``              sorted set: ids of failed calls waiting to be placed
                           again, scored by when.
``<p>:workers``            set of worker names; ``<p>:worker:<name>`` is a
                           worker's heartbeat (expires when it dies) and
                           ``<p>:live:<name>`` the ids of calls it follows, so
                           another worker adopts them if it dies.
``<p>:webhooks``           sorted set: ids of calls with webhook deliveries
                           pending, scored by when the next attempt is due
                           (Redis's clock); while a worker delivers one, by
                           when its lease on it ends.
``<p>:webhooks:<id>``      list: that call's pending deliveries, in order, each
                           ``<delivery id> <status> <queued at> <attempts>``.

Workers read the stream through the consumer group ``workers`` (created at id
0, so jobs added before any worker existed are dialed too), acknowledge an
entry only once its originate's outcome is known, and take over entries a dead
worker held (``XAUTOCLAIM``). Status changes go through one Lua script that
only moves a call forward, so late or duplicated events cannot undo a final
status. The same scripts queue a webhook delivery for every status move of a
call with a ``callback_url`` (its record's ``callback`` field), so no status
change is ever written without its delivery; workers deliver them
(``webhooks.py``). A delivery's id is ``<call id>.<n>``, the status change's
place in the call's history: unique while the record lives, and the same
for every attempt.

Every Redis error is translated into ``QueueUnavailable`` here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from . import calls
from .calls import CallRequest
from .config import DEAD_LETTER_MAX, Config
from .errors import IdempotencyKeyUsed, JobExists, QueueUnavailable

log = logging.getLogger(__name__)

GROUP = "workers"
JOB_FIELD = "job"


class Keys:
    """Key names under one prefix."""

    def __init__(self, prefix: str = "eslengine") -> None:
        self.prefix = prefix
        self.jobs = prefix + ":jobs"
        self.dead = prefix + ":dead"
        self.cancel = prefix + ":cancel"

    @property
    def retry(self) -> str:
        return self.prefix + ":retry"

    @property
    def workers(self) -> str:
        return self.prefix + ":workers"

    def heartbeat(self, worker: str) -> str:
        return "%s:worker:%s" % (self.prefix, worker)

    def live(self, worker: str) -> str:
        return "%s:live:%s" % (self.prefix, worker)

    def adopter(self, dead: str) -> str:
        return "%s:adopter:%s" % (self.prefix, dead)

    def call(self, job_id: str) -> str:
        return "%s:call:%s" % (self.prefix, job_id)

    def node_workers(self, node: str) -> str:
        """ZSET: the workers pacing ``node``, scored by when each lapses."""
        return "%s:node:%s:workers" % (self.prefix, node)

    def node_held(self, node: str) -> str:
        """HASH: worker -> "<sessions held> <session share>" on ``node``."""
        return "%s:node:%s:held" % (self.prefix, node)

    def history(self, job_id: str) -> str:
        return "%s:call:%s:history" % (self.prefix, job_id)

    def index(self, owner: str = "") -> str:
        """ZSET: call ids by creation time (µs): every call, or ``owner``'s."""
        return "%s:calls:%s" % (self.prefix, owner) if owner else self.prefix + ":calls"

    def idempotency(self, owner: str, digest: str) -> str:
        """STRING: "<call id> <request digest>" of an Idempotency-Key."""
        return "%s:idem:%s:%s" % (self.prefix, owner or "-", digest)

    def placing(self, job_id: str, attempt: int) -> str:
        """STRING: the worker that places attempt ``attempt`` of the job again
        (``JobQueue.take_attempt``)."""
        return "%s:call:%s:placing:%d" % (self.prefix, job_id, attempt)

    @property
    def webhooks(self) -> str:
        return self.prefix + ":webhooks"

    def webhook(self, job_id: str) -> str:
        return "%s:webhooks:%s" % (self.prefix, job_id)


_last_iso: tuple[int, str] = (-1, "")


# How long the worker that adopts a dead one keeps it to itself.
ADOPT_HOLD = 60


def now_iso(ts: float | None = None) -> str:
    """``ts`` (default: now) as UTC ISO 8601 to the millisecond. The text of
    the last millisecond asked for is kept: a busy worker asks several times
    per millisecond."""
    global _last_iso
    if ts is None:
        ts = time.time()
    whole = int(ts)  # rounded to the microsecond the way datetime does it
    ms = whole * 1000 + round((ts - whole) * 1_000_000) // 1000
    if ms == _last_iso[0]:
        return _last_iso[1]
    text = datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    _last_iso = (ms, text)
    return text


@contextlib.contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py's errors into ``QueueUnavailable``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError) as exc:
        raise QueueUnavailable("%s: %s" % (what, exc)) from exc
    except redis.ResponseError as exc:
        if "NOGROUP" in str(exc) or "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
            raise QueueUnavailable("%s: %s" % (what, exc)) from exc
        raise


def connect(url: str, *, timeout: float = 5.0, max_connections: int = 64) -> redis.Redis:
    """A client whose every call has a deadline. It retries a failed command
    once after a short pause; longer outages are the caller's to back off
    from (the API answers 503, the worker waits and resumes). Its pool holds
    at most ``max_connections``; thousands of greenlets share them, waiting
    (up to the deadline) for a free one rather than failing."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        health_check_interval=30,
        decode_responses=True,
    )
    return redis.Redis(connection_pool=pool)


def _log_failure(waiter: Any) -> None:
    if not waiter.successful():
        log.warning("redis: a record update was not stored: %s", waiter.exception)


# Queue a webhook delivery for the status move that made history entry n,
# when the call has a callback (its record's "callback" field): the call's
# outbox list gets "<id>.<n> <status> <now> 0", and the call joins the
# outbox set due now, unless it is there already (waiting for a retry, or
# held by a worker delivering its earlier ones, which delivers this one next).
_QUEUE_WEBHOOK = """
local function queue_webhook(record, list, outbox, job_id, n, status, ttl)
  if redis.call('HEXISTS', record, 'callback') == 0 then return end
  local t = redis.call('TIME')
  local at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  redis.call('RPUSH', list, job_id .. '.' .. n .. ' ' .. status .. ' ' .. at .. ' 0')
  redis.call('EXPIRE', list, ttl)
  redis.call('ZADD', outbox, 'NX', at, job_id)
end
"""

# One script moves a call's status; ranks come from calls.STATUSES so the
# order is written down once.
_RANKS = ",".join(
    "[%r]=%d" % (s, len(calls.STATUSES) if s in calls.FINAL else i) for i, s in enumerate(calls.STATUSES)
)
_TRANSITION = _QUEUE_WEBHOOK + """
local ranks = {%s}
local final = %d
if ARGV[7] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[8], ARGV[7])
  redis.call('XDEL', KEYS[4], ARGV[7])
end
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return -1 end
local new = ARGV[1]
local now = ARGV[2]
local ttl = tonumber(ARGV[3])
if new ~= '' then
  if ranks[cur] == final then return 0 end
  if ranks[new] ~= final and ranks[new] <= ranks[cur] then
    if ARGV[4] ~= '1' then return 0 end
    new = ''
  end
end
if #ARGV >= 10 then redis.call('HSET', KEYS[1], unpack(ARGV, 9)) end
if new ~= '' then
  if ranks[new] == final then
    redis.call('HSET', KEYS[1], 'status', new, new .. '_at', now, 'updated_at', now, 'ended_at', now)
  else
    redis.call('HSET', KEYS[1], 'status', new, new .. '_at', now, 'updated_at', now)
  end
  if ARGV[6] == '1' then
    if ranks[new] == final then redis.call('SREM', KEYS[3], ARGV[5]) else redis.call('SADD', KEYS[3], ARGV[5]) end
  end
  local n = redis.call('RPUSH', KEYS[2], new .. ' ' .. now)
  redis.call('EXPIRE', KEYS[2], ttl)
  queue_webhook(KEYS[1], KEYS[5], KEYS[6], ARGV[5], n, new, ttl)
end
redis.call('EXPIRE', KEYS[1], ttl)
if new ~= '' then return 1 end
return 2
""" % (_RANKS.replace("'", '"'), len(calls.STATUSES))

# Record, history and stream entry in one step, refusing an id already taken
# (two producers racing with the same id: exactly one wins).
# Every call is indexed by creation time (the listing), in the index of all
# calls and in its owner's and its account's (KEYS[5] on, when it has them);
# index entries older than the records' lifetime go as calls are added. With
# an Idempotency-Key (the last key, when ARGV[7], the request's digest, is
# given), a key already used answers with its call and request digest
# instead (or 0 when a call with the id exists).
_INDEX = """
local function index_call(id, score, cutoff, first, last)
  for i = first, last do
    redis.call('ZADD', KEYS[i], score, id)
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', cutoff)
  end
end
"""

_ENQUEUE = _INDEX + """
local last = #KEYS
local idem = nil
if ARGV[7] ~= '' then idem = KEYS[last]; last = last - 1 end
if idem then
  local used = redis.call('GET', idem)
  if used then return used end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'job', ARGV[2])
index_call(ARGV[6], ARGV[4], ARGV[5], 4, last)
if idem then redis.call('SET', idem, ARGV[6] .. ' ' .. ARGV[7], 'EX', ARGV[1]) end
return 1
"""

# A job the worker refuses to read gets a failed record, unless its id is taken.
_UNREADABLE = _INDEX + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[2], 'failed ' .. ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
index_call(ARGV[5], ARGV[3], ARGV[4], 3, 3)
return 1
"""

# A failed call goes back to "queued" to be placed again later (the only
# backward move a status makes), keeping its history.
_RETRY = """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur or cur == 'completed' or cur == 'failed' or cur == 'cancelled' then return 0 end
redis.call('HDEL', KEYS[1], 'a_uuid', 'b_uuid', 'hangup_cause', 'a_hangup_cause', 'b_hangup_cause',
           'dialing_at', 'ringing_at', 'answered_at', 'bridged_at', 'originated', 'attempt_state', 'node')
redis.call('HSET', KEYS[1], 'status', 'queued', 'queued_at', ARGV[2], 'updated_at', ARGV[2],
           'retry_at', ARGV[4], 'last_attempt_cause', ARGV[3])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[5])
return 1
"""

# Move due retries back into the stream; atomic, so each moves once.
_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local request = redis.call('HGET', ARGV[3] .. id, 'request')
    if request then
      redis.call('XADD', KEYS[2], '*', 'job', request)
      moved = moved + 1
    end
  end
end
return moved
"""

# Put a dead-lettered or failed job back in the queue as new.
_REQUEUE = """
local request = redis.call('HGET', KEYS[1], 'request')
if not request then return 0 end
local cur = redis.call('HGET', KEYS[1], 'status')
if cur ~= 'completed' and cur ~= 'failed' and cur ~= 'cancelled' then return -1 end
redis.call('HDEL', KEYS[1], 'a_uuid', 'b_uuid', 'hangup_cause', 'a_hangup_cause', 'b_hangup_cause', 'error',
           'dialing_at', 'ringing_at', 'answered_at', 'bridged_at', 'completed_at', 'failed_at', 'cancelled_at',
           'ended_at', 'originated', 'attempt_state', 'node', 'attempts', 'cancel_requested', 'retry_at')
redis.call('HSET', KEYS[1], 'status', 'queued', 'queued_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[1])
redis.call('XADD', KEYS[3], '*', 'job', request)
return 1
"""

# A job's record, created as "queued" if a producer added the job with a
# bare XADD (then with created=1 in the reply, not stored). With dialing
# fields a job that is queued and was never originated also moves to
# "dialing" in the same step — unless a cancel was asked for — and the
# reply carries claimed=<attempt>, the record itself as it was before.
# ARGV: ttl, now, n, the job id (the live set's member), n initial record
# fields and values, then the dialing fields and values.
_RECORD = _QUEUE_WEBHOOK + _INDEX + """
local record = redis.call('HGETALL', KEYS[1])
local created = #record == 0
local n = tonumber(ARGV[3])
if created then
  record = {unpack(ARGV, 5, 4 + n)}
  redis.call('HSET', KEYS[1], unpack(record))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  redis.call('RPUSH', KEYS[2], 'queued ' .. ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  local now = redis.call('TIME')
  local score = now[1] * 1000000 + now[2]
  index_call(ARGV[4], score, score - ARGV[1] * 1000000, 6, 6)
  table.insert(record, 'created')
  table.insert(record, '1')
end
if #ARGV == 4 + n then return record end
local h = {}
for i = 1, #record, 2 do h[record[i]] = record[i + 1] end
if h['status'] ~= 'queued' or h['originated'] == '1' or h['cancel_requested'] == '1' then
  return record
end
local attempt = tostring((tonumber(h['attempts']) or 0) + 1)
redis.call('HSET', KEYS[1], 'attempts', attempt, unpack(ARGV, 5 + n))
redis.call('HSET', KEYS[1], 'status', 'dialing', 'dialing_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('SADD', KEYS[3], ARGV[4])
local changes = redis.call('RPUSH', KEYS[2], 'dialing ' .. ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
queue_webhook(KEYS[1], KEYS[4], KEYS[5], ARGV[4], changes, 'dialing', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
table.insert(record, 'claimed')
table.insert(record, attempt)
return record
"""

_CANCEL = _QUEUE_WEBHOOK + """
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return 'missing' end
if cur == 'completed' or cur == 'failed' or cur == 'cancelled' then return 'final:' .. cur end
if cur == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'cancelled_at', ARGV[1], 'ended_at', ARGV[1],
             'updated_at', ARGV[1], 'hangup_cause', 'ORIGINATOR_CANCEL', 'cancel_requested', '1')
  local n = redis.call('RPUSH', KEYS[2], 'cancelled ' .. ARGV[1])
  queue_webhook(KEYS[1], KEYS[4], KEYS[5], ARGV[2], n, 'cancelled', ARGV[3])
  return 'cancelled'
end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[2])
return 'cancelling:' .. cur
"""


# Keep one worker's place among those pacing a node (KEYS: node_workers,
# node_held; ARGV: worker, ttl, "held share"). Lapsed workers go first; the
# clock is Redis's, one for every worker. Returns {added, {worker, "held
# share", ...}}: added is 1 when this worker was not (or no longer) there.
_SHARE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  redis.call('ZREM', KEYS[1], gone)
  redis.call('HDEL', KEYS[2], gone)
end
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[2])) + 1)
return {added, redis.call('HGETALL', KEYS[2])}
"""


# The calls whose webhook deliveries are due, at most ARGV[1], each held for
# ARGV[2] seconds (KEYS: the outbox set).
_CLAIM_WEBHOOKS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids
"""

# A call's first delivery, if it is ARGV[2], is done (delivered or dropped).
# A call with none left leaves the outbox set; one with more stays held for
# ARGV[3] seconds. KEYS: the call's list, the outbox set; ARGV[1]: its id.
_WEBHOOK_DONE = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and ARGV[2] ~= '' and string.sub(head, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  redis.call('LPOP', KEYS[1])
end
local left = redis.call('LLEN', KEYS[1])
if left == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[3]), ARGV[1])
end
return left
"""

# A call's first delivery, if it is ARGV[2], becomes ARGV[3] (its attempts
# counted), and the call is due again in ARGV[4] seconds.
_WEBHOOK_LATER = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and string.sub(head, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then
  redis.call('LSET', KEYS[1], 0, ARGV[3])
end
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[4]), ARGV[1])
return 1
"""


# A worker's heartbeat (KEYS: its key, the workers set; ARGV: the worker's
# token, ttl in ms, its name). Returns 1 when the key was still there with
# this token: the heartbeat has not lapsed since the last renewal.
_BEAT = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if old == ARGV[1] then return 1 end
return 0
"""

# Whether a worker still owns a job (KEYS: its heartbeat, the job stream,
# the call's record; ARGV: its token, its name, the group, the job's
# unacknowledged entry or ''). Only while its heartbeat is its own: an
# entry it holds (the stream says who holds it), else a call whose record
# names it (``_ADOPT`` renames the worker of the calls it adopts).
_OWNS = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[4] ~= '' then
  local p = redis.call('XPENDING', KEYS[2], ARGV[3], ARGV[4], ARGV[4], 1)
  if p[1] and p[1][2] == ARGV[2] then return 1 end
  return 0
end
if redis.call('HGET', KEYS[3], 'worker') == ARGV[2] then return 1 end
return 0
"""

# Adopt a dead worker, only if its heartbeat is still gone: in the same
# step, so that a worker whose renewal has reached Redis is never adopted.
# KEYS: its heartbeat, the adopter lock, its live set, the job stream, the
# workers set. ARGV: me, lock seconds, group, count, the dead one, the call
# record key prefix. The calls whose record still names the dead one (or no
# one) name the adopter from now on; the entries the dead one held are the
# adopter's. Returns false (another adopts it, or it is alive), else {call
# ids, entries}.
_ADOPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local lock = redis.call('GET', KEYS[2])
if lock and lock ~= ARGV[1] then return false end
if not lock then redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2]) end
local calls = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  local key = ARGV[6] .. id
  local holder = redis.call('HGET', key, 'worker')
  if holder == ARGV[5] or (not holder and redis.call('EXISTS', key) == 1) then
    redis.call('HSET', key, 'worker', ARGV[1])
    table.insert(calls, id)
  end
end
redis.call('DEL', KEYS[3])
local ids = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[4], ARGV[3], '-', '+', tonumber(ARGV[4]), ARGV[5])) do
  table.insert(ids, p[1])
end
local entries = {}
if #ids > 0 then entries = redis.call('XCLAIM', KEYS[4], ARGV[3], ARGV[1], 0, unpack(ids)) end
if #redis.call('XPENDING', KEYS[4], ARGV[3], '-', '+', 1, ARGV[5]) == 0 then
  redis.call('SREM', KEYS[5], ARGV[5])
end
return {calls, entries}
"""

# Take idle pending entries (KEYS: the job stream, the workers set; ARGV:
# group, me, min idle ms, the heartbeat key prefix, then entry id and holder
# pairs): each one whose holder is me, or is no worker (not in the workers
# set) and has no heartbeat, tested in this same step. A dead worker's
# entries go with its calls, to the one worker that adopts it (``_ADOPT``):
# taken apart, a call and its entry would have two owners. XCLAIM tests the
# idle time again.
_CLAIM_STALE = """
local ids = {}
for i = 5, #ARGV, 2 do
  local holder = ARGV[i + 1]
  if holder == ARGV[2] or (redis.call('EXISTS', ARGV[4] .. holder) == 0
                           and redis.call('SISMEMBER', KEYS[2], holder) == 0) then
    table.insert(ids, ARGV[i])
  end
end
if #ids == 0 then return {} end
return redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), unpack(ids))
"""


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """XCLAIM's reply from a script: [[id, [field, value, ...]], ...]."""
    out = []
    for item in reply or []:
        if not item:
            continue  # an entry deleted meanwhile (older Redis versions)
        entry_id, flat = item[0], item[1] or []
        out.append((str(entry_id), dict(zip(flat[::2], flat[1::2]))))
    return out


# claim_stale reads at most this many pages of idle pending entries a round.
STALE_PAGES = 10


def _held_share(text: str) -> tuple[int, int]:
    """A worker's "<sessions held> <session share>" on a node (``_SHARE``)."""
    held, _, share = text.partition(" ")
    return int(held), int(share)


class JobQueue:
    """The Redis side of eslengine for one key prefix. Thread- and
    greenlet-safe as far as the redis client is."""

    def __init__(self, client: redis.Redis, keys: Keys, *, record_ttl: int = 7 * 24 * 3600,
                 batcher: Any = None, dead_letter_max: int = DEAD_LETTER_MAX) -> None:
        self.redis = client
        self.keys = keys
        self.record_ttl = record_ttl
        # Dead letters are trimmed to about this many (XADD MAXLEN ~: whole
        # stream nodes at a time, so a few more may stay).
        self.dead_letter_max = dead_letter_max
        # A redisbatch.CommandBatcher: the hot-path commands of many
        # greenlets then share pipelines (the worker uses one).
        self.batcher = batcher
        self._transition = client.register_script(_TRANSITION)
        self._record = client.register_script(_RECORD)
        self._cancel = client.register_script(_CANCEL)
        self._enqueue = client.register_script(_ENQUEUE)
        self._retry = client.register_script(_RETRY)
        self._due = client.register_script(_DUE)
        self._requeue = client.register_script(_REQUEUE)
        self._share = client.register_script(_SHARE)
        self._claim_webhooks = client.register_script(_CLAIM_WEBHOOKS)
        self._webhook_done = client.register_script(_WEBHOOK_DONE)
        self._take_attempt = client.register_script(_TAKE_ATTEMPT)
        self._unreadable = client.register_script(_UNREADABLE)
        self._webhook_later = client.register_script(_WEBHOOK_LATER)
        self._beat = client.register_script(_BEAT)
        self._owns = client.register_script(_OWNS)
        self._adopt = client.register_script(_ADOPT)
        self._claim_stale = client.register_script(_CLAIM_STALE)

    def use_batcher(self, batcher: Any) -> None:
        """Send the hot-path commands through ``batcher`` from now on."""
        for script in (self._transition, self._record, self._enqueue):
            batcher.add_script(script.sha, script.script)
        self.batcher = batcher

    @classmethod
    def from_config(cls, config: Config, client: redis.Redis | None = None) -> JobQueue:
        return cls(client or connect(config.redis_url), Keys(config.key_prefix), record_ttl=config.record_ttl,
                   dead_letter_max=config.dead_letter_max)

    # ------------------------------------------------------------ producers

    def enqueue(self, request: CallRequest, *, owner: str = "", client_id: str = "",
                idempotency: tuple[str, str] | None = None, account: str = "") -> str:
        """Store the call record (``queued``) and add the job, atomically.
        Raises ``JobExists`` when the id was already accepted. ``owner``: the
        id of the API key that placed it; ``client_id``: the id that key
        knows the call by, when it is not ``request.id`` (apikeys.scoped_id);
        ``account``: the account it is placed for (indexed under
        ``account_index``).

        ``idempotency``: (key digest, request digest) of an Idempotency-Key:
        when the owner used that key before (within the records' lifetime),
        nothing is queued and ``IdempotencyKeyUsed`` says which call it
        placed and with what request digest."""
        ts = time.time()
        now = now_iso(ts)
        document = request.dumps()
        score = int(ts * 1_000_000)
        args: list[str] = [str(self.record_ttl), document, now, str(score), str(score - self.record_ttl * 1_000_000),
                           request.id, idempotency[1] if idempotency else ""]
        extra = {"owner": owner} if owner else {}
        if account:
            extra["account"] = account
        if client_id and client_id != request.id:
            extra["client_id"] = client_id
        for key, value in {**_initial_record(request, now, document), **extra}.items():
            args += [key, value]
        keys = [self.keys.call(request.id), self.keys.history(request.id), self.keys.jobs, self.keys.index()]
        if owner:
            keys.append(self.keys.index(owner))
        if account:
            keys.append(self.keys.index(account_index(account)))
        if idempotency:
            keys.append(self.keys.idempotency(owner, idempotency[0]))
        with redis_errors("enqueue"):
            if self.batcher is not None:
                added = self.batcher.call("EVALSHA", self._enqueue.sha, len(keys), *keys, *args)
            else:
                added = self._enqueue(keys=keys, args=args)
        if isinstance(added, (str, bytes)):
            job_id, _, digest = (added.decode() if isinstance(added, bytes) else added).partition(" ")
            raise IdempotencyKeyUsed(job_id, digest)
        if not added:
            raise JobExists(request.id)
        return request.id

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

    def ping(self) -> bool:
        with redis_errors("ping"):
            return bool(self.redis.ping())

    # ------------------------------------------------------------ consumers

    def ensure_group(self) -> None:
        with redis_errors("create group"):
            try:
                self.redis.xgroup_create(self.keys.jobs, GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read(self, consumer: str, count: int, block_ms: int) -> list[tuple[str, dict[str, str]]]:
        """New entries for this consumer, waiting at most ``block_ms``."""
        with redis_errors("read jobs"):
            reply = self.redis.xreadgroup(GROUP, consumer, {self.keys.jobs: ">"}, count=count, block=block_ms)
        return [(entry_id, fields or {}) for _, entries in reply or [] for entry_id, fields in entries]

    def claim_stale(self, consumer: str, min_idle_ms: int, count: int = 100,
                    in_hand: Collection[str] = ()) -> list[tuple[str, dict[str, str]]]:
        """Entries read but not acknowledged within ``min_idle_ms`` that
        nobody is working on, now ``consumer``'s: those of a reader that is
        no worker (no heartbeat, not among the workers; a dead worker's go
        to the worker that adopts it, with its calls: ``adopt``), and
        ``consumer``'s own that are not ``in_hand`` (a job it gave up on when
        Redis failed). A live worker's entries stay its own however long they
        wait: its pacer may hold a job for a while (a node down, a share just
        cut), and it will still place it. Taking such an entry over would
        place the call twice."""
        with redis_errors("claim stale jobs"):
            held: list[tuple[str, str]] = []
            alive: dict[str, bool] = {}
            start = "-"
            # Page on past a live worker's entries, a few pages at most.
            for _ in range(STALE_PAGES):
                pending = self.redis.xpending_range(self.keys.jobs, GROUP, start, "+", count, idle=min_idle_ms)
                alive.update(self._alive({p["consumer"] for p in pending} - {consumer} - alive.keys()))
                held += [(p["message_id"], p["consumer"]) for p in pending
                         if (p["message_id"] not in in_hand if p["consumer"] == consumer else not alive[p["consumer"]])]
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
            args = [GROUP, consumer, str(min_idle_ms), self.keys.heartbeat("")]
            for entry_id, holder in held:
                args += [entry_id, holder]
            entries = _entries(self._claim_stale(keys=[self.keys.jobs, self.keys.workers], args=args))
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    def ack(self, entry_id: str) -> None:
        """The entry's outcome is known: acknowledge it and drop it from the stream."""
        if self.batcher is not None:
            with redis_errors("ack"):
                first = self.batcher.submit("XACK", self.keys.jobs, GROUP, entry_id)
                self.batcher.call("XDEL", self.keys.jobs, entry_id)
                self.batcher.wait(first)
            return
        with redis_errors("ack"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.xack(self.keys.jobs, GROUP, entry_id)
            pipe.xdel(self.keys.jobs, entry_id)
            pipe.execute()

    def dead_letter(self, entry_id: str, fields: Mapping[str, str], reason: str, job_id: str = "") -> None:
        """Move an entry to ``<p>:dead`` with its reason, atomically with the ack."""
        entry = dict(fields)
        entry.update(reason=reason, entry_id=entry_id, job_id=job_id, at=now_iso())
        with redis_errors("dead-letter"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.xadd(self.keys.dead, entry, maxlen=self.dead_letter_max, approximate=True)
            pipe.xack(self.keys.jobs, GROUP, entry_id)
            pipe.xdel(self.keys.jobs, entry_id)
            pipe.execute()

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
            made = self._unreadable(
                keys=[self.keys.call(job_id), self.keys.history(job_id), self.keys.index()],
                args=[str(self.record_ttl), now, str(int(ts * 1_000_000)),
                      str(int((ts - self.record_ttl) * 1_000_000)), job_id,
                      *[item for pair in fields.items() for item in pair]])
        return bool(made)

    def dead_letter_job(self, job_id: str, request_json: str, reason: str) -> None:
        """Record a job that keeps failing in ``<p>:dead`` (its call record stays)."""
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
            entries = self.redis.xrange(self.keys.dead, entry_id, entry_id)
        if not entries:
            raise ValueError("no dead letter %s" % entry_id)
        fields = entries[0][1]
        job_id = fields.get("job_id", "")
        now = now_iso()
        with redis_errors("requeue"):
            if job_id and self.redis.exists(self.keys.call(job_id)):
                result = self._requeue(keys=[self.keys.call(job_id), self.keys.history(job_id), self.keys.jobs],
                                       args=[now])
                if result != 1:
                    raise ValueError("job %s is not finished (%s)" % (job_id, result))
            elif "job" in fields:
                self.redis.xadd(self.keys.jobs, {JOB_FIELD: fields["job"]})
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
            return bool(self._retry(keys=keys, args=[repr(due), now_iso(), cause, now_iso(due), job_id]))

    def move_due_retries(self, now: float, limit: int = 200) -> int:
        with redis_errors("due retries"):
            return int(self._due(keys=[self.keys.retry, self.keys.jobs],
                                 args=[repr(now), str(limit), self.keys.prefix + ":call:"]))

    # ------------------------------------------------------------ workers

    def beat(self, worker: str, ttl: float, token: str = "1") -> bool:
        """This worker is alive for ``ttl`` more seconds from when Redis
        runs this. ``token`` is the value its heartbeat holds (one per
        worker process). Returns whether the heartbeat was still there with
        that token: False the first time, and after it lapsed (then another
        worker may have adopted this one's jobs meanwhile)."""
        with redis_errors("heartbeat"):
            return bool(self._beat(keys=[self.keys.heartbeat(worker), self.keys.workers],
                                   args=[token, str(int(ttl * 1000)), worker]))

    def owns(self, worker: str, token: str, job_id: str, entry_id: str = "") -> bool:
        """Whether ``worker`` (whose heartbeat holds ``token``) still owns the
        job: its stream entry ``entry_id``, while unacknowledged, is held by
        the worker; without one, the call's record names the worker.
        False when the heartbeat is not the worker's (lapsed)."""
        keys = [self.keys.heartbeat(worker), self.keys.jobs, self.keys.call(job_id)]
        with redis_errors("check owner"):
            return bool(self._owns(keys=keys, args=[token, worker, GROUP, entry_id]))

    def pace_node(self, node: str, worker: str, ttl: float, held: int,
                  share: int) -> tuple[bool, dict[str, tuple[int, int]]]:
        """Keep ``worker`` among the workers pacing ``node`` for ``ttl`` more
        seconds, saying it holds ``held`` sessions there under a session
        share of ``share``. Returns whether it was not there before (new, or
        lapsed), and every worker there, itself included, with what each
        said: (held, share)."""
        keys = [self.keys.node_workers(node), self.keys.node_held(node)]
        with redis_errors("pace node"):
            added, flat = self._share(keys=keys, args=[worker, repr(ttl), "%d %d" % (held, share)])
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

    def forget_worker(self, worker: str) -> None:
        with redis_errors("forget worker"):
            self.redis.delete(self.keys.heartbeat(worker))

    def dead_workers(self, me: str) -> list[str]:
        with redis_errors("list workers"):
            names = sorted(self.redis.smembers(self.keys.workers) - {me})
            alive = self._alive(names)
        return [n for n in names if not alive[n]]

    def _alive(self, names: Collection[str]) -> dict[str, bool]:
        """Whether each of ``names`` has a live heartbeat (one round trip)."""
        names = list(names)
        if not names:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.exists(self.keys.heartbeat(name))
        return {name: bool(up) for name, up in zip(names, pipe.execute())}

    def take_attempt(self, job_id: str, attempt: int, worker: str) -> bool:
        """Whether ``worker`` may place attempt ``attempt`` of a job it took
        over or found never run, in one step: not when the call is final
        (another follower finished it) or its record already counts that
        attempt; else the first worker to ask gets it (and may ask again),
        and any other gets False and must leave the job alone. Kept as long
        as the call record."""
        with redis_errors("take attempt"):
            return bool(self._take_attempt(keys=[self.keys.call(job_id), self.keys.placing(job_id, attempt)],
                                           args=[worker, str(attempt), str(self.record_ttl)]))

    def follow(self, worker: str, job_id: str) -> None:
        with redis_errors("follow"):
            if self.batcher is not None:
                self.batcher.call("SADD", self.keys.live(worker), job_id)
            else:
                self.redis.sadd(self.keys.live(worker), job_id)

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
        the same step as the taking: see ``lease``)."""
        keys = [self.keys.heartbeat(dead), self.keys.adopter(dead), self.keys.live(dead), self.keys.jobs,
                self.keys.workers]
        args = [me, str(ADOPT_HOLD), GROUP, str(count), dead, self.keys.call("")]
        with redis_errors("adopt"):
            reply = self._adopt(keys=keys, args=args)
        if not reply:
            return None
        calls_, entries = reply
        return sorted(str(c) for c in calls_), [(e, f) for e, f in _entries(entries) if f]

    # ------------------------------------------------------------ webhooks

    def claim_webhooks(self, limit: int, lease: float) -> list[str]:
        """Ids of at most ``limit`` calls whose webhook deliveries are due,
        each now held by the caller for ``lease`` seconds: until then no other
        worker takes it, after that any may (the holder died)."""
        with redis_errors("claim webhooks"):
            return list(self._claim_webhooks(keys=[self.keys.webhooks], args=[str(limit), repr(lease)]))

    def next_webhook(self, job_id: str) -> str | None:
        """A call's first pending delivery: ``<delivery id> <status> <queued
        at> <attempts>``."""
        with redis_errors("read webhook"):
            item = self.redis.lindex(self.keys.webhook(job_id), 0)
        return str(item) if item is not None else None

    def pending_webhooks(self, job_id: str) -> list[str]:
        with redis_errors("read webhooks"):
            return [str(item) for item in self.redis.lrange(self.keys.webhook(job_id), 0, -1)]

    def webhook_done(self, job_id: str, delivery_id: str, lease: float) -> int:
        """The call's first delivery, if it is ``delivery_id``, was delivered
        or dropped; the call stays held ``lease`` seconds more if it has
        others, and leaves the outbox if not. Returns how many are left."""
        with redis_errors("webhook done"):
            return int(self._webhook_done(keys=[self.keys.webhook(job_id), self.keys.webhooks],
                                          args=[job_id, delivery_id, repr(lease)]))

    def webhook_later(self, job_id: str, delivery_id: str, item: str, delay: float) -> None:
        """Try the call's first delivery (``delivery_id``, rewritten as
        ``item``) again in ``delay`` seconds; its later ones wait behind it."""
        with redis_errors("webhook retry"):
            self._webhook_later(keys=[self.keys.webhook(job_id), self.keys.webhooks],
                                args=[job_id, delivery_id, item, repr(delay)])

    def release_webhooks(self, job_ids: Collection[str]) -> None:
        """Give up the hold on these calls: any worker may deliver them now."""
        if job_ids:
            with redis_errors("release webhooks"):
                self.redis.zadd(self.keys.webhooks, {job_id: 0 for job_id in job_ids}, xx=True)

    def record(self, job_id: str) -> dict[str, str]:
        with redis_errors("read call"):
            return self.redis.hgetall(self.keys.call(job_id))  # type: ignore[no-any-return]

    # ------------------------------------------------------------ records

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
            if self.batcher is not None:
                result = self.batcher.call("EVALSHA", self._transition.sha, len(keys), *keys, *args)
            else:
                result = self._transition(keys=keys, args=args)
        return int(result) > 0

    def annotate(self, job_id: str, fields: Mapping[str, str]) -> None:
        """Store informational ``fields`` on an existing record without
        waiting for Redis when commands are batched: nothing the caller does
        next depends on them, and the batch keeps them in order with the
        call's later transitions. A failure is only logged."""
        if self.batcher is None:
            self.transition(job_id, fields=fields)
            return
        keys, args = self._transition_call(job_id, "", fields)
        waiter = self.batcher.submit("EVALSHA", self._transition.sha, len(keys), *keys, *args)
        waiter.rawlink(_log_failure)

    def _transition_call(self, job_id: str, status: str, fields: Mapping[str, str] | None,
                         keep_fields: bool = False, worker: str = "", ack: str = "") -> tuple[list[str], list[str]]:
        """The keys and arguments of the transition script. Keys: the record,
        its history, the worker's live set (touched only with ``worker``) and
        the job stream (an ``ack`` entry is acknowledged and deleted there).
        Arguments: status, now, ttl, keep_fields, the job id (the live set's
        member), live set used, ack entry, group, then field/value pairs. A
        status move of a call with a callback queues its webhook delivery
        (keys: the call's outbox list and the outbox set)."""
        if status and status not in calls.STATUSES:
            raise ValueError("unknown status %r" % status)
        live = "1" if worker and status else "0"
        args: list[str] = [status, now_iso(), str(self.record_ttl), "1" if keep_fields else "0", job_id, live,
                           ack, GROUP]
        for key, value in (fields or {}).items():
            args += [key, value]
        keys = [self.keys.call(job_id), self.keys.history(job_id), self.keys.live(worker), self.keys.jobs,
                self.keys.webhook(job_id), self.keys.webhooks]
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
        a request its own policy allows."""
        now = now_iso()
        initial: list[str] = []
        for key, value in _initial_record(request, now).items():
            initial += [key, value]
        args: list[str] = [str(self.record_ttl), now, str(len(initial)), request.id, *initial]
        for key, value in (dialing or {}).items():
            args += [key, value]
        keys = [self.keys.call(request.id), self.keys.history(request.id), self.keys.live(worker),
                self.keys.webhook(request.id), self.keys.webhooks, self.keys.index()]
        with redis_errors("read call"):
            if self.batcher is not None:
                flat = self.batcher.call("EVALSHA", self._record.sha, len(keys), *keys, *args)
            else:
                flat = self._record(keys=keys, args=args)
        return dict(zip(flat[::2], flat[1::2]))

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

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The call as the API shows it, or None."""
        with redis_errors("read call"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.keys.call(job_id))
            pipe.lrange(self.keys.history(job_id), 0, -1)
            record, history = pipe.execute()
        if not record:
            return None
        return present(record, history)

    def request_cancel(self, job_id: str) -> str:
        """``cancelled`` (it was still queued), ``cancelling:<status>`` (a
        worker will hang it up), ``final:<status>`` or ``missing``."""
        with redis_errors("cancel"):
            return str(
                self._cancel(
                    keys=[self.keys.call(job_id), self.keys.history(job_id), self.keys.cancel,
                          self.keys.webhook(job_id), self.keys.webhooks],
                    args=[now_iso(), job_id, str(self.record_ttl)],
                )
            )


# KEYS: the call record, the attempt's placing key. ARGV: worker, attempt, ttl.
_TAKE_ATTEMPT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == false or status == 'completed' or status == 'failed' or status == 'cancelled' then
  return 0
end
local owner = redis.call('GET', KEYS[2])
if owner then
  if owner == ARGV[1] then return 1 end
  return 0
end
if tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0') >= tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
return 1
"""


def _initial_record(request: CallRequest, now: str, document: str | None = None) -> dict[str, str]:
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


_PUBLIC = (
    "recording",
    "a_uuid",
    "b_uuid",
    "node",
    "hangup_cause",
    "a_hangup_cause",
    "b_hangup_cause",
    "ended_by",
    "failed_party",
    "error",
)
_TIMES = tuple(s + "_at" for s in calls.STATUSES) + ("created_at", "ended_at", "updated_at")


def present(record: Mapping[str, str], history: list[str]) -> dict[str, Any]:
    """A stored record → the JSON document ``GET /v1/calls/<id>`` returns."""
    request = json.loads(record.get("request") or "{}")
    call_id = record.get("client_id") or record.get("id")
    if record.get("client_id") and isinstance(request, dict):
        request["id"] = call_id  # the id its key knows it by
    out: dict[str, Any] = {
        "id": call_id,
        "status": record.get("status"),
        "a": request.get("a", record.get("a")),
        "b": request.get("b", record.get("b")),
        "caller_id_number": request.get("caller_id_number"),
        "caller_id_name": request.get("caller_id_name"),
        "timeout": request.get("timeout"),
        "variables": request.get("variables", {}),
        "request": request,
    }
    for key in _PUBLIC:
        if record.get(key):
            out[key] = record[key]
    if record.get("owner"):
        out["key"] = record["owner"]
    if record.get("account"):
        out["account"] = record["account"]
    out["attempts"] = int(record.get("attempts", "0"))
    out["timestamps"] = {k[:-3]: record[k] for k in _TIMES if record.get(k)}
    out["durations"] = _durations(record)
    out["history"] = [{"status": s, "at": at} for s, _, at in (h.partition(" ") for h in history)]
    return out


def _durations(record: Mapping[str, str]) -> dict[str, float]:
    def ts(key: str) -> float | None:
        value = record.get(key)
        if not value:
            return None
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

    out: dict[str, float] = {}
    dialing, answered, bridged, ended = ts("dialing_at"), ts("answered_at"), ts("bridged_at"), ts("ended_at")
    if dialing and (answered or ended):
        out["ring_seconds"] = round((answered or ended or 0) - dialing, 3)
    if bridged and ended:
        out["talk_seconds"] = round(ended - bridged, 3)
    return out


def account_index(account: str) -> str:
    """The owner name (``Keys.index``) an account's calls are indexed under."""
    return "account:" + account


def enqueue(client: redis.Redis, job: Mapping[str, Any], *, prefix: str | None = None,
            config: Config | None = None, owner: str = "", account: str = "") -> str:
    """Validate a job document and queue it; returns its id.

    The Python way for another app to place a call without the HTTP API:
    ``eslengine.enqueue(redis.Redis(), {"a": "+12025550123", "b": "user/1000"})``.
    The job passes the policy of ``config``, by default this process's
    ``ESLENGINE_*`` settings (``Config.from_env(os.environ)``, what the API
    and the worker read), and goes under ``prefix``, by default the
    config's. The worker checks it again with its own settings before it
    dials. Raises ``ValidationError`` for a bad job, ``ConfigError`` for a bad
    setting and ``QueueUnavailable`` when Redis cannot be reached.
    ``owner``: the id of a client API key (``eslengine keys list``) whose
    calls this one joins: that key then sees it over HTTP; with none, only
    operator and admin keys do. Its id is stored as given. ``account``: the
    account (``eslengine accounts list``) it is placed for: that account's
    keys see it.
    """
    if config is None:
        config = _environment_config(tuple(sorted((k, v) for k, v in os.environ.items()
                                                  if k.startswith("ESLENGINE_"))))
    if prefix is not None and prefix != config.key_prefix:
        config = dataclasses.replace(config, key_prefix=prefix)
    request = calls.parse_request(job, config)
    return JobQueue.from_config(config, client).enqueue(request, owner=owner, account=account)


@functools.lru_cache(maxsize=4)
def _environment_config(settings: tuple[tuple[str, str], ...]) -> Config:
    """The config of these ``ESLENGINE_*`` settings: read once, not on every
    job a producer queues."""
    return Config.from_env(dict(settings))

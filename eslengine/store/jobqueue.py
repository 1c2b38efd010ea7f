"""``JobQueue``: the Redis side of eslengine for one key prefix, composed of
the store's parts (``jobs``, ``records``, ``registry``, ``outbox``), and
``enqueue``, the Python way for another app to place a call.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import redis

from .. import calls, dnc
from ..calls import CallRequest
from ..config import CDR_MAX, DEAD_LETTER_MAX, Config
from ..errors import DoNotCall, IdempotencyKeyUsed
from . import shards
from .connection import connect, redis_errors
from .dnc import DncStore
from .executor import Executor
from .jobs import Jobs
from .keys import Keys
from .outbox import Outbox
from .overview import Overview
from .records import Records
from .registry import Registry


class JobQueue:
    """The Redis side of eslengine for one key prefix. Thread- and
    greenlet-safe as far as the redis client is. Each method is its part's:
    see ``jobs.Jobs``, ``records.Records``, ``registry.Registry`` and
    ``outbox.Outbox``; ``overview`` (``overview.Overview``) is what
    ``eslengine status`` reads."""

    def __init__(self, client: redis.Redis, keys: Keys, *, record_ttl: int = 7 * 24 * 3600,
                 batcher: Any = None, dead_letter_max: int = DEAD_LETTER_MAX, cdr_max: int = CDR_MAX,
                 wait_replicas: int = 0, wait_ms: int = 1000) -> None:
        self.redis: Any = client  # see Executor.redis
        self.keys = keys
        self.record_ttl = record_ttl
        # Dead letters are trimmed to about this many (XADD MAXLEN ~: whole
        # stream nodes at a time, so a few more may stay).
        self.dead_letter_max = dead_letter_max
        # wait_replicas: an accepted job, and a claim before its originate, are
        # on that many replicas too (Executor.script_replicated).
        self.run = Executor(client, wait_replicas=wait_replicas, wait_ms=wait_ms)
        if batcher is not None:
            self.run.use_batcher(batcher)
        self.records = Records(keys, self.run, record_ttl=record_ttl, cdr_max=cdr_max)
        self.registry = Registry(keys, self.run, record_ttl=record_ttl)
        self.jobs = Jobs(keys, self.run, self.registry, record_ttl=record_ttl, dead_letter_max=dead_letter_max)
        self.outbox = Outbox(keys, self.run)
        self.overview = Overview(keys, self.registry)
        self.dnc = DncStore(keys, self.run)

    @property
    def batcher(self) -> Any:
        """The redisbatch.CommandBatcher the hot-path commands share, or None."""
        return self.run.batcher

    def use_batcher(self, batcher: Any) -> None:
        """Send the hot-path commands through ``batcher`` from now on."""
        self.run.use_batcher(batcher)

    @classmethod
    def from_config(cls, config: Config, client: redis.Redis | None = None) -> JobQueue:
        """The queue of ``config``: a ``ShardedQueue`` when it has more than
        one shard (``ESLENGINE_REDIS_SHARDS``)."""
        client = client or connect(config.redis_url)
        if config.redis_shards > 1 and cls is JobQueue:
            return ShardedQueue.from_config(config, client)
        return cls(client, Keys(config.key_prefix), record_ttl=config.record_ttl,
                   dead_letter_max=config.dead_letter_max, cdr_max=config.cdr_max,
                   wait_replicas=config.redis_wait_replicas)

    def of_shard(self, shard: int) -> JobQueue:
        """The queue of one shard (this one's: shard 0, or the only one)."""
        if shard != self.keys.shard:
            raise ValueError("no shard %d here" % shard)
        return self

    @property
    def shards(self) -> list[JobQueue]:
        """One queue a shard, shard 0 first."""
        return [self]

    def ping(self) -> bool:
        with redis_errors("ping"):
            return bool(self.redis.ping())

    # ------------------------------------------------------------ jobs

    def enqueue(self, request: CallRequest, *, owner: str = "", client_id: str = "",
                idempotency: tuple[str, str] | None = None, account: str = "", lane: str = "") -> str:
        """``Jobs.enqueue``, once no number the call would ring is on the
        global do-not-call list or ``account``'s: else ``DoNotCall``
        (counted), and nothing is queued. ``lane``: by default the request's.

        In shard 0 the lists are read by the enqueue script itself, in the
        same step; in any other shard (``ESLENGINE_REDIS_SHARDS`` > 1) they
        are read just before it (``check_do_not_call``): a number listed
        between the two is still skipped when the call is dialed."""
        if self.keys.shard:
            # The do-not-call lists are the base shard's alone: a script of
            # another shard cannot read them, so they are read first here.
            self.check_do_not_call(request, account)
        try:
            return self.jobs.enqueue(request, owner=owner, client_id=client_id, idempotency=idempotency,
                                     account=account, lane=lane)
        except DoNotCall:
            self.dnc.count_refusal("api", account)
            raise

    def check_do_not_call(self, request: CallRequest, account: str = "") -> None:
        """``DoNotCall`` (counted) when a number ``request`` would ring is on
        the global do-not-call list or ``account``'s."""
        hit = self.dnc.refused(account, dnc.checked_numbers(request), time.time())
        if hit is not None:
            self.dnc.count_refusal("api", account)
            raise DoNotCall(hit.field, hit.number, hit.list)

    def ensure_group(self) -> None:
        self.jobs.ensure_group()

    def read(self, consumer: str, count: int, block_ms: int | None,
             lanes: tuple[str, ...] = ("interactive",)) -> list[tuple[str, dict[str, str]]]:
        return self.jobs.read(consumer, count, block_ms, lanes)

    def claim_stale(self, consumer: str, min_idle_ms: int, count: int = 100,
                    in_hand: Collection[str] = ()) -> list[tuple[str, dict[str, str]]]:
        return self.jobs.claim_stale(consumer, min_idle_ms, count, in_hand)

    def ack(self, entry_id: str) -> None:
        self.jobs.ack(entry_id)

    def dead_letter(self, entry_id: str, fields: Mapping[str, str], reason: str, job_id: str = "") -> None:
        self.jobs.dead_letter(entry_id, fields, reason, job_id)

    def dead_letter_job(self, job_id: str, request_json: str, reason: str) -> None:
        self.jobs.dead_letter_job(job_id, request_json, reason)

    def dead_letters(self, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        return self.jobs.dead_letters(count)

    def requeue_dead(self, entry_id: str) -> str:
        return self.jobs.requeue_dead(entry_id)

    def schedule_retry(self, job_id: str, due: float, cause: str) -> bool:
        return self.jobs.schedule_retry(job_id, due, cause)

    def move_due_retries(self, now: float, limit: int = 200) -> int:
        return self.jobs.move_due_retries(now, limit)

    # ------------------------------------------------------------ records

    def transition(
        self, job_id: str, status: str = "", fields: Mapping[str, str] | None = None, *,
        keep_fields: bool = False, worker: str = "", ack: str = "",
    ) -> bool:
        return self.records.transition(job_id, status, fields, keep_fields=keep_fields, worker=worker, ack=ack)

    def annotate(self, job_id: str, fields: Mapping[str, str]) -> None:
        self.records.annotate(job_id, fields)

    def claim(self, request: CallRequest, dialing: Mapping[str, str] | None = None, *,
              worker: str = "") -> dict[str, str]:
        return self.records.claim(request, dialing, worker=worker)

    def record_unreadable(self, job_id: str, raw: str, reason: str) -> bool:
        return self.records.record_unreadable(job_id, raw, reason)

    def record(self, job_id: str) -> dict[str, str]:
        return self.records.record(job_id)

    def read_call(self, job_id: str) -> tuple[dict[str, str], list[str]] | None:
        return self.records.read(job_id)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The call as ``GET /v1/calls/<id>`` shows it (``http.present``), or None."""
        from ..http.present import present

        found = self.records.read(job_id)
        return present(*found) if found is not None else None

    def owners(self, job_ids: Sequence[str]) -> list[str | None]:
        return self.records.owners(job_ids)

    def holders(self, job_ids: Sequence[str]) -> list[tuple[str, str] | None]:
        return self.records.holders(job_ids)

    def request_cancel(self, job_id: str, cause: str = "ORIGINATOR_CANCEL", *, queued_only: bool = False) -> str:
        return self.records.request_cancel(job_id, cause, queued_only=queued_only)

    def list_calls(self, owner: str = "", *, newest: float | None = None, oldest: float | None = None,
                   after: tuple[int, str] | None = None, count: int = 200) -> list[tuple[int, str, dict[str, str]]]:
        return self.records.list_calls(owner, newest=newest, oldest=oldest, after=after, count=count)

    def idempotency_used(self, owner: str, digest: str) -> tuple[str, str] | None:
        return self.records.idempotency_used(owner, digest)

    def call_key(self, job_id: str) -> str:
        """The key of the call's record (``Keys.call``), in its shard."""
        return self.keys.call(job_id)

    # ------------------------------------------------------------ workers

    def beat(self, worker: str, ttl: float, token: str = "1") -> bool:
        return self.registry.beat(worker, ttl, token)

    def owns(self, worker: str, token: str, job_id: str, entry_id: str = "") -> bool:
        return self.registry.owns(worker, token, job_id, entry_id)

    def forget_worker(self, worker: str) -> None:
        self.registry.forget_worker(worker)

    def dead_workers(self, me: str) -> list[str]:
        return self.registry.dead_workers(me)

    def follow(self, worker: str, job_id: str) -> None:
        self.registry.follow(worker, job_id)

    def unfollow(self, worker: str, job_id: str) -> None:
        self.registry.unfollow(worker, job_id)

    def adopt(self, dead: str, me: str,
              count: int = 1000) -> tuple[list[str], list[tuple[str, dict[str, str]]]] | None:
        return self.registry.adopt(dead, me, count)

    def take_attempt(self, job_id: str, attempt: int, worker: str) -> bool:
        return self.registry.take_attempt(job_id, attempt, worker)

    def pace_node(self, node: str, worker: str, ttl: float, held: int,
                  share: int) -> tuple[bool, dict[str, tuple[int, int]]]:
        return self.registry.pace_node(node, worker, ttl, held, share)

    def node_pacers(self, node: str) -> dict[str, tuple[int, int, float]]:
        return self.registry.node_pacers(node)

    def leave_node(self, node: str, worker: str) -> None:
        self.registry.leave_node(node, worker)

    # ------------------------------------------------------------ webhooks

    def claim_webhooks(self, limit: int, lease: float) -> list[str]:
        return self.outbox.claim_webhooks(limit, lease)

    def next_webhook(self, job_id: str) -> str | None:
        return self.outbox.next_webhook(job_id)

    def pending_webhooks(self, job_id: str) -> list[str]:
        return self.outbox.pending_webhooks(job_id)

    def webhook_done(self, job_id: str, delivery_id: str, lease: float) -> int:
        return self.outbox.webhook_done(job_id, delivery_id, lease)

    def webhook_later(self, job_id: str, delivery_id: str, item: str, delay: float) -> None:
        self.outbox.webhook_later(job_id, delivery_id, item, delay)

    def release_webhooks(self, job_ids: Collection[str]) -> None:
        self.outbox.release_webhooks(job_ids)


class ShardedQueue(JobQueue):
    """The queue of several shards (``store.shards``). As a ``JobQueue`` it
    is shard 0's: what is not a call's (accounts, keys, campaigns, node
    pacing, ``keys``, ``redis``) is there. The calls' own methods go to the
    call's shard (``shard_of``; a call not found there is looked for in
    shard 0, where jobs pushed straight into its stream and campaign calls
    are); listings merge every shard's. A worker works each shard through
    its own queue (``of_shard``; shard 0's too is a plain ``JobQueue``)."""

    def __init__(self, client: redis.Redis, keys: Keys, *, shards: int, **kwargs: Any) -> None:
        super().__init__(client, keys, **kwargs)
        # Shard 0's queue too is a plain JobQueue: what a worker of shard 0
        # asks of it is never routed elsewhere.
        self._shards = [JobQueue(client, keys.of_shard(n), **kwargs) for n in range(shards)]
        # The do-not-call lists and counts are the base shard's keys: a
        # shard's batcher writes to its own slot's primary only, so another
        # shard reads them on a store of its own that is never batched (each
        # a round trip of its own; shard 0's batcher may stop first when a
        # process's workers drain).
        for queue in self._shards[1:]:
            queue.dnc = DncStore(queue.keys, Executor(client))

    @classmethod
    def from_config(cls, config: Config, client: redis.Redis | None = None) -> ShardedQueue:
        return cls(client or connect(config.redis_url), Keys(config.key_prefix), shards=config.redis_shards,
                   record_ttl=config.record_ttl, dead_letter_max=config.dead_letter_max, cdr_max=config.cdr_max,
                   wait_replicas=config.redis_wait_replicas)

    @property
    def shards(self) -> list[JobQueue]:
        return list(self._shards)

    def of_shard(self, shard: int) -> JobQueue:
        return self._shards[shard]

    def _own(self, job_id: str) -> JobQueue:
        return self._shards[shards.shard_of(job_id, len(self._shards))]

    def _home(self, job_id: str) -> JobQueue:
        """The shard holding the call's record: its own, else shard 0 when
        it is there; its own when neither has it."""
        order = shards.lookup_order(job_id, len(self._shards))
        if len(order) > 1:
            with redis_errors("read call"):
                if not self._shards[order[0]].redis.exists(self._shards[order[0]].keys.call(job_id)) \
                        and self.redis.exists(self.keys.call(job_id)):
                    return self._shards[0]
        return self._shards[order[0]]

    def enqueue(self, request: CallRequest, *, owner: str = "", client_id: str = "",
                idempotency: tuple[str, str] | None = None, account: str = "", lane: str = "") -> str:
        """Into the call's shard, in ``lane``'s stream there. An Idempotency-Key a request with another
        id used in another shard is found here first (two such requests at
        the same moment may both be queued: the one case left open)."""
        if idempotency is not None:
            for queue in self._shards:
                used = queue.idempotency_used(owner, idempotency[0])
                if used is not None:
                    raise IdempotencyKeyUsed(*used)
        return self._own(request.id).enqueue(request, owner=owner, client_id=client_id, idempotency=idempotency,
                                             account=account, lane=lane)

    def idempotency_used(self, owner: str, digest: str) -> tuple[str, str] | None:
        for queue in self._shards:
            used = queue.idempotency_used(owner, digest)
            if used is not None:
                return used
        return None

    def call_key(self, job_id: str) -> str:
        return self._own(job_id).keys.call(job_id)

    def record(self, job_id: str) -> dict[str, str]:
        return self._home(job_id).record(job_id)

    def read_call(self, job_id: str) -> tuple[dict[str, str], list[str]] | None:
        for shard in shards.lookup_order(job_id, len(self._shards)):
            found = self._shards[shard].read_call(job_id)
            if found is not None:
                return found
        return None

    def get(self, job_id: str) -> dict[str, Any] | None:
        from ..http.present import present

        found = self.read_call(job_id)
        return present(*found) if found is not None else None

    def request_cancel(self, job_id: str, cause: str = "ORIGINATOR_CANCEL", *, queued_only: bool = False) -> str:
        return self._home(job_id).request_cancel(job_id, cause, queued_only=queued_only)

    def owners(self, job_ids: Sequence[str]) -> list[str | None]:
        return [None if h is None else h[0] for h in self.holders(job_ids)]

    def holders(self, job_ids: Sequence[str]) -> list[tuple[str, str] | None]:
        found: list[tuple[str, str] | None] = [None] * len(job_ids)
        for shard, positions in shards.by_shard(job_ids, len(self._shards)).items():
            for position, holder in zip(positions, self._shards[shard].holders([job_ids[p] for p in positions])):
                found[position] = holder
        missing = [p for p, h in enumerate(found) if h is None and shards.shard_of(job_ids[p], len(self._shards))]
        if missing:
            for position, holder in zip(missing, self._shards[0].holders([job_ids[p] for p in missing])):
                found[position] = holder
        return found

    def list_calls(self, owner: str = "", *, newest: float | None = None, oldest: float | None = None,
                   after: tuple[int, str] | None = None, count: int = 200) -> list[tuple[int, str, dict[str, str]]]:
        """Every shard's listing merged: the same (score, id) cursor goes on
        in every shard, so cursors are the same as with one shard."""
        listings = [queue.records.list_calls(owner, newest=newest, oldest=oldest, after=after, count=count)
                    for queue in self._shards]
        return shards.merge_newest_first(listings, count)

    def dead_letters(self, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Every shard's, each id as ``shards.qualify_entry`` writes it."""
        return [(shards.qualify_entry(n, entry_id), fields)
                for n, queue in enumerate(self._shards) for entry_id, fields in queue.jobs.dead_letters(count)][:count]

    def requeue_dead(self, entry_id: str) -> str:
        shard, entry = shards.parse_entry(entry_id, len(self._shards))
        return self._shards[shard].jobs.requeue_dead(entry)


def enqueue(client: redis.Redis, job: Mapping[str, Any], *, prefix: str | None = None,
            config: Config | None = None, owner: str = "", account: str = "", lane: str = "") -> str:
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
    keys see it. ``lane``: ``"bulk"`` queues it in the bulk lane, which
    workers serve only with the room interactive calls leave (by default
    the job's own ``lane``, else interactive). A number on a
    do-not-call list raises ``DoNotCall`` (a ``ValidationError``).
    """
    if config is None:
        config = _environment_config(tuple(sorted((k, v) for k, v in os.environ.items()
                                                  if k.startswith("ESLENGINE_"))))
    if prefix is not None and prefix != config.key_prefix:
        config = dataclasses.replace(config, key_prefix=prefix)
    request = calls.parse_request(job, config)
    return JobQueue.from_config(config, client).enqueue(request, owner=owner, account=account, lane=lane)


@functools.lru_cache(maxsize=4)
def _environment_config(settings: tuple[tuple[str, str], ...]) -> Config:
    """The config of these ``ESLENGINE_*`` settings: read once, not on every
    job a producer queues."""
    return Config.from_env(dict(settings))

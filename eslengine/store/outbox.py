"""The webhook delivery queue: what ``webhooks.py`` delivers.

``Keys.webhooks`` is the outbox set: the ids of calls with deliveries
pending, scored by when the next attempt is due (Redis's clock); while a
worker delivers one, by when its lease on it ends. ``Keys.webhook(id)`` is
that call's list of pending deliveries, in order, each ``<delivery id>
<status> <queued at> <attempts>``. The status-changing scripts queue them
(``_queue_webhook.lua``). A delivery's id is ``<call id>.<n>``, the status
change's place in the call's history: unique while the record lives, and
the same for every attempt.
"""

from __future__ import annotations

from collections.abc import Collection

from .connection import redis_errors
from .executor import Executor
from .keys import Keys


class Outbox:
    """The webhook deliveries pending under one prefix."""

    def __init__(self, keys: Keys, run: Executor) -> None:
        self.keys = keys
        self.run = run
        self.redis = run.redis

    def claim_webhooks(self, limit: int, lease: float) -> list[str]:
        """Ids of at most ``limit`` calls whose webhook deliveries are due,
        each now held by the caller for ``lease`` seconds: until then no other
        worker takes it, after that any may (the holder died)."""
        with redis_errors("claim webhooks"):
            return list(self.run.script("claim_webhooks", [self.keys.webhooks], [str(limit), repr(lease)]))

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
            return int(self.run.script("webhook_done", [self.keys.webhook(job_id), self.keys.webhooks],
                                       [job_id, delivery_id, repr(lease)]))

    def webhook_later(self, job_id: str, delivery_id: str, item: str, delay: float) -> None:
        """Try the call's first delivery (``delivery_id``, rewritten as
        ``item``) again in ``delay`` seconds; its later ones wait behind it."""
        with redis_errors("webhook retry"):
            self.run.script("webhook_later", [self.keys.webhook(job_id), self.keys.webhooks],
                            [job_id, delivery_id, item, repr(delay)])

    def release_webhooks(self, job_ids: Collection[str]) -> None:
        """Give up the hold on these calls: any worker may deliver them now."""
        if job_ids:
            with redis_errors("release webhooks"):
                self.redis.zadd(self.keys.webhooks, {job_id: 0 for job_id in job_ids}, xx=True)

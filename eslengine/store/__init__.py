"""Jobs, call records, workers and webhook deliveries in Redis.

One concept a module:

``keys``        every key name (``Keys``), under a ``{<prefix>}`` hash tag
``lua``         the Lua scripts of ``scripts/``, read and registered once
``executor``    runs a script or a command, through the batcher or directly
``connection``  the client (``connect``) and ``redis_errors``, the one place
                redis-py's errors become ``QueueUnavailable``
``clock``       ``now_iso``: times as records store them
``jobs``        the job streams (interactive and bulk lanes): enqueue, read, take
                over, ack, dead letters, retries
``dnc``         the do-not-call lists: add, bulk import, remove, check, list
``records``     call records: transition, claim, read, cancel, listing, idempotency
``registry``    workers: heartbeats, ownership, adoption, node shares
``outbox``      the webhook delivery queue
``overview``    what ``eslengine status`` reads, and each worker's info
``shards``      which shard a call's keys are in (``shard_of``), merged listings
``jobqueue``    ``JobQueue``, the parts together, ``ShardedQueue``, and ``enqueue``

Nothing here talks to FreeSWITCH or HTTP.
"""

from __future__ import annotations

from .clock import now_iso
from .connection import connect, redis_errors
from .jobqueue import JobQueue, ShardedQueue, enqueue
from .jobs import STALE_PAGES
from .keys import GROUP, JOB_FIELD, Keys, account_index
from .registry import ADOPT_HOLD

__all__ = ["ADOPT_HOLD", "GROUP", "JOB_FIELD", "STALE_PAGES", "JobQueue", "Keys", "ShardedQueue", "account_index", "connect",
           "enqueue", "now_iso", "redis_errors"]

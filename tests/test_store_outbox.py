"""The webhook delivery queue (eslengine.store.outbox) against a real redis-server."""

from __future__ import annotations

import time

from eslengine.calls import parse_request
from eslengine.config import Config
from eslengine.store import JobQueue

CONFIG = Config(webhook_allow=(r"http://127\.0\.0\.1:[0-9]+/hook",), webhook_allow_networks=("127.0.0.1/32",),
                allow_unvalidated_numbers=True)


def _placed(queue: JobQueue) -> str:
    request = parse_request({"a": "+15551230001", "b": "user/1000", "callback_url": "http://127.0.0.1:9/hook"},
                            CONFIG)
    queue.enqueue(request)
    return request.id


def test_a_status_move_queues_its_delivery_and_the_call_is_due(queue: JobQueue) -> None:
    job_id = _placed(queue)
    assert queue.pending_webhooks(job_id) == []  # queued is where a call starts, not a move
    queue.transition(job_id, "dialing")
    queue.transition(job_id, "failed")
    first, second = queue.pending_webhooks(job_id)
    assert first.startswith("%s.2 dialing " % job_id) and first.endswith(" 0")
    assert second.startswith("%s.3 failed " % job_id)
    assert queue.next_webhook(job_id) == first
    assert queue.claim_webhooks(10, 30.0) == [job_id]
    assert queue.claim_webhooks(10, 30.0) == []  # held by the first taker
    queue.release_webhooks([job_id])
    assert queue.claim_webhooks(10, 30.0) == [job_id]


def test_done_and_later_act_on_the_first_delivery_only(queue: JobQueue) -> None:
    job_id = _placed(queue)
    queue.transition(job_id, "dialing")
    queue.transition(job_id, "completed")
    first, second = queue.pending_webhooks(job_id)
    assert queue.webhook_done(job_id, second.split()[0], 30.0) == 2  # not the first: kept
    later = first.rsplit(" ", 1)[0] + " 1"
    queue.webhook_later(job_id, first.split()[0], later, 0.0)
    assert queue.pending_webhooks(job_id) == [later, second]
    time.sleep(0.01)
    assert queue.claim_webhooks(10, 30.0) == [job_id]
    assert queue.webhook_done(job_id, first.split()[0], 30.0) == 1
    assert queue.claim_webhooks(10, 30.0) == []  # still held for the one left
    assert queue.webhook_done(job_id, second.split()[0], 30.0) == 0
    assert queue.redis.zscore(queue.keys.webhooks, job_id) is None

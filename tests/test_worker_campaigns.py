"""The worker's check before it dials a campaign's call
(eslengine.worker.campaigns), against the suite's redis-server."""

from __future__ import annotations

from eslengine.store import JobQueue
from eslengine.worker.campaigns import FRESH, CampaignGate
from tests.conftest import call_request


def test_a_running_campaign_is_read_again_after_a_while_a_stopped_one_every_time(queue: JobQueue) -> None:
    now = [100.0]
    gate = CampaignGate(queue, clock=lambda: now[0])
    key = queue.keys.campaign("c1")
    request = call_request(metadata={"campaign": "c1", "contact": "r1", "attempt": 1})
    queue.redis.hset(key, "state", "running")
    assert gate.stopped(request) is None
    queue.redis.hset(key, "state", "paused")
    assert gate.stopped(request) is None  # trusted for FRESH seconds
    now[0] += FRESH + 0.01
    assert gate.stopped(request) == "CAMPAIGN_PAUSED"
    queue.redis.hset(key, "state", "running")
    assert gate.stopped(request) is None  # resumed: read again at once
    queue.redis.hset(key, "state", "cancelled")
    now[0] += FRESH + 0.01
    assert gate.stopped(request) == "CAMPAIGN_CANCELLED"
    assert gate.stopped(call_request()) is None  # not a campaign's call
    assert gate.stopped(call_request(metadata={"campaign": 7})) is None

"""Workers (eslengine.store.registry) against a real redis-server."""

from __future__ import annotations

import time
import uuid

import redis

from eslengine.store import JobQueue
from tests.conftest import call_request


def test_workers_keep_their_places_on_a_node_until_they_lapse_or_leave(queue: JobQueue,
                                                                      redis_client: redis.Redis) -> None:
    assert queue.pace_node("fs1", "w1", 5.0, 0, 1000) == (True, {"w1": (0, 1000)})
    assert queue.pace_node("fs1", "w1", 5.0, 12, 1000) == (False, {"w1": (12, 1000)})
    assert queue.pace_node("fs1", "w2", 0.3, 0, 0) == (True, {"w1": (12, 1000), "w2": (0, 0)})
    assert queue.pace_node("fs2", "w2", 5.0, 1, 30) == (True, {"w2": (1, 30)})  # nodes apart
    time.sleep(0.4)
    # w2's place on fs1 lapsed: gone, with what it said.
    assert queue.pace_node("fs1", "w1", 5.0, 12, 500) == (False, {"w1": (12, 500)})
    assert queue.pace_node("fs1", "w2", 5.0, 0, 0)[0] is True  # back: new again
    queue.leave_node("fs1", "w2")
    assert queue.pace_node("fs1", "w1", 5.0, 12, 1000) == (False, {"w1": (12, 1000)})
    assert 0 < redis_client.ttl(queue.keys.node_workers("fs1")) <= 6
    assert 0 < redis_client.ttl(queue.keys.node_held("fs1")) <= 6


def test_one_worker_adopts_a_dead_one(queue: JobQueue, redis_client: redis.Redis) -> None:
    queue.ensure_group()
    redis_client.sadd(queue.keys.workers, "dead")
    redis_client.sadd(queue.keys.live("dead"), "job-1", "job-2", "job-3", "job-4")
    redis_client.hset(queue.keys.call("job-1"), mapping={"status": "bridged", "worker": "dead"})
    redis_client.hset(queue.keys.call("job-2"), mapping={"status": "dialing"})
    redis_client.hset(queue.keys.call("job-3"), mapping={"status": "bridged", "worker": "w3"})
    assert queue.adopt("dead", "w1") == (["job-1", "job-2"], [])
    # The adopted calls' records name their new worker; a call another
    # worker holds (job-3) and one with no record (job-4) are left alone.
    assert [redis_client.hget(queue.keys.call(j), "worker") for j in ("job-1", "job-2", "job-3")] == ["w1", "w1",
                                                                                                     "w3"]
    assert queue.adopt("dead", "w2") is None  # w1 holds it
    assert queue.adopt("dead", "w1") == ([], [])  # asking again: nothing left
    assert 0 < redis_client.ttl(queue.keys.adopter("dead")) <= 60


def test_a_worker_whose_heartbeat_is_back_is_not_adopted(queue: JobQueue, redis_client: redis.Redis) -> None:
    queue.ensure_group()
    queue.enqueue(call_request())
    (entry_id, _), = queue.read("slow", 10, 10)
    redis_client.sadd(queue.keys.live("slow"), "job-1")
    redis_client.hset(queue.keys.call("job-1"), mapping={"status": "bridged", "worker": "slow"})
    # Listed as dead, then its renewal reaches Redis before the adoption.
    assert queue.dead_workers("w1") == []
    redis_client.sadd(queue.keys.workers, "slow")
    assert queue.dead_workers("w1") == ["slow"]
    assert queue.beat("slow", 60, "token-1") is False  # first renewal: nothing to continue
    assert queue.adopt("slow", "w1") is None
    assert queue.claim_stale("w1", min_idle_ms=0) == []
    assert queue.owns("slow", "token-1", "job-1") and queue.owns("slow", "token-1", "", entry_id)
    assert queue.beat("slow", 60, "token-1") is True  # unbroken
    # It lapses: adopted, entry and call; it owns neither any more.
    queue.forget_worker("slow")
    calls, entries = queue.adopt("slow", "w1")  # type: ignore[misc]
    assert calls == ["job-1"] and [e for e, _ in entries] == [entry_id]
    assert queue.beat("slow", 60, "token-1") is False  # back, after a lapse
    assert not queue.owns("slow", "token-1", "job-1")
    assert not queue.owns("slow", "token-1", "", entry_id)
    assert queue.owns("w1", "", "job-1") is False  # w1 has no heartbeat with that token
    queue.beat("w1", 60, "token-w1")
    assert queue.owns("w1", "token-w1", "job-1") and queue.owns("w1", "token-w1", "", entry_id)
    assert not queue.owns("w1", "other-process", "job-1")  # another process under the same name
    assert 5000 < redis_client.pttl(queue.keys.heartbeat("w1")) <= 60_000


def test_one_worker_places_an_attempt_again_and_none_once_the_call_is_over(queue: JobQueue) -> None:
    job = queue.enqueue(call_request())  # type: ignore[arg-type]
    assert not queue.take_attempt(str(uuid.uuid4()), 2, "w1")  # no record
    queue.transition(job, "dialing", {"attempts": "1"})
    assert not queue.take_attempt(job, 1, "w1")  # already counted: someone placed it
    assert queue.take_attempt(job, 2, "w1")
    assert queue.take_attempt(job, 2, "w1")  # and may ask again
    assert not queue.take_attempt(job, 2, "w2")
    queue.transition(job, "dialing", {"attempts": "2"}, keep_fields=True)
    assert not queue.take_attempt(job, 2, "w2") and queue.take_attempt(job, 3, "w2")
    queue.transition(job, "failed", {"hangup_cause": "USER_BUSY"})
    assert not queue.take_attempt(job, 4, "w1")

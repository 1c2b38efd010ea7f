"""The interactive and bulk lanes of the job streams (eslengine.store.jobs)
against a real redis-server."""

from __future__ import annotations

import json
import time

import pytest
import redis

from eslengine import enqueue
from eslengine.store import GROUP, JobQueue, Keys
from eslengine.store.keys import lane_entry, lane_of
from tests.conftest import STORE_CONFIG, call_request


def test_lane_entry_ids_name_their_stream() -> None:
    keys = Keys("p")
    assert keys.stream("interactive") == "{p}:jobs" and keys.stream("bulk") == "{p}:jobs:bulk"
    assert lane_entry("interactive", "1-0") == "1-0"
    assert lane_entry("bulk", "1-0") == "bulk:1-0"
    assert keys.entry_of("1-0") == ("{p}:jobs", "1-0")
    assert keys.entry_of("bulk:1-0") == ("{p}:jobs:bulk", "1-0")
    assert keys.entry_of("") == ("{p}:jobs", "")
    assert [lane_of(e) for e in ("1-0", "bulk:1-0", "")] == ["interactive", "bulk", "interactive"]


def test_a_job_goes_to_the_stream_of_its_lane(queue: JobQueue) -> None:
    first = queue.enqueue(call_request())
    second = queue.enqueue(call_request(lane="bulk"))
    third = queue.enqueue(call_request(), lane="bulk")
    assert [json.loads(f["job"])["id"] for _, f in queue.redis.xrange(queue.keys.jobs)] == [first]
    assert [json.loads(f["job"])["id"] for _, f in queue.redis.xrange(queue.keys.jobs_bulk)] == [second, third]
    assert queue.redis.hget(queue.keys.call(first), "lane") is None
    assert queue.redis.hget(queue.keys.call(third), "lane") == "bulk"
    with pytest.raises(ValueError):
        queue.enqueue(call_request(), lane="later")


def test_the_public_enqueue_takes_a_lane(redis_client: redis.Redis, key_prefix: str) -> None:
    job = enqueue(redis_client, {"a": "+15551230001", "b": "user/1000"}, config=STORE_CONFIG, prefix=key_prefix,
                  lane="bulk")
    (_, fields), = redis_client.xrange(Keys(key_prefix).jobs_bulk)
    assert json.loads(fields["job"])["id"] == job


def test_each_lane_is_read_acked_and_dead_lettered_through_its_own_stream(queue: JobQueue) -> None:
    queue.ensure_group()
    queue.enqueue(call_request())
    queue.enqueue(call_request(lane="bulk"))
    queue.enqueue(call_request(lane="bulk"))
    (interactive, _), = queue.read("w1", 10, None)
    bulk = queue.read("w1", 10, None, ("bulk",))
    assert not interactive.startswith("bulk:") and [lane_of(e) for e, _ in bulk] == ["bulk", "bulk"]
    # The two streams' ids may be equal; the lane-qualified ones never are.
    assert queue.redis.xpending(queue.keys.jobs_bulk, GROUP)["pending"] == 2
    queue.ack(bulk[0][0])
    assert queue.redis.xpending(queue.keys.jobs_bulk, GROUP)["pending"] == 1
    assert queue.redis.xpending(queue.keys.jobs, GROUP)["pending"] == 1
    queue.dead_letter(bulk[1][0], bulk[1][1], "invalid job: test")
    assert queue.redis.xlen(queue.keys.jobs_bulk) == 0
    queue.transition(json.loads(queue.redis.xrange(queue.keys.jobs)[0][1]["job"])["id"], "dialing",
                     ack=interactive)
    assert queue.redis.xlen(queue.keys.jobs) == 0


def test_a_blocking_read_of_both_lanes_takes_whichever_comes(queue: JobQueue) -> None:
    queue.ensure_group()
    queue.enqueue(call_request(lane="bulk"))
    got = queue.read("w1", 1, 50, ("interactive", "bulk"))
    assert [lane_of(e) for e, _ in got] == ["bulk"]
    assert queue.read("w1", 1, 50, ("interactive", "bulk")) == []


def test_a_retry_goes_back_to_the_lane_it_came_from(queue: JobQueue) -> None:
    queue.ensure_group()
    bulk = queue.enqueue(call_request(lane="bulk"))
    interactive = queue.enqueue(call_request())
    queue.read("w1", 10, None, ("interactive", "bulk"))
    for job in (bulk, interactive):
        queue.transition(job, "dialing")
        assert queue.schedule_retry(job, time.time() - 1, "NO_ANSWER")
    assert queue.move_due_retries(time.time()) == 2
    (_, fields), = queue.redis.xrange(queue.keys.jobs_bulk, "(0-0", "+")[-1:]
    assert json.loads(fields["job"])["id"] == bulk
    assert json.loads(queue.redis.xrange(queue.keys.jobs)[-1][1]["job"])["id"] == interactive


def test_a_requeued_dead_letter_goes_back_to_its_lane(queue: JobQueue) -> None:
    queue.ensure_group()
    job = queue.enqueue(call_request(lane="bulk"))
    (entry_id, fields), = queue.read("w1", 10, None, ("bulk",))
    queue.transition(job, "failed", {"hangup_cause": "CALL_REJECTED"})
    queue.dead_letter(entry_id, fields, "invalid job: test", job_id=job)
    (dead_id, _), = queue.dead_letters()
    assert queue.requeue_dead(dead_id) == job
    assert queue.redis.xlen(queue.keys.jobs_bulk) == 1 and queue.redis.xlen(queue.keys.jobs) == 0
    # A dead letter of a bare entry (no record) goes back to the stream it was read from.
    queue.redis.xadd(queue.keys.jobs_bulk, {"job": '{"a": 1}'})
    (bare_id, bare), = [(e, f) for e, f in queue.read("w1", 10, None, ("bulk",)) if f["job"] == '{"a": 1}']
    queue.dead_letter(bare_id, bare, "invalid job: a: must be ...")
    (dead_bare, _), = [(d, f) for d, f in queue.dead_letters() if f.get("job") == '{"a": 1}']
    queue.requeue_dead(dead_bare)
    assert [f["job"] for _, f in queue.redis.xrange(queue.keys.jobs_bulk)][-1] == '{"a": 1}'
    assert queue.redis.xlen(queue.keys.jobs) == 0


def test_stale_entries_of_both_lanes_are_taken_over_interactive_first(queue: JobQueue) -> None:
    queue.ensure_group()
    for _ in range(3):
        queue.enqueue(call_request(lane="bulk"))
    queue.enqueue(call_request())
    held = queue.read("gone-reader", 10, None, ("interactive", "bulk"))
    assert len(held) == 4
    taken = queue.claim_stale("w1", min_idle_ms=0, count=2)
    assert [lane_of(e) for e, _ in taken] == ["interactive", "bulk"]
    rest = queue.claim_stale("w1", min_idle_ms=0, in_hand={e for e, _ in taken})
    assert sorted(e for e, _ in taken + rest) == sorted(e for e, _ in held)
    # The worker's own entries, but those in hand, are its to take back.
    assert queue.claim_stale("w1", 0, in_hand={e for e, _ in held}) == []


def test_a_dead_workers_entries_of_both_lanes_go_to_its_adopter(queue: JobQueue) -> None:
    queue.ensure_group()
    queue.enqueue(call_request())
    queue.enqueue(call_request(lane="bulk"))
    queue.beat("dead", 60, "t")
    held = queue.read("dead", 10, None, ("interactive", "bulk"))
    assert queue.owns("dead", "t", "", held[1][0])
    queue.forget_worker("dead")
    adopted = queue.adopt("dead", "w1")
    assert adopted is not None
    assert sorted(e for e, _ in adopted[1]) == sorted(e for e, _ in held)
    queue.beat("w1", 60, "t1")
    assert all(queue.owns("w1", "t1", "", e) for e, _ in held)
    assert not queue.redis.sismember(queue.keys.workers, "dead")

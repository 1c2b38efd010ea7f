"""Call records (eslengine.store.records) against a real redis-server."""

from __future__ import annotations

import pytest

from eslengine.store import JobQueue
from eslengine.store.records import CLAIM_FIELDS
from tests.conftest import call_request, maybe_batched


def test_transition_moves_forward_only_and_final_is_sticky(queue: JobQueue) -> None:
    req = call_request()
    queue.enqueue(req)
    assert queue.transition(req.id, "dialing", {"node": "fs1"})
    assert not queue.transition(req.id, "queued")
    assert queue.transition(req.id, "bridged")
    assert not queue.transition(req.id, "answered")  # late event
    assert queue.transition(req.id, "completed", {"hangup_cause": "NORMAL_CLEARING"})
    assert not queue.transition(req.id, "failed", {"hangup_cause": "USER_BUSY"})
    assert queue.transition(req.id, fields={"b_hangup_cause": "NORMAL_CLEARING"})
    doc = queue.get(req.id)
    assert doc is not None
    assert doc["status"] == "completed" and doc["hangup_cause"] == "NORMAL_CLEARING"
    assert doc["b_hangup_cause"] == "NORMAL_CLEARING" and doc["node"] == "fs1"
    assert [h["status"] for h in doc["history"]] == ["queued", "dialing", "bridged", "completed"]
    assert set(doc["timestamps"]) >= {"queued", "dialing", "bridged", "completed", "ended"}
    assert "talk_seconds" in doc["durations"]
    with pytest.raises(ValueError):
        queue.transition(req.id, "bogus")


def test_transition_of_missing_record_writes_nothing(queue: JobQueue) -> None:
    assert not queue.transition("0b6c3f2e-1111-4222-8333-944455556666", "dialing")
    assert queue.get("0b6c3f2e-1111-4222-8333-944455556666") is None


@pytest.mark.parametrize("batched", [False, True])
def test_annotate_stores_fields_in_order_with_later_transitions(queue: JobQueue, batched: bool) -> None:
    with maybe_batched(queue, batched):
        req = call_request()
        queue.enqueue(req)
        queue.annotate(req.id, {"attempt_state": "sent"})
        queue.transition(req.id, "failed", {"hangup_cause": "USER_BUSY"})  # queued after the annotation
        record = queue.redis.hgetall(queue.keys.call(req.id))
        assert record["attempt_state"] == "sent" and record["status"] == "failed"
        queue.annotate("0b6c3f2e-1111-4222-8333-944455556666", {"attempt_state": "sent"})
        queue.transition(req.id, fields={"x": "1"})  # waits: the annotation before it is done too
        assert not queue.redis.exists(queue.keys.call("0b6c3f2e-1111-4222-8333-944455556666"))


def test_cancel_queued_live_final_missing(queue: JobQueue) -> None:
    queued, live, done = call_request(), call_request(), call_request()
    for r in (queued, live, done):
        queue.enqueue(r)
    queue.transition(live.id, "ringing")
    queue.transition(done.id, "failed")
    pubsub = queue.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(queue.keys.cancel)
    assert queue.request_cancel(queued.id) == "cancelled"
    assert queue.get(queued.id)["status"] == "cancelled"  # type: ignore[index]
    assert queue.request_cancel(live.id) == "cancelling:ringing"
    assert queue.request_cancel(done.id) == "final:failed"
    assert queue.request_cancel("0b6c3f2e-1111-4222-8333-944455556666") == "missing"
    message = None
    for _ in range(50):
        message = pubsub.get_message(timeout=0.1)
        if message:
            break
    assert message is not None and message["data"] == live.id
    pubsub.close()


def test_claim_reads_or_creates_the_record_of_a_bare_xadd_job(queue: JobQueue) -> None:
    req = call_request()
    queue.redis.xadd(queue.keys.jobs, {"job": req.dumps()})
    record = queue.claim(req)
    assert record["status"] == "queued" and record["created"] == "1"
    assert queue.redis.hget(queue.keys.call(req.id), "id") == req.id
    # Existing records are returned, not reset.
    queue.transition(req.id, "dialing")
    assert queue.claim(req)["status"] == "dialing"


def test_claim_creates_and_moves_a_bare_xadd_job_to_dialing_in_one_step(queue: JobQueue) -> None:
    req = call_request()
    queue.redis.xadd(queue.keys.jobs, {"job": req.dumps()})
    record = queue.claim(req, {"originated": "1", "attempt_state": "pending"}, worker="w1")
    assert record["created"] == "1" and record["claimed"] == "1" and record["status"] == "queued"
    stored = queue.redis.hgetall(queue.keys.call(req.id))
    assert stored["status"] == "dialing" and stored["attempts"] == "1" and stored["attempt_state"] == "pending"
    assert stored["dialing_at"] == stored["queued_at"]
    assert queue.redis.sismember(queue.keys.live("w1"), req.id)
    doc = queue.get(req.id)
    assert doc is not None and [h["status"] for h in doc["history"]] == ["queued", "dialing"]
    # The job is now originated: a second claim (a redelivered entry) only reads it.
    again = queue.claim(req, {"originated": "1", "attempt_state": "pending"}, worker="w2")
    assert "claimed" not in again and "created" not in again and again["status"] == "dialing"
    assert not queue.redis.sismember(queue.keys.live("w2"), req.id)


def test_claim_counts_attempts_and_keeps_an_accepted_record(queue: JobQueue) -> None:
    req = call_request()
    queue.enqueue(req)
    queue.redis.hset(queue.keys.call(req.id), "attempts", "2")  # placed twice before, back in the queue
    record = queue.claim(req, {"originated": "1"}, worker="w1")
    assert record["claimed"] == "3" and "created" not in record
    assert queue.redis.hget(queue.keys.call(req.id), "attempts") == "3"


@pytest.mark.parametrize("case", ["bare_xadd", "cancel", "final", "no_fields"])
def test_claim_leaves_what_it_must_not_dial(queue: JobQueue, case: str) -> None:
    req = call_request()
    if case == "bare_xadd":
        # No dialing fields (the worker's policy refused it): only the record.
        record = queue.claim(req, None, worker="w1")
        assert record["created"] == "1"
    else:
        queue.enqueue(req)
        if case == "cancel":
            queue.redis.hset(queue.keys.call(req.id), "cancel_requested", "1")
        elif case == "final":
            queue.transition(req.id, "failed")
        record = queue.claim(req, None if case == "no_fields" else {"originated": "1"}, worker="w1")
    assert "claimed" not in record
    stored = queue.redis.hgetall(queue.keys.call(req.id))
    assert stored["status"] == ("failed" if case == "final" else "queued") and "originated" not in stored
    assert not queue.redis.sismember(queue.keys.live("w1"), req.id)


@pytest.mark.parametrize("batched", [False, True])
def test_transition_acknowledges_its_entry_atomically(queue: JobQueue, batched: bool) -> None:
    with maybe_batched(queue, batched):
        req, gone = call_request(), call_request()
        queue.enqueue(req)
        queue.ensure_group()
        (entry_id, _), = queue.read("c1", 10, 10)
        assert queue.transition(req.id, "failed", {"hangup_cause": "USER_BUSY"}, worker="c1", ack=entry_id)
        assert queue.redis.xlen(queue.keys.jobs) == 0
        assert queue.redis.xpending(queue.keys.jobs, "workers")["pending"] == 0
        # The entry goes even when the record does not move (already final, or missing).
        queue.redis.xadd(queue.keys.jobs, {"job": gone.dumps()})
        (entry_id, _), = queue.read("c1", 10, 10)
        assert not queue.transition(gone.id, "failed", ack=entry_id)
        assert queue.redis.xlen(queue.keys.jobs) == 0
        assert queue.redis.xpending(queue.keys.jobs, "workers")["pending"] == 0


def test_claim_answers_only_the_fields_its_callers_read(queue: JobQueue) -> None:
    # The request document (the largest field) stays in Redis: the worker
    # has the request already.
    req = call_request()
    queue.enqueue(req)
    queue.redis.hset(queue.keys.call(req.id), mapping={"throttled": "2", "node": "fs1", "a_uuid": req.id,
                                                       "answered_at": "t", "worker": "w9"})
    record = queue.claim(req, {"originated": "1"}, worker="w1")
    # The record as it was before the claim, the fields of CLAIM_FIELDS it had.
    assert record == {"status": "queued", "throttled": "2", "node": "fs1", "a_uuid": req.id, "answered_at": "t",
                      "claimed": "1"}
    created = queue.claim(call_request())
    assert set(created) <= set(CLAIM_FIELDS) | {"created"} and created["status"] == "queued"
    assert "request" not in created and "request" not in record

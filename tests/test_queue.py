"""Queue and call records against a real redis-server."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import redis

from eslengine import enqueue
from eslengine.calls import parse_request
from eslengine.config import Config
from eslengine.errors import QueueUnavailable, ValidationError
from eslengine.queue import GROUP, JobQueue, Keys, connect, now_iso
from eslengine.redisbatch import CommandBatcher
from tests.conftest import free_port


@pytest.fixture
def queue(redis_client: redis.Redis, key_prefix: str) -> JobQueue:
    return JobQueue(redis_client, Keys(key_prefix), record_ttl=60)


# The suite dials the fictional 555-01xx range (+1 555 123 0001), which libphonenumber
# does not validate: configs that dial it allow unvalidated numbers.
CONFIG = Config(allow_unvalidated_numbers=True)


def _request(**extra: object) -> object:
    return parse_request({"a": "+15551230001", "b": "user/1000", **extra}, CONFIG)


def test_enqueue_writes_record_and_stream_entry(queue: JobQueue) -> None:
    req = _request()
    queue.enqueue(req)
    entries = queue.redis.xrange(queue.keys.jobs)
    assert len(entries) == 1 and json.loads(entries[0][1]["job"])["id"] == req.id
    doc = queue.get(req.id)
    assert doc is not None and doc["status"] == "queued" and doc["a"] == "+15551230001"
    assert [h["status"] for h in doc["history"]] == ["queued"]
    assert 0 < queue.redis.ttl(queue.keys.call(req.id)) <= 60


def test_job_added_before_any_group_is_read(queue: JobQueue) -> None:
    queue.enqueue(_request())
    queue.ensure_group()
    queue.ensure_group()  # idempotent
    entries = queue.read("c1", 10, 10)
    assert len(entries) == 1


def test_ack_removes_entry_and_pending(queue: JobQueue) -> None:
    queue.enqueue(_request())
    queue.ensure_group()
    (entry_id, _), = queue.read("c1", 10, 10)
    assert queue.redis.xpending(queue.keys.jobs, GROUP)["pending"] == 1
    queue.ack(entry_id)
    assert queue.redis.xpending(queue.keys.jobs, GROUP)["pending"] == 0
    assert queue.redis.xlen(queue.keys.jobs) == 0


def test_stale_entries_are_claimed_by_another_consumer(queue: JobQueue) -> None:
    queue.enqueue(_request())
    queue.ensure_group()
    (entry_id, _), = queue.read("dead-worker", 10, 10)
    assert queue.claim_stale("live-worker", min_idle_ms=60_000) == []
    claimed = queue.claim_stale("live-worker", min_idle_ms=0)
    assert [e for e, _ in claimed] == [entry_id]


def test_a_live_workers_stale_entries_stay_its_own(queue: JobQueue) -> None:
    # A worker whose heartbeat is alive may hold a job a long time (its
    # pacer waits for a node): taking the entry over would dial twice.
    queue.ensure_group()
    queue.enqueue(_request())
    (slow, _), = queue.read("slow-worker", 10, 10)
    queue.beat("slow-worker", 60)
    assert queue.claim_stale("other-worker", min_idle_ms=0) == []
    assert queue.redis.xpending_range(queue.keys.jobs, GROUP, "-", "+", 10)[0]["consumer"] == "slow-worker"
    # Its heartbeat gone, it is dead: the entry goes to the worker that
    # adopts it, along with its calls; not to any worker that finds it idle.
    queue.forget_worker("slow-worker")
    assert queue.claim_stale("other-worker", min_idle_ms=0) == []
    assert [e for e, _ in queue.adopt("slow-worker", "other-worker")[1]] == [slow]  # type: ignore[index]


def test_stale_entries_behind_a_live_workers_are_reached(queue: JobQueue) -> None:
    queue.ensure_group()
    for _ in range(5):
        queue.enqueue(_request())
    queue.beat("slow-worker", 60)
    queue.read("slow-worker", 4, 10)
    (dead, _), = queue.read("gone-reader", 10, 10)
    assert [e for e, _ in queue.claim_stale("other-worker", min_idle_ms=0, count=2)] == [dead]


def test_a_worker_takes_back_only_its_own_stale_entries_not_in_hand(queue: JobQueue) -> None:
    queue.ensure_group()
    queue.enqueue(_request())
    queue.enqueue(_request())
    queue.beat("me", 60)
    (working, _), (dropped, _) = queue.read("me", 10, 10)
    claimed = queue.claim_stale("me", min_idle_ms=0, in_hand={working})
    assert [e for e, _ in claimed] == [dropped]


def test_transition_moves_forward_only_and_final_is_sticky(queue: JobQueue) -> None:
    req = _request()
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


@contextlib.contextmanager
def _maybe_batched(queue: JobQueue, batched: bool) -> Iterator[None]:
    """``queue`` sending through a CommandBatcher (as the worker's does) when ``batched``."""
    batcher = CommandBatcher(queue.redis) if batched else None
    if batcher is not None:
        batcher.start()
        queue.use_batcher(batcher)
    try:
        yield
    finally:
        if batcher is not None:
            batcher.stop()


@pytest.mark.parametrize("batched", [False, True])
def test_annotate_stores_fields_in_order_with_later_transitions(queue: JobQueue, batched: bool) -> None:
    with _maybe_batched(queue, batched):
        req = _request()
        queue.enqueue(req)
        queue.annotate(req.id, {"attempt_state": "sent"})
        queue.transition(req.id, "failed", {"hangup_cause": "USER_BUSY"})  # queued after the annotation
        record = queue.redis.hgetall(queue.keys.call(req.id))
        assert record["attempt_state"] == "sent" and record["status"] == "failed"
        queue.annotate("0b6c3f2e-1111-4222-8333-944455556666", {"attempt_state": "sent"})
        queue.transition(req.id, fields={"x": "1"})  # waits: the annotation before it is done too
        assert not queue.redis.exists(queue.keys.call("0b6c3f2e-1111-4222-8333-944455556666"))


def test_cancel_queued_live_final_missing(queue: JobQueue) -> None:
    queued, live, done = _request(), _request(), _request()
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
    req = _request()
    queue.redis.xadd(queue.keys.jobs, {"job": req.dumps()})
    record = queue.claim(req)
    assert record["status"] == "queued" and record["id"] == req.id
    # Existing records are returned, not reset.
    queue.transition(req.id, "dialing")
    assert queue.claim(req)["status"] == "dialing"


def test_claim_creates_and_moves_a_bare_xadd_job_to_dialing_in_one_step(queue: JobQueue) -> None:
    req = _request()
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
    req = _request()
    queue.enqueue(req)
    queue.redis.hset(queue.keys.call(req.id), "attempts", "2")  # placed twice before, back in the queue
    record = queue.claim(req, {"originated": "1"}, worker="w1")
    assert record["claimed"] == "3" and "created" not in record
    assert queue.redis.hget(queue.keys.call(req.id), "attempts") == "3"


@pytest.mark.parametrize("case", ["bare_xadd", "cancel", "final", "no_fields"])
def test_claim_leaves_what_it_must_not_dial(queue: JobQueue, case: str) -> None:
    req = _request()
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
    with _maybe_batched(queue, batched):
        req, gone = _request(), _request()
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


def test_dead_letter_keeps_reason_and_acks(queue: JobQueue) -> None:
    queue.redis.xadd(queue.keys.jobs, {"job": "{broken"})
    queue.ensure_group()
    (entry_id, fields), = queue.read("c1", 10, 10)
    queue.dead_letter(entry_id, fields, "invalid job: job: is not valid JSON")
    (dead_id, dead), = queue.dead_letters()
    assert dead["job"] == "{broken" and dead["entry_id"] == entry_id and "not valid JSON" in dead["reason"]
    assert queue.redis.xlen(queue.keys.jobs) == 0
    assert queue.redis.xpending(queue.keys.jobs, "workers")["pending"] == 0


def test_the_dead_letter_stream_is_capped(redis_client: redis.Redis, key_prefix: str) -> None:
    queue = JobQueue(redis_client, Keys(key_prefix), record_ttl=60, dead_letter_max=50)
    queue.ensure_group()
    for i in range(300):
        entry_id = redis_client.xadd(queue.keys.jobs, {"job": "{broken %d" % i})
        queue.dead_letter(entry_id, {"job": "{broken %d" % i}, "invalid job: job: is not valid JSON")
        queue.dead_letter_job(str(i), "{}", "failed after 3 attempts: USER_BUSY")
    # Trimmed the cheap way (whole stream nodes of up to 100 entries): the
    # newest 50 at least are kept, and not many more.
    assert 50 <= redis_client.xlen(queue.keys.dead) <= 50 + 100
    newest = redis_client.xrevrange(queue.keys.dead, count=1)[0][1]
    assert newest["job_id"] == "299"
    assert JobQueue.from_config(Config(dead_letter_max=7), redis_client).dead_letter_max == 7
    assert Config.from_env({"ESLENGINE_DEAD_LETTER_MAX": "5000"}).dead_letter_max == 5000
    assert Config().dead_letter_max == 100_000


def test_public_enqueue_helper(redis_client: redis.Redis, key_prefix: str) -> None:
    job_id = enqueue(redis_client, {"a": "+12025550123", "b": "+12025550124"}, prefix=key_prefix)
    assert JobQueue(redis_client, Keys(key_prefix)).get(job_id)["status"] == "queued"  # type: ignore[index]
    with pytest.raises(ValidationError):
        enqueue(redis_client, {"a": "+1202 &park()", "b": "+12025550124"}, prefix=key_prefix)
    with pytest.raises(ValidationError, match="not a valid phone number"):
        enqueue(redis_client, {"a": "+15551230001", "b": "+12025550124"}, prefix=key_prefix)
    assert redis_client.xlen(key_prefix + ":jobs") == 1


@pytest.mark.parametrize(("setting", "value", "reason"), [
    ("ESLENGINE_COUNTRIES", "GB", "country US is not served"),
    ("ESLENGINE_ALLOW", r"\+44[0-9]+", "not in the allowed ranges"),
    ("ESLENGINE_BLOCKED_PREFIXES", "+1202", r"\+1202\.\.\. is blocked"),
])
def test_public_enqueue_applies_the_process_settings(monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis,
                                                     key_prefix: str, setting: str, value: str, reason: str) -> None:
    monkeypatch.setenv(setting, value)
    with pytest.raises(ValidationError, match=reason):
        enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"}, prefix=key_prefix)
    assert redis_client.xlen(key_prefix + ":jobs") == 0


def test_public_enqueue_takes_its_prefix_and_policy_from_the_environment_or_a_config(
        monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis, key_prefix: str) -> None:
    monkeypatch.setenv("ESLENGINE_KEY_PREFIX", key_prefix)
    job_id = enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"})
    assert JobQueue(redis_client, Keys(key_prefix)).get(job_id) is not None
    assert redis_client.xlen(key_prefix + ":jobs") == 1
    # A config given is the whole policy, and names the prefix.
    monkeypatch.setenv("ESLENGINE_COUNTRIES", "US")
    other = key_prefix + "-cfg"
    with pytest.raises(ValidationError, match="country US is not served"):
        enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"}, config=Config(key_prefix=other,
                                                                                    countries=frozenset({"GB"})))
    job_id = enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"}, config=Config(key_prefix=other))
    assert redis_client.xlen(other + ":jobs") == 1 and JobQueue(redis_client, Keys(other)).get(job_id) is not None


def test_unreachable_redis_is_queue_unavailable() -> None:
    queue = JobQueue(connect("redis://127.0.0.1:%d/0" % free_port(), timeout=0.5), Keys("x"))
    with pytest.raises(QueueUnavailable):
        queue.enqueue(_request())  # type: ignore[arg-type]
    with pytest.raises(QueueUnavailable):
        queue.get("0b6c3f2e-1111-4222-8333-944455556666")


def test_enqueue_refuses_an_id_already_taken(queue: JobQueue) -> None:
    from eslengine.errors import JobExists

    req = _request(id="0b6c3f2e-1111-4222-8333-944455556666")
    queue.enqueue(req)
    queue.transition(req.id, "dialing")
    with pytest.raises(JobExists):
        queue.enqueue(req)  # type: ignore[arg-type]
    # Nothing was added or reset by the refused attempt.
    assert queue.redis.xlen(queue.keys.jobs) == 1
    assert queue.get(req.id)["status"] == "dialing"  # type: ignore[index]


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.floats(min_value=0, max_value=0.002))
def test_now_iso_is_datetimes_millisecond_text(ts: float, later: float) -> None:
    """The kept text of the last millisecond never leaks into another one."""
    for moment in (ts, ts + later, ts):
        expected = datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds")
        assert now_iso(moment) == expected.replace("+00:00", "Z")


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
    queue.enqueue(_request())
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
    job = queue.enqueue(_request())  # type: ignore[arg-type]
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

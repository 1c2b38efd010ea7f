"""The job stream (eslengine.store.jobs) against a real redis-server."""

from __future__ import annotations

import json

import pytest
import redis

from eslengine import enqueue
from eslengine.config import Config
from eslengine.errors import JobExists, QueueUnavailable, ValidationError
from eslengine.store import GROUP, JobQueue, Keys, connect
from tests.conftest import call_request, free_port


def test_enqueue_writes_record_and_stream_entry(queue: JobQueue) -> None:
    req = call_request()
    queue.enqueue(req)
    entries = queue.redis.xrange(queue.keys.jobs)
    assert len(entries) == 1 and json.loads(entries[0][1]["job"])["id"] == req.id
    doc = queue.get(req.id)
    assert doc is not None and doc["status"] == "queued" and doc["a"] == "+15551230001"
    assert [h["status"] for h in doc["history"]] == ["queued"]
    assert 0 < queue.redis.ttl(queue.keys.call(req.id)) <= 60


def test_job_added_before_any_group_is_read(queue: JobQueue) -> None:
    queue.enqueue(call_request())
    queue.ensure_group()
    queue.ensure_group()  # idempotent
    entries = queue.read("c1", 10, 10)
    assert len(entries) == 1


def test_ack_removes_entry_and_pending(queue: JobQueue) -> None:
    queue.enqueue(call_request())
    queue.ensure_group()
    (entry_id, _), = queue.read("c1", 10, 10)
    assert queue.redis.xpending(queue.keys.jobs, GROUP)["pending"] == 1
    queue.ack(entry_id)
    assert queue.redis.xpending(queue.keys.jobs, GROUP)["pending"] == 0
    assert queue.redis.xlen(queue.keys.jobs) == 0


def test_stale_entries_are_claimed_by_another_consumer(queue: JobQueue) -> None:
    queue.enqueue(call_request())
    queue.ensure_group()
    (entry_id, _), = queue.read("dead-worker", 10, 10)
    assert queue.claim_stale("live-worker", min_idle_ms=60_000) == []
    claimed = queue.claim_stale("live-worker", min_idle_ms=0)
    assert [e for e, _ in claimed] == [entry_id]


def test_a_live_workers_stale_entries_stay_its_own(queue: JobQueue) -> None:
    # A worker whose heartbeat is alive may hold a job a long time (its
    # pacer waits for a node): taking the entry over would dial twice.
    queue.ensure_group()
    queue.enqueue(call_request())
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
        queue.enqueue(call_request())
    queue.beat("slow-worker", 60)
    queue.read("slow-worker", 4, 10)
    (dead, _), = queue.read("gone-reader", 10, 10)
    assert [e for e, _ in queue.claim_stale("other-worker", min_idle_ms=0, count=2)] == [dead]


def test_a_worker_takes_back_only_its_own_stale_entries_not_in_hand(queue: JobQueue) -> None:
    queue.ensure_group()
    queue.enqueue(call_request())
    queue.enqueue(call_request())
    queue.beat("me", 60)
    (working, _), (dropped, _) = queue.read("me", 10, 10)
    claimed = queue.claim_stale("me", min_idle_ms=0, in_hand={working})
    assert [e for e, _ in claimed] == [dropped]


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
    assert redis_client.xlen(Keys(key_prefix).jobs) == 1


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
    assert redis_client.xlen(Keys(key_prefix).jobs) == 0


def test_public_enqueue_takes_its_prefix_and_policy_from_the_environment_or_a_config(
        monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis, key_prefix: str) -> None:
    monkeypatch.setenv("ESLENGINE_KEY_PREFIX", key_prefix)
    job_id = enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"})
    assert JobQueue(redis_client, Keys(key_prefix)).get(job_id) is not None
    assert redis_client.xlen(Keys(key_prefix).jobs) == 1
    # A config given is the whole policy, and names the prefix.
    monkeypatch.setenv("ESLENGINE_COUNTRIES", "US")
    other = key_prefix + "-cfg"
    with pytest.raises(ValidationError, match="country US is not served"):
        enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"}, config=Config(key_prefix=other,
                                                                                    countries=frozenset({"GB"})))
    job_id = enqueue(redis_client, {"a": "+12025550123", "b": "user/1000"}, config=Config(key_prefix=other))
    assert redis_client.xlen(Keys(other).jobs) == 1 and JobQueue(redis_client, Keys(other)).get(job_id) is not None


def test_unreachable_redis_is_queue_unavailable() -> None:
    queue = JobQueue(connect("redis://127.0.0.1:%d/0" % free_port(), timeout=0.5), Keys("x"))
    with pytest.raises(QueueUnavailable):
        queue.enqueue(call_request())  # type: ignore[arg-type]
    with pytest.raises(QueueUnavailable):
        queue.get("0b6c3f2e-1111-4222-8333-944455556666")


def test_enqueue_refuses_an_id_already_taken(queue: JobQueue) -> None:
    req = call_request(id="0b6c3f2e-1111-4222-8333-944455556666")
    queue.enqueue(req)
    queue.transition(req.id, "dialing")
    with pytest.raises(JobExists):
        queue.enqueue(req)  # type: ignore[arg-type]
    # Nothing was added or reset by the refused attempt.
    assert queue.redis.xlen(queue.keys.jobs) == 1
    assert queue.get(req.id)["status"] == "dialing"  # type: ignore[index]

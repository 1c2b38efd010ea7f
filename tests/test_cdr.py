"""The CDR stream: one entry per call reaching a final status, written by
every script that sets one, against a real redis-server."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from eslengine.store import JobQueue, Keys
from tests.conftest import call_request, maybe_batched


def cdrs(queue: JobQueue) -> list[dict[str, str]]:
    return [fields for _, fields in queue.redis.xrange(queue.keys.cdr)]


def _seconds(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("batched", [False, True])
def test_a_completed_call_writes_one_cdr_with_its_times_and_metadata(queue: JobQueue, batched: bool) -> None:
    req = call_request(variables={"crm_id": "42"}, metadata={"campaign": "c1", "contact": "r2", "attempt": 3})
    queue.enqueue(req, owner="key1", account="acme")
    with maybe_batched(queue, batched):
        queue.transition(req.id, "dialing", {"node": "fs1"})
        queue.transition(req.id, "answered")
        assert cdrs(queue) == []
        queue.transition(req.id, "completed", {"hangup_cause": "NORMAL_CLEARING"})
        queue.transition(req.id, "failed", {"hangup_cause": "USER_BUSY"})  # refused: final is final
    [cdr] = cdrs(queue)
    record = queue.record(req.id)
    assert cdr["id"] == req.id and cdr["status"] == "completed" and cdr["cause"] == "NORMAL_CLEARING"
    assert (cdr["owner"], cdr["account"], cdr["node"]) == ("key1", "acme", "fs1")
    assert (cdr["campaign"], cdr["contact"], cdr["attempt"]) == ("c1", "r2", "3")
    assert json.loads(cdr["variables"]) == {"crm_id": "42"}
    assert cdr["answered_at"] == record["answered_at"] and cdr["ended_at"] == record["ended_at"]
    assert float(cdr["billsec"]) == pytest.approx(_seconds(record["ended_at"]) - _seconds(record["answered_at"]),
                                                  abs=0.002)
    assert float(cdr["duration"]) == pytest.approx(_seconds(record["ended_at"]) - _seconds(record["dialing_at"]),
                                                   abs=0.002)


def test_a_call_cancelled_while_queued_writes_a_cdr_with_the_cause_asked_for(queue: JobQueue) -> None:
    plain, paused = call_request(), call_request()
    queue.enqueue(plain)
    queue.enqueue(paused)
    assert queue.request_cancel(plain.id) == "cancelled"
    assert queue.request_cancel(paused.id, "CAMPAIGN_PAUSED") == "cancelled"
    assert queue.request_cancel(plain.id).startswith("final:")
    found = cdrs(queue)
    assert [(c["id"], c["status"], c["cause"]) for c in found] == [
        (plain.id, "cancelled", "ORIGINATOR_CANCEL"), (paused.id, "cancelled", "CAMPAIGN_PAUSED")]
    assert found[0]["billsec"] == "0" and found[0]["variables"] == "{}" and found[0]["campaign"] == ""


def test_a_refused_job_writes_a_failed_cdr(queue: JobQueue) -> None:
    job_id = "0b6c3f2e-1111-4222-8333-944455556666"
    assert queue.record_unreadable(job_id, "{}", "invalid job: a: bad")
    [cdr] = cdrs(queue)
    assert (cdr["id"], cdr["status"]) == (job_id, "failed")


def test_the_cdr_stream_is_trimmed_to_about_its_length(redis_client: object, key_prefix: str) -> None:
    queue = JobQueue(redis_client, Keys(key_prefix), record_ttl=60, cdr_max=10)  # type: ignore[arg-type]
    for _ in range(400):
        req = call_request()
        queue.enqueue(req)
        queue.request_cancel(req.id)
    # MAXLEN ~ drops whole stream nodes (100 entries by default) only.
    assert queue.redis.xlen(queue.keys.cdr) < 200

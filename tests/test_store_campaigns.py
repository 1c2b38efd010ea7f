"""Campaigns in Redis (eslengine.store.campaigns) and the dispatcher's
steps on it, against the suite's redis-server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from eslengine.campaign.dispatcher import STALE, Dispatcher
from eslengine.campaign.model import Contact, attempt_id, parse_campaign
from eslengine.store import JobQueue
from eslengine.store.campaigns import CampaignClosed, CampaignStore
from tests.conftest import STORE_CONFIG

CID = "c" * 32


def counters(store: CampaignStore) -> dict[str, int]:
    shown = store.show(CID)
    assert shown is not None
    return {k: v for k, v in shown["counters"].items() if v}


@pytest.fixture
def store(queue: JobQueue) -> CampaignStore:
    s = CampaignStore(queue.redis, queue.keys, record_ttl=60)
    campaign = parse_campaign({"name": "n", "call": {"b": "user/1000"}, "pacing": {"max_concurrent": 2}},
                              STORE_CONFIG)
    s.create(CID, campaign)
    assert s.add_contacts(CID, [Contact("r%d" % i, ("+1555123000%d" % i,)) for i in range(3)]) == []
    return s


def test_contacts_are_added_once_and_counted_queued(store: CampaignStore) -> None:
    assert store.add_contacts(CID, [Contact("r1", ("+15551230009",)), Contact("r9", ("+15551230009",)),
                                    Contact("r9", ("+15551230008",))]) == [0, 2]
    assert counters(store) == {"queued": 4}
    assert store.show(CID)["contacts"] == 4  # type: ignore[index]


def test_a_contact_is_taken_for_an_attempt_once_and_only_while_running(store: CampaignStore) -> None:
    now = time.time()
    assert store.take(CID, "r0", 0, "call-1", now, 2) == 0  # created, not running
    store.act(CID, "start")
    assert store.take(CID, "r0", 0, "call-1", now, 2) == 1
    assert store.take(CID, "r0", 0, "call-1", now, 2) == 0  # taken already
    assert store.take(CID, "r1", 0, "call-2", now, 2) == 1
    assert store.take(CID, "r2", 0, "call-3", now, 2) == -1  # two under way: the most at once
    assert counters(store) == {"queued": 1, "dialing": 2}
    assert store.show(CID)["calls"] == 2  # type: ignore[index]
    store.act(CID, "pause")
    assert store.outcome(CID, "r0", "call-1", "finish", outcome="connected") == 1
    assert store.take(CID, "r2", 0, "call-3", now, 2) == 0  # paused


def test_an_outcome_counts_once_and_the_last_contact_finishes_the_campaign(store: CampaignStore) -> None:
    store.act(CID, "start")
    now = time.time()
    for i in range(3):
        assert store.take(CID, "r%d" % i, 0, "call-%d" % i, now, 5) == 1
    assert store.outcome(CID, "r0", "call-0", "retry", when=now + 60, cause="USER_BUSY") == 1
    assert store.outcome(CID, "r0", "call-0", "finish", outcome="failed", cause="USER_BUSY") == 0  # counted
    assert store.outcome(CID, "r1", "call-other", "finish", outcome="connected") == 0  # not its call
    assert store.outcome(CID, "r1", "call-1", "again", when=now) == 1
    assert counters(store) == {"retrying": 1, "queued": 1, "dialing": 1}
    assert store.due(CID, now + 1, 10) == ["r1"]
    assert store.contact(CID, "r0")["retries"] == "1"
    assert store.take(CID, "r0", 1, "call-0b", now + 61, 5) == 1
    assert store.take(CID, "r1", 1, "call-1b", now, 5) == 1
    assert store.outcome(CID, "r0", "call-0b", "finish", outcome="failed", cause="USER_BUSY") == 1
    assert store.outcome(CID, "r1", "call-1b", "finish", outcome="connected") == 1
    assert store.outcome(CID, "r2", "call-2", "finish", outcome="connected") == 2
    shown = store.show(CID)
    assert shown is not None and shown["state"] == "finished" and shown["failed_by_cause"] == {"USER_BUSY": 1}
    assert counters(store) == {"done": 3, "connected": 2, "failed": 1}
    with pytest.raises(CampaignClosed):
        store.add_contacts(CID, [Contact("r7", ("+15551230007",))])


def test_waiting_contacts_are_counted_with_the_earliest_opening(store: CampaignStore) -> None:
    store.act(CID, "start")
    now = time.time()
    assert store.wait(CID, "r0", now + 3600) and store.wait(CID, "r1", now + 60)
    assert store.wait(CID, "r1", now + 120)  # again: counted once
    assert counters(store) == {"queued": 1, "waiting_window": 2}
    shown = store.show(CID)
    assert shown is not None and shown["waiting_until"] is not None
    assert store.due(CID, now, 10) == ["r2"] and store.due(CID, now + 121, 10) == ["r2", "r1"]
    assert store.take(CID, "r1", 0, "call-1", now + 121, 5) == 1
    assert counters(store) == {"queued": 1, "waiting_window": 1, "dialing": 1}


def test_cancelling_ends_what_is_not_under_way_once(store: CampaignStore) -> None:
    store.act(CID, "start")
    assert store.take(CID, "r0", 0, "call-0", time.time(), 5) == 1
    assert store.act(CID, "cancel") == ("running", True)
    assert store.act(CID, "resume") == ("cancelled", False)
    assert store.drop(CID, store.undone(CID, 10), "cancelled") == 2
    assert store.drop(CID, ["r0", "r1", "r2"], "cancelled") == 0
    assert counters(store) == {"dialing": 1, "done": 2, "cancelled": 2}
    assert store.outcome(CID, "r0", "call-0", "finish", outcome="cancelled", cause="CAMPAIGN_CANCELLED") == 1
    shown = store.show(CID)
    assert shown is not None and shown["state"] == "cancelled" and "ended_at" in shown


def test_the_dispatcher_queues_a_taken_contact_whose_job_never_reached_the_queue(
        store: CampaignStore, queue: JobQueue) -> None:
    store.act(CID, "start")
    clock: list[float] = [time.time()]
    dispatcher = Dispatcher(STORE_CONFIG, queue, store=store, clock=lambda: clock[0])
    call_id = attempt_id(CID, "r0", 1)
    assert store.take(CID, "r0", 0, call_id, clock[0], 5) == 1  # ... and the dispatcher died here
    raw: dict[str, Any] = store.raw(CID)
    campaign = dispatcher.campaign(CID, raw)
    dispatcher._sweep(CID, campaign, raw, clock[0] + 1)
    assert queue.record(call_id) == {}  # not stale yet: it may still be on its way
    clock[0] += STALE + 1
    dispatcher._sweep(CID, campaign, raw, clock[0])
    record = queue.record(call_id)
    assert record["status"] == "queued" and '"contact":"r0"' in record["request"]
    clock[0] += STALE + 1
    dispatcher._sweep(CID, campaign, raw, clock[0])  # queued now: left alone
    assert queue.redis.xlen(queue.keys.jobs_bulk) == 1


def test_the_dispatcher_applies_a_call_whose_cdr_never_came_from_its_record(
        store: CampaignStore, queue: JobQueue) -> None:
    store.act(CID, "start")
    clock: list[float] = [time.time()]
    dispatcher = Dispatcher(STORE_CONFIG, queue, store=store, clock=lambda: clock[0])
    raw: dict[str, Any] = store.raw(CID)
    assert dispatcher.dispatch_campaign(CID) == 1  # one call a second at first
    [entry] = queue.redis.xrange(queue.keys.jobs_bulk)
    call_id = attempt_id(CID, "r0", 1)
    assert '"contact":"r0"' in entry[1]["job"] and queue.record(call_id)["status"] == "queued"
    queue.transition(call_id, "dialing")
    queue.transition(call_id, "completed", {"hangup_cause": "NORMAL_CLEARING"})
    queue.redis.delete(queue.keys.cdr)  # the CDR is gone unread
    clock[0] += STALE + 1
    dispatcher._sweep(CID, dispatcher.campaign(CID, raw), raw, clock[0])
    contact = store.contact(CID, "r0")
    assert (contact["state"], contact["outcome"], contact["cause"]) == ("done", "connected", "NORMAL_CLEARING")


def test_a_campaign_the_dispatcher_cannot_read_does_not_hold_up_the_others(
        store: CampaignStore, queue: JobQueue, caplog: pytest.LogCaptureFixture) -> None:
    store.act(CID, "start")
    broken = "b" * 32
    store.create(broken, parse_campaign({"name": "b", "call": {"b": "user/1000"}}, STORE_CONFIG))
    store.add_contacts(broken, [Contact("r0", ("+15551230001",))])
    store.act(broken, "start")
    queue.redis.hset(queue.keys.campaign(broken), "doc", '{"name": "b"}')  # no call template: refused
    dispatcher = Dispatcher(STORE_CONFIG, queue, store=store)
    dispatcher.lease.renewed(time.monotonic(), 60.0, unbroken=True)
    assert dispatcher.dispatch()
    assert dispatcher.dispatch()  # left alone: logged once
    assert [r.getMessage() for r in caplog.records if broken in r.getMessage()] == [
        "campaign %s: not dispatched for a minute: its document is refused here: call: the call template: an "
        "object of what POST /v1/calls takes" % broken]
    assert store.contact(CID, "r0")["state"] == "dialing" and store.contact(broken, "r0")["state"] == "queued"

"""A campaign's end of life and its call ids: deletion a batch at a time,
retention, and attempt ids nobody can take first (eslengine.store.campaigns,
eslengine.campaign.retention, the dispatcher), against the suite's redis-server."""

from __future__ import annotations

import time

import pytest

from eslengine.campaign.dispatcher import Dispatcher
from eslengine.campaign.model import Contact, attempt_id, parse_campaign
from eslengine.campaign.retention import ended, expired
from eslengine.config import Config
from eslengine.store import JobQueue
from eslengine.store.campaigns import CampaignClosed, CampaignStore
from eslengine.worker.campaigns import CampaignGate
from tests.conftest import STORE_CONFIG, call_request

CID = "d" * 32
DAY = 24 * 3600.0


def make(store: CampaignStore, campaign_id: str, contacts: int, nonce: str = "") -> None:
    campaign = parse_campaign({"name": "n", "call": {"b": "user/1000"}, "pacing": {"cps": 100,
                               "max_concurrent": 50}}, STORE_CONFIG)
    store.create(campaign_id, campaign, nonce=nonce)
    for start in range(0, contacts, 1000):
        store.add_contacts(campaign_id, [Contact("r%d" % i, ("+1555123%04d" % (i % 10000),))
                                         for i in range(start, min(contacts, start + 1000))])


def keys_of(queue: JobQueue, campaign_id: str) -> list[str]:
    return sorted(queue.redis.keys(queue.keys.campaign(campaign_id) + "*"))


@pytest.fixture
def store(queue: JobQueue) -> CampaignStore:
    return CampaignStore(queue.redis, queue.keys, record_ttl=60)


# ------------------------------------------------------------ retention (pure)

@pytest.mark.parametrize("raw, at", [
    ({"state": "finished", "ended_at": "2026-01-01T00:00:00.000Z"}, 1767225600.0),
    ({"state": "cancelled", "cancelled_at": "2026-01-01T00:00:00.000Z"}, 1767225600.0),
    ({"state": "cancelled", "cancelled_at": "2026-01-01T00:00:00.000Z", "ended_at": "2026-01-02T00:00:00.000Z"},
     1767312000.0),
    ({"state": "running", "ended_at": "2026-01-01T00:00:00.000Z"}, None),
    ({"state": "paused"}, None),
    ({"state": "finished"}, None),
    ({"state": "finished", "ended_at": "yesterday"}, None),
])
def test_a_campaign_ends_when_it_finished_or_when_cancelled_if_later(raw: dict[str, str], at: float | None) -> None:
    assert ended(raw) == at


def test_an_ended_campaign_expires_once_the_ttl_has_passed() -> None:
    raw = {"state": "finished", "ended_at": "2026-01-01T00:00:00.000Z"}
    assert not expired(raw, 1767225600.0 + 30 * DAY - 1, 30 * DAY)
    assert expired(raw, 1767225600.0 + 30 * DAY, 30 * DAY)
    assert not expired({"state": "running"}, 1e12, 30 * DAY)


# ------------------------------------------------------------ deletion

def test_a_deleted_campaign_loses_every_key_a_batch_at_a_time(store: CampaignStore, queue: JobQueue) -> None:
    make(store, CID, 2500)
    other = "e" * 32
    make(store, other, 3)
    store.act(CID, "start")
    now = time.time()
    assert store.take(CID, "r0", 0, "call-0", now, 5) == 1
    assert store.outcome(CID, "r0", "call-0", "finish", outcome="connected") == 1
    store.act(CID, "cancel")
    assert len(keys_of(queue, CID)) == 3 + 2500  # the hash, pending set, index; the contacts
    assert store.begin_delete(CID) == ("cancelled", True)
    assert store.state(CID) == "deleting"
    assert CID not in queue.redis.zrange(queue.keys.campaigns, 0, -1)
    with pytest.raises(CampaignClosed):
        store.add_contacts(CID, [Contact("late", ("+15551230001",))])
    assert store.act(CID, "start") == ("deleting", False)
    assert [store.delete_batch(CID, 1000) for _ in range(4)] == [1000, 1000, 500, 0]
    store.end_delete(CID)
    assert keys_of(queue, CID) == [queue.keys.campaign(CID)]
    assert store.raw(CID)["state"] == "deleted" and 0 < queue.redis.ttl(queue.keys.campaign(CID)) <= 60
    assert store.begin_delete(CID) == ("", False)  # gone already
    assert len(keys_of(queue, other)) == 3 + 3 and store.state(other) == "created"  # another campaign untouched


@pytest.mark.parametrize("setup, was, allowed", [
    ([], "created", True),
    (["start"], "running", False),
    (["start", "take", "pause"], "paused", False),
    (["start", "pause"], "paused", True),
    (["start", "take", "cancel"], "cancelled", True),
    (["start", "take", "finish"], "finished", True),
])
def test_a_campaign_is_deleted_unless_it_has_calls_to_make(store: CampaignStore, setup: list[str], was: str,
                                                           allowed: bool) -> None:
    make(store, CID, 1)
    for step in setup:
        if step == "take":
            assert store.take(CID, "r0", 0, "call-0", time.time(), 5) == 1
        elif step == "finish":
            assert store.outcome(CID, "r0", "call-0", "finish", outcome="connected") == 2
        else:
            store.act(CID, step)
    assert store.begin_delete(CID) == (was, allowed)
    assert store.state(CID) == ("deleting" if allowed else was)


def test_a_deleted_campaigns_calls_still_queued_are_not_dialed(store: CampaignStore, queue: JobQueue) -> None:
    make(store, CID, 1)
    gate = CampaignGate(queue)
    request = call_request(metadata={"campaign": CID, "contact": "r0", "attempt": 1})
    store.act(CID, "cancel")
    store.begin_delete(CID)
    assert gate.stopped(request) == "CAMPAIGN_CANCELLED"
    store.delete(CID)
    assert gate.stopped(request) == "CAMPAIGN_CANCELLED"


def test_the_sweep_deletes_campaigns_ended_longer_ago_than_the_ttl_and_finishes_left_deletions(
        store: CampaignStore, queue: JobQueue) -> None:
    now = time.time()
    old, recent, running, half = "a" * 32, "b" * 32, "c" * 32, "f" * 32
    for campaign_id in (old, recent, running, half):
        make(store, campaign_id, 3)
        queue.redis.zadd(queue.keys.campaigns, {campaign_id: int((now - 40 * DAY) * 1e6)})  # made long ago
    store.act(old, "cancel")
    store.act(recent, "cancel")
    store.act(running, "start")
    store.act(half, "cancel")
    iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now - 31 * DAY))
    queue.redis.hset(queue.keys.campaign(old), mapping={"cancelled_at": iso, "ended_at": iso})
    queue.redis.hset(queue.keys.campaign(running), "running_at", iso)
    store.begin_delete(half)
    store.delete_batch(half, 2)  # ... and the process deleting it died
    dispatcher = Dispatcher(Config(allow_unvalidated_numbers=True, campaign_ttl=int(30 * DAY)), queue, store=store,
                            clock=lambda: now)
    assert sorted(dispatcher.sweep_retention()) == sorted([half, old])
    for campaign_id in (old, half):
        assert keys_of(queue, campaign_id) == [queue.keys.campaign(campaign_id)]
        assert store.state(campaign_id) == "deleted"
    assert store.state(recent) == "cancelled" and store.state(running) == "running"
    assert len(keys_of(queue, recent)) == 6 and dispatcher.sweep_retention() == []


# ------------------------------------------------------------ attempt ids

def test_attempt_ids_take_the_campaigns_secret_and_keep_the_old_ones_without(queue: JobQueue) -> None:
    assert attempt_id(CID, "r0", 1) == attempt_id(CID, "r0", 1, "")
    assert attempt_id(CID, "r0", 1, "s1") == attempt_id(CID, "r0", 1, "s1")
    assert len({attempt_id(CID, "r0", 1, "s1"), attempt_id(CID, "r0", 1, "s2"), attempt_id(CID, "r0", 1),
                attempt_id(CID, "r0", 2, "s1")}) == 4


def test_a_call_placed_first_under_a_contacts_guessable_id_does_not_stop_the_contacts_call(
        store: CampaignStore, queue: JobQueue) -> None:
    make(store, CID, 1, nonce="0f" * 16)
    store.act(CID, "start")
    guessed = attempt_id(CID, "r0", 1)  # all an outsider can work out
    queue.enqueue(call_request(id=guessed, metadata={"campaign": CID, "contact": "r0", "attempt": 1}))
    dispatcher = Dispatcher(STORE_CONFIG, queue, store=store)
    assert dispatcher.dispatch_campaign(CID) == 1
    contact = store.contact(CID, "r0")
    assert contact["state"] == "dialing" and contact["call"] == attempt_id(CID, "r0", 1, "0f" * 16) != guessed
    assert queue.record(contact["call"])["status"] == "queued"
    # The guessed call's CDR changes nothing for the contact.
    dispatcher.apply({"campaign": CID, "contact": "r0", "id": guessed, "status": "completed",
                      "cause": "NORMAL_CLEARING"})
    assert store.contact(CID, "r0")["state"] == "dialing"

"""Campaigns end to end inside one process: the store, a worker (with its
dispatcher) and the simulator (``tests/rig.py``), on the suite's Redis."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

from eslengine import dnc
from eslengine.campaign.decide import Pace
from eslengine.campaign.dispatcher import Dispatcher
from eslengine.campaign.model import Contact, parse_campaign
from eslengine.store.campaigns import CampaignStore
from tests.rig import Rig, wait_for


def make(rig: Rig, contacts: list[Contact], **extra: Any) -> tuple[CampaignStore, str]:
    store = CampaignStore(rig.client, rig.queue.keys, record_ttl=600)
    campaign = parse_campaign({"name": "test", "call": {"b": "user/1000"}, **extra}, rig.config)
    campaign_id = "%032x" % int(time.time() * 1e6)
    store.create(campaign_id, campaign)
    store.add_contacts(campaign_id, contacts)
    return store, campaign_id


def own_dispatcher(rig: Rig, store: CampaignStore, campaign_id: str, credit: float) -> Dispatcher:
    """A dispatcher of the test's own holding the lease, with ``credit``
    calls of pace in hand; no worker yet, so its calls wait in the stream."""
    dispatcher = Dispatcher(rig.config, rig.queue, store=store)
    dispatcher.lease.renewed(time.monotonic(), 60.0, unbroken=True)
    dispatcher._paces[campaign_id] = Pace(credit=credit)
    return dispatcher


def numbers(n: int, suffix: str = "") -> list[Contact]:
    return [Contact("c%d" % i, ("+1555123%04d" % i if not suffix else "+1555124%01d%s" % (i, suffix),))
            for i in range(n)]


def cdrs(rig: Rig, campaign_id: str) -> list[dict[str, str]]:
    return [f for _, f in rig.client.xrange(rig.queue.keys.cdr) if f.get("campaign") == campaign_id]


def originated(rig: Rig, campaign_id: str) -> list[Any]:
    ids = {c["id"] for c in cdrs(rig, campaign_id)} | _calls(rig, campaign_id)
    return [r for r in list(rig.switch.board.originates) if r.variables.get("eslengine_job_id") in ids]


def _calls(rig: Rig, campaign_id: str) -> set[str]:
    keys = rig.client.keys(rig.queue.keys.contact(campaign_id, "*"))
    return {rig.client.hget(k, "call") or "" for k in keys}


def test_a_campaign_calls_each_contact_once_within_its_pacing_and_finishes(rig: Rig) -> None:
    rig.start_worker()
    store, campaign_id = make(rig, numbers(12), pacing={"cps": 50, "max_concurrent": 4})
    store.act(campaign_id, "start")
    peak = 0

    def finished() -> bool:
        nonlocal peak
        shown = store.show(campaign_id)
        assert shown is not None
        peak = max(peak, shown["counters"]["dialing"])
        return shown["state"] == "finished"

    wait_for(finished, timeout=30)
    shown = store.show(campaign_id)
    assert shown is not None
    assert shown["counters"]["done"] == shown["counters"]["connected"] == 12 and shown["calls"] == 12
    assert 1 <= peak <= 4
    found = cdrs(rig, campaign_id)
    assert sorted(c["contact"] for c in found) == sorted("c%d" % i for i in range(12))
    assert all(c["status"] == "completed" and c["attempt"] == "1" for c in found)
    per_job = Counter(r.variables.get("eslengine_job_id") for r in rig.switch.board.originates)
    assert all(per_job[c["id"]] == 1 for c in found)


def test_a_busy_contact_is_retried_per_its_ladder_then_given_up(rig: Rig) -> None:
    worker = rig.start_worker()
    # The dispatcher's clock runs an hour ahead: a retry due in a minute is due at once.
    worker.dispatcher.clock = lambda: time.time() + 3600
    store, campaign_id = make(rig, [Contact("busy", ("+15551230486",)), Contact("ok", ("+15551230001",))],
                              retry={"on": ["busy"], "delay": "1m", "max_retries": 2})
    store.act(campaign_id, "start")
    wait_for(lambda: store.state(campaign_id) == "finished", timeout=30)
    busy = store.contact(campaign_id, "busy")
    assert (busy["outcome"], busy["cause"], busy["tries"], busy["retries"]) == ("failed", "USER_BUSY", "3", "2")
    assert store.contact(campaign_id, "ok")["tries"] == "1"
    shown = store.show(campaign_id)
    assert shown is not None
    assert shown["failed_by_cause"] == {"USER_BUSY": 1} and shown["counters"]["connected"] == 1
    assert [c["attempt"] for c in cdrs(rig, campaign_id) if c["contact"] == "busy"] == ["1", "2", "3"]


def test_a_contact_outside_its_window_waits_and_is_not_called(rig: Rig) -> None:
    rig.start_worker()
    today = datetime.now(timezone.utc).date()
    closed = [(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]
    store, campaign_id = make(rig, numbers(2), calling_window={"days": "mon-sun", "holidays": closed,
                                                              "zone": "UTC"})
    store.act(campaign_id, "start")
    wait_for(lambda: (s := store.show(campaign_id)) and s["counters"]["waiting_window"] == 2, timeout=10)
    shown = store.show(campaign_id)
    assert shown is not None and shown["calls"] == 0 and shown["state"] == "running"
    until = datetime.fromisoformat(shown["waiting_until"].replace("Z", "+00:00"))
    assert until.date() >= today + timedelta(days=2)
    assert originated(rig, campaign_id) == []


def test_pausing_stops_originates_within_a_second_and_loses_no_contact(rig: Rig) -> None:
    rig.start_worker()
    store, campaign_id = make(rig, numbers(40), pacing={"cps": 20, "max_concurrent": 40})
    store.act(campaign_id, "start")
    wait_for(lambda: len(originated(rig, campaign_id)) >= 5, timeout=10)
    store.act(campaign_id, "pause")
    paused_at = time.time()
    time.sleep(1.5)
    late = [r for r in originated(rig, campaign_id) if r.time > paused_at + 1.0]
    assert late == []
    # Every call under way ends; nothing is left dialing, nothing is lost.
    wait_for(lambda: (s := store.show(campaign_id)) and s["counters"]["dialing"] == 0, timeout=15)
    shown = store.show(campaign_id)
    assert shown is not None
    counters = shown["counters"]
    assert counters["done"] + counters["queued"] + counters["retrying"] == 40 and counters["queued"] > 0
    store.act(campaign_id, "resume")
    wait_for(lambda: store.state(campaign_id) == "finished", timeout=30)
    completed = Counter(c["contact"] for c in cdrs(rig, campaign_id) if c["status"] == "completed")
    assert sorted(completed) == sorted("c%d" % i for i in range(40)) and set(completed.values()) == {1}


def test_cancelling_ends_every_contact_not_called_yet(rig: Rig) -> None:
    rig.start_worker()
    store, campaign_id = make(rig, numbers(30), pacing={"cps": 5, "max_concurrent": 2})
    store.act(campaign_id, "start")
    wait_for(lambda: len(originated(rig, campaign_id)) >= 1, timeout=10)
    store.act(campaign_id, "cancel")
    wait_for(lambda: (s := store.show(campaign_id)) and s["counters"]["done"] == 30, timeout=20)
    shown = store.show(campaign_id)
    assert shown is not None and shown["state"] == "cancelled" and "ended_at" in shown
    assert shown["counters"]["cancelled"] + shown["counters"]["connected"] == 30
    assert shown["counters"]["cancelled"] >= 20


def test_a_worker_killed_mid_campaign_loses_no_contact_and_calls_none_twice(rig: Rig) -> None:
    first, second = rig.start_worker(), rig.start_worker()
    store, campaign_id = make(rig, numbers(30), pacing={"cps": 10, "max_concurrent": 10})
    store.act(campaign_id, "start")
    leader = wait_for(lambda: next((w for w in (first, second) if w.dispatcher.holds()), None), timeout=10)
    wait_for(lambda: len(originated(rig, campaign_id)) >= 8, timeout=10)
    rig.crash(leader)  # its lease lapses; the other worker takes the campaign over
    survivor = second if leader is first else first
    wait_for(lambda: store.state(campaign_id) == "finished", timeout=40)
    assert survivor.dispatcher.holds()
    shown = store.show(campaign_id)
    assert shown is not None and shown["counters"]["done"] == 30
    completed = Counter(c["contact"] for c in cdrs(rig, campaign_id) if c["status"] == "completed")
    per_job = Counter(r.variables.get("eslengine_job_id") for r in list(rig.switch.board.originates))
    contacts = {c["contact"] for c in cdrs(rig, campaign_id)}
    assert contacts == {"c%d" % i for i in range(30)}
    assert all(n == 1 for n in completed.values())
    assert all(per_job[c["id"]] == 1 for c in cdrs(rig, campaign_id))


def test_a_worker_stopped_hands_the_dispatcher_over_at_once(rig: Rig) -> None:
    first, second = rig.start_worker(), rig.start_worker()
    leader = wait_for(lambda: next((w for w in (first, second) if w.dispatcher.holds()), None), timeout=10)
    other = second if leader is first else first
    leader.stop(grace=1)
    rig.workers.remove(leader)
    stopped = time.monotonic()
    wait_for(other.dispatcher.holds, timeout=10)
    # Within a renewal of the one left (LEASE / 6 while it holds none), not the lease's whole lifetime.
    assert time.monotonic() - stopped < 3.0


def test_a_paused_campaigns_queued_calls_are_not_dialed_and_their_contacts_wait_again(rig: Rig) -> None:
    store, campaign_id = make(rig, numbers(3), pacing={"cps": 100, "max_concurrent": 10})
    store.act(campaign_id, "start")
    dispatcher = own_dispatcher(rig, store, campaign_id, credit=3.0)
    assert dispatcher.dispatch_campaign(campaign_id) == 3
    store.act(campaign_id, "pause")
    worker = rig.start_worker()
    worker.dispatcher.stop()  # the test's dispatcher applies the outcomes
    wait_for(lambda: len(cdrs(rig, campaign_id)) == 3)
    assert {(c["status"], c["cause"]) for c in cdrs(rig, campaign_id)} == {("cancelled", "CAMPAIGN_PAUSED")}
    assert originated(rig, campaign_id) == []
    dispatcher.store.ensure_cdr_group()
    dispatcher.read_outcomes()
    shown = store.show(campaign_id)
    assert shown is not None and shown["counters"]["queued"] == 3 and shown["counters"]["dialing"] == 0
    store.act(campaign_id, "resume")
    dispatcher._paces[campaign_id] = Pace(credit=3.0)
    assert dispatcher.dispatch_campaign(campaign_id) == 3  # attempt 2 of each: new calls
    wait_for(lambda: sum(c["status"] == "completed" for c in cdrs(rig, campaign_id)) == 3, timeout=15)
    dispatcher.read_outcomes()
    assert store.state(campaign_id) == "finished"
    assert sorted(c["attempt"] for c in cdrs(rig, campaign_id) if c["status"] == "completed") == ["2", "2", "2"]



def test_campaign_calls_go_in_the_bulk_lane_and_a_listed_number_is_skipped_not_called(rig: Rig) -> None:
    rig.queue.dnc.add("", [dnc.Entry("+15551230003", "asked not to be called", added=time.time())])
    store, campaign_id = make(rig, numbers(6), pacing={"cps": 100, "max_concurrent": 10})
    store.act(campaign_id, "start")
    dispatcher = own_dispatcher(rig, store, campaign_id, credit=6.0)
    dispatcher.dispatch_campaign(campaign_id)
    assert rig.client.xlen(rig.queue.keys.jobs_bulk) == 5 and rig.client.xlen(rig.queue.keys.jobs) == 0
    assert store.contact(campaign_id, "c3")["outcome"] == "skipped_dnc"
    rig.start_worker()
    wait_for(lambda: store.state(campaign_id) == "finished", timeout=30)
    shown = store.show(campaign_id)
    assert shown is not None
    assert (shown["counters"]["connected"], shown["counters"]["skipped_dnc"], shown["counters"]["done"]) == (5, 1, 6)
    assert all("5551230003" not in r.args for r in originated(rig, campaign_id))


def test_a_number_listed_after_its_campaign_call_was_queued_is_not_called_and_counted_skipped_dnc(
        rig: Rig) -> None:
    store, campaign_id = make(rig, numbers(3), pacing={"cps": 100, "max_concurrent": 10})
    store.act(campaign_id, "start")
    dispatcher = own_dispatcher(rig, store, campaign_id, credit=3.0)
    assert dispatcher.dispatch_campaign(campaign_id) == 3
    rig.queue.dnc.add("", [dnc.Entry("+15551230001", added=time.time())])
    worker = rig.start_worker()
    worker.dispatcher.stop()  # the test's dispatcher applies the outcomes
    wait_for(lambda: len(cdrs(rig, campaign_id)) == 3, timeout=20)
    assert {c["contact"]: c["status"] for c in cdrs(rig, campaign_id)}["c1"] == "skipped_dnc"
    assert all("5551230001" not in r.args for r in originated(rig, campaign_id))
    dispatcher.store.ensure_cdr_group()
    dispatcher.read_outcomes()
    shown = store.show(campaign_id)
    assert shown is not None
    assert (shown["counters"]["skipped_dnc"], shown["counters"]["connected"], shown["state"]) == (1, 2, "finished")

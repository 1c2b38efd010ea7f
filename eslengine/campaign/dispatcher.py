"""The campaign dispatcher: turns the contacts of running campaigns into
jobs at each campaign's pace, and applies each call's outcome to its
contact.

Every worker runs one; one at a time works, the one holding the lease
``Keys.dispatcher`` (renewed every ``LEASE / 3`` seconds; a worker that
dies lets it lapse and another takes over). Its two loops:

* dispatch: for each active campaign, the contacts due (pending, or
  waiting for a window that has opened) are taken one by one
  (``CampaignStore.take``: one script moves the contact to dialing, so a
  contact attempt is taken once) and queued with ``campaign_enqueue`` under
  an id derived from campaign, contact and attempt (``model.attempt_id``:
  queued twice, the second is refused). A contact outside its calling
  window moves to the waiting set until it opens. Pacing: ``decide.Pace``
  (calls a second) and the campaign's calls at once (checked by ``take``).
  The sweep looks at contacts dialing for over ``STALE`` seconds: one whose
  job never reached the queue (the dispatcher died in between) is queued
  again under the same id; one whose call has ended but whose CDR was never
  applied (trimmed off the stream unread, lost with a Redis restart) gets
  its outcome from the call's record.
* outcomes: the CDR stream, read through the consumer group ``campaigns``
  (``store.campaigns.CDR_GROUP``) under one consumer name, so that a new
  holder of the lease reads what the last one left unacknowledged first.
  Each CDR of a campaign's call is applied once (``CampaignStore.outcome``
  acts only while the contact is dialing that very call): a retry per the
  ladder, pending again (a call cancelled before dialing because the
  campaign was paused), or done, with its delivery report queued.
* retention: every ``RETENTION_EVERY`` seconds, the campaigns that ended
  ``ESLENGINE_CAMPAIGN_TTL`` ago are deleted, a batch of contacts at a time
  (``retention``), and deletions left half done by a dead process finished.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import gevent
import gevent.pool

from ..calls import CallRequest
from ..config import Config
from ..errors import DoNotCall, JobExists, QueueUnavailable, ValidationError
from ..lease import Lease
from ..status import FINAL
from ..store import JobQueue
from ..store.campaigns import CampaignStore
from . import decide, retention
from .model import Campaign, Contact, attempt_id, build_request, load_campaign, opening

log = logging.getLogger(__name__)

# Seconds the dispatcher's lease lasts unless renewed.
LEASE = 6.0
# The consumer name the holder of the lease reads the CDR stream as.
CONSUMER = "dispatcher"
# A contact dialing this long without its call's record is queued again.
STALE = 30.0
# Contacts looked at per campaign per round, at most.
ROUND = 200
# Calls queued at once.
ENQUEUING = 50
# Seconds between two retention sweeps (see retention).
RETENTION_EVERY = 60.0


def campaign_enqueue(queue: JobQueue, request: CallRequest, *, owner: str = "", account: str = "") -> str:
    """Queue one campaign call: the one way every campaign job is queued,
    in the bulk lane, so that interactive calls never wait behind it.
    Raises ``DoNotCall`` for a number on a do-not-call list."""
    return queue.enqueue(request, owner=owner, account=account, lane="bulk")


class Dispatcher:
    """One worker's campaign dispatcher (see the module docstring)."""

    def __init__(self, config: Config, queue: JobQueue, *, store: CampaignStore | None = None,
                 tick: float = 0.05, idle: float = 0.2, clock: Callable[[], float] = time.time,
                 on_report: Callable[[], None] = lambda: None) -> None:
        self.config = config
        self.queue = queue
        self.store = store or CampaignStore(queue.redis, queue.keys, record_ttl=queue.record_ttl)
        self.tick = tick
        self.idle = idle
        self.clock = clock
        self.on_report = on_report
        self.token = uuid.uuid4().hex
        self.lease = Lease(margin=1.0)
        self._paces: dict[str, decide.Pace] = {}
        self._campaigns: dict[str, tuple[str, Campaign]] = {}
        self._swept: dict[str, float] = {}
        # Campaigns left alone until then (monotonic seconds): see dispatch.
        self._broken: dict[str, float] = {}
        self._greenlets: list[gevent.Greenlet] = []
        self._pending_read = True
        self._enqueuing = gevent.pool.Pool(ENQUEUING)

    def start(self) -> None:
        self._greenlets = [gevent.spawn(self._lease_loop), gevent.spawn(self._dispatch_loop),
                           gevent.spawn(self._outcome_loop), gevent.spawn(self._retention_loop)]

    def stop(self, release: bool = True) -> None:
        """Stop; with ``release``, give the lease up at once (another worker
        takes over within a renewal) instead of letting it lapse."""
        gevent.killall(self._greenlets, timeout=5)
        self._greenlets = []
        held = self.holds()
        self.lease.end()
        if release and held:
            try:
                self.store.lease(self.token, 0)
            except QueueUnavailable as exc:
                log.warning("campaign dispatcher: lease left to lapse: %s", exc)

    def holds(self) -> bool:
        return self.lease.holds(time.monotonic())

    # ------------------------------------------------------------ the lease

    def _lease_loop(self) -> None:
        while True:
            sent = time.monotonic()
            try:
                got = self.store.lease(self.token, LEASE)
                if got:
                    if self.lease.renewed(sent, LEASE, unbroken=got == 1):
                        log.info("campaign dispatcher: this worker dispatches from now on")
                        self._pending_read = True
                        self._paces.clear()
                else:
                    self.lease.end()
            except QueueUnavailable as exc:
                log.warning("campaign dispatcher: lease not renewed: %s", exc)
                self.lease.failed()
            gevent.sleep(LEASE / 3 if self.holds() else LEASE / 6)

    # ------------------------------------------------------------ dispatch

    def _dispatch_loop(self) -> None:
        while True:
            pause = self.idle
            if self.holds():
                try:
                    if self.dispatch():
                        pause = self.tick
                except QueueUnavailable as exc:
                    log.warning("campaign dispatcher: Redis unavailable: %s", exc)
                    pause = 1.0
                except Exception:
                    log.exception("campaign dispatcher: dispatch failed")
                    pause = 1.0
            gevent.sleep(pause)

    def campaign(self, campaign_id: str, raw: dict[str, str]) -> Campaign:
        """The campaign of its hash ``raw``, read again whenever its stored
        document changed (``PATCH``: new pacing or window from the next round)."""
        doc = raw["doc"]
        cached = self._campaigns.get(campaign_id)
        if cached is None or cached[0] != doc:
            cached = (doc, load_campaign(json.loads(doc), self.config))
            self._campaigns[campaign_id] = cached
        return cached[1]

    def dispatch(self) -> bool:
        """One round over the active campaigns; whether any is active. A
        campaign that cannot be dispatched (its document no longer valid
        under this worker's settings, a bug) is logged and left alone for a
        minute; the others go on."""
        active = self.store.active()
        now = time.monotonic()
        for campaign_id in active:
            if not self.holds():
                break
            if self._broken.get(campaign_id, 0.0) > now:
                continue
            try:
                self.dispatch_campaign(campaign_id)
            except QueueUnavailable:
                raise
            except ValidationError as exc:
                log.error("campaign %s: not dispatched for a minute: its document is refused here: %s: %s",
                          campaign_id, exc.field, exc.reason)
                self._broken[campaign_id] = now + 60.0
            except Exception:
                log.exception("campaign %s: not dispatched for a minute", campaign_id)
                self._broken[campaign_id] = now + 60.0
        return bool(active)

    def dispatch_campaign(self, campaign_id: str) -> int:
        """Queue what ``campaign_id`` may start now; returns how many."""
        raw = self.store.raw(campaign_id)
        state = raw.get("state")
        if not raw or state not in ("running", "cancelled"):
            self.store.inactive(campaign_id)
            self._paces.pop(campaign_id, None)
            self._campaigns.pop(campaign_id, None)
            return 0
        campaign = self.campaign(campaign_id, raw)
        now = self.clock()
        self._sweep(campaign_id, campaign, raw, now)
        if state == "cancelled" or (campaign.valid_until is not None and now > campaign.valid_until.timestamp()):
            undone = self.store.undone(campaign_id, ROUND)
            if undone:
                self.store.drop(campaign_id, undone, "cancelled" if state == "cancelled" else "expired")
                self.on_report()
            elif state == "cancelled" and not int(raw.get("c:dialing") or 0):
                self.store.inactive(campaign_id)
            return 0
        room = campaign.max_concurrent - int(raw.get("c:dialing") or 0)
        pace = self._paces.setdefault(campaign_id, decide.Pace())
        allowed = pace.release(now, campaign.cps, min(room, ROUND))
        if allowed <= 0:
            return 0
        due = self.store.due(campaign_id, now, allowed * 2)
        moment = datetime.fromtimestamp(now, timezone.utc)
        nonce = raw.get("nonce", "")
        chosen: list[tuple[Contact, int, CallRequest | None, str]] = []
        for contact_id, found in zip(due, self.store.contacts(campaign_id, due)):
            if len(chosen) >= allowed:
                break
            if not found:
                continue
            contact = Contact.from_json(_json(found["doc"]))
            opens = opening(campaign, contact, moment)
            if opens is not None:
                self.store.wait(campaign_id, contact_id, decide.waits_until(opens, moment))
                continue
            tries = int(found.get("tries") or 0)
            try:
                chosen.append((contact, tries, build_request(campaign, campaign_id, contact, tries + 1, self.config,
                                                                   nonce=nonce), ""))
            except ValidationError as exc:
                chosen.append((contact, tries, None, "%s: %s" % (exc.field, exc.reason)))
        taken = self.store.take_many(campaign_id, [(c.id, tries, attempt_id(campaign_id, c.id, tries + 1, nonce))
                                                   for c, tries, _, _ in chosen], now, campaign.max_concurrent)
        started = 0
        for (contact, tries, request, refusal), took in zip(chosen, taken):
            if took != 1:
                continue
            if request is None:
                log.warning("campaign %s: contact %s refused: %s", campaign_id, contact.id, refusal)
                self.store.outcome(campaign_id, contact.id, attempt_id(campaign_id, contact.id, tries + 1, nonce),
                                   "finish",
                                   outcome="failed", cause="CALL_REJECTED")
                self.on_report()
                continue
            # Queued side by side: their scripts share the worker's pipelines.
            self._enqueuing.spawn(self._queue, request, raw, campaign_id, contact.id)
            started += 1
        self._enqueuing.join()
        pace.give_back(allowed - started)
        return started

    def _queue(self, request: CallRequest, raw: dict[str, str], campaign_id: str, contact_id: str) -> None:
        try:
            campaign_enqueue(self.queue, request, owner=raw.get("owner", ""), account=raw.get("account", ""))
        except DoNotCall as exc:
            # On a do-not-call list: the contact is done, not called.
            log.info("campaign %s: contact %s skipped: %s is on the %s do-not-call list", campaign_id, contact_id,
                     exc.number, exc.list)
            try:
                self.store.outcome(campaign_id, contact_id, request.id, "finish", outcome="skipped_dnc",
                                   cause="CALL_REJECTED")
            except QueueUnavailable as unavailable:
                log.warning("campaign %s: contact %s not ended (%s); the sweep tries again", campaign_id,
                            contact_id, unavailable)
                return
            self.on_report()
        except JobExists:
            pass  # queued before (the sweep found it slow): the same call
        except QueueUnavailable as exc:
            log.warning("job %s: campaign call not queued (%s); the sweep queues it", request.id, exc)

    def _sweep(self, campaign_id: str, campaign: Campaign, raw: dict[str, str], now: float) -> None:
        """Queue again, under the same id, the calls of contacts taken long
        ago whose job never reached the queue; at most every STALE / 3 s."""
        if now - self._swept.get(campaign_id, 0.0) < STALE / 3:
            return
        self._swept[campaign_id] = now
        stale = self.store.stale_dialing(campaign_id, now - STALE)
        found = [c for c in self.store.contacts(campaign_id, stale) if c.get("state") == "dialing" and c.get("call")]
        looked: list[str] = []
        for contact, call in zip(found, self.store.calls_ended([c["call"] for c in found])):
            contact_id = str(_json(contact["doc"])["id"])
            if call is None:
                request = self._rebuild(campaign, campaign_id, contact, raw.get("nonce", ""))
                if request is None:
                    continue
                log.warning("campaign %s: contact %s: call %s never queued; queueing it", campaign_id, contact_id,
                            contact["call"])
                self._queue(request, raw, campaign_id, contact_id)
            elif call["status"] in FINAL:
                # Its CDR never came (the stream trimmed before it was read,
                # or lost with a Redis restart): the record says the same.
                log.warning("campaign %s: contact %s: call %s ended without a CDR read; applying its record",
                            campaign_id, contact_id, contact["call"])
                self.apply({**call, "campaign": campaign_id, "contact": contact_id, "id": contact["call"]})
                continue
            looked.append(contact_id)
        self.store.touch_dialing(campaign_id, looked, now)

    def _rebuild(self, campaign: Campaign, campaign_id: str, found: dict[str, str],
                 nonce: str) -> CallRequest | None:
        """The call a dialing contact was taken for, built again."""
        try:
            return build_request(campaign, campaign_id, Contact.from_json(_json(found["doc"])),
                                 int(found.get("tries") or 1), self.config, check_policy=False, nonce=nonce)
        except ValidationError:
            return None

    # ------------------------------------------------------------ retention

    def _retention_loop(self) -> None:
        while True:
            gevent.sleep(RETENTION_EVERY if self.holds() else self.idle)
            if not self.holds():
                continue
            try:
                self.sweep_retention()
            except QueueUnavailable as exc:
                log.warning("campaign dispatcher: Redis unavailable: %s", exc)
            except Exception:
                log.exception("campaign dispatcher: retention sweep failed")

    def sweep_retention(self) -> list[str]:
        """Delete the campaigns that ended ``campaign_ttl`` seconds ago or
        more, and finish deletions left half done; returns their ids."""
        now = self.clock()
        swept = []
        for campaign_id in self.store.deleting():
            self.store.delete(campaign_id)
            swept.append(campaign_id)
        after = None
        while True:
            found = self.store.created_before(now - self.config.campaign_ttl, after)
            if not found:
                break
            for score, campaign_id, raw in found:
                after = (score, campaign_id)
                if retention.expired(raw, now, self.config.campaign_ttl) and self.store.begin_delete(campaign_id)[1]:
                    deleted = self.store.delete(campaign_id)
                    log.info("campaign %s: deleted, %d contact(s), ended over %ds ago", campaign_id, deleted,
                             self.config.campaign_ttl)
                    swept.append(campaign_id)
        return swept

    # ------------------------------------------------------------ outcomes

    def _outcome_loop(self) -> None:
        group = False
        while True:
            if not self.holds():
                gevent.sleep(self.idle)
                continue
            try:
                if not group:
                    self.store.ensure_cdr_group()
                    group = True
                self.read_outcomes(block_ms=500)
            except QueueUnavailable as exc:
                log.warning("campaign dispatcher: Redis unavailable: %s", exc)
                gevent.sleep(1.0)
            except Exception:
                log.exception("campaign dispatcher: reading outcomes failed")
                gevent.sleep(1.0)

    def read_outcomes(self, block_ms: int | None = None, count: int = 500) -> int:
        """Apply the CDRs not yet applied (first those read and left
        unacknowledged); returns how many were read."""
        entries = []
        if self._pending_read:
            entries = self.store.read_cdrs(CONSUMER, count, None, pending=True)
            if len(entries) < count:
                self._pending_read = False
        if not entries:
            entries = self.store.read_cdrs(CONSUMER, count, block_ms)
        done = []
        for entry_id, fields in entries:
            if fields.get("campaign"):
                self.apply(fields)
            done.append(entry_id)
        self.store.ack_cdrs(done)
        return len(entries)

    def apply(self, cdr: dict[str, str]) -> int:
        """One CDR of a campaign's call: see ``CampaignStore.outcome``."""
        campaign_id, contact_id, call_id = cdr["campaign"], cdr.get("contact", ""), cdr.get("id", "")
        found = self.store.contact(campaign_id, contact_id)
        if not found or found.get("state") != "dialing" or found.get("call") != call_id:
            return 0
        raw = self.store.raw(campaign_id)
        if not raw:
            return 0
        campaign = self.campaign(campaign_id, raw)
        ended = _time(cdr.get("ended_at")) or datetime.fromtimestamp(self.clock(), timezone.utc)
        decision = decide.after_call(campaign, raw.get("state", ""), Contact.from_json(_json(found["doc"])),
                                     retries_done=int(found.get("retries") or 0),
                                     first_at=float(found.get("first_at") or ended.timestamp()),
                                     status=cdr.get("status", ""), cause=cdr.get("cause", ""), ended=ended)
        result = self.store.outcome(campaign_id, contact_id, call_id, decision.action, when=decision.when,
                                    outcome=decision.outcome, cause=decision.cause)
        if result and decision.action == "finish":
            self.on_report()
        if result == 2:
            log.info("campaign %s: finished", campaign_id)
        return result


def _json(text: str) -> Any:
    return json.loads(text)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None

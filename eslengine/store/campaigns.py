"""Campaigns in Redis: documents, contacts, counters, state, and what the
dispatcher and the outcome reader do with them.

A campaign is one hash (``Keys.campaign``): its document (``doc``, the
``Campaign`` JSON), ``state``, owner and account, times, and its counters:
``c:<state>`` for the contacts in each state (queued, retrying,
waiting_window, dialing, done; each contact is counted in exactly one),
``o:<outcome>`` for the done ones by outcome (connected, failed,
cancelled, expired, skipped_dnc), ``f:<cause>`` for the failed ones by
hangup cause, ``total`` and ``calls`` (attempts placed).

A contact is a hash (``Keys.contact``): ``doc`` (the ``Contact`` JSON),
``state``, ``tries`` (calls queued for it), ``retries`` (of its ladder),
``call`` (its current call's id), ``first_at``, and once done ``outcome``,
``cause``, ``finished_at``. Contacts to call are in the pending set scored
by when they may be; those outside their calling window in the waiting
set, by when it opens; those with a call under way in the dialing set.

Every move of a contact is one script that checks the contact's state
first (``scripts/campaign_*.lua``): a contact is taken for a call once,
and a call's outcome counts once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis

from ..campaign.model import ACTIONS, Campaign, Contact
from ..errors import EslEngineError
from .clock import now_iso
from .connection import redis_errors
from .executor import Executor
from .keys import Keys, report_member

# The consumer group the campaigns read the CDR stream through.
CDR_GROUP = "campaigns"
# Contacts added in one script.
BATCH = 1000
COUNTERS = ("queued", "waiting_window", "dialing", "retrying", "done")
OUTCOMES = ("connected", "failed", "cancelled", "expired", "skipped_dnc")


class CampaignClosed(EslEngineError):
    """The campaign is missing, finished or cancelled: it takes no contacts."""


def delivery_id(campaign_id: str, contact_id: str) -> str:
    """A contact's delivery report's id: the same on every attempt."""
    return "%s.%s" % (campaign_id, contact_id)


class CampaignStore:
    """The campaigns under one prefix."""

    def __init__(self, client: redis.Redis, keys: Keys, *, record_ttl: int = 7 * 24 * 3600,
                 run: Executor | None = None) -> None:
        self.redis: Any = client
        self.keys = keys.of_shard(0)  # campaigns, and their reports' outbox, are the base shard's
        self.record_ttl = record_ttl
        self.run = run or Executor(client)

    # ------------------------------------------------------------ documents

    def create(self, campaign_id: str, campaign: Campaign, *, owner: str = "", account: str = "",
               nonce: str = "") -> None:
        """Store a new campaign; ``nonce``: its secret part of every attempt
        id (``model.attempt_id``), kept in the hash, never shown."""
        now = now_iso()
        fields = {"nonce": nonce, "id": campaign_id, "doc": json.dumps(campaign.to_json(), separators=(",", ":")),
                  "state": "created", "created_at": now, "updated_at": now, "total": "0",
                  "owner": owner, "account": account, "notify": "1" if campaign.notify_url else "0"}
        with redis_errors("create campaign"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self.keys.campaign(campaign_id), mapping=fields)
            pipe.zadd(self.keys.campaigns, {campaign_id: int(time.time() * 1_000_000)})
            pipe.execute()

    def add_contacts(self, campaign_id: str, contacts: Sequence[Contact]) -> list[int]:
        """Add contacts (at most ``BATCH``) in one step; returns the places
        of those whose id the campaign has already (not added). Raises
        ``CampaignClosed``."""
        if not contacts:
            return []
        keys = [self.keys.campaign(campaign_id), self.keys.campaign_pending(campaign_id),
                self.keys.campaign_contacts(campaign_id), *[self.keys.contact(campaign_id, c.id) for c in contacts]]
        args = [now_iso()]
        for contact in contacts:
            args += [contact.id, json.dumps(contact.to_json(), separators=(",", ":"))]
        with redis_errors("add contacts"):
            reply = self.run.script("campaign_add", keys, args)
        if reply == -1:
            raise CampaignClosed(campaign_id)
        return [int(i) for i in reply]

    def raw(self, campaign_id: str) -> dict[str, str]:
        """The campaign's hash (empty when there is none)."""
        with redis_errors("read campaign"):
            return dict(self.redis.hgetall(self.keys.campaign(campaign_id)))

    def state(self, campaign_id: str) -> str:
        with redis_errors("read campaign"):
            return str(self.redis.hget(self.keys.campaign(campaign_id), "state") or "")

    def show(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign as the API shows it, with its live counters, or None."""
        with redis_errors("read campaign"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hgetall(self.keys.campaign(campaign_id))
            pipe.zrange(self.keys.campaign_waiting(campaign_id), 0, 0, withscores=True)
            raw, first = pipe.execute()
        if not raw:
            return None
        return present(raw, first[0][1] if first else None)

    def act(self, campaign_id: str, action: str) -> tuple[str, bool]:
        """Apply ``action`` (``model.ACTIONS``): (the state it was in, whether
        it moved). ('', False) when there is no such campaign."""
        sources, target = ACTIONS[action]
        with redis_errors("campaign " + action):
            was = str(self.run.script("campaign_state",
                                      [self.keys.campaign(campaign_id), self.keys.active_campaigns],
                                      [target, *sorted(sources), campaign_id, now_iso()]))
        return was, was in sources

    def contact(self, campaign_id: str, contact_id: str) -> dict[str, str]:
        with redis_errors("read contact"):
            return dict(self.redis.hgetall(self.keys.contact(campaign_id, contact_id)))

    def patch(self, campaign_id: str, was: str, document: Mapping[str, Any]) -> str:
        """Store ``document`` in place of ``was`` (``campaign_patch.lua``):
        'ok', 'changed' or the state that refuses it."""
        with redis_errors("change campaign"):
            return str(self.run.script("campaign_patch", [self.keys.campaign(campaign_id)],
                                       [was, json.dumps(document, separators=(",", ":")), now_iso()]))

    def recheck_waiting(self, campaign_id: str, now: float, batch: int = BATCH) -> int:
        """Make every contact waiting for its window due at ``now``, ``batch``
        a step, so that the dispatcher reads each one's window again (after
        it changed); returns how many."""
        waiting = self.keys.campaign_waiting(campaign_id)
        moved = 0
        with redis_errors("contacts waiting"):
            while True:
                ids = self.redis.zrangebyscore(waiting, "(%r" % now, "+inf", start=0, num=batch)
                if not ids:
                    return moved
                self.redis.zadd(waiting, {c: now for c in ids}, xx=True)
                moved += len(ids)

    # ------------------------------------------------------------ listings

    def page(self, after: tuple[int, str] | None, count: int) -> list[tuple[int, str, dict[str, str]]]:
        """Up to ``count`` campaigns, newest first, after the cursor
        ``after`` (the score and id of the last one seen): (score, id, hash)."""
        high = "+inf" if after is None else str(after[0])
        with redis_errors("list campaigns"):
            # Members of one score come in reverse order of their ids: skip
            # those up to and including the cursor's.
            found = self.redis.zrevrangebyscore(self.keys.campaigns, high, "-inf", start=0, num=count + 16,
                                                withscores=True)
            chosen = [(int(score), str(member)) for member, score in found
                      if after is None or int(score) < after[0] or str(member) < after[1]][:count]
            pipe = self.redis.pipeline(transaction=False)
            for _, campaign_id in chosen:
                pipe.hgetall(self.keys.campaign(campaign_id))
            raws = pipe.execute()
        return [(score, campaign_id, dict(raw)) for (score, campaign_id), raw in zip(chosen, raws)]

    def contacts_page(self, campaign_id: str, after: int | None,
                      count: int) -> list[tuple[int, dict[str, str], float | None]]:
        """Up to ``count`` contacts in the order they were added, after the
        one numbered ``after``: (its number, its hash, its score in the
        pending or waiting set, if it is in one)."""
        index = self.keys.campaign_contacts(campaign_id)
        with redis_errors("list contacts"):
            found = self.redis.zrangebyscore(index, "-inf" if after is None else "(%d" % after, "+inf", start=0,
                                             num=count, withscores=True)
            pipe = self.redis.pipeline(transaction=False)
            for contact_id, _ in found:
                pipe.hgetall(self.keys.contact(campaign_id, contact_id))
                pipe.zscore(self.keys.campaign_pending(campaign_id), contact_id)
                pipe.zscore(self.keys.campaign_waiting(campaign_id), contact_id)
            replies = pipe.execute()
        out = []
        for i, (_, seq) in enumerate(found):
            raw, pending, waiting = replies[3 * i:3 * i + 3]
            due = pending if pending is not None else waiting
            out.append((int(seq), dict(raw), None if due is None else float(due)))
        return out

    # ------------------------------------------------------------ deletion

    def begin_delete(self, campaign_id: str) -> tuple[str, bool]:
        """Mark the campaign deleting (``campaign_delete.lua``): (the state
        it was in, '' when there is none; whether it is deleting now)."""
        keys = [self.keys.campaign(campaign_id), self.keys.campaigns, self.keys.active_campaigns,
                self.keys.deleting_campaigns]
        with redis_errors("delete campaign"):
            was, ok = self.run.script("campaign_delete", keys, [campaign_id, now_iso()])
        return str(was), bool(int(ok))

    def delete_batch(self, campaign_id: str, count: int = BATCH) -> int:
        """Delete up to ``count`` contacts of a deleting campaign, the first
        of its index; returns how many (0: none left)."""
        index = self.keys.campaign_contacts(campaign_id)
        with redis_errors("delete contacts"):
            ids = self.redis.zrange(index, 0, count - 1)
            if ids:
                pipe = self.redis.pipeline(transaction=False)
                pipe.delete(*[self.keys.contact(campaign_id, c) for c in ids])
                pipe.zrem(index, *ids)
                pipe.execute()
        return len(ids)

    def end_delete(self, campaign_id: str) -> None:
        """Delete what is left of a deleting campaign once its contacts are
        gone; its hash becomes a tombstone (state ``deleted``, kept
        ``record_ttl``) so that its calls still queued are not dialed."""
        with redis_errors("delete campaign"):
            pipe = self.redis.pipeline(transaction=True)
            pipe.delete(self.keys.campaign_pending(campaign_id), self.keys.campaign_waiting(campaign_id),
                        self.keys.campaign_dialing(campaign_id), self.keys.campaign_contacts(campaign_id),
                        self.keys.campaign(campaign_id))
            pipe.hset(self.keys.campaign(campaign_id), mapping={"id": campaign_id, "state": "deleted",
                                                               "deleted_at": now_iso()})
            pipe.expire(self.keys.campaign(campaign_id), self.record_ttl)
            pipe.srem(self.keys.deleting_campaigns, campaign_id)
            pipe.execute()

    def delete(self, campaign_id: str, batch: int = BATCH) -> int:
        """Delete every key of a campaign ``begin_delete`` marked, ``batch``
        contacts a step (Redis never blocks long, whatever the size);
        returns how many contacts were deleted."""
        deleted = 0
        while True:
            n = self.delete_batch(campaign_id, batch)
            if not n:
                break
            deleted += n
        self.end_delete(campaign_id)
        return deleted

    def deleting(self) -> list[str]:
        """Campaigns whose deletion began and did not end (its process died)."""
        with redis_errors("deleting campaigns"):
            return sorted(self.redis.smembers(self.keys.deleting_campaigns))

    def created_before(self, moment: float, after: tuple[int, str] | None = None,
                       count: int = 500) -> list[tuple[int, str, dict[str, str]]]:
        """Up to ``count`` campaigns created before ``moment`` (epoch
        seconds), oldest first, after the cursor ``after``: (score, id,
        the fields state, ended_at, cancelled_at)."""
        low = "-inf" if after is None else str(after[0])
        with redis_errors("old campaigns"):
            found = self.redis.zrangebyscore(self.keys.campaigns, low, str(int(moment * 1_000_000)), start=0,
                                             num=count + 16, withscores=True)
            chosen = [(int(score), str(member)) for member, score in found
                      if after is None or int(score) > after[0] or str(member) > after[1]][:count]
            pipe = self.redis.pipeline(transaction=False)
            for _, campaign_id in chosen:
                pipe.hmget(self.keys.campaign(campaign_id), ["state", "ended_at", "cancelled_at"])
            replies = pipe.execute()
        return [(score, campaign_id, {k: v for k, v in zip(("state", "ended_at", "cancelled_at"), reply) if v})
                for (score, campaign_id), reply in zip(chosen, replies)]

    # ------------------------------------------------------------ the dispatcher

    def active(self) -> list[str]:
        with redis_errors("active campaigns"):
            return sorted(self.redis.smembers(self.keys.active_campaigns))

    def inactive(self, campaign_id: str) -> None:
        with redis_errors("active campaigns"):
            self.redis.srem(self.keys.active_campaigns, campaign_id)

    def due(self, campaign_id: str, now: float, limit: int) -> list[str]:
        """Up to ``limit`` contacts that may be called at ``now``: pending
        ones due, then waiting ones whose window has opened."""
        with redis_errors("due contacts"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrangebyscore(self.keys.campaign_pending(campaign_id), "-inf", repr(now), start=0, num=limit)
            pipe.zrangebyscore(self.keys.campaign_waiting(campaign_id), "-inf", repr(now), start=0, num=limit)
            pending, waiting = pipe.execute()
        return [*pending, *waiting][:limit]

    def undone(self, campaign_id: str, limit: int) -> list[str]:
        """Up to ``limit`` contacts not under way (pending or waiting), due or not."""
        with redis_errors("contacts"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.zrange(self.keys.campaign_pending(campaign_id), 0, limit - 1)
            pipe.zrange(self.keys.campaign_waiting(campaign_id), 0, limit - 1)
            pending, waiting = pipe.execute()
        return [*pending, *waiting][:limit]

    def contacts(self, campaign_id: str, contact_ids: Iterable[str]) -> list[dict[str, str]]:
        with redis_errors("read contacts"):
            pipe = self.redis.pipeline(transaction=False)
            for contact_id in contact_ids:
                pipe.hgetall(self.keys.contact(campaign_id, contact_id))
            return [dict(found) for found in pipe.execute()]

    def take(self, campaign_id: str, contact_id: str, tries: int, call_id: str, now: float,
             max_concurrent: int) -> int:
        """1: the contact is dialing ``call_id`` now; 0: it or the campaign
        moved meanwhile; -1: the campaign has ``max_concurrent`` under way."""
        return self.take_many(campaign_id, [(contact_id, tries, call_id)], now, max_concurrent)[0]

    def take_many(self, campaign_id: str, items: Sequence[tuple[str, int, str]], now: float,
                  max_concurrent: int) -> list[int]:
        """``take`` for each (contact id, tries, call id), in one step."""
        if not items:
            return []
        keys = [self.keys.campaign(campaign_id), self.keys.campaign_pending(campaign_id),
                self.keys.campaign_waiting(campaign_id), self.keys.campaign_dialing(campaign_id),
                *[self.keys.contact(campaign_id, contact_id) for contact_id, _, _ in items]]
        args = [repr(now), str(max_concurrent)]
        for contact_id, tries, call_id in items:
            args += [contact_id, str(tries), call_id]
        with redis_errors("take contacts"):
            return [int(r) for r in self.run.script("campaign_take", keys, args)]

    def wait(self, campaign_id: str, contact_id: str, opens: float) -> bool:
        keys = [self.keys.campaign(campaign_id), self.keys.contact(campaign_id, contact_id),
                self.keys.campaign_pending(campaign_id), self.keys.campaign_waiting(campaign_id)]
        with redis_errors("contact waits"):
            return bool(self.run.script("campaign_wait", keys, [contact_id, repr(opens)]))

    def stale_dialing(self, campaign_id: str, before: float, limit: int = 100) -> list[str]:
        """Contacts taken for a call before ``before`` (epoch seconds) whose
        outcome has not come."""
        with redis_errors("dialing contacts"):
            return list(self.redis.zrangebyscore(self.keys.campaign_dialing(campaign_id), "-inf", repr(before),
                                                 start=0, num=limit))

    def calls_ended(self, call_ids: Sequence[str]) -> list[dict[str, str] | None]:
        """Each call's ``status``, ``hangup_cause`` and ``ended_at`` (those it
        has), or None where it has no record (its job never reached the queue)."""
        with redis_errors("read calls"):
            pipe = self.redis.pipeline(transaction=False)
            for call_id in call_ids:
                pipe.hmget(self.keys.call(call_id), ["status", "hangup_cause", "ended_at"])
            found = pipe.execute()
        return [None if status is None else {"status": status, "cause": cause or "", "ended_at": ended or ""}
                for status, cause, ended in found]

    def touch_dialing(self, campaign_id: str, contact_ids: Sequence[str], now: float) -> None:
        """The contacts' calls were looked at ``now``: not stale again before STALE."""
        if contact_ids:
            with redis_errors("dialing contacts"):
                self.redis.zadd(self.keys.campaign_dialing(campaign_id), {c: now for c in contact_ids}, xx=True)

    def outcome(self, campaign_id: str, contact_id: str, call_id: str, action: str, *, when: float = 0.0,
                outcome: str = "", cause: str = "") -> int:
        """Apply a call's outcome to its contact (``campaign_outcome.lua``):
        0 when the contact is not dialing that call (counted already), 1,
        or 2 when the campaign finished with it."""
        member = report_member(campaign_id, contact_id)
        keys = [self.keys.campaign(campaign_id), self.keys.contact(campaign_id, contact_id),
                self.keys.campaign_pending(campaign_id), self.keys.campaign_dialing(campaign_id),
                self.keys.webhook(member), self.keys.webhooks]
        args = [contact_id, call_id, action, repr(when), outcome, cause, now_iso(), member,
                delivery_id(campaign_id, contact_id), str(self.record_ttl)]
        with redis_errors("contact outcome"):
            return int(self.run.script("campaign_outcome", keys, args))

    def drop(self, campaign_id: str, contact_ids: Sequence[str], outcome: str) -> int:
        """End contacts not under way with ``outcome``; returns how many ended."""
        if not contact_ids:
            return 0
        keys = [self.keys.campaign(campaign_id), self.keys.campaign_pending(campaign_id),
                self.keys.campaign_waiting(campaign_id), self.keys.webhooks]
        args = [outcome, now_iso(), str(self.record_ttl)]
        for contact_id in contact_ids:
            member = report_member(campaign_id, contact_id)
            keys += [self.keys.contact(campaign_id, contact_id), self.keys.webhook(member)]
            args += [contact_id, member, delivery_id(campaign_id, contact_id)]
        with redis_errors("end contacts"):
            return int(self.run.script("campaign_drop", keys, args))

    def lease(self, token: str, ttl: float) -> int:
        """Take or renew the dispatcher's lease for ``ttl`` seconds: 2 taken,
        1 renewed, 0 another worker holds it. ``ttl`` 0: give it up, if held."""
        with redis_errors("dispatcher lease"):
            return int(self.run.script("campaign_lease", [self.keys.dispatcher], [token, str(int(ttl * 1000))]))

    # ------------------------------------------------------------ the CDR stream

    def ensure_cdr_group(self) -> None:
        with redis_errors("create CDR group"):
            try:
                self.redis.xgroup_create(self.keys.cdr, CDR_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def read_cdrs(self, consumer: str, count: int, block_ms: int | None,
                  pending: bool = False) -> list[tuple[str, dict[str, str]]]:
        """CDRs for the campaigns' group: new ones, or (``pending``) those
        this consumer read before and did not acknowledge."""
        with redis_errors("read CDRs"):
            reply = self.redis.xreadgroup(CDR_GROUP, consumer, {self.keys.cdr: "0" if pending else ">"},
                                          count=count, block=None if pending else block_ms)
        return [(entry_id, fields or {}) for _, found in reply or [] for entry_id, fields in found]

    def ack_cdrs(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            with redis_errors("ack CDRs"):
                self.redis.xack(self.keys.cdr, CDR_GROUP, *entry_ids)


def present(raw: Mapping[str, str], waiting_until: float | None) -> dict[str, Any]:
    """A campaign's hash as the API shows it."""
    counters = {name: int(raw.get("c:" + name) or 0) for name in COUNTERS}
    outcomes = {name: int(raw.get("o:" + name) or 0) for name in OUTCOMES}
    out: dict[str, Any] = {
        "id": raw.get("id", ""),
        "name": json.loads(raw["doc"]).get("name") if raw.get("doc") else "",
        "state": raw.get("state", ""),
        "contacts": int(raw.get("total") or 0),
        "calls": int(raw.get("calls") or 0),
        "counters": {**counters, **outcomes},
        "failed_by_cause": {k[2:]: int(v) for k, v in sorted(raw.items()) if k.startswith("f:") and int(v)},
        "waiting_until": now_iso(waiting_until) if waiting_until is not None and counters["waiting_window"] else None,
    }
    for name in ("created_at", "updated_at", "running_at", "paused_at", "cancelled_at", "ended_at"):
        if raw.get(name):
            out[name] = raw[name]
    for name in ("owner", "account"):
        if raw.get(name):
            out[name] = raw[name]
    if raw.get("doc"):
        out["campaign"] = json.loads(raw["doc"])
    return out

"""``GET /v1/campaigns`` and ``GET /v1/campaigns/<id>/contacts``: the
query each takes, and what each lists of a campaign or a contact. Pure:
the routes read the pages (``CampaignStore.page``, ``contacts_page``) and
hand them here.

    GET /v1/campaigns?state=running,paused&limit=50&cursor=...
    GET /v1/campaigns/<id>/contacts?state=failed&limit=100&cursor=...

Campaigns come newest first, contacts in the order they were added.
``next_cursor`` continues where a page stopped (also when a page holds
fewer than ``limit``: a page reads at most ``SCAN_LIMIT`` of the index,
however few match); it is null at the end. The cursor is that of
``GET /v1/calls`` (``listing.encode_cursor``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..campaign.model import STATES
from ..errors import ValidationError
from ..store.campaigns import COUNTERS, OUTCOMES
from ..store.clock import now_iso
from .listing import decode_cursor

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
# Campaigns or contacts of the index one page reads at most.
SCAN_LIMIT = 1000
# What a contact listing's ``state`` may name: a contact's state, or the
# outcome of a done one.
CONTACT_STATES = (*COUNTERS, *OUTCOMES)


@dataclass(frozen=True)
class Page:
    """A listing's query: the states asked for (none: all), how many, and
    after which (score, id)."""

    states: frozenset[str] = frozenset()
    limit: int = DEFAULT_LIMIT
    after: tuple[int, str] | None = None


def parse_page(args: Mapping[str, str], states: tuple[str, ...]) -> Page:
    """The query ``args`` (one value each) of a listing whose ``state`` may
    name ``states``; ``ValidationError`` naming the parameter."""
    chosen: frozenset[str] = frozenset()
    limit = DEFAULT_LIMIT
    after = None
    for name, value in args.items():
        if name == "state":
            chosen = frozenset(s.strip() for s in value.split(",") if s.strip())
            if not chosen or chosen - set(states):
                raise ValidationError("state", "one or more of %s, comma-separated" % ", ".join(states))
        elif name == "limit":
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
                raise ValidationError("limit", "a whole number from 1 to %d" % MAX_LIMIT)
            limit = int(value)
        elif name == "cursor":
            after = decode_cursor(value)
        else:
            raise ValidationError(name[:40] or "query", "unknown query parameter (state, limit, cursor)")
    return Page(chosen, limit, after)


def parse_campaigns_query(args: Mapping[str, str]) -> Page:
    return parse_page(args, STATES)


def parse_contacts_query(args: Mapping[str, str]) -> Page:
    return parse_page(args, CONTACT_STATES)


def contact_matches(page: Page, raw: Mapping[str, str]) -> bool:
    """Whether a contact's hash is one ``page.states`` asks for (its state,
    or for a done one also its outcome)."""
    if not page.states:
        return True
    return raw.get("state") in page.states or (raw.get("state") == "done" and raw.get("outcome") in page.states)


def contact_summary(raw: Mapping[str, str], due: float | None, now: float) -> dict[str, Any]:
    """A contact as its campaign's listing shows it: its id and numbers,
    state, attempts (calls placed), retries, its last call and that call's
    cause, its outcome once done, and ``next_due``: when its next call may
    be, if that is after ``now`` (null: as soon as the pace allows, or
    not to be called again)."""
    try:
        doc = json.loads(raw.get("doc") or "{}")
    except ValueError:
        doc = {}
    out: dict[str, Any] = {"id": doc.get("id", ""), "numbers": doc.get("numbers", []),
                           "state": raw.get("state", ""), "attempts": int(raw.get("tries") or 0),
                           "retries": int(raw.get("retries") or 0), "last_call": raw.get("last_call") or None,
                           "last_cause": raw.get("last_cause") or None, "outcome": raw.get("outcome") or None,
                           "cause": raw.get("cause") or None}
    if raw.get("state") == "dialing":
        out["call"] = raw.get("call")
    out["next_due"] = now_iso(due) if due is not None and due > now and raw.get("state") != "done" else None
    if raw.get("finished_at"):
        out["finished_at"] = raw["finished_at"]
    return out

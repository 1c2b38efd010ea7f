"""What the dispatcher decides: how many calls a campaign may start now,
and what becomes of a contact once its call has ended.

Pure: times are arguments, nothing here reads a clock or Redis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .ladder import next_try
from .model import Campaign, Contact, contact_zones

# Hangup causes of a campaign's call cancelled before it was dialed because
# the campaign was paused or cancelled (the worker's check before originate).
PAUSED_CAUSE = "CAMPAIGN_PAUSED"
CANCELLED_CAUSE = "CAMPAIGN_CANCELLED"
# The final status of a call to a number on a do-not-call list.
SKIPPED_DNC = "skipped_dnc"
# How long a contact whose window does not open within the horizon waits
# before it is looked at again.
RECHECK = timedelta(days=1)


@dataclass
class Pace:
    """A campaign's calls-per-second allowance: ``credit`` calls may start,
    earned at ``cps`` a second up to one second's worth (at least one)."""

    credit: float = 1.0
    at: float = 0.0

    def release(self, now: float, cps: float, room: int) -> int:
        """How many calls may start at ``now`` with ``room`` more allowed at
        once; the allowance is spent as if they all do (``give_back`` what
        did not)."""
        if self.at:
            self.credit = min(max(1.0, cps), self.credit + cps * max(0.0, now - self.at))
        self.at = now
        n = max(0, min(math.floor(self.credit), room))
        self.credit -= n
        return n

    def give_back(self, n: int) -> None:
        self.credit += n


@dataclass(frozen=True)
class Decision:
    """What becomes of a contact whose call ended: ``retry`` (pending again
    at ``when``, one retry more), ``again`` (pending again at ``when``: the
    call was never dialed) or ``finish`` (with ``outcome`` and ``cause``)."""

    action: str
    when: float = 0.0
    outcome: str = ""
    cause: str = ""


def after_call(campaign: Campaign, state: str, contact: Contact, *, retries_done: int, first_at: float,
               status: str, cause: str, ended: datetime) -> Decision:
    """The contact's next step after its call ended with ``status`` and
    ``cause`` at ``ended``; ``state``: the campaign's state now."""
    if status == "completed":
        return Decision("finish", outcome="connected", cause=cause)
    if status == SKIPPED_DNC:
        return Decision("finish", outcome="skipped_dnc", cause=cause)
    if status == "cancelled":
        if cause == PAUSED_CAUSE and state in ("running", "paused"):
            return Decision("again", when=ended.timestamp())
        return Decision("finish", outcome="cancelled", cause=cause)
    if state == "cancelled":
        return Decision("finish", outcome="failed", cause=cause)
    first = datetime.fromtimestamp(first_at, timezone.utc)
    following = next_try(campaign.ladder, retries_done=retries_done, cause=cause, first_tried=first,
                         failed_at=ended, window=campaign.window,
                         zones=contact_zones(contact, campaign.zone) if campaign.window else ())
    if following.at is None or (campaign.valid_until is not None and following.at > campaign.valid_until):
        return Decision("finish", outcome="failed", cause=cause)
    return Decision("retry", when=following.at.timestamp(), cause=cause)


def waits_until(opening: datetime, now: datetime) -> float:
    """When a contact whose window opens at ``opening`` is looked at again
    (``datetime.max`` — it never opens within the horizon — rechecks later)."""
    if opening == datetime.max.replace(tzinfo=timezone.utc):
        return (now + RECHECK).timestamp()
    return opening.timestamp()

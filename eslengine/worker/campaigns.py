"""Whether a campaign's call may still be dialed: the worker asks before it
claims a campaign's job and again just before the originate is written.

A paused, cancelled or deleted campaign's job still queued is not dialed: its call
ends ``cancelled`` with hangup cause ``CAMPAIGN_PAUSED`` or
``CAMPAIGN_CANCELLED`` (and its CDR takes the contact back to pending, or
ends it). A running campaign's state is read from Redis again after
``FRESH`` seconds, so that pausing stops new originates within a second; a
stopped one's every time it is asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..calls import CallRequest
from ..campaign.decide import CANCELLED_CAUSE, PAUSED_CAUSE
from ..store import JobQueue, redis_errors

# Seconds a campaign's state read from Redis is trusted.
FRESH = 0.25
# States in which a campaign's calls are not dialed, and their causes.
STOPPED = {"paused": PAUSED_CAUSE, "cancelled": CANCELLED_CAUSE, "finished": CANCELLED_CAUSE,
           "deleting": CANCELLED_CAUSE, "deleted": CANCELLED_CAUSE}


def campaign_of(request: CallRequest) -> str:
    value = request.metadata.get("campaign") if request.metadata else None
    return value if isinstance(value, str) else ""


class CampaignGate:
    """Campaign states, read at most every FRESH seconds."""

    def __init__(self, queue: JobQueue, clock: Callable[[], float] = time.monotonic) -> None:
        self.queue = queue
        self.clock = clock
        self._states: dict[str, tuple[str, float]] = {}

    def stopped(self, request: CallRequest) -> str | None:
        """The hangup cause to end ``request`` with when its campaign's
        calls must not be dialed now; None for any other call."""
        campaign = campaign_of(request)
        if not campaign:
            return None
        now = self.clock()
        state, at = self._states.get(campaign, ("", -1e9))
        # A stopped state is read again every time: a call is never ended
        # for a pause its campaign has been resumed from since.
        if now - at > FRESH or state in STOPPED:
            with redis_errors("campaign state"):
                state = str(self.queue.redis.hget(self.queue.keys.campaign(campaign), "state") or "")
            if len(self._states) > 10_000:
                self._states.clear()
            self._states[campaign] = (state, now)
        return STOPPED.get(state)

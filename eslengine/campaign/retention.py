"""How long an ended campaign is kept, and which campaigns a listing shows.

Pure. A finished or cancelled campaign is deleted (every key of it, a batch
at a time: ``CampaignStore.delete``) once ``ESLENGINE_CAMPAIGN_TTL`` seconds
have passed since it ended: since its last contact was done, or since it
was cancelled when that is later. The dispatcher's sweep
(``dispatcher.Dispatcher.sweep_retention``) asks ``expired`` of the
campaigns created at least that long ago.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

# Default ESLENGINE_CAMPAIGN_TTL: 30 days.
DEFAULT_TTL = 30 * 24 * 3600
# States a campaign may be deleted in (paused: only with no call under way).
DELETABLE = ("created", "paused", "finished", "cancelled")
ENDED = ("finished", "cancelled")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def ended(raw: Mapping[str, str]) -> float | None:
    """When a finished or cancelled campaign ended (epoch seconds); None
    for any other (or one without the time)."""
    if raw.get("state") not in ENDED:
        return None
    times = [t for t in (_epoch(raw.get("ended_at")), _epoch(raw.get("cancelled_at"))) if t is not None]
    return max(times) if times else None


def expired(raw: Mapping[str, str], now: float, ttl: float) -> bool:
    """Whether the campaign (its hash, or the fields state, ended_at,
    cancelled_at of it) ended ``ttl`` seconds or more before ``now``."""
    at = ended(raw)
    return at is not None and now - at >= ttl

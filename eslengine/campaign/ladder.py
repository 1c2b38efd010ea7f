"""Retry ladders: when a campaign's contact whose call failed is tried
again, or why it is given up.

Pure. A ladder names the causes it retries (the request's retry groups:
``busy``, ``no_answer``, ``temporary``), the wait before each retry (one
fixed delay, a list whose last step repeats, or a preset: Infobip's
1, 2, 5, 10, 20, 30 min, 1, 2, 4, 8, 16, 24 h), the most retries, and a
validity period counted from the contact's first attempt, after which it
is given up. A retry due outside the contact's calling window waits for
the window to open (``calling_windows.next_opening``), and still counts
against the validity period.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..calling_windows import CallingWindow, next_opening
from ..calls import RETRY_GROUPS
from ..errors import ValidationError

MINUTE, HOUR = 60, 3600
PRESETS: dict[str, tuple[int, ...]] = {
    # Infobip's bulk click-to-call retry schedule.
    "infobip": (1 * MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 20 * MINUTE, 30 * MINUTE,
                1 * HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR, 16 * HOUR, 24 * HOUR),
}
MIN_DELAY = 10
MAX_DELAY = 7 * 24 * HOUR
MAX_STEPS = 48
MAX_RETRIES = 100
DEFAULT_VALIDITY = 48 * HOUR
MAX_VALIDITY = 30 * 24 * HOUR
_DURATION = re.compile(r"([0-9]{1,7})([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": MINUTE, "h": HOUR, "d": 24 * HOUR}

# Why a contact is not tried again (``Next.reason``).
NOT_RETRIED = "not_retried_cause"
EXHAUSTED = "ladder_exhausted"
EXPIRED = "validity_expired"
NEVER_OPEN = "calling_window_never_opens"


@dataclass(frozen=True)
class RetryLadder:
    """The causes retried, the waits (the last one repeats), how many
    retries at most, and the validity period (seconds)."""

    on: frozenset[str] = frozenset(RETRY_GROUPS)
    delays: tuple[int, ...] = PRESETS["infobip"]
    max_retries: int = len(PRESETS["infobip"])
    validity: int = DEFAULT_VALIDITY

    def retries_cause(self, cause: str) -> bool:
        return any(cause in RETRY_GROUPS[group] for group in self.on)

    def delay(self, retry: int) -> int:
        """Seconds before retry number ``retry`` (1-based)."""
        return self.delays[min(retry, len(self.delays)) - 1]

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"on": sorted(self.on), "max_retries": self.max_retries, "validity": self.validity}
        preset = next((name for name, steps in PRESETS.items() if steps == self.delays), None)
        if preset is not None:
            out["preset"] = preset
        else:
            out["delays"] = list(self.delays)
        return out


@dataclass(frozen=True)
class Next:
    """A contact's next try: ``at`` (UTC), or None and ``reason``."""

    at: datetime | None
    reason: str = ""


def next_try(ladder: RetryLadder, *, retries_done: int, cause: str, first_tried: datetime, failed_at: datetime,
             window: CallingWindow | None = None, zones: Iterable[str] = ()) -> Next:
    """When a contact whose last call failed with ``cause`` at ``failed_at``,
    first tried at ``first_tried`` and already retried ``retries_done``
    times, is tried again."""
    if not ladder.retries_cause(cause):
        return Next(None, NOT_RETRIED)
    if retries_done >= ladder.max_retries:
        return Next(None, EXHAUSTED)
    due = failed_at.astimezone(timezone.utc) + timedelta(seconds=ladder.delay(retries_done + 1))
    if window is not None:
        opening = next_opening(window, zones, due)
        if opening is not None:
            if opening == datetime.max.replace(tzinfo=timezone.utc):
                return Next(None, NEVER_OPEN)
            due = opening
    if due > first_tried.astimezone(timezone.utc) + timedelta(seconds=ladder.validity):
        return Next(None, EXPIRED)
    return Next(due)


def parse_duration(field: str, value: object, low: int, high: int) -> int:
    """Seconds from a number of seconds or a text like ``90s``, ``5m``,
    ``2h``, ``1d``, between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(field, "a number of seconds, or a text such as 30s, 5m, 2h or 1d")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValidationError(field, "a number of seconds, or a text such as 30s, 5m, 2h or 1d")
        seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if not low <= seconds <= high:
        raise ValidationError(field, "between %d and %d seconds" % (low, high))
    return seconds


def parse_ladder(spec: object, field: str = "retry") -> RetryLadder:
    """A ladder from its JSON: ``{"on": [...], "preset": "infobip"}``,
    ``{"delays": ["5m", "30m", "2h"]}`` or ``{"delay": "10m"}``, with
    ``max_retries`` (default: the preset's or list's length, 3 for a
    fixed delay) and ``validity`` (default 48 h)."""
    if not isinstance(spec, Mapping):
        raise ValidationError(field, "an object with on, preset, delays or delay, max_retries, validity")
    known = {"on", "preset", "delays", "delay", "max_retries", "validity"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValidationError("%s.%s" % (field, unknown[0]), "unknown field")
    on = frozenset(RETRY_GROUPS)
    if spec.get("on") is not None:
        raw = spec["on"]
        if not isinstance(raw, list) or not raw or any(not isinstance(g, str) or g not in RETRY_GROUPS for g in raw):
            raise ValidationError(field + ".on", "a list of %s" % ", ".join(sorted(RETRY_GROUPS)))
        on = frozenset(raw)
    given = [key for key in ("preset", "delays", "delay") if spec.get(key) is not None]
    if len(given) > 1:
        raise ValidationError("%s.%s" % (field, given[1]), "give one of preset, delays or delay")
    default_retries = 3
    if not given or given[0] == "preset":
        name = spec.get("preset", "infobip")
        if name not in PRESETS:
            raise ValidationError(field + ".preset", "one of %s" % ", ".join(sorted(PRESETS)))
        delays = PRESETS[str(name)]
        default_retries = len(delays)
    elif given[0] == "delays":
        raw_delays = spec["delays"]
        if not isinstance(raw_delays, list) or not 0 < len(raw_delays) <= MAX_STEPS:
            raise ValidationError(field + ".delays", "a list of 1 to %d waits" % MAX_STEPS)
        delays = tuple(parse_duration("%s.delays.%d" % (field, i), d, MIN_DELAY, MAX_DELAY)
                       for i, d in enumerate(raw_delays))
        default_retries = len(delays)
    else:
        delays = (parse_duration(field + ".delay", spec["delay"], MIN_DELAY, MAX_DELAY),)
    max_retries = default_retries
    if spec.get("max_retries") is not None:
        raw_max = spec["max_retries"]
        if isinstance(raw_max, bool) or not isinstance(raw_max, int) or not 0 <= raw_max <= MAX_RETRIES:
            raise ValidationError(field + ".max_retries", "a whole number from 0 to %d" % MAX_RETRIES)
        max_retries = raw_max
    validity = DEFAULT_VALIDITY
    if spec.get("validity") is not None:
        validity = parse_duration(field + ".validity", spec["validity"], MINUTE, MAX_VALIDITY)
    return RetryLadder(on=on, delays=delays, max_retries=max_retries, validity=validity)

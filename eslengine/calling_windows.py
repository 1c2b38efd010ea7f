"""Calling windows: when a number may be called, in the callee's local time.

Pure. A window is days of the week, hours of the day and holiday dates
("Mon-Fri 09:00-20:00, not on 2026-12-25"), read in the time zone of the
number being called. libphonenumber says which zones a number may be in;
when there are several (a country, or an area code, that spans zones) the
number may be called only when the window is open in every one of them: the
most restrictive reading, so that nobody is called at 8 a.m. because the
other half of their country is already at 9.

``next_opening`` answers the one question a dialer asks: may this number be
called now, and if not, from when?
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from .errors import ValidationError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead an opening is looked for (a window open one day a week,
# holidays around it, still opens within this).
HORIZON_DAYS = 21
_HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")
_UNKNOWN = "Etc/Unknown"


@dataclass(frozen=True)
class CallingWindow:
    """Days (0 = Monday), an opening and closing time of day (local), and
    dates on which the window stays shut."""

    days: frozenset[int] = frozenset(range(5))
    opens: time = time(9, 0)
    closes: time = time(20, 0)
    holidays: frozenset[date] = frozenset()

    def open_at(self, local: datetime) -> bool:
        """Whether the window is open at ``local`` (a time in some zone)."""
        return (local.weekday() in self.days and local.date() not in self.holidays
                and self.opens <= local.time().replace(tzinfo=None) < self.closes)

    def to_json(self) -> dict[str, object]:
        return {"days": [DAY_NAMES[d] for d in sorted(self.days)],
                "hours": "%s-%s" % (self.opens.strftime("%H:%M"), _closing(self.closes)),
                "holidays": sorted(d.isoformat() for d in self.holidays)}


def _closing(closes: time) -> str:
    return "24:00" if closes == time.max else closes.strftime("%H:%M")


def parse_window(spec: Mapping[str, object], field: str = "calling_window") -> CallingWindow:
    """``{"days": "mon-fri" | ["mon", "wed"], "hours": "09:00-20:00",
    "holidays": ["2026-12-25"]}``; every key optional (Mon-Fri, 09:00-20:00,
    none). ``ValidationError`` naming the field."""
    unknown = sorted(set(spec) - {"days", "hours", "holidays"})
    if unknown:
        raise ValidationError("%s.%s" % (field, unknown[0]), "unknown field (days, hours, holidays)")
    window = CallingWindow()
    days = spec.get("days")
    if days is not None:
        window = CallingWindow(_days("%s.days" % field, days), window.opens, window.closes, window.holidays)
    hours = spec.get("hours")
    if hours is not None:
        match = _HOURS.fullmatch(hours) if isinstance(hours, str) else None
        if match is None:
            raise ValidationError("%s.hours" % field, "HH:MM-HH:MM in the callee's local time, e.g. 09:00-20:00")
        opens = time(int(match.group(1)), int(match.group(2)))
        closes = time.max if match.group(3) == "24" else time(int(match.group(3)), int(match.group(4)))
        if match.group(3) == "24" and match.group(4) != "00":
            raise ValidationError("%s.hours" % field, "24:00 is the latest closing time")
        if closes <= opens:
            raise ValidationError("%s.hours" % field, "must close after it opens on the same day (a window "
                                  "across midnight is two: ask for the hours you mean)")
        window = CallingWindow(window.days, opens, closes, window.holidays)
    holidays = spec.get("holidays")
    if holidays is not None:
        window = CallingWindow(window.days, window.opens, window.closes,
                               _holidays("%s.holidays" % field, holidays))
    return window


def _days(field: str, value: object) -> frozenset[int]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValidationError(field, 'day names (mon ... sun) or ranges such as "mon-fri"')
    days: set[int] = set()
    for item in names:
        for part in item.lower().replace(" ", "").split(","):
            first, _, last = part.partition("-")
            if first not in DAY_NAMES or (last and last not in DAY_NAMES):
                raise ValidationError(field, "%r: day names are mon, tue, wed, thu, fri, sat, sun" % part)
            start, end = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
            span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
            days.update(span)
    return frozenset(days)


def _holidays(field: str, value: object) -> frozenset[date]:
    if not isinstance(value, list) or len(value) > 366:
        raise ValidationError(field, "a list of dates (YYYY-MM-DD), at most 366")
    out = set()
    for item in value:
        try:
            out.add(date.fromisoformat(item) if isinstance(item, str) else None)
        except ValueError:
            raise ValidationError(field, "%r is not a date (YYYY-MM-DD)" % item) from None
    if None in out:
        raise ValidationError(field, "dates are strings (YYYY-MM-DD)")
    return frozenset(d for d in out if d is not None)


def zones_for(number: str, default: str = "") -> tuple[str, ...]:
    """The time zones an E.164 ``number`` may be in: libphonenumber's, else
    ``default``, else every zone of its country calling code (so an unknown
    area is read the most restrictive way), else UTC."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return (default or "UTC",)
    zones = tuple(z for z in phone_timezones.time_zones_for_number(parsed) if z != _UNKNOWN)
    if zones:
        return zones
    if default:
        return (default,)
    return _country_zones(parsed.country_code) or ("UTC",)


@functools.lru_cache(maxsize=256)
def _country_zones(country_code: int) -> tuple[str, ...]:
    zones: set[str] = set()
    prefix = str(country_code)
    data = phone_timezones.TIMEZONE_DATA  # type: ignore[attr-defined]  # not in the package's stubs
    for key, value in data.items():
        if key.startswith(prefix):
            zones.update(z for z in value if z != _UNKNOWN)
    return tuple(sorted(zones))


def check_zone(field: str, name: str) -> str:
    """``name`` if it is an IANA time zone, else ``ValidationError``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(field, "%r is not a time zone (IANA name, e.g. America/New_York)" % name) from None
    return name


def open_now(window: CallingWindow, zones: Iterable[str], now: datetime) -> bool:
    return all(window.open_at(now.astimezone(ZoneInfo(z))) for z in zones)


def next_opening(window: CallingWindow, zones: Iterable[str], now: datetime) -> datetime | None:
    """None when the window is open now in every zone; else the first
    moment (UTC) from which it is, or ``datetime.max`` (UTC) when it does
    not open within HORIZON_DAYS (no days, or holidays all the way)."""
    zones = tuple(zones)
    now = now.astimezone(timezone.utc)
    if open_now(window, zones, now):
        return None
    # The window opens in every zone at once first at one zone's opening:
    # try them in order.
    candidates = set()
    for name in zones:
        tz = ZoneInfo(name)
        local_day = now.astimezone(tz).date()
        for offset in range(HORIZON_DAYS + 1):
            day = local_day + timedelta(days=offset)
            if day.weekday() in window.days and day not in window.holidays:
                start = datetime.combine(day, window.opens, tzinfo=tz).astimezone(timezone.utc)
                if start > now:
                    candidates.add(start)
    for moment in sorted(candidates):
        if open_now(window, zones, moment):
            return moment
    return datetime.max.replace(tzinfo=timezone.utc)

"""Calling windows in the callee's local time (pure)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eslengine.calling_windows import (
    CallingWindow,
    check_zone,
    next_opening,
    open_now,
    parse_window,
    zones_for,
)
from eslengine.errors import ValidationError

UTC = timezone.utc
WEEKDAYS = parse_window({"days": "mon-fri", "hours": "09:00-20:00"})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_parse_window_defaults_and_forms() -> None:
    assert parse_window({}) == CallingWindow()
    window = parse_window({"days": ["sat", "sun"], "hours": "10:30-24:00", "holidays": ["2026-12-25"]})
    assert window.days == frozenset({5, 6}) and window.opens == time(10, 30) and window.closes == time.max
    assert window.holidays == frozenset({date(2026, 12, 25)})
    assert parse_window({"days": "fri-mon"}).days == frozenset({4, 5, 6, 0})
    assert parse_window({"days": "mon,wed"}).days == frozenset({0, 2})
    assert parse_window(window.to_json()) == window


@pytest.mark.parametrize(("spec", "field"), [
    ({"days": "funday"}, "calling_window.days"),
    ({"days": []}, "calling_window.days"),
    ({"hours": "9-17"}, "calling_window.hours"),
    ({"hours": "20:00-09:00"}, "calling_window.hours"),
    ({"hours": "24:30-25:00"}, "calling_window.hours"),
    ({"holidays": ["25/12/2026"]}, "calling_window.holidays"),
    ({"holidays": "2026-12-25"}, "calling_window.holidays"),
    ({"weekends": True}, "calling_window.weekends"),
])
def test_bad_windows_name_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_window(spec)
    assert info.value.field == field


def test_zones_come_from_the_number_and_unknown_areas_read_the_whole_country() -> None:
    assert zones_for("+12125550123") == ("America/New_York",)
    assert zones_for("+442079460958") == ("Europe/London",)
    # 555 is no real area code: every zone of +1, unless the campaign says which.
    country = zones_for("+15551230001")
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(country)
    assert zones_for("+15551230001", default="America/Chicago") == ("America/Chicago",)
    assert check_zone("z", "Europe/Paris") == "Europe/Paris"
    with pytest.raises(ValidationError):
        check_zone("z", "Mars/Olympus")


def test_new_york_is_called_from_nine_local_time_not_from_nine_utc() -> None:
    zones = ("America/New_York",)
    # Tuesday 2026-12-01 12:00 UTC is 07:00 in New York: closed until 09:00 local (14:00 UTC).
    assert next_opening(WEEKDAYS, zones, utc(2026, 12, 1, 12, 0)) == utc(2026, 12, 1, 14, 0)
    assert next_opening(WEEKDAYS, zones, utc(2026, 12, 1, 15, 0)) is None
    # Friday 20:00 local: next Monday 09:00 local.
    assert next_opening(WEEKDAYS, zones, utc(2026, 12, 5, 1, 0)) == utc(2026, 12, 7, 14, 0)


def test_several_zones_use_the_most_restrictive_reading() -> None:
    coasts = ("America/New_York", "America/Los_Angeles")
    # 14:00 UTC: 09:00 in New York, 06:00 in Los Angeles: wait for 09:00 in LA (17:00 UTC).
    assert next_opening(WEEKDAYS, coasts, utc(2026, 12, 1, 14, 0)) == utc(2026, 12, 1, 17, 0)
    # 01:30 UTC Wednesday: 20:30 Tuesday in NY (closed), 17:30 in LA (open): closed.
    assert not open_now(WEEKDAYS, coasts, utc(2026, 12, 2, 1, 30))


def test_holidays_and_daylight_saving_time() -> None:
    window = parse_window({"days": "mon-fri", "hours": "09:00-17:00", "holidays": ["2026-12-25"]})
    london = ("Europe/London",)
    # Christmas is a Friday: from Thursday evening to Monday 28th 09:00.
    assert next_opening(window, london, utc(2026, 12, 24, 18, 0)) == utc(2026, 12, 28, 9, 0)
    # After the clocks go forward (2026-03-29), 09:00 London is 08:00 UTC.
    assert next_opening(window, london, utc(2026, 3, 30, 7, 0)) == utc(2026, 3, 30, 8, 0)


def test_a_window_that_never_opens_says_so() -> None:
    never = CallingWindow(days=frozenset())
    assert next_opening(never, ("UTC",), utc(2026, 12, 1, 12)) == datetime.max.replace(tzinfo=UTC)


ZONES = ["America/New_York", "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "Australia/Sydney",
         "Pacific/Chatham", "America/St_Johns", "UTC"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
       st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 1, 1)),
       st.sampled_from(["09:00-20:00", "08:30-12:00", "00:00-24:00", "13:15-13:45"]),
       st.sampled_from(["mon-fri", "sat", "mon-sun", "wed,fri"]))
def test_the_opening_is_open_and_nothing_earlier_is(zones: list[str], naive: datetime, hours: str,
                                                    days: str) -> None:
    window = parse_window({"days": days, "hours": hours})
    now = naive.replace(tzinfo=UTC)
    opening = next_opening(window, zones, now)
    if opening is None:
        assert open_now(window, zones, now)
        return
    if opening == datetime.max.replace(tzinfo=UTC):
        return  # nothing within the horizon (zones a window's length apart never overlap)
    assert opening > now and open_now(window, zones, opening)
    # No earlier quarter hour is open in every zone.
    moment = now + timedelta(minutes=15 - now.minute % 15, seconds=-now.second, microseconds=-now.microsecond)
    while moment < opening:
        assert not open_now(window, zones, moment), moment
        moment += timedelta(minutes=15)
    # Each zone sees it inside the window.
    for name in zones:
        assert window.open_at(opening.astimezone(ZoneInfo(name)))

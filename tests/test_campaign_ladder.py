"""Retry ladders (eslengine/campaign/ladder.py): when a campaign's contact is
tried again, or why it is given up."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eslengine.calling_windows import parse_window
from eslengine.campaign.ladder import (
    DEFAULT_VALIDITY,
    EXHAUSTED,
    EXPIRED,
    NEVER_OPEN,
    NOT_RETRIED,
    PRESETS,
    RetryLadder,
    next_try,
    parse_ladder,
)
from eslengine.errors import ValidationError

T0 = datetime(2026, 12, 2, 15, 0, tzinfo=timezone.utc)  # a Wednesday, 10:00 in New York


def test_the_infobip_preset_is_its_documented_schedule() -> None:
    minutes = [1, 2, 5, 10, 20, 30, 60, 120, 240, 480, 960, 1440]
    assert PRESETS["infobip"] == tuple(m * 60 for m in minutes)
    ladder = parse_ladder({"preset": "infobip", "validity": "7d"})
    at, failed = [], T0
    for done in range(20):
        step = next_try(ladder, retries_done=done, cause="USER_BUSY", first_tried=T0, failed_at=failed)
        if step.at is None:
            assert (done, step.reason) == (12, EXHAUSTED)
            break
        at.append(step.at - failed)
        failed = step.at
    assert at == [timedelta(minutes=m) for m in minutes]


def test_fixed_and_listed_delays_the_last_step_repeating() -> None:
    fixed = parse_ladder({"delay": "10m"})
    assert (fixed.delays, fixed.max_retries) == ((600,), 3)
    listed = parse_ladder({"delays": [30, "5m", "1h"], "max_retries": 5})
    assert [listed.delay(n) for n in range(1, 6)] == [30, 300, 3600, 3600, 3600]


@pytest.mark.parametrize(("cause", "on", "retried"), [
    ("USER_BUSY", ["busy"], True),
    ("NO_ANSWER", ["busy"], False),
    ("NO_ANSWER", ["no_answer"], True),
    ("NORMAL_TEMPORARY_FAILURE", ["temporary"], True),
    ("UNALLOCATED_NUMBER", ["busy", "no_answer", "temporary"], False),
    ("CALL_REJECTED", ["busy", "no_answer", "temporary"], False),
])
def test_only_the_chosen_causes_are_retried(cause: str, on: list[str], retried: bool) -> None:
    step = next_try(parse_ladder({"on": on, "delay": 60}), retries_done=0, cause=cause, first_tried=T0, failed_at=T0)
    assert (step.at is not None) == retried
    if not retried:
        assert step.reason == NOT_RETRIED


def test_a_contact_is_given_up_after_its_validity_period() -> None:
    ladder = parse_ladder({"delay": "1h", "max_retries": 10, "validity": "3h"})
    assert next_try(ladder, retries_done=1, cause="USER_BUSY", first_tried=T0,
                    failed_at=T0 + timedelta(hours=2)).at == T0 + timedelta(hours=3)
    step = next_try(ladder, retries_done=2, cause="USER_BUSY", first_tried=T0, failed_at=T0 + timedelta(hours=2, minutes=1))
    assert step == type(step)(None, EXPIRED)


def test_a_retry_outside_the_calling_window_waits_for_it_in_the_callees_zone() -> None:
    window = parse_window({"days": ["mon", "tue", "wed", "thu", "fri"], "hours": "09:00-20:00"})
    ladder = parse_ladder({"delay": "2h", "validity": "2d"})
    failed = datetime(2026, 12, 4, 23, 30, tzinfo=timezone.utc)  # Friday 18:30 in New York
    step = next_try(ladder, retries_done=0, cause="NO_ANSWER", first_tried=failed, failed_at=failed,
                    window=window, zones=("America/New_York",))
    # Due Friday 20:30 local, after closing: Monday 09:00 local, beyond two days.
    assert step.reason == EXPIRED
    step = next_try(parse_ladder({"delay": "2h", "validity": "4d"}), retries_done=0, cause="NO_ANSWER",
                    first_tried=failed, failed_at=failed, window=window, zones=("America/New_York",))
    assert step.at == datetime(2026, 12, 7, 14, 0, tzinfo=timezone.utc)


def test_a_window_that_never_opens_gives_the_contact_up() -> None:
    window = parse_window({"days": ["sat"], "hours": "09:00-10:00",
                           "holidays": [(T0 + timedelta(days=d)).date().isoformat() for d in range(30)]})
    step = next_try(parse_ladder({"delay": 60}), retries_done=0, cause="USER_BUSY", first_tried=T0, failed_at=T0,
                    window=window, zones=("UTC",))
    assert step.reason == NEVER_OPEN


@pytest.mark.parametrize(("spec", "field"), [
    ([], "retry"),
    ({"tries": 3}, "retry.tries"),
    ({"on": ["weekends"]}, "retry.on"),
    ({"on": []}, "retry.on"),
    ({"preset": "fast"}, "retry.preset"),
    ({"preset": "infobip", "delay": 60}, "retry.delay"),
    ({"delays": []}, "retry.delays"),
    ({"delays": [60, "soon"]}, "retry.delays.1"),
    ({"delays": [1]}, "retry.delays.0"),
    ({"delay": "8d"}, "retry.delay"),
    ({"delay": True}, "retry.delay"),
    ({"delay": 60, "max_retries": -1}, "retry.max_retries"),
    ({"delay": 60, "max_retries": 2.5}, "retry.max_retries"),
    ({"delay": 60, "validity": "31d"}, "retry.validity"),
])
def test_a_bad_ladder_names_its_field(spec: object, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_ladder(spec)
    assert info.value.field == field


def test_the_default_ladder_and_its_json() -> None:
    ladder = parse_ladder({})
    assert ladder == RetryLadder()
    assert ladder.to_json() == {"on": ["busy", "no_answer", "temporary"], "max_retries": 12,
                                "validity": DEFAULT_VALIDITY, "preset": "infobip"}
    listed = parse_ladder({"on": ["busy"], "delays": ["1m", "2m"]})
    assert parse_ladder(listed.to_json()) == listed


@given(done=st.integers(0, 30), delay=st.integers(10, 86400), minutes=st.integers(0, 100_000))
def test_a_retry_is_never_before_its_delay_nor_past_the_validity(done: int, delay: int, minutes: int) -> None:
    ladder = RetryLadder(delays=(delay,), max_retries=20, validity=DEFAULT_VALIDITY)
    failed = T0 + timedelta(minutes=minutes)
    step = next_try(ladder, retries_done=done, cause="USER_BUSY", first_tried=T0, failed_at=failed)
    if step.at is not None:
        assert step.at - failed >= timedelta(seconds=delay)
        assert step.at <= T0 + timedelta(seconds=DEFAULT_VALIDITY)
        assert done < 20
    else:
        assert step.reason in (EXHAUSTED, EXPIRED)

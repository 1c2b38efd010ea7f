"""The dispatcher's decisions (eslengine.campaign.decide): pure."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from eslengine.campaign.decide import CANCELLED_CAUSE, PAUSED_CAUSE, Decision, Pace, after_call, waits_until
from eslengine.campaign.model import Contact, parse_campaign
from eslengine.config import Config

CONFIG = Config(allow_unvalidated_numbers=True)
ENDED = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)  # a Wednesday
CONTACT = Contact("r2", ("+4930123456",))


def campaign(**extra: Any) -> Any:
    return parse_campaign({"name": "n", "call": {"b": "user/1000"}, "retry": {"on": ["busy", "no_answer"],
                           "delays": ["1m", "10m"], "max_retries": 2}, **extra}, CONFIG)


def decide(status: str, cause: str = "", state: str = "running", retries: int = 0, first: datetime = ENDED,
           **extra: Any) -> Decision:
    return after_call(campaign(**extra), state, CONTACT, retries_done=retries, first_at=first.timestamp(),
                      status=status, cause=cause, ended=ENDED)


def test_the_pace_starts_one_call_then_earns_cps_a_second_up_to_a_seconds_worth() -> None:
    pace = Pace()
    assert pace.release(100.0, 5.0, 50) == 1
    assert pace.release(100.1, 5.0, 50) == 0  # half a call earned
    assert pace.release(100.5, 5.0, 50) == 2
    assert pace.release(200.0, 5.0, 50) == 5  # a long pause earns one second's worth, no more
    assert pace.release(201.0, 5.0, 2) == 2  # no more than the room left
    pace.give_back(2)
    assert pace.release(201.0, 5.0, 50) == 5


def test_a_slow_pace_starts_a_call_every_so_many_seconds() -> None:
    pace = Pace()
    started = [pace.release(100.0 + t, 0.5, 10) for t in range(6)]
    assert started == [1, 0, 1, 0, 1, 0]


@pytest.mark.parametrize("status, cause, state, expected", [
    ("completed", "NORMAL_CLEARING", "running", Decision("finish", outcome="connected", cause="NORMAL_CLEARING")),
    ("skipped_dnc", "DNC", "running", Decision("finish", outcome="skipped_dnc", cause="DNC")),
    ("cancelled", PAUSED_CAUSE, "paused", Decision("again", when=ENDED.timestamp())),
    ("cancelled", PAUSED_CAUSE, "running", Decision("again", when=ENDED.timestamp())),
    ("cancelled", PAUSED_CAUSE, "cancelled", Decision("finish", outcome="cancelled", cause=PAUSED_CAUSE)),
    ("cancelled", CANCELLED_CAUSE, "cancelled", Decision("finish", outcome="cancelled", cause=CANCELLED_CAUSE)),
    ("cancelled", "ORIGINATOR_CANCEL", "running", Decision("finish", outcome="cancelled", cause="ORIGINATOR_CANCEL")),
    ("failed", "USER_BUSY", "cancelled", Decision("finish", outcome="failed", cause="USER_BUSY")),
    ("failed", "UNALLOCATED_NUMBER", "running", Decision("finish", outcome="failed", cause="UNALLOCATED_NUMBER")),
    ("failed", "NORMAL_TEMPORARY_FAILURE", "running",
     Decision("finish", outcome="failed", cause="NORMAL_TEMPORARY_FAILURE")),  # not among the causes retried
])
def test_what_becomes_of_a_contact_after_its_call(status: str, cause: str, state: str, expected: Decision) -> None:
    assert decide(status, cause, state) == expected


def test_a_busy_contact_is_retried_along_its_ladder_until_it_runs_out() -> None:
    assert decide("failed", "USER_BUSY", retries=0) == Decision(
        "retry", when=(ENDED + timedelta(minutes=1)).timestamp(), cause="USER_BUSY")
    assert decide("failed", "NO_ANSWER", retries=1).when == (ENDED + timedelta(minutes=10)).timestamp()
    assert decide("failed", "USER_BUSY", retries=2).action == "finish"


def test_a_retry_waits_for_the_window_in_the_contacts_zone() -> None:
    # Berlin 13:00 on a Wednesday; the window opens at 09:00 Berlin, Thursday.
    got = decide("failed", "USER_BUSY", calling_window={"days": "mon-fri", "hours": "09:00-12:00"})
    assert got.action == "retry" and got.when == datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc).timestamp()


def test_a_retry_past_the_validity_or_the_campaigns_end_gives_up() -> None:
    long_ago = ENDED - timedelta(hours=47, minutes=59, seconds=30)
    assert decide("failed", "USER_BUSY", first=long_ago).action == "finish"
    assert decide("failed", "USER_BUSY", valid_until="2026-12-02T12:00:30Z").action == "finish"
    assert decide("failed", "USER_BUSY", valid_until="2026-12-02T12:01:30Z").action == "retry"


def test_a_window_that_never_opens_is_looked_at_again_a_day_later() -> None:
    never = datetime.max.replace(tzinfo=timezone.utc)
    assert waits_until(never, ENDED) == (ENDED + timedelta(days=1)).timestamp()
    assert waits_until(ENDED + timedelta(hours=3), ENDED) == (ENDED + timedelta(hours=3)).timestamp()

"""The simulator's session limits and a leg's timeline: pure, the time passed in."""

from __future__ import annotations

import pytest

from eslengine.fakeswitch.limits import OVER_SESSION_LIMIT, THROTTLE_ERROR, Limits
from eslengine.fakeswitch.originate import Step, outcome_steps
from eslengine.fakeswitch.scenario import Outcome


def test_at_most_sps_minus_one_sessions_start_in_one_second_and_the_next_second_starts_afresh() -> None:
    limits = Limits(sps=3, max_sessions=100)
    verdicts = []
    for _ in range(4):
        limits.attempt(1000.2)
        verdicts.append(limits.refusal(live=0))
    assert verdicts == [None, None, THROTTLE_ERROR, THROTTLE_ERROR]
    assert limits.attempt(1001.0) == 1 and limits.refusal(live=0) is None


def test_a_session_over_max_sessions_is_refused_without_spending_the_second_s_budget() -> None:
    limits = Limits(sps=3, max_sessions=2)
    limits.attempt(5.0)
    assert limits.refusal(live=2) == OVER_SESSION_LIMIT
    assert [limits.attempt(5.5), limits.refusal(live=1)] == [2, None]


@pytest.mark.parametrize(("outcome", "loopback", "steps"), [
    (Outcome("answer"), False, [(0.0, Step.PROGRESS), (0.2, Step.ANSWER)]),
    (Outcome("answer"), True, [(0.2, Step.ANSWER)]),
    (Outcome("answer", after=0.0), False, [(0.0, Step.ANSWER)]),
    (Outcome("busy", "USER_BUSY"), False, [(0.0, Step.FAIL)]),
    (Outcome("fail", "UNALLOCATED_NUMBER", after=1.5), False, [(1.5, Step.FAIL)]),
    (Outcome("no_answer", "NO_ANSWER"), False, [(0.0, Step.PROGRESS)]),
    (Outcome("no_answer", "NO_ANSWER", after=3.0), False, [(0.0, Step.PROGRESS), (3.0, Step.FAIL)]),
    (Outcome("early_media", after=0.5), False, [(0.0, Step.MEDIA), (0.5, Step.ANSWER)]),
    (Outcome("slow_answer"), True, [(0.0, Step.PROGRESS), (0.2, Step.ANSWER)]),
])
def test_a_leg_s_timeline_follows_its_scenario_outcome(outcome: Outcome, loopback: bool,
                                                       steps: list[tuple[float, Step]]) -> None:
    assert outcome_steps(outcome, ring_time=0.2, loopback=loopback) == steps

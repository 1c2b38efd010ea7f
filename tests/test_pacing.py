"""Pacing arithmetic: never more than sps-1 session starts in any sliding second."""

from __future__ import annotations

import random

import pytest

from eslengine.pacing import EARLY, Pacer, session_cost


def test_session_cost() -> None:
    assert session_cost("loopback/1000/default") == 2
    assert session_cost("sofia/gateway/gw/15551230001") == 1
    assert session_cost("user/1000") == 1


def test_starts_are_spread_evenly() -> None:
    p = Pacer(sps=5, max_sessions=100)  # 4 starts per window: one every 0.25 s
    assert p.delay(10.0, 1) == 0
    p.start(10.0, 1)
    assert p.delay(10.1, 1) == pytest.approx(0.25 - 0.1 - EARLY)  # not a burst
    assert p.delay(10.25 - EARLY / 2, 1) == 0  # a little early is allowed
    p.start(10.25 - EARLY / 2, 1)
    # ... and keeps the schedule: the next is due at 10.5, not 0.25 after the start.
    assert p.delay(10.5 - EARLY / 2, 1) == 0
    p.start(10.6, 1)  # late: the schedule goes on from the late start
    assert p.delay(10.75, 1) == pytest.approx(0.1 - EARLY)
    # Cost 2 takes two places on the schedule.
    p.start(10.85, 2)
    assert p.delay(11.0, 1) == pytest.approx(0.35 - EARLY)


def test_window_caps_starts_even_when_the_schedule_allows_them() -> None:
    p = Pacer(sps=5, max_sessions=100)  # 4 starts per window
    for i in range(4):
        t = 10.0 + i * 0.25
        assert p.delay(t, 1) == pytest.approx(0.0, abs=1e-9)
        p.start(t, 1)
    p._due = 0.0  # as if the schedule were far behind: the window still holds
    assert p.delay(10.8, 1) == pytest.approx(0.2)  # the start at 10.0 must leave the window
    assert p.delay(11.0, 1) == 0
    assert p.delay(11.0, 2) == pytest.approx(0.25)  # cost 2 needs two expiries


def test_max_sessions_blocks_until_release() -> None:
    p = Pacer(sps=1000, max_sessions=3)
    p.start(0, 2)
    assert p.delay(0, 2) is None
    p.release(2)
    assert p.delay(0, 2) == 0


def test_cost_above_rate_still_progresses() -> None:
    p = Pacer(sps=2, max_sessions=100)  # rate 1
    assert p.delay(0, 2) == 0
    p.start(0, 2)
    assert p.delay(0.5, 2) == pytest.approx(1.5 - EARLY)  # two sessions at 1/s: 2 s apart


@pytest.mark.parametrize("sps", [2, 5, 30, 100])
def test_greedy_sender_never_exceeds_rate_in_any_window(sps: int) -> None:
    rng = random.Random(sps)
    p = Pacer(sps=sps, max_sessions=10**9)
    now, starts = 0.0, []
    while now < 20:
        cost = rng.choice([1, 2])
        d = p.delay(now, cost)
        assert d is not None
        if d > 0:
            now += d
            continue
        p.start(now, cost)
        starts.append((now, cost))
        now += rng.random() * 0.01
    # Any window (t-1, t]: check at each start time.
    for t, _ in starts:
        in_window = sum(c for s, c in starts if t - 1 < s <= t)
        assert in_window <= max(1, sps - 1) or (in_window == 2 and sps == 2)
    # Evenly: a start follows the previous one by its share of the rate,
    # less what a start may run early (twice: the previous one may have too).
    rate = max(1, sps - 1)
    for (t0, c0), (t1, _) in zip(starts, starts[1:]):
        assert t1 - t0 >= c0 / rate - 2 * EARLY - 1e-9
    # And it is not idle: close to the allowed rate overall.
    total = sum(c for _, c in starts)
    assert total >= (sps - 1) * 20 * 0.9 - 2


def test_a_call_can_hold_all_its_sessions_and_start_them_in_two_steps() -> None:
    p = Pacer(sps=1000, max_sessions=4)
    p.start(0.0, 1, sessions=2)  # first leg starts; the second is reserved
    assert p.live == 2
    assert p.delay(0.0, 1, sessions=0) is not None  # the second leg needs no more room
    p.start(0.1, 1, sessions=0)
    assert p.live == 2 and p._in_window == 2
    assert p.delay(0.1, 1, sessions=3) is None  # 2 live + 3 > 4

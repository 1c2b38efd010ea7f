"""Pacing arithmetic: never more than sps-1 session starts in any sliding second."""

from __future__ import annotations

import random

import pytest

from eslengine.pacing import Pacer, session_cost


def test_session_cost() -> None:
    assert session_cost("loopback/1000/default") == 2
    assert session_cost("sofia/gateway/gw/15551230001") == 1
    assert session_cost("user/1000") == 1


def test_fills_window_then_waits_for_oldest_to_expire() -> None:
    p = Pacer(sps=5, max_sessions=100)  # 4 starts per window
    for i in range(4):
        assert p.delay(10.0 + i * 0.1, 1) == 0
        p.start(10.0 + i * 0.1, 1)
    assert p.delay(10.35, 1) == pytest.approx(0.65)
    assert p.delay(11.0, 1) == 0
    # cost 2 needs two expiries
    assert p.delay(11.0, 2) == pytest.approx(0.1)


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
    assert p.delay(0.5, 2) == pytest.approx(0.5)


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
    # And it is not idle: close to the allowed rate overall.
    total = sum(c for _, c in starts)
    assert total >= (sps - 1) * 20 * 0.9 - 2

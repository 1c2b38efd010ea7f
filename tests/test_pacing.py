"""Pacing arithmetic: never more than sps-1 session starts in any sliding second."""

from __future__ import annotations

import random

import pytest

from eslengine.pacing import EARLY, Pacer, node_share, session_cost


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


# ------------------------------------------------------------ shares


def test_node_share_splits_evenly_and_never_adds_up_to_more_than_the_node() -> None:
    assert node_share(101, 1000, 1, []) == (100, 1000)
    assert node_share(101, 1000, 2, [(0, 500)]) == (50, 500)
    assert node_share(30, 1000, 4, [(0, 250)] * 3) == (7, 250)  # 4 x 7 = 28 of 29: floors
    assert node_share(30, 1000, 40, [(0, 25)] * 39) == (0, 25)  # more workers than starts a second
    for sps in range(1, 60):
        for workers in range(1, 12):
            rate, sessions = node_share(sps, 97, workers, [(0, 97 // workers)] * (workers - 1))
            assert rate * workers <= max(1, sps - 1) and sessions * workers <= 97


def test_node_share_leaves_room_for_what_others_hold_beyond_their_share() -> None:
    # A worker that joined a node whose other worker held 800 of 1000
    # sessions under its old (whole) share: 500 each, less the other's 300
    # beyond its new share, so the node stays within 1000.
    assert node_share(30, 1000, 2, [(800, 500)]) == (14, 200)
    assert node_share(30, 1000, 2, [(1000, 500)]) == (14, 0)
    assert node_share(30, 1000, 3, [(600, 333), (100, 333)]) == (9, 333 - 267)


def test_a_share_caps_starts_and_sessions() -> None:
    p = Pacer(sps=101, max_sessions=1000)
    p.set_share(10, 3)
    assert (p.rate, p.ceiling) == (10, 3)
    for i in range(3):
        assert p.delay(10.0 + i * 0.1, 1) == 0
        p.start(10.0 + i * 0.1, 1)
    assert p.delay(10.5, 1) is None  # 3 live: the session share is full
    p.release(1)
    assert p.delay(10.5, 1) == 0
    p.set_share(None, None)  # the whole node again
    assert (p.rate, p.ceiling) == (100, 1000)


def test_no_share_or_a_lapsed_share_starts_nothing() -> None:
    p = Pacer(sps=30, max_sessions=100, rate_share=0, session_share=0)
    assert p.delay(0.0, 1, sessions=0) is None
    assert p.headroom(0.0) < 0
    p.set_share(29, 100, until=5.0)
    assert p.delay(4.9, 1) == 0
    assert p.delay(5.0, 1) is None  # not renewed in time


@pytest.mark.parametrize("sps,workers", [(30, 2), (101, 3), (11, 4)])
def test_workers_on_their_shares_never_exceed_the_node_together(sps: int, workers: int) -> None:
    # Greedy workers on one node, each starting whenever its own pacer lets
    # it; a third of the way in another worker joins, and the others take
    # their new share at different moments within a lease, the newcomer
    # only after the join wait (Timings.join_wait: lease + window + margin).
    rng = random.Random(sps * workers)
    lease, window, wait = 3.0, 1.005, 3.0 + 1.005 + 0.25
    pacers = [Pacer(sps=sps, max_sessions=10**9, window=window) for _ in range(workers)]
    for p in pacers:
        p.set_share(*node_share(sps, 10**9, workers - 1, []))
    pacers[-1].set_share(0, 0)
    join = 7.0
    switch_at = [join + rng.random() * lease for _ in range(workers - 1)] + [join + wait]
    starts: list[float] = []
    clocks = [rng.random() * 0.01 for _ in range(workers)]
    while min(clocks) < 20:
        i = clocks.index(min(clocks))
        now, p = clocks[i], pacers[i]
        if now >= switch_at[i] and p.rate_share != node_share(sps, 10**9, workers, [])[0]:
            p.set_share(*node_share(sps, 10**9, workers, [(0, 0)] * (workers - 1)))
        d = p.delay(now, 1)
        if d is None or d > 0:
            clocks[i] = now + (d if d else 0.01)
            continue
        p.start(now, 1)
        starts.append(now)
        clocks[i] = now + rng.random() * 0.002
    starts.sort()
    lo = 0
    for hi, t in enumerate(starts):
        while starts[lo] <= t - 1.0:
            lo += 1
        assert hi - lo + 1 <= sps - 1, "%d starts in the second before %.3f" % (hi - lo + 1, t)
    assert len(starts) >= (sps - 1) * 20 * 0.75  # and the node is kept busy


def test_a_pacer_with_no_share_still_counts_calls_taken_over() -> None:
    p = Pacer(sps=30, max_sessions=100, rate_share=0, session_share=0)
    p.start(1.0, 2)  # an adopted call: its sessions are live on the node
    assert p.live == 2
    p.set_share(29, 100)
    assert p.delay(3.0, 1) == 0


def test_a_refused_start_halves_what_the_window_held_until_refusals_stop() -> None:
    p = Pacer(sps=1000, max_sessions=10_000)
    for i in range(40):
        p.start(10.0 + i * 0.001, 1)
    # The switch refused one of those 40: it allows fewer; keep to half.
    p.slow_down(10.05, hold=3.0)
    assert p.rate == 20
    # More refusals of the same burst do not halve it again, but hold it longer.
    p.slow_down(10.5, hold=3.0)
    assert p.rate == 20
    assert p.delay(13.4, 1) is not None and p.rate == 20
    # A window later, with the switch still refusing, it halves again.
    for i in range(15):
        p.start(12.0 + i * 0.05, 1)
    p.slow_down(12.8, hold=3.0)
    assert p.rate == 7
    # Three seconds with no refusal: the whole rate again.
    p.delay(15.9, 1)
    assert p.rate == 999


def test_a_slowed_pacer_never_goes_below_one_start_or_above_its_share() -> None:
    p = Pacer(sps=30, max_sessions=100, rate_share=4, session_share=100)
    p.slow_down(1.0, hold=3.0)  # nothing in the window
    assert p.rate == 1
    p.delay(4.0, 1)
    assert p.rate == 4


def test_a_bulk_start_leaves_starts_in_the_window_and_an_interactive_one_may_go_ahead_into_them() -> None:
    p = Pacer(sps=9, max_sessions=100)  # 8 starts per window: one every 0.125 s
    for i in range(6):
        t = 10.0 + i * 0.125
        assert p.delay(t, 1, keep=2) == pytest.approx(0.0, abs=1e-9)
        p.start(t, 1)
    # Six in the window: a bulk start keeping two free waits for the first to expire ...
    assert p.delay(10.75, 1, keep=2) == pytest.approx(0.25)
    # ... while an interactive one takes a kept place at once, ahead of the schedule.
    assert p.delay(10.63, 1) == pytest.approx(0.75 - 0.63 - EARLY)  # on the schedule: wait
    assert p.delay(10.63, 1, ahead=2) == 0
    p.start(10.63, 1)
    assert p.delay(10.64, 1, ahead=2) == 0
    p.start(10.64, 1)
    # The window is full: nobody starts, however far ahead it may go.
    assert p.delay(10.65, 1, ahead=8) == pytest.approx(0.35)


def test_bulk_jobs_keep_at_most_a_quarter_of_a_limit() -> None:
    from eslengine.worker.claiming import bulk_room
    from eslengine.worker.nodes import bulk_reserve

    assert [bulk_reserve(2, limit) for limit in (0, 3, 4, 8, 9, 1000)] == [0, 0, 1, 2, 2, 2]
    assert [bulk_room(room, 2) for room in (0, 1, 2, 3, 200)] == [0, 0, 0, 1, 198]

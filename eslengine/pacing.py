"""How fast, and how much, one FreeSWITCH node may be asked to originate.

Pure arithmetic on timestamps the caller passes in; no clock, no sleeping.

FreeSWITCH refuses a new session when its per-second counter, reset once a
second and decremented *before* the test, reaches zero: with
``sessions-per-second = N`` a node accepts N - 1 new sessions in each of its
seconds. Keeping at most N - 1 session starts in *every* sliding one-second
window therefore never trips the throttle, whatever the phase of the switch's
timer. Sessions, not calls, are what count: a loopback leg is two sessions.

Within that cap, starts are spread evenly (a virtual schedule, one start
every ``cost / rate`` seconds, that a start may beat by at most ``EARLY``)
instead of being let through in bursts as soon as the window has room: a
burst of originates makes the switch answer in bursts too, and where the
switch starts the second legs itself (``&bridge``) they come in bursts as
well; the sessions the engine starts itself arrive as sent. Because a
start late by less than ``EARLY`` keeps the schedule, timer lateness does
not pile up into a lower rate.

Several workers may pace one node. Each then keeps to its share
(``Pacer.set_share``): the floor of an even split of the node's starts per
window, and of its live sessions less what the others hold beyond their own
shares (``node_share``). Floors never add up to more than the limit, and a
worker's share only grows when another leaves, so the workers need not
change their shares at the same moment; a worker that joins waits until
every other has seen it before it starts anything (see ``worker``).

A switch that refuses a start anyway (its limits were lowered, or another
application shares it) makes the worker halve this pacer's rate for a few
seconds (``Pacer.slow_down``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

# How far ahead of its place on the even schedule a start may go. Absorbs
# timer lateness; on a node with a high rate it lets the schedule's starts
# of a few milliseconds go at once rather than one sleep per start.
EARLY = 0.005


def session_cost(endpoint: str) -> int:
    """Sessions FreeSWITCH creates for one leg to ``endpoint``."""
    return 2 if endpoint.startswith("loopback/") else 1


@dataclass
class Pacer:
    """Sliding-window session-start limiter plus a live-session ceiling."""

    sps: int
    max_sessions: int
    window: float = 1.0
    live: int = 0
    _starts: deque[tuple[float, int]] = field(default_factory=deque)
    _in_window: int = 0
    _due: float = float("-inf")  # the next start's place on the even schedule
    # This worker's share when other workers pace the same node (None: the
    # whole node), and until when it holds (``set_share``).
    rate_share: int | None = None
    session_share: int | None = None
    share_until: float = math.inf
    # A lower rate while the switch refuses starts (``slow_down``), and
    # until when; when it was last lowered.
    slow_rate: int | None = None
    slow_until: float = float("-inf")
    _slowed_at: float = float("-inf")

    @property
    def node_rate(self) -> int:
        """Session starts the node allows per sliding window."""
        return max(1, self.sps - 1)

    @property
    def rate(self) -> int:
        """Session starts this worker may make per sliding window."""
        rate = self.node_rate if self.rate_share is None else min(self.node_rate, self.rate_share)
        return rate if self.slow_rate is None else min(rate, self.slow_rate)

    @property
    def ceiling(self) -> int:
        """Live sessions this worker may hold."""
        return self.max_sessions if self.session_share is None else min(self.max_sessions, self.session_share)

    def set_share(self, rate: int | None, sessions: int | None, until: float = math.inf) -> None:
        """Keep to ``rate`` starts per window and ``sessions`` live sessions
        (None: the node's own limit) until ``until``; nothing after it."""
        self.rate_share, self.session_share, self.share_until = rate, sessions, until

    def slow_down(self, now: float, hold: float) -> None:
        """The switch refused a start: for ``hold`` seconds, keep to half
        the starts the window held when it did (or half the rate, if
        lower). At most once a window: the refusals of one burst count
        once; each refusal holds the lower rate ``hold`` seconds longer."""
        self._recover(now)
        self._expire(now)
        self.slow_until = now + hold
        if now - self._slowed_at < self.window:
            return
        self._slowed_at = now
        self.slow_rate = max(1, min(self.rate, self._in_window) // 2)

    def _recover(self, now: float) -> None:
        if self.slow_rate is not None and now >= self.slow_until:
            self.slow_rate = None

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        starts = self._starts
        while starts and starts[0][0] <= horizon:
            self._in_window -= starts.popleft()[1]

    def delay(self, now: float, cost: int, sessions: int | None = None, *, keep: int = 0,
              ahead: int = 0) -> float | None:
        """Seconds to wait before ``cost`` sessions may start (0: now), or
        None while the live-session ceiling leaves no room for ``sessions``
        more (default ``cost``; wait for a release), or while this worker has
        no share of the node.

        ``keep``: session starts to leave free in the window (what a
        bulk-lane job leaves for interactive ones); ``ahead``: starts'
        worth of the even schedule this start may go ahead of (an
        interactive job, into the room bulk jobs leave)."""
        if self.live + (cost if sessions is None else sessions) > self.ceiling:
            return None
        if self.rate <= 0 or now >= self.share_until:
            return None
        self._recover(now)
        self._expire(now)
        early = self._due - now - ahead * self.window / max(1, self.rate)
        # At least a microsecond: rounding must not turn a wait into "now".
        spacing = max(1e-6, early - EARLY) if early > EARLY else 0.0
        excess = self._in_window + cost + keep - self.rate
        if excess <= 0 or not self._starts:
            return spacing
        # Entries still here have not expired; float rounding must not turn
        # their remaining time into "now".
        freed = 0
        for started, spent in self._starts:
            freed += spent
            if freed >= excess:
                return max(1e-6, spacing, started + self.window - now)
        return max(1e-6, spacing, self._starts[-1][0] + self.window - now)

    def start(self, now: float, cost: int, sessions: int | None = None) -> None:
        """Record that ``cost`` sessions started at ``now``, and that
        ``sessions`` (default ``cost``) more are live: a call whose second
        leg starts later holds its sessions from the first start on."""
        self._expire(now)
        self._starts.append((now, cost))
        self._in_window += cost
        self.live += cost if sessions is None else sessions
        # A start with no share: a call taken over from another worker,
        # whose sessions this pacer now counts.
        self._due = max(self._due, now) + cost * self.window / max(1, self.rate)

    def release(self, cost: int) -> None:
        """``cost`` sessions ended."""
        self.live = max(0, self.live - cost)

    def headroom(self, now: float) -> float:
        """A score for choosing between nodes: the smaller of the free share
        of the window's starts and of the live-session ceiling."""
        self._expire(now)
        if self.rate <= 0 or self.ceiling <= 0:
            return -1.0
        free_rate = (self.rate - self._in_window) / self.rate
        free_sessions = (self.ceiling - self.live) / self.ceiling
        return min(free_rate, free_sessions)


def node_share(sps: int, max_sessions: int, workers: int, others: Iterable[tuple[int, int]]) -> tuple[int, int]:
    """One of ``workers`` workers' share of a node: session starts per
    window, and live sessions. ``others``: (sessions held, session share)
    as each other worker last said.

    Starts: the floor of an even split of the node's ``sps - 1``. Sessions:
    the floor of an even split of ``max_sessions``, less what the others
    hold beyond their own shares (calls they started under a larger share
    before this worker came, or adopted from a worker that died), so that
    all live sessions stay within ``max_sessions`` while those calls last.
    """
    workers = max(1, workers)
    beyond = sum(max(0, held - share) for held, share in others)
    return max(1, sps - 1) // workers, max(0, max_sessions // workers - beyond)

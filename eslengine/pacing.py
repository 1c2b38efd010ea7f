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
"""

from __future__ import annotations

from collections import deque
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

    @property
    def rate(self) -> int:
        """Session starts allowed per sliding window."""
        return max(1, self.sps - 1)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        starts = self._starts
        while starts and starts[0][0] <= horizon:
            self._in_window -= starts.popleft()[1]

    def delay(self, now: float, cost: int, sessions: int | None = None) -> float | None:
        """Seconds to wait before ``cost`` sessions may start (0: now), or
        None while the live-session ceiling leaves no room for ``sessions``
        more (default ``cost``; wait for a release)."""
        if self.live + (cost if sessions is None else sessions) > self.max_sessions:
            return None
        self._expire(now)
        early = self._due - now
        # At least a microsecond: rounding must not turn a wait into "now".
        spacing = max(1e-6, early - EARLY) if early > EARLY else 0.0
        excess = self._in_window + cost - self.rate
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
        self._due = max(self._due, now) + cost * self.window / self.rate

    def release(self, cost: int) -> None:
        """``cost`` sessions ended."""
        self.live = max(0, self.live - cost)

    def headroom(self, now: float) -> float:
        """A score for choosing between nodes: the smaller of the free share
        of the window's starts and of the live-session ceiling."""
        self._expire(now)
        free_rate = (self.rate - self._in_window) / self.rate
        free_sessions = (self.max_sessions - self.live) / self.max_sessions
        return min(free_rate, free_sessions)

"""How fast, and how much, one FreeSWITCH node may be asked to originate.

Pure arithmetic on timestamps the caller passes in; no clock, no sleeping.

FreeSWITCH refuses a new session when its per-second counter, reset once a
second and decremented *before* the test, reaches zero: with
``sessions-per-second = N`` a node accepts N - 1 new sessions in each of its
seconds. Keeping at most N - 1 session starts in *every* sliding one-second
window therefore never trips the throttle, whatever the phase of the switch's
timer. Sessions, not calls, are what count: a loopback leg is two sessions.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


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

    @property
    def rate(self) -> int:
        """Session starts allowed per sliding window."""
        return max(1, self.sps - 1)

    def _expire(self, now: float) -> None:
        horizon = now - self.window
        starts = self._starts
        while starts and starts[0][0] <= horizon:
            self._in_window -= starts.popleft()[1]

    def delay(self, now: float, cost: int) -> float | None:
        """Seconds to wait before ``cost`` sessions may start (0: now), or
        None while the live-session ceiling leaves no room (wait for a
        release)."""
        if self.live + cost > self.max_sessions:
            return None
        self._expire(now)
        excess = self._in_window + cost - self.rate
        if excess <= 0 or not self._starts:
            return 0.0
        # Entries still here have not expired; float rounding must not turn
        # their remaining time into "now".
        freed = 0
        for started, spent in self._starts:
            freed += spent
            if freed >= excess:
                return max(1e-6, started + self.window - now)
        return max(1e-6, self._starts[-1][0] + self.window - now)

    def start(self, now: float, cost: int) -> None:
        """Record that ``cost`` sessions started at ``now``."""
        self._expire(now)
        self._starts.append((now, cost))
        self._in_window += cost
        self.live += cost

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

"""The switch's two session limits, counted the way FreeSWITCH counts them.

``switch_core_session_request_uuid`` refuses a new session when the switch
already holds ``max_sessions`` ("Over Session Limit!") or when the
sessions-per-second budget of the current second is spent ("Throttle
Error!"; the budget is ``sps`` per second and the refusal comes once it
reaches zero, so at most ``sps - 1`` sessions start in one second). Every
request counts towards the second's attempts, refused or not. The time is
an argument: nothing here reads a clock.
"""

from __future__ import annotations

OVER_SESSION_LIMIT = "Over Session Limit!"
THROTTLE_ERROR = "Throttle Error!"


class Limits:
    """``sps`` and ``max_sessions`` (``fsctl sps``, ``fsctl max_sessions``
    change them while the switch runs)."""

    __slots__ = ("sps", "max_sessions", "_second", "_left", "_attempts")

    def __init__(self, sps: int, max_sessions: int) -> None:
        self.sps = sps
        self.max_sessions = max_sessions
        self._second = 0
        self._left = 0
        self._attempts = 0

    def attempt(self, now: float) -> int:
        """Count one session request at ``now``; the number of requests in
        that second so far."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._left = self.sps
            self._attempts = 0
        self._attempts += 1
        return self._attempts

    def refusal(self, live: int) -> str | None:
        """Why a session requested (after :meth:`attempt`) while ``live``
        sessions exist is refused, or None when it may start. Only a session
        under ``max_sessions`` spends the second's budget."""
        if live >= self.max_sessions:
            return OVER_SESSION_LIMIT
        self._left -= 1
        if self._left <= 0:
            return THROTTLE_ERROR
        return None

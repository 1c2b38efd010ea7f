"""Blocking starts (``?wait=originate``): answer once the first party's
channel exists, or with the hangup cause when the call failed before it
did, as Kazoo's blocking quickcall does.

The API never talks to the switch: it reads the call's record in Redis
every ``POLL_INTERVAL`` until the record says which, or the deadline passes
(then it answers with the status the call has, ``queued`` or ``dialing``).
Under gunicorn's gevent workers the sleep yields to the worker's other
requests. ``outcome`` is the decision, pure; ``wait_for_originate`` the loop,
with its clock, sleep and read passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..errors import ValidationError
from ..status import FINAL

POLL_INTERVAL = 0.1
DEFAULT_WAIT = 20
MAX_WAIT = 60
# Any of these in a record: the first party's channel existed.
_STARTED = ("ringing_at", "answered_at", "bridged_at")


class Outcome(NamedTuple):
    started: bool | None  # None: not known yet (the deadline passed)
    status: str
    hangup_cause: str = ""


def outcome(record: Mapping[str, str]) -> Outcome | None:
    """What a call's record says about its start: started (the first
    party's channel rang or answered), failed before that (with its hangup
    cause), or None while it is still queued or dialing."""
    status = record.get("status") or ""
    if any(record.get(name) for name in _STARTED):
        return Outcome(True, status)
    if status in FINAL:
        return Outcome(False, status, record.get("hangup_cause") or record.get("a_hangup_cause") or "UNKNOWN")
    return None


def wait_for_originate(read: Callable[[], Mapping[str, str]], seconds: float, *,
                       clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                       interval: float = POLL_INTERVAL) -> Outcome:
    """Read the record until ``outcome`` decides or ``seconds`` pass."""
    deadline = clock() + seconds
    while True:
        record = read()
        found = outcome(record)
        if found is not None:
            return found
        left = deadline - clock()
        if left <= 0:
            return Outcome(None, record.get("status") or "queued")
        sleep(min(interval, left))


def parse_wait(args: Mapping[str, str]) -> float | None:
    """The seconds a request asks to wait (``wait=originate``, with an
    optional ``wait_timeout`` of 1 to ``MAX_WAIT``), or None for no wait."""
    wait = args.get("wait")
    timeout = args.get("wait_timeout")
    if wait is None:
        if timeout is not None:
            raise ValidationError("wait_timeout", "goes with wait=originate")
        return None
    if wait != "originate":
        raise ValidationError("wait", "the one wait there is: originate (until the first party's channel "
                                      "exists, or the call failed)")
    if timeout is None:
        return float(DEFAULT_WAIT)
    if not (timeout.isascii() and timeout.isdigit()) or not 1 <= int(timeout) <= MAX_WAIT:
        raise ValidationError("wait_timeout", "whole seconds from 1 to %d" % MAX_WAIT)
    return float(timeout)

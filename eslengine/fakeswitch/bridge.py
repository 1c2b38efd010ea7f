"""The ``bridge`` application: originate from a channel
(:class:`~.originate.Dialer` with an originator), then link the two
channels (``switch_ivr_multi_threaded_bridge``) or fail as
``switch_channel_handle_cause`` does.

* A failed ``bridge`` hangs the A leg up with the B leg's cause
  (``switch_channel_handle_cause`` without ``continue_on_fail``), except for
  NO_ANSWER, NO_USER_RESPONSE and ORIGINATOR_CANCEL, after which the A leg
  has nothing left to run and ends NORMAL_CLEARING; it sets
  ``originate_disposition``, ``DIALSTATUS`` and ``last_bridge_hangup_cause``
  on it first.
* When the bridged second party hangs up, the first party takes its cause
  only with ``hangup_after_bridge`` true or ``explicit``; otherwise the bridge
  application returns and the channel hangs up NORMAL_CLEARING, keeping
  ``bridge_hangup_cause`` = the peer's cause (the hangup side is
  :meth:`.Switchboard.hangup` with :func:`.channel.after_bridge_cause`).
"""

from __future__ import annotations

import logging

from .channel import Channel, now_us
from .dialparse import DialStringError, parse_enterprise
from .originate import Dialer, timeout_seconds
from .switchboard import Switchboard

log = logging.getLogger(__name__)

# Causes after which the dialplan "always continues" (switch_channel_handle_cause).
_CONTINUE_CAUSES = ("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL")


class Bridge:
    """Runs ``bridge`` on the switchboard's channels."""

    def __init__(self, board: Switchboard, dialer: Dialer) -> None:
        self.board = board
        self.dialer = dialer

    def bridge(self, a: Channel, data: str) -> None:
        """``bridge`` with already expanded ``data``."""
        try:
            parts = parse_enterprise(data)
        except DialStringError as exc:
            log.info("bridge %s: bad dial string %r: %s", a.uuid, data, exc)
            self._failed(a, exc.cause or "DESTINATION_OUT_OF_ORDER")
            return
        timelimit = timeout_seconds(a.variables.get("call_timeout"))
        winner, cause = self.dialer.dial_parts(parts, a, timelimit)
        if not a.alive:
            if winner is not None and winner.a is not None and winner.a.alive:
                self.board.hangup(winner.a, "ORIGINATOR_CANCEL")
            return
        if winner is not None and winner.a is not None:
            self._link(a, winner.a)
            return
        self._failed(a, cause)

    def _failed(self, a: Channel, cause: str) -> None:
        """``bridge`` failed: ``switch_channel_handle_cause`` hangs the
        channel up with the cause, except that no answer (``NO_ANSWER``,
        ``NO_USER_RESPONSE``, ``ORIGINATOR_CANCEL``) is "always a reason to
        continue": the dialplan (or ``&bridge``) goes on, has nothing left,
        and the channel hangs up ``NORMAL_CLEARING``."""
        a.variables["originate_disposition"] = cause
        a.variables["DIALSTATUS"] = cause
        a.variables["originate_failed_cause"] = cause
        a.variables["last_bridge_hangup_cause"] = cause
        if a.alive:
            self.board.hangup(a, "NORMAL_CLEARING" if cause in _CONTINUE_CAUSES else cause)

    def _link(self, a: Channel, b: Channel) -> None:
        now = now_us()
        a.bridge, b.bridge = b, a
        a.bridge_role, b.bridge_role = "originator", "originatee"
        a.bridged_us = b.bridged_us = now
        a.callee_name, a.callee_num = b.callee_name, b.callee_num
        av, bv = a.variables, b.variables
        av["originated_legs"] = "%s;%s;%s" % (b.uuid, b.callee_name, b.callee_num)
        av["originate_disposition"] = "SUCCESS"
        av["DIALSTATUS"] = "SUCCESS"
        av["originate_causes"] = "%s;NONE" % b.uuid
        av["signal_bond"] = b.uuid
        for mine, other in ((av, b), (bv, a)):
            mine["last_bridge_to"] = other.uuid
            mine["bridge_channel"] = other.name
            mine["bridge_uuid"] = other.uuid
        bv["last_bridge_role"] = "originatee"
        self.board.fire_channel("CHANNEL_BRIDGE", a, other=b, other_type="originatee",
                                extra=(("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)))


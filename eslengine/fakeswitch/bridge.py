"""The ``bridge`` application: originate from a channel
(:class:`~.originate.Dialer` with an originator), then link the two
channels (``switch_ivr_multi_threaded_bridge``) or fail as
``switch_channel_handle_cause`` does.

* A failed ``bridge`` hangs the A leg up with the B leg's cause
  (``switch_channel_handle_cause``), except for the causes the dialplan
  continues on: with no ``continue_on_fail``, NO_ANSWER, NO_USER_RESPONSE
  and ORIGINATOR_CANCEL; with ``continue_on_fail`` true, every cause; with a
  list, the causes (names or numbers) it names. ``bridge`` then returns the
  cause, for the caller to run what follows. It sets
  ``originate_disposition``, ``DIALSTATUS`` and ``last_bridge_hangup_cause``
  on the A leg first.
* When the bridged second party hangs up, the first party takes its cause
  only with ``hangup_after_bridge`` true or ``explicit``; otherwise the bridge
  application returns and the channel hangs up NORMAL_CLEARING, keeping
  ``bridge_hangup_cause`` = the peer's cause (the hangup side is
  :meth:`.Switchboard.hangup` with :func:`.channel.after_bridge_cause`).
"""

from __future__ import annotations

import logging

from .channel import Q850, Channel, now_us
from .dialparse import DialStringError, parse_enterprise, switch_true
from .originate import Dialer, timeout_seconds
from .switchboard import Switchboard

log = logging.getLogger(__name__)

# Causes after which the dialplan "always continues" (switch_channel_handle_cause).
_CONTINUE_CAUSES = ("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL")


def continues(continue_on_fail: str | None, cause: str) -> bool:
    """Whether ``switch_channel_handle_cause`` lets the dialplan go on after
    a bridge failed with ``cause``: with no ``continue_on_fail``, only for
    no answer (_CONTINUE_CAUSES); with a true value for every cause; else
    for the causes the comma list names (by name, any case, or number)."""
    if continue_on_fail is None:
        return cause in _CONTINUE_CAUSES
    if switch_true(continue_on_fail):
        return True
    number = Q850.get(cause)
    return any(item.strip().upper() == cause or (number is not None and item.strip() == str(number))
               for item in continue_on_fail.split(","))


class Bridge:
    """Runs ``bridge`` on the switchboard's channels."""

    def __init__(self, board: Switchboard, dialer: Dialer) -> None:
        self.board = board
        self.dialer = dialer

    def bridge(self, a: Channel, data: str) -> str | None:
        """``bridge`` with already expanded ``data``. Returns the failure's
        cause when the A leg goes on to what follows the bridge (a cause
        the dialplan continues on), else None (bridged, or hung up)."""
        try:
            parts = parse_enterprise(data)
        except DialStringError as exc:
            log.info("bridge %s: bad dial string %r: %s", a.uuid, data, exc)
            return self._failed(a, exc.cause or "DESTINATION_OUT_OF_ORDER")
        timelimit = timeout_seconds(a.variables.get("call_timeout"))
        winner, cause = self.dialer.dial_parts(parts, a, timelimit)
        if not a.alive:
            if winner is not None and winner.a is not None and winner.a.alive:
                self.board.hangup(winner.a, "ORIGINATOR_CANCEL")
            return None
        if winner is not None and winner.a is not None:
            self._link(a, winner.a)
            return None
        return self._failed(a, cause)

    def _failed(self, a: Channel, cause: str) -> str | None:
        """``bridge`` failed: ``switch_channel_handle_cause`` hangs the
        channel up with the cause unless it continues on it (see
        ``continues``); then the cause is returned."""
        a.variables["originate_disposition"] = cause
        a.variables["DIALSTATUS"] = cause
        a.variables["originate_failed_cause"] = cause
        a.variables["last_bridge_hangup_cause"] = cause
        if not a.alive:
            return None
        if continues(a.variables.get("continue_on_fail"), cause):
            return cause
        self.board.hangup(a, cause)
        return None

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


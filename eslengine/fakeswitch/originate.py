"""Originate emulation: ``switch_ivr_originate`` dialling a parsed dial string,
for the ``originate`` command (no originating channel) and for ``bridge``
(from a channel). Each leg's fate comes from the :class:`~.scenario.Scenario`
as a timeline of :class:`Step` s.

Choices where the recordings are silent:

* a simultaneous (``,``) leg that is still ringing (or answered too late)
  when another answers ends ``LOSE_RACE``, as a real switch's sofia legs do;
* a session refused by the limits fails that leg with
  ``DESTINATION_OUT_OF_ORDER`` (``Throttle Error!`` / ``Over Session
  Limit!``); when only a loopback ``-b`` leg is refused, the ``-a`` leg stays
  until the originate timeout and ends ``NO_ANSWER``, as recorded.

Dial-string options, as read in FreeSWITCH's C source (switch_ivr_originate.c,
switch_channel.c, switch_core_session.c; revisions held by the code index,
not necessarily 1.11):

* ``originate_retries`` (1..100, else ignored) is the total number of
  attempts; each attempt dials every ``|`` group again, sleeping
  ``originate_retry_sleep_ms`` (500..60000, else ignored) before each group of
  a repeated attempt. An expired ``originate_timeout`` ends the whole
  originate (``goto outer_for``): no further group, no retry.
* ``originate_timeout`` counts per ``|`` group (``start`` is reset for each);
  ``leg_timeout`` on a leg hangs that leg up ``ALLOTTED_TIMEOUT``
  (``check_per_channel_timeouts``), and a group whose legs all end so
  reports the first leg's cause, so a failover whose every leg timed out
  answers ``-ERR ALLOTTED_TIMEOUT``; the originate timeout wins a tie.
* ``origination_uuid`` stays in the ``{}`` variables after use (only the
  per-leg copy loses it), so a later failover or retry leg takes it again
  once the earlier channel is gone. A simultaneous second leg with the same
  uuid: a sofia (or ``user/``) leg fails ``DESTINATION_OUT_OF_ORDER``
  ("Duplicate UUID!", ``switch_core_session_request_uuid``), a loopback leg
  quietly gets a random one (``switch_core_session_set_uuid`` fails).
* A sofia leg started from a channel (``bridge``) also gets that channel's
  ``sip_h_*`` variables (headers on its INVITE), unless the channel has
  ``sip_copy_custom_headers=false``.
* ``:_:`` anywhere makes an enterprise originate: every part is dialled at
  once.
* ``origination_caller_id_*`` and ``origination_privacy`` are read per leg
  (``{}`` merged with ``[]``); privacy resets the caller profile flags and
  sets ``screen`` / ``hide_name`` / ``hide_number`` for each word present.

Assumed, not read: the ``originate_retry_sleep_ms`` default (1000 ms).
Fractional ``originate_timeout``/``leg_timeout`` values are accepted here
for fast tests (FreeSWITCH ``atoi``s them).
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

import gevent
import gevent.event
import gevent.queue

from .apps import Applications
from .channel import Channel, hangup_cause, now_us
from .dialparse import DialString, Leg, Originate, atoi, switch_true
from .scenario import Outcome
from .switchboard import Switchboard

log = logging.getLogger(__name__)

# (caller ID name, number) of a leg when neither the originate nor an
# originating channel gives one.
DEFAULT_CALLER_ID = ("", "0000000000")

_ENDPOINT_CAUSE = {"freetdm": "CHAN_NOT_IMPLEMENTED"}


@dataclass(slots=True)
class DialedLeg:
    """One dialled leg while its originate runs: ``a`` is its channel (with
    a loopback, ``b`` the ``-b`` leg); ``stuck``: a loopback whose ``-b`` leg
    the limits refused, which rings until the originate times out."""

    endpoint: str
    kind: str
    dest: str
    context: str
    variables: dict[str, str]
    outcome: Outcome
    a: Channel | None = None
    b: Channel | None = None
    fail_cause: str | None = None
    stuck: bool = False


class Step(enum.Enum):
    """What happens to a ringing leg at one point of its timeline."""

    PROGRESS = "progress"          # ringing: CHANNEL_PROGRESS
    MEDIA = "media"                # early media: CHANNEL_PROGRESS_MEDIA; wins unless ignore_early_media
    ANSWER = "answer"              # CHANNEL_ANSWER; wins
    FAIL = "fail"                  # hangs up with the outcome's cause
    LEG_TIMEOUT = "leg_timeout"    # leg_timeout is over: ALLOTTED_TIMEOUT unless answered


@dataclass(frozen=True, slots=True)
class Planned:
    """A step due at ``at`` (``time.monotonic()``); ``seq`` orders the legs'
    steps that fall due at once (the leg dialled first goes first)."""

    at: float
    seq: int
    leg: DialedLeg
    step: Step


def outcome_steps(outcome: Outcome, ring_time: float, loopback: bool) -> list[tuple[float, Step]]:
    """A leg's timeline as its scenario outcome has it: (seconds after the
    group starts ringing, step). ``after`` replaces ``ring_time`` when set; a
    loopback leg that answers at once has no progress first."""
    ring = ring_time if outcome.after is None else outcome.after
    if outcome.kind in ("busy", "fail"):
        return [(outcome.after or 0.0, Step.FAIL)]
    if outcome.kind == "no_answer":
        return [(0.0, Step.PROGRESS)] + ([] if outcome.after is None else [(outcome.after, Step.FAIL)])
    if outcome.kind == "early_media":
        return [(0.0, Step.MEDIA), (ring, Step.ANSWER)]
    if outcome.kind == "slow_answer":
        return [(0.0, Step.PROGRESS), (ring, Step.ANSWER)]
    steps = [(0.0, Step.PROGRESS)] if not loopback and ring > 0 else []
    return steps + [(ring, Step.ANSWER)]


def split_endpoint(endpoint: str) -> tuple[str, str, str]:
    """``(kind, destination, context)`` of an endpoint string.

    ``loopback/1486/default`` -> ``("loopback", "1486", "default")``,
    ``sofia/gateway/gw/15551230486`` -> ``("sofia", "15551230486", "default")``,
    ``user/1000@example.com`` -> ``("user", "1000", "default")``.
    """
    parts = endpoint.split("/")
    kind = parts[0].lower()
    if kind == "loopback":
        dest = parts[1] if len(parts) > 1 else ""
        context = parts[2] if len(parts) > 2 and parts[2] else "default"
        return kind, dest, context
    last = parts[-1] if len(parts) > 1 else ""
    if kind == "user":
        last = last.split("@", 1)[0]
    elif kind == "sofia":
        last = last.split("@", 1)[0]
        if last.startswith("sip:"):
            last = last[4:]
    return kind, last, "default"


def leg_variables(global_vars: dict[str, str], leg: Leg) -> dict[str, str]:
    """The variables one leg's channel gets. ``Leg.variables`` already holds
    the ``{}``/``<>``/``[]`` merge in FreeSWITCH's order; the globals only
    fill in for a leg that carries none."""
    merged = dict(leg.variables)
    return merged if merged else dict(global_vars)


def originate_variables(parsed: Originate) -> dict[str, str]:
    """The channel variables of a parsed originate's first leg (the global
    ``{}`` ones when it has no leg)."""
    global_vars = dict(parsed.dial.global_variables)
    for group in parsed.dial.groups:
        if group:
            return leg_variables(global_vars, group[0])
    return global_vars


def timeout_seconds(value: str | None, default: float = 60.0) -> float:
    """A timeout variable's seconds; ``default`` when absent, unreadable or
    not positive."""
    try:
        seconds = float(value) if value is not None else 0.0
    except ValueError:
        return default
    return seconds if seconds > 0 else default


def _int_in(value: str | None, low: int, high: int, default: int) -> int:
    """A ``switch_true`` numeric channel variable within [low, high], else ``default``."""
    if value is None or not switch_true(value):
        return default
    number = atoi(value)
    return number if low <= number <= high else default


class Dialer:
    """Dials parsed dial strings on the switchboard."""

    def __init__(self, board: Switchboard, apps: Applications) -> None:
        self.board = board
        self.apps = apps

    def dial_parts(self, parts: tuple[DialString, ...], originator: Channel | None, timelimit: float,
                   caller_id: tuple[str, str] = DEFAULT_CALLER_ID) -> tuple[DialedLeg | None, str]:
        """Dial an originate's or a bridge's dial string: the winning leg,
        or None and the cause. ``originator`` is the channel running
        ``bridge``; ``timelimit`` the originate timeout when the dial string
        sets none; ``caller_id`` the originate's caller ID arguments.

        Several ``:_:`` parts are ``switch_ivr_enterprise_originate``: each
        part is dialled at once as an originate of its own; the first to
        answer wins and the others' winners hang up LOSE_RACE. (A losing part
        rings on until it ends by itself; the real switch cancels it.)"""
        if len(parts) == 1:
            return self._dial(parts[0], originator, timelimit, caller_id)
        log.info("enterprise originate: %d parts", len(parts))
        results: gevent.queue.Queue[tuple[DialedLeg | None, str]] = gevent.queue.Queue()
        for part in parts:
            self.board.spawn(lambda part=part: results.put(self._dial(part, originator, timelimit, caller_id)))
        pending = len(parts)
        winner: DialedLeg | None = None
        cause = "NO_ANSWER"
        while pending and winner is None:
            leg, why = results.get()
            pending -= 1
            if leg is not None and leg.a is not None:
                winner = leg
            else:
                cause = why or cause
        if pending:
            self.board.spawn(self._drain_losers, results, pending)
        return winner, "" if winner is not None else cause

    def _drain_losers(self, results: gevent.queue.Queue[tuple[DialedLeg | None, str]], left: int) -> None:
        for _ in range(left):
            leg, _why = results.get()
            if leg is not None and leg.a is not None and leg.a.alive:
                self.board.hangup(leg.a, "LOSE_RACE")

    def _plan(self, global_vars: dict[str, str], leg: Leg) -> DialedLeg:
        kind, dest, context = split_endpoint(leg.endpoint)
        variables = leg_variables(global_vars, leg)
        return DialedLeg(leg.endpoint, kind, dest, context, variables, self.board.scenario.outcome(dest))

    def _dial(self, dial: DialString, originator: Channel | None, timelimit: float,
              caller_id: tuple[str, str]) -> tuple[DialedLeg | None, str]:
        """``switch_ivr_originate``'s outer loops: ``originate_retries``
        attempts, each dialling the ``|`` groups in order; a group that fails
        moves on to the next one, except when ``originate_timeout`` expired
        (that ends the whole originate with NO_ANSWER). Returns the winning
        leg, or None and the last cause."""
        if dial.error:
            return None, dial.error
        global_vars = dict(dial.global_variables)
        first_vars: dict[str, str] = {}
        for group in dial.groups:
            if group:
                first_vars = leg_variables(global_vars, group[0])
                break
        # the {} block (var_event) decides; a leg's own [] value is a fallback here
        timeout = timeout_seconds(global_vars.get("originate_timeout") or first_vars.get("originate_timeout"),
                                  timelimit)
        retries = _int_in(global_vars.get("originate_retries"), 1, 100, 1)
        sleep_ms = _int_in(global_vars.get("originate_retry_sleep_ms"), 500, 60000, 1000)
        cause = "NO_ANSWER"
        for attempt in range(retries):
            # A failed leg's session is destroyed only after the originate
            # attempt is over: a failover leg asking for the same uuid meets
            # it still there ("Duplicate UUID!"). The retry sleep outlasts it.
            spent: set[str] = set()
            for group in dial.groups:
                legs = [self._plan(global_vars, leg) for leg in group]
                if not legs:
                    continue
                if attempt:
                    gevent.sleep(self.board.scaled(sleep_ms / 1000.0))
                if originator is not None and not originator.alive:
                    return None, "ORIGINATOR_CANCEL"
                winner, cause, timed_out = self._dial_group(legs, self.board.scaled(timeout), caller_id,
                                                            originator, spent)
                if winner is not None and winner.a is not None:
                    return winner, ""
                if timed_out or (originator is not None and not originator.alive):
                    return None, cause
        return None, cause

    def _dial_group(self, legs: list[DialedLeg], timeout: float, caller_id: tuple[str, str],
                    originator: Channel | None, spent: set[str]) -> tuple[DialedLeg | None, str, bool]:
        """Dial one group of simultaneous legs; ``timeout`` (simulator
        seconds) is the originate timeout. Returns (winner, cause, timed_out).
        A leg with ``leg_timeout`` that has not answered by then hangs up
        ALLOTTED_TIMEOUT (check_per_channel_timeouts); the originate timeout
        hangs up every leg still ringing NO_ANSWER."""
        if originator is not None:
            # The new leg gets a copy of the originator's caller profile, as
            # its events show it (an answered outbound leg is flipped: its
            # callee ID is its caller ID).
            if originator.flipped:
                caller_id = originator.callee_name, originator.callee_num
            else:
                caller_id = originator.cid_name, originator.cid_num
        ringing, first_cause = self._create_channels(legs, caller_id, originator, spent)
        if not ringing:
            return None, first_cause or "DESTINATION_OUT_OF_ORDER", False

        ignore_early = (legs[0].variables.get("ignore_early_media", "false").lower() == "true")
        wake = gevent.event.Event()

        def on_hangup(_ch: Channel) -> None:
            wake.set()

        start = time.monotonic()
        for leg in ringing:
            assert leg.a is not None
            leg.a.on_hangup.append(on_hangup)
        timeline = self._timeline(ringing, start, timeout)
        if originator is not None:
            originator.on_hangup.append(on_hangup)
            originator.dialing = [leg.a for leg in ringing if leg.a is not None]
        winner, causes, timed_out = self._ring(ringing, timeline, start + timeout, ignore_early, originator, wake)
        for ch in [leg.a for leg in ringing] + [originator]:
            if ch is not None and on_hangup in ch.on_hangup:
                ch.on_hangup.remove(on_hangup)
        if originator is not None:
            originator.dialing = []
        if winner is None:
            if originator is not None:
                # switch_ivr_originate pushes "<uuid>;<cause>" of every leg it
                # created onto the originator (the array form for several).
                for leg in ringing:
                    if leg.a is not None:
                        push_variable(originator.variables, "originate_causes",
                                      "%s;%s" % (leg.a.uuid, leg.a.hangup_cause or "NONE"))
            if timed_out:
                return None, "NO_ANSWER", True
            return None, (causes[0] if causes else first_cause or "NO_ANSWER"), False
        for leg in ringing:
            if leg is winner or leg.a is None or not leg.a.alive:
                continue
            self.board.hangup(leg.a, "LOSE_RACE")
        # the winner's remaining timeline (early media, then answer) goes on
        rest = [planned.at for planned in timeline if planned.leg is winner and planned.step is Step.ANSWER]
        if rest and winner.a is not None:
            self.board.spawn(self._later_answer, winner, rest[0])
        return winner, "", False

    def _create_channels(self, legs: list[DialedLeg], caller_id: tuple[str, str], originator: Channel | None,
                         spent: set[str]) -> tuple[list[DialedLeg], str | None]:
        """Create each leg's channel(s) and fire their CHANNEL_CREATE; a leg
        that cannot start gets its ``fail_cause``. Returns the legs that
        ring and the first leg's failure cause."""
        board = self.board
        ringing: list[DialedLeg] = []
        first_cause: str | None = None
        for leg in legs:
            v = leg.variables
            uuid = v.get("origination_uuid")  # the {} block's, or this leg's own [] one
            if leg.kind == "error":
                leg.fail_cause = hangup_cause(leg.endpoint.split("/", 1)[1] if "/" in leg.endpoint else "",
                                              "DESTINATION_OUT_OF_ORDER")
            elif leg.kind not in ("loopback", "sofia", "user"):
                leg.fail_cause = _ENDPOINT_CAUSE.get(leg.kind, "CHAN_NOT_IMPLEMENTED")
            elif uuid and (uuid in board.channels or uuid in spent) and leg.kind != "loopback":
                # sofia asks the core for a session with that uuid
                # (switch_core_session_request_uuid): "Duplicate UUID!", no
                # session. loopback takes one and the uuid change fails
                # quietly (Switchboard.new_channel).
                log.info("Duplicate UUID! %s: %s fails", uuid, leg.endpoint)
                leg.fail_cause = "DESTINATION_OUT_OF_ORDER"
            elif not board.take_session():
                leg.fail_cause = "DESTINATION_OUT_OF_ORDER"
            if leg.fail_cause:
                first_cause = first_cause or leg.fail_cause
                continue
            cid_name = v.get("origination_caller_id_name", caller_id[0])
            cid_num = v.get("origination_caller_id_number", caller_id[1])
            if leg.kind == "loopback":
                name = "loopback/%s-a" % leg.dest
            else:
                name = leg.endpoint.split("?", 1)[0]
            a = board.new_channel(uuid, name, "outbound", dest=leg.dest, context=leg.context, endpoint=leg.kind,
                                  variables=leg.variables, cid_name=cid_name, cid_num=cid_num)
            spent.add(a.uuid)
            if originator is not None:
                if leg.kind in ("sofia", "user") and switch_true(
                        originator.variables.get("sip_copy_custom_headers", "true")):
                    # sofia_outgoing_channel: the originating channel's sip_h_*
                    # go on the new leg's INVITE too (its own win).
                    for key, value in list(originator.variables.items()):
                        if key.startswith("sip_h_") and key not in a.variables:
                            a.variables[key] = value
                a.variables.update(originator=originator.uuid, signal_bond=originator.uuid,
                                   originating_leg_uuid=originator.uuid)
            a.variables["originate_early_media"] = "false"
            a.variables["originate_endpoint"] = leg.kind
            if originator is not None:
                a.call_uuid = originator.uuid
                a.variables["call_uuid"] = originator.uuid
            # switch_ivr_originate, as soon as the leg's channel exists.
            board.api_on(a, "api_on_originate")
            leg.a = a
            if leg.kind == "loopback":
                if board.take_session():
                    b = board.new_channel(None, "loopback/%s-b" % leg.dest, "inbound", dest=leg.dest,
                                          context=leg.context, endpoint=leg.kind, variables=leg.variables,
                                          cid_name=cid_name, cid_num=cid_num)
                    b.peer, a.peer = a, b
                    a.variables["other_loopback_leg_uuid"] = b.uuid
                    a.variables["loopback_leg"] = "A"
                    b.variables.pop("is_outbound", None)
                    b.variables["other_loopback_leg_uuid"] = a.uuid
                    b.variables["loopback_leg"] = "B"
                    leg.b = b
                else:
                    leg.stuck = True
            board.fire_channel("CHANNEL_CREATE", a)
            if leg.b is not None:
                board.fire_channel("CHANNEL_CREATE", leg.b)
            ringing.append(leg)
        return ringing, first_cause

    def _timeline(self, ringing: list[DialedLeg], start: float, timeout: float) -> list[Planned]:
        """Every ringing leg's steps, in the order they fall due; a stuck leg
        has none. ``leg_timeout`` adds a LEG_TIMEOUT step when it comes
        before the originate timeout."""
        timeline: list[Planned] = []
        for seq, leg in enumerate((leg for leg in ringing if not leg.stuck), start=1):
            for offset, step in outcome_steps(leg.outcome, self.board.ring_time, leg.kind == "loopback"):
                timeline.append(Planned(start + offset, seq, leg, step))
            leg_timeout = timeout_seconds(leg.variables.get("leg_timeout"), 0.0)
            if leg_timeout > 0 and self.board.scaled(leg_timeout) < timeout:
                timeline.append(Planned(start + self.board.scaled(leg_timeout), seq, leg, Step.LEG_TIMEOUT))
        timeline.sort(key=lambda planned: (planned.at, planned.seq))
        return timeline

    def _ring(self, ringing: list[DialedLeg], timeline: list[Planned], deadline: float, ignore_early: bool,
              originator: Channel | None, wake: gevent.event.Event) -> tuple[DialedLeg | None, list[str], bool]:
        """Take the timeline's steps as they fall due until a leg wins, every
        leg has ended, the originator hangs up or ``deadline`` passes (every
        leg still ringing then fails NO_ANSWER). ``wake`` is set when a leg
        or the originator hangs up. Returns (winner, the ended legs' causes,
        timed out); the steps not taken stay in ``timeline``."""
        winner: DialedLeg | None = None
        pending = list(ringing)
        causes: list[str] = []
        while pending and winner is None:
            if originator is not None and not originator.alive:
                for leg in pending:
                    if leg.a is not None and leg.a.alive:
                        self.board.hangup(leg.a, "ORIGINATOR_CANCEL")
                causes.append("ORIGINATOR_CANCEL")
                break
            # legs hung up from outside (uuid_kill, hupall) drop out
            for leg in list(pending):
                assert leg.a is not None
                if not leg.a.alive:
                    pending.remove(leg)
                    causes.append(leg.fail_cause or leg.a.hangup_cause or "NORMAL_CLEARING")
            if not pending:
                break
            now = time.monotonic()
            if timeline and timeline[0].at <= now:
                planned = timeline.pop(0)
                if planned.leg in pending:
                    winner = self._take(planned, ignore_early)
                continue
            if now >= deadline:
                for leg in pending:
                    self._fail_leg(leg, "NO_ANSWER")
                    causes.append("NO_ANSWER")
                return None, causes, True
            until = min(deadline, timeline[0].at) if timeline else deadline
            wake.clear()
            wake.wait(max(0.0, until - now))
        return winner, causes, False

    def _take(self, planned: Planned, ignore_early: bool) -> DialedLeg | None:
        """Take one step; the leg when it wins the group."""
        leg, step = planned.leg, planned.step
        if step is Step.FAIL:
            self._fail_leg(leg, leg.outcome.cause or "NORMAL_CLEARING")
        elif step is Step.LEG_TIMEOUT:
            if leg.a is not None and not leg.a.answered:
                self._fail_leg(leg, "ALLOTTED_TIMEOUT")
        elif step is Step.PROGRESS:
            self._progress(leg, media=False)
        elif step is Step.MEDIA:
            self._progress(leg, media=True)
            if not ignore_early:
                return leg
        elif step is Step.ANSWER:
            self._answer(leg)
            return leg
        return None

    def _later_answer(self, leg: DialedLeg, at: float) -> None:
        assert leg.a is not None
        delay = at - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        if leg.a.alive and not leg.a.answered:
            self._answer(leg)

    # -- answer / progress / failure ---------------------------------------------

    @staticmethod
    def _callee_id(leg: DialedLeg) -> None:
        """A sofia leg takes the callee ID the far end sends back (its 180 or
        200): with no Remote-Party-ID, the number it dialled as both name
        and number ("Update Callee ID")."""
        if leg.kind in ("sofia", "user") and leg.a is not None:
            leg.a.callee_name = leg.a.callee_num = leg.dest

    def _answer(self, leg: DialedLeg) -> None:
        board = self.board
        now = now_us()
        self._callee_id(leg)
        for ch in (leg.a, leg.b):
            if ch is not None and ch.alive and not ch.answered:
                ch.answered = True
                ch.answered_us = now
        for ch in (leg.a, leg.b):
            if ch is not None and ch.alive:
                board.fire_channel("CHANNEL_ANSWER", ch)
        if leg.b is not None and leg.b.alive:
            leg.b.variables["current_application"] = "answer"
        if leg.a is not None and leg.a.alive:
            self.apps.execute_on(leg.a, "execute_on_answer")
        talk = leg.outcome.talk if leg.outcome.talk is not None else board.talk_time
        if leg.outcome.kind == "answer_then_hangup" and talk is None:
            talk = 0.0
        if talk is not None and leg.a is not None:
            target = leg.b if leg.b is not None else leg.a
            target.talk_timer = board.later(talk, board.talk_over, target)

    def _progress(self, leg: DialedLeg, media: bool) -> None:
        now = now_us()
        self._callee_id(leg)
        name = "CHANNEL_PROGRESS_MEDIA" if media else "CHANNEL_PROGRESS"
        for ch in (leg.a, leg.b):
            if ch is not None and ch.alive:
                if media:
                    ch.progress_media_us = now
                else:
                    ch.progress_us = now
        for ch in (leg.b, leg.a) if leg.b is not None else (leg.a,):
            if ch is not None and ch.alive:
                self.board.fire_channel(name, ch)

    def _fail_leg(self, leg: DialedLeg, cause: str) -> None:
        leg.fail_cause = cause
        first = leg.b if leg.b is not None and leg.b.alive else leg.a
        if first is not None and first.alive:
            self.board.hangup(first, cause)
        elif leg.a is not None and leg.a.alive:
            self.board.hangup(leg.a, cause)


def push_variable(variables: dict[str, str], name: str, value: str) -> None:
    """``switch_channel_add_variable_var_check(..., SWITCH_STACK_PUSH)``:
    a second value turns the variable into ``ARRAY::first|:second``."""
    old = variables.get(name)
    if not old:
        variables[name] = value
    elif old.startswith("ARRAY::"):
        variables[name] = old + "|:" + value
    else:
        variables[name] = "ARRAY::%s|:%s" % (old, value)

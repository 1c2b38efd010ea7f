"""Simulated channels and the calls they make: originate, bridge, hangup.

:class:`Switchboard` is the simulator's core. It owns the live channels, the
session limits (sessions per second, max sessions, exactly as FreeSWITCH
counts them), runs ``originate`` jobs and hands every event it produces to
one callback, ``fire(name, headers, body, channel)``, which fans it out to
the connected event-socket listeners. It does no socket I/O.

Event order and header sets follow the recorded transcripts (README "Order
for a successful originate", "Order in 06a"). Choices where the recordings
are silent:

* a failed ``bridge`` hangs the A leg up with the B leg's cause
  (``switch_channel_handle_cause`` without ``continue_on_fail``), except for
  NO_ANSWER, NO_USER_RESPONSE and ORIGINATOR_CANCEL, after which the A leg
  has nothing left to run and ends NORMAL_CLEARING; it sets
  ``originate_disposition``, ``DIALSTATUS`` and ``last_bridge_hangup_cause``
  on it first;
* a simultaneous (``,``) leg that is still ringing (or answered too late)
  when another answers ends ``LOSE_RACE``, as a real switch's sofia legs do;
* legs still ringing when the originating channel (``bridge``) hangs up end
  ``ORIGINATOR_CANCEL``;
* a session refused by the limits fails that leg with
  ``DESTINATION_OUT_OF_ORDER`` (``Throttle Error!`` / ``Over Session
  Limit!``); when only a loopback ``-b`` leg is refused, the ``-a`` leg stays
  until the originate timeout and ends ``NO_ANSWER``, as recorded.

Dial-string options, as read in FreeSWITCH's C source (switch_ivr_originate.c,
switch_channel.c, switch_core_session.c, switch_ivr_bridge.c, mod_dptools.c,
switch_ivr_async.c; revisions held by the code index, not necessarily 1.11):

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
* The application data of ``&app(args)``, of the connect extension's actions
  and of ``execute_on_*`` hooks is expanded (``${var}``, with expansion's
  own backslash rules) before the application runs; ``&app(args)`` whose
  args hold ``\\'`` is not added at all, and the answered leg, with nothing
  to run, hangs up NORMAL_CLEARING. ``:_:`` anywhere makes an enterprise
  originate: every part is dialled at once.
* ``origination_caller_id_*`` and ``origination_privacy`` are read per leg
  (``{}`` merged with ``[]``); privacy resets the caller profile flags and
  sets ``screen`` / ``hide_name`` / ``hide_number`` for each word present.
* ``switch_channel_execute_on``: every variable whose name starts with the
  prefix (case-insensitive) runs; the value splits at the first space or
  single ``:``; ``::`` first queues it. ``execute_on_answer`` runs right after
  CHANNEL_ANSWER.
* ``sched_hangup``/``sched_broadcast`` take whole seconds (``atol``; ``+N``
  relative), so fractions are not accepted: ``time_scale`` divides every such
  delay instead. ``sched_broadcast`` legs: ``aleg`` (default), ``bleg``,
  ``both`` (the channel and its bridge partner).
* ``record_session``: RECORD_START carries ``Record-File-Path`` before the
  channel data.
* When the bridged second party hangs up, the first party takes its cause
  only with ``hangup_after_bridge`` true or ``explicit``; otherwise the bridge
  application returns and the channel hangs up NORMAL_CLEARING, keeping
  ``bridge_hangup_cause`` = the peer's cause.

Assumed, not read: the ``originate_retry_sleep_ms`` default (1000 ms);
RECORD_STOP's headers and its place between CHANNEL_HANGUP and
CHANNEL_HANGUP_COMPLETE; the Event-Calling-Line-Number of RECORD_* (0);
hooks run on the outbound channel only (a loopback ``-b`` leg also carries
the variables and would run them too in FreeSWITCH); the first party's
cause when it hangs up first (the peer takes the same cause). Fractional
``originate_timeout``/``leg_timeout`` values are accepted here for fast
tests (FreeSWITCH ``atoi``s them).
"""

from __future__ import annotations

import logging
import re
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
import gevent.pool

from .dialparse import atoi, switch_true
from .scenario import Outcome, Scenario

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
FireFn = Callable[[str, Headers, str, "Channel | None"], None]

USAGE_ORIGINATE = (
    "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>]"
    " [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
)

Q850 = {
    "UNALLOCATED_NUMBER": 1, "NO_ROUTE_TRANSIT_NET": 2, "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20, "CALL_REJECTED": 21, "NUMBER_CHANGED": 22,
    "DESTINATION_OUT_OF_ORDER": 27, "INVALID_NUMBER_FORMAT": 28, "FACILITY_REJECTED": 29,
    "NORMAL_UNSPECIFIED": 31, "NORMAL_CIRCUIT_CONGESTION": 34, "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41, "SWITCH_CONGESTION": 42, "REQUESTED_CHAN_UNAVAIL": 44,
    "BEARERCAPABILITY_NOTAVAIL": 58, "CHAN_NOT_IMPLEMENTED": 66, "FACILITY_NOT_IMPLEMENTED": 69,
    "SERVICE_NOT_IMPLEMENTED": 79, "INCOMPATIBLE_DESTINATION": 88, "RECOVERY_ON_TIMER_EXPIRE": 102,
    "ORIGINATOR_CANCEL": 487, "CRASH": 500, "SYSTEM_SHUTDOWN": 501, "LOSE_RACE": 502,
    "MANAGER_REQUEST": 503, "BLIND_TRANSFER": 600, "ATTENDED_TRANSFER": 601,
    "ALLOTTED_TIMEOUT": 602, "USER_CHALLENGE": 603, "MEDIA_TIMEOUT": 604,
    "PICKED_OFF": 605, "USER_NOT_REGISTERED": 606, "PROGRESS_TIMEOUT": 607,
    "INVALID_GATEWAY": 608, "GATEWAY_DOWN": 609, "INVALID_URL": 610, "INVALID_PROFILE": 611,
    "NO_PICKUP": 612,
}
# FreeSWITCH prints the cause's q850 value; the non-Q.850 causes report their enum.
_Q850_OUT = {k: (v if v < 128 else 0) for k, v in Q850.items()}

# Apps that run to completion and leave the call with nothing more to do.
_FINITE_APPS = frozenset(
    {"log", "set", "export", "unset", "info", "answer", "pre_answer", "ring_ready", "sleep",
     "playback", "say", "event", "multiset", "set_global", "respond", "displace_session"}
)
# Apps that keep the channel up until it is hung up.
_LASTING_APPS = frozenset({"park", "echo", "conference", "delay_echo", "endless_playback", "socket"})

_CORE_UUID = str(uuidlib.uuid4())


def hangup_cause(name: str | None, default: str = "NORMAL_CLEARING") -> str:
    """A cause name FreeSWITCH knows (case-insensitive), else ``default``."""
    if name:
        upper = name.upper()
        if upper in Q850:
            return upper
    return default


def _now_us() -> int:
    return int(time.time() * 1_000_000)


@dataclass(slots=True)
class OriginateRecord:
    """One originate the switch received, whether or not it made a call."""

    time: float
    job_uuid: str | None
    args: str
    result: str | None = None
    uuid: str | None = None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SwitchStats:
    """Counters for pacing tests and benchmarks.

    ``originates_per_second`` and ``sessions_per_second`` are keyed by
    ``int(time.time())``; ``refused_over_limit`` counts sessions refused by
    the sps throttle or max_sessions; ``originate_log`` has the time the
    switch started on each originate (parsing it; for a bgapi, once its
    background job runs) and its ``eslengine_job_id``, parsable or not;
    ``result_log`` the time each bgapi originate's result (its
    BACKGROUND_JOB) was fired: the switch is done with that command.
    """

    sessions_since_startup: int = 0
    peak_sessions: int = 0
    peak_sps: int = 0
    refused_over_limit: int = 0
    originates_per_second: dict[int, int] = field(default_factory=dict)
    sessions_per_second: dict[int, int] = field(default_factory=dict)
    originate_log: list[tuple[float, str]] = field(default_factory=list)
    result_log: list[float] = field(default_factory=list)


class Channel:
    """One simulated FreeSWITCH channel (one ``Unique-ID``)."""

    __slots__ = (
        "uuid", "name", "direction", "dest", "context", "endpoint", "variables",
        "cid_name", "cid_num", "callee_name", "callee_num", "flipped", "session_id",
        "created_us", "answered_us", "progress_us", "progress_media_us", "hangup_us", "bridged_us",
        "answered", "hangup_cause", "peer", "bridge", "bridge_role", "call_uuid", "app",
        "on_hangup", "talk_timer", "hit_dialplan", "screen", "hide_name", "hide_number", "recordings",
        "dialing",
    )

    def __init__(self, uuid: str, name: str, direction: str, dest: str, context: str,
                 endpoint: str, variables: dict[str, str], cid_name: str, cid_num: str,
                 session_id: int) -> None:
        self.uuid = uuid
        self.name = name
        self.direction = direction
        self.dest = dest
        self.context = context
        self.endpoint = endpoint
        self.variables = variables
        self.cid_name = cid_name
        self.cid_num = cid_num
        self.callee_name = "Outbound Call"
        self.callee_num = context if endpoint == "loopback" else dest
        self.flipped = False
        self.session_id = session_id
        self.created_us = _now_us()
        self.answered_us = 0
        self.progress_us = 0
        self.progress_media_us = 0
        self.hangup_us = 0
        self.bridged_us = 0
        self.answered = False
        self.hangup_cause: str | None = None
        self.peer: Channel | None = None
        self.bridge: Channel | None = None
        self.bridge_role = ""
        self.call_uuid = uuid
        self.app = ""
        self.on_hangup: list[Callable[[Channel], None]] = []
        # Legs this channel's bridge is ringing: cancelled (ORIGINATOR_CANCEL)
        # when it hangs up, before its own CHANNEL_HANGUP_COMPLETE.
        self.dialing: list[Channel] = []
        self.talk_timer: gevent.Greenlet | None = None
        self.hit_dialplan = direction == "inbound"
        # origination_privacy resets the profile flags, then sets each word it contains
        privacy = variables.get("origination_privacy")
        if privacy is None:
            self.screen, self.hide_name, self.hide_number = True, False, False
        else:
            low = privacy.lower()
            self.screen = "screen" in low
            self.hide_name = "hide_name" in low
            self.hide_number = "hide_number" in low
        self.recordings: list[str] = []

    @property
    def alive(self) -> bool:
        return self.hangup_cause is None

    def __repr__(self) -> str:
        return "<Channel %s %s%s>" % (self.name, self.uuid, "" if self.alive else " " + str(self.hangup_cause))

    # -- event headers -------------------------------------------------------

    def _caller(self, prefix: str, for_other: bool = False) -> Headers:
        if self.flipped:
            name, num, cname, cnum = self.callee_name, self.callee_num, self.cid_name, self.cid_num
        else:
            name, num, cname, cnum = self.cid_name, self.cid_num, self.callee_name, self.callee_num
        zero = "0"
        h: Headers = [
            (prefix + "Direction", self.direction),
            (prefix + "Logical-Direction", "inbound" if for_other else self.direction),
            (prefix + "Dialplan", "xml"),
            (prefix + "Caller-ID-Name", name),
            (prefix + "Caller-ID-Number", num),
            (prefix + "Orig-Caller-ID-Name", self.cid_name),
            (prefix + "Orig-Caller-ID-Number", self.cid_num),
            (prefix + "Callee-ID-Name", cname),
            (prefix + "Callee-ID-Number", cnum),
            (prefix + "ANI", self.cid_num),
            (prefix + "Destination-Number", self.dest),
            (prefix + "Unique-ID", self.uuid),
            (prefix + "Source", "mod_" + self.endpoint),
            (prefix + "Context", self.context),
            (prefix + "Channel-Name", self.name),
        ]
        if not for_other:
            h.append((prefix + "Profile-Index", "1"))
        created = str(self.created_us)
        h += [
            (prefix + "Profile-Created-Time", created),
            (prefix + "Channel-Created-Time", created),
            (prefix + "Channel-Answered-Time", str(self.answered_us)),
            (prefix + "Channel-Progress-Time", str(self.progress_us)),
            (prefix + "Channel-Progress-Media-Time", str(self.progress_media_us)),
            (prefix + "Channel-Hangup-Time", str(self.hangup_us)),
            (prefix + "Channel-Transfer-Time", zero),
            (prefix + "Channel-Resurrect-Time", zero),
            (prefix + "Channel-Bridged-Time", str(self.bridged_us)),
            (prefix + "Channel-Last-Hold", zero),
            (prefix + "Channel-Hold-Accum", zero),
            (prefix + "Screen-Bit", "true" if self.screen else "false"),
            (prefix + "Privacy-Hide-Name", "true" if self.hide_name else "false"),
            (prefix + "Privacy-Hide-Number", "true" if self.hide_number else "false"),
        ]
        return h

    def channel_headers(self, state: str, call_state: str, state_number: str,
                        other: Channel | None = None, other_type: str = "") -> Headers:
        """Channel-*, Caller-*, optional Other-Leg-* and variable_* headers."""
        if self.hangup_cause is not None:
            answer_state = "hangup"
        elif self.answered:
            answer_state = "answered"
        elif self.progress_media_us:
            answer_state = "early"
        else:
            answer_state = "ringing"
        h: Headers = [
            ("Channel-State", state),
            ("Channel-Call-State", call_state),
            ("Channel-State-Number", state_number),
            ("Channel-Name", self.name),
            ("Unique-ID", self.uuid),
            ("Call-Direction", self.direction),
            ("Presence-Call-Direction", self.direction),
            ("Channel-HIT-Dialplan", "true" if self.hit_dialplan else "false"),
            ("Channel-Call-UUID", self.call_uuid),
            ("Answer-State", answer_state),
        ]
        if self.hangup_cause is not None:
            h.append(("Hangup-Cause", self.hangup_cause))
        h += _CODEC_HEADERS
        h += self._caller("Caller-")
        if other is not None:
            h.append(("Other-Type", other_type))
            h += other._caller("Other-Leg-", for_other=True)
        h += [("variable_" + k, v) for k, v in self.variables.items()]
        return h


_CODEC_HEADERS: Headers = [
    ("Channel-Read-Codec-Name", "L16"),
    ("Channel-Read-Codec-Rate", "8000"),
    ("Channel-Read-Codec-Bit-Rate", "128000"),
    ("Channel-Write-Codec-Name", "L16"),
    ("Channel-Write-Codec-Rate", "8000"),
    ("Channel-Write-Codec-Bit-Rate", "128000"),
]

# (Event-Calling-File, Event-Calling-Function, Event-Calling-Line-Number)
_CALLING = {
    "CHANNEL_CREATE": ("switch_core_state_machine.c", "switch_core_session_run", "626"),
    "CHANNEL_ANSWER": ("switch_channel.c", "switch_channel_perform_mark_answered", "3848"),
    "CHANNEL_PROGRESS": ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", "3534"),
    "CHANNEL_PROGRESS_MEDIA": ("switch_channel.c", "switch_channel_perform_mark_pre_answered", "3653"),
    "CHANNEL_HANGUP": ("switch_channel.c", "switch_channel_perform_hangup", "3447"),
    "CHANNEL_HANGUP_COMPLETE": ("switch_core_state_machine.c", "switch_core_session_reporting_state", "943"),
    "CHANNEL_BRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1689"),
    "CHANNEL_UNBRIDGE": ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", "1783"),
    "CHANNEL_EXECUTE": ("switch_core_session.c", "switch_core_session_exec", "2949"),
    "CHANNEL_EXECUTE_COMPLETE": ("switch_core_session.c", "switch_core_session_exec", "2972"),
    "RECORD_START": ("switch_ivr_async.c", "record_callback", "0"),
    "RECORD_STOP": ("switch_ivr_async.c", "record_callback", "0"),
    "BACKGROUND_JOB": ("mod_event_socket.c", "api_exec", "1580"),
}
_DEFAULT_CALLING = ("switch_core_session.c", "switch_core_session_run", "0")

# (Channel-State, Channel-Call-State, Channel-State-Number) per event, outbound / inbound.
_STATES = {
    "CHANNEL_CREATE": (("CS_INIT", "DOWN", "2"), ("CS_INIT", "DOWN", "2")),
    "CHANNEL_PROGRESS": (("CS_CONSUME_MEDIA", "DOWN", "7"), ("CS_EXECUTE", "DOWN", "4")),
    "CHANNEL_PROGRESS_MEDIA": (("CS_CONSUME_MEDIA", "DOWN", "7"), ("CS_EXECUTE", "DOWN", "4")),
    "CHANNEL_ANSWER": (("CS_CONSUME_MEDIA", "DOWN", "7"), ("CS_EXECUTE", "RINGING", "4")),
    "CHANNEL_BRIDGE": (("CS_EXECUTE", "ACTIVE", "4"), ("CS_EXECUTE", "ACTIVE", "4")),
    "CHANNEL_UNBRIDGE": (("CS_EXECUTE", "ACTIVE", "4"), ("CS_EXECUTE", "ACTIVE", "4")),
    "CHANNEL_EXECUTE": (("CS_EXECUTE", "ACTIVE", "4"), ("CS_EXECUTE", "ACTIVE", "4")),
    "CHANNEL_EXECUTE_COMPLETE": (("CS_EXECUTE", "ACTIVE", "4"), ("CS_EXECUTE", "ACTIVE", "4")),
    "CHANNEL_HANGUP": (("CS_EXECUTE", "ACTIVE", "10"), ("CS_EXECUTE", "ACTIVE", "10")),
    "CHANNEL_HANGUP_COMPLETE": (("CS_REPORTING", "HANGUP", "11"), ("CS_REPORTING", "HANGUP", "11")),
}


@dataclass(slots=True)
class _Leg:
    """One dialled leg while its originate runs."""

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
    won: bool = False


_ENDPOINT_CAUSE = {"freetdm": "CHAN_NOT_IMPLEMENTED"}


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


def _as_dict(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {str(k): str(v) for k, v in value}


def leg_variables(global_vars: dict[str, str], leg: Any) -> dict[str, str]:
    """The variables one leg's channel gets. ``Leg.variables`` already holds
    the ``{}``/``<>``/``[]`` merge in FreeSWITCH's order; the globals only
    fill in for a leg object that carries none."""
    merged = _as_dict(getattr(leg, "variables", None))
    return merged if merged else dict(global_vars)


def originate_variables(parsed: Any) -> dict[str, str]:
    """The channel variables of a parsed originate's first leg (the global
    ``{}`` ones when it has no leg)."""
    global_vars = _as_dict(getattr(parsed.dial, "global_variables", None))
    for group in parsed.dial.groups:
        if group:
            return leg_variables(global_vars, group[0])
    return dict(global_vars)


def _timeout(value: str | None, default: float = 60.0) -> float:
    try:
        seconds = float(value) if value is not None else 0.0
    except ValueError:
        return default
    return seconds if seconds > 0 else default


class Switchboard:
    """Live channels, session limits and the originate machinery."""

    def __init__(self, fire: FireFn, *, hostname: str, sps: int, max_sessions: int,
                 ring_time: float, talk_time: float | None, scenario: Scenario,
                 time_scale: float = 1.0, playback_time: float = 0.0, originates_kept: int = 10_000) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.fire_cb = fire
        self.time_scale = time_scale
        self.playback_time = playback_time
        self.hostname = hostname
        self.sps = sps
        self.max_sessions = max_sessions
        self.ring_time = ring_time
        self.talk_time = talk_time
        self.scenario = scenario
        self.channels: dict[str, Channel] = {}
        self.originates: deque[OriginateRecord] = deque(maxlen=originates_kept)
        self.stats = SwitchStats()
        self.core_uuid = _CORE_UUID
        self.started = time.time()
        self._seq = 0
        self._session_ids = 0
        self._sps_second = 0
        self._sps_left = 0
        self._sps_attempts = 0
        self._date_cache: tuple[int, str, str] = (0, "", "")
        self._in_flight = 0
        self.shutting_down = False
        self.group = gevent.pool.Group()
        # Runs an API command for a channel hook (FakeSwitch.api): (cmd, arg) -> body.
        self.api_cb: Callable[[str, str], str] | None = None

    def later(self, seconds: float, func: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        """``func(*args)`` in ``seconds``, killed with the switch."""
        g = gevent.spawn_later(seconds, func, *args)
        self.group.add(g)
        return g

    def spawn(self, func: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        return self.group.spawn(func, *args)

    def scaled(self, seconds: float) -> float:
        """A FreeSWITCH delay (originate/leg timeouts, retry sleeps, sched_*,
        playback) in simulator seconds: divided by ``time_scale``."""
        return seconds / self.time_scale

    # -- events ----------------------------------------------------------------

    def _dates(self) -> tuple[str, str]:
        sec = int(time.time())
        if self._date_cache[0] != sec:
            self._date_cache = (
                sec,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec)),
                time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(sec)),
            )
        return self._date_cache[1], self._date_cache[2]

    def base_headers(self, name: str) -> Headers:
        self._seq += 1
        local, gmt = self._dates()
        calling = _CALLING.get(name, _DEFAULT_CALLING)
        return [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", self.hostname),
            ("FreeSWITCH-Switchname", self.hostname),
            ("FreeSWITCH-IPv4", "127.0.0.1"),
            ("FreeSWITCH-IPv6", "::1"),
            ("Event-Date-Local", local),
            ("Event-Date-GMT", gmt),
            ("Event-Date-Timestamp", str(_now_us())),
            ("Event-Calling-File", calling[0]),
            ("Event-Calling-Function", calling[1]),
            ("Event-Calling-Line-Number", calling[2]),
            ("Event-Sequence", str(self._seq)),
        ]

    def fire_channel(self, name: str, ch: Channel, *, extra: Iterable[tuple[str, str]] = (),
                     other: Channel | None = None, other_type: str = "",
                     tail: Iterable[tuple[str, str]] = ()) -> None:
        """``extra`` headers go before the channel data, ``tail`` after it
        (where FreeSWITCH adds ``Application*`` to CHANNEL_EXECUTE)."""
        h = self.base_headers(name)
        h.extend(extra)
        if name == "CHANNEL_HANGUP_COMPLETE" and ch.hangup_cause:
            h.append(("Hangup-Cause", ch.hangup_cause))
        state = _STATES.get(name, (("CS_EXECUTE", "ACTIVE", "4"),) * 2)[ch.direction == "inbound"]
        h.extend(ch.channel_headers(state[0], state[1], state[2], other, other_type))
        h.extend(tail)
        self.fire_cb(name, h, "", ch)

    # -- sessions --------------------------------------------------------------

    def _take_session(self) -> bool:
        """Account one new session; False when FreeSWITCH would refuse it."""
        now = time.time()
        sec = int(now)
        if sec != self._sps_second:
            self._sps_second = sec
            self._sps_left = self.sps
            self._sps_attempts = 0
        self._sps_attempts += 1
        self.stats.peak_sps = max(self.stats.peak_sps, self._sps_attempts)
        self.stats.sessions_per_second[sec] = self.stats.sessions_per_second.get(sec, 0) + 1
        if self.shutting_down:
            return False
        if len(self.channels) >= self.max_sessions:
            log.debug("Over Session Limit! %d", self.max_sessions)
            self.stats.refused_over_limit += 1
            return False
        self._sps_left -= 1
        if self._sps_left <= 0:
            log.debug("Throttle Error! %d", self.sps)
            self.stats.refused_over_limit += 1
            return False
        return True

    def _new_channel(self, uuid: str | None, name: str, direction: str, leg: _Leg,
                     cid_name: str, cid_num: str) -> Channel:
        if not uuid or uuid in self.channels:
            if uuid:
                log.info("Duplicate UUID! %s, using a random one", uuid)
            uuid = str(uuidlib.uuid4())
        self._session_ids += 1
        variables: dict[str, str] = {"direction": direction}
        if direction == "outbound":
            variables["is_outbound"] = "true"
        variables.update(
            session_id=str(self._session_ids), read_codec="L16", read_rate="8000",
            write_codec="L16", write_rate="8000", channel_name=name, uuid=uuid, call_uuid=uuid,
        )
        variables.update(leg.variables)
        ch = Channel(uuid, name, direction, leg.dest, leg.context, leg.kind, variables,
                     cid_name, cid_num, self._session_ids)
        self.channels[uuid] = ch
        self.stats.sessions_since_startup += 1
        self.stats.peak_sessions = max(self.stats.peak_sessions, len(self.channels))
        return ch

    @property
    def in_flight(self) -> int:
        """Originates (and bridges) still deciding their outcome."""
        return self._in_flight

    # -- hangup ----------------------------------------------------------------

    def hangup(self, ch: Channel, cause: str) -> None:
        """Hang ``ch`` up with ``cause``; its loopback peer and bridged
        channels follow, in FreeSWITCH's event order."""
        if not ch.alive:
            return
        legs = [ch]
        if ch.peer is not None and ch.peer.alive:
            legs.append(ch.peer)
        now = _now_us()
        for leg in legs:
            leg.hangup_cause = cause
            leg.hangup_us = now
            if leg.talk_timer is not None:
                leg.talk_timer.kill(block=False)
                leg.talk_timer = None
        for leg in legs:
            self.fire_channel("CHANNEL_HANGUP", leg)
        for leg in legs:
            # switch_ivr_originate sees its caller gone and cancels what it
            # rings before the caller's thread reaches CS_HANGUP.
            dialing, leg.dialing = leg.dialing, []
            for out in dialing:
                self.hangup(out, "ORIGINATOR_CANCEL")
        bridged = [leg for leg in legs if leg.bridge is not None]
        for leg in legs:
            if leg not in bridged:
                self._complete(leg)
        for leg in bridged:
            other = leg.bridge
            assert other is not None
            a_side, b_side = (leg, other) if leg.bridge_role == "originator" else (other, leg)
            self.fire_channel("CHANNEL_UNBRIDGE", a_side, other=b_side, other_type="originatee")
            leg.bridge = None
            other.bridge = None
            other.variables["last_bridge_hangup_cause"] = cause
            other.variables["bridge_hangup_cause"] = cause
            leg.variables["last_bridge_hangup_cause"] = cause
            leg.variables["bridge_hangup_cause"] = cause
            self.hangup(other, _after_bridge_cause(other, leg, cause))
        for leg in bridged:
            self._complete(leg)

    def _complete(self, ch: Channel) -> None:
        v = ch.variables
        v["hangup_cause"] = ch.hangup_cause or "NORMAL_CLEARING"
        v["hangup_cause_q850"] = str(_Q850_OUT.get(v["hangup_cause"], 0))
        start = ch.created_us
        v["start_epoch"] = str(start // 1_000_000)
        v["start_uepoch"] = str(start)
        v["answer_epoch"] = str(ch.answered_us // 1_000_000)
        v["answer_uepoch"] = str(ch.answered_us)
        v["bridge_epoch"] = str(ch.bridged_us // 1_000_000)
        v["bridge_uepoch"] = str(ch.bridged_us)
        v["end_epoch"] = str(ch.hangup_us // 1_000_000)
        v["end_uepoch"] = str(ch.hangup_us)
        bill = (ch.hangup_us - ch.answered_us) if ch.answered_us else 0
        v["duration"] = str((ch.hangup_us - start) // 1_000_000)
        v["billsec"] = str(bill // 1_000_000)
        v["billmsec"] = str(bill // 1000)
        for path in ch.recordings:
            self.fire_channel("RECORD_STOP", ch, extra=(("Record-File-Path", path),))
        ch.recordings = []
        # switch_core_session_hangup_state: the hangup cause and the
        # timestamps are set, the channel still exists.
        hook = v.get("api_hangup_hook")
        if hook:
            self.api_hook(ch, hook)
        self.fire_channel("CHANNEL_HANGUP_COMPLETE", ch)
        self.channels.pop(ch.uuid, None)
        for callback in ch.on_hangup:
            callback(ch)
        ch.on_hangup = []

    def hupall(self, cause: str, var: str | None = None, value: str | None = None) -> int:
        victims = [ch for ch in list(self.channels.values())
                   if var is None or ch.variables.get(var) == value]
        for ch in victims:
            self.hangup(ch, cause)
        return len(victims)

    # -- answer / progress -----------------------------------------------------

    @staticmethod
    def _callee_id(leg: _Leg) -> None:
        """A sofia leg takes the callee ID the far end sends back (its 180 or
        200): with no Remote-Party-ID, the number it dialled as both name
        and number ("Update Callee ID")."""
        if leg.kind in ("sofia", "user") and leg.a is not None:
            leg.a.callee_name = leg.a.callee_num = leg.dest

    def _answer(self, leg: _Leg) -> None:
        now = _now_us()
        self._callee_id(leg)
        for ch in (leg.a, leg.b):
            if ch is not None and ch.alive and not ch.answered:
                ch.answered = True
                ch.answered_us = now
        for ch in (leg.a, leg.b):
            if ch is not None and ch.alive:
                self.fire_channel("CHANNEL_ANSWER", ch)
        if leg.b is not None and leg.b.alive:
            leg.b.variables["current_application"] = "answer"
        if leg.a is not None and leg.a.alive:
            self.execute_on(leg.a, "execute_on_answer")
        talk = leg.outcome.talk if leg.outcome.talk is not None else self.talk_time
        if leg.outcome.kind == "answer_then_hangup" and talk is None:
            talk = 0.0
        if talk is not None and leg.a is not None:
            target = leg.b if leg.b is not None else leg.a
            target.talk_timer = self.later(talk, self._talk_over, target)

    def _talk_over(self, ch: Channel) -> None:
        ch.talk_timer = None
        if ch.alive:
            self.hangup(ch, "NORMAL_CLEARING")

    def _progress(self, leg: _Leg, media: bool) -> None:
        now = _now_us()
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
                self.fire_channel(name, ch)

    def _fail_leg(self, leg: _Leg, cause: str) -> None:
        leg.fail_cause = cause
        first = leg.b if leg.b is not None and leg.b.alive else leg.a
        if first is not None and first.alive:
            self.hangup(first, cause)
        elif leg.a is not None and leg.a.alive:
            self.hangup(leg.a, cause)

    # -- originate -------------------------------------------------------------

    def record(self, args: str, job_uuid: str | None) -> OriginateRecord:
        rec = OriginateRecord(time.time(), job_uuid, args)
        self.originates.append(rec)
        sec = int(rec.time)
        per = self.stats.originates_per_second
        per[sec] = per.get(sec, 0) + 1
        return rec

    def originate(self, rec: OriginateRecord, parsed: Any, done: Callable[[str], None]) -> None:
        """Run one parsed originate to the end of its call.

        ``done(result)`` is called once, as soon as the result text is known
        (``+OK <uuid>\\n`` or ``-ERR <CAUSE>\\n``); the A leg's application then
        runs in this same greenlet.
        """
        self._in_flight += 1
        try:
            result, winner = self._originate(rec, parsed)
        except BaseException:
            self._in_flight -= 1
            raise
        rec.result = result
        if winner is None or winner.a is None:
            self._in_flight -= 1
            done(result)
            return
        rec.uuid = winner.a.uuid
        done(result)
        try:
            self._run_app(winner, parsed)
        finally:
            self._in_flight -= 1

    def _plan(self, global_vars: dict[str, str], leg: Any) -> _Leg:
        endpoint = str(getattr(leg, "endpoint", ""))
        kind, dest, context = split_endpoint(endpoint)
        variables = leg_variables(global_vars, leg)
        return _Leg(endpoint, kind, dest, context, variables, self.scenario.outcome(dest))

    def _originate(self, rec: OriginateRecord, parsed: Any) -> tuple[str, _Leg | None]:
        rec.variables = originate_variables(parsed)
        positional = getattr(parsed, "timeout", None)
        parts = getattr(parsed, "parts", None) or (parsed.dial,)
        winner, cause = self._dial_parts(parts, parsed, None, _timeout(str(positional)) if positional else 60.0)
        if winner is not None and winner.a is not None:
            return "+OK %s\n" % winner.a.uuid, winner
        return "-ERR %s\n" % cause, None

    def _dial_parts(self, parts: Any, parsed: Any, originator: Channel | None,
                    timelimit: float) -> tuple[_Leg | None, str]:
        """``switch_ivr_enterprise_originate`` for several ``:_:`` parts: each
        part is dialled at once as an originate of its own; the first to
        answer wins and the others' winners hang up LOSE_RACE. (A losing part
        rings on until it ends by itself; the real switch cancels it.)"""
        if len(parts) == 1:
            return self._dial(parts[0], parsed, originator, timelimit)
        log.info("enterprise originate: %d parts", len(parts))
        results: gevent.queue.Queue[tuple[_Leg | None, str]] = gevent.queue.Queue()
        for part in parts:
            self.spawn(lambda part=part: results.put(self._dial(part, parsed, originator, timelimit)))
        pending = len(parts)
        winner: _Leg | None = None
        cause = "NO_ANSWER"
        while pending and winner is None:
            leg, why = results.get()
            pending -= 1
            if leg is not None and leg.a is not None:
                winner = leg
            else:
                cause = why or cause
        if pending:
            self.spawn(self._drain_losers, results, pending)
        return winner, "" if winner is not None else cause

    def _drain_losers(self, results: Any, left: int) -> None:
        for _ in range(left):
            leg, _why = results.get()
            if leg is not None and leg.a is not None and leg.a.alive:
                self.hangup(leg.a, "LOSE_RACE")

    def _dial(self, dial: Any, parsed: Any, originator: Channel | None,
              timelimit: float) -> tuple[_Leg | None, str]:
        """``switch_ivr_originate``'s outer loops: ``originate_retries``
        attempts, each dialling the ``|`` groups in order; a group that fails
        moves on to the next one, except when ``originate_timeout`` expired
        (that ends the whole originate with NO_ANSWER). Returns the winning
        leg, or None and the last cause."""
        if getattr(dial, "error", None):
            return None, dial.error
        global_vars = _as_dict(getattr(dial, "global_variables", None))
        first_vars: dict[str, str] = {}
        for group in dial.groups:
            if group:
                first_vars = leg_variables(global_vars, group[0])
                break
        # the {} block (var_event) decides; a leg's own [] value is a fallback here
        timeout = _timeout(global_vars.get("originate_timeout") or first_vars.get("originate_timeout"),
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
                    gevent.sleep(self.scaled(sleep_ms / 1000.0))
                if originator is not None and not originator.alive:
                    return None, "ORIGINATOR_CANCEL"
                winner, cause, timed_out = self._dial_group(legs, self.scaled(timeout), parsed, originator, spent)
                if winner is not None and winner.a is not None:
                    return winner, ""
                if timed_out or (originator is not None and not originator.alive):
                    return None, cause
        return None, cause

    def _dial_group(self, legs: list[_Leg], timeout: float, parsed: Any,
                    originator: Channel | None, spent: set[str] | None = None) -> tuple[_Leg | None, str, bool]:
        """Dial one group of simultaneous legs; ``timeout`` (simulator
        seconds) is the originate timeout. Returns (winner, cause, timed_out).
        A leg with ``leg_timeout`` that has not answered by then hangs up
        ALLOTTED_TIMEOUT (check_per_channel_timeouts); the originate timeout
        hangs up every leg still ringing NO_ANSWER."""
        cid_default_name = getattr(parsed, "cid_name", None) or ""
        cid_default_num = getattr(parsed, "cid_num", None) or "0000000000"
        if originator is not None:
            # The new leg gets a copy of the originator's caller profile, as
            # its events show it (an answered outbound leg is flipped: its
            # callee ID is its caller ID).
            if originator.flipped:
                cid_default_name, cid_default_num = originator.callee_name, originator.callee_num
            else:
                cid_default_name, cid_default_num = originator.cid_name, originator.cid_num
        # create the channels
        ringing: list[_Leg] = []
        first_cause: str | None = None
        for index, leg in enumerate(legs):
            v = leg.variables
            uuid = v.get("origination_uuid")  # the {} block's, or this leg's own [] one
            if leg.kind == "error":
                leg.fail_cause = hangup_cause(leg.endpoint.split("/", 1)[1] if "/" in leg.endpoint else "",
                                              "DESTINATION_OUT_OF_ORDER")
            elif leg.kind not in ("loopback", "sofia", "user"):
                leg.fail_cause = _ENDPOINT_CAUSE.get(leg.kind, "CHAN_NOT_IMPLEMENTED")
            elif uuid and (uuid in self.channels or uuid in (spent or ())) and leg.kind != "loopback":
                # sofia asks the core for a session with that uuid
                # (switch_core_session_request_uuid): "Duplicate UUID!", no
                # session. loopback takes one and the uuid change fails
                # quietly (_new_channel).
                log.info("Duplicate UUID! %s: %s fails", uuid, leg.endpoint)
                leg.fail_cause = "DESTINATION_OUT_OF_ORDER"
            elif not self._take_session():
                leg.fail_cause = "DESTINATION_OUT_OF_ORDER"
            if leg.fail_cause:
                first_cause = first_cause or leg.fail_cause
                continue
            cid_name = v.get("origination_caller_id_name", cid_default_name)
            cid_num = v.get("origination_caller_id_number", cid_default_num)
            if leg.kind == "loopback":
                name = "loopback/%s-a" % leg.dest
            else:
                name = leg.endpoint.split("?", 1)[0]
            extra_a: dict[str, str] = {}
            if originator is not None:
                extra_a = {"originator": originator.uuid, "signal_bond": originator.uuid,
                           "originating_leg_uuid": originator.uuid}
            a = self._new_channel(uuid, name, "outbound", leg, cid_name, cid_num)
            if spent is not None:
                spent.add(a.uuid)
            if originator is not None and leg.kind in ("sofia", "user") and switch_true(
                    originator.variables.get("sip_copy_custom_headers", "true")):
                # sofia_outgoing_channel: the originating channel's sip_h_*
                # go on the new leg's INVITE too (its own win).
                for key, value in list(originator.variables.items()):
                    if key.startswith("sip_h_") and key not in a.variables:
                        a.variables[key] = value
            a.variables.update(extra_a)
            a.variables["originate_early_media"] = "false"
            a.variables["originate_endpoint"] = leg.kind
            if originator is not None:
                a.call_uuid = originator.uuid
                a.variables["call_uuid"] = originator.uuid
            # switch_ivr_originate, as soon as the leg's channel exists.
            self.api_on(a, "api_on_originate")
            leg.a = a
            if leg.kind == "loopback":
                if self._take_session():
                    b = self._new_channel(None, "loopback/%s-b" % leg.dest, "inbound", leg, cid_name, cid_num)
                    b.peer, a.peer = a, b
                    a.variables["other_loopback_leg_uuid"] = b.uuid
                    a.variables["loopback_leg"] = "A"
                    b.variables.pop("is_outbound", None)
                    b.variables["other_loopback_leg_uuid"] = a.uuid
                    b.variables["loopback_leg"] = "B"
                    leg.b = b
                else:
                    leg.stuck = True
            self.fire_channel("CHANNEL_CREATE", a)
            if leg.b is not None:
                self.fire_channel("CHANNEL_CREATE", leg.b)
            ringing.append(leg)
        if not ringing:
            return None, first_cause or "DESTINATION_OUT_OF_ORDER", False

        ignore_early = (legs[0].variables.get("ignore_early_media", "false").lower() == "true")
        wake = gevent.event.Event()

        def on_hangup(_ch: Channel) -> None:
            wake.set()

        actions: list[tuple[float, int, _Leg, str]] = []
        start = time.monotonic()
        seq = 0
        for leg in ringing:
            assert leg.a is not None
            leg.a.on_hangup.append(on_hangup)
            if leg.stuck:
                continue
            out = leg.outcome
            ring = self.ring_time if out.after is None else out.after
            seq += 1
            if out.kind in ("busy", "fail"):
                actions.append((start + (out.after or 0.0), seq, leg, "fail"))
            elif out.kind == "no_answer":
                actions.append((start, seq, leg, "progress"))
                if out.after is not None:
                    actions.append((start + out.after, seq, leg, "fail"))
            elif out.kind == "early_media":
                actions.append((start, seq, leg, "media"))
                actions.append((start + ring, seq, leg, "answer"))
            elif out.kind == "slow_answer":
                actions.append((start, seq, leg, "progress"))
                actions.append((start + ring, seq, leg, "answer"))
            else:
                if leg.kind != "loopback" and ring > 0:
                    actions.append((start, seq, leg, "progress"))
                actions.append((start + ring, seq, leg, "answer"))
            leg_timeout = _timeout(leg.variables.get("leg_timeout"), 0.0)
            if leg_timeout > 0 and self.scaled(leg_timeout) < timeout:
                actions.append((start + self.scaled(leg_timeout), seq, leg, "leg_timeout"))
        actions.sort(key=lambda x: (x[0], x[1]))
        deadline = start + timeout
        timed_out = False
        winner: _Leg | None = None
        pending = list(ringing)
        causes: list[str] = []
        if originator is not None:
            originator.on_hangup.append(on_hangup)
            originator.dialing = [leg.a for leg in ringing if leg.a is not None]
        while pending and winner is None:
            if originator is not None and not originator.alive:
                for leg in pending:
                    if leg.a is not None and leg.a.alive:
                        self.hangup(leg.a, "ORIGINATOR_CANCEL")
                causes.append("ORIGINATOR_CANCEL")
                pending = []
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
            if actions and actions[0][0] <= now:
                _t, _s, leg, what = actions.pop(0)
                if leg not in pending:
                    continue
                if what == "fail":
                    self._fail_leg(leg, leg.outcome.cause or "NORMAL_CLEARING")
                elif what == "leg_timeout":
                    if leg.a is not None and not leg.a.answered:
                        self._fail_leg(leg, "ALLOTTED_TIMEOUT")
                elif what == "progress":
                    self._progress(leg, media=False)
                elif what == "media":
                    self._progress(leg, media=True)
                    if not ignore_early:
                        winner = leg
                elif what == "answer":
                    self._answer(leg)
                    winner = leg
                continue
            if now >= deadline:
                for leg in pending:
                    self._fail_leg(leg, "NO_ANSWER")
                    causes.append("NO_ANSWER")
                pending = []
                timed_out = True
                break
            until = min(deadline, actions[0][0]) if actions else deadline
            wake.clear()
            wake.wait(max(0.0, until - now))
        for ch in [leg.a for leg in ringing] + [originator]:
            if ch is not None and on_hangup in ch.on_hangup:
                ch.on_hangup.remove(on_hangup)
        if originator is not None:
            originator.dialing = []
        if winner is None:
            if timed_out:
                return None, "NO_ANSWER", True
            return None, (causes[0] if causes else first_cause or "NO_ANSWER"), False
        for leg in ringing:
            if leg is winner or leg.a is None or not leg.a.alive:
                continue
            self.hangup(leg.a, "LOSE_RACE")
        # the winner's remaining timeline (early media, then answer) goes on
        rest = [(t, what) for t, _s, leg, what in actions if leg is winner and what == "answer"]
        if rest and winner.a is not None:
            self.spawn(self._later_answer, winner, rest[0][0])
        return winner, "", False

    def _later_answer(self, leg: _Leg, at: float) -> None:
        assert leg.a is not None
        delay = at - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        if leg.a.alive and not leg.a.answered:
            self._answer(leg)

    # -- the A leg's application -------------------------------------------------

    def _flip(self, ch: Channel) -> None:
        ch.variables["endpoint_disposition"] = "ANSWER"
        ch.variables["pre_transfer_caller_id_name"] = ch.cid_name
        ch.variables["pre_transfer_caller_id_number"] = ch.cid_num
        ch.variables["channel_cid_flipped"] = "yes"
        ch.flipped = True
        ch.hit_dialplan = True

    def expand(self, ch: Channel, text: str) -> str:
        """``switch_channel_expand_variables`` on ``ch`` (names without case).
        An ``${api ...}`` (the engine never sends one) is left as it was."""
        from .dialparse import DialStringError, expand_variables

        variables = ch.variables

        def lookup(name: str) -> str | None:
            value = variables.get(name)
            if value is None:
                lowered = name.lower()
                value = next((v for k, v in variables.items() if k.lower() == lowered), None)
            return value

        try:
            return expand_variables(text, lookup)
        except DialStringError as exc:
            log.warning("%s: expansion of %r not modelled: %s", ch.uuid, text, exc)
            return text

    def _run_app(self, winner: _Leg, parsed: Any) -> None:
        a = winner.a
        assert a is not None
        if winner.b is not None:
            winner.b.variables["endpoint_disposition"] = "ANSWER"
        self._flip(a)
        app = (getattr(parsed, "app", None) or "").lower()
        if not app and _is_connect(parsed):
            self._connect(a)
            return
        if getattr(parsed, "app_refused", False):
            log.warning("App not added, Invalid character sequence in data string [%s]", parsed.app_args)
            self.hangup(a, "NORMAL_CLEARING")
            return
        app_args = self.expand(a, getattr(parsed, "app_args", None) or "")
        if not app:
            app = "park"   # `<exten> [XML] [context]`: simulated as answer + park
        a.app = app
        if not a.alive:
            return
        self.begin(a, app, app_args)
        if app == "bridge":
            self._bridge(a, app_args)
        elif app == "hangup":
            self.hangup(a, hangup_cause(app_args.strip() or None))
        elif app in _LASTING_APPS:
            if self.talk_time is not None and a.talk_timer is None and winner.outcome.talk is None:
                a.talk_timer = self.later(self.talk_time, self._talk_over, a)
            if app == "park":
                self._park_timer(a)
        elif app in _FINITE_APPS:
            self.hangup(a, "NORMAL_CLEARING")
        else:
            self.hangup(a, "DESTINATION_OUT_OF_ORDER")

    def _park_timer(self, ch: Channel) -> None:
        """``park_timeout=<seconds>[:<cause>]``: a channel still parked then is
        hung up (NORMAL_CLEARING unless a cause is given)."""
        seconds, _, cause = ch.variables.get("park_timeout", "").partition(":")
        if not seconds.strip().isdigit() or int(seconds) <= 0:
            return
        def expire() -> None:
            if ch.alive and ch.app == "park":
                self.hangup(ch, hangup_cause(cause.strip() or None))

        self.later(self.scaled(int(seconds)), expire)

    def transfer(self, ch: Channel, exten: str, dialplan: str, context: str) -> None:
        """``switch_ivr_session_transfer``: the channel leaves what it runs
        (a park) and runs ``exten`` in ``context``. The ``eslengine_connect``
        extension is run as the shipped dialplan would; any other target is
        simulated as a park."""
        if exten == CONNECT_EXTEN and dialplan.upper() == "XML" and context == CONNECT_CONTEXT:
            ch.app = "transfer"
            self.spawn(self._connect, ch)
            return
        ch.context, ch.dest = context, exten
        ch.app = "park"
        ch.variables["current_application"] = "park"

    def _connect(self, a: Channel) -> None:
        """Extension ``eslengine_connect`` (context ``eslengine``): answer;
        playback ``${eslengine_announce}`` if set; speak
        ``${eslengine_tts_engine}|${eslengine_tts_voice}|${eslengine_say}`` if
        set; bridge ``${eslengine_bridge}``. With nothing to bridge the
        extension ends and the channel hangs up NORMAL_CLEARING."""
        a.context = CONNECT_CONTEXT
        a.dest = CONNECT_EXTEN
        self.execute(a, "answer", None)
        # Each condition's field and action's data is expanded as the
        # dialplan reads it (field="${...}" expression="^.+$").
        announce = self.expand(a, "${eslengine_announce}")
        if announce and a.alive:
            self.execute(a, "playback", announce, "FILE PLAYED", self.playback_time)
        if self.expand(a, "${eslengine_say}") and a.alive:
            data = self.expand(a, "${eslengine_tts_engine}|${eslengine_tts_voice}|${eslengine_say}")
            self.execute(a, "speak", data, "_none_", self.playback_time)
        bridge = self.expand(a, "${eslengine_bridge}")
        if not a.alive:
            return
        if not bridge:
            self.hangup(a, "NORMAL_CLEARING")
            return
        a.app = "bridge"
        self.begin(a, "bridge", bridge)
        self._bridge(a, bridge)

    def _bridge(self, a: Channel, data: str) -> None:
        """``bridge`` with already expanded ``data``."""
        from .dialparse import DialStringError, parse_enterprise

        try:
            parts = parse_enterprise(data)
        except DialStringError as exc:
            log.info("bridge %s: bad dial string %r: %s", a.uuid, data, exc)
            self._bridge_failed(a, exc.cause or "DESTINATION_OUT_OF_ORDER")
            return
        timelimit = _timeout(a.variables.get("call_timeout"))
        winner, cause = self._dial_parts(parts, None, a, timelimit)
        if not a.alive:
            if winner is not None and winner.a is not None and winner.a.alive:
                self.hangup(winner.a, "ORIGINATOR_CANCEL")
            return
        if winner is not None and winner.a is not None:
            self._link(a, winner.a)
            return
        self._bridge_failed(a, cause)

    def _bridge_failed(self, a: Channel, cause: str) -> None:
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
            goes_on = cause in ("NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL")
            self.hangup(a, "NORMAL_CLEARING" if goes_on else cause)

    def _link(self, a: Channel, b: Channel) -> None:
        now = _now_us()
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
        self.fire_channel("CHANNEL_BRIDGE", a, other=b, other_type="originatee",
                          extra=(("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)))

    # -- scheduled things ------------------------------------------------------

    def sched_hangup(self, ch: Channel, delay: float, cause: str) -> None:
        """Hang ``ch`` up with ``cause`` in ``delay`` FreeSWITCH seconds."""
        def fire() -> None:
            if ch.alive:
                self.hangup(ch, cause)
        self.later(max(0.0, self.scaled(delay)), fire)

    def broadcast(self, ch: Channel, path: str, delay: float = 0.0, legs: str = "aleg") -> None:
        """``switch_ivr_broadcast`` in ``delay`` FreeSWITCH seconds: ``path``
        is a file (played with ``playback``) or ``app::args``; ``legs`` is
        ``aleg`` (``ch``), ``bleg`` (its bridged channel) or ``both``. Each
        target runs the application: CHANNEL_EXECUTE, ``playback_time``, then
        CHANNEL_EXECUTE_COMPLETE (``Application-Response: FILE PLAYED`` for
        playback)."""
        app, sep, data = path.partition("::")
        if not sep:
            app, data = "playback", path
        response = "FILE PLAYED" if app == "playback" else "_none_"
        duration = self.playback_time if app == "playback" else 0.0

        def play() -> None:
            targets = []
            if legs != "bleg":
                targets.append(ch)
            if legs in ("bleg", "both") and ch.bridge is not None:
                targets.append(ch.bridge)
            targets = [t for t in targets if t.alive]
            if duration <= 0:
                for target in targets:
                    self.execute(target, app, data, response)
                return
            for target in targets:
                self.spawn(self.execute, target, app, data, response, duration)
        self.later(max(0.0, self.scaled(delay)), play)

    def begin(self, ch: Channel, app: str, data: str | None) -> None:
        """An application that lasts (park, bridge, ...) starts: its
        CHANNEL_EXECUTE."""
        ch.variables["current_application"] = app
        head: Headers = [("Application", app)]
        if data:
            ch.variables["current_application_data"] = data
            head.append(("Application-Data", data))
        self.fire_channel("CHANNEL_EXECUTE", ch, tail=head + [("Application-UUID", str(uuidlib.uuid4()))])

    def execute(self, ch: Channel, app: str, data: str | None, response: str = "_none_",
                duration: float = 0.0) -> None:
        """``switch_core_session_exec`` as the events show it: CHANNEL_EXECUTE,
        ``duration`` FreeSWITCH seconds, CHANNEL_EXECUTE_COMPLETE (skipped
        when the channel hung up meanwhile)."""
        if not ch.alive:
            return
        app_uuid = str(uuidlib.uuid4())
        ch.variables["current_application"] = app
        if data is not None:
            ch.variables["current_application_data"] = data
        head: Headers = [("Application", app)]
        if data is not None:
            head.append(("Application-Data", data))
        self.fire_channel("CHANNEL_EXECUTE", ch, tail=head + [("Application-UUID", app_uuid)])
        if duration > 0:
            gevent.sleep(self.scaled(duration))
        if ch.alive:
            self.fire_channel("CHANNEL_EXECUTE_COMPLETE", ch, tail=head + [
                ("Application-Response", response), ("Application-UUID", app_uuid)])

    # -- api_on_*, api_hangup_hook ----------------------------------------------

    def api_on(self, ch: Channel, prefix: str) -> int:
        """``switch_channel_api_on``: every variable whose name starts with
        ``prefix`` (case-insensitive) runs its value as an API command
        (``do_api_on``: the command is cut at the first blank, its argument
        expanded). Returns how many ran."""
        low = prefix.lower()
        hooks = [value for name, value in ch.variables.items() if name.lower().startswith(low)]
        for value in hooks:
            cmd, _, arg = value.partition(" ")
            self._api(cmd, self.expand(ch, arg) if arg else "")
        return len(hooks)

    def api_hook(self, ch: Channel, value: str) -> None:
        """``api_hook`` (switch_core_state_machine.c) for ``api_hangup_hook``:
        the command ends at ``::`` if the first ``:`` starts one, else at the
        first blank; the argument is expanded."""
        colon = value.find(":")
        if colon != -1 and value[colon + 1:colon + 2] == ":":
            cmd, arg = value[:colon], value[colon + 2:]
        else:
            cmd, _, arg = value.partition(" ")
        self._api(cmd, self.expand(ch, arg) if arg else "")

    def _api(self, cmd: str, arg: str) -> None:
        if self.api_cb is None:
            log.debug("api %s %s: no API in this switchboard", cmd, arg)
            return
        reply = self.api_cb(cmd, arg.strip())
        log.debug("hook api %s(%s): %s", cmd, arg, reply.strip())

    # -- execute_on_* ------------------------------------------------------------

    def execute_on(self, ch: Channel, prefix: str) -> int:
        """``switch_channel_execute_on``: every variable whose name starts
        with ``prefix`` (case-insensitive), in the channel's order, runs its
        value as ``app args``. Returns how many ran."""
        low = prefix.lower()
        hooks = [value for name, value in ch.variables.items() if name.lower().startswith(low)]
        for value in hooks:
            app, arg, _queued = execute_on_split(value)
            self._hook_app(ch, app, arg)
        return len(hooks)

    def _hook_app(self, ch: Channel, app: str, arg: str | None) -> None:
        name = app.strip().lower()
        if arg is not None:
            arg = self.expand(ch, arg)
        argv = (arg or "").split()
        if name == "sched_hangup":
            self.execute(ch, app, arg)
            if not argv:
                return
            cause = hangup_cause(argv[1], "NONE") if len(argv) > 1 else "ALLOTTED_TIMEOUT"
            if cause == "NONE":
                cause = "NORMAL_CLEARING"
            delay = _sched_time(argv[0])
            if argv[0].startswith("+") and delay == 0:
                self.hangup(ch, cause)
            else:
                self.sched_hangup(ch, delay, cause)
        elif name == "sched_broadcast":
            self.execute(ch, app, arg)
            if len(argv) < 2:
                return
            legs = argv[2] if len(argv) > 2 else "aleg"
            self.broadcast(ch, argv[1], _sched_time(argv[0]), legs)
        elif name == "record_session":
            self.execute(ch, app, arg)
            if not argv:
                return
            path = argv[0]
            ch.recordings.append(path)
            self.fire_channel("RECORD_START", ch, extra=(("Record-File-Path", path),))
        elif name in ("set", "export"):
            self.execute(ch, app, arg)
            key, sep, value = (arg or "").partition("=")
            if sep and key:
                if value:
                    ch.variables[key] = value
                else:
                    ch.variables.pop(key, None)
        elif name in ("playback", "speak"):
            self.spawn(self.execute, ch, app, arg, "FILE PLAYED" if name == "playback" else "_none_",
                       self.playback_time)
        else:
            self.execute(ch, app, arg)


CONNECT_EXTEN = "eslengine_connect"
CONNECT_CONTEXT = "eslengine"


def _is_connect(parsed: Any) -> bool:
    exten = getattr(parsed, "exten", None)
    dialplan = getattr(parsed, "dialplan", None) or "XML"
    context = getattr(parsed, "context", None) or "default"
    return exten == CONNECT_EXTEN and dialplan.upper() == "XML" and context == CONNECT_CONTEXT


def execute_on_split(value: str) -> tuple[str, str | None, bool]:
    """``switch_channel_execute_on_value``'s split of one ``execute_on_*``
    value: (application, argument or None, queued). The first space or
    single ``:`` ends the name; a ``::`` first queues the value instead
    (``switch_core_session_execute_application_async``, which splits it at
    the ``::``)."""
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == ":" and i + 1 < n and value[i + 1] == ":":
            app, _, arg = value.partition("::")
            return app, arg, True
        if c == " " or c == ":":
            return value[:i], value[i + 1:], False
        i += 1
    return value, None, False


def _after_bridge_cause(survivor: Channel, gone: Channel, cause: str) -> str:
    """The cause ``survivor`` hangs up with when its bridged ``gone`` did.
    The bridge originator (the party that ran ``bridge``) takes the peer's
    cause only with ``hangup_after_bridge`` true or ``explicit``; otherwise
    its application simply ends and the channel hangs up NORMAL_CLEARING
    (switch_ivr_multi_threaded_bridge, then the empty extension)."""
    if survivor.bridge_role != "originator" or gone.bridge_role != "originatee":
        return cause
    hup = survivor.variables.get("hangup_after_bridge", "")
    if hup.lower() == "explicit" or (gone.answered and switch_true(hup)):
        return cause
    return "NORMAL_CLEARING"


def _sched_time(arg: str) -> float:
    """Seconds until a ``sched_*`` application's time: ``+N`` relative,
    ``@N`` or ``N`` an epoch time; ``atol`` of the digits (whole seconds)."""
    if arg.startswith("+"):
        return float(atoi(arg[1:]))
    epoch = atoi(arg[1:] if arg.startswith("@") else arg)
    return max(0.0, epoch - time.time())


def _int_in(value: str | None, low: int, high: int, default: int) -> int:
    """A ``switch_true`` numeric channel variable within [low, high], else ``default``."""
    if value is None or not switch_true(value):
        return default
    number = atoi(value)
    return number if low <= number <= high else default


_TIME_ARG = re.compile(r"^\+?\d+$")


def schedule_delay(arg: str) -> float | None:
    """Seconds until a ``sched_*`` time argument: ``+N`` is relative, a bare
    number an absolute epoch time. None when it is neither."""
    if not _TIME_ARG.match(arg):
        return None
    if arg.startswith("+"):
        return float(arg[1:])
    return max(0.0, float(arg) - time.time())

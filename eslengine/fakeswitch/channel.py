"""A simulated channel: its variables, its caller profile and the headers of
the events it fires.

Header sets and their order follow the recorded transcripts (README "Order
for a successful originate", "Order in 06a"); ``Event-Calling-*`` name the
FreeSWITCH function that fires each event (switch_channel.c,
switch_core_state_machine.c, switch_ivr_bridge.c, switch_core_session.c).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import gevent

from .dialparse import DialStringError, expand_variables, switch_true

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]

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

def hangup_cause(name: str | None, default: str = "NORMAL_CLEARING") -> str:
    """A cause name FreeSWITCH knows (case-insensitive), else ``default``."""
    if name:
        upper = name.upper()
        if upper in Q850:
            return upper
    return default


def now_us() -> int:
    return int(time.time() * 1_000_000)



class Channel:
    """One simulated FreeSWITCH channel (one ``Unique-ID``)."""

    __slots__ = (
        "uuid", "name", "direction", "dest", "context", "endpoint", "variables",
        "cid_name", "cid_num", "callee_name", "callee_num", "flipped", "session_id",
        "created_us", "answered_us", "progress_us", "progress_media_us", "hangup_us", "bridged_us",
        "answered", "hangup_cause", "peer", "bridge", "bridge_role", "call_uuid", "app",
        "on_hangup", "talk_timer", "hit_dialplan", "screen", "hide_name", "hide_number", "recordings",
        "dialing", "parks",
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
        self.created_us = now_us()
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
        # Times it started park (a park_timeout is for that one park only).
        self.parks = 0
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

    def expand(self, text: str) -> str:
        """``switch_channel_expand_variables`` on this channel (names without
        case). An ``${api ...}`` (the engine never sends one) is left as it was."""
        variables = self.variables

        def lookup(name: str) -> str | None:
            value = variables.get(name)
            if value is None:
                lowered = name.lower()
                value = next((v for k, v in variables.items() if k.lower() == lowered), None)
            return value

        try:
            return expand_variables(text, lookup)
        except DialStringError as exc:
            log.warning("%s: expansion of %r not modelled: %s", self.uuid, text, exc)
            return text

    def set_hangup_variables(self) -> None:
        """``hangup_cause``, ``hangup_cause_q850`` and the CDR timestamps
        (``*_epoch``, ``*_uepoch``, ``duration``, ``billsec``, ``billmsec``),
        as the channel has them by CHANNEL_HANGUP_COMPLETE."""
        v = self.variables
        v["hangup_cause"] = self.hangup_cause or "NORMAL_CLEARING"
        v["hangup_cause_q850"] = str(_Q850_OUT.get(v["hangup_cause"], 0))
        start = self.created_us
        v["start_epoch"] = str(start // 1_000_000)
        v["start_uepoch"] = str(start)
        v["answer_epoch"] = str(self.answered_us // 1_000_000)
        v["answer_uepoch"] = str(self.answered_us)
        v["bridge_epoch"] = str(self.bridged_us // 1_000_000)
        v["bridge_uepoch"] = str(self.bridged_us)
        v["end_epoch"] = str(self.hangup_us // 1_000_000)
        v["end_uepoch"] = str(self.hangup_us)
        bill = (self.hangup_us - self.answered_us) if self.answered_us else 0
        v["duration"] = str((self.hangup_us - start) // 1_000_000)
        v["billsec"] = str(bill // 1_000_000)
        v["billmsec"] = str(bill // 1000)

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



def after_bridge_cause(survivor: Channel, gone: Channel, cause: str) -> str:
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


class EventHeaders:
    """The headers every event starts with (``Event-Name``, ``Core-UUID``,
    the dates, ``Event-Calling-*``, ``Event-Sequence``), and a channel
    event's whole header list. One per switch: it counts ``Event-Sequence``."""

    def __init__(self, hostname: str, core_uuid: str) -> None:
        self.hostname = hostname
        self.core_uuid = core_uuid
        self._seq = 0
        self._date_cache: tuple[int, str, str] = (0, "", "")

    def _dates(self) -> tuple[str, str]:
        sec = int(time.time())
        if self._date_cache[0] != sec:
            self._date_cache = (
                sec,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec)),
                time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(sec)),
            )
        return self._date_cache[1], self._date_cache[2]

    def base(self, name: str) -> Headers:
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
            ("Event-Date-Timestamp", str(now_us())),
            ("Event-Calling-File", calling[0]),
            ("Event-Calling-Function", calling[1]),
            ("Event-Calling-Line-Number", calling[2]),
            ("Event-Sequence", str(self._seq)),
        ]

    def channel(self, name: str, ch: Channel, *, extra: Iterable[tuple[str, str]] = (),
                other: Channel | None = None, other_type: str = "",
                tail: Iterable[tuple[str, str]] = ()) -> Headers:
        """``extra`` headers go before the channel data, ``tail`` after it
        (where FreeSWITCH adds ``Application*`` to CHANNEL_EXECUTE)."""
        h = self.base(name)
        h.extend(extra)
        if name == "CHANNEL_HANGUP_COMPLETE" and ch.hangup_cause:
            h.append(("Hangup-Cause", ch.hangup_cause))
        state = _STATES.get(name, (("CS_EXECUTE", "ACTIVE", "4"),) * 2)[ch.direction == "inbound"]
        h.extend(ch.channel_headers(state[0], state[1], state[2], other, other_type))
        h.extend(tail)
        return h

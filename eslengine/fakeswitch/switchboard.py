"""The switch's live channels and how they end.

:class:`Switchboard` owns the channel registry, the session limits
(:mod:`.limits`), the greenlets every simulated delay runs in, and hangup:
a channel's loopback peer and bridged partner follow it, in FreeSWITCH's
event order. Every event it fires goes to one callback,
``fire(name, headers, body, channel)``, which the server fans out to the
connected event-socket listeners. It does no socket I/O. Originating
(:mod:`.originate`), applications (:mod:`.apps`), bridging (:mod:`.bridge`)
and the dialplan (:mod:`.dialplan`) work on it.

Choices where the recordings are silent:

* legs still ringing when the originating channel (``bridge``) hangs up end
  ``ORIGINATOR_CANCEL``;
* RECORD_STOP's headers and its place between CHANNEL_HANGUP and
  CHANNEL_HANGUP_COMPLETE are assumed, as is the Event-Calling-Line-Number
  of RECORD_* (0);
* the first party's cause when it hangs up first (the peer takes the same
  cause).
"""

from __future__ import annotations

import logging
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.pool

from .channel import Channel, EventHeaders, Headers, after_bridge_cause, now_us
from .limits import OVER_SESSION_LIMIT, Limits
from .scenario import Scenario

log = logging.getLogger(__name__)

FireFn = Callable[[str, Headers, str, "Channel | None"], None]

_CORE_UUID = str(uuidlib.uuid4())

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



class Switchboard:
    """Live channels, session limits, hangup and the switch's timers."""

    def __init__(self, fire: FireFn, *, hostname: str, sps: int, max_sessions: int,
                 ring_time: float, talk_time: float | None, scenario: Scenario,
                 time_scale: float = 1.0, playback_time: float = 0.0, originates_kept: int = 10_000) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.fire_cb = fire
        self.time_scale = time_scale
        self.playback_time = playback_time
        self.hostname = hostname
        self.limits = Limits(sps, max_sessions)
        self.ring_time = ring_time
        self.talk_time = talk_time
        self.scenario = scenario
        self.channels: dict[str, Channel] = {}
        self.originates: deque[OriginateRecord] = deque(maxlen=originates_kept)
        self.stats = SwitchStats()
        self.core_uuid = _CORE_UUID
        self.headers = EventHeaders(hostname, self.core_uuid)
        self.started = time.time()
        self._session_ids = 0
        # Originates (and bridges) still deciding their outcome.
        self.in_flight = 0
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

    def fire_channel(self, name: str, ch: Channel, *, extra: Iterable[tuple[str, str]] = (),
                     other: Channel | None = None, other_type: str = "",
                     tail: Iterable[tuple[str, str]] = ()) -> None:
        """Fire a channel event (see :meth:`EventHeaders.channel`)."""
        self.fire_cb(name, self.headers.channel(name, ch, extra=extra, other=other, other_type=other_type,
                                                tail=tail), "", ch)

    # -- sessions --------------------------------------------------------------

    @property
    def sps(self) -> int:
        """Sessions per second (``fsctl sps``)."""
        return self.limits.sps

    @sps.setter
    def sps(self, value: int) -> None:
        self.limits.sps = value

    @property
    def max_sessions(self) -> int:
        """``fsctl max_sessions``."""
        return self.limits.max_sessions

    @max_sessions.setter
    def max_sessions(self, value: int) -> None:
        self.limits.max_sessions = value

    def take_session(self) -> bool:
        """Account one new session; False when FreeSWITCH would refuse it."""
        now = time.time()
        sec = int(now)
        attempts = self.limits.attempt(now)
        self.stats.peak_sps = max(self.stats.peak_sps, attempts)
        self.stats.sessions_per_second[sec] = self.stats.sessions_per_second.get(sec, 0) + 1
        if self.shutting_down:
            return False
        refusal = self.limits.refusal(len(self.channels))
        if refusal is not None:
            log.debug("%s %d", refusal, self.limits.max_sessions if refusal == OVER_SESSION_LIMIT
                      else self.limits.sps)
            self.stats.refused_over_limit += 1
            return False
        return True

    def new_channel(self, uuid: str | None, name: str, direction: str, *, dest: str, context: str,
                    endpoint: str, variables: dict[str, str], cid_name: str, cid_num: str) -> Channel:
        """Register a new channel; ``uuid`` when free, else a random one
        ("Duplicate UUID!"). ``variables`` (the dial string's) go on top of
        the ones every channel starts with."""
        if not uuid or uuid in self.channels:
            if uuid:
                log.info("Duplicate UUID! %s, using a random one", uuid)
            uuid = str(uuidlib.uuid4())
        self._session_ids += 1
        own: dict[str, str] = {"direction": direction}
        if direction == "outbound":
            own["is_outbound"] = "true"
        own.update(
            session_id=str(self._session_ids), read_codec="L16", read_rate="8000",
            write_codec="L16", write_rate="8000", channel_name=name, uuid=uuid, call_uuid=uuid,
        )
        own.update(variables)
        ch = Channel(uuid, name, direction, dest, context, endpoint, own, cid_name, cid_num, self._session_ids)
        self.channels[uuid] = ch
        self.stats.sessions_since_startup += 1
        self.stats.peak_sessions = max(self.stats.peak_sessions, len(self.channels))
        return ch

    # -- hangup ----------------------------------------------------------------

    def hangup(self, ch: Channel, cause: str) -> None:
        """Hang ``ch`` up with ``cause``; its loopback peer and bridged
        channels follow, in FreeSWITCH's event order."""
        if not ch.alive:
            return
        legs = [ch]
        if ch.peer is not None and ch.peer.alive:
            legs.append(ch.peer)
        now = now_us()
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
            self.hangup(other, after_bridge_cause(other, leg, cause))
        for leg in bridged:
            self._complete(leg)

    def _complete(self, ch: Channel) -> None:
        ch.set_hangup_variables()
        for path in ch.recordings:
            self.fire_channel("RECORD_STOP", ch, extra=(("Record-File-Path", path),))
        ch.recordings = []
        # switch_core_session_hangup_state: the hangup cause and the
        # timestamps are set, the channel still exists.
        hook = ch.variables.get("api_hangup_hook")
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

    def talk_over(self, ch: Channel) -> None:
        """The talk time is over: ``ch`` hangs up NORMAL_CLEARING."""
        ch.talk_timer = None
        if ch.alive:
            self.hangup(ch, "NORMAL_CLEARING")

    # -- originate records -------------------------------------------------------

    def record(self, args: str, job_uuid: str | None) -> OriginateRecord:
        rec = OriginateRecord(time.time(), job_uuid, args)
        self.originates.append(rec)
        sec = int(rec.time)
        per = self.stats.originates_per_second
        per[sec] = per.get(sec, 0) + 1
        return rec

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
            self._api(cmd, ch.expand(arg) if arg else "")
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
        self._api(cmd, ch.expand(arg) if arg else "")

    def _api(self, cmd: str, arg: str) -> None:
        if self.api_cb is None:
            log.debug("api %s %s: no API in this switchboard", cmd, arg)
            return
        reply = self.api_cb(cmd, arg.strip())
        log.debug("hook api %s(%s): %s", cmd, arg, reply.strip())

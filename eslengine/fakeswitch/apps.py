"""Applications a channel runs (mod_dptools as the events show them):
CHANNEL_EXECUTE, the time the application takes, CHANNEL_EXECUTE_COMPLETE;
``park`` (with ``park_timeout``), playback and speak, ``sched_hangup``,
``sched_broadcast`` and ``uuid_broadcast``, ``record_session``, ``set`` and
``export``, and the ``execute_on_*`` hooks that run them. ``bridge`` is in
:mod:`.bridge`, which dials.

As read in FreeSWITCH's C source (switch_channel.c, mod_dptools.c,
switch_ivr_async.c):

* ``switch_channel_execute_on``: every variable whose name starts with the
  prefix (case-insensitive) runs; the value splits at the first space or
  single ``:``; ``::`` first queues it. ``execute_on_answer`` runs right after
  CHANNEL_ANSWER. The application data is expanded (``${var}``) before the
  application runs.
* ``sched_hangup``/``sched_broadcast`` take whole seconds (``atol``; ``+N``
  relative), so fractions are not accepted: ``time_scale`` divides every such
  delay instead. ``sched_broadcast`` legs: ``aleg`` (default), ``bleg``,
  ``both`` (the channel and its bridge partner).
* ``record_session``: RECORD_START carries ``Record-File-Path`` before the
  channel data.

Assumed, not read: hooks run on the outbound channel only (a loopback ``-b``
leg also carries the variables and would run them too in FreeSWITCH).
"""

from __future__ import annotations

import re
import time
import uuid as uuidlib

import gevent

from .channel import Channel, Headers, hangup_cause
from .dialparse import atoi
from .switchboard import Switchboard

# Apps that run to completion and leave the call with nothing more to do.
FINITE_APPS = frozenset(
    {"log", "set", "export", "unset", "info", "answer", "pre_answer", "ring_ready", "sleep",
     "playback", "say", "event", "multiset", "set_global", "respond", "displace_session"}
)
# Apps that keep the channel up until it is hung up.
LASTING_APPS = frozenset({"park", "echo", "conference", "delay_echo", "endless_playback", "socket"})


class Applications:
    """Runs applications on the switchboard's channels."""

    def __init__(self, board: Switchboard) -> None:
        self.board = board

    # -- park ------------------------------------------------------------------

    def park_timer(self, ch: Channel) -> None:
        """``park_timeout=<seconds>[:<cause>]``: a channel still in this park
        then is hung up (NORMAL_CLEARING unless a cause is given); a later
        park has a timeout of its own."""
        # switch_ivr_park reads it once and unsets it.
        seconds, _, cause = (ch.variables.pop("park_timeout", None) or "").partition(":")
        ch.parks += 1
        if not seconds.strip().isdigit() or int(seconds) <= 0:
            return
        park = ch.parks

        def expire() -> None:
            if ch.alive and ch.app == "park" and ch.parks == park:
                self.board.hangup(ch, hangup_cause(cause.strip() or None))

        self.board.later(self.board.scaled(int(seconds)), expire)

    # -- scheduled things ------------------------------------------------------

    def sched_hangup(self, ch: Channel, delay: float, cause: str) -> None:
        """Hang ``ch`` up with ``cause`` in ``delay`` FreeSWITCH seconds."""
        def fire() -> None:
            if ch.alive:
                self.board.hangup(ch, cause)
        self.board.later(max(0.0, self.board.scaled(delay)), fire)

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
        duration = self.board.playback_time if app == "playback" else 0.0

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
                self.board.spawn(self.execute, target, app, data, response, duration)
        self.board.later(max(0.0, self.board.scaled(delay)), play)

    def begin(self, ch: Channel, app: str, data: str | None) -> None:
        """An application that lasts (park, bridge, ...) starts: its
        CHANNEL_EXECUTE."""
        ch.variables["current_application"] = app
        head: Headers = [("Application", app)]
        if data:
            ch.variables["current_application_data"] = data
            head.append(("Application-Data", data))
        self.board.fire_channel("CHANNEL_EXECUTE", ch, tail=head + [("Application-UUID", str(uuidlib.uuid4()))])

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
        self.board.fire_channel("CHANNEL_EXECUTE", ch, tail=head + [("Application-UUID", app_uuid)])
        if duration > 0:
            gevent.sleep(self.board.scaled(duration))
        if ch.alive:
            self.board.fire_channel("CHANNEL_EXECUTE_COMPLETE", ch, tail=head + [
                ("Application-Response", response), ("Application-UUID", app_uuid)])

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
            arg = ch.expand(arg)
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
                self.board.hangup(ch, cause)
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
            self.board.fire_channel("RECORD_START", ch, extra=(("Record-File-Path", path),))
        elif name in ("set", "export"):
            self.execute(ch, app, arg)
            key, sep, value = (arg or "").partition("=")
            if sep and key:
                if value:
                    ch.variables[key] = value
                else:
                    ch.variables.pop(key, None)
        elif name in ("playback", "speak"):
            self.board.spawn(self.execute, ch, app, arg, "FILE PLAYED" if name == "playback" else "_none_",
                             self.board.playback_time)
        else:
            self.execute(ch, app, arg)


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


def _sched_time(arg: str) -> float:
    """Seconds until a ``sched_*`` application's time: ``+N`` relative,
    ``@N`` or ``N`` an epoch time; ``atol`` of the digits (whole seconds)."""
    if arg.startswith("+"):
        return float(atoi(arg[1:]))
    epoch = atoi(arg[1:] if arg.startswith("@") else arg)
    return max(0.0, epoch - time.time())


_TIME_ARG = re.compile(r"^\+?\d+$")


def schedule_delay(arg: str) -> float | None:
    """Seconds until a ``sched_*`` time argument: ``+N`` is relative, a bare
    number an absolute epoch time. None when it is neither."""
    if not _TIME_ARG.match(arg):
        return None
    if arg.startswith("+"):
        return float(arg[1:])
    return max(0.0, float(arg) - time.time())

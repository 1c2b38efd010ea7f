"""The simulated switch assembled: :class:`FakeSwitch` listens on a real TCP
port (a gevent ``StreamServer``; one :class:`~.listener.Listener` per
connection), holds the switchboard and what works on it, fans every event
out to the listeners that want it, runs API commands (:mod:`.commands`) and
injects faults.

Deliberate simplifications: ``drop_connections`` closes client sockets
only, calls stay up; ``stall`` delays command replies, events keep flowing.

``record`` (``--record FILE``) appends every originate received, its
result and the hangup of every channel carrying ``eslengine_job_id`` to an
:class:`~.journal.OriginateJournal`. The command line's
simulator also takes faults from signals: SIGUSR1 drops every client
connection, SIGUSR2 stalls command replies for ``--stall-seconds``.

``db`` and ``hash`` are mod_db's and mod_hash's (:mod:`.store`); with
``db_file`` (``--db-file FILE``) mod_db's table outlives the process, as
FreeSWITCH's sqlite file does, so a simulator killed and started again on
the same file still has it. A channel's ``api_on_originate*`` variables run
as it is created and its ``api_hangup_hook`` as it hangs up (before
CHANNEL_HANGUP_COMPLETE, while it still exists), with their variables
expanded; FreeSWITCH keeps a ``${...}`` value in an originate's variables
only with ``origination_nested_vars=true`` (see dialparse).

``time_scale`` (``--time-scale``) divides every FreeSWITCH delay the switch
simulates (originate and leg timeouts, retry sleeps, ``sched_hangup``,
``sched_broadcast``, playback/speak time) so end-to-end tests can use the
whole-second values FreeSWITCH accepts; ``ring_time`` and ``talk_time`` are
simulator settings and are not scaled. ``playback_time``
(``--playback-time``) is how long a playback or speak takes.
``FakeSwitch.events`` keeps the last ``events_kept`` events fired, whether or
not a client subscribed, as (name, headers dict) with the body under
``_body``; ``FakeSwitch.originates`` the last ``originates_kept`` originates
received. ``stats.originate_log`` has (start time, job id) of every
originate and ``stats.result_log`` the time each bgapi originate finished, so a
long benchmark run keeps its figures without the switch growing by a whole
record per call.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
from gevent.server import StreamServer

from ..protocol import (
    DISCONNECT_NOTICE,
    EVENT_JSON,
    EVENT_PLAIN,
    GOODBYE,
    SHUTDOWN_NOTICE,
    encode_frame,
    format_json_event,
    format_plain_event,
)
from .apps import Applications
from .bridge import Bridge
from .channel import Channel, Headers
from .commands import API, background_job
from .dialplan import Dialplan
from .journal import ATTEMPT_VAR, JOB_VAR, OriginateJournal
from .listener import Listener, header_lookup
from .originate import Dialer
from .scenario import Scenario
from .store import DbStore, HashStore
from .switchboard import OriginateRecord, Switchboard, SwitchStats

log = logging.getLogger(__name__)

User = tuple[str, "frozenset[str] | None", "frozenset[str] | None"]

_SHUTDOWN_FRAME = encode_frame([("Content-Type", DISCONNECT_NOTICE)], SHUTDOWN_NOTICE)


class FakeSwitch:
    """A FreeSWITCH stand-in on a real TCP port (see the package docstring)."""

    def __init__(self, bind: tuple[str, int] = ("127.0.0.1", 0), password: str = "ClueCon", *,
                 sps: int = 30, max_sessions: int = 1000, ring_time: float = 0.2,
                 talk_time: float | None = None, scenario: Scenario | None = None,
                 users: dict[str, User] | None = None, hostname: str = "fakeswitch",
                 auth_timeout: float = 25.0, time_scale: float = 1.0, playback_time: float = 0.0,
                 events_kept: int = 10_000, originates_kept: int = 10_000,
                 record: str | None = None, base_dir: str = "/usr/local/freeswitch",
                 db_file: str | None = None) -> None:
        self.bind = bind
        self.password = password
        self.users: dict[str, User] = dict(users or {})
        self.hostname = hostname
        # A source install's layout under its prefix, as recorded
        # (02_api_basic: recordings_dir=<base_dir>/var/lib/freeswitch/recordings).
        self.base_dir = base_dir.rstrip("/") or "/"
        self.auth_timeout = auth_timeout
        self.board = Switchboard(self._fire, hostname=hostname, sps=sps, max_sessions=max_sessions,
                                 ring_time=ring_time, talk_time=talk_time,
                                 scenario=scenario or Scenario(), time_scale=time_scale,
                                 playback_time=playback_time, originates_kept=originates_kept)
        self.apps = Applications(self.board)
        self.dialer = Dialer(self.board, self.apps)
        self.dialplan = Dialplan(self.board, self.apps, Bridge(self.board, self.dialer))
        self.events: deque[tuple[str, dict[str, str]]] = deque(maxlen=events_kept)
        self.address: tuple[str, int] = bind
        self._server: StreamServer | None = None
        self._listeners: set[Listener] = set()
        self._stall_until = 0.0
        self.started = time.time()
        self.bg_pending = 0
        # Fault injection: the next `refusals` bgapi commands are answered
        # with `refusal_text` and not run.
        self.refusals = 0
        self.refusal_text = "-ERR permission denied"
        # Fault injection: (run, stall) for the next bgapi originates (see lose_originate).
        self.lost_originates: list[tuple[bool, float]] = []
        self.record = record
        self.journal: OriginateJournal | None = None
        # mod_db's table (kept in ``db_file`` across restarts when given) and mod_hash's.
        self.db_file = db_file
        self.db: DbStore = DbStore()
        self.hash: HashStore = HashStore()
        self.board.api_cb = lambda cmd, arg: self.api(cmd, arg, None)

    # -- public state ----------------------------------------------------------

    @property
    def channels(self) -> dict[str, Channel]:
        return self.board.channels

    @property
    def originates(self) -> deque[OriginateRecord]:
        return self.board.originates

    @property
    def stats(self) -> SwitchStats:
        return self.board.stats

    @property
    def in_flight(self) -> int:
        """Originates and bridges whose outcome is not decided yet."""
        return self.board.in_flight + self.bg_pending

    def events_for(self, job_id: str) -> list[tuple[str, dict[str, str]]]:
        """The kept events of one job: its channels' events
        (``variable_eslengine_job_id``) and BACKGROUND_JOBs whose
        ``Job-UUID`` is ``job_id``, oldest first."""
        return [(name, h) for name, h in list(self.events)
                if h.get("variable_eslengine_job_id") == job_id
                or (name == "BACKGROUND_JOB" and h.get("Job-UUID") == job_id)]

    def originates_with(self, var: str, value: str) -> list[OriginateRecord]:
        return [r for r in self.board.originates if r.variables.get(var) == value]

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return False
            gevent.sleep(0.002)

    # -- life cycle ------------------------------------------------------------

    def start(self) -> None:
        if self.record is not None and self.journal is None:
            self.journal = OriginateJournal(self.record)
        if self.db_file is not None and self.db.path is None:
            self.db = DbStore(self.db_file)
        self._server = StreamServer(self.bind, self._handle)
        self._server.start()
        host, port = self._server.address[:2]
        self.address = (host, port)
        self.started = time.time()
        log.debug("fakeswitch listening on %s:%d", host, port)

    def stop(self) -> None:
        """Stop listening and close every socket; free the port. Calls are
        simply forgotten (no hangup events)."""
        for listener in list(self._listeners):
            listener.abort()
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
        self.board.group.kill(block=False)
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        self.db.close()

    def _handle(self, sock: socket.socket, addr: Any) -> None:
        listener = Listener(self, sock, addr)
        self._listeners.add(listener)
        try:
            listener.run()
        except Exception:
            log.exception("fakeswitch: connection %s failed", addr)
        finally:
            self._listeners.discard(listener)
            listener.abort()

    # -- fault injection -------------------------------------------------------

    def refuse_bgapi(self, count: int, text: str = "-ERR permission denied") -> None:
        """Answer the next ``count`` bgapi commands with ``text`` without
        running them (fault injection)."""
        self.refusals, self.refusal_text = count, text

    def lose_originate(self, *, run: bool, stall: float = 0.0) -> None:
        """Fault injection: the next bgapi originate's connection drops
        before its reply. With ``run`` the switch had read the command and
        runs it; without, it never got it. ``stall`` then holds every
        command (a new connection's auth included) for that many seconds,
        so that what the call does meanwhile is seen by no client."""
        self.lost_originates.append((run, stall))

    def take_refusal(self) -> str | None:
        """The reply for a bgapi command refused by :meth:`refuse_bgapi`, if any."""
        if not self.refusals:
            return None
        self.refusals -= 1
        return self.refusal_text

    def take_lost_originate(self) -> tuple[bool, float] | None:
        """(run, stall) for a bgapi originate lost by :meth:`lose_originate`, if any."""
        return self.lost_originates.pop(0) if self.lost_originates else None

    def drop_connections(self) -> None:
        for listener in list(self._listeners):
            listener.abort()

    def stall(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

    def wait_out_stall(self) -> None:
        while True:
            remaining = self._stall_until - time.monotonic()
            if remaining <= 0:
                return
            gevent.sleep(remaining)

    def shutdown_notice(self) -> None:
        """What ``fsctl shutdown`` does: every call ends SYSTEM_SHUTDOWN, every
        connection gets the 31-byte notice and is closed, the port closes."""
        self.board.shutting_down = True
        self.board.hupall("SYSTEM_SHUTDOWN")
        for listener in list(self._listeners):
            listener.goodbye(_SHUTDOWN_FRAME)
        if self._server is not None:
            self._server.close()

    # -- events ----------------------------------------------------------------

    def _fire(self, name: str, headers: Headers, body: str, ch: Channel | None) -> None:
        kept = dict(headers)
        get = header_lookup(headers, kept)
        if body:
            kept["_body"] = body
        self.events.append((name, kept))
        if name == "CHANNEL_HANGUP_COMPLETE" and ch is not None and self.journal is not None:
            job_id = ch.variables.get(JOB_VAR)
            if job_id:
                self.journal.hangup(job_id, ch.variables.get(ATTEMPT_VAR), ch.variables.get("eslengine_leg"),
                                    ch.uuid, ch.hangup_cause or "NORMAL_CLEARING", ch.answered)
        frames: dict[str, bytes] = {}
        closing: list[Listener] = []
        for listener in list(self._listeners):
            if not listener.wants(name, get, ch):
                continue
            fmt = "json" if listener.fmt == "json" else "plain"
            frame = frames.get(fmt)
            if frame is None:
                if fmt == "json":
                    frame = encode_frame([("Content-Type", EVENT_JSON)],
                                         format_json_event(headers, body), length_first=True)
                else:
                    frame = encode_frame([("Content-Type", EVENT_PLAIN)],
                                         format_plain_event(headers, body), length_first=True)
                frames[fmt] = frame
            listener.send_event(frame)
            if name == "CHANNEL_HANGUP_COMPLETE" and ch is not None and listener.my_uuid == ch.uuid:
                closing.append(listener)
        for listener in closing:
            assert ch is not None
            listener.goodbye(encode_frame(
                [("Content-Type", DISCONNECT_NOTICE), ("Controlled-Session-UUID", ch.uuid),
                 ("Content-Disposition", "disconnect")], GOODBYE))

    # -- api -------------------------------------------------------------------

    def api(self, cmd: str, arg: str, listener: Listener | None) -> str:
        """The body FreeSWITCH's API ``cmd`` would return for ``arg``."""
        handler = API.get(cmd)
        if handler is None:
            return "-ERR %s Command not found!\n" % cmd
        return handler(self, arg)

    def run_bgapi(self, cmd: str, arg: str, job: str) -> None:
        """Accept a bgapi command: :meth:`bgapi` runs it in its own greenlet."""
        self.bg_pending += 1
        self.board.spawn(self.bgapi, cmd, arg, job)

    def bgapi(self, cmd: str, arg: str, job: str) -> None:
        """Run an accepted bgapi command; its BACKGROUND_JOB carries the result."""
        self.bg_pending -= 1
        background_job(self, cmd, arg, job)

    def _global_vars(self) -> list[tuple[str, str]]:
        return [("hostname", self.hostname), ("local_ip_v4", "127.0.0.1"),
                ("local_mask_v4", "255.0.0.0"), ("local_ip_v6", "::1"),
                ("base_dir", self.base_dir),
                ("recordings_dir", self.base_dir + "/var/lib/freeswitch/recordings"),
                ("sounds_dir", self.base_dir + "/share/freeswitch/sounds"),
                ("conf_dir", self.base_dir + "/etc/freeswitch"),
                ("temp_dir", "/tmp"),
                ("domain", "127.0.0.1"), ("core_uuid", self.board.core_uuid)]

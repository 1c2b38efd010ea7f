"""The simulator's event socket: a gevent TCP server speaking FreeSWITCH's
inbound ESL protocol, with the API commands an originate engine uses.

Reply texts are FreeSWITCH's own (mod_event_socket.c, mod_commands.c), byte
for byte as recorded in the transcripts. Deliberate simplifications:

* ``event xml`` is accepted but events go out as ``text/event-plain``;
* the core database is not asynchronous: ``show calls`` lists a call as soon
  as its channels exist;
* ``drop_connections`` closes client sockets only; calls stay up;
* ``stall`` delays command replies; events keep flowing.

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

import argparse
import json
import logging
import re
import signal
import socket
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import gevent.lock
from gevent.server import StreamServer

from ..protocol import (
    API_RESPONSE,
    AUTH_REQUEST,
    COMMAND_REPLY,
    DISCONNECT_NOTICE,
    EVENT_JSON,
    EVENT_PLAIN,
    GOODBYE,
    SHUTDOWN_NOTICE,
    encode_frame,
    format_json_event,
    format_plain_event,
)
from .channels import (
    USAGE_ORIGINATE,
    Channel,
    Headers,
    OriginateRecord,
    SwitchStats,
    Switchboard,
    hangup_cause,
    originate_variables,
    schedule_delay,
)
from .journal import ATTEMPT_VAR, JOB_VAR, OriginateJournal
from .scenario import Scenario
from .store import DbStore, HashStore

log = logging.getLogger(__name__)

VERSION = "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)"
_STATUS_VERSION = "FreeSWITCH (Version 1.11.3-dev  64bit) is ready"

EVENT_NAMES = frozenset("""
CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER
CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD
CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA
CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID
API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH
MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE
MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE
PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML
NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS
CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED
SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START
RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START
MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT
CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED ALL
""".split())

_LOG_LEVELS = {"console": 0, "alert": 1, "crit": 2, "err": 3, "error": 3, "warning": 4,
               "notice": 5, "info": 6, "debug": 7}

USAGE_SHOW = (
    "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels "
    "[count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|"
    "aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|"
    "limits|status\n"
)
USAGE_FSCTL = (
    "-USAGE: [api_expansion [on|off]|recover|send_sighup|hupall|pause [inbound|outbound]|"
    "resume [inbound|outbound]|shutdown [cancel|elegant|asap|now|restart]|uuid_version [4|7]|"
    "sps|sps_peak_reset|sync_clock|sync_clock_when_idle|reclaim_mem|max_sessions|"
    "min_dtmf_duration [num]|max_dtmf_duration [num]|default_dtmf_duration [num]|min_idle_cpu|"
    "loglevel [level]|debug_level [level]|mdns_resolve [enable|disable]]\n"
)
USAGE_SCHED_HANGUP = "-USAGE: [+]<time> <uuid> [<cause>]\n"
USAGE_SCHED_BROADCAST = "-USAGE: [+]<time> <uuid> <path> [aleg|bleg|both]\n"
USAGE_BROADCAST = "-USAGE: <uuid> <path> [aleg|bleg|both]\n"
USAGE_TRANSFER = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"

_CALL_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest presence_id "
    "presence_data accountcode callstate callee_name callee_num callee_direction call_uuid hostname "
    "sent_callee_name sent_callee_num b_uuid b_direction b_created b_created_epoch b_name b_state "
    "b_cid_name b_cid_num b_ip_addr b_dest b_presence_id b_presence_data b_accountcode b_callstate "
    "b_callee_name b_callee_num b_callee_direction b_sent_callee_name b_sent_callee_num "
    "call_created_epoch"
).split()
_CHANNEL_COLUMNS = (
    "uuid direction created created_epoch name state cid_name cid_num ip_addr dest application "
    "application_data dialplan context read_codec read_rate read_bit_rate write_codec write_rate "
    "write_bit_rate secure hostname presence_id presence_data accountcode callstate callee_name "
    "callee_num callee_direction call_uuid sent_callee_name sent_callee_num initial_cid_name "
    "initial_cid_num initial_ip_addr initial_dest initial_dialplan initial_context"
).split()

User = tuple[str, "frozenset[str] | None", "frozenset[str] | None"]


def _reply(text: str, *extra: tuple[str, str]) -> bytes:
    return encode_frame([("Content-Type", COMMAND_REPLY), ("Reply-Text", text), *extra])


def _api_frame(body: str) -> bytes:
    return encode_frame([("Content-Type", API_RESPONSE)], body)


_GOODBYE_FRAME = encode_frame([("Content-Type", DISCONNECT_NOTICE)], GOODBYE)
_SHUTDOWN_FRAME = encode_frame([("Content-Type", DISCONNECT_NOTICE)], SHUTDOWN_NOTICE)
_FRAME_END = re.compile(rb"\n\r?\n")
_JOB_ID = re.compile(JOB_VAR + r"=([^,}\s]+)")


class EventFilter:
    """One ``filter <header> <value>`` of a connection, parsed once: the
    value may start with ``+`` (the default: a match passes the event) or
    ``-`` (a match drops it, whatever matched before); it is compared
    ignoring case, or, when it starts with ``/``, is a ``/regex/flags``
    searched for in the header (switch_regex_perform: flags i and s; one
    without its closing ``/``, or that does not compile, matches nothing)."""

    __slots__ = ("header", "value", "positive", "wanted", "regex")

    def __init__(self, header: str, value: str) -> None:
        self.header = header
        self.value = value
        self.positive = True
        start = 0
        while start < len(value) and value[start] in "+- ":
            if value[start] != " ":
                self.positive = value[start] == "+"
            start += 1
        self.wanted = value[start:].lower()
        self.regex: re.Pattern[str] | None = None
        if value.startswith("/"):
            body = value[1:]
            end = body.rfind("/")
            flags = 0
            if end >= 0:
                flags = (re.IGNORECASE if "i" in body[end + 1:] else 0) | (re.DOTALL if "s" in body[end + 1:] else 0)
            try:
                self.regex = re.compile(body[:end] if end >= 0 else "(?!)", flags)
            except re.error:
                self.regex = re.compile("(?!)")

    def matches(self, found: str) -> bool:
        if self.regex is not None:
            return self.regex.search(found) is not None
        return found.lower() == self.wanted


def header_lookup(headers: Headers, exact: dict[str, str] | None = None) -> Callable[[str], str | None]:
    """An event's header by name in any case, the first of a repeated name
    (switch_event_get_header). ``exact``: ``dict(headers)`` if already made
    (it is only used when no name repeats)."""
    if exact is None or len(exact) != len(headers):
        exact = dict(reversed(headers))

    def get(name: str) -> str | None:
        found = exact.get(name)
        if found is None:
            wanted = name.lower()
            found = next((v for k, v in headers if k.lower() == wanted), None)
        return found

    return get


def filter_passes(filters: list[EventFilter], get: Callable[[str], str | None]) -> bool:
    """Whether an event passes a connection's filters, as mod_event_socket's
    event_handler decides, in order: a filter whose header the event lacks
    is skipped; a positive match passes the event, a negative one drops it
    at once. (Once the event passes, further positive filters cannot change
    that and are not looked at.)"""
    send = False
    for item in filters:
        if send and item.positive:
            continue
        found = get(item.header)
        if found is None or not item.matches(found):
            continue
        if not item.positive:
            return False
        send = True
    return send


class Listener:
    """One client connection and its subscriptions."""

    def __init__(self, switch: FakeSwitch, sock: socket.socket, addr: Any) -> None:
        self.switch = switch
        self.sock = sock
        self.addr = addr
        self.authed = False
        self.closed = False
        self.events = False
        self.fmt = "plain"
        self.subscribed: set[str] = set()
        self.filters: list[EventFilter] = []
        self.my_uuid: str | None = None
        self.logging = False
        self.allowed_api: frozenset[str] | None = None
        self.allowed_events: frozenset[str] | None = None
        self._lock = gevent.lock.Semaphore()
        self._buf = bytearray()
        self._held: list[bytes] | None = None

    def send_event(self, frame: bytes) -> None:
        """Events raised while this connection's command runs go out after
        its reply, as FreeSWITCH's event queue delivers them."""
        if self._held is not None:
            self._held.append(frame)
        else:
            self.send(frame)

    # -- output ----------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        with self._lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self.abort()

    def abort(self) -> None:
        """Close without a notice (a dead peer, or ``drop_connections``)."""
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def goodbye(self, frame: bytes = _GOODBYE_FRAME) -> None:
        self.send(frame)
        self.abort()

    def wants(self, name: str, get: Callable[[str], str | None], ch: Channel | None) -> bool:
        if not self.events or self.closed:
            return False
        if self.my_uuid is not None:
            return ch is not None and ch.uuid == self.my_uuid
        if "ALL" not in self.subscribed and name not in self.subscribed:
            return False
        if self.allowed_events is not None and name not in self.allowed_events:
            return False
        if self.filters:
            return filter_passes(self.filters, get)
        return True

    # -- input -----------------------------------------------------------------

    def _read_frame(self, timeout: float | None) -> tuple[str, dict[str, str], str] | None:
        """The next command frame, or None on EOF / timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            buf = self._buf
            start = 0
            while start < len(buf) and buf[start] in (0x0A, 0x0D):
                start += 1
            if start:
                del buf[:start]
            m = _FRAME_END.search(buf)
            if m is not None:
                head = bytes(buf[: m.start()]).decode("utf-8", "replace")
                del buf[: m.end()]
                lines = head.replace("\r", "").split("\n")
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    key, sep, value = line.partition(":")
                    if sep:
                        headers[key.strip()] = value.lstrip(" ")
                body = ""
                length = headers.get("Content-Length") or headers.get("content-length")
                if length and length.isdigit() and int(length) > 0:
                    need = int(length)
                    while len(self._buf) < need:
                        if not self._recv(deadline):
                            return None
                    body = bytes(self._buf[:need]).decode("utf-8", "replace")
                    del self._buf[:need]
                return lines[0], headers, body
            if not self._recv(deadline):
                return None

    def _recv(self, deadline: float | None) -> bool:
        if self.closed:
            return False
        try:
            if deadline is None:
                self.sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
        except (socket.timeout, OSError):
            return False
        if not data:
            return False
        self._buf += data
        return True

    def run(self) -> None:
        self.send(encode_frame([("Content-Type", AUTH_REQUEST)]))
        while not self.closed:
            frame = self._read_frame(None if self.authed else self.switch.auth_timeout)
            if frame is None:
                if not self.closed:
                    self.goodbye()
                return
            self.switch.wait_out_stall()
            command, headers, body = frame
            self._held = []
            try:
                self.dispatch(command, headers, body)
            except Exception:
                log.exception("fakeswitch: command %r failed", command[:80])
                self.send(_reply("-ERR internal error"))
            finally:
                held, self._held = self._held, None
                for frame in held or ():
                    self.send(frame)

    def dispatch(self, command: str, headers: dict[str, str], body: str) -> None:
        sw = self.switch
        word, _, rest = command.partition(" ")
        low = word.lower()
        if not self.authed:
            if low == "auth":
                if rest == sw.password:
                    self.authed = True
                    self.send(_reply("+OK accepted"))
                else:
                    self.send(_reply("-ERR invalid"))
                    self.goodbye()
            elif low == "userauth":
                self._userauth(rest)
            else:
                self.send(_reply("-ERR command not found"))
            return
        if low == "exit":
            self.send(_reply("+OK bye"))
            self.goodbye()
        elif low == "api":
            cmd, _, arg = rest.strip().partition(" ")
            if not self._api_allowed(cmd):
                self.send(_reply("-ERR permission denied"))
                return
            # An empty output goes out as "-ERR no reply" (mod_event_socket.c, api_exec).
            self.send(_api_frame(sw.api(cmd, arg.strip(), self) or "-ERR no reply\n"))
        elif low == "bgapi":
            cmd, _, arg = rest.strip().partition(" ")
            if not self._api_allowed(cmd):
                self.send(_reply("-ERR permission denied"))
                return
            if sw.refusals:
                sw.refusals -= 1
                self.send(_reply(sw.refusal_text))
                return
            job = headers.get("Job-UUID") or str(uuidlib.uuid4())
            if sw.lost_originates and cmd == "originate":
                # Fault injection: the connection dies with the command,
                # before its reply; the switch ran it or never read it.
                run, stall = sw.lost_originates.pop(0)
                if run:
                    sw.bg_pending += 1
                    sw.board.spawn(sw.bgapi, cmd, arg.strip(), job)
                if stall:
                    sw.stall(stall)
                self.abort()
                return
            self.send(_reply("+OK Job-UUID: %s" % job, ("Job-UUID", job)))
            sw.bg_pending += 1
            sw.board.spawn(sw.bgapi, cmd, arg.strip(), job)
        elif low == "event":
            self._event(rest)
        elif low == "nixevent":
            names = [n.upper() for n in rest.split() if n.upper() in EVENT_NAMES]
            if not names:
                self.send(_reply("-ERR no keywords supplied"))
                return
            for name in names:
                if name == "ALL":
                    self.subscribed.clear()
                else:
                    self.subscribed.discard(name)
            self.send(_reply("+OK events nixed"))
        elif low == "noevents":
            if self.events:
                self.events = False
                self.subscribed.clear()
                self.send(_reply("+OK no longer listening for events"))
            else:
                self.send(_reply("-ERR not listening for events"))
        elif low == "filter":
            self._filter(rest)
        elif low == "myevents":
            self._myevents(rest)
        elif low == "divert_events":
            self.send(_reply("-ERR not controlling a session."))
        elif low in ("linger", "nolinger"):
            self.send(_reply("-ERR not controlling a session"))
        elif low == "log":
            self._log(rest)
        elif low == "nolog":
            if self.logging:
                self.logging = False
                self.send(_reply("+OK no longer logging"))
            else:
                self.send(_reply("-ERR not loging"))
        else:
            self.send(_reply("-ERR command not found"))

    def _api_allowed(self, cmd: str) -> bool:
        return self.allowed_api is None or cmd in self.allowed_api

    def _userauth(self, rest: str) -> None:
        who, _, password = rest.strip().partition(":")
        user = self.switch.users.get(who)
        if user is None or user[0] != password:
            self.send(_reply("-ERR invalid"))
            self.goodbye()
            return
        self.authed = True
        self.allowed_api, self.allowed_events = user[1], user[2]
        self.send(_reply("+OK accepted"))

    def _event(self, rest: str) -> None:
        words = rest.split()
        if not words:
            self.send(_reply("-ERR no keywords supplied"))
            return
        fmt = words[0].lower()
        fmt = fmt if fmt in ("json", "xml") else "plain"
        names: list[str] = []
        custom = False
        for word in words[1:]:
            upper = word.upper()
            if custom and upper not in EVENT_NAMES:
                continue      # a CUSTOM subclass
            if upper in EVENT_NAMES:
                custom = upper == "CUSTOM"
                if self.allowed_events is None or upper in self.allowed_events or upper == "ALL":
                    names.append(upper)
        if not names:
            self.send(_reply("-ERR no keywords supplied"))
            return
        self.subscribed.update(names)
        self.events = True
        self.fmt = fmt
        self.send(_reply("+OK event listener enabled %s" % fmt))

    def _filter(self, rest: str) -> None:
        # mod_event_socket: "filter [add] <header> <value>" (the value is the
        # rest of the line) and "filter delete <header>|all [<value>]".
        if not rest.strip():
            self.send(_reply("-ERR command not found"))
            return
        name, _, value = rest.lstrip(" ").partition(" ")
        if name.lower() == "delete" and value:
            key, _, value = value.partition(" ")
            if key.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [f for f in self.filters
                                if not (f.header.lower() == key.lower() and (not value or f.value == value))]
            self.send(_reply("+OK filter deleted. [%s][%s]" % (key, value)))
            return
        if not value:
            self.send(_reply("-ERR invalid syntax"))
            return
        if name.lower() == "add":
            name, _, value = value.partition(" ")
        self.filters.append(EventFilter(name, value))
        self.send(_reply("+OK filter added. [%s]=[%s]" % (name, value)))

    def _myevents(self, rest: str) -> None:
        if self.my_uuid is not None:
            self.send(_reply("-ERR aready enabled."))
            return
        words = rest.split()
        fmt = "plain"
        if words and words[0].lower() in ("plain", "json", "xml"):
            fmt = words.pop(0).lower()
        uuid = words[0] if words else ""
        if uuid in self.switch.channels:
            self.my_uuid = uuid
            self.events = True
            self.fmt = fmt
        self.send(_reply("+OK Events Enabled"))

    def _log(self, rest: str) -> None:
        arg = rest.strip()
        if not arg:
            level, name = 7, "debug"
        elif arg.isdigit() and int(arg) <= 7:
            level, name = int(arg), arg
        elif arg.lower() in _LOG_LEVELS:
            level, name = _LOG_LEVELS[arg.lower()], arg
        else:
            self.send(_reply("-ERR invalid log level"))
            return
        self.logging = True
        self.send(_reply("+OK log level %s [%d]" % (name, level)))


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
        self.db = DbStore()
        self.hash = HashStore()
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

    def bgapi(self, cmd: str, arg: str, job: str) -> None:
        self.bg_pending -= 1
        def finish(result: str) -> None:
            if cmd == "originate":
                self.board.stats.result_log.append(time.time())
            h = self.board.base_headers("BACKGROUND_JOB")
            h.append(("Job-UUID", job))
            h.append(("Job-Command", cmd))
            if arg:
                h.append(("Job-Command-Arg", arg))
            self._fire("BACKGROUND_JOB", h, result, None)

        if cmd == "originate":
            self._originate(arg, job, finish)
        else:
            finish(self.api(cmd, arg, None))

    def _originate(self, arg: str, job: str | None, done: Callable[[str], None]) -> None:
        from .dialparse import DialStringError, UsageError, parse_originate

        rec = self.board.record(arg, job)
        try:
            parsed = parse_originate(arg)
        except (UsageError, DialStringError) as exc:
            if isinstance(exc, UsageError):
                rec.result = USAGE_ORIGINATE
            else:
                log.info("originate: Parse Error! %s", exc)
                rec.result = "-ERR %s\n" % (exc.cause or "DESTINATION_OUT_OF_ORDER")
            found = _JOB_ID.search(arg)
            job_id = found.group(1) if found else None
            self.board.stats.originate_log.append((rec.time, job_id or ""))
            done = self._journaled(job_id, None, job, done)
            done(rec.result)
            return
        rec.variables = originate_variables(parsed)
        self.board.stats.originate_log.append((rec.time, rec.variables.get(JOB_VAR, "")))
        done = self._journaled(rec.variables.get(JOB_VAR), rec.variables.get(ATTEMPT_VAR), job, done)
        self.board.originate(rec, parsed, done)

    def _journaled(self, job_id: str | None, attempt: str | None, job: str | None,
                   done: Callable[[str], None]) -> Callable[[str], None]:
        """Journal the originate now and ``done``'s result when it comes."""
        journal = self.journal
        if journal is None:
            return done
        journal.originate(job_id, attempt, job)

        def journaled(result: str) -> None:
            if self.journal is journal:
                journal.result(job_id, attempt, job, result)
            done(result)
        return journaled

    def api(self, cmd: str, arg: str, listener: Listener | None) -> str:
        """The body FreeSWITCH's API ``cmd`` would return for ``arg``."""
        handler = _API.get(cmd)
        if handler is None:
            return "-ERR %s Command not found!\n" % cmd
        return handler(self, arg)

    def _api_originate(self, arg: str) -> str:
        result = gevent.event.AsyncResult()
        self.board.spawn(self._originate, arg, None, result.set)
        try:
            value: str = result.get(timeout=3600)
        except gevent.Timeout:
            return "-ERR NO_ANSWER\n"
        return value

    def _api_status(self, arg: str) -> str:
        up = time.time() - self.started
        parts = []
        secs = int(up)
        years, secs = divmod(secs, 365 * 86400)
        days, secs = divmod(secs, 86400)
        hours, secs = divmod(secs, 3600)
        minutes, secs = divmod(secs, 60)
        ms = int((up - int(up)) * 1000)
        us = int((up - int(up)) * 1_000_000) % 1000
        for value, unit in ((years, "year"), (days, "day"), (hours, "hour"), (minutes, "minute"),
                            (secs, "second"), (ms, "millisecond"), (us, "microsecond")):
            parts.append("%d %s%s" % (value, unit, "" if value == 1 else "s"))
        st = self.board.stats
        now = int(time.time())
        recent = [n for s, n in st.sessions_per_second.items() if now - s < 300]
        last5 = max(recent) if recent else 0
        current = st.sessions_per_second.get(now, 0)
        return (
            "UP %s\n%s\n%d session(s) since startup\n"
            "%d session(s) - peak %d, last 5min %d \n"
            "%d session(s) per Sec out of max %d, peak %d, last 5min %d \n"
            "%d session(s) max\nmin idle cpu 0.00/99.00\nCurrent Stack Size/Max 240K/8192K\n"
        ) % (", ".join(parts), _STATUS_VERSION, st.sessions_since_startup,
             len(self.channels), st.peak_sessions, st.peak_sessions,
             current, self.board.sps, st.peak_sps, last5, self.board.max_sessions)

    def _global_vars(self) -> list[tuple[str, str]]:
        return [("hostname", self.hostname), ("local_ip_v4", "127.0.0.1"),
                ("local_mask_v4", "255.0.0.0"), ("local_ip_v6", "::1"),
                ("base_dir", self.base_dir),
                ("recordings_dir", self.base_dir + "/var/lib/freeswitch/recordings"),
                ("sounds_dir", self.base_dir + "/share/freeswitch/sounds"),
                ("conf_dir", self.base_dir + "/etc/freeswitch"),
                ("temp_dir", "/tmp"),
                ("domain", "127.0.0.1"), ("core_uuid", self.board.core_uuid)]

    def _api_global_getvar(self, arg: str) -> str:
        if not arg:
            return "".join("%s=%s\n" % kv for kv in self._global_vars())
        value = dict(self._global_vars()).get(arg)
        return "-ERR no reply\n" if value is None else value

    def _row(self, ch: Channel, columns: list[str]) -> dict[str, str]:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ch.created_us / 1e6))
        name, num = (ch.callee_name, ch.callee_num) if ch.flipped else (ch.cid_name, ch.cid_num)
        values = {
            "uuid": ch.uuid, "direction": ch.direction, "created": created,
            "created_epoch": str(ch.created_us // 1_000_000), "name": ch.name,
            "state": "CS_EXECUTE" if ch.answered else "CS_ROUTING", "cid_name": name, "cid_num": num,
            "dest": ch.dest, "callstate": "ACTIVE" if ch.answered else "RINGING",
            "callee_name": "" if ch.flipped else ch.callee_name,
            "callee_num": ch.cid_num if ch.flipped else ch.callee_num,
            "callee_direction": "RECV" if ch.flipped else "",
            "call_uuid": ch.uuid if ch.direction == "outbound" and ch.call_uuid == ch.uuid else "",
            "hostname": self.hostname, "application": ch.app or "", "dialplan": "xml",
            "context": ch.context, "read_codec": "L16", "read_rate": "8000",
            "read_bit_rate": "128000", "write_codec": "L16", "write_rate": "8000",
            "write_bit_rate": "128000", "initial_cid_name": ch.cid_name,
            "initial_cid_num": ch.cid_num, "initial_dest": ch.dest, "initial_dialplan": "xml",
            "initial_context": ch.context,
        }
        return {c: values.get(c, "") for c in columns}

    def _api_show(self, arg: str) -> str:
        words = arg.split()
        if not words:
            return USAGE_SHOW
        what = words[0].lower()
        rest = [w.lower() for w in words[1:]]
        if what in ("calls", "channels", "detailed_calls"):
            columns = _CHANNEL_COLUMNS if what == "channels" else _CALL_COLUMNS
            rows = [self._row(ch, columns) for ch in self.channels.values()]
        elif what in ("bridged_calls", "detailed_bridged_calls"):
            columns = _CALL_COLUMNS
            rows = [self._row(ch, columns) for ch in self.channels.values()
                    if ch.bridge is not None and ch.bridge_role == "originator"]
        else:
            return USAGE_SHOW
        if rest[:1] == ["count"]:
            return "\n%d total.\n" % len(rows)
        if rest[:2] == ["as", "json"]:
            if not rows:
                return '{"row_count": 0}\n'
            return json.dumps({"row_count": len(rows), "rows": rows}, separators=(",", ":"))
        if not rows:
            return "\n0 total.\n"
        lines = [",".join(columns)] + [",".join(r[c] for c in columns) for r in rows]
        return "%s\n\n%d total.\n" % ("\n".join(lines), len(rows))

    def _channel(self, arg: str) -> Channel | None:
        return self.channels.get(arg.split(" ", 1)[0]) if arg else None

    def _api_uuid_kill(self, arg: str) -> str:
        words = arg.split()
        ch = self._channel(arg)
        if ch is None:
            return "-ERR No such channel!\n"
        self.board.hangup(ch, hangup_cause(words[1] if len(words) > 1 else None))
        return "+OK\n"

    def _api_uuid_transfer(self, arg: str) -> str:
        """``uuid_transfer <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]``
        (the A leg only: -bleg and -both are refused here)."""
        words = arg.split()
        if len(words) < 2 or len(words) > 5:
            return USAGE_TRANSFER
        if words[1].startswith("-"):
            return "-ERR the simulator transfers the named channel only\n"
        ch = self._channel(arg)
        if ch is None or not ch.alive:
            return "-ERR No such channel!\n"
        exten = words[1]
        dialplan = words[2] if len(words) > 2 else "XML"
        context = words[3] if len(words) > 3 else "default"
        self.board.transfer(ch, exten, dialplan, context)
        return "+OK\n"

    def _api_uuid_exists(self, arg: str) -> str:
        return "true" if self._channel(arg) is not None else "false"

    def _api_uuid_getvar(self, arg: str) -> str:
        words = arg.split()
        ch = self._channel(arg)
        if ch is None or len(words) < 2:
            return "-ERR No such channel!\n"
        return ch.variables.get(words[1], "_undef_")

    def _api_uuid_setvar(self, arg: str) -> str:
        """``uuid_setvar <uuid> <var> [value]`` as mod_commands reads it:
        ``switch_separate_string`` at blanks into at most three arguments
        (the value is the cleaned rest of the line). No value unsets the
        variable; a value with ``${`` is refused (switch_channel_set_variable
        logs it) and the answer is still ``+OK``."""
        from .dialparse import DialStringError, separate_string, string_var_check

        try:
            words = separate_string(arg, " ", 3)
        except DialStringError:
            words = []
        if len(words) not in (2, 3) or not words[0]:
            return "-USAGE: <uuid> <var> [value]\n"
        ch = self._channel(words[0])
        if ch is None:
            return "-ERR No such channel!\n"
        if not words[1]:
            return "-ERR No variable specified\n"
        if len(words) == 3 and words[2]:
            if not string_var_check(words[2]):
                ch.variables[words[1]] = words[2]
        else:
            ch.variables.pop(words[1], None)
        return "+OK\n"

    def _api_uuid_dump(self, arg: str) -> str:
        words = arg.split()
        ch = self._channel(arg)
        if ch is None:
            return "-ERR No such channel!\n"
        h = self.board.base_headers("CHANNEL_DATA")
        h.extend(ch.channel_headers("CS_EXECUTE", "ACTIVE", "4"))
        if len(words) > 1 and words[1] == "json":
            return format_json_event(h)
        return format_plain_event(h)

    def _api_hupall(self, arg: str) -> str:
        words = arg.split()
        cause = hangup_cause(words[0] if words else None, "MANAGER_REQUEST")
        if len(words) >= 3:
            self.board.hupall(cause, words[1], words[2])
            return "+OK hangup all channels matching [%s]=[%s] with cause: %s\n" % (words[1], words[2], cause)
        self.board.hupall(cause)
        return "+OK hangup all channels with cause %s\n" % cause

    def _api_sched_hangup(self, arg: str) -> str:
        words = arg.split()
        delay = schedule_delay(words[0]) if words else None
        if delay is None or len(words) < 2:
            return USAGE_SCHED_HANGUP
        ch = self.channels.get(words[1])
        if ch is None:
            return "-ERR No such channel!\n"
        self.board.sched_hangup(ch, delay, hangup_cause(words[2] if len(words) > 2 else None,
                                                        "ALLOTTED_TIMEOUT"))
        return "+OK\n"

    def _api_uuid_broadcast(self, arg: str) -> str:
        words = arg.split()
        if len(words) < 2:
            return USAGE_BROADCAST
        ch = self.channels.get(words[0])
        if ch is None:
            return "-ERR invalid uuid\n"
        self.board.broadcast(ch, words[1], 0.0, words[2] if len(words) > 2 else "aleg")
        return "+OK Message sent\n"

    def _api_sched_broadcast(self, arg: str) -> str:
        words = arg.split()
        delay = schedule_delay(words[0]) if words else None
        if delay is None or len(words) < 3:
            return USAGE_SCHED_BROADCAST
        ch = self.channels.get(words[1])
        if ch is None:
            return "-ERR invalid uuid\n"
        self.board.broadcast(ch, words[2], delay, words[3] if len(words) > 3 else "aleg")
        return "+OK Message scheduled\n"

    def _api_fsctl(self, arg: str) -> str:
        words = arg.split()
        if not words:
            return USAGE_FSCTL
        what = words[0].lower()
        if what == "sps":
            if len(words) > 1 and words[1].isdigit():
                self.board.sps = int(words[1])
            return "+OK sessions per second: %d\n" % self.board.sps
        if what == "max_sessions":
            if len(words) > 1 and words[1].isdigit():
                self.board.max_sessions = int(words[1])
            return "+OK max sessions: %d\n" % self.board.max_sessions
        if what == "shutdown":
            gevent.spawn_later(0.01, self.shutdown_notice)
            return "+OK\n"
        if what == "hupall":
            self.board.hupall("MANAGER_REQUEST")
            return "+OK\n"
        return USAGE_FSCTL


_API: dict[str, Callable[[FakeSwitch, str], str]] = {
    "status": FakeSwitch._api_status,
    "version": lambda sw, arg: VERSION + "\n",
    "originate": FakeSwitch._api_originate,
    "uuid_exists": FakeSwitch._api_uuid_exists,
    "uuid_kill": FakeSwitch._api_uuid_kill,
    "uuid_transfer": FakeSwitch._api_uuid_transfer,
    "uuid_getvar": FakeSwitch._api_uuid_getvar,
    "uuid_setvar": FakeSwitch._api_uuid_setvar,
    "uuid_dump": FakeSwitch._api_uuid_dump,
    "hupall": FakeSwitch._api_hupall,
    "show": FakeSwitch._api_show,
    "sched_hangup": FakeSwitch._api_sched_hangup,
    "uuid_broadcast": FakeSwitch._api_uuid_broadcast,
    "sched_broadcast": FakeSwitch._api_sched_broadcast,
    "fsctl": FakeSwitch._api_fsctl,
    "global_getvar": FakeSwitch._api_global_getvar,
    "db": lambda sw, arg: sw.db.api(arg),
    "hash": lambda sw, arg: sw.hash.api(arg),
    "echo": lambda sw, arg: arg,
}


def _bind(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host or "127.0.0.1", int(port)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
    return value


def main(argv: list[str] | None = None) -> int:
    """``eslengine fakeswitch``: run the simulator until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="eslengine fakeswitch",
                                     description="FreeSWITCH event-socket simulator")
    parser.add_argument("--bind", type=_bind, default=("127.0.0.1", 8021))
    parser.add_argument("--password", default="ClueCon")
    parser.add_argument("--sps", type=int, default=30)
    parser.add_argument("--max-sessions", type=int, default=1000)
    parser.add_argument("--ring-time", type=float, default=0.2)
    parser.add_argument("--talk-time", type=float, default=None)
    parser.add_argument("--scenario", default=None, help="scenario JSON file")
    parser.add_argument("--time-scale", type=_positive, default=1.0,
                        help="divide every FreeSWITCH delay (originate/leg timeouts, retry sleeps, "
                             "sched_hangup, sched_broadcast, playback) by this factor")
    parser.add_argument("--playback-time", type=float, default=0.0,
                        help="seconds a playback/speak takes (before --time-scale)")
    parser.add_argument("--record", default=None, metavar="FILE",
                        help="append one JSON line per originate received (and one per result) to FILE")
    parser.add_argument("--db-file", default=None, metavar="FILE",
                        help="keep mod_db's table (db insert/select/delete) in FILE, across restarts, "
                             "as FreeSWITCH keeps it in sqlite; without it the table starts empty")
    parser.add_argument("--stall-seconds", type=_positive, default=2.0,
                        help="how long SIGUSR2 stalls command replies")
    args = parser.parse_args(argv)
    scenario = Scenario.from_file(args.scenario) if args.scenario else None
    switch = FakeSwitch(args.bind, args.password, sps=args.sps, max_sessions=args.max_sessions,
                        ring_time=args.ring_time, talk_time=args.talk_time, scenario=scenario,
                        time_scale=args.time_scale, playback_time=args.playback_time,
                        record=args.record, db_file=args.db_file)
    switch.start()
    stopped = gevent.event.Event()

    def on_signal() -> None:
        def stop() -> None:
            switch.stop()
            stopped.set()
        gevent.spawn(stop)

    def on_drop() -> None:
        log.warning("fakeswitch: SIGUSR1: dropping every client connection")
        gevent.spawn(switch.drop_connections)

    def on_stall() -> None:
        log.warning("fakeswitch: SIGUSR2: stalling command replies for %.1fs", args.stall_seconds)
        gevent.spawn(switch.stall, args.stall_seconds)

    handlers = [gevent.signal_handler(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)]
    handlers.append(gevent.signal_handler(signal.SIGUSR1, on_drop))
    handlers.append(gevent.signal_handler(signal.SIGUSR2, on_stall))
    log.info("fakeswitch ready on %s:%d (sps %d, max sessions %d)",
             switch.address[0], switch.address[1], args.sps, args.max_sessions)
    try:
        while not stopped.wait(timeout=3600):
            pass
    finally:
        for handler in handlers:
            handler.cancel()
    return 0

"""One event-socket session: FreeSWITCH's inbound ESL protocol as
mod_event_socket.c speaks it, byte for byte as recorded in the transcripts:
``auth``/``userauth``, command framing, ``api``/``bgapi`` (run by the
switch, :mod:`.commands`), event subscriptions (``event``, ``nixevent``,
``noevents``, ``myevents``), ``filter``, ``log`` and ``exit``.

``event xml`` is accepted but events go out as ``text/event-plain``.
"""

from __future__ import annotations

import logging
import re
import socket
import time
import uuid as uuidlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gevent.lock

from ..protocol import (
    API_RESPONSE,
    AUTH_REQUEST,
    COMMAND_REPLY,
    DISCONNECT_NOTICE,
    GOODBYE,
    encode_frame,
)
from .channel import Channel, Headers

if TYPE_CHECKING:
    from .server import FakeSwitch

log = logging.getLogger(__name__)

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


def _reply(text: str, *extra: tuple[str, str]) -> bytes:
    return encode_frame([("Content-Type", COMMAND_REPLY), ("Reply-Text", text), *extra])


def _api_frame(body: str) -> bytes:
    return encode_frame([("Content-Type", API_RESPONSE)], body)


GOODBYE_FRAME = encode_frame([("Content-Type", DISCONNECT_NOTICE)], GOODBYE)
_FRAME_END = re.compile(rb"\n\r?\n")


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

    def goodbye(self, frame: bytes = GOODBYE_FRAME) -> None:
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
                for event_frame in held or ():
                    self.send(event_frame)

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
            refusal = sw.take_refusal()
            if refusal is not None:
                self.send(_reply(refusal))
                return
            job = headers.get("Job-UUID") or str(uuidlib.uuid4())
            lost = sw.take_lost_originate() if cmd == "originate" else None
            if lost is not None:
                # Fault injection: the connection dies with the command,
                # before its reply; the switch ran it or never read it.
                run, stall = lost
                if run:
                    sw.run_bgapi(cmd, arg.strip(), job)
                if stall:
                    sw.stall(stall)
                self.abort()
                return
            self.send(_reply("+OK Job-UUID: %s" % job, ("Job-UUID", job)))
            sw.run_bgapi(cmd, arg.strip(), job)
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


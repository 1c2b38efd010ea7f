"""A small inbound event-socket client for the conformance harness.

It is deliberately independent of ``eslengine.esl``: the harness watches the
switch with it while the engine's own client is what the tests examine.

Frames follow mod_event_socket.c: a header block ended by an empty line,
then ``Content-Length`` bytes of body. Replies (``auth/request``,
``command/reply``, ``api/response``, ``text/rude-rejection``) are matched to
commands by order, one command at a time; ``text/event-json`` frames go to
``on_event``. Every wait has a deadline, and a closed socket fails whoever
waits for a reply.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

REPLY_TYPES = frozenset({"auth/request", "command/reply", "api/response", "text/rude-rejection"})


class EventSocketError(Exception):
    """The connection failed, closed, or a reply did not come in time."""


@dataclass(frozen=True)
class Reply:
    """One reply frame: its headers and body."""

    headers: dict[str, str]
    body: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    @property
    def text(self) -> str:
        """``Reply-Text`` of a command reply, the body of an api response."""
        if self.content_type == "command/reply":
            return self.headers.get("Reply-Text", "")
        return self.body

    @property
    def ok(self) -> bool:
        return self.text.startswith("+OK")


@dataclass(frozen=True)
class Event:
    """One event as FreeSWITCH serialised it (``event json``): every header
    as a string, the body under ``_body``, and when it arrived
    (``time.monotonic()``)."""

    headers: dict[str, str]
    received: float = field(default=0.0, compare=False)

    @property
    def name(self) -> str:
        name = self.headers.get("Event-Name", "")
        if name == "CUSTOM":
            return "CUSTOM " + self.headers.get("Event-Subclass", "")
        return name

    @property
    def uuid(self) -> str:
        return self.headers.get("Unique-ID", "")

    @property
    def body(self) -> str:
        return self.headers.get("_body", "")

    def get(self, header: str, default: str | None = None) -> str | None:
        return self.headers.get(header, default)

    def variable(self, name: str) -> str | None:
        return self.headers.get("variable_" + name)


def _header_block(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return headers


def _event_from_json(body: str) -> Event:
    data = json.loads(body)
    return Event({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()},
                 time.monotonic())


class EventSocket:
    """One inbound ESL connection.

    ``connect()`` waits for the switch's ``auth/request``; ``auth`` and
    ``userauth`` return the reply (check ``.ok``); ``send`` sends any
    command and returns its reply; ``api`` returns an api command's body.
    A refused login or a rude rejection is a reply, not an exception:
    tests look at it.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.on_event = on_event
        self.greeting: Reply | None = None
        self._sock: socket.socket | None = None
        self._replies: queue.Queue[Reply | None] = queue.Queue()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.closed = threading.Event()

    def connect(self) -> Reply:
        """Open the connection; the first frame (``auth/request``, or a
        ``text/rude-rejection`` for a client the ACL refuses) is returned."""
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise EventSocketError("cannot connect to %s:%d: %s" % (self.host, self.port, exc)) from exc
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="esl-reader-%d" % self.port, daemon=True)
        self._reader.start()
        self.greeting = self._next_reply(self.timeout, "the greeting")
        return self.greeting

    def auth(self, password: str) -> Reply:
        return self.send("auth " + password)

    def userauth(self, user: str, password: str) -> Reply:
        """``user`` is ``name@domain``."""
        return self.send("userauth %s:%s" % (user, password))

    def send(self, command: str, timeout: float | None = None, headers: dict[str, str] | None = None) -> Reply:
        """Send ``command`` (one line) with optional extra header lines
        (``Job-UUID`` for bgapi) and return its reply."""
        lines = [command] + ["%s: %s" % item for item in (headers or {}).items()]
        if any("\n" in line or "\r" in line for line in lines):
            raise ValueError("an ESL command and its headers are one line each: %r" % lines)
        sock = self._sock
        if sock is None or self.closed.is_set():
            raise EventSocketError("not connected")
        with self._send_lock:
            try:
                sock.sendall("\n".join(lines).encode() + b"\n\n")
            except OSError as exc:
                raise EventSocketError("send failed: %s" % exc) from exc
            verb = command.split(" ", 1)[0]
            return self._next_reply(self.timeout if timeout is None else timeout,
                                    verb if verb in ("auth", "userauth") else command)

    def api(self, command: str, timeout: float | None = None) -> str:
        return self.send("api " + command, timeout).body

    def __enter__(self) -> EventSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=5)

    def _next_reply(self, timeout: float, what: str) -> Reply:
        try:
            reply = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise EventSocketError("no reply to %r within %.1fs" % (what, timeout)) from None
        if reply is None:
            self._replies.put(None)  # every later waiter fails too
            raise EventSocketError("connection closed waiting for the reply to %r" % what)
        return reply

    def _read_loop(self) -> None:
        buf = b""
        sock = self._sock
        try:
            while sock is not None:
                while b"\n\n" not in buf:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\n\n")
                headers = _header_block(head.decode("utf-8", "replace"))
                length = int(headers.get("Content-Length", "0") or 0)
                while len(buf) < length:
                    chunk = sock.recv(max(65536, length - len(buf)))
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length].decode("utf-8", "replace"), buf[length:]
                self._dispatch(headers, body)
        except OSError:
            return
        finally:
            self.closed.set()
            self._replies.put(None)

    def _dispatch(self, headers: dict[str, str], body: str) -> None:
        kind = headers.get("Content-Type", "")
        if kind in REPLY_TYPES:
            self._replies.put(Reply(headers, body))
        elif kind == "text/event-json":
            if self.on_event is not None:
                self.on_event(_event_from_json(body))
        elif kind == "text/disconnect-notice":
            self.closed.set()

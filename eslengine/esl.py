"""Inbound event-socket connections to FreeSWITCH.

``EslConnection`` owns one TCP connection and speaks the protocol itself,
over ``protocol.py``: every command has a deadline, a missed reply or a dead
socket fails everything that waits on the connection, writes go out whole
under a lock, frames are parsed from whole buffers by
``protocol.FrameReader``, and errors come out as ``eslengine.errors``
exceptions. ``NodeLink`` keeps one such connection to a node alive.

Greenlets per connection: a reader (``receive_events``) that never runs user
code, and a dispatcher (``process_events``) that hands events to ``on_event``
one at a time, in arrival order, then calls ``on_close`` once.

Replies are matched to commands by order: mod_event_socket's
``listener_run`` reads one command, runs ``parse_command`` and writes its
reply before it reads the next, and a ``command/reply`` or ``api/response``
names no command. BACKGROUND_JOB events are matched by their ``Job-UUID``.
"""

from __future__ import annotations

import functools
import logging
import random
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gevent
import gevent.event
import gevent.lock
import gevent.queue
import gevent.socket

from . import metrics, protocol
from .config import Node
from .errors import EslAuthError, EslCommandError, EslConnectionError, EslError, EslNotSent, EslTimeout
from .protocol import Event, Frame

log = logging.getLogger(__name__)

DEFAULT_EVENTS = (
    "BACKGROUND_JOB",
    "CHANNEL_CREATE",
    "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER",
    "CHANNEL_BRIDGE",
    "CHANNEL_UNBRIDGE",
    "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE",
)

EVENT_FORMATS = ("plain", "json")

# One recv() takes up to this much; a busy switch sends a few kB per event,
# so one wake-up parses dozens of events.
READ_SIZE = 256 * 1024

# Queue marker after the last event of a connection.
_CLOSED = object()

EventHandler = Callable[[Event], None]
Filter = tuple[str, str]  # (header, value) of an ESL event filter
CloseHandler = Callable[["EslConnection", "BaseException | None"], None]


def _describe(command: str) -> str:
    """A command as it may appear in logs and errors: never a password."""
    verb = command.split(" ", 1)[0]
    if verb in ("auth", "userauth"):
        return verb
    return command if len(command) <= 120 else command[:117] + "..."


def check_filter(header: str, value: str) -> None:
    """Refuse a filter that would not be one ``filter`` line: a header with
    blanks, or either part empty or holding a line break."""
    if not header or any(c in header for c in " \t\r\n") or not value or "\r" in value or "\n" in value:
        raise ValueError("not an event filter: %r %r" % (header, value))


def filter_command(header: str, value: str, *, delete: bool = False) -> str:
    """The ``filter`` command for (header, value). Once a connection has a
    filter, FreeSWITCH sends it only the events that pass one: a header the
    event has, equal to the value in any case, or, for a value written
    ``/regex/``, matching it (mod_event_socket's event_handler)."""
    check_filter(header, value)
    return "filter %s%s %s" % ("delete " if delete else "", header, value)


class BackgroundJob:
    """A ``bgapi`` command waiting for its BACKGROUND_JOB event.

    It resolves when an event with the same Job-UUID arrives on its
    connection, and fails with ``EslConnectionError`` when that connection
    ends first.
    """

    __slots__ = ("job_uuid", "command", "event", "_result", "__weakref__")

    def __init__(self, job_uuid: str, command: str) -> None:
        self.job_uuid = job_uuid
        self.command = command
        self.event: Event | None = None
        self._result: gevent.event.AsyncResult = gevent.event.AsyncResult()

    def result(self, timeout: float | None) -> tuple[bool, str]:
        """``(True, uuid)`` for ``+OK <uuid>``, ``(False, "USER_BUSY")`` for
        ``-ERR USER_BUSY``, ``(False, "-USAGE: ...")`` for anything else.

        Raises ``EslTimeout`` after ``timeout`` seconds (the job stays pending
        and may be asked again); ``None`` waits until the event arrives or the
        connection ends. Raises ``EslConnectionError`` if the connection ended
        before the event arrived.
        """
        try:
            body: str = self._result.get(timeout=timeout)
        except gevent.Timeout as exc:
            raise EslTimeout("job %s: no BACKGROUND_JOB within %ss" % (self.job_uuid, timeout)) from exc
        except EslConnectionError as exc:
            raise EslConnectionError("job %s: %s" % (self.job_uuid, exc)) from exc
        return protocol.job_result(body)

    def ready(self) -> bool:
        return bool(self._result.ready())

    def add_done_callback(self, callback: Callable[[BackgroundJob], None]) -> None:
        """Call ``callback(job)`` once the job has its result (or failed);
        ``result(None)`` then answers at once. The callback runs in the
        hub: it must not block (a ``Queue.put`` is fine). The connection
        keeps pending jobs only weakly: whoever waits must hold the job."""
        self._result.rawlink(lambda _: callback(self))

    def _resolve(self, event: Event) -> None:
        self.event = event
        self._result.set(event.body)

    def _fail(self, exc: BaseException) -> None:
        if not self._result.ready():
            self._result.set_exception(exc)

    def __repr__(self) -> str:
        return "<BackgroundJob %s %s>" % (self.job_uuid, "ready" if self.ready() else "pending")


class EslConnection:
    """One authenticated inbound connection to one FreeSWITCH node.

    Replies are matched to commands by order, as the protocol requires, so a
    command that gets no reply within its deadline closes the connection:
    the command raises ``EslTimeout`` and everything else pending fails with
    ``EslConnectionError``. EOF, a socket error, a disconnect-notice or
    ``close()`` fail everything pending the same way. After a successful
    ``connect()``, ``on_close(conn, exc)`` is called exactly once, from the
    dispatcher greenlet after the last event was delivered; ``exc`` is None
    when ``close()`` ended the connection.

    ``on_event`` runs in the dispatcher greenlet and must be short: events
    queue up behind it. An exception it raises is logged and dropped.

    As a context manager it connects on entry and closes on exit.
    """

    def __init__(
        self,
        node: Node,
        *,
        timeout: float = 5.0,
        events: Sequence[str] = DEFAULT_EVENTS,
        event_format: str = "plain",
        on_event: EventHandler | None = None,
        on_close: CloseHandler | None = None,
        filters: Sequence[Filter] = (),
    ) -> None:
        if event_format not in EVENT_FORMATS:
            raise ValueError("event_format must be one of %s, got %r" % (", ".join(EVENT_FORMATS), event_format))
        if timeout <= 0:
            raise ValueError("timeout must be positive, got %r" % timeout)
        self.node = node
        self.timeout = timeout
        self.events = tuple(events)
        self.event_format = event_format
        self.filters = tuple(filters)
        # The filters the switch has acknowledged on this connection.
        self.filters_set: set[Filter] = set()
        self._on_event = on_event
        self._on_close = on_close
        self._reader = protocol.FrameReader()
        self._write_lock = gevent.lock.Semaphore()
        # Commands written and not yet answered, oldest first:
        # (what, waiter, when it was written by time.monotonic()).
        self._commands_sent: deque[tuple[str, gevent.event.AsyncResult, float]] = deque()
        self._jobs: weakref.WeakValueDictionary[str, BackgroundJob] = weakref.WeakValueDictionary()
        # Set by the switch's auth/request greeting, or by the end of the connection.
        self._greeted = gevent.event.Event()
        # Events for the dispatcher, then _CLOSED.
        self._event_queue: gevent.queue.Queue = gevent.queue.Queue()
        self._receive_events_greenlet: gevent.Greenlet | None = None
        self._process_events_greenlet: gevent.Greenlet | None = None
        self._connected = False
        self._established = False
        self._closed = False
        self._close_reason: BaseException | None = None
        self.sock: gevent.socket.socket | None = None
        # eslengine_esl_command_seconds by command word, for this node.
        self._latency: dict[str, Any] = {}

    @property
    def label(self) -> str:
        return self.node.label

    @property
    def host(self) -> str:
        return self.node.host

    @property
    def port(self) -> int:
        return self.node.port

    @property
    def password(self) -> str:
        return self.node.password

    @property
    def connected(self) -> bool:
        return self._connected and not self._closed

    def __enter__(self) -> EslConnection:
        self.connect()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def connect(self) -> None:
        """TCP connect, wait for ``auth/request``, ``auth`` (or ``userauth``
        when ``node.user`` is set), set ``filters``, then subscribe to
        ``events``; each step within ``timeout``. With filters, the switch
        sends only the events that pass one of them (``filter_command``).

        Raises ``EslConnectionError`` (cannot connect, or closed by the switch),
        ``EslAuthError`` (password refused), ``EslTimeout`` (a step got no
        answer) or ``EslCommandError`` (the subscription was refused). On any
        failure the socket is closed and ``on_close`` is not called.
        """
        if self.sock is not None:
            raise RuntimeError("%s: an EslConnection connects once; make a new one" % self.label)
        try:
            self.sock = gevent.socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:  # includes socket.timeout
            raise EslConnectionError("%s: cannot connect: %s" % (self.label, exc)) from exc
        self.sock.settimeout(None)
        self.sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
        self._connected = True
        self._receive_events_greenlet = gevent.spawn(self.receive_events)
        self._process_events_greenlet = gevent.spawn(self.process_events)
        done = False
        try:
            if not self._greeted.wait(timeout=self.timeout):
                raise EslTimeout("%s: no auth/request greeting within %ss" % (self.label, self.timeout))
            if self._closed:
                raise EslConnectionError("%s: closed before auth: %s" % (self.label, self._close_reason))
            self.authenticate()
            for header, value in self.filters:
                self.set_filter(header, value)
            if self.events:
                self.command("event %s %s" % (self.event_format, " ".join(self.events)))
            if self._closed:
                raise EslConnectionError("%s: closed while connecting: %s" % (self.label, self._close_reason))
            # No yield between the check above and this line: a close from
            # now on reaches on_close.
            self._established = True
            done = True
        finally:
            if not done:
                self._shut(EslConnectionError("%s: connect failed" % self.label))
        log.info("%s: event socket connected (%s events)", self.label, self.event_format)

    def authenticate(self) -> None:
        if self.node.user:
            command = "userauth %s:%s" % (self.node.user, self.password)
        else:
            command = "auth %s" % self.password
        frame = self.send(command)
        reply = frame.headers.get("Reply-Text", "")
        if not reply.startswith("+OK"):
            raise EslAuthError("%s: %s refused: %s" % (self.label, _describe(command), reply))

    def command(self, command: str, timeout: float | None = None) -> str:
        """Send a command answered by ``command/reply`` (``event``, ``filter``,
        ``nixevent`` ...) and return its Reply-Text; ``-ERR`` raises
        ``EslCommandError``."""
        frame = self.send(command, timeout=timeout)
        reply = frame.headers.get("Reply-Text", "")
        if reply.startswith("-ERR"):
            raise EslCommandError(_describe(command), reply)
        return reply

    def set_filter(self, header: str, value: str) -> None:
        """Pass the events whose ``header`` is ``value`` as well (see
        ``filter_command``)."""
        self.command(filter_command(header, value))
        self.filters_set.add((header, value))

    def unset_filter(self, header: str, value: str) -> None:
        self.command(filter_command(header, value, delete=True))
        self.filters_set.discard((header, value))

    def api(self, command: str, timeout: float | None = None) -> str:
        """``api <command>`` and its response body, ``-ERR ...`` bodies included."""
        frame = self.send("api " + command, timeout=timeout)
        if frame.content_type != protocol.API_RESPONSE:
            raise EslCommandError(_describe("api " + command), frame.headers.get("Reply-Text", frame.content_type))
        return frame.body

    def bgapi(self, command: str, job_uuid: str | None = None, timeout: float | None = None, *,
              guard: Callable[[], None] | None = None) -> BackgroundJob:
        """``bgapi <command>`` with a ``Job-UUID`` header (``job_uuid`` or a
        new uuid4). Returns once the switch accepted the job; the job is
        registered before anything is written, so a BACKGROUND_JOB that
        overtakes the reply still resolves it. A ``-ERR`` reply raises
        ``EslCommandError``. ``guard``: see ``send``."""
        job_uuid = job_uuid or str(uuid.uuid4())
        protocol.encode_command("bgapi " + command, {"Job-UUID": job_uuid})  # refuse CR/LF before registering
        if job_uuid in self._jobs:
            raise ValueError("%s: Job-UUID %s is already pending" % (self.label, job_uuid))
        job = BackgroundJob(job_uuid, command)
        self._jobs[job_uuid] = job
        accepted = False
        try:
            frame = self.send("bgapi " + command, {"Job-UUID": job_uuid}, timeout=timeout, guard=guard)
            reply = frame.headers.get("Reply-Text", "")
            if not reply.startswith("+OK"):
                raise EslCommandError(_describe("bgapi " + command), reply)
            accepted = True
        finally:
            if not accepted and self._jobs.get(job_uuid) is job:
                del self._jobs[job_uuid]
        echoed = frame.headers.get("Job-UUID", job_uuid)
        if echoed != job_uuid:
            log.warning("%s: sent Job-UUID %s, switch answered %s", self.label, job_uuid, echoed)
            if self._jobs.get(job_uuid) is job:
                del self._jobs[job_uuid]
            job.job_uuid = echoed
            if not job.ready():
                self._jobs[echoed] = job
        return job

    def send(self, command: str, headers: dict[str, str] | None = None,
             timeout: float | None = None, *, guard: Callable[[], None] | None = None) -> Frame:
        """Write one command frame and return its reply frame.

        ``ValueError`` if the command or a header holds CR/LF (nothing is
        written); ``EslConnectionError`` if the connection is or goes down;
        ``EslTimeout`` if no reply comes within ``timeout`` (default: the
        connection's), which also closes the connection. ``guard`` is called
        last before the write, with nothing that yields between the two;
        whatever it raises is raised and nothing is written.
        """
        raw = protocol.encode_command(command, headers)
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        what = _describe(command)
        if not self.connected:
            raise EslNotSent("%s: not connected (%s)" % (self.label, what))
        if not self._write_lock.acquire(timeout=timeout):
            raise EslNotSent("%s: %s: could not write within %ss" % (self.label, what, timeout))
        try:
            if not self.connected:
                raise EslNotSent("%s: not connected (%s)" % (self.label, what))
            if guard is not None:
                guard()
            waiter = gevent.event.AsyncResult()
            self._commands_sent.append((what, waiter, time.monotonic()))
            try:
                # Nearly always the whole command fits the socket buffer: one
                # send() without the timer (and the getsockopt) of sendall.
                try:
                    sent = self.sock.send(raw, 0, 0.0)  # type: ignore[union-attr]
                except BlockingIOError:
                    sent = 0
                if sent < len(raw):
                    with gevent.Timeout(max(deadline - time.monotonic(), 0.0)):
                        self.sock.sendall(raw[sent:])  # type: ignore[union-attr]
            except gevent.Timeout as exc:
                error = EslTimeout("%s: %s: write blocked for %ss" % (self.label, what, timeout))
                self._shut(EslConnectionError("%s: stalled writing %s" % (self.label, what)), cause=error)
                raise error from exc
            except OSError as exc:
                lost = EslConnectionError("%s: write failed: %s" % (self.label, exc))
                self._shut(lost, cause=exc)
                raise lost from exc
        finally:
            self._write_lock.release()
        try:
            frame: Frame = waiter.get(timeout=max(deadline - time.monotonic(), 0.0))
        except gevent.Timeout as exc:
            error = EslTimeout("%s: %s: no reply within %ss" % (self.label, what, timeout))
            self._shut(
                EslConnectionError("%s: closed after %s got no reply within %ss" % (self.label, what, timeout)),
                cause=error,
            )
            raise error from exc
        except EslConnectionError as exc:
            raise EslConnectionError("%s: %s: %s" % (self.label, what, exc)) from exc
        return frame

    def _replied(self, what: str, sent: float) -> None:
        """A command written at ``sent`` has its reply: observe its latency."""
        word = what.partition(" ")[0]
        child = self._latency.get(word)
        if child is None:
            child = self._latency[word] = metrics.ESL_COMMAND_SECONDS.labels(self.label, metrics.command_label(word))
        child.observe(time.monotonic() - sent)

    def unanswered_for(self, now: float) -> float:
        """How long the oldest command written on this connection has gone
        without its reply (0 when none is waiting)."""
        sent = self._commands_sent
        return now - sent[0][2] if sent else 0.0

    def close(self) -> None:
        """Close the socket and fail everything pending; idempotent."""
        self._shut(None)

    def stop(self) -> None:
        self.close()

    # -- reader greenlet -------------------------------------------------

    def receive_events(self) -> None:
        sock = self.sock
        assert sock is not None
        reason: BaseException
        try:
            while True:
                try:
                    data = sock.recv(READ_SIZE)
                except OSError as exc:
                    if self._closed:
                        return
                    reason = EslConnectionError("%s: socket error: %s" % (self.label, exc))
                    reason.__cause__ = exc
                    break
                if not data:
                    reason = EslConnectionError("%s: connection closed by the switch" % self.label)
                    break
                self._reader.feed(data)
                try:
                    for frame in self._reader.frames():
                        self._on_frame(frame)
                        if self._closed:
                            return
                except protocol.ProtocolError as exc:
                    reason = EslConnectionError("%s: bad frame: %s" % (self.label, exc))
                    reason.__cause__ = exc
                    break
                if self._closed:
                    return
        except Exception:
            log.exception("%s: event socket reader failed", self.label)
            reason = EslConnectionError("%s: reader failed" % self.label)
        self._shut(reason)

    def _on_frame(self, frame: Frame) -> None:
        kind = frame.content_type
        if kind in (protocol.EVENT_PLAIN, protocol.EVENT_JSON):
            try:
                event = protocol.parse_event(frame)
            except protocol.ProtocolError as exc:
                log.warning("%s: dropped an unreadable event: %s", self.label, exc)
                return
            if event.name == "BACKGROUND_JOB":
                job = self._jobs.pop(event.headers.get("Job-UUID", ""), None)
                if job is not None:
                    job._resolve(event)
            self._event_queue.put(event)
        elif kind in (protocol.COMMAND_REPLY, protocol.API_RESPONSE):
            if not self._commands_sent:
                log.warning("%s: %s with no command waiting, dropped", self.label, kind)
                return
            what, waiter, sent = self._commands_sent.popleft()
            self._replied(what, sent)
            waiter.set(frame)
        elif kind == protocol.AUTH_REQUEST:
            self._greeted.set()
        elif kind == protocol.DISCONNECT_NOTICE:
            if frame.headers.get("Content-Disposition") == "linger":
                return
            self._shut(EslConnectionError("%s: disconnected by the switch: %s" % (self.label, frame.body.strip())))
        elif kind == protocol.RUDE_REJECTION:
            self._shut(EslConnectionError("%s: rejected by the switch: %s" % (self.label, frame.body.strip())))
        else:
            log.debug("%s: ignored %s frame", self.label, kind or "untyped")

    # -- dispatcher greenlet ---------------------------------------------

    def process_events(self) -> None:
        queue = self._event_queue
        while True:
            # Unbounded wait by design: _shut() always queues _CLOSED.
            event = queue.get()
            if event is _CLOSED:
                break
            if self._on_event is None:
                continue
            try:
                self._on_event(event)
            except Exception:
                log.exception("%s: event handler failed on %s", self.label, event.name)
        if self._established and self._on_close is not None:
            try:
                self._on_close(self, self._close_reason)
            except Exception:
                log.exception("%s: close handler failed", self.label)

    # -- teardown --------------------------------------------------------

    def _shut(self, reason: EslConnectionError | None, cause: BaseException | None = None) -> None:
        """End the connection once: close the socket, fail every pending
        command and job with ``reason`` (or a plain "closed" error), and let
        the dispatcher finish with ``on_close``."""
        if self._closed:
            return
        self._closed = True
        self._connected = False
        if reason is not None and cause is not None and reason.__cause__ is None:
            reason.__cause__ = cause
        self._close_reason = reason
        if reason is None:
            log.info("%s: event socket closed", self.label)
        elif self._established:
            log.warning("%s: event socket lost: %s", self.label, reason)
        failure = reason if reason is not None else EslConnectionError("%s: connection closed" % self.label)
        pending, self._commands_sent = self._commands_sent, deque()
        for _, waiter, _ in pending:
            waiter.set_exception(failure)
        jobs = list(self._jobs.values())
        self._jobs.clear()
        for job in jobs:
            job._fail(failure)
        # Wake a connect() still waiting for the greeting.
        self._greeted.set()
        if self.sock is not None:
            self.sock.close()
        self._event_queue.put(_CLOSED)


def _record_close(closed: gevent.event.Event, reasons: list[BaseException | None],
                  _conn: EslConnection, exc: BaseException | None) -> None:
    reasons.append(exc)
    closed.set()


class NodeLink:
    """Keeps one EslConnection to a node alive: reconnects with capped
    exponential backoff + jitter.

    ``on_up(link)`` runs after each successful connect, ``on_down(link, exc)``
    after each connection ended and its last event was delivered; both run in
    the link's greenlet. A refused password is retried like any other failure
    (and logged as an error), so fixing the switch's config heals the link.
    """

    def __init__(
        self,
        node: Node,
        *,
        timeout: float,
        on_event: EventHandler | None,
        on_up: Callable[[NodeLink], None] | None = None,
        on_down: Callable[[NodeLink, BaseException | None], None] | None = None,
        max_delay: float = 10.0,
        events: Sequence[str] = DEFAULT_EVENTS,
        event_format: str = "plain",
        min_delay: float = 0.5,
        filters: Sequence[Filter] = (),
    ) -> None:
        for header, value in filters:
            check_filter(header, value)
        if not 0 < min_delay <= max_delay:
            raise ValueError("need 0 < min_delay <= max_delay, got %r, %r" % (min_delay, max_delay))
        self.node = node
        self.timeout = timeout
        self.events = tuple(events)
        self.event_format = event_format
        self.max_delay = max_delay
        self.min_delay = min_delay
        # Every connection gets these, in this order (an ordered set).
        self._filters: dict[Filter, None] = dict.fromkeys(filters)
        self._on_event = on_event
        self._on_up = on_up
        self._on_down = on_down
        self._conn: EslConnection | None = None
        self._up = gevent.event.Event()
        self._stopping = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None

    @property
    def label(self) -> str:
        return self.node.label

    @property
    def up(self) -> bool:
        conn = self._conn
        return conn is not None and conn.connected

    @property
    def connection(self) -> EslConnection | None:
        return self._conn

    def start(self) -> None:
        if self._greenlet is not None:
            raise RuntimeError("%s: NodeLink already started" % self.label)
        metrics.esl_state(self.label, False)
        self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reconnecting and close the connection; waits up to ``timeout``
        for the link's greenlet (and so ``on_down``) to finish."""
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            conn.close()
        if self._greenlet is not None:
            self._greenlet.join(timeout=timeout)
            if not self._greenlet.dead:
                log.warning("%s: link did not stop within %ss, killing it", self.label, timeout)
                self._greenlet.kill(block=False)

    def wait_up(self, timeout: float) -> bool:
        return bool(self._up.wait(timeout=timeout)) and self.up

    def unanswered_for(self, now: float) -> float:
        """``EslConnection.unanswered_for`` of the connection up now (0 without one)."""
        conn = self._conn
        return conn.unanswered_for(now) if conn is not None else 0.0

    def api(self, command: str, timeout: float | None = None) -> str:
        return self._live().api(command, timeout=timeout)

    @property
    def filters(self) -> list[Filter]:
        return list(self._filters)

    def add_filter(self, header: str, value: str) -> None:
        """Pass the events whose ``header`` is ``value`` too, from now on and
        on every later connection. Set at once when the link is up; if that
        fails, the connection is failing and the next one sets it."""
        check_filter(header, value)
        if (header, value) in self._filters:
            return
        self._filters[(header, value)] = None
        conn = self._conn
        if conn is not None and conn.connected:
            self._set_filter(conn, (header, value))

    def remove_filter(self, header: str, value: str) -> None:
        """Undo ``add_filter`` (a failure only means the filter lasts as
        long as this connection)."""
        if (header, value) not in self._filters:
            return
        del self._filters[(header, value)]
        conn = self._conn
        if conn is not None and conn.connected and (header, value) in conn.filters_set:
            self._unset_filter(conn, (header, value))

    def _unset_filter(self, conn: EslConnection, item: Filter) -> None:
        try:
            conn.unset_filter(*item)
        except EslError as exc:
            log.debug("%s: filter delete %s %s: %s", self.label, item[0], item[1], exc)

    def _set_filter(self, conn: EslConnection, item: Filter) -> None:
        try:
            conn.set_filter(*item)
        except EslError as exc:
            log.warning("%s: filter %s %s not set: %s", self.label, item[0], item[1], exc)

    def bgapi(self, command: str, job_uuid: str | None = None, timeout: float | None = None, *,
              guard: Callable[[], None] | None = None) -> BackgroundJob:
        return self._live().bgapi(command, job_uuid=job_uuid, timeout=timeout, guard=guard)

    def _live(self) -> EslConnection:
        conn = self._conn
        if conn is None or not conn.connected:
            raise EslNotSent("%s: event socket is down" % self.label)
        return conn

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.min_delay * (2 ** min(attempt, 30)))
        return random.uniform(ceiling / 2, ceiling)

    def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            closed = gevent.event.Event()
            reasons: list[BaseException | None] = []
            conn = EslConnection(
                self.node,
                timeout=self.timeout,
                events=self.events,
                event_format=self.event_format,
                on_event=self._on_event,
                on_close=functools.partial(_record_close, closed, reasons),
                filters=self.filters,
            )
            try:
                conn.connect()
            except EslAuthError as exc:
                metrics.ESL_CONNECTS.labels(self.label, "auth").inc()
                log.error("%s: %s", self.label, exc)
            except EslError as exc:
                metrics.ESL_CONNECTS.labels(self.label, "failed").inc()
                log.warning("%s: connect failed: %s", self.label, exc)
            else:
                metrics.ESL_CONNECTS.labels(self.label, "ok").inc()
                if self._up_until_closed(conn, closed, reasons):
                    attempt = 0
            delay = self._delay(attempt)
            attempt += 1
            if not self._stopping.is_set():
                log.info("%s: reconnecting in %.2fs", self.label, delay)
            self._stopping.wait(timeout=delay)

    def _up_until_closed(self, conn: EslConnection, closed: gevent.event.Event, reasons: list[BaseException | None]) -> bool:
        """Run one live connection; True if it stayed up long enough that the
        backoff should start over."""
        started = time.monotonic()
        self._conn = conn
        # Filters added or removed while the connection was being made.
        for item in [f for f in self._filters if f not in conn.filters_set]:
            self._set_filter(conn, item)
        for item in [f for f in conn.filters_set if f not in self._filters]:
            self._unset_filter(conn, item)
        self._up.set()
        metrics.esl_state(self.label, True)
        if self._stopping.is_set():
            conn.close()
        elif self._on_up is not None:
            try:
                self._on_up(self)
            except Exception:
                log.exception("%s: on_up handler failed", self.label)
        # Unbounded by design: the connection ends by itself, by its command
        # deadlines, or by stop() closing it.
        closed.wait()
        self._up.clear()
        metrics.esl_state(self.label, False)
        if reasons and reasons[0] is not None:  # not closed by close()
            metrics.ESL_LOST.labels(self.label).inc()
        self._conn = None
        if self._on_down is not None:
            try:
                self._on_down(self, reasons[0] if reasons else None)
            except Exception:
                log.exception("%s: on_down handler failed", self.label)
        return time.monotonic() - started >= self.max_delay

"""FreeSWITCH event-socket wire format, without I/O.

Both ends of the protocol live here as pure functions and one incremental
reader, so the client (``esl.py``) and the simulator
(``fakeswitch/``) agree byte for byte with each other and with the recorded
transcripts.

A frame is a header block ending in a blank line (``\\n\\n``), then exactly
``Content-Length`` bytes of body when that header is present. Event frames
(``text/event-plain`` / ``text/event-json``) carry a second header block in
their body: the event's own headers, URL-encoded in the plain format, followed
by an optional inner ``Content-Length`` and body (BACKGROUND_JOB puts the
command's result there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

import orjson

AUTH_REQUEST = "auth/request"
COMMAND_REPLY = "command/reply"
API_RESPONSE = "api/response"
EVENT_PLAIN = "text/event-plain"
EVENT_JSON = "text/event-json"
DISCONNECT_NOTICE = "text/disconnect-notice"
RUDE_REJECTION = "text/rude-rejection"

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
SHUTDOWN_NOTICE = "The system is being shut down.\n"

# switch_url_encode() leaves everything printable alone except these.
_URL_UNSAFE = frozenset("\r\n \"#%&+:;<=>?@[\\]^`{|}")
# Runs of what it encodes: the above, control characters and non-ASCII.
_URL_ENCODED_RUN = re.compile(
    "[^%s]+" % re.escape("".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in _URL_UNSAFE)))


class ProtocolError(ValueError):
    """Bytes that are not a valid event-socket frame."""


@dataclass(slots=True)
class Frame:
    """One frame off the wire: its header block and its body."""

    headers: dict[str, str]
    body: str = ""

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass(slots=True)
class Event:
    """One FreeSWITCH event: decoded headers and the optional body."""

    headers: dict[str, str]
    body: str = ""

    @property
    def name(self) -> str:
        return self.headers.get("Event-Name", "")

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.headers.get(key, default)

    def variable(self, name: str) -> str | None:
        return self.headers.get("variable_" + name)


@dataclass(slots=True)
class FrameReader:
    """Incremental frame parser: ``feed`` bytes in, ``frames()`` out.

    Works on whole buffers (``bytes.find``), never line by line, so one large
    event costs a handful of slices however many headers it has.
    """

    max_frame: int = 16 * 1024 * 1024
    _buf: bytearray = field(default_factory=bytearray)
    _pending: dict[str, str] | None = None
    _need: int = 0

    def feed(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> Iterator[Frame]:
        while True:
            frame = self._next()
            if frame is None:
                return
            yield frame

    def _next(self) -> Frame | None:
        buf = self._buf
        if self._pending is None:
            # FreeSWITCH ignores blank lines between frames; so do we.
            start = 0
            while start < len(buf) and buf[start] == 0x0A:
                start += 1
            end = buf.find(b"\n\n", start)
            if end < 0:
                if start:
                    del buf[:start]
                if len(buf) > self.max_frame:
                    raise ProtocolError("header block larger than %d bytes" % self.max_frame)
                return None
            headers = parse_header_block(bytes(buf[start:end]).decode("utf-8", "replace"))
            del buf[: end + 2]
            length = headers.get("Content-Length")
            if not length:
                return Frame(headers)
            try:
                need = int(length)
            except ValueError as exc:
                raise ProtocolError("bad Content-Length %r" % length) from exc
            if need < 0 or need > self.max_frame:
                raise ProtocolError("Content-Length %d out of range" % need)
            self._pending, self._need = headers, need
        if len(buf) < self._need:
            return None
        body = bytes(buf[: self._need]).decode("utf-8", "replace")
        del buf[: self._need]
        headers, self._pending = self._pending, None
        return Frame(headers, body)


def parse_header_block(text: str, *, decode: bool = False) -> dict[str, str]:
    """``Key: value`` lines into a dict; ``decode`` URL-decodes the values."""
    headers: dict[str, str] = {}
    for line in text.split("\n"):
        if not line:
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            key, _, value = line.partition(":")
        headers[key] = unquote(value) if decode and "%" in value else value
    return headers


def parse_event(frame: Frame) -> Event:
    """The event carried by a ``text/event-plain`` or ``text/event-json`` frame."""
    if frame.content_type == EVENT_JSON:
        return parse_json_event(frame.body)
    if frame.content_type == EVENT_PLAIN:
        return parse_plain_event(frame.body)
    raise ProtocolError("not an event frame: %r" % frame.content_type)


def parse_plain_event(text: str) -> Event:
    head, sep, rest = text.partition("\n\n")
    headers = parse_header_block(head, decode=True)
    body = ""
    length = headers.get("Content-Length")
    if sep and length:
        try:
            body = rest[: int(length)]
        except ValueError as exc:
            raise ProtocolError("bad inner Content-Length %r" % length) from exc
    return Event(headers, body)


def parse_json_event(text: str) -> Event:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        # orjson is strict (raw control characters, lone surrogates);
        # whatever the switch sends, the lenient parser gets a second look.
        try:
            data = json.loads(text, strict=False)
        except ValueError as exc:
            raise ProtocolError("event-json body is not JSON") from exc
    if not isinstance(data, dict):
        raise ProtocolError("event-json body is not an object")
    body = data.pop("_body", "")
    for key, value in data.items():  # keys are str already; values nearly always
        if value.__class__ is not str:
            data[key] = str(value)
    return Event(data, body if body.__class__ is str else str(body))


def url_encode(value: str) -> str:
    """Percent-encode a header value the way ``switch_url_encode`` does."""
    return _URL_ENCODED_RUN.sub(_percent_encode, value)


def _percent_encode(run: re.Match[str]) -> str:
    return "".join(["%%%02X" % b for b in run.group().encode("utf-8")])


def format_plain_event(headers: Iterable[tuple[str, str]], body: str = "") -> str:
    """An event's text for ``text/event-plain``: encoded headers, blank line, body."""
    lines = ["%s: %s\n" % (k, url_encode(v)) for k, v in headers]
    if body:
        lines.append("Content-Length: %d\n\n" % len(body.encode("utf-8")))
        lines.append(body)
    else:
        lines.append("\n")
    return "".join(lines)


def format_json_event(headers: Iterable[tuple[str, str]], body: str = "") -> str:
    """An event's text for ``text/event-json``: a compact object, no trailing LF."""
    data = dict(headers)
    if body:
        data["Content-Length"] = str(len(body.encode("utf-8")))
        data["_body"] = body
    try:
        return orjson.dumps(data).decode("utf-8")
    except orjson.JSONEncodeError:  # a lone surrogate: no UTF-8 for it
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def encode_frame(headers: Iterable[tuple[str, str]], body: str = "", *, length_first: bool = False) -> bytes:
    """A server frame. ``length_first`` puts Content-Length before the other
    headers, as FreeSWITCH does for event frames."""
    raw = body.encode("utf-8")
    head = ["%s: %s\n" % (k, v) for k, v in headers]
    if raw:
        length = "Content-Length: %d\n" % len(raw)
        head.insert(0, length) if length_first else head.append(length)
    return ("".join(head) + "\n").encode("utf-8") + raw


def encode_command(command: str, headers: Mapping[str, str] | None = None) -> bytes:
    """A client command frame. Refuses a line break anywhere: one would end the
    frame early and let the rest run as a second command."""
    parts = [command]
    for key, value in (headers or {}).items():
        parts.append("%s: %s" % (key, value))
    for part in parts:
        if "\n" in part or "\r" in part:
            raise ValueError("line break in ESL command %r" % part[:80])
    return ("\n".join(parts) + "\n\n").encode("utf-8")


def job_result(body: str) -> tuple[bool, str]:
    """Split a BACKGROUND_JOB / api body into (ok, rest): ``+OK <uuid>`` →
    ``(True, uuid)``, ``-ERR USER_BUSY`` → ``(False, "USER_BUSY")``, a usage
    reply → ``(False, "-USAGE: ...")``."""
    text = body.strip()
    if text.startswith("+OK"):
        return True, text[3:].strip()
    if text.startswith("-ERR"):
        return False, text[4:].strip()
    return False, text


def fsctl_limit(body: str) -> int | None:
    """The number in ``fsctl sps`` / ``fsctl max_sessions``'s answer
    (``+OK sessions per second: 30``, ``+OK max sessions: 1000``, as
    mod_commands.c's ctl_function writes them), or None for any other
    answer (``-ERR permission denied``, a usage text) or a number below 1."""
    text = body.strip()
    if not text.startswith("+OK") or ":" not in text:
        return None
    value = text.rpartition(":")[2].strip()
    if not value.isdigit() or not value.isascii():
        return None
    number = int(value)
    return number if number >= 1 else None

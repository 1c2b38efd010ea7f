"""A call's status changes as Server-Sent Events, for any client:

    GET /v1/calls/<id>/events            (a key that may read the call)

One ``status`` event a status change, in order, as soon as the record shows
it (read every ``POLL`` seconds): ``id:`` is the change's place in the
call's history, ``data:`` a JSON object with ``status`` and ``at``; the
newest one also carries ``call``, the document ``GET /v1/calls/<id>``
answers. The stream ends after the final status (completed, failed or
cancelled). A reconnecting client sends ``Last-Event-ID`` and gets only
the changes after it. A comment line every ``HEARTBEAT`` seconds keeps
proxies from closing a quiet stream; a stream ends after ``LIMIT`` seconds
(the client reconnects). Polling stays available: ``GET /v1/calls/<id>``.

``follow`` is the stream itself, with the reading, the clock and the sleep
passed in, so it is tested without a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from ..status import FINAL

POLL = 0.25
HEARTBEAT = 15.0
LIMIT = 3600.0
# How long a client waits before reconnecting (the SSE "retry:" field).
RECONNECT_MS = 2000
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def gevent_sleep(seconds: float) -> None:
    """The stream's sleep under the API's gevent workers."""
    import gevent

    gevent.sleep(seconds)


def frame(event: str, data: Mapping[str, Any], event_id: str | None = None) -> bytes:
    """One event in the text/event-stream format (JSON on one data line)."""
    head = b"id: %s\n" % event_id.encode() if event_id is not None else b""
    return head + b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def last_event_id(value: str | None) -> int:
    """The history place a reconnecting client saw last (-1: none)."""
    if value and value.isascii() and value.isdigit() and len(value) < 6:
        return int(value)
    return -1


def follow(read: Callable[[], Mapping[str, Any] | None], *, after: int = -1, poll: float = POLL,
           heartbeat: float = HEARTBEAT, limit: float = LIMIT, clock: Callable[[], float] = time.monotonic,
           sleep: Callable[[float], Any] = time.sleep) -> Iterator[bytes]:
    """The events of the call ``read()`` returns (its document, or None
    once it is gone), from history place ``after + 1`` on."""
    yield b"retry: %d\n\n" % RECONNECT_MS
    start = quiet_since = clock()
    sent = after + 1
    while True:
        document = read()
        if document is None:
            yield frame("gone", {"reason": "the call's record is gone"})
            return
        history = document.get("history") or []
        for place in range(sent, len(history)):
            item = history[place]
            data: dict[str, Any] = {"status": item["status"], "at": item["at"]}
            if place == len(history) - 1:
                data["call"] = document
            yield frame("status", data, str(place))
            quiet_since = clock()
        sent = max(sent, len(history))
        if document.get("status") in FINAL and sent >= len(history):
            return
        now = clock()
        if now - start >= limit:
            return
        if now - quiet_since >= heartbeat:
            yield b": keep-alive\n\n"
            quiet_since = now
        sleep(poll)

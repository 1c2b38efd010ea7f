"""One JSON object per log line (``ESLENGINE_LOG_FORMAT=json``), for log
shippers; the text format stays the default for a terminal.

Each line has ``ts`` (UTC, milliseconds), ``level``, ``logger``, ``pid``
and ``msg``, and when known: ``job_id``, ``node``, ``worker``, ``event``
and ``cause``, plus ``exc`` (the traceback) for a logged exception.

Those fields come from the record's own attributes when a call passes them
(``log.info(..., extra={"job_id": ...})``), else from the message, whose
wording follows fixed conventions: a message about one call starts
``job <id>: ``, one about a node ``node <label>: ``, one about a worker
``worker <name>: ``; ``cause=<CAUSE>`` names a hangup cause; a status
word right after the call's prefix (``job <id>: completed cause=...``) is
the event. ``context`` holds fields every line of the process carries (a
worker sets its name there). Pure apart from the clock in the record.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import orjson

FIELDS = ("job_id", "node", "worker", "event", "cause")
EVENTS = frozenset({"queued", "dialing", "ringing", "answered", "bridged", "completed", "failed", "cancelled",
                    "skipped_dnc"})
_PREFIX = re.compile(r"(job|node|worker) ([^\s:]+(?::\d+)?): ")
_CAUSE = re.compile(r"\bcause=([A-Z][A-Z0-9_]{0,63})\b")
_FIELD_OF = {"job": "job_id", "node": "node", "worker": "worker"}

# Fields every line of this process carries (set_context).
context: dict[str, str] = {}


def set_context(**fields: str) -> None:
    """Fields every later line of this process carries, e.g. ``worker``."""
    context.update({k: v for k, v in fields.items() if v})


def fields_of(message: str) -> dict[str, str]:
    """``job_id``, ``node``, ``worker``, ``event`` and ``cause`` as the
    message's wording names them."""
    found: dict[str, str] = {}
    match = _PREFIX.match(message)
    if match is not None:
        found[_FIELD_OF[match.group(1)]] = match.group(2)
        if match.group(1) == "job":
            word = message[match.end():].split(" ", 1)[0].rstrip(":;,.")
            if word in EVENTS:
                found["event"] = word
    cause = _CAUSE.search(message)
    if cause is not None:
        found["cause"] = cause.group(1)
    return found


def _timestamp(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + ".%03dZ" % (int(created * 1000) % 1000)


class JsonFormatter(logging.Formatter):
    """``logging.Formatter`` writing one JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {"ts": _timestamp(record.created), "level": record.levelname,
                                "logger": record.name, "pid": record.process or os.getpid(), "msg": message}
        line.update(context)
        line.update(fields_of(message))
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                line[name] = str(value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return orjson.dumps(line, default=str).decode()

"""The originate journal (``eslengine fakeswitch --record FILE``): what the
switch received, kept outside the process so the counts survive a SIGKILL
and a restart on the same file.

One JSON object per line, each line a single ``write(2)`` on a file opened
``O_APPEND``, so lines from successive processes never interleave and a
killed process leaves only whole lines behind::

    {"kind": "originate", "t": 1700000000.123, "pid": 4242, "job_id": "<id>",
     "attempt": "2", "bgapi_job_uuid": "<uuid>"}
    {"kind": "result", "t": 1700000001.456, "pid": 4242, "job_id": "<id>",
     "attempt": "2", "bgapi_job_uuid": "<uuid>", "result": "-ERR USER_BUSY"}
    {"kind": "hangup", "t": 1700000003.789, "pid": 4242, "job_id": "<id>",
     "attempt": "2", "leg": "a", "uuid": "<channel uuid>", "cause": "NORMAL_CLEARING", "answered": true}

``job_id`` is the first leg's ``eslengine_job_id`` (None when the command
named none), ``attempt`` its ``eslengine_attempt`` (None when absent),
``bgapi_job_uuid`` the ``Job-UUID`` of a ``bgapi originate`` (None for
``api originate``). A ``result`` line follows when the originate's result is
known, and a ``hangup`` line for every channel carrying ``eslengine_job_id``
when it is destroyed (``leg`` is its ``eslengine_leg``); a process killed
first leaves none.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

JOB_VAR = "eslengine_job_id"
ATTEMPT_VAR = "eslengine_attempt"


class OriginateJournal:
    """Appends to ``path``; ``close()`` when done."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._pid = os.getpid()

    def originate(self, job_id: str | None, attempt: str | None, bgapi_job_uuid: str | None) -> None:
        self._write({"kind": "originate", "job_id": job_id, "attempt": attempt, "bgapi_job_uuid": bgapi_job_uuid})

    def result(self, job_id: str | None, attempt: str | None, bgapi_job_uuid: str | None, result: str) -> None:
        self._write({"kind": "result", "job_id": job_id, "attempt": attempt, "bgapi_job_uuid": bgapi_job_uuid,
                     "result": result.strip()})

    def hangup(self, job_id: str, attempt: str | None, leg: str | None, uuid: str, cause: str,
               answered: bool) -> None:
        self._write({"kind": "hangup", "job_id": job_id, "attempt": attempt, "leg": leg, "uuid": uuid,
                     "cause": cause, "answered": answered})

    def _write(self, entry: dict[str, Any]) -> None:
        if self._fd is None:
            return
        line = json.dumps({"t": round(time.time(), 6), "pid": self._pid, **entry}, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    """Every whole line of a journal, oldest first; a missing file is empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries

"""ESLENGINE_LOG_FORMAT=json: one JSON object a line, with the call's id,
the node, the worker, the event and the cause as fields."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

from eslengine import logformat
from eslengine.logformat import JsonFormatter, fields_of

JOB = "6f1c1bde-26a4-4c4e-9a43-0b3a6b1c2d3e"


@pytest.fixture(autouse=True)
def no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started by other tests in this process set their name."""
    monkeypatch.setattr(logformat, "context", {})


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("eslengine.worker", logging.INFO, __file__, 1, msg, args, exc_info)
    record.created = 1796169600.25  # 2026-12-02T00:00:00.250Z
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.mark.parametrize(("message", "fields"), [
    ("job %s: completed cause=NORMAL_CLEARING" % JOB, {"job_id": JOB, "event": "completed", "cause": "NORMAL_CLEARING"}),
    ("job %s: failed cause=USER_BUSY" % JOB, {"job_id": JOB, "event": "failed", "cause": "USER_BUSY"}),
    ("job %s: attempt 2 refused by 127.0.0.1:8021's throttle" % JOB, {"job_id": JOB}),
    ("node 127.0.0.1:8021: up", {"node": "127.0.0.1:8021"}),
    ("node fs1: the switch allows sps=30 max_sessions=1000", {"node": "fs1"}),
    ("worker host-1-ab12: draining 3 call(s), grace 30s", {"worker": "host-1-ab12"}),
    ("listening on 127.0.0.1:8080", {}),
    ("cause=lowercase is no cause", {}),
])
def test_fields_come_from_the_messages_wording(message: str, fields: dict[str, str]) -> None:
    assert fields_of(message) == fields


def test_a_record_is_one_json_object_on_one_line() -> None:
    line = JsonFormatter().format(_record("job %s: %s cause=%s", JOB, "completed", "NORMAL_CLEARING"))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc == {"ts": "2026-12-02T00:00:00.250Z", "level": "INFO", "logger": "eslengine.worker",
                   "pid": os.getpid(), "msg": "job %s: completed cause=NORMAL_CLEARING" % JOB,
                   "job_id": JOB, "event": "completed", "cause": "NORMAL_CLEARING"}


def test_fields_passed_by_the_caller_win_and_the_context_is_on_every_line() -> None:
    logformat.set_context(worker="w-1", node="")
    doc = json.loads(JsonFormatter().format(_record("placing again", job_id=JOB, node="fs2", cause=None)))
    assert (doc["worker"], doc["job_id"], doc["node"]) == ("w-1", JOB, "fs2")
    assert "cause" not in doc and "event" not in doc


def test_a_traceback_stays_inside_the_line() -> None:
    line = JsonFormatter().format(_record("node fs1: loop error", exc=True))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["node"] == "fs1" and "ValueError: boom" in doc["exc"] and "Traceback" in doc["exc"]


def test_text_that_is_not_json_safe_is_escaped() -> None:
    doc = json.loads(JsonFormatter().format(_record('job %s: "quoted"\nline\x00', JOB)))
    assert doc["msg"] == 'job %s: "quoted"\nline\x00' % JOB


def test_a_process_logs_json_lines_when_told_to() -> None:
    # A real entry point: `eslengine dead` logs its settings warning (an
    # unknown ESLENGINE_* variable) before it fails to reach Redis.
    env = {**os.environ, "ESLENGINE_LOG_FORMAT": "json", "ESLENGINE_COUNTRY": "US",
           "ESLENGINE_REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = subprocess.run([sys.executable, "-m", "eslengine", "dead", "list"], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert lines, proc.stderr
    warning = next(doc for doc in lines if "ESLENGINE_COUNTRY" in doc["msg"])
    assert warning["level"] == "WARNING" and warning["logger"] == "eslengine"

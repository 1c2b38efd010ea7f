"""GET /v1/calls/<id>/events: a call's status changes as Server-Sent Events
(eslengine/http/events.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from eslengine.config import Config
from eslengine.http import create_app, events
from eslengine.store import JobQueue, Keys, connect

KEY = "k-events-5d1e"
AUTH = {"Authorization": "Bearer " + KEY}


@pytest.fixture
def queue(redis_server: Any, key_prefix: str) -> Iterator[JobQueue]:
    client = connect(redis_server.url)
    yield JobQueue(client, Keys(key_prefix), record_ttl=600)
    client.close()


@pytest.fixture
def client(redis_server: Any, key_prefix: str, queue: JobQueue) -> FlaskClient:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY}),
                    allow_unvalidated_numbers=True)
    return create_app(config, queue).test_client()


def place(client: FlaskClient) -> str:
    resp = client.post("/v1/calls", json={"a": "+15551230001", "b": "user/1000"}, headers=AUTH)
    assert resp.status_code == 202, resp.get_json()
    return str(resp.get_json()["id"])


def parse(stream: bytes) -> list[tuple[str | None, str, dict[str, Any]]]:
    """(id, event, data) of each event in a text/event-stream body."""
    out = []
    for block in stream.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        if "event" in fields:
            out.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return out


class Script:
    """Documents a fake call goes through, one per read; a clock that the
    sleeps move."""

    def __init__(self, *steps: list[str] | None) -> None:
        self.steps = list(steps)
        self.now = 0.0
        self.reads = 0

    def read(self) -> dict[str, Any] | None:
        self.reads += 1
        step = self.steps[min(self.reads, len(self.steps)) - 1]
        if step is None:
            return None
        return {"id": "j", "status": step[-1], "history": [{"status": s, "at": "t%d" % i} for i, s in enumerate(step)]}

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(script: Script, **kw: Any) -> bytes:
    return b"".join(events.follow(script.read, clock=lambda: script.now, sleep=script.sleep, **kw))


def test_each_change_once_in_order_ending_with_the_final_one() -> None:
    script = Script(["queued"], ["queued", "dialing", "ringing"], ["queued", "dialing", "ringing"],
                    ["queued", "dialing", "ringing", "answered", "bridged", "completed"])
    body = run(script)
    assert body.startswith(b"retry: 2000\n\n")
    got = parse(body)
    assert [(i, e, d["status"]) for i, e, d in got] == [
        ("0", "status", "queued"), ("1", "status", "dialing"), ("2", "status", "ringing"),
        ("3", "status", "answered"), ("4", "status", "bridged"), ("5", "status", "completed")]
    # The newest change of each read carries the whole document.
    assert [("call" in d) for _, _, d in got] == [True, False, True, False, False, True]
    assert got[-1][2]["call"]["status"] == "completed"
    assert script.reads == 4


def test_a_reconnecting_client_gets_only_what_came_after_its_last_event() -> None:
    script = Script(["queued", "dialing", "failed"])
    assert [i for i, _, _ in parse(run(script, after=0))] == ["1", "2"]
    assert events.last_event_id("1") == 1
    assert [events.last_event_id(v) for v in (None, "", "x", "-1", "1234567", "\u0661")] == [-1] * 6


def test_a_quiet_call_gets_heartbeats_and_the_stream_ends_at_its_limit() -> None:
    script = Script(["queued", "dialing"])
    body = run(script, poll=1.0, heartbeat=5.0, limit=12.0)
    assert body.count(b": keep-alive\n\n") == 2
    assert [e for _, e, _ in parse(body)] == ["status", "status"]


def test_a_record_that_disappears_ends_the_stream() -> None:
    got = parse(run(Script(["queued"], None)))
    assert [e for _, e, _ in got] == ["status", "gone"]


def _stream(client: FlaskClient, job_id: str, headers: dict[str, str] | None = None) -> Iterator[bytes]:
    resp = client.get("/v1/calls/%s/events" % job_id, headers={**AUTH, **(headers or {})}, buffered=False)
    assert resp.status_code == 200
    assert resp.mimetype == "text/event-stream" and resp.headers["Cache-Control"] == "no-cache"
    return iter(resp.response)


def test_the_route_streams_a_calls_changes_as_the_record_moves(client: FlaskClient, queue: JobQueue) -> None:
    job_id = place(client)
    stream = _stream(client, job_id)
    assert next(stream) == b"retry: 2000\n\n"
    assert parse(next(stream))[0][:2] == ("0", "status")
    for status in ("dialing", "answered", "bridged"):
        queue.transition(job_id, status)
    queue.transition(job_id, "completed", {"hangup_cause": "NORMAL_CLEARING"})
    rest = parse(b"".join(stream))
    assert [(i, d["status"]) for i, _, d in rest] == [("1", "dialing"), ("2", "answered"), ("3", "bridged"),
                                                      ("4", "completed")]
    assert rest[-1][2]["call"]["hangup_cause"] == "NORMAL_CLEARING"


def test_the_route_resumes_after_last_event_id(client: FlaskClient, queue: JobQueue) -> None:
    job_id = place(client)
    queue.transition(job_id, "dialing")
    queue.transition(job_id, "failed", {"hangup_cause": "USER_BUSY"})
    got = parse(b"".join(_stream(client, job_id, {"Last-Event-ID": "1"})))
    assert [(i, d["status"]) for i, _, d in got] == [("2", "failed")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}])
def test_the_route_needs_a_key(client: FlaskClient, headers: dict[str, str]) -> None:
    job_id = place(client)
    assert client.get("/v1/calls/%s/events" % job_id, headers=headers).status_code == 401


def test_an_unknown_call_is_404(client: FlaskClient) -> None:
    resp = client.get("/v1/calls/6f1c1bde-26a4-4c4e-9a43-0b3a6b1c2d3e/events", headers=AUTH)
    assert resp.status_code == 404 and resp.get_json()["error"] == "not_found"

"""Webhook delivery: order, retries, no redirects, allow-list at delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from eslengine.calls import parse_request
from eslengine.config import Config
from eslengine.webhooks import Webhooks, signature


class Receiver:
    def __init__(self) -> None:
        self.hits: list[tuple[str, bytes, dict[str, str]]] = []
        self.script: list[int] = []  # status codes to answer, in order; then 204
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.base = "http://127.0.0.1:%d" % self.server.server_port

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.hits.append((environ["PATH_INFO"], environ["wsgi.input"].read(),
                          {k: v for k, v in environ.items() if k.startswith("HTTP_")}))
        code = self.script.pop(0) if self.script else 204
        headers = [("Location", self.base + "/elsewhere")] if code == 302 else []
        start_response("%d X" % code, headers)
        return []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop()


class Records:
    def get(self, job_id: str) -> dict[str, Any]:
        return {"id": job_id, "status": "x", "variables": {"campaign": "c1"}}


def hooks_for(receiver: Receiver, path: str = "/hook") -> tuple[Webhooks, Any]:
    # A fictional number (555-01xx), which libphonenumber does not validate.
    config = Config(webhook_allow=(r"http://127\.0\.0\.1:[0-9]+/hook",), webhook_secret="k",
                    allow_unvalidated_numbers=True)
    request = parse_request({"a": "+15551230001", "b": "+15551230002", "callback_url": receiver.base + path},
                            config)
    return Webhooks(Records(), config), request


def wait_hits(receiver: Receiver, n: int, timeout: float = 10) -> None:
    with gevent.Timeout(timeout):
        while len(receiver.hits) < n:
            gevent.sleep(0.01)


def test_deliveries_are_in_order_and_signed(receiver: Receiver) -> None:
    hooks, request = hooks_for(receiver)
    for status in ("dialing", "ringing", "answered", "completed"):
        hooks.notify(request, status)
    wait_hits(receiver, 4)
    events = [json.loads(body)["event"] for _, body, _ in receiver.hits]
    assert events == ["call.dialing", "call.ringing", "call.answered", "call.completed"]
    path, body, headers = receiver.hits[-1]
    assert headers["HTTP_X_ESLENGINE_SIGNATURE"] == signature("k", body)
    assert json.loads(body)["call"]["variables"] == {"campaign": "c1"}


def test_server_errors_are_retried(receiver: Receiver) -> None:
    receiver.script = [500, 503]
    hooks, request = hooks_for(receiver)
    hooks.notify(request, "completed")
    wait_hits(receiver, 3)
    assert [p for p, _, _ in receiver.hits] == ["/hook"] * 3


def test_redirects_are_not_followed_and_client_errors_not_retried(receiver: Receiver) -> None:
    receiver.script = [302, 302, 302]
    hooks, request = hooks_for(receiver)
    hooks.notify(request, "completed")
    wait_hits(receiver, 3)  # three attempts, all at the allowed URL
    gevent.sleep(0.3)
    assert [p for p, _, _ in receiver.hits] == ["/hook"] * 3
    receiver.hits.clear()
    receiver.script = [404]
    hooks.notify(request, "failed")
    wait_hits(receiver, 1)
    gevent.sleep(1.0)
    assert len(receiver.hits) == 1


def test_url_no_longer_allowed_is_not_delivered(receiver: Receiver) -> None:
    hooks, request = hooks_for(receiver)
    hooks.config = Config(webhook_allow=(r"https://hooks\.example\.com/.*",))
    hooks.notify(request, "completed")
    gevent.sleep(0.5)
    assert receiver.hits == []

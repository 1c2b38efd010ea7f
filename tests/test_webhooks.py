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
from eslengine.errors import WebhookRefused
from eslengine.webhooks import Webhooks, post, signature


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
    config = Config(webhook_allow=(r"http://127\.0\.0\.1:[0-9]+/hook",), webhook_secret="k",
                    webhook_allow_networks=("127.0.0.1/32",))
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


class Resolver:
    """Answers each lookup with the next of its answers (the last one
    forever), remembering what was asked: a name that changes its answer
    between two lookups is a DNS rebinding attack."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_a_receiver_on_a_loopback_address_is_not_called_unless_its_network_is_allowed(receiver: Receiver) -> None:
    with pytest.raises(WebhookRefused) as info:
        post(receiver.base + "/hook", b"{}", {})
    assert "127.0.0.1" in str(info.value)
    assert receiver.hits == []
    assert post(receiver.base + "/hook", b"{}", {}, networks=("127.0.0.0/8",)) == 204
    assert len(receiver.hits) == 1


@pytest.mark.parametrize("addresses", [["10.0.0.7"], ["169.254.169.254"], ["192.168.1.1"], ["::1"], ["fe80::1"],
                                       ["100.64.0.1"], ["0.0.0.0"], ["127.0.0.1", "10.0.0.7"]])
def test_a_name_that_resolves_to_a_refused_address_is_not_called(receiver: Receiver, addresses: list[str]) -> None:
    port = receiver.server.server_port
    with pytest.raises(WebhookRefused):
        post("http://hooks.example.com:%d/hook" % port, b"{}", {}, networks=("127.0.0.0/8",),
             resolver=Resolver(addresses))
    assert receiver.hits == []


def test_the_connection_goes_to_the_address_that_was_checked(receiver: Receiver) -> None:
    # The name resolves to an allowed address once, then to a private one:
    # the delivery looks it up once and connects where that answer said.
    port = receiver.server.server_port
    resolver = Resolver(["127.0.0.1"], ["10.0.0.7"])
    assert post("http://hooks.example.com:%d/hook?a=1" % port, b'{"x":1}', {"X-Test": "1"},
                networks=("127.0.0.1/32",), resolver=resolver) == 204
    assert resolver.asked == [("hooks.example.com", port)]
    path, body, headers = receiver.hits[0]
    assert (path, body) == ("/hook", b'{"x":1}')
    assert headers["HTTP_HOST"] == "hooks.example.com:%d" % port and headers["HTTP_X_TEST"] == "1"

"""Webhook delivery: queued in Redis with every status change, delivered in
order, signed with a timestamp, retried across worker restarts, dropped when
too old; and the address checks made when one is delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
import redis
from gevent.pywsgi import WSGIServer

from eslengine import metrics
from eslengine.calls import CallRequest, parse_request
from eslengine.config import Config
from eslengine.errors import WebhookRefused
from eslengine.store import JobQueue, Keys
from eslengine.webhooks import Backoff, Delivery, Webhooks, post, signature

SECRET = "k"


class Receiver:
    def __init__(self) -> None:
        self.hits: list[tuple[str, bytes, dict[str, str]]] = []
        self.script: list[int] = []  # status codes to answer, in order; then `code`
        self.code = 204
        self.hold: gevent.event.Event | None = None  # answer only once set
        self.in_flight = 0
        self.most_in_flight = 0
        self.server = WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.base = "http://127.0.0.1:%d" % self.server.server_port

    def app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.hits.append((environ["PATH_INFO"], environ["wsgi.input"].read(),
                              {k: v for k, v in environ.items() if k.startswith("HTTP_")}))
            if self.hold is not None:
                self.hold.wait(10)
            code = self.script.pop(0) if self.script else self.code
            headers = [("Location", self.base + "/elsewhere")] if code == 302 else []
            start_response("%d X" % code, headers)
            return []
        finally:
            self.in_flight -= 1

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body, _ in self.hits]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop()


@pytest.fixture
def queue(redis_client: redis.Redis, key_prefix: str) -> JobQueue:
    return JobQueue(redis_client, Keys(key_prefix), record_ttl=600)


# The suite's fictional numbers (555-01xx) are not valid to libphonenumber.
CONFIG = Config(webhook_allow=(r"http://127\.0\.0\.1:[0-9]+/hook",), webhook_secret=SECRET,
                webhook_allow_networks=("127.0.0.1/32",), allow_unvalidated_numbers=True)


def place(queue: JobQueue, receiver: Receiver, config: Config = CONFIG, **extra: Any) -> CallRequest:
    request = parse_request({"a": "+15551230001", "b": "+15551230002", "callback_url": receiver.base + "/hook",
                             "variables": {"campaign": "c1"}, **extra}, config)
    queue.enqueue(request)
    return request


def move(queue: JobQueue, request: CallRequest, *statuses: str) -> None:
    for status in statuses:
        queue.transition(request.id, status)


@pytest.fixture
def senders(queue: JobQueue) -> Iterator[list[Webhooks]]:
    started: list[Webhooks] = []
    yield started
    for sender in started:
        sender.stop(grace=0)


def sender(senders: list[Webhooks], queue: JobQueue, config: Config = CONFIG, **kwargs: Any) -> Webhooks:
    kwargs = {"backoff": Backoff(first=0.05, cap=0.2), "poll": 0.02, **kwargs}
    hooks = Webhooks(queue, config, **kwargs)
    hooks.start()
    senders.append(hooks)
    return hooks


def wait_for(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.01)


def outbox_empty(queue: JobQueue) -> bool:
    return queue.redis.zcard(queue.keys.webhooks) == 0


SIGNATURE = re.compile(r"t=([0-9]+),v1=([0-9a-f]{64})")


def signed(headers: dict[str, str], body: bytes) -> int:
    """The signature's timestamp, once the signature is checked."""
    match = SIGNATURE.fullmatch(headers["HTTP_X_ESLENGINE_SIGNATURE"])
    assert match, headers["HTTP_X_ESLENGINE_SIGNATURE"]
    expected = hmac.new(SECRET.encode(), match.group(1).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(match.group(2), expected)
    return int(match.group(1))


# ---------------------------------------------------------------- queueing


def test_every_status_move_of_a_call_with_a_callback_queues_one_delivery(queue: JobQueue,
                                                                          receiver: Receiver) -> None:
    request = place(queue, receiver)
    queue.claim(request, {"originated": "1"}, worker="w1")  # queued -> dialing
    move(queue, request, "ringing", "ringing", "answered", "dialing", "completed", "failed")
    queue.transition(request.id, fields={"node": "fs1"})
    items = [Delivery.parse(i) for i in queue.pending_webhooks(request.id)]
    assert [(d.id, d.status, d.attempts) for d in items] == [
        (request.id + ".2", "dialing", 0), (request.id + ".3", "ringing", 0),
        (request.id + ".4", "answered", 0), (request.id + ".5", "completed", 0)]
    assert abs(items[0].queued_at - time.time()) < 5
    assert queue.redis.zrange(queue.keys.webhooks, 0, -1) == [request.id]
    # A call without a callback queues nothing.
    plain = parse_request({"a": "+15551230001", "b": "+15551230002"}, CONFIG)
    queue.enqueue(plain)
    queue.transition(plain.id, "dialing")
    assert queue.pending_webhooks(plain.id) == []


def test_a_queued_call_cancelled_through_the_api_queues_its_delivery(queue: JobQueue, receiver: Receiver) -> None:
    request = place(queue, receiver)
    assert queue.request_cancel(request.id) == "cancelled"
    assert [Delivery.parse(i).status for i in queue.pending_webhooks(request.id)] == ["cancelled"]


# ---------------------------------------------------------------- delivering


def test_deliveries_are_in_order_signed_with_a_timestamp_and_name_their_delivery(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    request = place(queue, receiver)
    move(queue, request, "dialing", "ringing", "answered", "completed")
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 4)
    assert receiver.events() == ["call.dialing", "call.ringing", "call.answered", "call.completed"]
    ids = []
    for path, body, headers in receiver.hits:
        payload = json.loads(body)
        assert path == "/hook" and abs(signed(headers, body) - time.time()) < 5
        assert headers["HTTP_X_ESLENGINE_EVENT"] == payload["event"]
        assert headers["HTTP_X_ESLENGINE_DELIVERY"] == payload["delivery"]
        assert payload["call"]["id"] == request.id and payload["call"]["variables"] == {"campaign": "c1"}
        ids.append(payload["delivery"])
    assert len(set(ids)) == 4
    wait_for(lambda: outbox_empty(queue))
    assert queue.pending_webhooks(request.id) == []


def test_a_failed_delivery_is_retried_with_the_same_id_and_later_ones_wait_behind_it(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.script = [500, 503, 429]
    request = place(queue, receiver)
    move(queue, request, "dialing", "completed")
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 5)
    assert receiver.events() == ["call.dialing"] * 4 + ["call.completed"]
    ids = [h["HTTP_X_ESLENGINE_DELIVERY"] for _, _, h in receiver.hits]
    assert ids[:4] == [request.id + ".2"] * 4 and ids[4] == request.id + ".3"
    for _, body, headers in receiver.hits:
        signed(headers, body)


def test_deliveries_wait_in_redis_while_the_receiver_is_down_and_survive_a_worker_restart(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.code = 503  # down
    request = place(queue, receiver)
    move(queue, request, "dialing", "ringing")
    first = sender(senders, queue)
    wait_for(lambda: len(receiver.hits) >= 2)
    first.stop(grace=0)
    move(queue, request, "completed")  # while no worker delivers
    assert [Delivery.parse(i).status for i in queue.pending_webhooks(request.id)] == [
        "dialing", "ringing", "completed"]
    assert Delivery.parse(queue.pending_webhooks(request.id)[0]).attempts >= 2
    receiver.hits.clear()
    receiver.code = 204  # back
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 3)
    assert receiver.events() == ["call.dialing", "call.ringing", "call.completed"]
    assert receiver.hits[0][2]["HTTP_X_ESLENGINE_DELIVERY"] == request.id + ".2"
    wait_for(lambda: outbox_empty(queue))


def test_the_deliveries_of_a_worker_that_died_are_made_by_another_when_its_lease_ends(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.hold = gevent.event.Event()  # the receiver keeps the first worker waiting
    request = place(queue, receiver)
    move(queue, request, "dialing", "completed")
    dying = sender(senders, queue, lease=0.5)
    wait_for(lambda: len(receiver.hits) == 1)
    dying.pool.kill()  # dies with the call held, its lease not given back
    dying._loop.kill()  # type: ignore[union-attr]
    receiver.hold = None
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 3)
    # The first delivery may have reached the receiver before the worker died: it comes again, with its id.
    assert receiver.events() == ["call.dialing", "call.dialing", "call.completed"]
    assert receiver.hits[0][2]["HTTP_X_ESLENGINE_DELIVERY"] == receiver.hits[1][2]["HTTP_X_ESLENGINE_DELIVERY"]


def test_a_delivery_not_made_within_the_max_age_is_dropped_and_logged(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks], caplog: pytest.LogCaptureFixture) -> None:
    request = place(queue, receiver)
    move(queue, request, "dialing")
    config = Config(**{**CONFIG.__dict__, "webhook_max_age": 60})
    expired = deliveries("expired")
    with caplog.at_level(logging.WARNING, logger="eslengine.webhooks"):
        sender(senders, queue, config, clock=lambda: time.time() + 61)
        wait_for(lambda: outbox_empty(queue))
    assert receiver.hits == [] and queue.pending_webhooks(request.id) == []
    assert deliveries("expired") == expired + 1
    assert any("call.dialing %s.2 dropped: not delivered within 60s" % request.id in r.getMessage()
               for r in caplog.records)


def test_a_delivery_the_receiver_refuses_is_dropped_and_the_next_one_made(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.script = [404]
    request = place(queue, receiver)
    move(queue, request, "dialing", "completed")
    sender(senders, queue)
    wait_for(lambda: outbox_empty(queue))
    assert receiver.events() == ["call.dialing", "call.completed"]


def deliveries(result: str) -> float:
    return metrics.REGISTRY.get_sample_value("eslengine_webhook_deliveries_total", {"result": result}) or 0.0


def test_each_delivery_attempt_is_counted_by_its_result(queue: JobQueue, receiver: Receiver,
                                                          senders: list[Webhooks]) -> None:
    results = ("delivered", "failed", "refused", "expired", "dropped")
    before = {r: deliveries(r) for r in results}
    # dialing: refused (404); ringing: failed twice (503), then delivered; completed: delivered.
    receiver.script = [404, 503, 503]
    request = place(queue, receiver)
    move(queue, request, "dialing", "ringing", "completed")
    sender(senders, queue)
    wait_for(lambda: outbox_empty(queue))
    # A call whose record is gone: its delivery is dropped.
    gone = place(queue, receiver)
    move(queue, gone, "completed")
    queue.redis.delete(queue.keys.call(gone.id))
    wait_for(lambda: outbox_empty(queue))
    assert receiver.events() == ["call.dialing", "call.ringing", "call.ringing", "call.ringing", "call.completed"]
    assert {r: deliveries(r) - before[r] for r in results} == \
        {"delivered": 2, "failed": 2, "refused": 1, "expired": 0, "dropped": 1}


def test_redirects_are_not_followed(queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.script = [302, 302]
    request = place(queue, receiver)
    move(queue, request, "completed")
    sender(senders, queue)
    wait_for(lambda: outbox_empty(queue))
    assert [p for p, _, _ in receiver.hits] == ["/hook"] * 3


def test_a_url_no_longer_allowed_is_not_delivered(queue: JobQueue, receiver: Receiver,
                                                   senders: list[Webhooks]) -> None:
    request = place(queue, receiver)
    move(queue, request, "completed")
    sender(senders, queue, Config(webhook_allow=(r"https://hooks\.example\.com/.*",)))
    wait_for(lambda: outbox_empty(queue))
    assert receiver.hits == []


def test_a_receiver_that_is_down_costs_one_attempt_per_retry_however_many_calls_wait(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.code = 503
    requests = [place(queue, receiver) for _ in range(10)]
    for request in requests:
        move(queue, request, "completed")
    sender(senders, queue, Config(**{**CONFIG.__dict__, "webhook_concurrency": 1}),
           backoff=Backoff(first=30, cap=60))
    # Every call is put off past the receiver's retry time; one was tried.
    wait_for(lambda: queue.redis.zcount(queue.keys.webhooks, "-inf", time.time() + 20) == 0)
    assert len(receiver.hits) == 1
    attempts = sorted(Delivery.parse(queue.pending_webhooks(r.id)[0]).attempts for r in requests)
    assert attempts == [0] * 9 + [1]


def test_deliveries_run_at_most_concurrency_at_once_and_never_hold_up_a_status_change(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.hold = gevent.event.Event()
    requests = [place(queue, receiver) for _ in range(6)]
    for request in requests:
        move(queue, request, "dialing")
    sender(senders, queue, Config(**{**CONFIG.__dict__, "webhook_concurrency": 2}))
    wait_for(lambda: receiver.in_flight == 2)
    for request in requests:  # the receiver hangs; status changes go on
        assert queue.transition(request.id, "completed")
    gevent.sleep(0.1)
    assert receiver.most_in_flight == 2
    receiver.hold.set()
    wait_for(lambda: outbox_empty(queue))
    assert len(receiver.hits) == 12 and receiver.most_in_flight == 2


# ---------------------------------------------------------------- pure parts


@pytest.mark.parametrize(("failures", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0),
                                                 (60, 300.0)])
def test_backoff_doubles_up_to_its_cap(failures: int, delay: float) -> None:
    assert Backoff().delay(failures) == delay


def test_signature_signs_the_timestamp_with_the_body() -> None:
    assert signature("k", b'{"a":1}', 1700000000) == "t=1700000000,v1=%s" % hmac.new(
        b"k", b'1700000000.{"a":1}', hashlib.sha256).hexdigest()


def test_delivery_items_round_trip() -> None:
    delivery = Delivery("0b6c3f2e-1111-4222-8333-944455556666.3", "ringing", 1700000000.25, 2)
    assert Delivery.parse(delivery.item()) == delivery
    assert delivery.expired(1700000000.25 + 61, 60) and not delivery.expired(1700000000.25 + 60, 60)


def readme_verifier() -> dict[str, Any]:
    """The receiver's verification code as the README gives it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    match = re.search(r"<!-- webhook-verify -->\s*```python\n(.*?)```", readme, re.S)
    assert match, "README has no webhook verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md", "exec"), namespace)
    return namespace


def test_the_readme_verification_snippet_accepts_a_delivery_and_refuses_forgeries_and_replays() -> None:
    verify = readme_verifier()["verify"]
    body = b'{"event":"call.completed","delivery":"x.5","call":{}}'
    now = int(time.time())
    header = signature("secret", body, now)
    assert verify("secret", header, body) is True
    assert verify("secret", header, body.replace(b"completed", b"failed")) is False  # body changed
    assert verify("other", header, body) is False  # another key
    assert verify("secret", header.replace("t=%d" % now, "t=%d" % (now + 1)), body) is False  # time changed
    old = signature("secret", body, now - 301)
    assert verify("secret", old, body) is False  # replayed after five minutes
    assert verify("secret", signature("secret", body, now - 299), body) is True
    rotated = "%s,v1=%s" % (header, "0" * 64)  # another v1 (a key being rotated) is ignored
    assert verify("secret", rotated, body) is True
    assert verify("secret", "v1=" + header.split("v1=")[1], body) is False  # no timestamp
    assert verify("secret", "garbage", body) is False


def test_the_readme_verification_snippet_checks_real_deliveries(
        queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    verify = readme_verifier()["verify"]
    request = place(queue, receiver)
    move(queue, request, "completed")
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 1)
    _, body, headers = receiver.hits[0]
    assert verify(SECRET, headers["HTTP_X_ESLENGINE_SIGNATURE"], body) is True


# ---------------------------------------------------------------- addresses


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

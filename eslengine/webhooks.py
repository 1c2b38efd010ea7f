"""Webhook deliveries: the call's document POSTed to its ``callback_url`` on
every status change.

Each delivery is JSON ``{"event": "call.<status>", "delivery": <id>, "call":
<the call as GET /v1/calls/<id> shows it when the delivery is made>}`` with
the headers ``X-Eslengine-Event``, ``X-Eslengine-Delivery`` (the id again)
and, when a secret is configured, ``X-Eslengine-Signature:
t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``: the time is signed with
the body, so a receiver that refuses old timestamps cannot be fed a recorded
delivery again, and the delivery id (unique per status change, the same on
every attempt) lets it drop a repeat. The README shows how to verify one.

The status-change scripts queue every delivery in Redis (``store/outbox.py``) in the
same step as the change. Every worker runs a ``Webhooks``: it takes calls
whose deliveries are due, holds each for a lease (a worker that dies lets go
when the lease ends) and delivers that call's deliveries in order. A
delivery that fails (no connection, a timeout, a 5xx, 408 or 429) is tried
again with doubling delays, and the call's later ones wait behind it; one the
receiver refuses (another 4xx), or whose URL or address is not allowed, is
dropped. A delivery still not made ``webhook_max_age`` seconds after its
status change is dropped and logged. Deliveries run in their own bounded
pool, apart from the calls; a receiver that fails holds off every delivery
to it from this worker for as long as its own next retry, so one receiver
down for hours costs one attempt per retry delay, however many calls wait.

Campaign delivery reports (``campaign.report``: one per contact once it is
done, to the campaign's ``notify_url``) go through the same outbox, the
same way: their outbox member is ``campaign/<campaign id>/<contact id>``
(``keys.report_member``), their event ``contact.finished``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import random
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.event
import gevent.pool
import redis

from . import infobip, metrics, urls
from .apikeys import KeyStore
from .campaign.report import EVENT as REPORT_EVENT
from .campaign.report import report_body, report_document
from .config import Config
from .errors import QueueUnavailable, WebhookFailed, WebhookRefused
from .http.present import present
from .status import FINAL

log = logging.getLogger(__name__)

# Seconds one delivery may take to connect and be answered (and as long
# again to resolve the host).
TIMEOUT = 5.0
# What is read of a receiver's answer: only its status matters.
MAX_ANSWER = 64 * 1024
# How long a worker holds a call whose deliveries it makes: longer than any
# one delivery can take; renewed after each.
LEASE = 60.0
# How often a worker looks for due deliveries when nothing woke it.
POLL = 0.5
# Origins remembered as failing, at most.
MAX_DOWN = 1024
# Outbox members that are campaign contacts' reports (``keys.report_member``).
REPORT_PREFIX = "campaign/"
# A delivery ready to send: URL, event, body, content type, signing secret.
Outgoing = tuple[str, str, bytes, str, str]


@dataclass(frozen=True)
class Backoff:
    """Seconds before attempt ``n + 1`` of a delivery that failed ``n``
    times: ``first``, doubling, at most ``cap``. With the defaults a
    receiver back after a minute has its deliveries within another minute."""

    first: float = 1.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.first * 2 ** max(0, failures - 1)))


@dataclass(frozen=True)
class Delivery:
    """One pending delivery as the outbox list holds it."""

    id: str
    status: str
    queued_at: float  # Redis's clock, Unix time
    attempts: int = 0

    @classmethod
    def parse(cls, item: str) -> Delivery:
        delivery_id, status, queued_at, attempts = item.split(" ")
        return cls(delivery_id, status, float(queued_at), int(attempts))

    def item(self) -> str:
        return "%s %s %.6f %d" % (self.id, self.status, self.queued_at, self.attempts)

    @property
    def event(self) -> str:
        return "call." + self.status

    def expired(self, now: float, max_age: float) -> bool:
        return now - self.queued_at > max_age


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """``X-Eslengine-Signature``: ``t=<timestamp>,v1=<hex HMAC-SHA256 of
    "<timestamp>.<body>" keyed with secret>``."""
    signed = b"%d.%s" % (timestamp, body)
    return "t=%d,v1=%s" % (timestamp, hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())


# (host, port) -> the addresses to connect to, as getaddrinfo gives them.
Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` has for a TCP connection to ``port``, in the
    resolver's order, each once."""
    out: list[str] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if str(sockaddr[0]) not in out:
            out.append(str(sockaddr[0]))
    return out


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


def _connect(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A connection to the first of ``addresses`` that answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


def _pinned(connection: http.client.HTTPConnection, addresses: Sequence[str]) -> http.client.HTTPConnection:
    """``connection`` (its host still names the Host header and, for https,
    the name the certificate must carry) connecting to ``addresses`` only."""
    def create_connection(address: tuple[str, int], timeout: float | None = None,
                          source_address: Any = None) -> socket.socket:
        return _connect(addresses, address[1], timeout)

    connection._create_connection = create_connection  # type: ignore[attr-defined]
    return connection


def post(url: str, body: bytes, headers: Mapping[str, str], *, networks: Sequence[str] = (),
         resolver: Resolver = resolve, timeout: float = TIMEOUT) -> int:
    """POST ``body`` to ``url``; returns the receiver's 2xx status.

    The host is resolved here, at delivery, and every address it has must be
    allowed (``urls.address_allowed`` with ``networks``); the connection then
    goes to one of the addresses checked, never to a second lookup, so a name
    that changes its answer in between (DNS rebinding) reaches nothing it was
    not checked for. No proxy is used and redirects are not followed. The
    whole exchange has ``timeout`` seconds (and as long again to resolve).
    Raises ``WebhookRefused`` (never retry) or ``WebhookFailed`` (retry)."""
    origin = urls.origin(url)
    if origin is None:
        raise WebhookRefused("not an http(s) URL")
    try:
        with gevent.Timeout(timeout, WebhookFailed("%s did not resolve in %.0fs" % (origin.host, timeout))):
            addresses = list(resolver(origin.host, origin.port))
    except OSError as exc:
        raise WebhookFailed("%s did not resolve: %s" % (origin.host, exc)) from exc
    if not addresses:
        raise WebhookFailed("%s has no address" % origin.host)
    refused = [a for a in addresses if not urls.address_allowed(a, networks)]
    if refused:
        raise WebhookRefused("%s resolves to %s, which webhooks may not reach (ESLENGINE_WEBHOOK_ALLOW_NETWORKS)"
                             % (origin.host, ", ".join(refused)))
    parts = urlsplit(url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    connection: http.client.HTTPConnection
    if origin.scheme == "https":
        connection = http.client.HTTPSConnection(origin.host, origin.port, timeout=timeout, context=_tls_context())
    else:
        connection = http.client.HTTPConnection(origin.host, origin.port, timeout=timeout)
    _pinned(connection, addresses)
    try:
        with gevent.Timeout(timeout, WebhookFailed("no answer in %.0fs" % timeout)):
            connection.request("POST", target, body=body, headers=dict(headers))
            response = connection.getresponse()
            response.read(MAX_ANSWER)
            status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookFailed("%s: %s" % (type(exc).__name__, exc)) from exc
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    if 400 <= status < 500 and status not in (408, 429):
        raise WebhookRefused("HTTP %d" % status)
    raise WebhookFailed("HTTP %d" % status)


def body_of(document: Mapping[str, Any], delivery: Delivery) -> tuple[bytes, str] | None:
    """A delivery's body and content type in the call's ``callback_format``:
    the engine's own document (every status change), or Infobip's delivery
    report as JSON or XML (``infobip.report``: the final status only; None
    for the others, which are then done with unsent)."""
    fmt = str((document.get("request") or {}).get("callback_format") or "eslengine")
    if fmt.startswith("infobip+"):
        return infobip.report(document, fmt) if delivery.status in FINAL else None
    body = json.dumps({"event": delivery.event, "delivery": delivery.id, "call": document},
                      separators=(",", ":")).encode()
    return body, "application/json"


class Webhooks:
    """A worker's webhook sender: delivers the deliveries queued in Redis,
    at most ``config.webhook_concurrency`` calls' at once."""

    def __init__(self, queue: Any, config: Config, *, resolver: Resolver = resolve,
                 clock: Callable[[], float] = time.time, backoff: Backoff = Backoff(), lease: float = LEASE,
                 poll: float = POLL, timeout: float = TIMEOUT) -> None:
        self.queue = queue
        self.config = config
        self.resolver = resolver
        self.clock = clock
        self.backoff = backoff
        self.lease = lease
        self.poll = poll
        self.timeout = timeout
        self.pool = gevent.pool.Pool(config.webhook_concurrency)
        # Calls this worker holds (delivering their deliveries).
        self._held: set[str] = set()
        # Receivers that failed: origin -> (no attempt before, failures in a row).
        self._down: dict[urls.Origin, tuple[float, int]] = {}
        self._wake = gevent.event.Event()
        self._loop: gevent.Greenlet | None = None
        self._keys: KeyStore | None = None
        for pattern in urls.unchecked_hosts(config.webhook_allow):
            log.warning("ESLENGINE_WEBHOOK_ALLOW: %r: its host is a pattern, matched but not compared; write the "
                        "host out (https://hooks\\.example\\.com/...) to have it compared", pattern)

    def start(self) -> None:
        if self._loop is None:
            self._loop = gevent.spawn(self._claim_loop)

    def stop(self, grace: float = 5.0) -> None:
        """Take no more calls; give deliveries under way ``grace`` seconds,
        then stop them and let go of their calls for any worker to finish."""
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
        if not self.pool.join(timeout=grace):
            held = set(self._held)
            self.pool.kill(timeout=5)
            try:
                self.queue.release_webhooks(held)
            except QueueUnavailable as exc:
                log.warning("webhooks: %d call(s) left held until their lease ends: %s", len(held), exc)

    def wake(self) -> None:
        """A delivery was queued: look for due ones now."""
        self._wake.set()

    def _claim_loop(self) -> None:
        while True:
            pause = self.poll
            try:
                free = self.pool.free_count()
                for job_id in self.queue.claim_webhooks(free, self.lease) if free else ():
                    self._held.add(job_id)
                    self.pool.spawn(self._deliver_call, job_id)
            except QueueUnavailable as exc:
                log.warning("webhooks: Redis unavailable, deliveries wait: %s", exc)
                pause = max(self.poll, 1.0)
            except Exception:
                log.exception("webhooks: claiming deliveries failed")
                pause = max(self.poll, 1.0)
            self._wake.wait(pause)
            self._wake.clear()

    def _deliver_call(self, job_id: str) -> None:
        """Deliver a held call's deliveries in order until none is left or
        one has to wait."""
        try:
            while True:
                item = self.queue.next_webhook(job_id)
                if item is None:
                    # One queued since next_webhook looked keeps the call
                    # held (due only when the lease ends): deliver it now.
                    if self.queue.webhook_done(job_id, "", self.lease):
                        continue
                    return
                delivery = Delivery.parse(item)
                later = self._attempt(job_id, delivery)
                if later is not None:
                    retry, delay = later
                    self.queue.webhook_later(job_id, delivery.id, retry.item(), delay)
                    return
                self.queue.webhook_done(job_id, delivery.id, self.lease)
        except QueueUnavailable as exc:
            log.warning("job %s: webhooks wait, Redis unavailable: %s", job_id, exc)
        except Exception:
            log.exception("job %s: webhook delivery failed", job_id)
        finally:
            self._held.discard(job_id)

    def _attempt(self, job_id: str, delivery: Delivery) -> tuple[Delivery, float] | None:
        """Make one delivery. None when it is done with (delivered or
        dropped); else the delivery as it is to be kept and the seconds to
        wait before it is tried again."""
        now = self.clock()
        if delivery.expired(now, self.config.webhook_max_age):
            log.warning("job %s: webhook %s %s dropped: not delivered within %ds (%d attempts)", job_id,
                        delivery.event, delivery.id, self.config.webhook_max_age, delivery.attempts)
            metrics.WEBHOOK_DELIVERIES.labels("expired").inc()
            return None
        outgoing = (self._report(job_id, delivery) if job_id.startswith(REPORT_PREFIX)
                    else self._call_delivery(job_id, delivery))
        if outgoing is None:
            return None
        url, event, body, content_type, secret = outgoing
        if not urls.webhook_url_allowed(url, self.config.webhook_allow):
            log.warning("job %s: webhook %s %s dropped: the callback URL is no longer allowed", job_id,
                        event, delivery.id)
            metrics.WEBHOOK_DELIVERIES.labels("dropped").inc()
            return None
        origin = urls.origin(url)
        assert origin is not None  # webhook_url_allowed parsed it
        until, _ = self._down.get(origin, (0.0, 0))
        if now < until:
            return delivery, until - now + random.uniform(0, 0.1 * (until - now))
        headers = {"Content-Type": content_type, "User-Agent": "eslengine-webhook",
                   "X-Eslengine-Event": event, "X-Eslengine-Delivery": delivery.id}
        if secret:
            headers["X-Eslengine-Signature"] = signature(secret, body, int(now))
        try:
            post(url, body, headers, networks=self.config.webhook_allow_networks, resolver=self.resolver,
                 timeout=self.timeout)
        except WebhookRefused as exc:
            log.warning("job %s: webhook %s %s dropped: %s", job_id, event, delivery.id, exc)
            metrics.WEBHOOK_DELIVERIES.labels("refused").inc()
            return None
        except WebhookFailed as exc:
            retry = replace(delivery, attempts=delivery.attempts + 1)
            delay = self.backoff.delay(retry.attempts)
            self._failed(origin, now)
            metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
            log.warning("job %s: webhook %s %s attempt %d failed: %s; next in %.1fs", job_id, event,
                        delivery.id, retry.attempts, exc, delay)
            return retry, delay
        self._down.pop(origin, None)
        metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
        log.info("job %s: webhook %s %s delivered", job_id, event, delivery.id)
        return None

    def _call_delivery(self, job_id: str, delivery: Delivery) -> Outgoing | None:
        """A call's status change: its URL, event, body, content type and
        signing secret; None when there is nothing to send."""
        found = self.queue.read_call(job_id)
        document = present(*found) if found is not None else None
        url = str((document or {}).get("request", {}).get("callback_url") or "")
        if document is None or not url:
            log.warning("job %s: webhook %s %s dropped: the call's record is gone", job_id, delivery.event,
                        delivery.id)
            metrics.WEBHOOK_DELIVERIES.labels("dropped").inc()
            return None
        formatted = body_of(document, delivery)
        if formatted is None:
            log.debug("job %s: webhook %s %s: nothing to report in this call's format", job_id, delivery.event,
                      delivery.id)
            return None
        body, content_type = formatted
        return url, delivery.event, body, content_type, self._secret(document)

    def _report(self, member: str, delivery: Delivery) -> Outgoing | None:
        """A campaign contact's delivery report (``campaign.report``), its
        member ``campaign/<campaign id>/<contact id>``."""
        _, campaign_id, contact_id = member.split("/", 2)
        keys = self.queue.keys
        pipe = self.queue.redis.pipeline(transaction=False)
        pipe.hmget(keys.campaign(campaign_id), ["doc", "owner"])
        pipe.hgetall(keys.contact(campaign_id, contact_id))
        try:
            (doc, owner), contact = pipe.execute()
        except redis.RedisError as exc:
            raise QueueUnavailable("read report: %s" % exc) from exc
        campaign = json.loads(doc) if doc else {}
        url = str(campaign.get("notify_url") or "")
        if not url or not contact:
            log.warning("campaign %s: report %s dropped: the campaign or the contact is gone", campaign_id,
                        delivery.id)
            metrics.WEBHOOK_DELIVERIES.labels("dropped").inc()
            return None
        document = report_document(campaign_id, str(campaign.get("name") or ""), contact)
        body, content_type = report_body(document, str(campaign.get("notify_format") or "json"))
        return url, REPORT_EVENT, body, content_type, self._secret({"key": owner} if owner else {})

    def _secret(self, document: dict[str, Any]) -> str:
        """What signs a delivery of this call: its API key's own webhook
        secret, if the key has one, else ESLENGINE_WEBHOOK_SECRET."""
        key_id = document.get("key")
        if key_id:
            if self._keys is None:
                self._keys = KeyStore(self.queue.redis, self.queue.keys.prefix)
            key = self._keys.get(str(key_id))
            if key is not None and key.webhook_secret:
                return key.webhook_secret
        return self.config.webhook_secret

    def _failed(self, origin: urls.Origin, now: float) -> None:
        """Hold off every delivery to ``origin`` for as long as a delivery
        that failed as often would wait."""
        _, failures = self._down.get(origin, (0.0, 0))
        if len(self._down) >= MAX_DOWN:
            self._down = {o: d for o, d in self._down.items() if d[0] > now}
        self._down[origin] = (now + self.backoff.delay(failures + 1), failures + 1)

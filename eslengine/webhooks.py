"""Webhook deliveries: the call's document POSTed to its ``callback_url`` on
every status change.

Each delivery is JSON ``{"event": "call.<status>", "call": <the document GET
/v1/calls/<id> returns>}`` with headers ``X-Eslengine-Event`` and, when a
secret is configured, ``X-Eslengine-Signature: sha256=<hex HMAC of the body>``.
Deliveries for one call go out in order, each with a 5 s deadline and up to
three attempts with backoff; redirects are not followed (a callback URL is
allow-listed, where it redirects to is not). Delivery never holds up a call.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.queue

from . import urls
from .calls import CallRequest
from .config import Config
from .errors import QueueUnavailable, WebhookError, WebhookFailed, WebhookRefused

log = logging.getLogger(__name__)

TIMEOUT = 5.0
ATTEMPTS = 3
# What is read of a receiver's answer: only its status matters.
MAX_ANSWER = 64 * 1024

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


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, queue: Any, config: Config, *, resolver: Resolver = resolve) -> None:
        self.queue = queue
        self.config = config
        self.resolver = resolver
        for pattern in urls.unchecked_hosts(config.webhook_allow):
            log.warning("ESLENGINE_WEBHOOK_ALLOW: %r: its host is a pattern, matched but not compared; write the "
                        "host out (https://hooks\\.example\\.com/...) to have it compared", pattern)
        self._pending: dict[str, gevent.queue.Queue] = {}

    def notify(self, request: CallRequest, status: str) -> None:
        """Queue a delivery for ``request``'s callback URL; returns at once."""
        if not request.callback_url:
            return
        pending = self._pending.get(request.id)
        if pending is None:
            pending = self._pending[request.id] = gevent.queue.Queue()
            gevent.spawn(self._drain, request, pending)
        pending.put(status)

    def _drain(self, request: CallRequest, pending: gevent.queue.Queue) -> None:
        try:
            while True:
                try:
                    status = pending.get(timeout=1.0)
                except gevent.queue.Empty:
                    return
                self._deliver(request, status)
        except Exception:
            log.exception("job %s: webhook delivery failed", request.id)
        finally:
            self._pending.pop(request.id, None)

    def _deliver(self, request: CallRequest, status: str) -> None:
        url = request.callback_url or ""
        if not urls.webhook_url_allowed(url, self.config.webhook_allow):
            log.warning("job %s: callback URL no longer allowed; not delivered", request.id)
            return
        try:
            document = self.queue.get(request.id)
        except QueueUnavailable as exc:
            log.warning("job %s: webhook skipped, Redis unavailable: %s", request.id, exc)
            return
        body = json.dumps({"event": "call." + status, "call": document}, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "X-Eslengine-Event": "call." + status,
                   "User-Agent": "eslengine-webhook"}
        if self.config.webhook_secret:
            headers["X-Eslengine-Signature"] = signature(self.config.webhook_secret, body)
        for attempt in range(ATTEMPTS):
            try:
                post(url, body, headers, networks=self.config.webhook_allow_networks, resolver=self.resolver)
                log.info("job %s: webhook call.%s delivered", request.id, status)
                return
            except WebhookRefused as exc:
                log.warning("job %s: webhook call.%s refused: %s", request.id, status, exc)
                return
            except WebhookError as exc:
                log.warning("job %s: webhook call.%s attempt %d failed: %s", request.id, status, attempt + 1, exc)
            gevent.sleep(0.5 * 2**attempt)

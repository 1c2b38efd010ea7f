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
import json
import logging
import re
import urllib.error
import urllib.request
from typing import Any

import gevent
import gevent.queue

from .calls import CallRequest
from .config import Config
from .errors import QueueUnavailable

log = logging.getLogger(__name__)

TIMEOUT = 5.0
ATTEMPTS = 3


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhooks:
    def __init__(self, queue: Any, config: Config) -> None:
        self.queue = queue
        self.config = config
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
        if not any(re.fullmatch(p, url) for p in self.config.webhook_allow):
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
                req = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with _opener.open(req, timeout=TIMEOUT) as response:
                    if 200 <= response.status < 300:
                        log.info("job %s: webhook call.%s delivered", request.id, status)
                        return
                    reason = "HTTP %d" % response.status
            except urllib.error.HTTPError as exc:
                reason = "HTTP %d" % exc.code
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    log.warning("job %s: webhook call.%s refused (%s)", request.id, status, reason)
                    return
            except (OSError, ValueError) as exc:
                reason = str(exc)
            log.warning("job %s: webhook call.%s attempt %d failed: %s", request.id, status, attempt + 1, reason)
            gevent.sleep(0.5 * 2**attempt)

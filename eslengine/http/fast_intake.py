"""``POST /v1/calls`` as a plain WSGI function in front of the Flask app."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from .. import calls
from ..config import Config
from ..errors import DoNotCall, JobExists, QueueUnavailable
from ..store import JobQueue
from .auth import authorized
from .calls_v1 import call_path, exists, queued
from .metrics import ROUTE
from .responses import MAX_BODY, decode_json, do_not_call, error, queue_unavailable

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FastIntake:
    """``POST /v1/calls`` as a plain WSGI function in front of the Flask app.

    Flask's request and response objects cost more CPU than the rest of the
    route put together (its URL matching, request context, header and body
    wrappers, and the Location header's IRI conversion). This takes the
    request that almost every call is: authorized, ``Content-Type:
    application/json``, a Content-Length body within ``MAX_BODY`` that is a
    JSON object passing ``calls.parse_request``. It answers with the same
    documents as the route: 202, 409 for an existing id, 503 when Redis
    cannot be reached.

    Every other request goes to Flask untouched, and a body this read but did
    not queue is handed to Flask to read again, so each error is answered by
    the one code path that answers it without the fast path.
    """

    PATH = "/v1/calls"

    def __init__(self, app: WSGIApp, config: Config, queue: JobQueue) -> None:
        self.app = app
        self.config = config
        self.queue = queue

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != self.PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        environ[ROUTE] = self.PATH  # for RequestMetrics (Flask notes its own routes)
        length = self._length(environ)
        if not length:
            return self.app(environ, start_response)
        raw = environ["wsgi.input"].read(length)
        call = self._parse(raw) if len(raw) == length else None
        if call is None:
            environ["wsgi.input"] = io.BytesIO(raw)
            return self.app(environ, start_response)
        try:
            job_id = self.queue.enqueue(call)
        except JobExists:
            return exists(call.id)(environ, start_response)
        except QueueUnavailable as exc:
            return queue_unavailable(exc)(environ, start_response)
        except DoNotCall as exc:
            return do_not_call(exc)(environ, start_response)
        except Exception:
            log.exception("unhandled error on POST %s", self.PATH)
            return error(500, "internal", "internal error")(environ, start_response)
        log.debug("job %s: queued", job_id)
        body = orjson.dumps(queued(job_id, call))
        start_response("202 ACCEPTED", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                        ("Location", call_path(job_id))])
        return [body]

    def _length(self, environ: dict[str, Any]) -> int:
        """The body's length if the fast path takes this request, else 0."""
        length = environ.get("CONTENT_LENGTH") or ""
        if not (length.isascii() and length.isdigit()) or "HTTP_TRANSFER_ENCODING" in environ:
            return 0
        if "HTTP_IDEMPOTENCY_KEY" in environ:
            return 0  # the route keeps the key's call
        if environ.get("QUERY_STRING"):
            return 0  # ?wait=originate and the like are the route's
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            return 0
        # Operator keys only (and no key where none is configured); a client
        # key's limits and namespace are the Flask route's.
        keys = self.config.api_keys
        header = environ.get("HTTP_AUTHORIZATION")
        if not authorized(header, keys) if keys else header:
            return 0
        size = int(length)
        return size if size <= MAX_BODY else 0

    def _parse(self, raw: bytes) -> calls.CallRequest | None:
        """The call in ``raw``, or None for anything the Flask route answers
        with an error (or a bug it answers 500 for)."""
        try:
            data = decode_json(raw)
            return calls.parse_request(data, self.config) if isinstance(data, dict) else None
        except Exception:
            return None


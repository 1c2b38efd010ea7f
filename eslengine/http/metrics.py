"""The API's metrics: ``GET /metrics`` and the count of every request.

    GET /metrics    this process's metrics and the queue's depth, in
                    Prometheus's text format; with ESLENGINE_METRICS_TOKEN
                    set, only for ``Authorization: Bearer <that token>``

Every request is counted by route, method and status
(``eslengine_http_requests_total``) by ``RequestMetrics``, a WSGI wrapper
outside everything else (``POST /v1/calls``'s fast path included); the route
is the URL rule Flask matched (``/v1/calls/<job_id>``), never the path a
client sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request

from .. import apikeys, metrics
from ..store import GROUP, JobQueue
from . import context
from .responses import error

bp = Blueprint("metrics", __name__)

# The WSGI environ key the matched route is left under for RequestMetrics.
ROUTE = "eslengine.route"
_COLLECTOR = "eslengine.metrics.queue"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def install(app: Flask, queue: JobQueue) -> None:
    """``GET /metrics`` on ``app``, and every request counted (call it after
    any other WSGI wrapper is in place: this one goes outside them)."""
    app.extensions[_COLLECTOR] = metrics.QueueCollector(queue.redis, queue.keys, GROUP,
                                                                shards=[shard.keys for shard in queue.shards])
    app.register_blueprint(bp)
    app.before_request(_note_route)
    app.wsgi_app = RequestMetrics(app.wsgi_app)  # type: ignore[method-assign]


def _note_route() -> None:
    if request.url_rule is not None:
        request.environ[ROUTE] = request.url_rule.rule


class RequestMetrics:
    """Counts each request as its status is set: by route (what
    ``_note_route`` or the fast path left in the environ; ``unmatched``
    without), method and status, and how long it took to that point."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.monotonic()

        def counted(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            metrics.count_request(environ.get(ROUTE) or "unmatched", environ.get("REQUEST_METHOD", ""), status[:3],
                                  time.monotonic() - started)
            return start_response(status, headers, exc_info) if exc_info is not None else start_response(status, headers)

        return self.app(environ, counted)


@bp.get("/metrics")
def scrape() -> Response:
    token = context.config().metrics_token
    if token:
        if not apikeys.operator_token(apikeys.bearer_token(request.headers.get("Authorization")), (token,)):
            response = error(401, "unauthorized", "a valid 'Authorization: Bearer <metrics token>' header is required",
                             field="Authorization")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
    body = metrics.exposition([current_app.extensions[_COLLECTOR]])
    return Response(body, 200, content_type=metrics.CONTENT_TYPE_LATEST)

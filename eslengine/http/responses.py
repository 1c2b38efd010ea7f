"""JSON answers and request bodies, and the error answers every surface
shares (``register_errors``): each is JSON naming the error, the reason and,
where there is one, the field."""

from __future__ import annotations

import logging
import re

import orjson
from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from ..errors import DoNotCall, QueueUnavailable

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
RETRY_AFTER = "1"


class BadBody(Exception):
    """The body is not a JSON document (answered 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """The key lacks a scope (answered 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def json_response(document: object, status: int = 200, /, **headers: str) -> Response:
    """A JSON answer (orjson: the 202 of ``POST /v1/calls`` is the hot path,
    and Flask's ``jsonify`` costs several times the encoding itself)."""
    return Response(orjson.dumps(document), status, headers, mimetype="application/json")


def error(code: int, name: str, reason: str, /, **extra: str) -> Response:
    return json_response({"error": name, "reason": reason, **extra}, code)


def json_body() -> object:
    """The request body as a JSON value; ``BadBody`` if it is not one.
    A body over ``MAX_BODY`` raises werkzeug's 413 while it is read."""
    if not request.is_json:
        raise BadBody("Content-Type must be application/json")
    return decode_json(request.get_data(cache=False))


def decode_json(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("is not UTF-8") from None
    try:
        # orjson refuses NaN and Infinity (not JSON) and lone surrogates
        # (not text), and stops at 1024 levels of nesting.
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            raise BadBody("is nested too deeply") from None
        raise BadBody("is not valid JSON: %s" % exc) from None


def queue_unavailable(exc: QueueUnavailable) -> Response:
    log.warning("redis unavailable: %s", exc)
    response = error(503, "unavailable", "the job queue (Redis) cannot be reached; retry shortly")
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def do_not_call(exc: DoNotCall) -> Response:
    """422: the request is well formed, but a number it would ring is on a
    do-not-call list. Like the other refusals of what a call may ring (the
    toll-fraud policy), it is about this request's content, not the
    caller's rights (403) nor the state of a resource (409)."""
    return error(422, "do_not_call", exc.reason, field=exc.field, number=exc.number, list=exc.list)


def _bad_body(exc: BadBody) -> Response:
    return error(400, "bad_request", exc.reason, field="body")


def _forbidden(exc: Forbidden) -> Response:
    return error(403, "forbidden", exc.reason)


def http_exception(exc: HTTPException) -> WerkzeugResponse:
    """Werkzeug's own errors (404, 405, 413 ...) as JSON, keeping their
    headers (``Allow`` on a 405)."""
    response = exc.get_response()
    name = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
    response.set_data(orjson.dumps({"error": name, "reason": exc.description or exc.name}))
    response.content_type = "application/json"
    return response


def _unexpected(exc: Exception) -> Response:
    """A bug: no client input is meant to get here."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error(500, "internal", "internal error")


def register_errors(target: Flask | Blueprint) -> None:
    """Answer errors as JSON on ``target``: an app (every surface, and
    requests no route matches) or one blueprint (a surface with answers of
    its own registers its handlers on its blueprint; they take precedence)."""
    target.register_error_handler(BadBody, _bad_body)
    target.register_error_handler(DoNotCall, do_not_call)
    target.register_error_handler(Forbidden, _forbidden)
    target.register_error_handler(QueueUnavailable, queue_unavailable)
    target.register_error_handler(HTTPException, http_exception)
    if isinstance(target, Flask):
        target.register_error_handler(Exception, _unexpected)

"""The HTTP front-end: validate a click-to-call request, queue it, answer 202.

    POST   /v1/calls          queue a call; 202 + Location once it is in Redis
    GET    /v1/calls/<id>     the call's status, causes, timestamps, history
    DELETE /v1/calls/<id>     cancel: at once if queued, else a worker hangs up
    GET    /healthz           200, or 503 when Redis cannot be reached
    GET    /v1/openapi.json   the OpenAPI 3.0 description of all of the above

Every ``/v1/`` route but the OpenAPI document needs ``Authorization: Bearer
<key>``: an operator key of the config, or a client key (``apikeys``), which
sees only its own calls. Every answer, errors included, is JSON; an error names the field and
the reason where there is one. The API never talks to FreeSWITCH.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from gunicorn.app.base import BaseApplication
from werkzeug.exceptions import HTTPException, NotFound

from . import apikeys, calls
from .config import Config
from .errors import ConfigError, JobExists, QueueUnavailable, ValidationError
from .queue import JobQueue

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
RETRY_AFTER = "1"
# What this module stores on ``app.extensions`` (the JobQueue) and
# ``app.config`` (the Config).
EXTENSION = "eslengine"
KEYS_EXTENSION = "eslengine.keys"
CONFIG_KEY = "ESLENGINE_CONFIG"

bp = Blueprint("eslengine", __name__)


def create_app(config: Config, queue: JobQueue | None = None, *, allow_no_auth: bool = False,
               fast_intake: bool = False) -> Flask:
    """The API for ``config``. ``queue`` defaults to one built from the config
    (its Redis client connects on first use).

    Raises ``ConfigError`` when ``config.api_keys`` is empty, unless
    ``allow_no_auth`` is true: then every route is open to anyone who can
    reach it, which is for a local demo on 127.0.0.1 only.

    ``fast_intake``: serve ``POST /v1/calls`` through ``FastIntake`` in front
    of Flask (``serve`` does). Leave it off for an app you add request hooks
    or extensions to: the fast path does not run them.
    """
    _check_auth_config(config, allow_no_auth)
    app = Flask(__name__)
    app.config.from_mapping({"MAX_CONTENT_LENGTH": MAX_BODY, CONFIG_KEY: config})
    app.extensions[EXTENSION] = queue if queue is not None else JobQueue.from_config(config)
    app.extensions[KEYS_EXTENSION] = apikeys.KeyStore(app.extensions[EXTENSION].redis, config.key_prefix)
    app.register_blueprint(bp)
    if fast_intake:
        app.wsgi_app = FastIntake(app.wsgi_app, config, app.extensions[EXTENSION])  # type: ignore[method-assign]
    return app


def _check_auth_config(config: Config, allow_no_auth: bool) -> None:
    if not config.api_keys and not allow_no_auth:
        raise ConfigError("no API keys configured (ESLENGINE_API_KEYS); refusing to serve an open API")


def _config() -> Config:
    return current_app.config[CONFIG_KEY]  # type: ignore[no-any-return]


def _queue() -> JobQueue:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ auth


_OPEN_ENDPOINTS = frozenset({"eslengine.openapi", "eslengine.healthz"})


# Who calls when the API runs with no keys at all (a local demo).
_ANONYMOUS = apikeys.ApiKey(id="", name="anonymous", scopes=frozenset(apikeys.SCOPES), operator=True)


def authorized(header: str | None, keys: frozenset[str]) -> bool:
    """Whether an ``Authorization`` header carries one of the operator
    ``keys`` as a bearer token. Every key is compared, in constant time each."""
    return apikeys.operator_token(apikeys.bearer_token(header), keys)


def _key_store() -> apikeys.KeyStore:
    return current_app.extensions[KEYS_EXTENSION]  # type: ignore[no-any-return]


def _principal(header: str | None) -> apikeys.ApiKey | None:
    """The key an ``Authorization`` header names: an operator key of the
    config, a client key in Redis, or None."""
    config = _config()
    token = apikeys.bearer_token(header)
    if not token:
        return None if config.api_keys else _ANONYMOUS
    if apikeys.operator_token(token, config.api_keys):
        return apikeys.operator_key(token)
    key = _key_store().by_token(token)
    if key is None and not config.api_keys:
        return _ANONYMOUS
    return key


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint in _OPEN_ENDPOINTS:
        return None
    key = _principal(request.headers.get("Authorization"))
    if key is None:
        response = _error(401, "unauthorized", "a valid 'Authorization: Bearer <key>' header is required")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    g.key = key
    return None


def _require(scope: str, what: str) -> None:
    if not g.key.may(scope):
        raise _Forbidden("this key may not %s (it lacks the scope %r)" % (what, scope))


class _Forbidden(Exception):
    """The key lacks a scope (answered 403)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------ routes


@bp.post("/v1/calls")
def place_call() -> Response:
    _require("place", "place calls")
    key: apikeys.ApiKey = g.key
    data = _json_body()
    if not isinstance(data, dict):
        return _error(400, "bad_request", "must be a JSON object", field="body")
    try:
        call = calls.parse_request(data, _config())
        call = apikeys.apply_caller_ids(key, call)
    except ValidationError as exc:
        return _error(422, "invalid", exc.reason, field=exc.field)
    if key.operator:
        try:
            job_id = _queue().enqueue(call)
        except JobExists:
            return _exists(call.id)
        log.debug("job %s: queued", job_id)
        return _json(_queued(job_id), 202, Location=_call_path(job_id))
    wait = _key_store().take_call(key, time.time())
    if wait:
        response = _error(429, "rate_limited", "this key may place %d calls a minute" % key.rate_per_minute)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    # The id the client knows the call by; stored under its key's own.
    client_id = call.id
    if data.get("id") is not None:
        call = dataclasses.replace(call, id=apikeys.scoped_id(key, client_id))
    try:
        job_id = _queue().enqueue(call, owner=key.id, client_id=client_id)
    except JobExists:
        return _exists(client_id)
    log.debug("job %s: queued for key %s as %s", job_id, key.id, client_id)
    return _json(_queued(client_id), 202, Location=_call_path(client_id))


def _queued(job_id: str) -> dict[str, str]:
    """The 202 document of a call just queued (the route's and FastIntake's)."""
    return {"id": job_id, "status": "queued"}


def _call_path(job_id: str) -> str:
    return "/v1/calls/%s" % job_id


def _exists(job_id: str) -> Response:
    return _error(409, "conflict", "a call with this id already exists", field="id", id=job_id)


@bp.get("/v1/calls/<job_id>")
def get_call(job_id: str) -> Response:
    _require("read", "read calls")
    document = _queue().get(_stored_id(job_id))
    if document is None:
        raise NotFound("no call with this id")
    return _json(document)


@bp.delete("/v1/calls/<job_id>")
def cancel_call(job_id: str) -> Response:
    _require("cancel", "cancel calls")
    stored = _stored_id(job_id)
    job_id = _canonical_id(job_id)
    outcome, _, status = _queue().request_cancel(stored).partition(":")
    if outcome == "cancelled":
        log.info("job %s: cancelled while queued", job_id)
        return _json({"id": job_id, "status": "cancelled"})
    if outcome == "cancelling":
        log.info("job %s: cancel requested while %s", job_id, status)
        return _json({"id": job_id, "status": status, "cancel": "requested"}, 202)
    if outcome == "final":
        return _error(409, "conflict", "the call is already %s" % status, id=job_id, status=status)
    if outcome == "missing":
        raise NotFound("no call with this id")
    raise RuntimeError("job %s: unexpected cancel outcome %r" % (job_id, outcome))


@bp.get("/healthz")
def healthz() -> Response:
    try:
        _queue().ping()
    except QueueUnavailable as exc:
        log.warning("health check: redis unavailable: %s", exc)
        return _json({"status": "unavailable", "redis": "unavailable"}, 503, **{"Retry-After": RETRY_AFTER})
    return _json({"status": "ok", "redis": "ok"})


@bp.get("/v1/openapi.json")
def openapi() -> Response:
    return _json(openapi_document(_config()))


def _stored_id(job_id: str) -> str:
    """Where the call the caller's key knows as ``job_id`` is stored; 404
    for a call of another key (unless the key sees every call)."""
    job_id = _canonical_id(job_id)
    key: apikeys.ApiKey = g.key
    if key.operator:
        return job_id
    candidates = [apikeys.scoped_id(key, job_id), job_id]
    for candidate, owner in zip(candidates, _queue().owners(candidates)):
        if owner is not None and (owner == key.id or key.sees_all):
            return candidate
    raise NotFound("no call with this id")


def _canonical_id(job_id: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise NotFound("no call with this id") from None


def _json_body() -> object:
    """The request body as a JSON value; ``_BadBody`` if it is not one.
    A body over ``MAX_BODY`` raises werkzeug's 413 while it is read."""
    if not request.is_json:
        raise _BadBody("Content-Type must be application/json")
    return _decode_json(request.get_data(cache=False))


def _decode_json(raw: bytes) -> object:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadBody("is not UTF-8") from None
    try:
        # orjson refuses NaN and Infinity (not JSON) and lone surrogates
        # (not text), and stops at 1024 levels of nesting.
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            raise _BadBody("is nested too deeply") from None
        raise _BadBody("is not valid JSON: %s" % exc) from None


class _BadBody(Exception):
    """The body is not a JSON document (answered 400)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ------------------------------------------------------------------ errors


def _json(document: object, status: int = 200, /, **headers: str) -> Response:
    """A JSON answer (orjson: the 202 of ``POST /v1/calls`` is the hot path,
    and Flask's ``jsonify`` costs several times the encoding itself)."""
    return Response(orjson.dumps(document), status, headers, mimetype="application/json")


def _error(code: int, error: str, reason: str, /, **extra: str) -> Response:
    return _json({"error": error, "reason": reason, **extra}, code)


@bp.app_errorhandler(_BadBody)
def _bad_body(exc: _BadBody) -> Response:
    return _error(400, "bad_request", exc.reason, field="body")


@bp.app_errorhandler(_Forbidden)
def _forbidden(exc: _Forbidden) -> Response:
    return _error(403, "forbidden", exc.reason)


@bp.app_errorhandler(QueueUnavailable)
def _queue_unavailable(exc: QueueUnavailable) -> Response:
    log.warning("redis unavailable: %s", exc)
    response = _error(503, "unavailable", "the job queue (Redis) cannot be reached; retry shortly")
    response.headers["Retry-After"] = RETRY_AFTER
    return response


@bp.app_errorhandler(HTTPException)
def _http_exception(exc: HTTPException) -> Response:
    """Werkzeug's own errors (404, 405, 413 ...) as JSON, keeping their
    headers (``Allow`` on a 405)."""
    response = exc.get_response()
    name = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
    response.set_data(orjson.dumps({"error": name, "reason": exc.description or exc.name}))
    response.content_type = "application/json"
    return response


@bp.app_errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    """A bug: no client input is meant to get here."""
    log.exception("unhandled error on %s %s", request.method, request.path)
    return _error(500, "internal", "internal error")


# ------------------------------------------------------------------ fast path

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
            return _exists(call.id)(environ, start_response)
        except QueueUnavailable as exc:
            return _queue_unavailable(exc)(environ, start_response)
        except Exception:
            log.exception("unhandled error on POST %s", self.PATH)
            return _error(500, "internal", "internal error")(environ, start_response)
        log.debug("job %s: queued", job_id)
        body = orjson.dumps(_queued(job_id))
        start_response("202 ACCEPTED", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                        ("Location", _call_path(job_id))])
        return [body]

    def _length(self, environ: dict[str, Any]) -> int:
        """The body's length if the fast path takes this request, else 0."""
        length = environ.get("CONTENT_LENGTH") or ""
        if not (length.isascii() and length.isdigit()) or "HTTP_TRANSFER_ENCODING" in environ:
            return 0
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
            data = _decode_json(raw)
            return calls.parse_request(data, self.config) if isinstance(data, dict) else None
        except Exception:
            return None


# ------------------------------------------------------------------ OpenAPI

_DESTINATION_PATTERN = (
    r"^(\+[1-9][0-9]{6,14}|user/[A-Za-z0-9_.-]{1,64}(@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*)?"
    r"|sips?:[A-Za-z0-9_.+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*(:[0-9]{1,5})?)$"
)
_CALLER_ID_NUMBER_PATTERN = r"^\+?[0-9]{1,20}$"
_VARIABLE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
# What dialstring.check_value refuses, as far as a regex can say it: the
# delimiters, C0/C1 controls, line/paragraph separators and the runs '${',
# '$$', ':_:' and '^^'. Other invisible characters (Unicode Cf, Cn, Co, Cs)
# are refused too.
_TEXT_PATTERN = r"^(?!.*(?:\$\{|\$\$|:_:|\^\^))[^{}\[\]<>()|\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
_TEXT_RULE = (
    "No control or invisible characters (Unicode Cc, Cf, Cn, Co, Cs, Zl, Zp), "
    "none of { } [ ] < > ( ) |, and none of '${', '$$', ':_:', '^^'."
)
# A caller ID name is also a SIP display name: no '"' or backslash either.
_NAME_PATTERN = r'^(?!.*(?:\$\{|\$\$|:_:|\^\^))[^{}\[\]<>()|"\\\x00-\x1f\x7f-\x9f\u2028\u2029]*$'
_NAME_RULE = _TEXT_RULE[:-1] + ", and no '\"' or backslash."


def openapi_document(config: Config) -> dict[str, Any]:
    """The OpenAPI 3.0 description of the API as ``config`` sets it up
    (limits, and whether a bearer key is required)."""
    auth = bool(config.api_keys)

    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
        if headers:
            out["headers"] = headers
        return out

    def secured(responses: dict[str, Any]) -> dict[str, Any]:
        if auth:
            responses["401"] = error(
                "Missing or wrong API key.",
                {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Bearer"]}}},
            )
            responses["403"] = error("The key lacks the scope this needs (place, read or cancel).")
        responses["503"] = error(
            "Redis cannot be reached; retry.", {"Retry-After": {"schema": {"type": "string"}}}
        )
        return responses

    id_parameter = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The call's id (a UUID). Anything else, and a call another client key placed, is "
                       "answered 404.",
        "schema": {"type": "string"},
    }
    destination_note = ""
    if config.allow_patterns or config.blocked_prefixes:
        destination_note = " This deployment also refuses E.164 numbers outside its allowed ranges (422)."
    destination = {
        "type": "string",
        "maxLength": 128,
        "pattern": _DESTINATION_PATTERN,
        "description": "An E.164 number (+15551230001) or a FreeSWITCH directory user "
        "(user/1000, user/1000@example.com)." + destination_note,
    }
    text = {"type": "string", "minLength": 1, "pattern": _TEXT_PATTERN}
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "eslengine",
            "version": _version(),
            "description": "Click-to-call through FreeSWITCH: ring leg A, and when it answers, "
            "connect it to leg B. Calls are queued and placed by workers; poll "
            "GET /v1/calls/{id} for the outcome.",
        },
        "paths": {
            "/v1/calls": {
                "post": {
                    "operationId": "placeCall",
                    "summary": "Queue a click-to-call.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("CallRequest")}},
                    },
                    "responses": secured(
                        {
                            "202": {
                                "description": "The job is in the queue.",
                                "headers": {
                                    "Location": {
                                        "description": "/v1/calls/{id}",
                                        "schema": {"type": "string"},
                                    }
                                },
                                "content": {"application/json": {"schema": ref("Accepted")}},
                            },
                            "400": error("The body is not a JSON object (or not application/json)."),
                            "409": error("This key already placed a call with the given id."),
                            "413": error("The body is larger than %d bytes." % MAX_BODY),
                            "422": error("A field is invalid; 'field' names it."),
                            "429": error("The key placed as many calls this minute as it may.",
                                         {"Retry-After": {"schema": {"type": "string"}}}),
                        }
                    ),
                }
            },
            "/v1/calls/{id}": {
                "parameters": [id_parameter],
                "get": {
                    "operationId": "getCall",
                    "summary": "A call's status and outcome.",
                    "responses": secured(
                        {
                            "200": {
                                "description": "The call.",
                                "content": {"application/json": {"schema": ref("Call")}},
                            },
                            "404": error("No call with this id."),
                        }
                    ),
                },
                "delete": {
                    "operationId": "cancelCall",
                    "summary": "Cancel a call: at once while queued, else a worker hangs it up.",
                    "responses": secured(
                        {
                            "200": {
                                "description": "It was still queued; it is cancelled and will not be dialed.",
                                "content": {"application/json": {"schema": ref("Cancelled")}},
                            },
                            "202": {
                                "description": "It is being dialed or is up; a worker will hang it up.",
                                "content": {"application/json": {"schema": ref("CancelRequested")}},
                            },
                            "404": error("No call with this id."),
                            "409": error("The call has already ended; 'status' says how."),
                        }
                    ),
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether this API process can reach Redis.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Healthy.",
                            "content": {"application/json": {"schema": ref("Health")}},
                        },
                        "503": {
                            "description": "Redis cannot be reached.",
                            "headers": {"Retry-After": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": ref("Health")}},
                        },
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Destination": destination,
                "Party": {
                    "description": "One destination, a list (rung in turn, or all at once with mode "
                    "simultaneous), or an object with per-party options.",
                    "oneOf": [
                        ref("Destination"),
                        {"type": "array", "minItems": 1, "maxItems": config.max_destinations,
                         "items": ref("Destination")},
                        {
                            "type": "object",
                            "required": ["to"],
                            "additionalProperties": False,
                            "properties": {
                                "to": {"oneOf": [ref("Destination"), {"type": "array", "minItems": 1,
                                                                      "maxItems": config.max_destinations,
                                                                      "items": ref("Destination")}]},
                                "mode": {"type": "string", "enum": list(calls.MODES), "default": "sequential"},
                                "timeout": {"type": "integer", "minimum": calls.MIN_RING_TIMEOUT,
                                            "maximum": config.max_ring_timeout,
                                            "description": "Seconds each destination rings."},
                                "retries": {"type": "integer", "minimum": 0, "maximum": config.max_retries},
                                "ignore_early_media": {"type": "boolean", "default": True},
                                "auto_answer": {"type": "boolean", "default": False,
                                                "description": "Ask SIP phones to answer by themselves."},
                                "caller_id_number": {"type": "string", "maxLength": 21,
                                                     "pattern": _CALLER_ID_NUMBER_PATTERN},
                                "caller_id_name": dict(text, maxLength=calls.MAX_NAME, pattern=_NAME_PATTERN),
                                "anonymous": {"type": "boolean", "default": False},
                                "show_other_number": {"type": "boolean", "default": False,
                                                      "description": "Show this party the other party's number."},
                                "presence_id": {"type": "string", "maxLength": 200},
                                "sip_headers": {"type": "object", "maxProperties": calls.MAX_SIP_HEADERS,
                                                "description": "X- headers only.",
                                                "additionalProperties": {"type": "string",
                                                                         "maxLength": calls.MAX_VALUE}},
                            },
                        },
                    ],
                },
                "Media": {
                    "oneOf": [
                        {"type": "string", "enum": ["ring", "us-ring", "uk-ring", "moh", "beep"]},
                        {"type": "object", "additionalProperties": False, "properties": {
                            "file": {"type": "string", "maxLength": 200},
                            "url": {"type": "string", "maxLength": 500},
                            "say": {"type": "string", "maxLength": calls.MAX_SAY},
                            "language": {"type": "string"},
                            "voice": {"type": "string"}}},
                    ],
                },
                "CallRequest": {
                    "type": "object",
                    "required": ["a", "b"],
                    "additionalProperties": False,
                    "properties": {
                        "a": dict(ref("Party"), description="Party A (rung first unless dial_first is b)."),
                        "b": dict(ref("Party"), description="Party B (connected once the first party answers)."),
                        "dial_first": {"type": "string", "enum": list(calls.PARTY_NAMES), "default": "a",
                                       "description": "Which party rings first."},
                        "number_filter": {
                            "description": "Applied to every number before validation: 'digits' keeps digits "
                            "(a '+' is added), {'regex': ...} keeps the first capture group of the leftmost "
                            "match (RE2 syntax: no back references or lookaround; at most %d characters)."
                            % calls.MAX_FILTER_PATTERN,
                            "oneOf": [{"type": "string", "enum": ["digits"]},
                                      {"type": "object", "additionalProperties": False, "required": ["regex"],
                                       "properties": {"regex": {"type": "string",
                                                                "maxLength": calls.MAX_FILTER_PATTERN}}}],
                        },
                        "ringback": dict(ref("Media"), description="What the first party hears while the second "
                                         "rings: ring, us-ring, uk-ring, moh (music on hold), or {file}/{url}."),
                        "announcement": dict(ref("Media"), description="Played to the first party when it answers, "
                                             "before the second is rung: {file}, {url} or {say, language, voice} "
                                             "(text to speech where the switch has a TTS module)."),
                        "max_duration": {"type": "integer", "minimum": calls.MIN_DURATION,
                                         "maximum": config.max_call_duration, "nullable": True,
                                         "description": "Seconds the connected call may last; then it is hung up "
                                         "(ALLOTTED_TIMEOUT)."},
                        "warnings": {
                            "type": "array", "maxItems": calls.MAX_WARNINGS, "nullable": True,
                            "description": "Sounds played to both parties at given seconds before the end "
                            "(needs max_duration) or after they were connected.",
                            "items": {"type": "object", "additionalProperties": False, "properties": {
                                "before_end": {"type": "integer", "minimum": 1},
                                "after": {"type": "integer", "minimum": 1},
                                "sound": ref("Media")}},
                        },
                        "record": {
                            "description": "Record the connected call; the file's path is in the call's "
                            "'recording'.",
                            "oneOf": [{"type": "boolean"},
                                      {"type": "object", "additionalProperties": False, "properties": {
                                          "format": {"type": "string", "enum": list(calls.RECORD_FORMATS)},
                                          "stereo": {"type": "boolean"}}}],
                        },
                        "media": {"type": "string", "enum": list(calls.MEDIA), "default": "process",
                                  "description": "bypass/proxy keep media off the switch (no recording, "
                                  "announcement, warnings or ringback then)."},
                        "node": {"type": "string", "nullable": True,
                                 "description": "Place the call on this FreeSWITCH node (its configured name)."},
                        "target_call_id": {"type": "string", "format": "uuid", "nullable": True,
                                           "description": "Place the call on the node holding this channel."},
                        "retry": {
                            "type": "object", "additionalProperties": False, "nullable": True,
                            "description": "Place the whole call again when it fails for one of the reasons in "
                            "'on' (busy: USER_BUSY; no_answer: NO_ANSWER and the like; temporary: network and "
                            "switch trouble). Invalid numbers and refused calls are never retried.",
                            "properties": {
                                "attempts": {"type": "integer", "minimum": 1, "maximum": config.max_attempts,
                                             "default": config.default_attempts},
                                "backoff": {"type": "integer", "minimum": calls.MIN_BACKOFF,
                                            "maximum": calls.MAX_BACKOFF, "default": config.default_retry_backoff,
                                            "description": "Seconds before the second attempt; doubles after "
                                            "each."},
                                "on": {"type": "array", "items": {"type": "string",
                                                                  "enum": sorted(calls.RETRY_GROUPS)}},
                            },
                        },
                        "callback_url": {"type": "string", "maxLength": 500, "nullable": True,
                                         "description": "Webhook: receives the call's document on every status "
                                         "change, signed (X-Eslengine-Signature: t=<unix time>,v1=<HMAC of "
                                         "'<t>.<body>'>) and retried until delivered. Only URLs the operator "
                                         "allows, on public addresses unless the operator allows others."},
                        "caller_id_number": {
                            "type": "string",
                            "nullable": True,
                            "maxLength": 21,
                            "pattern": _CALLER_ID_NUMBER_PATTERN,
                            "description": "Caller id number shown to both legs.",
                        },
                        "caller_id_name": dict(
                            text,
                            nullable=True,
                            maxLength=calls.MAX_NAME,
                            pattern=_NAME_PATTERN,
                            description="Caller id name shown to both legs. " + _NAME_RULE,
                        ),
                        "timeout": {
                            "type": "integer",
                            "nullable": True,
                            "minimum": calls.MIN_RING_TIMEOUT,
                            "maximum": config.max_ring_timeout,
                            "default": config.default_ring_timeout,
                            "description": "Seconds to ring each leg.",
                        },
                        "variables": {
                            "type": "object",
                            "nullable": True,
                            "maxProperties": config.max_variables,
                            "description": "Custom channel variables, set on both legs as eslengine_var_<name>. "
                            "Names match %s. String values: at most %d characters; %s"
                            % (_VARIABLE_NAME_PATTERN, calls.MAX_VALUE, _TEXT_RULE),
                            "additionalProperties": {
                                "anyOf": [
                                    {"type": "string", "maxLength": calls.MAX_VALUE, "pattern": _TEXT_PATTERN},
                                    {"type": "number"},
                                    {"type": "boolean"},
                                ]
                            },
                        },
                        "id": {
                            "type": "string",
                            "format": "uuid",
                            "nullable": True,
                            "description": "Your own id for the call (a UUID); one is made when absent. "
                            "It becomes the A leg's channel UUID.",
                        },
                    },
                },
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": ["queued"]},
                    },
                },
                "Cancelled": {
                    "type": "object",
                    "required": ["id", "status"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": ["cancelled"]},
                    },
                },
                "CancelRequested": {
                    "type": "object",
                    "required": ["id", "status", "cancel"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": [s for s in calls.STATUSES if s not in calls.FINAL]},
                        "cancel": {"type": "string", "enum": ["requested"]},
                    },
                },
                "Call": {
                    "type": "object",
                    "required": [
                        "id", "status", "a", "b", "caller_id_number", "caller_id_name", "timeout",
                        "variables", "attempts", "timestamps", "durations", "history",
                    ],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": list(calls.STATUSES)},
                        "a": ref("Party"),
                        "b": ref("Party"),
                        "request": {"type": "object", "description": "The accepted request, normalised."},
                        "recording": {"type": "string"},
                        "caller_id_number": {"type": "string", "nullable": True},
                        "caller_id_name": {"type": "string", "nullable": True},
                        "timeout": {"type": "integer", "nullable": True},
                        "variables": {"type": "object", "additionalProperties": {"type": "string"}},
                        "key": {"type": "string", "description": "The client API key that placed it."},
                        "a_uuid": {"type": "string", "description": "The first leg's uuid on the switch (for a "
                                   "client key's own id, not that id: see the README's 'API keys')."},
                        "b_uuid": {"type": "string"},
                        "node": {"type": "string"},
                        "hangup_cause": {"type": "string"},
                        "a_hangup_cause": {"type": "string"},
                        "b_hangup_cause": {"type": "string"},
                        "error": {"type": "string"},
                        "attempts": {"type": "integer", "minimum": 0},
                        "timestamps": {
                            "type": "object",
                            "description": "ISO 8601 UTC times by event: created, queued, dialing, ringing, "
                            "answered, bridged, completed, failed, cancelled, ended, updated.",
                            "additionalProperties": {"type": "string"},
                        },
                        "durations": {
                            "type": "object",
                            "description": "ring_seconds, talk_seconds when known.",
                            "additionalProperties": {"type": "number"},
                        },
                        "history": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["status", "at"],
                                "properties": {
                                    "status": {"type": "string", "enum": list(calls.STATUSES)},
                                    "at": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "redis"],
                    "additionalProperties": False,
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "redis": {"type": "string", "enum": ["ok", "unavailable"]},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "error": {
                            "type": "string",
                            "description": "bad_request, invalid, conflict, unauthorized, unavailable, "
                            "not_found, method_not_allowed, request_entity_too_large ...",
                        },
                        "reason": {"type": "string"},
                        "field": {
                            "type": "string",
                            "description": "The offending field, dotted (variables.campaign); 'body' for the body.",
                        },
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": list(calls.FINAL)},
                    },
                },
            },
        },
    }
    if auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _version() -> str:
    from . import __version__

    return __version__


# ------------------------------------------------------------------ serving


def serve(
    config: Config,
    bind: str,
    *,
    workers: int = 1,
    dev: bool = False,
    allow_no_auth: bool = False,
    access_log: bool = False,
) -> None:
    """Serve the API on ``bind`` (``host:port``) until stopped.

    Production: gunicorn with gevent workers; each worker builds its own app
    (``POST /v1/calls`` through ``FastIntake``) and Redis client after the
    fork, and gunicorn exits the process
    (``SystemExit``) when it stops. ``dev=True``: Flask's single-process
    development server, for debugging only. A config the app refuses raises
    ``ConfigError`` here, before anything is started.
    """
    _check_auth_config(config, allow_no_auth)
    if dev:
        host, _, port = bind.rpartition(":")
        if not port.isdigit():
            raise ConfigError("bind %r: expected host:port" % bind)
        app = create_app(config, allow_no_auth=allow_no_auth)
        # The catch-all error handler answers every exception, so Werkzeug's
        # interactive debugger would never be shown; keep it off.
        app.run(host=host.strip("[]") or "127.0.0.1", port=int(port), debug=True, use_reloader=False,
                use_debugger=False)
        return
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": workers,
        "worker_class": "gevent",
        "worker_connections": 1000,
        "timeout": 30,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "loglevel": config.log_level.lower(),
        "proc_name": "eslengine-api",
        "preload_app": False,
    }
    _GunicornServer(config, options, allow_no_auth=allow_no_auth).run()


class _GunicornServer(BaseApplication):  # type: ignore[misc]
    """gunicorn embedded: options from ``serve``, never from argv or a file."""

    def __init__(self, config: Config, options: dict[str, Any], *, allow_no_auth: bool) -> None:
        self.config = config
        self.options = options
        self.allow_no_auth = allow_no_auth
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after the fork (preload_app is off), so every
        # worker has its own Redis connections. Under gevent the enqueues of
        # concurrent requests share pipelines (group commit); each request
        # still answers 202 only once its job is in Redis.
        from .cli import tune_gc
        from .redisbatch import CommandBatcher

        app = create_app(self.config, allow_no_auth=self.allow_no_auth, fast_intake=True)
        queue = app.extensions[EXTENSION]
        batcher = CommandBatcher(queue.redis)
        batcher.start()
        queue.use_batcher(batcher)
        tune_gc()
        return app

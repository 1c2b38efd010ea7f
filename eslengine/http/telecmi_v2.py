"""TeleCMI's click-to-call on the API (``telecmi`` translates).

    GET  /v2/webrtc/click2call?user_id=…&secret=…&to=…   place a call
    POST /v2/webrtc/click2call   {"user_id", "secret", "to", …}   the same
    GET  /v1/openapi/telecmi.json   this surface's OpenAPI document

Answers are TeleCMI's ``{"code", "msg"[, "request_id"]}`` with the code as
the HTTP status: 200 "Call initiated" (``request_id`` is the call's id, for
``GET /v1/calls/<id>`` with the same key), 400 a missing or malformed
parameter (named), 404 "invalid user_id", 407 "invalid app secret", and the
engine's own 403 (the secret lacks the ``place`` scope), 413, 429
(the key's rate, with ``Retry-After``) and 503 (Redis unreachable).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from .. import apikeys, calls, telecmi
from ..config import Config
from ..errors import DoNotCall, QueueUnavailable, ValidationError
from . import auth, context
from .openapi_telecmi import DOCUMENT, openapi_document
from .responses import RETRY_AFTER, BadBody, json_body, json_response

log = logging.getLogger(__name__)

bp = Blueprint("telecmi_v2", __name__)
METHODS = ("GET", "POST")


def _answer(status: int, msg: str, **headers: str) -> Response:
    return json_response(telecmi.error_reply(status, msg), status, **headers)


def _refused(exc: telecmi.Refused) -> Response:
    return _answer(exc.status, exc.msg)


def _bad_body(exc: BadBody) -> Response:
    return _answer(400, "the body %s" % exc.reason)


def _http_exception(exc: HTTPException) -> Response:
    code = exc.code or 400
    return _answer(code, exc.description or exc.name)


def _unavailable(exc: QueueUnavailable) -> Response:
    log.warning("redis unavailable: %s", exc)
    return _answer(503, "the engine's job queue cannot be reached; retry shortly", **{"Retry-After": RETRY_AFTER})


bp.register_error_handler(telecmi.Refused, _refused)
bp.register_error_handler(BadBody, _bad_body)
bp.register_error_handler(HTTPException, _http_exception)
bp.register_error_handler(QueueUnavailable, _unavailable)


@bp.route(telecmi.PATH, methods=METHODS)
def click2call() -> Response:
    if request.method == "GET":
        data: object = telecmi.query_request(list(request.args.items(multi=True)))
    else:
        if request.args:
            raise telecmi.Refused(400, "a POST takes its parameters in the JSON body, not the query string")
        data = json_body()
    call_request = telecmi.parse_request(data)
    key = auth.principal("Bearer " + call_request.secret)
    if key is None:
        raise telecmi.Refused(407, "invalid app secret")
    if not key.may("place"):
        raise telecmi.Refused(403, "this secret may not place calls (its key lacks the scope 'place')")
    account = telecmi.account_of(call_request, key.account, key.sees_all)
    store = context.account_store()
    if store.account(account) is None:
        raise telecmi.Refused(404, "invalid user_id")
    document = telecmi.native_request(call_request, store.directory(account),
                                      show_to_number=key.operator or not key.caller_ids)
    config = context.config()
    call = _native(document, key, config)
    if not key.operator and key.rate_per_minute:
        wait = context.key_store().take_call(key, time.time())
        if wait:
            return _answer(429, "this secret may place %d calls a minute" % key.rate_per_minute,
                           **{"Retry-After": str(max(1, math.ceil(wait)))})
    try:
        job_id = context.queue().enqueue(call, owner="" if key.operator else key.id, account=account)
    except DoNotCall as exc:
        raise telecmi.refusal(exc) from None
    log.info("job %s: telecmi click2call for user %s of account %s", job_id, call_request.user, account)
    return json_response(telecmi.initiated(job_id))


def _native(document: dict[str, Any], key: apikeys.ApiKey, config: Config) -> calls.CallRequest:
    try:
        call = calls.parse_request(document, config)
        return call if key.operator else apikeys.apply_caller_ids(key, call)
    except ValidationError as exc:
        raise telecmi.refusal(exc) from None


@bp.get(DOCUMENT)
def openapi() -> Response:
    return json_response(openapi_document(context.config()))

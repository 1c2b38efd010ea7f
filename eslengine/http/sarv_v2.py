"""Sarv's click-to-call on the API (``sarv`` translates).

    POST /v2/clickToCall/para?user_id=…&token=…&from=…&to=…   place a call
    GET  /v2/clickToCall/para?…                                the same
    GET  /v1/openapi/sarv.json                                 this surface's OpenAPI document

Parameters come in the query string (a form-encoded POST body is read too;
a parameter in both is refused). Answers are Sarv's: ``{"callid", "status":
"success", "code": "200"}`` (200; ``callid`` is the call's id, for ``GET
/v1/calls/<id>`` with the same token) or ``{"message", "status": "error",
"code"}`` with Sarv's numeric code: HTTP 401 for the credentials' codes
(1002, 1013, 1014, 1020), 503 for 1501 (Redis unreachable), 400 for every
other. Conditions Sarv has no code for carry the HTTP status as the code:
403 (the token lacks the ``place`` scope), 413, 429 (the token's rate,
with ``Retry-After``).
"""

from __future__ import annotations

import logging
import math
import time

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from .. import apikeys, calls, sarv
from ..errors import DoNotCall, QueueUnavailable, ValidationError
from . import auth, context
from .openapi_sarv import DOCUMENT, openapi_document
from .responses import RETRY_AFTER, json_response

log = logging.getLogger(__name__)

bp = Blueprint("sarv_v2", __name__)
METHODS = ("GET", "POST")


def status_of(code: str) -> int:
    """The HTTP status of an answer carrying Sarv's ``code``."""
    if code in sarv.AUTH_CODES:
        return 401
    if code == sarv.CONNECTION:
        return 503
    if len(code) == 3:
        return int(code)
    return 400


def _answer(code: str, message: str, **headers: str) -> Response:
    return json_response(sarv.error_reply(code, message), status_of(code), **headers)


def _refused(exc: sarv.Refused) -> Response:
    return _answer(exc.code, exc.message)


def _http_exception(exc: HTTPException) -> Response:
    return _answer(str(exc.code or 400), exc.description or exc.name)


def _unavailable(exc: QueueUnavailable) -> Response:
    log.warning("redis unavailable: %s", exc)
    return _answer(sarv.CONNECTION, "Connection Issue: the engine's job queue cannot be reached; retry shortly",
                   **{"Retry-After": RETRY_AFTER})


bp.register_error_handler(sarv.Refused, _refused)
bp.register_error_handler(HTTPException, _http_exception)
bp.register_error_handler(QueueUnavailable, _unavailable)


def _pairs() -> list[tuple[str, str]]:
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        if request.mimetype == "application/x-www-form-urlencoded":
            pairs += list(request.form.items(multi=True))
        elif request.get_data(cache=False):
            raise sarv.Refused(sarv.FORMAT, "Invalid format: parameters go in the query string (or a "
                               "form-encoded body)")
    return pairs


@bp.route(sarv.PATH, methods=METHODS)
def click_to_call() -> Response:
    params = sarv.parameters(_pairs())
    account, token = sarv.credentials(params)
    key = auth.principal("Bearer " + token)
    if key is None:
        raise sarv.Refused(sarv.BAD_TOKEN, "Invalid token")
    store = context.account_store()
    # Another account's id and one nobody uses answer alike.
    if not key.sees_account(account) or store.account(account) is None:
        raise sarv.Refused(sarv.BAD_USER_ID, "Invalid user id")
    if not key.may("place"):
        return _answer("403", "this token may not place calls (its key lacks the scope 'place')")
    config = context.config()
    call_request = sarv.parse_request(params, config)
    document = sarv.native_request(call_request, store.directory(account), config)
    try:
        call = calls.parse_request(document, config)
        if not key.operator:
            call = apikeys.apply_caller_ids(key, call)
    except ValidationError as exc:
        raise sarv.refusal(exc, call_request) from None
    if not key.operator and key.rate_per_minute:
        wait = context.key_store().take_call(key, time.time())
        if wait:
            return _answer("429", "this token may place %d calls a minute" % key.rate_per_minute,
                           **{"Retry-After": str(max(1, math.ceil(wait)))})
    try:
        job_id = context.queue().enqueue(call, owner="" if key.operator else key.id, account=account)
    except DoNotCall as exc:
        raise sarv.refusal(exc, call_request) from None
    log.info("job %s: sarv click-to-call for account %s (%s %s to %s %s)", job_id, account, call_request.a.type,
             len(call_request.a.values), call_request.b.type, len(call_request.b.values))
    return json_response(sarv.placed(job_id))


@bp.get(DOCUMENT)
def openapi() -> Response:
    return json_response(openapi_document(context.config()))

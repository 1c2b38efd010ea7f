"""Infobip's click-to-call on the API (``infobip`` translates).

    POST /voice/ctc/1/send          {"bulkId", "messages": [...]}   place one call per message
    GET  /v1/openapi/infobip.json   this surface's OpenAPI document

``Authorization: App <API key>`` or ``Basic <base64 of account id:API key>``.
Answers are Infobip's: 200 with every message ``PENDING_ACCEPTED`` (its
``messageId``, or the call's id when the message named none: ``GET
/v1/calls/<id>`` with the same key shows it), or ``{"requestError":
{"serviceException": {"messageId", "text"}}}``: 400 naming the field (no
message is placed when one is refused), 401, 403 (the key lacks the
``place`` scope), 413, 429 (the key's rate, with ``Retry-After``), 503
(Redis unreachable).
"""

from __future__ import annotations

import logging
import math
import time

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from .. import apikeys, calls, infobip
from ..errors import DoNotCall, QueueUnavailable, ValidationError
from . import auth, context
from .openapi_infobip import DOCUMENT, openapi_document
from .responses import RETRY_AFTER, BadBody, decode_json, json_response

log = logging.getLogger(__name__)

bp = Blueprint("infobip_ctc", __name__)


def _answer(status: int, text: str, field: str = "", **headers: str) -> Response:
    return json_response(infobip.error_reply(status, text, field), status, **headers)


def _refused(exc: infobip.Refused) -> Response:
    response = _answer(exc.status, exc.text, exc.field)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="eslengine"'
    return response


def _bad_body(exc: BadBody) -> Response:
    return _answer(400, "body: %s" % exc.reason, "body")


def _http_exception(exc: HTTPException) -> Response:
    return _answer(exc.code or 400, exc.description or exc.name)


def _unavailable(exc: QueueUnavailable) -> Response:
    log.warning("redis unavailable: %s", exc)
    return _answer(503, "the engine's job queue cannot be reached; retry shortly", **{"Retry-After": RETRY_AFTER})


bp.register_error_handler(infobip.Refused, _refused)
bp.register_error_handler(BadBody, _bad_body)
bp.register_error_handler(HTTPException, _http_exception)
bp.register_error_handler(QueueUnavailable, _unavailable)


def _caller() -> tuple[apikeys.ApiKey, str]:
    """The key the request's credentials name and the account its calls
    are placed for; ``Refused`` 401 when they name none."""
    found = infobip.credentials(request.headers.get("Authorization"))
    key = auth.principal("Bearer " + found.token)
    if key is None:
        raise infobip.Refused(401, "Invalid login details")
    if not found.account or found.account == key.id:
        return key, key.account
    # A Basic user is an account the key belongs to (or, for an operator or
    # admin key, any account); another account and none at all answer alike.
    if not key.sees_account(found.account) or context.account_store().account(found.account) is None:
        raise infobip.Refused(401, "Invalid login details")
    return key, found.account


@bp.post(infobip.PATH)
def send() -> Response:
    key, account = _caller()
    if not key.may("place"):
        raise infobip.Refused(403, "this key may not place calls (it lacks the scope 'place')")
    # Read as JSON whatever its Content-Type, as Infobip's own examples
    # (curl -d) do not always say.
    send_request = infobip.parse_request(decode_json(request.get_data(cache=False)))
    config = context.config()
    placed: list[calls.CallRequest] = []
    for message in send_request.messages:
        document = infobip.native_request(message, send_request.bulk_id)
        try:
            call = calls.parse_request(document, config)
            placed.append(call if key.operator else apikeys.apply_caller_ids(key, call))
        except ValidationError as exc:
            raise infobip.refusal(exc, message) from None
    # Every message's numbers first: a message refused for a do-not-call
    # number refuses the request, with nothing queued.
    for message, call in zip(send_request.messages, placed):
        try:
            context.queue().check_do_not_call(call, account)
        except DoNotCall as exc:
            raise infobip.refusal(exc, message) from None
    if not key.operator and key.rate_per_minute:
        for _ in placed:
            wait = context.key_store().take_call(key, time.time())
            if wait:
                return _answer(429, "this key may place %d calls a minute" % key.rate_per_minute,
                               **{"Retry-After": str(max(1, math.ceil(wait)))})
    ids = []
    for message, call in zip(send_request.messages, placed):
        job_id = context.queue().enqueue(call, owner="" if key.operator else key.id, account=account)
        log.info("job %s: infobip click-to-call, bulk %r message %r", job_id, send_request.bulk_id,
                 message.message_id)
        ids.append(message.message_id if message.message_id is not None else job_id)
    return json_response(infobip.accepted(send_request, ids))


@bp.get(DOCUMENT)
def openapi() -> Response:
    return json_response(openapi_document(context.config()))

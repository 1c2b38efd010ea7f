"""The Kazoo crossbar facade's routes (``/v2/accounts/<account>/...``).

    GET    .../clicktocall                      list
    PUT    .../clicktocall                      create (201)
    GET    .../clicktocall/<id>                 fetch
    POST   .../clicktocall/<id>                 change (replace)
    PATCH  .../clicktocall/<id>                 patch (merge)
    DELETE .../clicktocall/<id>                 delete
    GET    .../clicktocall/<id>/history         its connects
    GET    .../clicktocall/<id>/connect?contact=...        connect (202; blocking=true: 200)
    POST   .../clicktocall/<id>/connect {"data": {"contact": ...}}
    GET    .../{users,devices}/<id>/quickcall/<number>     quickcall (202 at once)
    POST   .../{users,devices}/<id>/quickcall/<number>     quickcall, blocking (202 once it rings)
    GET    /v2/kazoo/openapi.json                the OpenAPI description of all of the above

The token is ``X-Auth-Token`` (or ``Authorization: Bearer``): an operator
key or a key of the account. Reading needs the key's ``read`` scope,
changing ``manage``, connecting and quickcalls ``place``. Every answer,
errors included, is in crossbar's envelope (``crossbar``); the model is the
native one (``translate``), so what one surface makes the other sees.
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from ... import accounts, apikeys, calls, clicktocall
from ...errors import QueueUnavailable, ValidationError
from ...store import now_iso
from .. import auth, blocking, context, listing
from ..accounts_v1 import connect_records, place_connect
from ..calls_v1 import WAIT_LIMIT
from ..responses import BadBody, decode_json, json_response
from . import crossbar, translate
from .openapi import openapi_document

log = logging.getLogger(__name__)

bp = Blueprint("kazoo", __name__)

ACCOUNT = "/v2/accounts/<account_id>"
C2C = ACCOUNT + "/clicktocall"
ENDPOINT_KINDS = {"users": "user", "devices": "device"}
HISTORY_PAGE = 50
MAX_HISTORY_PAGE = 100
# Kazoo's blocking connect waits this long for the originate's answer.
CONNECT_WAIT = 20.0
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NODE = crossbar.node_name()


class Refused(Exception):
    """An answer other than success, already in crossbar's shape."""

    def __init__(self, code: int, document: dict[str, Any], **headers: str) -> None:
        super().__init__(document.get("message"))
        self.code = code
        self.document = document
        self.headers = headers


# ---------------------------------------------------------------- envelope


@bp.before_request
def _start() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.kazoo_meta = crossbar.Meta(request_id=given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex,
                                 auth_token=_token(), timestamp=crossbar.timestamp(time.time()), node=_NODE)


def _meta() -> crossbar.Meta:
    meta = getattr(g, "kazoo_meta", None)
    return meta if meta is not None else crossbar.Meta(request_id=uuid.uuid4().hex, node=_NODE)


def _answer(document: dict[str, Any], code: int, **headers: str) -> Response:
    return json_response(document, code, **{"X-Request-ID": _meta().request_id, **headers})


def reply(data: object, code: int = 200, **extra: object) -> Response:
    return _answer(crossbar.success(data, _meta(), **extra), code)


def refuse(code: int, reason: str = "", **headers: str) -> NoReturn:
    raise Refused(code, crossbar.system_error(code, _meta(), reason), **headers)


def _refused(exc: Refused) -> Response:
    return _answer(exc.document, exc.code, **exc.headers)


def _invalid(exc: ValidationError) -> Response:
    return _answer(crossbar.validation_error(exc.field, exc.reason, _meta()), 400)


def _bad_body(exc: BadBody) -> Response:
    return _answer(crossbar.validation_error("json", "malformed JSON: the body %s" % exc.reason, _meta()), 400)


def _unavailable(exc: QueueUnavailable) -> Response:
    log.warning("redis unavailable: %s", exc)
    return _answer(crossbar.system_error(503, _meta(), "the datastore (Redis) cannot be reached; retry shortly"),
                   503, **{"Retry-After": "1"})


def http_error(exc: HTTPException) -> Response:
    """Werkzeug's errors in crossbar's envelope (also for a path under
    /v2/accounts that no route takes: ``create_app``)."""
    code = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge):
        document = crossbar.failure(413, "validation error", {"file": {"maxSize": {
            "message": "the body must not be more than %d bytes" % current_app.config["MAX_CONTENT_LENGTH"]}}},
            _meta())
        return _answer(document, 413)
    if code not in crossbar.SYSTEM_ERRORS:
        code = 400
    headers = {"Allow": exc.get_response().headers["Allow"]} if isinstance(exc, MethodNotAllowed) else {}
    return _answer(crossbar.system_error(code, _meta(), exc.description or ""), code, **headers)


bp.register_error_handler(Refused, _refused)
bp.register_error_handler(ValidationError, _invalid)
bp.register_error_handler(BadBody, _bad_body)
bp.register_error_handler(QueueUnavailable, _unavailable)
bp.register_error_handler(HTTPException, http_error)


def _body(*, required: bool = False) -> dict[str, Any]:
    """The request's ``data`` (crossbar reads a JSON body whatever its
    Content-Type: ``curl -d`` sends it as a form)."""
    raw = request.get_data(cache=False)
    document = decode_json(raw) if raw.strip() else None
    return crossbar.request_data(document, required=required)


# ---------------------------------------------------------------- who is calling


def _token() -> str:
    token = request.headers.get("X-Auth-Token", "").strip()
    return token or apikeys.bearer_token(request.headers.get("Authorization"))


def _key() -> apikeys.ApiKey | None:
    if "auth_token" in request.args:
        raise ValidationError("auth_token", "send the token in the X-Auth-Token header (a query string ends up "
                              "in logs)")
    token = _token()
    return auth.principal("Bearer " + token if token else None)


def _caller(account_id: str, scope: str) -> apikeys.ApiKey:
    """The key of the request, with ``scope`` and seeing ``account_id``."""
    key = _key()
    if key is None:
        refuse(401)
    _check(key, account_id, scope)
    return key


def _check(key: apikeys.ApiKey, account_id: str, scope: str) -> None:
    if not key.may(scope):
        refuse(403, "this token may not do this (it lacks the scope %r)" % scope)
    if not key.sees_account(account_id):
        refuse(403, "this token is not of this account")
    if context.account_store().account(account_id) is None:
        refuse(404, "no account with this id")


def _resource(account_id: str, item_id: str) -> dict[str, Any]:
    found = context.account_store().item(account_id, "clicktocall", item_id)
    if found is None:
        refuse(404, "no clicktocall with this id")
    return found


# ---------------------------------------------------------------- click-to-call resources


@bp.get(C2C)
def list_resources(account_id: str) -> Response:
    _caller(account_id, "read")
    found = [translate.summary_out(item) for item in context.account_store().items(account_id, "clicktocall")]
    return reply(found, page_size=len(found))


@bp.put(C2C)
def create_resource(account_id: str) -> Response:
    _caller(account_id, "manage")
    data = translate.resource_in(_body(required=True))
    store = context.account_store()
    if store.count(account_id, "clicktocall") >= accounts.MAX_ITEMS:
        refuse(400, "this account holds %d clicktocall resources, as many as it may" % accounts.MAX_ITEMS)
    document = accounts.parse_item("clicktocall", data, store.directory(account_id), context.config())
    stored = store.add(account_id, "clicktocall", document, now_iso())
    log.info("account %s: clicktocall %s created (kazoo)", account_id, stored["id"])
    return reply(translate.resource_out(stored), 201)


@bp.get(C2C + "/<item_id>")
def get_resource(account_id: str, item_id: str) -> Response:
    _caller(account_id, "read")
    return reply(translate.resource_out(_resource(account_id, item_id)))


@bp.route(C2C + "/<item_id>", methods=["POST", "PATCH"])
def change_resource(account_id: str, item_id: str) -> Response:
    _caller(account_id, "manage")
    current = _resource(account_id, item_id)
    data = translate.resource_in(_body(required=request.method == "POST"), item_id)
    if request.method == "PATCH":
        shown = translate.resource_in(translate.resource_out(current), item_id)
        data = accounts.merge_patch(shown, data)  # kz_json:merge is RFC 7386
    store = context.account_store()
    document = accounts.parse_item("clicktocall", data, store.directory(account_id), context.config())
    stored = {"id": item_id, **document, "created_at": current.get("created_at", ""), "updated_at": now_iso()}
    store.save(account_id, "clicktocall", item_id, stored)
    return reply(translate.resource_out(stored))


@bp.delete(C2C + "/<item_id>")
def delete_resource(account_id: str, item_id: str) -> Response:
    _caller(account_id, "manage")
    current = _resource(account_id, item_id)
    context.account_store().delete(account_id, "clicktocall", item_id)
    context.clicktocall_log().forget(account_id, item_id)
    return reply({**translate.resource_out(current), "_read_only": {"deleted": True}})


@bp.get(C2C + "/<item_id>/history")
def history(account_id: str, item_id: str) -> Response:
    _caller(account_id, "read")
    _resource(account_id, item_id)
    args = request.args
    for name in args:
        if name not in ("page_size", "start_key"):
            raise ValidationError(name[:60], "unknown query parameter (page_size, start_key)")
    size = args.get("page_size", str(HISTORY_PAGE))
    if not (size.isascii() and size.isdigit()) or not 1 <= int(size) <= MAX_HISTORY_PAGE:
        raise ValidationError("page_size", "a whole number from 1 to %d" % MAX_HISTORY_PAGE)
    after = listing.decode_cursor(args["start_key"]) if "start_key" in args else None
    entries = context.clicktocall_log().history(account_id, item_id, after=after, count=int(size))
    records = connect_records(entries)
    found = [_history_entry(job_id, score, record) for (score, job_id), record in zip(entries, records) if record]
    extra: dict[str, Any] = {"page_size": len(found)}
    if "start_key" in args:
        extra["start_key"] = args["start_key"]
    if len(entries) == int(size):
        extra["next_start_key"] = listing.encode_cursor(*entries[-1])
    return reply(found, **extra)


def _history_entry(job_id: str, score: int, record: Mapping[str, str]) -> dict[str, Any]:
    decided = blocking.outcome(record)
    started = decided.started if decided is not None else None
    cause = decided.hangup_cause if decided is not None else ""
    return translate.history_entry(job_id, record.get("b", ""), score / 1_000_000, started,
                                   record.get("status", ""), cause)


# ---------------------------------------------------------------- connect


@bp.route(C2C + "/<item_id>/connect", methods=["GET", "POST"])
def connect(account_id: str, item_id: str) -> Response:
    key = _key()
    store = context.account_store()
    if key is not None:
        _check(key, account_id, "place")
        resource = _resource(account_id, item_id)
    else:
        found = store.item(account_id, "clicktocall", item_id) if accounts.valid_id(account_id) else None
        # Without a token, a resource that needs one and one that does not
        # exist answer alike.
        if found is None or found.get("auth_required", True):
            refuse(401)
        if request.method == "GET" and not found.get("allow_get_connect"):
            refuse(405, "connect this clicktocall with POST (GET without a token is off: link prefetchers "
                   "would place calls)", Allow="POST")
        resource = found
    config = context.config()
    data = _body() if request.method == "POST" else {}
    for name in data:
        if name not in ("contact", "blocking", "custom_application_vars"):
            raise ValidationError(str(name)[:60], "unknown field (known: contact, blocking, custom_application_vars)")
    raw_contact = data.get("contact") if request.method == "POST" else request.args.get("contact")
    if raw_contact is None:
        raise ValidationError("contact", "required: the contact extension for this click to call has not been set")
    dialed = clicktocall.parse_contact(raw_contact, config)
    if not clicktocall.whitelisted(resource.get("whitelist", ()), dialed):
        raise Refused(400, crossbar.failure(400, "Contact doesn't match whitelist", dialed, _meta()))
    wait = translate.parse_blocking(request.args, data)
    query = {k: v for k, v in request.args.items()}
    variables = translate.connect_variables(resource, query, data, dialed)
    directory = store.directory(account_id)
    call = clicktocall.connect_request({**resource, "custom_application_vars": variables}, directory, dialed,
                                       config)
    now = time.time()
    placed = place_connect(key, account_id, item_id, resource, call, dialed)
    if isinstance(placed, float):
        refuse(429, "this clicktocall was connected as often as it may for now",
               **{"Retry-After": str(max(1, math.ceil(placed)))})
    job_id, call = placed
    log.info("job %s: clicktocall %s of account %s connected (kazoo)%s", job_id, item_id, account_id,
             "" if key is not None else " without a token")
    if not wait:
        return reply(translate.originate_data(call, config, account_id=account_id, authorizing_id=item_id,
                                              authorizing_type="clicktocall", continue_on_fail=True), 202)
    found_outcome = _wait(job_id, CONNECT_WAIT)
    return reply(translate.history_entry(job_id, dialed, now, found_outcome.started, found_outcome.status,
                                         found_outcome.hangup_cause))


def _wait(job_id: str, seconds: float) -> blocking.Outcome:
    queue = context.queue()
    limit = float(current_app.config.get(WAIT_LIMIT, blocking.MAX_WAIT))
    return blocking.wait_for_originate(lambda: queue.record(job_id), min(seconds, limit))


# ---------------------------------------------------------------- quickcall


@bp.route(ACCOUNT + "/<any(users,devices):kind>/<item_id>/quickcall/<path:number>", methods=["GET", "POST"])
def quickcall(account_id: str, kind: str, item_id: str, number: str) -> Response:
    key = _caller(account_id, "place")
    config = context.config()
    data = _body() if request.method == "POST" else {}
    options = translate.parse_quickcall(number, request.args, data, config)
    store = context.account_store()
    if store.item(account_id, kind, item_id) is None:
        refuse(404, "no %s with this id" % ENDPOINT_KINDS[kind])
    directory = store.directory(account_id)
    try:
        destinations, mode = accounts.resolve_extension(ENDPOINT_KINDS[kind], "%s:%s" % (ENDPOINT_KINDS[kind],
                                                                                          item_id), directory)
    except ValidationError as exc:
        raise ValidationError("endpoints", exc.reason) from None
    document = translate.quickcall_request(options, destinations, mode)
    try:
        call = calls.parse_request(document, config)
        if not key.operator:
            call = apikeys.apply_caller_ids(key, call)
    except ValidationError as exc:
        raise ValidationError(translate.quickcall_field(exc.field), exc.reason) from None
    if not key.operator and key.rate_per_minute:
        retry = context.key_store().take_call(key, time.time())
        if retry:
            refuse(429, "this token may place %d calls a minute" % key.rate_per_minute,
                   **{"Retry-After": str(max(1, math.ceil(retry)))})
    job_id = context.queue().enqueue(call, owner="" if key.operator else key.id, account=account_id)
    log.info("job %s: quickcall from %s %s of account %s (kazoo)", job_id, ENDPOINT_KINDS[kind], item_id, account_id)
    data_out = translate.originate_data(call, config, account_id=account_id, authorizing_id=item_id,
                                        authorizing_type=ENDPOINT_KINDS[kind], continue_on_fail=False)
    if request.method == "GET":
        return reply(data_out, 202)
    found = _wait(job_id, float(call.a.timeout) + 5)
    if found.started is False:
        log.info("job %s: quickcall %s before its first leg rang (%s)", job_id, found.status, found.hangup_cause)
        # Kazoo answers 500 here; the call failing is not a fault of this
        # service, and a 5xx of its own would say so: 502, in Kazoo's shape.
        raise Refused(502, crossbar.failure(502, "quickcall initiation failed", {
            "error_message": found.hangup_cause, "request": data_out}, _meta()))
    return reply({**data_out, "status": found.status}, 202)


# ---------------------------------------------------------------- the rest


@bp.get("/v2/kazoo/openapi.json")
def openapi() -> Response:
    return json_response(openapi_document(context.config()))


@bp.route("/v2/accounts", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
@bp.route("/v2/accounts/<path:rest>", methods=["GET", "PUT", "POST", "PATCH", "DELETE"])
def elsewhere(rest: str = "") -> Response:
    """Any other path under /v2/accounts: 405 where another method has a
    route here, else 404, in crossbar's envelope."""
    adapter = current_app.url_map.bind("localhost")
    allowed = []
    for method in ("GET", "PUT", "POST", "PATCH", "DELETE"):
        try:
            endpoint, _ = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != "kazoo.elsewhere":
            allowed.append(method)
    if allowed:
        refuse(405, "", Allow=", ".join(allowed))
    raise NotFound("no such resource")

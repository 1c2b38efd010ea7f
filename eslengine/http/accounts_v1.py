"""Accounts on the native API.

    POST   /v1/accounts                       make an account (operator and admin keys)
    GET    /v1/accounts                       the accounts the key sees
    GET    /v1/accounts/<a>                   one
    PATCH  /v1/accounts/<a>                   rename it
    DELETE /v1/accounts/<a>                   delete it, everything it holds and its keys
    POST   /v1/accounts/<a>/keys              make a key of the account (its token shown once)
    GET    /v1/accounts/<a>/keys              its keys
    DELETE /v1/accounts/<a>/keys/<key id>     revoke one
    GET    /v1/accounts/<a>/<kind>            list: users, devices, groups, media, clicktocall
    POST   /v1/accounts/<a>/<kind>            create
    GET    /v1/accounts/<a>/<kind>/<id>       fetch
    PUT    /v1/accounts/<a>/<kind>/<id>       change (replace; POST too)
    PATCH  /v1/accounts/<a>/<kind>/<id>       patch (JSON merge patch)
    DELETE /v1/accounts/<a>/<kind>/<id>       delete (409 while something names it)
    POST   /v1/accounts/<a>/clicktocall/<id>/connect   place the saved call to a contact
                                              (GET too; ?wait=originate blocks)
    GET    /v1/accounts/<a>/clicktocall/<id>/history   its connects, newest first

Operator keys and admin keys (of no account) see every account; a key of an
account sees that account alone: any other is "no account with this id"
(404), as is an id nobody uses. Reading needs the ``read`` scope, changing
``manage``, connecting ``place``. A click-to-call resource with
``auth_required: false`` is connected without a key (``clicktocall.py``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from .. import accounts, apikeys, calls, clicktocall
from ..errors import ConfigError, ValidationError
from ..status import FINAL
from ..store import now_iso, redis_errors
from . import auth, blocking, context, listing
from .calls_v1 import accepted, call_path
from .responses import Forbidden, error, json_body, json_response

log = logging.getLogger(__name__)

bp = Blueprint("accounts_v1", __name__)
auth.protect(bp, open_endpoints={"accounts_v1.connect"})

KIND_PATH = "<any(%s):kind>" % ",".join(accounts.KINDS)
_READ_ONLY = ("id", "created_at", "updated_at")
HISTORY_LIMIT = 100


def _invalid(exc: ValidationError) -> Response:
    return error(422, "invalid", exc.reason, field=exc.field)


bp.register_error_handler(ValidationError, _invalid)


def _account(account_id: str, scope: str, what: str) -> tuple[apikeys.ApiKey, dict[str, Any]]:
    """The caller's key (with ``scope``) and the account it names; 404 when
    the key does not see it."""
    key = auth.require(scope, what)
    if not key.sees_account(account_id):
        raise NotFound("no account with this id")
    found = context.account_store().account(account_id)
    if found is None:
        raise NotFound("no account with this id")
    return key, found


def _object_body() -> dict[str, Any]:
    data = json_body()
    if not isinstance(data, dict):
        raise ValidationError("body", "must be a JSON object")
    return data


# ---------------------------------------------------------------- accounts


@bp.post("/v1/accounts")
def create_account() -> Response:
    key = auth.require("admin", "manage accounts")
    if not key.sees_all:
        raise Forbidden("only operator and admin keys make accounts")
    document = accounts.parse_account(_object_body())
    stored = context.account_store().create_account({**document, "created_at": now_iso()})
    log.info("account %s: created (%s)", stored["id"], stored["name"])
    return json_response(stored, 201, Location="/v1/accounts/%s" % stored["id"])


@bp.get("/v1/accounts")
def list_accounts() -> Response:
    key = auth.require("read", "read accounts")
    store = context.account_store()
    if key.sees_all:
        found = store.accounts()
    else:
        own = store.account(key.account) if key.account else None
        found = [own] if own else []
    return json_response({"accounts": found})


@bp.get("/v1/accounts/<account_id>")
def get_account(account_id: str) -> Response:
    _, found = _account(account_id, "read", "read accounts")
    return json_response(found)


@bp.patch("/v1/accounts/<account_id>")
def patch_account(account_id: str) -> Response:
    _, found = _account(account_id, "manage", "change accounts")
    current = {k: v for k, v in found.items() if k not in _READ_ONLY}
    document = accounts.parse_account(accounts.merge_patch(current, _strip_read_only(_object_body(), account_id)))
    stored = {**found, **document, "updated_at": now_iso()}
    context.account_store().save_account(stored)
    return json_response(stored)


@bp.delete("/v1/accounts/<account_id>")
def delete_account(account_id: str) -> Response:
    key, _ = _account(account_id, "admin", "delete accounts")
    if not key.sees_all:
        raise Forbidden("only operator and admin keys delete accounts")
    keys = context.key_store()
    revoked = [k.id for k in keys.list(account_id) if keys.revoke(k.id)]
    context.account_store().delete_account(account_id)
    log.info("account %s: deleted, %d key(s) revoked", account_id, len(revoked))
    return Response(status=204)


# ---------------------------------------------------------------- keys


def parse_key_request(data: Mapping[str, Any], creator: apikeys.ApiKey) -> dict[str, Any]:
    """The fields of a new account key; its scopes are at most the
    creator's (a key of the account) and never admin."""
    spec = accounts.check_object("", data, ("name", "scopes", "caller_ids", "rate_per_minute"))
    name = spec.get("name")
    if not isinstance(name, str) or not apikeys._NAME.fullmatch(name):
        raise ValidationError("name", "1 to 64 letters, digits, spaces or _ . : @ -")
    scopes = spec.get("scopes", list(apikeys.ACCOUNT_SCOPES))
    if not isinstance(scopes, list) or not scopes or any(s not in apikeys.ACCOUNT_SCOPES for s in scopes):
        raise ValidationError("scopes", "a list of %s" % ", ".join(apikeys.ACCOUNT_SCOPES))
    if not creator.sees_all and not set(scopes) <= creator.scopes:
        raise Forbidden("a key may make keys with its own scopes at most (%s)" % ", ".join(sorted(creator.scopes)))
    caller_ids = spec.get("caller_ids", [])
    if not isinstance(caller_ids, list) or not all(isinstance(c, str) for c in caller_ids):
        raise ValidationError("caller_ids", "a list of numbers (a trailing * allows a prefix)")
    try:
        parsed_ids = apikeys.parse_caller_ids(caller_ids)
    except ConfigError as exc:
        raise ValidationError("caller_ids", str(exc)) from None
    rate = spec.get("rate_per_minute", 0)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 0 <= rate <= 100_000:
        raise ValidationError("rate_per_minute", "a whole number from 0 (no limit) to 100000")
    return {"name": name, "scopes": frozenset(scopes), "caller_ids": parsed_ids, "rate_per_minute": rate}


@bp.post("/v1/accounts/<account_id>/keys")
def create_key(account_id: str) -> Response:
    creator, _ = _account(account_id, "manage", "make keys")
    fields = parse_key_request(_object_body(), creator)
    key, token = context.key_store().create(fields["name"], fields["scopes"], caller_ids=fields["caller_ids"],
                                            rate_per_minute=fields["rate_per_minute"], now=now_iso(),
                                            account=account_id)
    log.info("account %s: key %s made", account_id, key.id)
    return json_response({**key.to_public(), "token": token}, 201)


@bp.get("/v1/accounts/<account_id>/keys")
def list_keys(account_id: str) -> Response:
    _account(account_id, "read", "read keys")
    return json_response({"keys": [k.to_public() for k in context.key_store().list(account_id)]})


@bp.delete("/v1/accounts/<account_id>/keys/<key_id>")
def revoke_key(account_id: str, key_id: str) -> Response:
    _account(account_id, "manage", "revoke keys")
    store = context.key_store()
    found = store.get(key_id) if len(key_id) <= 64 else None
    if found is None or found.account != account_id or not store.revoke(key_id):
        raise NotFound("no key with this id")
    return Response(status=204)


# ---------------------------------------------------------------- items


def _strip_read_only(data: dict[str, Any], item_id: str | None) -> dict[str, Any]:
    """A body without the fields the engine writes (a document as fetched
    may be sent back); an ``id`` other than the URL's is refused."""
    if "id" in data and (item_id is None or data["id"] != item_id):
        raise ValidationError("id", "is the engine's; it does not match this URL")
    return {k: v for k, v in data.items() if k not in _READ_ONLY}


def _item(account_id: str, kind: str, item_id: str) -> dict[str, Any]:
    found = context.account_store().item(account_id, kind, item_id)
    if found is None:
        raise NotFound("no %s item with this id" % kind)
    return found


def _location(account_id: str, kind: str, item_id: str) -> str:
    return "/v1/accounts/%s/%s/%s" % (account_id, kind, item_id)


@bp.get("/v1/accounts/<account_id>/%s" % KIND_PATH)
def list_items(account_id: str, kind: str) -> Response:
    _account(account_id, "read", "read %s" % kind)
    return json_response({"items": context.account_store().items(account_id, kind)})


@bp.post("/v1/accounts/<account_id>/%s" % KIND_PATH)
def create_item(account_id: str, kind: str) -> Response:
    _account(account_id, "manage", "change %s" % kind)
    data = _strip_read_only(_object_body(), None)
    store = context.account_store()
    if store.count(account_id, kind) >= accounts.MAX_ITEMS:
        return error(409, "conflict", "this account holds %d %s items, as many as it may" % (accounts.MAX_ITEMS, kind))
    document = accounts.parse_item(kind, data, store.directory(account_id), context.config())
    stored = store.add(account_id, kind, document, now_iso())
    log.info("account %s: %s %s created", account_id, kind, stored["id"])
    return json_response(stored, 201, Location=_location(account_id, kind, stored["id"]))


@bp.get("/v1/accounts/<account_id>/%s/<item_id>" % KIND_PATH)
def get_item(account_id: str, kind: str, item_id: str) -> Response:
    _account(account_id, "read", "read %s" % kind)
    return json_response(_item(account_id, kind, item_id))


@bp.route("/v1/accounts/<account_id>/%s/<item_id>" % KIND_PATH, methods=["PUT", "POST", "PATCH"])
def change_item(account_id: str, kind: str, item_id: str) -> Response:
    _account(account_id, "manage", "change %s" % kind)
    current = _item(account_id, kind, item_id)
    data = _strip_read_only(_object_body(), item_id)
    if request.method == "PATCH":
        data = accounts.merge_patch({k: v for k, v in current.items() if k not in _READ_ONLY}, data)
    store = context.account_store()
    document = accounts.parse_item(kind, data, store.directory(account_id), context.config())
    stored = {"id": item_id, **document, "created_at": current.get("created_at", ""), "updated_at": now_iso()}
    store.save(account_id, kind, item_id, stored)
    return json_response(stored)


@bp.delete("/v1/accounts/<account_id>/%s/<item_id>" % KIND_PATH)
def delete_item(account_id: str, kind: str, item_id: str) -> Response:
    _account(account_id, "manage", "change %s" % kind)
    _item(account_id, kind, item_id)
    store = context.account_store()
    named_by = accounts.referrers(kind, item_id, store.directory(account_id))
    if named_by:
        return error(409, "conflict", "named by %s; change or delete those first" % ", ".join(named_by[:10]))
    store.delete(account_id, kind, item_id)
    if kind == "clicktocall":
        context.clicktocall_log().forget(account_id, item_id)
    return Response(status=204)


# ---------------------------------------------------------------- click-to-call


@bp.route("/v1/accounts/<account_id>/clicktocall/<item_id>/connect", methods=["GET", "POST"])
def connect(account_id: str, item_id: str) -> Response:
    header = request.headers.get("Authorization")
    key = auth.principal(header)
    if key is None and header:
        return _unauthorized()
    store = context.account_store()
    if key is not None:
        if not key.may("place"):
            raise Forbidden("this key may not place calls (it lacks the scope 'place')")
        if not key.sees_account(account_id) or store.account(account_id) is None:
            raise NotFound("no account with this id")
        resource = _item(account_id, "clicktocall", item_id)
    else:
        found = store.item(account_id, "clicktocall", item_id) if accounts.valid_id(account_id) else None
        # Without a key, a resource that needs one and one that does not
        # exist answer alike.
        if found is None or found.get("auth_required", True):
            return _unauthorized()
        if request.method == "GET" and not found.get("allow_get_connect"):
            response = error(405, "method_not_allowed", "connect this click-to-call with POST (GET without a key "
                             "is off: link prefetchers would place calls)")
            response.headers["Allow"] = "POST"
            return response
        resource = found
    config = context.config()
    try:
        wait = blocking.parse_wait(request.args)
    except ValidationError as exc:
        return error(400, "invalid", exc.reason, field=exc.field)
    if request.method == "POST":
        body = accounts.check_object("", _object_body(), ("contact",))
        contact: object = body.get("contact")
    else:
        contact = request.args.get("contact")
    dialed = clicktocall.parse_contact(contact, config)
    call = clicktocall.connect_request(resource, store.directory(account_id), dialed, config)
    placed = place_connect(key, account_id, item_id, resource, call, dialed)
    if isinstance(placed, float):
        response = error(429, "rate_limited", "this click-to-call was connected as often as it may for now")
        response.headers["Retry-After"] = str(max(1, math.ceil(placed)))
        return response
    job_id, call = placed
    log.info("job %s: click-to-call %s of account %s connected%s", job_id, item_id, account_id,
             "" if key is not None else " without a key")
    document: dict[str, object] = {"id": job_id, "status": "queued", "clicktocall": item_id, "contact": dialed,
                "a": [str(d) for d in call.a.destinations], "b": [str(d) for d in call.b.destinations]}
    return accepted(job_id, document, call_path(job_id), wait)


def place_connect(key: apikeys.ApiKey | None, account_id: str, item_id: str, resource: dict[str, Any],
                  call: calls.CallRequest, dialed: str) -> tuple[str, calls.CallRequest] | float:
    """Queue one connect of a click-to-call resource (every surface's): the
    connecting key's caller IDs (a refusal names the resource's field), the
    resource's and the key's limits, then the call, owned by the key and the
    account, in the resource's history. The job id and the call as queued,
    or the seconds until the limits allow another connect."""
    if key is not None and not key.operator:
        try:
            call = apikeys.apply_caller_ids(key, call)
        except ValidationError as exc:
            raise ValidationError(clicktocall.resource_field(exc.field, resource), exc.reason) from None
    now = time.time()
    if resource.get("max_concurrent") and _live_calls(account_id, item_id) >= int(resource["max_concurrent"]):
        return float(CONCURRENT_RETRY)
    counters = clicktocall.limits(resource, public=key is None, ip=request.remote_addr or "-", contact=dialed,
                                  now=now)
    retry = context.clicktocall_log().take(account_id, item_id, counters)
    if not retry and key is not None and not key.operator and key.rate_per_minute:
        retry = context.key_store().take_call(key, now)
    if retry:
        return float(retry)
    owner = key.id if key is not None and not key.operator else ""
    job_id = context.queue().enqueue(call, owner=owner, account=account_id)
    context.clicktocall_log().add(account_id, item_id, job_id, now)
    return job_id, call


# Seconds a connect refused for the resource's max_concurrent is told to wait.
CONCURRENT_RETRY = 30


def _live_calls(account_id: str, item_id: str) -> int:
    """The resource's calls not yet over, among its newest connects (a call
    up for longer than its MAX_CONCURRENT newer connects is not counted)."""
    entries = context.clicktocall_log().history(account_id, item_id, after=None, count=clicktocall.MAX_CONCURRENT)
    if not entries:
        return 0
    queue = context.queue()
    with redis_errors("read calls"):
        pipe = queue.redis.pipeline(transaction=False)
        for _, job_id in entries:
            pipe.hget(queue.call_key(job_id), "status")  # the status alone, not whole records
        statuses = pipe.execute()
    return sum(1 for status in statuses if status and status not in FINAL)


def _unauthorized() -> Response:
    response = error(401, "unauthorized", "a valid 'Authorization: Bearer <key>' header is required")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


@bp.get("/v1/accounts/<account_id>/clicktocall/<item_id>/widget/refusals")
def widget_refusals(account_id: str, item_id: str) -> Response:
    _account(account_id, "read", "read click-to-call")
    _item(account_id, "clicktocall", item_id)
    from .widget import refusal_counts

    return json_response({"refusals": refusal_counts(account_id, item_id)})


@bp.get("/v1/accounts/<account_id>/clicktocall/<item_id>/history")
def history(account_id: str, item_id: str) -> Response:
    _account(account_id, "read", "read click-to-call history")
    _item(account_id, "clicktocall", item_id)
    args = request.args
    unknown = [name for name in args if name not in ("limit", "cursor")]
    if unknown:
        raise ValidationError(unknown[0][:40], "unknown query parameter (limit, cursor)")
    limit = args.get("limit", "50")
    if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= HISTORY_LIMIT:
        raise ValidationError("limit", "a whole number from 1 to %d" % HISTORY_LIMIT)
    after = listing.decode_cursor(args["cursor"]) if "cursor" in args else None
    entries = context.clicktocall_log().history(account_id, item_id, after=after, count=int(limit))
    records = connect_records(entries)
    connects = [connect_summary(job_id, record) for (_, job_id), record in zip(entries, records) if record]
    more = len(entries) == int(limit)
    cursor = listing.encode_cursor(*entries[-1]) if more else None
    return json_response({"connects": connects, "next_cursor": cursor})


def connect_records(entries: Sequence[tuple[int, str]]) -> list[dict[str, str]]:
    """The call records of a click-to-call's connects (``ClickToCallLog.history``
    entries), in one round trip; ``{}`` for one that expired."""
    if not entries:
        return []
    queue = context.queue()
    with redis_errors("read calls"):
        pipe = queue.redis.pipeline(transaction=False)
        for _, job_id in entries:
            pipe.hgetall(queue.call_key(job_id))
        return list(pipe.execute())


_TIMES = ("created_at", "dialing_at", "ringing_at", "answered_at", "bridged_at", "ended_at")


def connect_summary(job_id: str, record: Mapping[str, str]) -> dict[str, Any]:
    """One connect of a click-to-call as its history shows it: the call,
    its outcome and cause, and its times."""
    out: dict[str, Any] = {"id": job_id, "status": record.get("status"), "contact": record.get("b", ""),
                           "extension": record.get("a", "")}
    for name in ("hangup_cause", "a_hangup_cause", "b_hangup_cause"):
        if record.get(name):
            out[name] = record[name]
    out["timestamps"] = {name[:-3]: record[name] for name in _TIMES if record.get(name)}
    if record.get("owner"):
        out["key"] = record["owner"]
    return out

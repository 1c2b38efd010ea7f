"""Do-not-call lists on the native API (``dnc.py``; ``store/dnc.py``).

    GET    /v1/dnc                            the global list, a page at a time (?cursor=, ?limit=)
    POST   /v1/dnc                            add: a JSON list of numbers or entries;
                                              text/csv or text/plain: a bulk import, one a line
    DELETE /v1/dnc                            remove: a JSON list of numbers
    GET    /v1/dnc/<number>                   check one number
    DELETE /v1/dnc/<number>                   remove one number
    GET    /v1/accounts/<a>/dnc               ... the same for an account's own list
    ...

The global list is the operator's: operator and admin keys read it (scope
``read``) and change it (``manage``). An account's list is read and changed
by the keys that see the account, with the same scopes; checking a number
on it answers for the global list too, as calls of the account are checked
against both.

A JSON add is ``{"numbers": [...], "region": "US"}`` or the list alone; an
item is a number or ``{"number", "reason", "expires_at"}``. A bad item
refuses the whole request (422 naming it). A bulk import (``?region=``)
keeps its good lines and answers 200 with each bad one's line number and
reason; it is read as it arrives, never whole.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from .. import apikeys, dnc
from ..errors import ValidationError
from . import auth, context
from .responses import Forbidden, error, json_body, json_response

log = logging.getLogger(__name__)

bp = Blueprint("dnc_v1", __name__)
auth.protect(bp)

# The most numbers a JSON add or remove takes (a bulk import has no such limit).
MAX_JSON_NUMBERS = 1000
# The largest bulk import body.
MAX_IMPORT_BYTES = 1 << 30
PAGE_DEFAULT, PAGE_MAX = 100, 1000
_IMPORT_TYPES = ("text/csv", "text/plain")


def _invalid(exc: ValidationError) -> Response:
    return error(422, "invalid", exc.reason, field=exc.field)


bp.register_error_handler(ValidationError, _invalid)


def _list_of(account_id: str | None, scope: str) -> tuple[apikeys.ApiKey, str]:
    """The caller's key (with ``scope``) and the list it names: ``""`` for
    the global one (operator and admin keys only), else the account's
    (404 unless the key sees it)."""
    key = auth.require(scope, "read do-not-call lists" if scope == "read" else "change do-not-call lists")
    if account_id is None:
        if not key.sees_all:
            raise Forbidden("only operator and admin keys use the global do-not-call list")
        return key, ""
    if not key.sees_account(account_id) or context.account_store().account(account_id) is None:
        raise NotFound("no account with this id")
    return key, account_id


def _region_arg(data: Any = None) -> str:
    value = data.get("region") if isinstance(data, dict) and "region" in data else request.args.get("region")
    return dnc.parse_region(value, context.config().default_region)


def _number(value: str) -> str:
    return dnc.normalise("number", value, _region_arg())


# ---------------------------------------------------------------- routes


@bp.get("/v1/dnc")
@bp.get("/v1/accounts/<account_id>/dnc")
def list_entries(account_id: str | None = None) -> Response:
    _, account = _list_of(account_id, "read")
    cursor = _int_arg("cursor", 0, 0, 1 << 63)
    limit = _int_arg("limit", PAGE_DEFAULT, 1, PAGE_MAX)
    store = context.queue().dnc
    entries, following = store.page(account, cursor, limit, time.time())
    return json_response({"list": dnc.ACCOUNT if account else dnc.GLOBAL, "size": store.size(account),
                          "entries": [e.to_json() for e in entries],
                          "next_cursor": str(following) if following else None,
                          "refused": store.refusals(account)})


@bp.post("/v1/dnc")
@bp.post("/v1/accounts/<account_id>/dnc")
def add_entries(account_id: str | None = None) -> Response:
    _, account = _list_of(account_id, "manage")
    if request.mimetype in _IMPORT_TYPES:
        return _import(account)
    data = json_body()
    items = data.get("numbers") if isinstance(data, dict) else data
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"numbers", "region"})
        if unknown:
            raise ValidationError(str(unknown[0])[:60], "unknown field (known: numbers, region)")
    if not isinstance(items, list) or not items:
        raise ValidationError("numbers", "a non-empty list of numbers, or of {number, reason, expires_at}")
    if len(items) > MAX_JSON_NUMBERS:
        raise ValidationError("numbers", "at most %d a request; send more as text/csv" % MAX_JSON_NUMBERS)
    region, now = _region_arg(data), time.time()
    entries = [dnc.parse_item(i, item, region, now) for i, item in enumerate(items)]
    added = context.queue().dnc.add(account, entries)
    log.info("do-not-call %s: %d numbers put on it (%d new)", account or dnc.GLOBAL, len(entries), added)
    return json_response({"written": len(entries), "added": added,
                          "entries": [e.to_json() for e in entries]}, 201 if added else 200)


def _import(account: str) -> Response:
    request.max_content_length = MAX_IMPORT_BYTES
    region = _region_arg()
    result = context.queue().dnc.import_lines(account, _lines(), region)
    log.info("do-not-call %s: import of %d lines: %d written (%d new), %d refused", account or dnc.GLOBAL,
             result.lines, result.written, result.added, result.refused)
    return json_response(result.to_json())


def _lines() -> Iterator[bytes]:
    """The request body's lines as they arrive, read 64 KiB at a time (a
    line is cut at ``MAX_LINE``: no entry is that long, and it is then
    reported as bad)."""
    return split_lines(iter(lambda: request.stream.read(1 << 16), b""))


MAX_LINE = 4096


def split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The lines of a byte stream given in ``chunks``, each with its
    newline (the last may have none); a line longer than ``MAX_LINE`` is
    cut there and the rest of it dropped."""
    rest = b""
    dropping = False
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if dropping:
                dropping = False
                continue
            yield line[:MAX_LINE] + b"\n"
        if len(rest) > MAX_LINE:
            if not dropping:
                yield rest[:MAX_LINE]
            dropping, rest = True, b""
    if rest and not dropping:
        yield rest


@bp.delete("/v1/dnc")
@bp.delete("/v1/accounts/<account_id>/dnc")
def remove_entries(account_id: str | None = None) -> Response:
    _, account = _list_of(account_id, "manage")
    data = json_body()
    items = data.get("numbers") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items or len(items) > MAX_JSON_NUMBERS:
        raise ValidationError("numbers", "a list of 1 to %d numbers" % MAX_JSON_NUMBERS)
    region = _region_arg(data)
    numbers = [dnc.normalise("numbers[%d]" % i, item, region) for i, item in enumerate(items)]
    removed = context.queue().dnc.remove(account, numbers)
    log.info("do-not-call %s: %d numbers taken off", account or dnc.GLOBAL, removed)
    return json_response({"removed": removed})


@bp.get("/v1/dnc/<number>")
@bp.get("/v1/accounts/<account_id>/dnc/<number>")
def check_number(number: str, account_id: str | None = None) -> Response:
    _, account = _list_of(account_id, "read")
    e164 = _number(number)
    found = context.queue().dnc.lookup(account, e164, time.time())
    return json_response({"number": e164, "do_not_call": bool(found),
                          "entries": [{"list": name, **entry.to_json()} for name, entry in found]})


@bp.delete("/v1/dnc/<number>")
@bp.delete("/v1/accounts/<account_id>/dnc/<number>")
def remove_number(number: str, account_id: str | None = None) -> Response:
    _, account = _list_of(account_id, "manage")
    e164 = _number(number)
    if not context.queue().dnc.remove(account, [e164]):
        raise NotFound("%s is not on this do-not-call list" % e164)
    log.info("do-not-call %s: %s taken off", account or dnc.GLOBAL, e164)
    return Response(status=204)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise ValidationError(name, "a whole number from %d to %d" % (low, high))
    return int(raw)


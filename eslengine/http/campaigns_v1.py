"""Campaigns over HTTP.

    POST /v1/campaigns                  create (JSON: the campaign, ``contacts`` inline, at most 1,000)
    GET  /v1/campaigns                  the campaigns the key sees, newest first, with their counters
                                        (``state``, ``limit``, ``cursor``: ``campaign_listing``)
    GET  /v1/campaigns/<id>             one campaign, its document and live counters
    PATCH  /v1/campaigns/<id>           change its pacing or calling window (also while it runs)
    DELETE /v1/campaigns/<id>           delete it and every key of it (not while it has calls to make)
    GET  /v1/campaigns/<id>/contacts    its contacts, paged, each with its state and last call
    POST /v1/campaigns/<id>/contacts    add contacts: a JSON list, or a CSV body (``text/csv``) read a
                                        row at a time, stored ``store.campaigns.BATCH`` rows at a time
    POST /v1/campaigns/<id>/<action>    start, pause, resume, cancel

Contacts with errors are reported (row, field, reason: at most
``MAX_ERRORS``) and the good ones are added. Keys see their own campaigns
(an account's keys: their account's); operator and admin keys see every one.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from .. import apikeys
from ..campaign.model import (
    ACTIONS,
    MAX_INLINE_CONTACTS,
    SAMPLE_NUMBER,
    Campaign,
    Contact,
    RowError,
    build_request,
    check_campaign_id,
    check_contact,
    contact_from_row,
    load_campaign,
    new_campaign_id,
    new_nonce,
    parse_campaign,
    parse_contact,
    parse_header,
    patch_document,
)
from ..errors import ValidationError
from ..store.campaigns import BATCH, CampaignClosed, CampaignStore, present
from . import auth, campaign_listing, context, listing
from .responses import error, json_body, json_response

log = logging.getLogger(__name__)

bp = Blueprint("campaigns_v1", __name__)
auth.protect(bp)

# The largest CSV upload (bytes).
MAX_CSV = 512 * 1024 * 1024
# Row errors reported at most per request.
MAX_ERRORS = 1000
# States of a campaign that is no more (or is going).
GONE = ("deleting", "deleted")


def store() -> CampaignStore:
    return context.campaign_store()


def _visible(raw: dict[str, str]) -> bool:
    key = auth.caller()
    if key.sees_all:
        return True
    if key.account:
        return raw.get("account") == key.account
    return raw.get("owner") == key.id


def _campaign(campaign_id: str) -> dict[str, str]:
    raw = store().raw(campaign_id) if check_campaign_id(campaign_id) else {}
    if not raw or raw.get("state") in GONE or not _visible(raw):
        raise NotFound("no campaign with this id")
    return raw


class Added:
    """What an upload added, and the rows it refused."""

    def __init__(self) -> None:
        self.added = 0
        self.rows = 0
        self.errors: list[dict[str, Any]] = []
        self.refused = 0

    def refuse(self, exc: RowError) -> None:
        self.refused += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(exc.to_json())

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "added": self.added, "refused": self.refused,
                "errors": sorted(self.errors, key=lambda e: int(e["row"])),
                "errors_truncated": self.refused > len(self.errors)}


def add_contacts(campaign_id: str, campaign: Campaign, rows: Iterable[tuple[int, Contact | RowError]],
                 result: Added) -> None:
    """Check each contact and store them ``BATCH`` at a time."""
    config = context.config()
    key = auth.caller()
    batch: list[tuple[int, Contact]] = []

    def flush() -> None:
        taken = set(store().add_contacts(campaign_id, [c for _, c in batch]))
        for i, (row, contact) in enumerate(batch):
            if i in taken:
                result.refuse(RowError(row, "id", "the campaign has a contact %r already" % contact.id))
            else:
                result.added += 1
        batch.clear()

    # Memory stays one batch deep: an id seen twice is refused by the store
    # (the second time it is already there), in the same batch or a later one.
    for row, item in rows:
        result.rows += 1
        if isinstance(item, RowError):
            result.refuse(item)
            continue
        try:
            contact = check_contact(campaign, item, row, config)
            if contact.caller_id and key.caller_ids and not apikeys.caller_id_allowed(key, contact.caller_id):
                raise RowError(row, "caller_id", "not a caller ID this key may present (allowed: %s)"
                               % ", ".join(key.caller_ids))
        except RowError as exc:
            result.refuse(exc)
            continue
        batch.append((row, contact))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()


def _json_rows(contacts: list[Any]) -> Iterator[tuple[int, Contact | RowError]]:
    for i, data in enumerate(contacts):
        try:
            yield i + 1, parse_contact(data, i + 1)
        except RowError as exc:
            yield i + 1, exc


def csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, Contact | RowError]]:
    """The contacts of a CSV text, a row at a time (row 1: the header).
    ``ValidationError`` for a header that names no number column."""
    reader = csv.reader(lines)
    try:
        header = parse_header(next(reader))
    except StopIteration:
        raise ValidationError("body", "an empty CSV: the first row names the columns") from None
    except csv.Error as exc:
        raise ValidationError("header", "not CSV: %s" % exc) from None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, RowError(reader.line_num, "row", "not CSV: %s" % exc)
            continue
        if not any(cell.strip() for cell in row):
            continue
        try:
            yield reader.line_num, contact_from_row(header, row, reader.line_num)
        except RowError as exc:
            yield reader.line_num, exc


@bp.post("/v1/campaigns")
def create_campaign() -> Response:
    key = auth.require("place", "create campaigns")
    data = json_body()
    try:
        campaign = parse_campaign(data, context.config())
        campaign = _caller_ids(key, campaign)
    except ValidationError as exc:
        return error(422, "invalid", exc.reason, field=exc.field)
    assert isinstance(data, dict)
    contacts = data.get("contacts") or []
    if not isinstance(contacts, list) or len(contacts) > MAX_INLINE_CONTACTS:
        return error(422, "invalid", "a list of at most %d contacts (upload more as CSV to "
                     "/v1/campaigns/<id>/contacts)" % MAX_INLINE_CONTACTS, field="contacts")
    campaign_id = new_campaign_id()
    store().create(campaign_id, campaign, owner="" if key.operator else key.id, account=key.account,
                   nonce=new_nonce())
    result = Added()
    add_contacts(campaign_id, campaign, _json_rows(contacts), result)
    log.info("campaign %s: created, %d contact(s)", campaign_id, result.added)
    shown = store().show(campaign_id)
    return json_response({**(shown or {}), "upload": result.to_json()}, 201,
                         Location="/v1/campaigns/%s" % campaign_id)


def _caller_ids(key: apikeys.ApiKey, campaign: Campaign) -> Campaign:
    """The campaign as ``key``'s caller-ID allow-list lets it call: its
    template's caller IDs allowed, and the list's first number presented when
    it names none (``apikeys.apply_caller_ids``)."""
    sample = build_request(campaign, "0" * 32, Contact("r1", (SAMPLE_NUMBER,)), 1, context.config(),
                           check_policy=False)
    try:
        applied = apikeys.apply_caller_ids(key, sample)
    except ValidationError as exc:
        raise ValidationError("call." + exc.field, exc.reason) from None
    if applied.caller_id_number != sample.caller_id_number:
        return dataclasses.replace(campaign, call={**campaign.call, "caller_id_number": applied.caller_id_number})
    return campaign


@bp.get("/v1/campaigns")
def list_campaigns() -> Response:
    auth.require("read", "read campaigns")
    try:
        query = campaign_listing.parse_campaigns_query(request.args.to_dict())
    except ValidationError as exc:
        return error(400, "bad_request", exc.reason, field=exc.field)
    found: list[dict[str, Any]] = []
    after = query.after
    more = True
    read = 0
    while more and len(found) < query.limit and read < campaign_listing.SCAN_LIMIT:
        batch = store().page(after, min(200, campaign_listing.SCAN_LIMIT - read))
        more = bool(batch)
        for score, _, raw in batch:
            read += 1
            after = (score, raw.get("id", ""))
            if (raw and _visible(raw) and raw.get("state") not in GONE
                    and (not query.states or raw.get("state") in query.states)):
                shown = present(raw, None)
                shown.pop("campaign", None)
                found.append(shown)
                if len(found) >= query.limit:
                    break
    more = more and after is not None and bool(store().page(after, 1))
    cursor = listing.encode_cursor(*after) if more and after is not None else None
    return json_response({"campaigns": found, "next_cursor": cursor})


@bp.patch("/v1/campaigns/<campaign_id>")
def patch_campaign(campaign_id: str) -> Response:
    auth.require("place", "change campaigns")
    raw = _campaign(campaign_id)
    data = json_body()
    for _ in range(3):
        try:
            document = patch_document(_doc(raw), data)
            campaign = parse_campaign(document, context.config())
        except ValidationError as exc:
            return error(422, "invalid", exc.reason, field=exc.field)
        result = store().patch(campaign_id, raw["doc"], campaign.to_json())
        if result == "ok":
            changed = sorted(str(k) for k in data) if isinstance(data, dict) else []
            if "calling_window" in changed:
                store().recheck_waiting(campaign_id, time.time())
            log.info("campaign %s: changed %s", campaign_id, ", ".join(changed))
            return json_response(store().show(campaign_id))
        if result != "changed":
            if not result or result in GONE:
                raise NotFound("no campaign with this id")
            return error(409, "conflict", "a %s campaign cannot be changed" % result, state=result)
        raw = _campaign(campaign_id)
    return error(409, "conflict", "the campaign was changed meanwhile: try again", field="body")


@bp.delete("/v1/campaigns/<campaign_id>")
def delete_campaign(campaign_id: str) -> Response:
    auth.require("place", "delete campaigns")
    _campaign(campaign_id)
    was, deleting = store().begin_delete(campaign_id)
    if not was:
        raise NotFound("no campaign with this id")
    if not deleting:
        reason = ("a running campaign cannot be deleted: cancel it first (or pause it and "
                  "wait for its calls under way)" if was == "running" else
                  "a paused campaign with calls under way cannot be deleted: wait for them, or cancel it")
        return error(409, "conflict", reason, state=was)
    contacts = store().delete(campaign_id)
    log.info("campaign %s: deleted (was %s), %d contact(s)", campaign_id, was, contacts)
    return json_response({"id": campaign_id, "deleted": True, "was": was, "contacts": contacts})


@bp.get("/v1/campaigns/<campaign_id>/contacts")
def list_contacts(campaign_id: str) -> Response:
    auth.require("read", "read campaigns")
    _campaign(campaign_id)
    try:
        query = campaign_listing.parse_contacts_query(request.args.to_dict())
    except ValidationError as exc:
        return error(400, "bad_request", exc.reason, field=exc.field)
    now = time.time()
    found: list[dict[str, Any]] = []
    after = query.after
    more = True
    read = 0
    while more and len(found) < query.limit and read < campaign_listing.SCAN_LIMIT:
        batch = store().contacts_page(campaign_id, None if after is None else after[0],
                                      min(200, campaign_listing.SCAN_LIMIT - read))
        more = bool(batch)
        for seq, raw, due in batch:
            read += 1
            after = (seq, json.loads(raw["doc"]).get("id", "-") if raw.get("doc") else "-")
            if raw and campaign_listing.contact_matches(query, raw):
                found.append(campaign_listing.contact_summary(raw, due, now))
                if len(found) >= query.limit:
                    break
    more = more and after is not None and bool(store().contacts_page(campaign_id, after[0], 1))
    cursor = listing.encode_cursor(*after) if more and after is not None else None
    return json_response({"contacts": found, "next_cursor": cursor})


@bp.get("/v1/campaigns/<campaign_id>")
def show_campaign(campaign_id: str) -> Response:
    auth.require("read", "read campaigns")
    _campaign(campaign_id)
    shown = store().show(campaign_id)
    if shown is None:
        raise NotFound("no campaign with this id")
    return json_response(shown)


@bp.get("/v1/campaigns/<campaign_id>/contacts/<contact_id>")
def show_contact(campaign_id: str, contact_id: str) -> Response:
    auth.require("read", "read campaigns")
    _campaign(campaign_id)
    raw = store().contact(campaign_id, contact_id)
    if not raw:
        raise NotFound("no contact with this id")
    out: dict[str, Any] = {**json.loads(raw.pop("doc", "{}")), **{k: v for k, v in raw.items()}}
    for name in ("tries", "retries"):
        out[name] = int(out.get(name) or 0)
    return json_response(out)


@bp.post("/v1/campaigns/<campaign_id>/contacts")
def upload_contacts(campaign_id: str) -> Response:
    auth.require("place", "add contacts")
    raw = _campaign(campaign_id)
    campaign = load_campaign(_doc(raw), context.config())
    result = Added()
    mimetype = request.mimetype
    try:
        if mimetype == "text/csv":
            request.max_content_length = MAX_CSV
            stream = io.BufferedReader(request.stream, buffer_size=64 * 1024)  # type: ignore[type-var]
            lines = codecs.getreader("utf-8-sig")(stream)
            add_contacts(campaign_id, campaign, csv_rows(lines), result)
        elif request.is_json:
            data = json_body()
            contacts = data.get("contacts") if isinstance(data, dict) else data
            if not isinstance(contacts, list) or len(contacts) > MAX_INLINE_CONTACTS:
                return error(422, "invalid", "a list of at most %d contacts, or a CSV body (text/csv)"
                             % MAX_INLINE_CONTACTS, field="contacts")
            add_contacts(campaign_id, campaign, _json_rows(contacts), result)
        else:
            return error(415, "unsupported_media_type", "send text/csv or application/json", field="body")
    except ValidationError as exc:
        return _failed(422, "invalid", exc.reason, exc.field, result)
    except UnicodeDecodeError:
        return _failed(400, "bad_request", "the CSV is not UTF-8 (after row %d)" % result.rows, "body", result)
    except CampaignClosed:
        return _failed(409, "conflict", "the campaign is %s: it takes no contacts" % store().state(campaign_id),
                       "", result)
    log.info("campaign %s: %d contact(s) added, %d refused", campaign_id, result.added, result.refused)
    return json_response(result.to_json(), 200)


def _failed(code: int, name: str, reason: str, field: str, result: Added) -> Response:
    """An upload stopped part way: why, and what it added before."""
    document: dict[str, Any] = {"error": name, "reason": reason, "upload": result.to_json()}
    if field:
        document["field"] = field
    return json_response(document, code)


def _doc(raw: dict[str, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(raw["doc"])
    return document


@bp.post("/v1/campaigns/<campaign_id>/<any(%s):action>" % ",".join(ACTIONS))
def act(campaign_id: str, action: str) -> Response:
    auth.require("place", "%s campaigns" % action)
    _campaign(campaign_id)
    was, moved = store().act(campaign_id, action)
    if not moved:
        return error(409, "conflict", "a %s campaign cannot %s" % (was, action), state=was)
    log.info("campaign %s: %s (was %s)", campaign_id, action, was)
    return json_response(store().show(campaign_id))

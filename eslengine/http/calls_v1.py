"""The native API.

    POST   /v1/calls          queue a call; 202 + Location once it is in Redis
                              (Idempotency-Key: the same key and body, the same call;
                              ?wait=originate: once the first party's channel exists)
    GET    /v1/calls          the calls, newest first: filters and a cursor
    GET    /v1/calls/<id>     the call's status, causes, timestamps, history
    GET    /v1/calls/<id>/events  its status changes as Server-Sent Events (events.py)
    DELETE /v1/calls/<id>     cancel: at once if queued, else a worker hangs up
    GET    /healthz           200, or 503 when Redis cannot be reached
    GET    /readyz            200 when Redis answers and a worker is connected to a node, else 503
    GET    /v1/openapi.json   the OpenAPI 3.0 description of all of the above

Every ``/v1/`` route but the OpenAPI document needs ``Authorization: Bearer
<key>``: an operator key of the config, or a client key (``apikeys``), which
sees only its own calls (a key of an account: its account's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
import uuid

import orjson
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import NotFound

from .. import apikeys, calls
from ..errors import IdempotencyKeyUsed, JobExists, QueueUnavailable, ValidationError
from ..store import account_index, shards
from . import auth, blocking, context, events, listing
from .openapi import openapi_document
from .present import present
from .responses import RETRY_AFTER, error, json_body, json_response

log = logging.getLogger(__name__)


bp = Blueprint("calls_v1", __name__)
auth.protect(bp, open_endpoints={"calls_v1.openapi", "calls_v1.healthz", "calls_v1.readyz"})


@bp.post("/v1/calls")
def place_call() -> Response:
    key = auth.require("place", "place calls")
    data = json_body()
    if not isinstance(data, dict):
        return error(400, "bad_request", "must be a JSON object", field="body")
    try:
        wait = blocking.parse_wait(request.args)
        idempotency = _idempotency(data)
        call = calls.parse_request(data, context.config())
        call = apikeys.apply_caller_ids(key, call)
    except ValidationError as exc:
        return error(400 if exc.field in (IDEMPOTENCY_HEADER, "wait", "wait_timeout") else 422, "invalid",
                     exc.reason, field=exc.field)
    if idempotency is not None and data.get("id") is None and context.config().redis_shards > 1:
        # Sharded: a repeat of the request must reach the shard holding
        # its key's record, so its id comes from the key.
        call = dataclasses.replace(call, id=shards.idempotent_id("" if key.operator else key.id, idempotency[0]))
    # The id the client knows the call by; a client key's chosen ids are
    # stored under its own (apikeys.scoped_id).
    client_id = call.id
    if not key.operator and data.get("id") is not None:
        call = dataclasses.replace(call, id=apikeys.scoped_id(key, client_id))
    if not key.operator and key.rate_per_minute:
        if idempotency is not None and (used := context.queue().idempotency_used(key.id, idempotency[0])):
            return _replay(used, idempotency, call, client_id)
        wait = context.key_store().take_call(key, time.time())
        if wait:
            response = error(429, "rate_limited", "this key may place %d calls a minute" % key.rate_per_minute)
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return response
    try:
        job_id = context.queue().enqueue(call, owner="" if key.operator else key.id, client_id=client_id,
                                         idempotency=idempotency, account=key.account)
    except JobExists:
        return exists(client_id)
    except IdempotencyKeyUsed as exc:
        return _replay((exc.job_id, exc.digest), idempotency, call, client_id)
    log.debug("job %s: queued%s", job_id, "" if key.operator else " for key %s as %s" % (key.id, client_id))
    return accepted(job_id, queued(client_id, call), call_path(client_id), wait)


WAIT_LIMIT = "ESLENGINE_MAX_WAIT"


def accepted(job_id: str, document: dict[str, object], location: str, wait: float | None) -> Response:
    """The answer to a call just queued: 202 at once, or with ``wait``
    (seconds) once the first party's channel exists (202 with the status
    then), the deadline passed (202, still queued or dialing), or the call
    failed before (502 with its hangup cause)."""
    if wait is None:
        return json_response(document, 202, Location=location)
    seconds = min(wait, float(current_app.config.get(WAIT_LIMIT, blocking.MAX_WAIT)))
    queue = context.queue()
    found = blocking.wait_for_originate(lambda: queue.record(job_id), seconds)
    if found.started is False:
        log.info("job %s: %s before its first party's channel existed (%s)", job_id, found.status,
                 found.hangup_cause)
        return error(502, "originate_failed", "the call %s before its first party's channel existed (%s)" % (
            found.status, found.hangup_cause), id=str(document["id"]), status=found.status,
            hangup_cause=found.hangup_cause)
    return json_response({**document, "status": found.status}, 202, Location=location)


IDEMPOTENCY_HEADER = "Idempotency-Key"


def _idempotency(data: dict[str, object]) -> tuple[str, str] | None:
    """(digest of the Idempotency-Key header, digest of the request) or None
    without the header."""
    value = request.headers.get(IDEMPOTENCY_HEADER)
    if value is None:
        return None
    if not (1 <= len(value) <= 255 and value.isascii() and value.isprintable()):
        raise ValidationError(IDEMPOTENCY_HEADER, "1 to 255 printable ASCII characters")
    body = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(value.encode()).hexdigest(), hashlib.sha256(body).hexdigest()


def _replay(used: tuple[str, str], idempotency: tuple[str, str] | None, call: calls.CallRequest,
            client_id: str) -> Response:
    """The answer to a request whose Idempotency-Key placed a call before:
    that call's 202 again for the same request, else 422."""
    job_id, digest = used
    assert idempotency is not None
    if digest != idempotency[1]:
        return error(422, "invalid", "this Idempotency-Key was used with a different request", field=IDEMPOTENCY_HEADER)
    # The same body: the same id (the one the client chose, or the one made then).
    shown = client_id if call.id != client_id else job_id
    return json_response(queued(shown, call), 202, Location=call_path(shown), **{"Idempotent-Replayed": "true"})


@bp.get("/v1/calls")
def list_calls() -> Response:
    key = auth.require("read", "read calls")
    try:
        query = listing.parse_query(request.args.to_dict(flat=True))
    except ValidationError as exc:
        return error(422, "invalid", exc.reason, field=exc.field)
    owner = "" if key.sees_all else account_index(key.account) if key.account else key.id
    found: list[dict[str, object]] = []
    after, scanned, more = query.after, 0, True
    while len(found) < query.limit and scanned < listing.SCAN_LIMIT:
        batch = context.queue().list_calls(owner, newest=query.until, oldest=query.since, after=after, count=200)
        if not batch:
            more = False
            break
        for score, job_id, record in batch:
            scanned += 1
            after = (score, job_id)
            if record and query.matches(record):
                summary = listing.summary(record)
                if key.account and record.get("owner") != key.id:
                    summary["id"] = record.get("id")  # another key's own id is that key's
                found.append(summary)
                if len(found) == query.limit:
                    break
        else:
            if len(batch) < 200:
                more = False
                break
    cursor = listing.encode_cursor(*after) if more and after is not None and after != query.after else None
    return json_response({"calls": found, "next_cursor": cursor})


def queued(job_id: str, call: calls.CallRequest) -> dict[str, object]:
    """The 202 document of a call just queued (the route's and FastIntake's):
    its id, and each party's destinations as they will be dialed (numbers
    in E.164, however they were written)."""
    return {"id": job_id, "status": "queued", "a": [str(d) for d in call.a.destinations],
            "b": [str(d) for d in call.b.destinations]}


def call_path(job_id: str) -> str:
    return "/v1/calls/%s" % job_id


def exists(job_id: str) -> Response:
    return error(409, "conflict", "a call with this id already exists", field="id", id=job_id)


@bp.get("/v1/calls/<job_id>")
def get_call(job_id: str) -> Response:
    auth.require("read", "read calls")
    found = context.queue().read_call(_stored_id(job_id))
    document = present(*found) if found is not None else None
    if document is None:
        raise NotFound("no call with this id")
    return json_response(document)


@bp.get("/v1/calls/<job_id>/events")
def call_events(job_id: str) -> Response:
    auth.require("read", "read calls")
    stored = _stored_id(job_id)
    queue = context.queue()
    if queue.get(stored) is None:
        raise NotFound("no call with this id")
    after = events.last_event_id(request.headers.get("Last-Event-ID"))
    stream = events.follow(lambda: queue.get(stored), after=after, sleep=events.gevent_sleep)
    return Response(stream, mimetype="text/event-stream", headers=events.HEADERS)


@bp.delete("/v1/calls/<job_id>")
def cancel_call(job_id: str) -> Response:
    auth.require("cancel", "cancel calls")
    stored = _stored_id(job_id)
    job_id = _canonical_id(job_id)
    outcome, _, status = context.queue().request_cancel(stored).partition(":")
    if outcome == "cancelled":
        log.info("job %s: cancelled while queued", job_id)
        return json_response({"id": job_id, "status": "cancelled"})
    if outcome == "cancelling":
        log.info("job %s: cancel requested while %s", job_id, status)
        return json_response({"id": job_id, "status": status, "cancel": "requested"}, 202)
    if outcome == "final":
        return error(409, "conflict", "the call is already %s" % status, id=job_id, status=status)
    if outcome == "missing":
        raise NotFound("no call with this id")
    raise RuntimeError("job %s: unexpected cancel outcome %r" % (job_id, outcome))


@bp.get("/healthz")
def healthz() -> Response:
    try:
        context.queue().ping()
    except QueueUnavailable as exc:
        log.warning("health check: redis unavailable: %s", exc)
        return json_response({"status": "unavailable", "redis": "unavailable"}, 503, **{"Retry-After": RETRY_AFTER})
    return json_response({"status": "ok", "redis": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready to take calls: Redis answers and at least one of the nodes
    (``ESLENGINE_FREESWITCH``) has a worker connected to it, as the
    workers' places on the nodes in Redis say (renewed every second while
    connected). 503 with Retry-After otherwise; each node's state either way."""
    queue = context.queue()
    labels = [node.label for node in context.config().nodes]
    try:
        queue.ping()
        nodes = {label: ("up" if queue.node_pacers(label) else "down") for label in labels}
    except QueueUnavailable as exc:
        log.warning("readiness check: redis unavailable: %s", exc)
        return json_response({"status": "unavailable", "redis": "unavailable"}, 503,
                             **{"Retry-After": RETRY_AFTER})
    if "up" not in nodes.values():
        return json_response({"status": "unavailable", "redis": "ok", "nodes": nodes,
                              "reason": "no worker is connected to any node"}, 503, **{"Retry-After": RETRY_AFTER})
    return json_response({"status": "ready", "redis": "ok", "nodes": nodes})


@bp.get("/v1/openapi.json")
def openapi() -> Response:
    return json_response(openapi_document(context.config()))


def _stored_id(job_id: str) -> str:
    """Where the call the caller's key knows as ``job_id`` is stored; 404
    for a call of another key (unless the key sees every call)."""
    job_id = _canonical_id(job_id)
    key = auth.caller()
    if key.operator:
        return job_id
    candidates = [apikeys.scoped_id(key, job_id), job_id]
    for candidate, holder in zip(candidates, context.queue().holders(candidates)):
        if holder is not None and (holder[0] == key.id or key.sees_all or (key.account
                                                                            and holder[1] == key.account)):
            return candidate
    raise NotFound("no call with this id")


def _canonical_id(job_id: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise NotFound("no call with this id") from None

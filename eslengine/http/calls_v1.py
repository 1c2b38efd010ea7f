"""The native API.

    POST   /v1/calls          queue a call; 202 + Location once it is in Redis
    GET    /v1/calls/<id>     the call's status, causes, timestamps, history
    DELETE /v1/calls/<id>     cancel: at once if queued, else a worker hangs up
    GET    /healthz           200, or 503 when Redis cannot be reached
    GET    /v1/openapi.json   the OpenAPI 3.0 description of all of the above

Every ``/v1/`` route but the OpenAPI document needs ``Authorization: Bearer
<key>``: an operator key of the config, or a client key (``apikeys``), which
sees only its own calls.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import uuid

from flask import Blueprint, Response
from werkzeug.exceptions import NotFound

from .. import apikeys, calls
from ..errors import JobExists, QueueUnavailable, ValidationError
from . import auth, context
from .openapi import openapi_document
from .responses import RETRY_AFTER, error, json_body, json_response

log = logging.getLogger(__name__)

bp = Blueprint("calls_v1", __name__)
auth.protect(bp, open_endpoints={"calls_v1.openapi", "calls_v1.healthz"})


@bp.post("/v1/calls")
def place_call() -> Response:
    key = auth.require("place", "place calls")
    data = json_body()
    if not isinstance(data, dict):
        return error(400, "bad_request", "must be a JSON object", field="body")
    try:
        call = calls.parse_request(data, context.config())
        call = apikeys.apply_caller_ids(key, call)
    except ValidationError as exc:
        return error(422, "invalid", exc.reason, field=exc.field)
    if key.operator:
        try:
            job_id = context.queue().enqueue(call)
        except JobExists:
            return exists(call.id)
        log.debug("job %s: queued", job_id)
        return json_response(queued(job_id, call), 202, Location=call_path(job_id))
    wait = context.key_store().take_call(key, time.time())
    if wait:
        response = error(429, "rate_limited", "this key may place %d calls a minute" % key.rate_per_minute)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    # The id the client knows the call by; stored under its key's own.
    client_id = call.id
    if data.get("id") is not None:
        call = dataclasses.replace(call, id=apikeys.scoped_id(key, client_id))
    try:
        job_id = context.queue().enqueue(call, owner=key.id, client_id=client_id)
    except JobExists:
        return exists(client_id)
    log.debug("job %s: queued for key %s as %s", job_id, key.id, client_id)
    return json_response(queued(client_id, call), 202, Location=call_path(client_id))


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
    document = context.queue().get(_stored_id(job_id))
    if document is None:
        raise NotFound("no call with this id")
    return json_response(document)


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
    for candidate, owner in zip(candidates, context.queue().owners(candidates)):
        if owner is not None and (owner == key.id or key.sees_all):
            return candidate
    raise NotFound("no call with this id")


def _canonical_id(job_id: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise NotFound("no call with this id") from None

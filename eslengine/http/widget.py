"""The "call me" widget's endpoints: what a public page loads and calls.

    GET     /v1/widget/<account>/<id>/widget.js   the script a page embeds
    GET     /v1/widget/<account>/<id>/frame       the same widget as a page of its own
                                                  (an iframe, for sites with a strict CSP)
    GET     /v1/widget/<account>/<id>/session     a widget token and the texts (CORS)
    POST    /v1/widget/<account>/<id>/calls       call me: {"number", "token", "nonce"?} (CORS)
    GET     /v1/widget/calls/<call id>/events     the call's status as Server-Sent Events,
                                                  ?watch=<the watch token the POST gave>
    GET     /v1/accounts/<account>/clicktocall/<id>/widget/refusals
                                                  refusals by reason (a key that may read)

``<account>/<id>`` is a click-to-call resource with ``auth_required: false``
and a ``widget`` object (``eslengine/widget.py``). Every refusal answers
JSON ``{"error", "reason", "message"}``: ``message`` is the visitor's text
the widget shows. The checks of a call, in order, each counted by reason
when it refuses: the page's origin (403 ``origin_not_allowed``), the widget
token (403 ``token_invalid``), the proof of work when the resource asks
for one (403 ``challenge_failed``), business hours (403 ``closed``), the
number (422 ``invalid``), the number's calls an hour through any widget
(429 ``destination_limited``), then the resource's own limits: throttle,
per address, per contact, per network (429 ``rate_limited``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import redis
from flask import Blueprint, Response, request
from werkzeug.exceptions import NotFound

from .. import accounts, clicktocall, metrics, widget
from ..errors import DoNotCall, QueueUnavailable, ValidationError
from ..status import FINAL
from ..store import redis_errors
from . import context, events
from .accounts_v1 import place_connect
from .responses import error, json_response

log = logging.getLogger(__name__)

bp = Blueprint("widget", __name__)

_NUMBER = re.compile(r"[0-9+()\-. ]{3,40}")
# What the public event stream shows of a call.
PUBLIC_FIELDS = ("status", "hangup_cause", "failed_party", "ended_by")
SESSIONS_PER_HOUR = 120


def _off() -> Response:
    return error(503, "widgets_off", "the widget is not set up on this server (ESLENGINE_WIDGET_SECRET)")


def _resource(account_id: str, item_id: str) -> tuple[dict[str, Any], widget.WidgetSettings]:
    """The public resource and its widget, or 404 (alike for a resource
    that does not exist, needs a key, or has no widget)."""
    found = None
    if accounts.valid_id(account_id) and accounts.valid_id(item_id):
        found = context.account_store().item(account_id, "clicktocall", item_id)
    settings = widget.settings_of(found) if found else None
    if found is None or found.get("auth_required", True) or settings is None:
        raise NotFound("no widget here")
    return found, settings


def _own_origin() -> str:
    return widget.normalize_origin(request.host_url)


def _page_origin(settings: widget.WidgetSettings) -> str | None:
    """The calling page's origin when the widget may serve it: one of the
    resource's origins, or this server's own (the frame form, whose
    embedding frame-ancestors limits to those origins)."""
    origin = widget.normalize_origin(request.headers.get("Origin", ""))
    if origin and (origin in settings.origins or origin == _own_origin()):
        return origin
    return None


def _cors(response: Response, origin: str | None) -> Response:
    response.headers["Vary"] = "Origin"
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
    return response


def _refuse(account_id: str, item_id: str, status: int, reason: str, text: str, message: str,
            origin: str | None, **extra: Any) -> Response:
    _count_refusal(account_id, item_id, reason)
    response = error(status, reason, text, message=message, **extra)
    return _cors(response, origin)


def _fill(template: str, **values: str) -> str:
    for name, value in values.items():
        template = template.replace("{%s}" % name, value)
    return template


# ---------------------------------------------------------------- the page's files


@bp.get("/v1/widget/<account_id>/<item_id>/widget.js")
def script(account_id: str, item_id: str) -> Response:
    resource, settings = _resource(account_id, item_id)
    base = "/v1/widget/%s/%s" % (account_id, item_id)
    config = {"session": base + "/session", "calls": base + "/calls", "events": "/v1/widget/calls/{id}/events",
              "texts": {**settings.text(), "name": resource["name"]}}
    body = _script_text().replace("__ESLENGINE_CONFIG__", _json(config))
    response = Response(body, mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/v1/widget/<account_id>/<item_id>/frame")
def frame(account_id: str, item_id: str) -> Response:
    resource, settings = _resource(account_id, item_id)
    lang = settings.language
    page = _FRAME % {"lang": lang, "title": _html(resource["name"]),
                     "src": "/v1/widget/%s/%s/widget.js" % (account_id, item_id)}
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
        "frame-ancestors %s" % " ".join(settings.origins))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


# ---------------------------------------------------------------- session and calls


@bp.route("/v1/widget/<account_id>/<item_id>/session", methods=["GET", "OPTIONS"])
def session(account_id: str, item_id: str) -> Response:
    config = context.config()
    if not config.widget_secret:
        return _off()
    resource, settings = _resource(account_id, item_id)
    origin = _page_origin(settings)
    if request.method == "OPTIONS":
        return _preflight(origin, "GET")
    if origin is None:
        return _refuse(account_id, item_id, 403, "origin_not_allowed", "this page may not use this widget",
                       settings.text()["error"], None)
    now = time.time()
    index, left = clicktocall.window(now, 3600)
    retry = context.clicktocall_log().take(account_id, item_id, [
        ("session:%s:%d" % (request.remote_addr or "-", index), SESSIONS_PER_HOUR, 3600, left)])
    if retry:
        return _too_many(account_id, item_id, retry, settings, origin)
    body: dict[str, Any] = {
        "token": widget.make_token(config.widget_secret, account_id, item_id, origin, now),
        "expires_in": widget.TOKEN_TTL, "language": settings.language,
        "texts": {**settings.text(), "name": resource["name"]}, "region": settings.region or config.default_region,
        "visitor_first": resource.get("dial_first", "extension") == "contact", "visitor_party": "b",
        "challenge": {"kind": "pow", "bits": settings.pow_bits} if settings.challenge == "pow" else None,
        "open": True,
    }
    if settings.hours is not None:
        opening = settings.hours.next_opening(datetime.now(timezone.utc))
        if opening is not None:
            body["open"] = False
            body["opens"] = widget.opens_text(opening, settings.hours.zone)
    response = json_response(body)
    response.headers["Cache-Control"] = "no-store"
    return _cors(response, origin)


def _preflight(origin: str | None, method: str) -> Response:
    response = Response(status=204 if origin else 403)
    if origin:
        response.headers["Access-Control-Allow-Methods"] = method
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return _cors(response, origin)


def _too_many(account_id: str, item_id: str, retry: float, settings: widget.WidgetSettings,
              origin: str | None, reason: str = "rate_limited") -> Response:
    response = _refuse(account_id, item_id, 429, reason, "too many calls for now; try again later",
                       settings.text()["rate_limited"], origin)
    response.headers["Retry-After"] = str(max(1, math.ceil(retry)))
    return response


@bp.route("/v1/widget/<account_id>/<item_id>/calls", methods=["POST", "OPTIONS"])
def call_me(account_id: str, item_id: str) -> Response:
    config = context.config()
    if not config.widget_secret:
        return _off()
    resource, settings = _resource(account_id, item_id)
    texts = {**settings.text(), "name": resource["name"]}
    origin = _page_origin(settings)
    if request.method == "OPTIONS":
        return _preflight(origin, "POST")
    if origin is None:
        return _refuse(account_id, item_id, 403, "origin_not_allowed", "this page may not use this widget",
                       texts["error"], None)
    body = request.get_json(silent=True)
    if not isinstance(body, Mapping):
        return _cors(error(400, "bad_request", "a JSON object with number and token", message=texts["error"]), origin)
    now = time.time()
    try:
        widget.check_token(config.widget_secret, body.get("token"), account_id, item_id, origin, now)
    except ValidationError as exc:
        return _refuse(account_id, item_id, 403, "token_invalid", exc.reason, texts["error"], origin, field="token")
    if settings.challenge == "pow" and not widget.pow_ok(str(body["token"]), body.get("nonce"), settings.pow_bits):
        return _refuse(account_id, item_id, 403, "challenge_failed", "the proof of work is missing or wrong",
                       texts["error"], origin, field="nonce")
    if settings.hours is not None:
        opening = settings.hours.next_opening(datetime.now(timezone.utc))
        if opening is not None:
            opens = widget.opens_text(opening, settings.hours.zone)
            return _refuse(account_id, item_id, 403, "closed", "outside business hours; open again at %s" % opens,
                           _fill(texts["closed"], opens=opens), origin, opens=opens)
    number = body.get("number")
    try:
        if not isinstance(number, str) or not _NUMBER.fullmatch(number.strip()):
            raise ValidationError("number", "a phone number: digits, spaces, dashes, dots, brackets and +")
        region = settings.region or config.default_region
        local = dataclasses.replace(config, default_region=region) if region != config.default_region else config
        call = clicktocall.connect_request(resource, context.account_store().directory(account_id),
                                           number.strip(), local)
        dialed = str(call.b.destinations[0])
        context.queue().check_do_not_call(call, account_id)
    except DoNotCall as exc:
        return _refuse(account_id, item_id, 422, "do_not_call", exc.reason, texts["failed"], origin, field="number")
    except ValidationError as exc:
        field = "number" if exc.field in ("contact", "number") else exc.field
        return _refuse(account_id, item_id, 422, "invalid", exc.reason, exc.reason, origin, field=field)
    retry = _take_destination(dialed, config.widget_per_destination, now)
    if retry:
        return _too_many(account_id, item_id, retry, settings, origin, "destination_limited")
    placed = place_connect(None, account_id, item_id, resource, call, dialed)
    if isinstance(placed, float):
        return _too_many(account_id, item_id, placed, settings, origin)
    job_id, _ = placed
    log.info("job %s: widget call of click-to-call %s of account %s from %s", job_id, item_id, account_id, origin)
    watch = widget.make_watch(config.widget_secret, job_id, origin, now)
    response = json_response({"id": job_id, "status": "queued", "watch": watch,
                              "events": "/v1/widget/calls/%s/events?watch=%s" % (job_id, watch)}, 202)
    return _cors(response, origin)


@bp.get("/v1/widget/calls/<job_id>/events")
def watch_events(job_id: str) -> Response:
    config = context.config()
    if not config.widget_secret:
        return _off()
    try:
        origin = widget.check_watch(config.widget_secret, request.args.get("watch"), job_id, time.time())
    except ValidationError as exc:
        return error(403, "token_invalid", exc.reason, field="watch")
    queue = context.queue()
    if queue.get(job_id) is None:
        raise NotFound("no call with this id")
    after = events.last_event_id(request.headers.get("Last-Event-ID"))
    read: Callable[[], Mapping[str, Any] | None] = lambda: _public(queue.get(job_id))  # noqa: E731
    stream: Iterator[bytes] = events.follow(read, after=after, sleep=events.gevent_sleep)
    response = Response(stream, mimetype="text/event-stream", headers=events.HEADERS)
    asked = widget.normalize_origin(request.headers.get("Origin", ""))
    return _cors(response, origin if asked == origin else None)


def _public(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the public stream shows of a call: its status, outcome and
    history, no numbers or variables."""
    if document is None:
        return None
    out = {k: document[k] for k in PUBLIC_FIELDS if document.get(k) is not None}
    out["id"] = document["id"]
    out["history"] = document.get("history", [])
    out["final"] = document.get("status") in FINAL
    return out


# ---------------------------------------------------------------- counters


def _take_destination(number: str, limit: int, now: float) -> float:
    """Count one widget call to ``number``; the seconds until the hour has
    room again when it had none."""
    index, left = clicktocall.window(now, 3600)
    key = context.queue().keys.widget_destination(number, index)
    return context.clicktocall_log().take_keys([key], [(key, limit, 3600, left)])


def _refusals_key(account_id: str, item_id: str) -> str:
    return context.queue().keys.c2c_refusals(account_id, item_id)


def _count_refusal(account_id: str, item_id: str, reason: str) -> None:
    metrics.WIDGET_REFUSALS.labels(reason).inc()
    try:
        with redis_errors("count a refusal"):
            context.queue().redis.hincrby(_refusals_key(account_id, item_id), reason, 1)
    except (QueueUnavailable, redis.RedisError) as exc:
        log.warning("widget refusal not counted: %s", exc)


def refusal_counts(account_id: str, item_id: str) -> dict[str, int]:
    """How often each check refused a widget call of this resource
    (``GET /v1/accounts/<account>/clicktocall/<id>/widget/refusals``)."""
    with redis_errors("read the refusals"):
        counts = context.queue().redis.hgetall(_refusals_key(account_id, item_id))
    return {reason: int(counts.get(reason, 0)) for reason in widget.REFUSALS}


# ---------------------------------------------------------------- files


def _json(value: Any) -> str:
    import orjson

    # Inside a <script>, "</" must not appear as such.
    return orjson.dumps(value).decode().replace("</", "<\\/")


def _html(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("'", "&#39;"))


_script_cache: list[str] = []


def _script_text() -> str:
    if not _script_cache:
        _script_cache.append(resources.files("eslengine.http").joinpath("static/widget.js").read_text("utf-8"))
    return _script_cache[0]


_FRAME = """<!doctype html>
<html lang="%(lang)s">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>%(title)s</title></head>
<body style="margin:0;font-family:system-ui,sans-serif">
<div data-eslengine-widget></div>
<script src="%(src)s"></script>
</body>
</html>
"""

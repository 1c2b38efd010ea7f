"""Kazoo's crossbar protocol, pure: the request envelope (``{"data": ...}``)
and the reply envelopes, success and error, as crossbar builds them
(``api_util:create_default_resp_envelope``, ``cb_context:add_system_error``
and ``add_validation_error`` in 2600hz/kazoo)::

    {"auth_token": "...", "data": ..., "node": "...", "request_id": "...",
     "revision": "...", "status": "success", "timestamp": "...", "version": "..."}

    {"auth_token": "...", "data": {"<field>": {"<code>": {"message": "..."}}},
     "error": "400", "message": "validation error", "status": "error", ...}

A system error (401, 403, 404, 405, 429, 503) names the error in
``message`` (``invalid_credentials``) and says it in words in
``data.message``; a validation error keys ``data`` by the field (dotted,
``media.ignore_early_media``) and then by a code (``required``, ``enum``,
``type``, ``invalid``).
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from ...errors import ValidationError

# The crossbar API version whose shapes this facade answers in (the
# version the vendor's examples show).
VERSION = "4.3.1"
# What Kazoo names each system error it answers with, and says in words.
SYSTEM_ERRORS = {
    400: ("invalid_request", "invalid request"),
    401: ("invalid_credentials", "invalid credentials"),
    403: ("forbidden", "forbidden"),
    404: ("bad_identifier", "bad identifier"),
    405: ("invalid_method", "method not allowed"),
    413: ("request_too_large", "request entity too large"),
    429: ("too_many_requests", "too many requests"),
    503: ("datastore_unreachable", "datastore timeout"),
}
ENVELOPE_KEYS = ("data", "auth_token")


@dataclass(frozen=True)
class Meta:
    """What every reply of one request carries besides its data."""

    request_id: str
    auth_token: str = ""
    timestamp: str = ""
    node: str = ""


def node_name(host: str | None = None) -> str:
    """This process's ``node`` (Kazoo: its Erlang node name, encoded)."""
    name = "eslengine@%s" % (host or socket.gethostname())
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def revision(data: object) -> str:
    """A document's revision: a digest of its content (changes whenever it does)."""
    return hashlib.md5(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _base(meta: Meta) -> dict[str, Any]:
    return {"auth_token": meta.auth_token, "node": meta.node, "request_id": meta.request_id,
            "timestamp": meta.timestamp, "version": VERSION}


def success(data: object, meta: Meta, **extra: object) -> dict[str, Any]:
    """A success reply: ``data`` and the envelope (``extra``: ``page_size``,
    ``next_start_key`` ...)."""
    return {**_base(meta), "data": data, "revision": revision(data), "status": "success", **extra}


def failure(code: int, message: str, data: object, meta: Meta) -> dict[str, Any]:
    """An error reply: the HTTP code as a string in ``error``, the error's
    name in ``message``."""
    return {**_base(meta), "data": data, "error": str(code), "message": message, "status": "error"}


def system_error(code: int, meta: Meta, reason: str = "", **data: object) -> dict[str, Any]:
    """A crossbar system error (``SYSTEM_ERRORS``); ``reason`` replaces the
    stock words of ``data.message``."""
    name, words = SYSTEM_ERRORS[code]
    return failure(code, name, {"message": reason or words, **data}, meta)


def validation_code(reason: str) -> str:
    """The code a validation error is filed under, from its reason."""
    if reason.startswith("required"):
        return "required"
    if reason.startswith(("must be one of", "must be extension or contact", "the one ")):
        return "enum"
    if reason.startswith(("must be true or false", "must be an object", "must be a JSON object",
                          "must be a string", "must be a non-empty string")):
        return "type"
    if reason.startswith("unknown"):
        return "additionalProperties"
    return "invalid"


def validation_error(field: str, reason: str, meta: Meta, *, value: object = None) -> dict[str, Any]:
    """Kazoo's 400 naming ``field``: ``data[field][code] = {"message": reason}``
    (and the ``value`` refused, where there is one)."""
    detail: dict[str, object] = {"message": reason}
    if isinstance(value, (str, int, float, bool)):
        detail["value"] = value
    return failure(400, "validation error", {field or "data": {validation_code(reason): detail}}, meta)


def request_data(document: object, *, required: bool) -> dict[str, Any]:
    """The ``data`` object of a crossbar request body (``{"data": {...}}``);
    ``{}`` for an empty body when ``required`` is false. The envelope may
    carry nothing else: a token goes in the ``X-Auth-Token`` header."""
    if document is None:
        if required:
            raise ValidationError("data", "required: the request body is {\"data\": {...}}")
        return {}
    if not isinstance(document, Mapping):
        raise ValidationError("data", "must be an object: the request body is {\"data\": {...}}")
    for key in document:
        if key == "auth_token":
            raise ValidationError("auth_token", "send the token in the X-Auth-Token header")
        if key != "data":
            raise ValidationError(str(key)[:60] or "data", "unknown envelope key (the request body is "
                                  "{\"data\": {...}})")
    data = document.get("data")
    if data is None:
        if required:
            raise ValidationError("data", "required: the request body is {\"data\": {...}}")
        return {}
    if not isinstance(data, Mapping):
        raise ValidationError("data", "must be an object")
    return dict(data)

"""Kazoo's click-to-call and quickcall documents to eslengine's native
ones and back. Pure: no Flask, no Redis.

Click-to-call resources are the native ones (``clicktocall.py``), one
storage for both surfaces; the fields have the same names. What differs:

- ``extension``: Kazoo names an extension of the account's callflows
  (``"1000"``); FreeSWITCH's nearest thing is the directory user, so a short
  extension (1 to 6 digits) is the native ``user/1000`` and ``user/1000``
  (without a domain) is shown to Kazoo as ``1000``. Everything else a native
  extension takes (``user:<id>``, ``device:<id>``, ``group:<id>``, E.164, a
  SIP URI) passes as it is.
- ``bypass_media`` may be the deprecated strings ``"true"``/``"false"``;
  ``"auto"`` (let the endpoint decide) has no FreeSWITCH originate
  equivalent and is refused.
- the engine's ``created_at``/``updated_at`` are not shown, and are dropped
  when a fetched document is sent back.

Quickcall (``cb_quickcall.erl``) becomes a native request: the user's or
device's endpoints ring first (party ``a``, all at once, as Kazoo's
``simultaneous``), showing "Device QuickCall" and the number being called;
when one answers, the number is rung (party ``b``) showing ``cid-number`` /
``cid-name`` when given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from ... import calls, dialstring
from ...config import Config
from ...errors import ValidationError

SHORT_EXTENSION = re.compile(r"[0-9]{1,6}")
_DIRECTORY_EXTENSION = re.compile(r"user/([0-9]{1,6})")
HIDDEN = ("created_at", "updated_at")
QUICKCALL_CALLER_NAME = "Device QuickCall"
# Kazoo's default number_filter: these characters are removed from the number.
NUMBER_FILTER_CHARACTERS = " ,.-()"
MAX_NUMBER = 128
MAX_FILTER = 100
QUICKCALL_OPTIONS = ("auto_answer", "cid-name", "cid-number", "ignore-early-media", "media", "number_filter",
                     "target_call_id", "timeout", "custom_application_vars")
MIN_TIMEOUT = 3  # Kazoo's least (integer(3..)); the engine's is calls.MIN_RING_TIMEOUT

_FILTER_OPTIONS = re2.Options()
_FILTER_OPTIONS.max_mem = 1 << 20
_FILTER_OPTIONS.log_errors = False


# ---------------------------------------------------------------- click-to-call resources


def extension_in(value: object) -> object:
    """A Kazoo extension as the native resource names it."""
    if isinstance(value, str) and SHORT_EXTENSION.fullmatch(value):
        return "user/" + value
    return value


def extension_out(value: str) -> str:
    match = _DIRECTORY_EXTENSION.fullmatch(value)
    return match.group(1) if match else value


def resource_in(data: Mapping[str, Any], item_id: str | None = None) -> dict[str, Any]:
    """A Kazoo click-to-call document as a native one (``accounts.parse_item``
    validates it). ``id`` may be sent back only with the resource's own."""
    out = {k: v for k, v in data.items() if k not in HIDDEN}
    if "id" in out:
        if item_id is None or out["id"] != item_id:
            raise ValidationError("id", "is the engine's; it does not match this URL")
        del out["id"]
    if "extension" in out:
        out["extension"] = extension_in(out["extension"])
    bypass = out.get("bypass_media")
    if isinstance(bypass, str):
        if bypass == "auto":
            raise ValidationError("bypass_media", "auto is not supported: FreeSWITCH decides bypass when the call "
                                  "is placed, not per endpoint; use true or false")
        if bypass not in ("true", "false"):
            raise ValidationError("bypass_media", "must be true or false")
        out["bypass_media"] = bypass == "true"
    if out.get("music_on_hold") == {}:
        del out["music_on_hold"]
    return out


def resource_out(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A native resource as Kazoo shows it."""
    out = {k: v for k, v in stored.items() if k not in HIDDEN}
    out["extension"] = extension_out(str(stored.get("extension", "")))
    out.setdefault("custom_application_vars", {})
    return out


def summary_out(stored: Mapping[str, Any]) -> dict[str, Any]:
    """A resource as Kazoo's listing shows it."""
    return {"extension": extension_out(str(stored.get("extension", ""))), "id": stored.get("id"),
            "name": stored.get("name")}


# ---------------------------------------------------------------- connects


def connect_variables(resource: Mapping[str, Any], query: Mapping[str, str], data: Mapping[str, Any],
                      contact: str) -> dict[str, Any]:
    """The custom application variables of a connect, as Kazoo gathers them
    (``cb_modules_util:cavs_from_context``): the resource's, then the body's
    ``custom_application_vars``, then every query-string parameter but the
    connect's own options, and the ``contact`` (Kazoo's documented reply
    shows it there)."""
    out: dict[str, Any] = dict(resource.get("custom_application_vars") or {})
    body_vars = data.get("custom_application_vars")
    if body_vars is not None:
        if not isinstance(body_vars, Mapping):
            raise ValidationError("custom_application_vars", "must be an object of name: value")
        out.update(body_vars)
    out.update({k: v for k, v in query.items() if k not in ("contact", "blocking")})
    out["contact"] = contact
    return out


def parse_blocking(query: Mapping[str, str], data: Mapping[str, Any]) -> bool:
    return parse_bool("blocking", data.get("blocking", query.get("blocking")), False)


def history_entry(call_id: str, contact: str, created: float, started: bool | None, status: str,
                  cause: str) -> dict[str, Any]:
    """One connect as Kazoo's history (and a blocking connect) shows it:
    ``result`` ``success`` once the first party's channel existed, ``error``
    with the ``cause`` when the call failed before, and ``pending`` while
    neither is known (Kazoo writes its history only once it knows)."""
    out: dict[str, Any] = {"id": call_id, "call_id": call_id, "contact": contact,
                           "timestamp": gregorian_seconds(created), "status": status}
    if started is True:
        out["result"] = "success"
    elif started is False:
        out["result"] = "error"
        out["cause"] = cause
    else:
        out["result"] = "pending"
    return out


# Seconds from 0000-01-01 to 1970-01-01: Kazoo's timestamps are Gregorian seconds.
UNIX_EPOCH_GREGORIAN = 62_167_219_200


def gregorian_seconds(unix: float) -> int:
    return int(unix) + UNIX_EPOCH_GREGORIAN


# ---------------------------------------------------------------- quickcall


@dataclass(frozen=True)
class Quickcall:
    number: str
    auto_answer: bool = True
    cid_name: str | None = None
    cid_number: str | None = None
    ignore_early_media: bool = True
    media: str = "process"
    target_call_id: str | None = None
    timeout: int | None = None
    variables: dict[str, Any] = field(default_factory=dict)


def parse_bool(name: str, value: object, default: bool) -> bool:
    if value is None:
        return default
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise ValidationError(name, "must be true or false")


def _text(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValidationError(name, "must be a non-empty string")
    return value


def filter_number(number: str, number_filter: object) -> str:
    """Kazoo's ``number_filter``: true (the default) removes spaces and
    ``,.-()``; false keeps the number as it is; a regex keeps its first
    capture group, and a number it does not match stays as it is (RE2 here,
    so the time is linear whatever the pattern)."""
    if number_filter is None or number_filter in (True, "true"):
        return "".join(ch for ch in number if ch not in NUMBER_FILTER_CHARACTERS)
    if number_filter in (False, "false"):
        return number
    if not isinstance(number_filter, str) or not 1 <= len(number_filter) <= MAX_FILTER:
        raise ValidationError("number_filter", "true, false or a regular expression of 1 to %d characters"
                              % MAX_FILTER)
    try:
        compiled = re2.compile(number_filter, _FILTER_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "rejected"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValidationError("number_filter", "not a valid regular expression (RE2 syntax): %s" % reason) from None
    if compiled.groups < 1:
        raise ValidationError("number_filter", "needs a capture group: the first group is the number to dial")
    match = compiled.search(number)
    return match.group(1) if match is not None and match.group(1) else number


def parse_timeout(value: object, config: Config) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("timeout", "a whole number of seconds")
    if value < MIN_TIMEOUT or value > config.max_ring_timeout:
        raise ValidationError("timeout", "from %d to %d seconds" % (MIN_TIMEOUT, config.max_ring_timeout))
    if value < calls.MIN_RING_TIMEOUT:
        raise ValidationError("timeout", "at least %d seconds on this service: a ring time shorter than that ends "
                              "most calls before a phone can answer" % calls.MIN_RING_TIMEOUT)
    return value


def parse_quickcall(number: str, query: Mapping[str, str], data: Mapping[str, Any], config: Config) -> Quickcall:
    """A quickcall's options, from the body's ``data`` or the query string
    (the body wins, as Kazoo's ``req_value``); every other query-string
    parameter is a custom application variable, as is every key of the
    body's ``custom_application_vars``. Unknown keys in the body are refused."""
    for key in data:
        if key not in QUICKCALL_OPTIONS:
            raise ValidationError(str(key)[:60] or "data", "unknown option (known: %s)" % ", ".join(QUICKCALL_OPTIONS))

    def option(name: str) -> object:
        return data[name] if name in data else query.get(name)

    if len(number) > MAX_NUMBER:
        raise ValidationError("number", "at most %d characters" % MAX_NUMBER)
    filtered = filter_number(number, option("number_filter"))
    if not filtered:
        raise ValidationError("number", "number_filter left no number to dial")
    media = option("media")
    if media is not None and media not in ("bypass", "process"):
        raise ValidationError("media", "must be one of bypass, process")
    variables: dict[str, Any] = {}
    body_vars = data.get("custom_application_vars")
    if body_vars is not None:
        if not isinstance(body_vars, Mapping):
            raise ValidationError("custom_application_vars", "must be an object of name: value")
        variables.update(body_vars)
    variables.update({k: v for k, v in query.items() if k not in QUICKCALL_OPTIONS})
    return Quickcall(
        number=filtered,
        auto_answer=parse_bool("auto_answer", option("auto_answer"), True),
        cid_name=_text("cid-name", option("cid-name")),
        cid_number=_text("cid-number", option("cid-number")),
        ignore_early_media=parse_bool("ignore-early-media", option("ignore-early-media"), True),
        media=str(media or "process"),
        target_call_id=_text("target_call_id", option("target_call_id")),
        timeout=parse_timeout(option("timeout"), config),
        variables=variables,
    )


def number_destination(number: str) -> str:
    """The number a quickcall dials, as the native request takes it: a short
    extension is the directory user (as a click-to-call's extension)."""
    return "user/" + number if SHORT_EXTENSION.fullmatch(number) else number


def quickcall_request(quickcall: Quickcall, destinations: list[str], mode: str) -> dict[str, Any]:
    """The native request document of a quickcall ringing ``destinations``
    (the user's or device's endpoints) first."""
    endpoint: dict[str, Any] = {"to": destinations, "mode": mode, "caller_id_name": QUICKCALL_CALLER_NAME,
                                "show_other_number": True, "auto_answer": quickcall.auto_answer,
                                "ignore_early_media": quickcall.ignore_early_media}
    number: dict[str, Any] = {"to": number_destination(quickcall.number)}
    if quickcall.cid_number is not None:
        number["caller_id_number"] = quickcall.cid_number
    if quickcall.cid_name is not None:
        number["caller_id_name"] = quickcall.cid_name
    document: dict[str, Any] = {"a": endpoint, "b": number, "dial_first": "a"}
    if quickcall.timeout is not None:
        document["timeout"] = quickcall.timeout
    if quickcall.media == "bypass":
        document["media"] = "bypass"
    if quickcall.target_call_id is not None:
        document["target_call_id"] = quickcall.target_call_id
    if quickcall.variables:
        document["variables"] = quickcall.variables
    return document


# Where a native request's field comes from in a quickcall (longest prefix first).
_QUICKCALL_FIELDS = (
    ("a.caller_id_number", "cid-number"), ("a.show_other_number", "cid-number"), ("a.timeout", "timeout"),
    ("a.auto_answer", "auto_answer"), ("a.ignore_early_media", "ignore-early-media"), ("a", "endpoint"),
    ("b.caller_id_number", "cid-number"), ("b.caller_id_name", "cid-name"), ("b.timeout", "timeout"),
    ("b", "number"), ("caller_id_number", "cid-number"), ("timeout", "timeout"), ("media", "media"),
    ("target_call_id", "target_call_id"), ("variables", "custom_application_vars"),
)


def quickcall_field(native: str) -> str:
    """The quickcall option a native request's field comes from."""
    for prefix, name in _QUICKCALL_FIELDS:
        if native == prefix or native.startswith(prefix + "."):
            return name + native[len(prefix):] if name == "custom_application_vars" else name
    return native


# ---------------------------------------------------------------- replies


def shown_to(call: calls.CallRequest, name: str, config: Config) -> tuple[str | None, str | None]:
    """The caller-ID number and name party ``name``'s phones are shown (as
    the dial string sets them)."""
    found = dict(dialstring.party_variables(call, name, config))
    return found.get("origination_caller_id_number"), found.get("origination_caller_id_name")


def originate_data(call: calls.CallRequest, config: Config, *, account_id: str, authorizing_id: str,
                   authorizing_type: str, continue_on_fail: bool) -> dict[str, Any]:
    """What a quickcall or a connect asked the switch for, in the shape of
    Kazoo's originate request (its 202 ``data``): the first party's
    ``endpoints``, the ``route`` the answered leg is transferred to (the
    second party), each side's caller ID, and the engine's ``call_id``
    (``GET /v1/calls/<call_id>`` follows it)."""
    first = call.party(call.dial_first)
    second = call.party(call.second)
    caller_number, caller_name = shown_to(call, call.dial_first, config)
    callee_number, callee_name = shown_to(call, call.second, config)
    out: dict[str, Any] = {
        "application_data": {"route": str(second.first)},
        "application_name": "transfer",
        "call_id": call.id,
        "continue_on_fail": continue_on_fail,
        "custom_application_vars": dict(call.variables),
        "custom_channel_vars": {"account_id": account_id, "authorizing_id": authorizing_id,
                                "authorizing_type": authorizing_type, "inherit_codec": False,
                                "retain_cid": True},
        "dial_endpoint_method": "simultaneous" if first.mode == "simultaneous" else "single",
        "endpoints": [{"invite_format": "route", "route": str(d)} for d in first.destinations],
        "ignore_early_media": first.ignore_early_media,
        "media": call.media,
        "outbound_call_id": call.id,
        "timeout": first.timeout,
    }
    if first.auto_answer:
        out["custom_channel_vars"]["auto_answer"] = True
    for key, value in (("outbound_caller_id_number", caller_number), ("outbound_caller_id_name", caller_name),
                       ("outbound_callee_id_number", callee_number), ("outbound_callee_id_name", callee_name)):
        if value:
            out[key] = value
    if call.target_call_id:
        out["existing_call_id"] = call.target_call_id
    return out

"""Saved click-to-call resources (Kazoo's ``clicktocall`` shape): an
account's pre-set call that a visitor connects with their own number.

A resource names an ``extension`` (a user, device or group of its account,
or an endpoint) and everything about the call; a *connect* gives the
``contact`` and becomes one native ``CallRequest`` through
``calls.parse_request``, so every policy and escaping rule of the native API
applies and no dial string is built here:

    party a  the extension: its destinations and ring mode, what its phone
             shows (outbound_callee_id_*: by default the contact's number and
             the resource's name), presence_id, custom_sip_headers,
             media.ignore_early_media
    party b  the contact: what its phone shows (caller_id_number/_name)
    dial_first  "extension" -> a, "contact" -> b
    timeout, custom_application_vars (variables), ringback, announcement,
    bypass_media (media: bypass)

The contact must match one of the ``whitelist`` regexes (RE2, linear time),
matched against the contact as it will be dialed (E.164 for a number).
``throttle`` caps connects a minute per resource. A resource with
``auth_required: false`` can be connected without a key (``POST`` only,
unless ``allow_get_connect``), within ``per_ip_per_hour`` and
``per_contact_per_hour``.

Pure but for ``ClickToCallLog`` (the Redis counters and connect history).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import re2
import redis

from . import calls
from .accounts import Directory, check_object, parse_name, parse_reference, resolve_extension, valid_id
from .config import Config
from .destinations import parse_destination
from .errors import ValidationError
from .store import Keys, redis_errors
from .store.executor import Executor
from .widget import DEFAULT_NETWORK_PER_HOUR, network_of, parse_widget

FIELDS = (
    "name", "extension", "whitelist", "throttle", "max_concurrent", "auth_required", "allow_get_connect", "per_ip_per_hour",
    "per_contact_per_hour", "dial_first", "caller_id_number", "caller_id_name", "outbound_callee_id_number",
    "outbound_callee_id_name", "custom_application_vars", "custom_sip_headers", "ringback", "music_on_hold", "widget",
    "announcement", "presence_id", "bypass_media", "media", "timeout",
)
DIAL_FIRST = ("extension", "contact")
MAX_WHITELIST = 20
MAX_PATTERN = 200
MAX_THROTTLE = 10_000
# Calls of one resource up at once (max_concurrent): counted among its
# newest connects, at most this many.
MAX_CONCURRENT = 200
# Connects without a key, per hour: from one address, and to one contact.
PUBLIC_PER_IP = 10
PUBLIC_PER_CONTACT = 3
MAX_PUBLIC_LIMIT = 1000
MAX_CONTACT = 128

_WHITELIST_OPTIONS = re2.Options()
_WHITELIST_OPTIONS.max_mem = 1 << 20
_WHITELIST_OPTIONS.log_errors = False


def compile_whitelist(name: str, patterns: Sequence[str]) -> list[Any]:
    """Each pattern compiled with RE2 (no back references or lookaround;
    time linear in the input whatever the pattern)."""
    out = []
    for i, pattern in enumerate(patterns):
        field = "%s.%d" % (name, i)
        if not isinstance(pattern, str) or not 1 <= len(pattern) <= MAX_PATTERN:
            raise ValidationError(field, "a regular expression of 1 to %d characters" % MAX_PATTERN)
        try:
            out.append(re2.compile(pattern, _WHITELIST_OPTIONS))
        except re2.error as exc:
            reason = exc.args[0] if exc.args else "rejected"
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise ValidationError(field, "not a valid regular expression (RE2 syntax): %s" % reason) from None
    return out


def whitelisted(patterns: Sequence[str], contact: str) -> bool:
    """Whether ``contact`` (as it will be dialed) matches one of ``patterns``
    anywhere (anchor a pattern with ^ and $ to match all of it); an empty
    whitelist allows every contact the number policy allows."""
    if not patterns:
        return True
    return any(compiled.search(contact) is not None for compiled in compile_whitelist("whitelist", patterns))


def _bool(name: str, value: object, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def _int(name: str, value: object, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(name, "a whole number from %d to %d" % (low, high))
    return value


def _media_ref(name: str, value: object, *, tones: tuple[str, ...] = ()) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and (value in tones or valid_id(value)):
        return value
    raise ValidationError(name, "%sthe id of a media item of this account" % (
        "one of %s, or " % ", ".join(tones) if tones else ""))


def parse_resource(data: Mapping[str, Any], config: Config) -> dict[str, Any]:
    """A click-to-call document, normalised (every default written out);
    ``ValidationError`` naming the field. What it names in the account, and
    what the native request makes of it, ``check_resource`` checks."""
    spec = check_object("", data, FIELDS)
    out: dict[str, Any] = {"name": parse_name("name", spec.get("name")),
                           "extension": parse_reference("extension", spec.get("extension"), config)}
    whitelist = spec.get("whitelist")
    if whitelist is not None:
        if not isinstance(whitelist, list) or len(whitelist) > MAX_WHITELIST:
            raise ValidationError("whitelist", "a list of at most %d regular expressions" % MAX_WHITELIST)
        compile_whitelist("whitelist", whitelist)
    out["whitelist"] = list(whitelist or [])
    out["throttle"] = _int("throttle", spec.get("throttle"), 0, MAX_THROTTLE) or 0
    concurrent = _int("max_concurrent", spec.get("max_concurrent"), 1, MAX_CONCURRENT)
    if concurrent is not None:
        out["max_concurrent"] = concurrent
    out["auth_required"] = _bool("auth_required", spec.get("auth_required"), True)
    out["allow_get_connect"] = _bool("allow_get_connect", spec.get("allow_get_connect"), False)
    per_ip = _int("per_ip_per_hour", spec.get("per_ip_per_hour"), 1, MAX_PUBLIC_LIMIT)
    per_contact = _int("per_contact_per_hour", spec.get("per_contact_per_hour"), 1, MAX_PUBLIC_LIMIT)
    out["per_ip_per_hour"] = per_ip or PUBLIC_PER_IP
    out["per_contact_per_hour"] = per_contact or PUBLIC_PER_CONTACT
    dial_first = spec.get("dial_first")
    if dial_first is not None and dial_first not in DIAL_FIRST:
        raise ValidationError("dial_first", "must be extension or contact")
    out["dial_first"] = dial_first or "extension"
    for name in ("caller_id_number", "caller_id_name", "outbound_callee_id_number", "outbound_callee_id_name",
                 "presence_id"):
        value = spec.get(name)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ValidationError(name, "must be a non-empty string")
            out[name] = value  # checked by the native request (check_resource)
    variables = spec.get("custom_application_vars")
    if variables is not None:
        if not isinstance(variables, Mapping):
            raise ValidationError("custom_application_vars", "must be an object of name: value")
        out["custom_application_vars"] = dict(variables)
    headers = spec.get("custom_sip_headers")
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise ValidationError("custom_sip_headers", "must be an object of X-Name: value")
        if "in" in headers:
            raise ValidationError("custom_sip_headers.in", "headers on calls into the switch do not apply to a "
                                  "call the switch places")
        if "out" in headers:
            if len(headers) > 1 or not isinstance(headers["out"], Mapping):
                raise ValidationError("custom_sip_headers.out", "an object of X-Name: value, alone")
            headers = headers["out"]
        out["custom_sip_headers"] = dict(headers)
    ringback = _media_ref("ringback", spec.get("ringback"), tones=calls.RINGBACK_TONES)
    if ringback is not None:
        out["ringback"] = ringback
    announcement = _media_ref("announcement", spec.get("announcement"))
    if announcement is not None:
        out["announcement"] = announcement
    hold = spec.get("music_on_hold")
    if hold not in (None, {}):
        hold = check_object("music_on_hold", hold, ("media_id",))
        media_id = _media_ref("music_on_hold.media_id", hold.get("media_id"), tones=("moh",))
        if media_id is None:
            raise ValidationError("music_on_hold.media_id", "required: moh, or the id of a media item")
        out["music_on_hold"] = {"media_id": media_id}
    out["bypass_media"] = _bool("bypass_media", spec.get("bypass_media"), False)
    media = spec.get("media")
    ignore_early_media = True
    if media is not None:
        media_spec = check_object("media", media, ("ignore_early_media",))
        ignore_early_media = _bool("media.ignore_early_media", media_spec.get("ignore_early_media"), True)
    out["media"] = {"ignore_early_media": ignore_early_media}
    timeout = _int("timeout", spec.get("timeout"), calls.MIN_RING_TIMEOUT, config.max_ring_timeout)
    if timeout is not None:
        out["timeout"] = timeout
    if spec.get("widget") is not None:
        if out["auth_required"]:
            raise ValidationError("widget", "a widget goes on a public page: set auth_required to false")
        out["widget"] = parse_widget(spec["widget"])
    return out


def native_request(resource: Mapping[str, Any], directory: Directory, contact: str) -> dict[str, Any]:
    """The native request document (the body of ``POST /v1/calls``) of a
    connect of ``resource`` to ``contact`` (as it will be dialed)."""
    destinations, mode = resolve_extension("extension", resource["extension"], directory)
    extension: dict[str, Any] = {"to": destinations, "mode": mode,
                                 "ignore_early_media": resource.get("media", {}).get("ignore_early_media", True)}
    if resource.get("outbound_callee_id_number"):
        extension["caller_id_number"] = resource["outbound_callee_id_number"]
    else:
        extension["show_other_number"] = True
    extension["caller_id_name"] = resource.get("outbound_callee_id_name") or resource["name"]
    if resource.get("presence_id"):
        extension["presence_id"] = resource["presence_id"]
    if resource.get("custom_sip_headers"):
        extension["sip_headers"] = resource["custom_sip_headers"]
    party: dict[str, Any] = {"to": contact}
    for name in ("caller_id_number", "caller_id_name"):
        if resource.get(name):
            party[name] = resource[name]
    document: dict[str, Any] = {"a": extension, "b": party,
                                "dial_first": "a" if resource.get("dial_first", "extension") == "extension" else "b"}
    if resource.get("timeout"):
        document["timeout"] = resource["timeout"]
    if resource.get("custom_application_vars"):
        document["variables"] = resource["custom_application_vars"]
    for name, tones in (("ringback", calls.RINGBACK_TONES), ("announcement", ())):
        value = resource.get(name)
        if value is None:
            continue
        if value in tones:
            document[name] = value
        elif value in directory.media:
            document[name] = {k: v for k, v in directory.media[value].items() if k in ("file", "url", "say",
                                                                                     "language", "voice")}
        else:
            raise ValidationError(name, "no media %s in this account" % value)
    hold = (resource.get("music_on_hold") or {}).get("media_id")
    if hold == "moh":
        document["music_on_hold"] = "moh"
    elif hold is not None:
        if hold not in directory.media:
            raise ValidationError("music_on_hold.media_id", "no media %s in this account" % hold)
        document["music_on_hold"] = {k: v for k, v in directory.media[hold].items() if k in ("file", "url", "say")}
    if resource.get("bypass_media"):
        document["media"] = "bypass"
    return document


# Where a native request's field comes from in a resource (longest prefix first).
_FIELDS = (
    ("a.to", "extension"), ("a.mode", "extension"), ("a.caller_id_number", "outbound_callee_id_number"),
    ("a.show_other_number", "outbound_callee_id_number"), ("a.presence_id", "presence_id"),
    ("a.sip_headers", "custom_sip_headers"), ("a.ignore_early_media", "media.ignore_early_media"),
    ("a.timeout", "timeout"), ("b.to", "contact"), ("b.caller_id_number", "caller_id_number"),
    ("b.caller_id_name", "caller_id_name"), ("b.timeout", "timeout"), ("variables", "custom_application_vars"),
    ("ringback", "ringback"), ("music_on_hold", "music_on_hold.media_id"), ("announcement", "announcement"),
    ("media", "bypass_media"),
    ("timeout", "timeout"), ("a", "extension"), ("b", "contact"),
)


def resource_field(native: str, resource: Mapping[str, Any]) -> str:
    """The resource's field a native request's ``native`` field comes from
    (``"variables.x"`` -> ``"custom_application_vars.x"``)."""
    if native == "a.caller_id_name":
        return "outbound_callee_id_name" if resource.get("outbound_callee_id_name") else "name"
    for prefix, name in _FIELDS:
        if native == prefix or native.startswith(prefix + "."):
            rest = native[len(prefix):]
            keeps_suffix = name in ("custom_application_vars", "custom_sip_headers")
            return name + rest if keeps_suffix else name
    return native


def check_resource(resource: Mapping[str, Any], directory: Directory, config: Config) -> None:
    """Whether ``resource`` makes a call the native API accepts, with its
    extension standing in for the contact: the ids it names are the
    account's and every value passes the native request's rules.
    ``ValidationError`` naming the resource's field."""
    destinations, _ = resolve_extension("extension", resource["extension"], directory)
    document = native_request(resource, directory, destinations[0])
    try:
        calls.parse_request(document, config)
    except ValidationError as exc:
        raise ValidationError(resource_field(exc.field, resource), exc.reason) from None


def parse_contact(value: object, config: Config) -> str:
    """The contact of a connect, as it will be dialed."""
    if not isinstance(value, str) or not value:
        raise ValidationError("contact", "required: the number (or SIP address) to connect")
    if len(value) > MAX_CONTACT:
        raise ValidationError("contact", "at most %d characters" % MAX_CONTACT)
    return str(parse_destination("contact", value, config))


def connect_request(resource: Mapping[str, Any], directory: Directory, contact: object, config: Config,
                    *, job_id: str | None = None) -> calls.CallRequest:
    """The call a connect of ``resource`` places: the contact passes the
    number policy and the whitelist, and the whole request
    ``calls.parse_request``. ``ValidationError`` naming the resource's
    field (or ``contact``)."""
    dialed = parse_contact(contact, config)
    if not whitelisted(resource.get("whitelist", ()), dialed):
        raise ValidationError("contact", "not allowed by this click-to-call's whitelist")
    document = native_request(resource, directory, dialed)
    try:
        return calls.parse_request(document, config, job_id=job_id)
    except ValidationError as exc:
        raise ValidationError(resource_field(exc.field, resource), exc.reason) from None


# ---------------------------------------------------------------- limits


def window(now: float, seconds: int) -> tuple[int, float]:
    """The fixed window of ``seconds`` that ``now`` falls in, and the
    seconds until the next one."""
    index = int(now // seconds)
    return index, (index + 1) * seconds - now


def limits(resource: Mapping[str, Any], *, public: bool, ip: str, contact: str,
           now: float) -> list[tuple[str, int, int, float]]:
    """The counters a connect counts against: (counter name, limit, window
    length, seconds until that window ends) each. ``throttle`` per minute
    always; per address and per contact an hour when no key was given, and
    per network (``widget.network_of``) for a resource with a widget."""
    out = []
    if resource.get("throttle"):
        index, left = window(now, 60)
        out.append(("rate:%d" % index, int(resource["throttle"]), 60, left))
    if public:
        index, left = window(now, 3600)
        out.append(("ip:%s:%d" % (ip, index), int(resource.get("per_ip_per_hour") or PUBLIC_PER_IP), 3600, left))
        out.append(("contact:%s:%d" % (contact, index),
                    int(resource.get("per_contact_per_hour") or PUBLIC_PER_CONTACT), 3600, left))
        if resource.get("widget"):
            out.append(("net:%s:%d" % (network_of(ip), index),
                        int(resource["widget"].get("per_network_per_hour") or DEFAULT_NETWORK_PER_HOUR), 3600, left))
    return out


def retry_after(over: Sequence[int], counters: Sequence[tuple[str, int, int, float]]) -> float:
    """Seconds until every counter that was over its limit has room again."""
    return max((counters[i][3] for i in over), default=0.0)


class ClickToCallLog:
    """Connect counters and history of click-to-call resources in Redis:

    ``Keys.c2c_calls``, call ids by connect time (µs), and ``Keys.c2c_limit``,
    the connect counters (``limits``); counted by ``connect_limits.lua``.
    """

    def __init__(self, client: redis.Redis, prefix: str, *, record_ttl: int) -> None:
        self.redis: Any = client  # replies are str (decode_responses); see store.executor
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.record_ttl = record_ttl
        self.run = Executor(client)
        self._calls = self.keys.c2c_calls

    def take(self, account: str, item_id: str, counters: Sequence[tuple[str, int, int, float]]) -> float:
        """Count one connect: 0.0 when it may go ahead, else the seconds
        until it may (then nothing is counted)."""
        return self.take_keys([self.keys.c2c_limit(account, item_id, c[0]) for c in counters], counters)

    def take_keys(self, keys: Sequence[str], counters: Sequence[tuple[str, int, int, float]]) -> float:
        """``take`` on counters stored under ``keys`` (one each), e.g. ones
        shared by every resource."""
        if not counters:
            return 0.0
        args: list[str] = []
        for _, limit, length, _ in counters:
            args += [str(limit), str(length * 2)]
        with redis_errors("count connects"):
            over = self.run.script("connect_limits", list(keys), args)
        return retry_after([int(i) for i in over], counters)

    def add(self, account: str, item_id: str, job_id: str, now: float | None = None) -> None:
        ts = time.time() if now is None else now
        key = self._calls(account, item_id)
        with redis_errors("record connect"):
            pipe = self.redis.pipeline()
            pipe.zadd(key, {job_id: int(ts * 1_000_000)})
            pipe.zremrangebyscore(key, "-inf", int((ts - self.record_ttl) * 1_000_000))
            pipe.expire(key, self.record_ttl)
            pipe.execute()

    def history(self, account: str, item_id: str, *, after: tuple[int, str] | None,
                count: int) -> list[tuple[int, str]]:
        """Up to ``count`` (score, call id) of the resource's connects,
        newest first, after the cursor ``after``."""
        top = "+inf" if after is None else str(after[0])
        with redis_errors("read connects"):
            entries = self.redis.zrevrangebyscore(self._calls(account, item_id), top, "-inf", start=0,
                                                  num=count + 50, withscores=True)
        if after is not None:
            entries = [(m, s) for m, s in entries if int(s) < after[0] or (int(s) == after[0] and m < after[1])]
        return [(int(s), m) for m, s in entries[:count]]

    def forget(self, account: str, item_id: str) -> None:
        with redis_errors("delete connects"):
            self.redis.delete(self._calls(account, item_id))

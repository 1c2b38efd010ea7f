"""The embeddable "call me" widget of a click-to-call resource: its
settings, the visitor-facing texts, and the abuse controls that do not need
Redis. Pure: no I/O; the time is passed in.

A resource with ``auth_required: false`` and a ``widget`` object can be
put on a public page (``http/widget.py`` serves the script, the frame and
the endpoints). The ``widget`` object:

``origins``            the pages' origins (``https://www.example.com``), at
                       least one: only those get CORS answers, frame
                       embedding and widget tokens.
``region``             the country a national number is read in (``GB``).
``language``           ``en`` (default) or ``es``; ``texts`` overrides any text.
``hours``              business hours in the site's time zone: ``{"timezone":
                       "Europe/London", "days": [...], "hours": "09:00-17:30",
                       "holidays": [...]}``; outside them a call is refused
                       with the next opening.
``per_network_per_hour``  connects an hour from one network (IPv4 /24,
                       IPv6 /48), on top of the resource's per_ip_per_hour.
``challenge``          ``off`` (default) or ``pow``: each call must carry a
                       proof of work (``pow_bits`` leading zero bits of
                       SHA-256, 8–24, default 16) for its widget token, for a
                       resource under attack.

A widget token (``make_token``) binds the resource and the page's origin
and expires after ``TOKEN_TTL``: the call endpoint takes none other, so the
endpoint cannot be scripted from elsewhere without loading a page (or
asking for a token, which is itself limited). A watch token binds one call
id, for its event stream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import orjson

from .calling_windows import CallingWindow, check_zone, next_opening, parse_window
from .errors import ValidationError

TOKEN_TTL = 600
WATCH_TTL = 3600
MAX_ORIGINS = 20
MAX_TEXT = 200
DEFAULT_NETWORK_PER_HOUR = 30
MAX_NETWORK_PER_HOUR = 10_000
DEFAULT_POW_BITS = 16
POW_BITS = (8, 24)
MIN_SECRET = 32

# What a visitor reads, by language; ``{name}`` is the resource's name,
# ``{opens}`` the next opening (local time, the site's zone).
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "label": "Your phone number",
        "button": "Call me",
        "calling": "Calling you\u2026",
        "connecting": "Connecting you to {name}\u2026",
        "connected": "Connected",
        "ended": "Call ended. Thank you!",
        "busy": "Line busy \u2014 try again in a minute",
        "no_answer": "No answer \u2014 try again in a minute",
        "unreachable": "{name} could not take your call \u2014 try again later",
        "failed": "The call could not be made \u2014 try again later",
        "closed": "We are closed; we open at {opens}",
        "rate_limited": "Too many calls for now \u2014 try again later",
        "error": "Something went wrong \u2014 try again later",
        "working": "One moment\u2026",
    },
    "es": {
        "label": "Su n\u00famero de tel\u00e9fono",
        "button": "Ll\u00e1menme",
        "calling": "Le estamos llamando\u2026",
        "connecting": "Le estamos conectando con {name}\u2026",
        "connected": "Conectado",
        "ended": "Llamada terminada. \u00a1Gracias!",
        "busy": "L\u00ednea ocupada \u2014 int\u00e9ntelo de nuevo en un minuto",
        "no_answer": "Sin respuesta \u2014 int\u00e9ntelo de nuevo en un minuto",
        "unreachable": "{name} no pudo atender su llamada \u2014 int\u00e9ntelo m\u00e1s tarde",
        "failed": "No se pudo hacer la llamada \u2014 int\u00e9ntelo m\u00e1s tarde",
        "closed": "Estamos cerrados; abrimos a las {opens}",
        "rate_limited": "Demasiadas llamadas por ahora \u2014 int\u00e9ntelo m\u00e1s tarde",
        "error": "Algo sali\u00f3 mal \u2014 int\u00e9ntelo m\u00e1s tarde",
        "working": "Un momento\u2026",
    },
}
LANGUAGES = tuple(TEXTS)
CHALLENGES = ("off", "pow")
# The checks that refuse a widget call, in the order they run (http/widget.py).
REFUSALS = ("origin_not_allowed", "token_invalid", "challenge_failed", "closed", "invalid", "do_not_call",
            "destination_limited", "rate_limited")
FIELDS = ("origins", "region", "language", "texts", "hours", "per_network_per_hour", "challenge", "pow_bits")
_REGION = re.compile(r"[A-Z]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f<>]")


@dataclass(frozen=True)
class Hours:
    """Business hours in the site's time zone."""

    window: CallingWindow
    zone: str

    def next_opening(self, now: datetime) -> datetime | None:
        """None when open at ``now``; else when it opens (UTC), or
        ``datetime.max`` when it does not within the horizon."""
        return next_opening(self.window, (self.zone,), now)


@dataclass(frozen=True)
class WidgetSettings:
    origins: tuple[str, ...]
    region: str = ""
    language: str = "en"
    texts: Mapping[str, str] = field(default_factory=dict)
    hours: Hours | None = None
    per_network_per_hour: int = DEFAULT_NETWORK_PER_HOUR
    challenge: str = "off"
    pow_bits: int = DEFAULT_POW_BITS

    def text(self) -> dict[str, str]:
        """Every text in the widget's language, with the overrides."""
        return {**TEXTS[self.language], **self.texts}

    def allows(self, origin: str | None) -> bool:
        return origin is not None and normalize_origin(origin) in self.origins


def normalize_origin(value: str) -> str:
    """``scheme://host[:port]`` in lower case, without a default port; ''
    for anything that is no http(s) origin."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = "[%s]" % host
    return "%s://%s%s" % (parts.scheme, host, "" if port in (None, default) else ":%d" % port)


def parse_widget(spec: object, field_name: str = "widget") -> dict[str, Any]:
    """The ``widget`` object of a resource, normalised (``ValidationError``
    naming the field)."""
    if not isinstance(spec, Mapping):
        raise ValidationError(field_name, "an object with origins, and optionally %s" % ", ".join(FIELDS[1:]))
    unknown = sorted(set(spec) - set(FIELDS))
    if unknown:
        raise ValidationError("%s.%s" % (field_name, unknown[0]), "unknown field")
    origins = spec.get("origins")
    if not isinstance(origins, list) or not 0 < len(origins) <= MAX_ORIGINS:
        raise ValidationError(field_name + ".origins", "a list of 1 to %d page origins, e.g. https://www.example.com"
                              % MAX_ORIGINS)
    out: dict[str, Any] = {"origins": []}
    for i, origin in enumerate(origins):
        normal = normalize_origin(origin) if isinstance(origin, str) else ""
        if not normal:
            raise ValidationError("%s.origins.%d" % (field_name, i), "an origin: scheme://host[:port], nothing after it")
        out["origins"].append(normal)
    region = spec.get("region")
    if region is not None:
        if not isinstance(region, str) or not _REGION.fullmatch(region.upper()):
            raise ValidationError(field_name + ".region", "a two-letter country code, e.g. US or GB")
        out["region"] = region.upper()
    language = spec.get("language", "en")
    if language not in LANGUAGES:
        raise ValidationError(field_name + ".language", "one of %s" % ", ".join(LANGUAGES))
    out["language"] = language
    texts = spec.get("texts")
    if texts is not None:
        if not isinstance(texts, Mapping):
            raise ValidationError(field_name + ".texts", "an object of text name: text")
        for name, text in texts.items():
            if name not in TEXTS["en"]:
                raise ValidationError("%s.texts.%s" % (field_name, name), "unknown text (%s)" % ", ".join(TEXTS["en"]))
            if not isinstance(text, str) or not 0 < len(text) <= MAX_TEXT or _CONTROL.search(text):
                raise ValidationError("%s.texts.%s" % (field_name, name),
                                      "1 to %d characters, no control characters, < or >" % MAX_TEXT)
        out["texts"] = dict(texts)
    hours = spec.get("hours")
    if hours is not None:
        if not isinstance(hours, Mapping) or "timezone" not in hours:
            raise ValidationError(field_name + ".hours", "an object with timezone, days, hours and holidays")
        zone = hours["timezone"]
        if not isinstance(zone, str):
            raise ValidationError(field_name + ".hours.timezone", "an IANA time zone, e.g. Europe/London")
        check_zone(field_name + ".hours.timezone", zone)
        window = parse_window({k: v for k, v in hours.items() if k != "timezone"}, field_name + ".hours")
        out["hours"] = {"timezone": zone, **window.to_json()}
    per_network = spec.get("per_network_per_hour", DEFAULT_NETWORK_PER_HOUR)
    if isinstance(per_network, bool) or not isinstance(per_network, int) or not 1 <= per_network <= MAX_NETWORK_PER_HOUR:
        raise ValidationError(field_name + ".per_network_per_hour", "a whole number from 1 to %d" % MAX_NETWORK_PER_HOUR)
    out["per_network_per_hour"] = per_network
    challenge = spec.get("challenge", "off")
    if challenge not in CHALLENGES:
        raise ValidationError(field_name + ".challenge", "off, or pow (a proof of work for every call)")
    out["challenge"] = challenge
    bits = spec.get("pow_bits", DEFAULT_POW_BITS)
    if isinstance(bits, bool) or not isinstance(bits, int) or not POW_BITS[0] <= bits <= POW_BITS[1]:
        raise ValidationError(field_name + ".pow_bits", "a whole number from %d to %d" % POW_BITS)
    out["pow_bits"] = bits
    return out


def settings_of(resource: Mapping[str, Any]) -> WidgetSettings | None:
    """The widget of a stored (normalised) resource, or None."""
    spec = resource.get("widget")
    if not spec:
        return None
    hours = None
    if spec.get("hours"):
        raw = dict(spec["hours"])
        zone = raw.pop("timezone")
        hours = Hours(parse_window(raw), zone)
    return WidgetSettings(origins=tuple(spec["origins"]), region=spec.get("region", ""),
                          language=spec.get("language", "en"), texts=dict(spec.get("texts") or {}), hours=hours,
                          per_network_per_hour=int(spec.get("per_network_per_hour", DEFAULT_NETWORK_PER_HOUR)),
                          challenge=spec.get("challenge", "off"), pow_bits=int(spec.get("pow_bits", DEFAULT_POW_BITS)))


def opens_text(opening: datetime, zone: str) -> str:
    """The next opening as a visitor reads it: ``09:00``, or ``Mon 09:00``
    when it is not today in the site's zone."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    local = opening.astimezone(tz)
    today = datetime.now(timezone.utc).astimezone(tz).date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%a %H:%M")


def network_of(address: str) -> str:
    """The network an address is counted in: IPv4 /24, IPv6 /48."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network("%s/%d" % (ip, prefix), strict=False))


# ---------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, kind: str, claims: Mapping[str, Any]) -> str:
    body = _b64(orjson.dumps({"k": kind, **claims}, option=orjson.OPT_SORT_KEYS))
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return "%s.%s" % (body, _b64(mac))


def _open(secret: str, kind: str, token: object, now: float) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > 2048 or token.count(".") != 1:
        raise ValidationError("token", "missing or malformed: reload the page")
    body, mac = token.split(".")
    expected = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(mac)
        claims = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        raise ValidationError("token", "missing or malformed: reload the page") from None
    if not hmac.compare_digest(expected, given) or not isinstance(claims, dict) or claims.get("k") != kind:
        raise ValidationError("token", "not valid: reload the page")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
        raise ValidationError("token", "expired: reload the page")
    return claims


def make_token(secret: str, account: str, resource: str, origin: str, now: float, ttl: int = TOKEN_TTL) -> str:
    """A widget token for one resource and page origin."""
    return _sign(secret, "w", {"a": account, "r": resource, "o": origin, "exp": int(now) + ttl})


def check_token(secret: str, token: object, account: str, resource: str, origin: str, now: float) -> None:
    """``ValidationError`` (field ``token``) unless ``token`` is a live widget
    token of this resource for this origin."""
    claims = _open(secret, "w", token, now)
    if (claims.get("a"), claims.get("r")) != (account, resource):
        raise ValidationError("token", "not for this click-to-call: reload the page")
    if claims.get("o") != origin:
        raise ValidationError("token", "not for this page: reload the page")


def make_watch(secret: str, job_id: str, origin: str, now: float, ttl: int = WATCH_TTL) -> str:
    """A watch token: may read one call's events, from one origin."""
    return _sign(secret, "v", {"j": job_id, "o": origin, "exp": int(now) + ttl})


def check_watch(secret: str, token: object, job_id: str, now: float) -> str:
    """The origin a live watch token of ``job_id`` was given to."""
    claims = _open(secret, "v", token, now)
    if claims.get("j") != job_id:
        raise ValidationError("watch", "not for this call")
    return str(claims.get("o", ""))


# ---------------------------------------------------------------- proof of work


def pow_ok(token: str, nonce: object, bits: int) -> bool:
    """Whether SHA-256 of ``<token>:<nonce>`` starts with ``bits`` zero
    bits (the widget finds such a nonce; about 2**bits hashes)."""
    if not isinstance(nonce, str) or not 0 < len(nonce) <= 32 or not nonce.isascii() or not nonce.isalnum():
        return False
    digest = hashlib.sha256(("%s:%s" % (token, nonce)).encode()).digest()
    return int.from_bytes(digest, "big") >> (256 - bits) == 0


def solve_pow(token: str, bits: int) -> str:
    """A nonce that ``pow_ok`` accepts (what the widget's script does)."""
    n = 0
    while not pow_ok(token, format(n, "x"), bits):
        n += 1
    return format(n, "x")

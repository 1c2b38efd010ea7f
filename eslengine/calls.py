"""The click-to-call request: every option, its default and bound, JSON in
and out. (The status state machine is ``status.py``.)

Pure: no I/O, no gevent, no Redis. Every refusal is a ``ValidationError``
naming the field (``"b.timeout"``, ``"warnings.1.after"``), so the API can
answer 422 and the worker can dead-letter a malformed job with the same words.

A request names two parties, ``a`` and ``b``. The one named by
``dial_first`` (``a`` unless the caller says otherwise) is rung first; when it
answers, the other is rung and the two are bridged. Each party is one
destination or several (rung one after another, or all at once with the first
to answer winning), with its own ring timeout, retries, caller ID and SIP
options.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import urls
from .config import Config, known_region
from .destinations import (
    MAX_FILTER_PATTERN,
    Destination,
    NumberFilter,
    apply_number_filter,
    check_filter_pattern,
    check_number_allowed,
    check_user_domain,
    parse_destination,
)
from .errors import ValidationError
from .escaping import check_display_name, check_value

# The status machine lives in status.py; its names stay importable from here.
from .status import FINAL, STATUSES, CallState, can_move  # noqa: F401

# Status order. A call only moves forward; the last three are final.

PARTY_NAMES = ("a", "b")
__all__ = ["MAX_FILTER_PATTERN", "Destination", "CallRequest", "CallState", "Party", "parse_request"]
KNOWN_FIELDS = frozenset({
    "id", "a", "b", "dial_first", "caller_id_number", "caller_id_name", "timeout", "variables",
    "number_filter", "region", "ringback", "music_on_hold", "announcement", "max_duration", "warnings", "record", "media",
    "node", "target_call_id", "callback_url", "callback_format", "retry", "metadata", "lane",
})
# Where a job waits (store/jobs.py): "interactive" jobs are always served
# before "bulk" ones (campaigns, bulk imports).
LANES = ("interactive", "bulk")
PARTY_FIELDS = frozenset({
    "to", "mode", "timeout", "retries", "ignore_early_media", "auto_answer", "caller_id_number",
    "caller_id_name", "anonymous", "show_other_number", "presence_id", "sip_headers",
})
MODES = ("sequential", "simultaneous")
MEDIA = ("process", "bypass", "proxy")
RINGBACK_TONES = ("ring", "us-ring", "uk-ring", "moh")
RECORD_FORMATS = ("wav", "mp3")

_CID_NUMBER = re.compile(r"\+?[0-9]{1,20}")
_VAR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_SIP_HEADER = re.compile(r"X-[A-Za-z0-9-]{1,40}")
_PRESENCE = re.compile(r"[A-Za-z0-9_.+-]{1,64}@[A-Za-z0-9.-]{1,253}")
_SOUND_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,200}\.(?:wav|mp3|ogg|flac|gsm|ul|al|sln|r8|r16)")
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9_.~%/=&?+-]*)?")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z]{2,4})?")
_VOICE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_NODE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
MAX_NAME = 64
MAX_VALUE = 256
MAX_SAY = 500
MAX_WARNINGS = 5
MAX_SIP_HEADERS = 10
# The encoded size and the nesting depth of a request's metadata.
MAX_METADATA = 2048
MAX_METADATA_DEPTH = 8
MIN_RING_TIMEOUT = 5
MIN_DURATION = 10


@dataclass(frozen=True, slots=True)
class Party:
    """One side of the call and how to ring it."""

    destinations: tuple[Destination, ...]
    mode: str = "sequential"
    timeout: int = 30
    retries: int = 0
    ignore_early_media: bool = True
    auto_answer: bool = False
    caller_id_number: str | None = None
    caller_id_name: str | None = None
    anonymous: bool = False
    show_other_number: bool = False
    presence_id: str | None = None
    sip_headers: tuple[tuple[str, str], ...] = ()

    @property
    def first(self) -> Destination:
        return self.destinations[0]

    def to_json(self, defaults: Party) -> str | list[str] | dict[str, Any]:
        to: str | list[str] = [str(d) for d in self.destinations] if len(self.destinations) > 1 else str(self.first)
        out: dict[str, Any] = {"to": to}
        for name in ("mode", "timeout", "retries", "ignore_early_media", "auto_answer", "caller_id_number",
                     "caller_id_name", "anonymous", "show_other_number", "presence_id"):
            value = getattr(self, name)
            if value != getattr(defaults, name):
                out[name] = value
        if self.sip_headers:
            out["sip_headers"] = dict(self.sip_headers)
        return out if len(out) > 1 else to


@dataclass(frozen=True, slots=True)
class Media:
    """Something the switch plays: a file under its sound directory, an
    allowed URL, or text to speech."""

    kind: str  # "file" | "url" | "say" | "tone"
    value: str
    language: str = ""
    voice: str = ""

    def to_json(self) -> str | dict[str, str]:
        if self.kind == "tone":
            return self.value
        out = {self.kind: self.value}
        if self.language:
            out["language"] = self.language
        if self.voice:
            out["voice"] = self.voice
        return out


@dataclass(frozen=True, slots=True)
class Warning:
    """A sound played to both parties ``at`` seconds after they are connected."""

    at: int
    sound: Media
    spec: tuple[str, int] = ("after", 0)  # as the client wrote it

    def to_json(self) -> dict[str, Any]:
        return {self.spec[0]: self.spec[1], "sound": self.sound.to_json()}


# Why a call failed, grouped for the retry policy. A cause in none of the
# groups (an invalid number, a refused or barred call, a configuration
# error) is never retried.
RETRY_GROUPS = {
    "busy": frozenset({"USER_BUSY"}),
    "no_answer": frozenset({"NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "SUBSCRIBER_ABSENT"}),
    "temporary": frozenset({"NORMAL_TEMPORARY_FAILURE", "DESTINATION_OUT_OF_ORDER", "NETWORK_OUT_OF_ORDER",
                            "RECOVERY_ON_TIMER_EXPIRE", "SWITCH_CONGESTION", "NORMAL_CIRCUIT_CONGESTION",
                            "GATEWAY_DOWN", "MEDIA_TIMEOUT"}),
}
MAX_BACKOFF = 3600
MIN_BACKOFF = 1
# The longest wait a retry's ``delays`` may name (a day).
MAX_RETRY_DELAY = 86400
# How a webhook delivery's body is written: the engine's own document, or
# Infobip's delivery report as JSON or XML (``infobip.report``).
CALLBACK_FORMATS = ("eslengine", "infobip+json", "infobip+xml")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times a failed call is placed again, after how long."""

    attempts: int = 1
    backoff: int = 60  # seconds before the second attempt; doubles each time
    on: frozenset[str] = frozenset(RETRY_GROUPS)
    # Seconds before each retry, in order (the last repeats); replaces the
    # doubling ``backoff`` when given.
    delays: tuple[int, ...] = ()

    def retries(self, cause: str, attempt: int) -> bool:
        """Whether attempt number ``attempt`` that failed with ``cause``
        gets another."""
        return attempt < self.attempts and any(cause in RETRY_GROUPS[g] for g in self.on)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        if self.delays:
            return float(self.delays[min(attempt, len(self.delays)) - 1])
        return float(min(MAX_BACKOFF, self.backoff * 2 ** (attempt - 1)))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attempts": self.attempts, "on": sorted(self.on)}
        if self.delays:
            out["delays"] = list(self.delays)
        else:
            out["backoff"] = self.backoff
        return out


@dataclass(frozen=True, slots=True)
class Recording:
    format: str = "wav"
    stereo: bool = False


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A validated click-to-call job."""

    id: str
    a: Party
    b: Party
    dial_first: str = "a"
    caller_id_number: str | None = None
    caller_id_name: str | None = None
    timeout: int = 30
    variables: Mapping[str, str] = field(default_factory=dict)
    ringback: Media | None = None
    # What a party hears while the other holds it (FreeSWITCH's hold_music).
    music_on_hold: Media | None = None
    announcement: Media | None = None
    max_duration: int | None = None
    warnings: tuple[Warning, ...] = ()
    record: Recording | None = None
    media: str = "process"
    node: str | None = None
    target_call_id: str | None = None
    callback_url: str | None = None
    callback_format: str = "eslengine"
    retry: RetryPolicy = RetryPolicy()
    # The client's own JSON object, kept with the call (record, status,
    # webhooks) and never sent to the switch.
    metadata: Mapping[str, Any] = field(default_factory=dict)
    lane: str = "interactive"

    def party(self, name: str) -> Party:
        return self.a if name == "a" else self.b

    @property
    def second(self) -> str:
        return "b" if self.dial_first == "a" else "a"

    def to_json(self) -> dict[str, Any]:
        """A document ``parse_request`` turns back into an equal request."""
        defaults = Party((), timeout=self.timeout)
        data: dict[str, Any] = {"id": self.id, "a": self.a.to_json(defaults), "b": self.b.to_json(defaults),
                                "timeout": self.timeout}
        if self.dial_first != "a":
            data["dial_first"] = self.dial_first
        for name in ("caller_id_number", "caller_id_name", "max_duration", "node", "target_call_id", "callback_url"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.variables:
            data["variables"] = dict(self.variables)
        if self.ringback is not None:
            data["ringback"] = self.ringback.to_json()
        if self.music_on_hold is not None:
            data["music_on_hold"] = self.music_on_hold.to_json()
        if self.announcement is not None:
            data["announcement"] = self.announcement.to_json()
        if self.warnings:
            data["warnings"] = [w.to_json() for w in self.warnings]
        if self.record is not None:
            data["record"] = {"format": self.record.format, "stereo": self.record.stereo}
        if self.media != "process":
            data["media"] = self.media
        if self.callback_format != "eslengine":
            data["callback_format"] = self.callback_format
        data["retry"] = self.retry.to_json()
        if self.metadata:
            data["metadata"] = dict(self.metadata)
        if self.lane != "interactive":
            data["lane"] = self.lane
        return data

    def dumps(self) -> str:
        return orjson.dumps(self.to_json()).decode("utf-8")


def new_id() -> str:
    return str(uuid.uuid4())


def parse_id(value: object, field_name: str = "id") -> str:
    """A UUID, returned in canonical form."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(field_name, "must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(field_name, "must be a UUID (e.g. 0b6c3f2e-...)") from None


# ---------------------------------------------------------------- fields


def _bool(name: str, value: object, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(name, "must be true or false")
    return value


def _int(name: str, value: object, low: int, high: int, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, "must be a whole number")
    if not low <= value <= high:
        raise ValidationError(name, "must be between %d and %d" % (low, high))
    return value


def _choice(name: str, value: object, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(name, "must be one of %s" % ", ".join(choices))
    return value


def _text(name: str, value: object, limit: int, pattern: re.Pattern[str] | None = None,
          what: str = "", check: Callable[[str, str], None] = check_value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if not value or len(value) > limit:
        raise ValidationError(name, "must be 1 to %d characters" % limit)
    if pattern is not None and not pattern.fullmatch(value):
        raise ValidationError(name, what or "has characters that are not allowed")
    check(name, value)
    return value


def _object(name: str, value: object, known: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(name, "must be an object")
    for key in value:
        if key not in known:
            raise ValidationError("%s.%s" % (name, key) if isinstance(key, str) and 0 < len(key) < 40 else name,
                                  "unknown field")
    return value


def _media(name: str, value: object, config: Config, *, tones: tuple[str, ...] = ()) -> Media | None:
    """A playable thing: a tone name, ``{"file": ...}``, ``{"url": ...}`` or
    ``{"say": ..., "language": ..., "voice": ...}``."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in tones:
            return Media("tone", value)
        raise ValidationError(name, "must be one of %s, or an object with file, url or say" % ", ".join(tones)
                              if tones else "must be an object with file, url or say")
    spec = _object(name, value, frozenset({"file", "url", "say", "language", "voice"}))
    kinds = [k for k in ("file", "url", "say") if k in spec]
    if len(kinds) != 1:
        raise ValidationError(name, "give exactly one of file, url or say")
    kind = kinds[0]
    if kind != "say" and ("language" in spec or "voice" in spec):
        raise ValidationError(name, "language and voice go with say")
    field_name = "%s.%s" % (name, kind)
    if kind == "file":
        text = _text(field_name, spec["file"], 200, _SOUND_FILE,
                     "a relative sound file path (letters, digits, _./-) ending in an audio extension")
        assert text is not None
        if ".." in text:
            raise ValidationError(field_name, "may not contain '..'")
        return Media("file", text)
    if kind == "url":
        text = _text(field_name, spec["url"], 500, _URL, "must be an http(s) URL")
        assert text is not None
        if not urls.media_url_allowed(text, config.media_url_prefixes):
            raise ValidationError(field_name, "audio URLs from this location are not allowed "
                                              "(setting: ESLENGINE_MEDIA_URL_PREFIXES)")
        return Media("url", text)
    if not config.tts_engine:
        raise ValidationError(field_name, "text to speech is not available on this service (setting: ESLENGINE_TTS_ENGINE)")
    text = _text(field_name, spec["say"], MAX_SAY)
    language = _text("%s.language" % name, spec.get("language"), 10, _LANGUAGE, "a language tag like en or en-US")
    voice = _text("%s.voice" % name, spec.get("voice"), 40, _VOICE, "letters, digits and _.- only")
    assert text is not None
    return Media("say", text, language or "", voice or "")


def parse_media(name: str, value: object, config: Config, *, tones: tuple[str, ...] = ()) -> Media | None:
    """A playable thing as the request's media fields take it (a tone of
    ``tones``, ``{"file"}``, ``{"url"}`` or ``{"say"}``); None for None."""
    return _media(name, value, config, tones=tones)


def _region(value: object) -> str:
    """The request's "region": where its numbers written without a country
    code are (ISO 3166, e.g. "US"); '' for none."""
    if value is None:
        return ""
    if not isinstance(value, str) or not known_region(value.upper()):
        raise ValidationError("region", "must be a region code libphonenumber knows (ISO 3166, such as US, GB, DE)")
    return value.upper()


def _party(name: str, value: object, top: Mapping[str, Any], config: Config,
           number_filter: str | NumberFilter | None, check_policy: bool = True, region: str = "") -> Party:
    spec: Mapping[str, Any]
    if isinstance(value, Mapping):
        spec = _object(name, value, PARTY_FIELDS)
        to = spec.get("to")
        to_field = "%s.to" % name
    else:
        spec, to, to_field = {}, value, name
    raw = to if isinstance(to, list) else [to]
    if not raw:
        raise ValidationError(to_field, "needs at least one destination")
    if len(raw) > config.max_destinations:
        raise ValidationError(to_field, "at most %d destinations" % config.max_destinations)
    destinations = []
    for i, item in enumerate(raw):
        item_field = "%s.%d" % (to_field, i) if isinstance(to, list) else to_field
        if isinstance(item, str):
            item = apply_number_filter(item_field, item, number_filter, region)
        destinations.append(parse_destination(item_field, item, config, check_policy=check_policy, region=region))
    default_timeout = _int("timeout", top.get("timeout"), MIN_RING_TIMEOUT, config.max_ring_timeout,
                           config.default_ring_timeout)
    if not spec:
        # The short form ("a": "+15551230001", or a list): every option of
        # the party is its default.
        return Party(destinations=tuple(destinations), timeout=default_timeout or config.default_ring_timeout)
    timeout = _int("%s.timeout" % name, spec.get("timeout"), MIN_RING_TIMEOUT, config.max_ring_timeout,
                   default_timeout)
    anonymous = _bool("%s.anonymous" % name, spec.get("anonymous"), False)
    cid_number = _text("%s.caller_id_number" % name, spec.get("caller_id_number"), 21, _CID_NUMBER,
                       "must be digits, optionally with a leading +")
    cid_name = _text("%s.caller_id_name" % name, spec.get("caller_id_name"), MAX_NAME,
                     check=check_display_name)
    show_other = _bool("%s.show_other_number" % name, spec.get("show_other_number"), False)
    if anonymous and (cid_number or cid_name or show_other):
        raise ValidationError("%s.anonymous" % name, "cannot be combined with a caller ID for the same party")
    if show_other and cid_number:
        raise ValidationError("%s.show_other_number" % name, "cannot be combined with caller_id_number")
    headers_raw = spec.get("sip_headers")
    headers: list[tuple[str, str]] = []
    if headers_raw is not None:
        if not isinstance(headers_raw, Mapping):
            raise ValidationError("%s.sip_headers" % name, "must be an object of X-Name: value")
        if len(headers_raw) > MAX_SIP_HEADERS:
            raise ValidationError("%s.sip_headers" % name, "at most %d headers" % MAX_SIP_HEADERS)
        for key, header_value in headers_raw.items():
            key_field = "%s.sip_headers.%s" % (name, key) if isinstance(key, str) and len(key) <= 45 else (
                "%s.sip_headers" % name)
            if not isinstance(key, str) or not _SIP_HEADER.fullmatch(key):
                raise ValidationError(key_field, "only X- headers (X- then letters, digits, -)")
            text = _text(key_field, header_value, MAX_VALUE)
            assert text is not None
            if text != text.strip(" "):
                # SIP reads a header's value without the blanks around it.
                raise ValidationError(key_field, "may not start or end with a space")
            headers.append((key, text))
    return Party(
        destinations=tuple(destinations),
        mode=_choice("%s.mode" % name, spec.get("mode"), MODES, "sequential"),
        timeout=timeout or config.default_ring_timeout,
        retries=_int("%s.retries" % name, spec.get("retries"), 0, config.max_retries, 0) or 0,
        ignore_early_media=_bool("%s.ignore_early_media" % name, spec.get("ignore_early_media"), True),
        auto_answer=_bool("%s.auto_answer" % name, spec.get("auto_answer"), False),
        caller_id_number=cid_number,
        caller_id_name=cid_name,
        anonymous=anonymous,
        show_other_number=show_other,
        presence_id=_text("%s.presence_id" % name, spec.get("presence_id"), 200, _PRESENCE, "must be user@domain"),
        sip_headers=tuple(headers),
    )


def _variables(value: object, config: Config) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("variables", "must be an object of name: value")
    if len(value) > config.max_variables:
        raise ValidationError("variables", "at most %d variables" % config.max_variables)
    out: dict[str, str] = {}
    for key, raw in value.items():
        name = "variables.%s" % key if isinstance(key, str) and len(key) <= 40 else "variables"
        if not isinstance(key, str) or not _VAR_NAME.fullmatch(key):
            raise ValidationError(name, "names are a letter then letters, digits or _ (at most 32)")
        if isinstance(raw, bool):
            text = "true" if raw else "false"
        elif isinstance(raw, (int, float)) and raw == raw and raw not in (float("inf"), float("-inf")):
            text = str(raw)
        elif isinstance(raw, str):
            text = raw
        else:
            raise ValidationError(name, "values are strings, numbers or booleans")
        if len(text) > MAX_VALUE:
            raise ValidationError(name, "at most %d characters" % MAX_VALUE)
        check_value(name, text)
        out[key] = text
    return out


def _warnings(value: object, max_duration: int | None, config: Config) -> tuple[Warning, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValidationError("warnings", "must be a list")
    if len(value) > MAX_WARNINGS:
        raise ValidationError("warnings", "at most %d warnings" % MAX_WARNINGS)
    out = []
    limit = max_duration or config.max_call_duration
    for i, item in enumerate(value):
        name = "warnings.%d" % i
        spec = _object(name, item, frozenset({"before_end", "after", "sound"}))
        if ("before_end" in spec) == ("after" in spec):
            raise ValidationError(name, "give exactly one of before_end or after (seconds)")
        if "before_end" in spec:
            if max_duration is None:
                raise ValidationError("%s.before_end" % name, "needs max_duration")
            before = _int("%s.before_end" % name, spec["before_end"], 1, max_duration - 1, None)
            assert before is not None
            at, how = max_duration - before, ("before_end", before)
        else:
            after = _int("%s.after" % name, spec["after"], 1, limit - 1, None)
            assert after is not None
            at, how = after, ("after", after)
        sound = _media("%s.sound" % name, spec.get("sound", "beep"), config, tones=("beep",))
        assert sound is not None
        if sound.kind == "say":
            raise ValidationError("%s.sound" % name, "a warning plays a tone, a file or a URL")
        out.append(Warning(at, sound, how))
    return tuple(out)


def _retry(value: object, config: Config) -> RetryPolicy:
    default = RetryPolicy(config.default_attempts, config.default_retry_backoff)
    if value is None:
        return default
    spec = _object("retry", value, frozenset({"attempts", "backoff", "on", "delays"}))
    on = default.on
    if spec.get("on") is not None:
        raw = spec["on"]
        if not isinstance(raw, list) or not raw or any(not isinstance(g, str) or g not in RETRY_GROUPS for g in raw):
            raise ValidationError("retry.on", "a list of %s" % ", ".join(sorted(RETRY_GROUPS)))
        on = frozenset(raw)
    delays: tuple[int, ...] = ()
    if spec.get("delays") is not None:
        raw_delays = spec["delays"]
        if spec.get("backoff") is not None:
            raise ValidationError("retry.delays", "give backoff or delays, not both")
        if not isinstance(raw_delays, list) or not 0 < len(raw_delays) < config.max_attempts:
            raise ValidationError("retry.delays", "a list of 1 to %d waits in seconds, one per retry"
                                  % max(1, config.max_attempts - 1))
        delays = tuple(_int("retry.delays.%d" % i, d, MIN_BACKOFF, MAX_RETRY_DELAY, None) or MIN_BACKOFF
                       for i, d in enumerate(raw_delays))
    return RetryPolicy(
        attempts=_int("retry.attempts", spec.get("attempts"), 1, config.max_attempts, default.attempts) or 1,
        backoff=_int("retry.backoff", spec.get("backoff"), MIN_BACKOFF, MAX_BACKOFF, default.backoff) or 1,
        on=on,
        delays=delays,
    )


def _depth(value: object) -> int:
    """How deeply ``value`` nests objects and arrays (a scalar: 0), counted
    up to one past ``MAX_METADATA_DEPTH``."""
    depth, level = 0, [value]
    while depth <= MAX_METADATA_DEPTH:
        containers = [v for v in level if isinstance(v, (Mapping, list))]
        if not containers:
            break
        depth += 1
        level = [child for c in containers for child in (c.values() if isinstance(c, Mapping) else c)]
    return depth


def _metadata(value: object) -> dict[str, Any]:
    """The client's own JSON object carried with the call: at most
    ``MAX_METADATA`` bytes encoded, nested at most ``MAX_METADATA_DEPTH``
    deep. Nothing in it reaches the switch, so no character is refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValidationError("metadata", "must be a JSON object")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise ValidationError("metadata", "nests objects and arrays at most %d deep" % MAX_METADATA_DEPTH)
    try:
        encoded = orjson.dumps(value)
    except TypeError:
        raise ValidationError("metadata", "must hold JSON values only") from None
    if len(encoded) > MAX_METADATA:
        raise ValidationError("metadata", "at most %d bytes as JSON" % MAX_METADATA)
    return dict(value)


def _record(value: object) -> Recording | None:
    if value is None or value is False:
        return None
    if value is True:
        return Recording()
    spec = _object("record", value, frozenset({"format", "stereo"}))
    return Recording(_choice("record.format", spec.get("format"), RECORD_FORMATS, "wav"),
                     _bool("record.stereo", spec.get("stereo"), False))


def parse_request(data: object, config: Config, *, job_id: str | None = None,
                  check_policy: bool = True) -> CallRequest:
    """Validate a request document (the body of ``POST /v1/calls``, or a job
    pushed onto the queue) into a ``CallRequest``.

    The id comes from ``job_id`` if given, else the document's ``id``, else a
    new UUID. Unknown fields are refused, so a misspelt option is never
    silently ignored. ``check_policy=False`` skips the toll-fraud policy
    (the worker, which applies ``check_policy`` itself to what it is about
    to dial, and follows a call already placed whatever the policy says).
    """
    if not isinstance(data, Mapping):
        raise ValidationError("body", "must be a JSON object")
    unknown = [] if KNOWN_FIELDS.issuperset(data) else sorted(str(k) for k in data if k not in KNOWN_FIELDS)
    if unknown:
        if not unknown[0]:
            raise ValidationError("body", "a field with an empty name")
        raise ValidationError(unknown[0][:40], "unknown field")
    if job_id is None:
        job_id = parse_id(data["id"]) if data.get("id") is not None else new_id()

    number_filter: str | NumberFilter | None = None
    raw_filter = data.get("number_filter")
    if raw_filter is not None:
        if raw_filter == "digits":
            number_filter = "digits"
        elif isinstance(raw_filter, Mapping):
            spec = _object("number_filter", raw_filter, frozenset({"regex"}))
            if not isinstance(spec.get("regex"), str):
                raise ValidationError("number_filter.regex", "must be a string")
            number_filter = check_filter_pattern("number_filter.regex", spec["regex"])
        else:
            raise ValidationError("number_filter", 'must be "digits" or {"regex": "..."}')

    region = _region(data.get("region")) or config.default_region
    timeout = _int("timeout", data.get("timeout"), MIN_RING_TIMEOUT, config.max_ring_timeout,
                   config.default_ring_timeout)
    a = _party("a", data.get("a"), data, config, number_filter, check_policy, region)
    b = _party("b", data.get("b"), data, config, number_filter, check_policy, region)
    media = _choice("media", data.get("media"), MEDIA, "process")
    max_duration = _int("max_duration", data.get("max_duration"), MIN_DURATION, config.max_call_duration, None)
    ringback = _media("ringback", data.get("ringback"), config, tones=RINGBACK_TONES)
    if ringback is not None and ringback.kind == "say":
        raise ValidationError("ringback", "ringback plays a tone, music on hold, a file or a URL")
    music_on_hold = _media("music_on_hold", data.get("music_on_hold"), config, tones=("moh",))
    if music_on_hold is not None and music_on_hold.kind == "say":
        raise ValidationError("music_on_hold", "music on hold is moh (the switch's own), a file or a URL")
    announcement = _media("announcement", data.get("announcement"), config)
    warnings = _warnings(data.get("warnings"), max_duration, config)
    record = _record(data.get("record"))
    if media != "process":
        for name, used in (("record", record), ("announcement", announcement), ("warnings", warnings),
                           ("ringback", ringback), ("music_on_hold", music_on_hold)):
            if used:
                raise ValidationError(name, "needs media: process (the switch cannot touch bypassed media)")
    node = _text("node", data.get("node"), 100, _NODE, "must name a configured node")
    if node is not None and node not in {n.label for n in config.nodes} | {n.name for n in config.nodes if n.name}:
        raise ValidationError("node", "no such node")
    target = data.get("target_call_id")
    callback = _text("callback_url", data.get("callback_url"), 500, _URL, "must be an http(s) URL")
    if callback is not None:
        if not config.webhook_allow:
            raise ValidationError("callback_url", "webhooks are not enabled on this service (setting: ESLENGINE_WEBHOOK_ALLOW)")
        if not urls.webhook_url_allowed(callback, config.webhook_allow):
            raise ValidationError("callback_url", "this callback URL is not allowed (setting: ESLENGINE_WEBHOOK_ALLOW)")
        host = urlsplit(callback).hostname or ""
        if urls.ip_literal(host) and not urls.address_allowed(host, config.webhook_allow_networks):
            raise ValidationError("callback_url", "may not point to a private, loopback or reserved address "
                                                  "(setting: ESLENGINE_WEBHOOK_ALLOW_NETWORKS)")
    callback_format = _choice("callback_format", data.get("callback_format"), CALLBACK_FORMATS, "eslengine")
    if callback_format != "eslengine" and callback is None:
        raise ValidationError("callback_format", "needs callback_url")
    request = CallRequest(
        id=job_id,
        a=a,
        b=b,
        dial_first=_choice("dial_first", data.get("dial_first"), PARTY_NAMES, "a"),
        caller_id_number=_text("caller_id_number", data.get("caller_id_number"), 21, _CID_NUMBER,
                               "must be digits, optionally with a leading +"),
        caller_id_name=_text("caller_id_name", data.get("caller_id_name"), MAX_NAME,
                             check=check_display_name),
        timeout=timeout or config.default_ring_timeout,
        variables=_variables(data.get("variables"), config),
        ringback=ringback,
        music_on_hold=music_on_hold,
        announcement=announcement,
        max_duration=max_duration,
        warnings=warnings,
        record=record,
        media=media,
        node=node,
        target_call_id=parse_id(target, "target_call_id") if target is not None else None,
        callback_url=callback,
        callback_format=callback_format,
        retry=_retry(data.get("retry"), config),
        metadata=_metadata(data.get("metadata")),
        lane=_choice("lane", data.get("lane"), LANES, "interactive"),
    )
    return request


def loads_request(text: str | bytes, config: Config, *, job_id: str | None = None,
                  check_policy: bool = True) -> CallRequest:
    """``parse_request`` on a JSON text (a queue entry's ``job`` field)."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ValidationError("job", "is not valid JSON") from None
    return parse_request(data, config, job_id=job_id, check_policy=check_policy)


def check_policy(request: CallRequest, config: Config) -> None:
    """The toll-fraud policy on every E.164 destination of a request, and
    the directory domains its ``user/<ext>@domain`` destinations name."""
    for name in PARTY_NAMES:
        party = request.party(name)
        for i, dest in enumerate(party.destinations):
            if dest.kind == "e164":
                check_number_allowed(name if len(party.destinations) == 1 else "%s.to.%d" % (name, i),
                                     dest.number, config)
            elif dest.kind == "user" and dest.domain:
                check_user_domain(name if len(party.destinations) == 1 else "%s.to.%d" % (name, i),
                                  dest.domain, config)

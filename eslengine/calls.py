"""The click-to-call request: validation, JSON in and out, and the status
state machine that channel events drive.

Pure: no I/O, no gevent, no Redis. Every refusal is a ``ValidationError``
naming the field, so the API can answer 422 and the worker can dead-letter a
malformed job with the same words.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import dialstring
from .config import Config
from .errors import ValidationError

# Status order. A call only moves forward; the last three are final.
STATUSES = ("queued", "dialing", "ringing", "answered", "bridged", "completed", "failed", "cancelled")
FINAL = frozenset({"completed", "failed", "cancelled"})
_RANK = {s: i for i, s in enumerate(STATUSES)}

KNOWN_FIELDS = frozenset({"id", "a", "b", "caller_id_number", "caller_id_name", "timeout", "variables"})

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_USER = re.compile(r"user/([A-Za-z0-9_.-]{1,64})(?:@([A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*))?")
_CID_NUMBER = re.compile(r"\+?[0-9]{1,20}")
_VAR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
MAX_NAME = 64
MAX_VALUE = 256
MIN_RING_TIMEOUT = 5


@dataclass(frozen=True)
class Destination:
    """Who to ring: an E.164 number, or a FreeSWITCH directory user."""

    kind: str  # "e164" | "user"
    number: str  # "+15551230001" | "1000"
    domain: str = ""

    def __str__(self) -> str:
        if self.kind == "user":
            return "user/%s%s" % (self.number, "@" + self.domain if self.domain else "")
        return self.number


@dataclass(frozen=True)
class CallRequest:
    """A validated click-to-call job: ring ``a``; when it answers, connect ``b``."""

    id: str
    a: Destination
    b: Destination
    caller_id_number: str | None = None
    caller_id_name: str | None = None
    timeout: int = 30
    variables: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "a": str(self.a), "b": str(self.b), "timeout": self.timeout}
        if self.caller_id_number is not None:
            data["caller_id_number"] = self.caller_id_number
        if self.caller_id_name is not None:
            data["caller_id_name"] = self.caller_id_name
        if self.variables:
            data["variables"] = dict(self.variables)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)


def new_id() -> str:
    return str(uuid.uuid4())


def parse_id(value: object) -> str:
    """A job id as given by a producer: a UUID, returned in canonical form."""
    if not isinstance(value, str):
        raise ValidationError("id", "must be a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError("id", "must be a UUID (e.g. 0b6c3f2e-...)") from None


def parse_destination(name: str, value: object, config: Config) -> Destination:
    if not isinstance(value, str) or not value:
        raise ValidationError(name, "required: an E.164 number (+15551230001) or user/<extension>")
    if len(value) > 128:
        raise ValidationError(name, "too long")
    if _E164.fullmatch(value):
        check_number_allowed(name, value, config)
        return Destination("e164", value)
    match = _USER.fullmatch(value)
    if match:
        return Destination("user", match.group(1), match.group(2) or "")
    raise ValidationError(name, "must be an E.164 number (+15551230001) or user/<extension>")


def check_number_allowed(name: str, number: str, config: Config) -> None:
    """Toll-fraud guard: blocked prefixes first, then the allow-list."""
    for prefix in config.blocked_prefixes:
        if number.startswith(prefix):
            raise ValidationError(name, "destination %s... is blocked" % prefix)
    if config.allow_patterns and not any(re.fullmatch(p, number) for p in config.allow_patterns):
        raise ValidationError(name, "destination is not in the allowed ranges")


def _optional_text(name: str, value: object, pattern: re.Pattern[str] | None, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(name, "must be a string")
    if not value or len(value) > limit:
        raise ValidationError(name, "must be 1 to %d characters" % limit)
    if pattern is not None and not pattern.fullmatch(value):
        raise ValidationError(name, "must be digits, optionally with a leading +")
    dialstring.check_value(name, value)
    return value


def _timeout(value: object, config: Config) -> int:
    if value is None:
        return config.default_ring_timeout
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("timeout", "must be a whole number of seconds")
    if not MIN_RING_TIMEOUT <= value <= config.max_ring_timeout:
        raise ValidationError("timeout", "must be between %d and %d seconds" % (MIN_RING_TIMEOUT, config.max_ring_timeout))
    return value


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
        dialstring.check_value(name, text)
        out[key] = text
    return out


def parse_request(data: object, config: Config, *, job_id: str | None = None) -> CallRequest:
    """Validate a request document (the body of ``POST /v1/calls``, or a job
    pushed onto the queue) into a ``CallRequest``.

    The id comes from ``job_id`` if given, else the document's ``id``, else a
    new UUID. Unknown fields are refused, so a misspelt option is never
    silently ignored.
    """
    if not isinstance(data, Mapping):
        raise ValidationError("body", "must be a JSON object")
    unknown = sorted(str(k) for k in data if k not in KNOWN_FIELDS)
    if unknown:
        raise ValidationError(unknown[0], "unknown field")
    if job_id is None:
        job_id = parse_id(data["id"]) if data.get("id") is not None else new_id()
    return CallRequest(
        id=job_id,
        a=parse_destination("a", data.get("a"), config),
        b=parse_destination("b", data.get("b"), config),
        caller_id_number=_optional_text("caller_id_number", data.get("caller_id_number"), _CID_NUMBER, 21),
        caller_id_name=_optional_text("caller_id_name", data.get("caller_id_name"), None, MAX_NAME),
        timeout=_timeout(data.get("timeout"), config),
        variables=_variables(data.get("variables"), config),
    )


def loads_request(text: str | bytes, config: Config, *, job_id: str | None = None) -> CallRequest:
    """``parse_request`` on a JSON text (a queue entry's ``job`` field)."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("job", "is not valid JSON") from None
    return parse_request(data, config, job_id=job_id)


# ---------------------------------------------------------------- statuses


def can_move(current: str, new: str) -> bool:
    """Whether a call in status ``current`` may move to ``new``: forward
    only, never out of a final status."""
    if current in FINAL or new not in _RANK:
        return False
    if new in FINAL:
        return True
    return _RANK[new] > _RANK[current]


@dataclass
class CallState:
    """What the engine knows of one call, fed by its channels' events.

    ``on_event`` returns the fields to store when something changed
    (``status`` among them when the status moves), or ``{}``.
    """

    status: str = "dialing"
    a_uuid: str = ""
    b_uuid: str = ""
    a_cause: str = ""
    b_cause: str = ""
    answered: bool = False
    bridged: bool = False
    cancel_requested: bool = False

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def _move(self, new: str, fields: dict[str, str]) -> dict[str, str]:
        if can_move(self.status, new):
            self.status = new
            fields["status"] = new
        return fields

    def on_event(self, leg: str, name: str, uuid_: str, cause: str = "", bridge_cause: str = "") -> dict[str, str]:
        """Apply one channel event of the A or B leg (``leg`` is ``"a"`` or
        ``"b"``). ``bridge_cause`` is what the A leg's hangup reports about a
        failed bridge (``last_bridge_hangup_cause``)."""
        fields: dict[str, str] = {}
        if self.final:
            if leg == "b" and name == "CHANNEL_HANGUP_COMPLETE" and uuid_ == self.b_uuid and not self.b_cause:
                self.b_cause = fields["b_hangup_cause"] = cause
            return fields
        if leg == "a":
            if name == "CHANNEL_CREATE" and not self.a_uuid:
                self.a_uuid = fields["a_uuid"] = uuid_
            elif name in ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"):
                return self._move("ringing", fields)
            elif name == "CHANNEL_ANSWER":
                self.answered = True
                return self._move("answered", fields)
            elif name == "CHANNEL_BRIDGE":
                self.bridged = True
                return self._move("bridged", fields)
            elif name == "CHANNEL_HANGUP_COMPLETE" and uuid_ == self.a_uuid:
                self.a_cause = fields["a_hangup_cause"] = cause
                if bridge_cause and not self.b_cause and not self.bridged:
                    self.b_cause = bridge_cause
                return self._finish(fields)
        elif leg == "b":
            if name == "CHANNEL_CREATE" and not self.b_uuid:
                self.b_uuid = fields["b_uuid"] = uuid_
            elif name == "CHANNEL_BRIDGE":
                self.bridged = True
                return self._move("bridged", fields)
            elif name == "CHANNEL_HANGUP_COMPLETE" and uuid_ == self.b_uuid:
                self.b_cause = fields["b_hangup_cause"] = cause
        return fields

    def on_originate_failed(self, cause: str) -> dict[str, str]:
        """The BACKGROUND_JOB said ``-ERR <cause>``: the A leg never came up."""
        if self.final:
            return {}
        self.a_cause = self.a_cause or cause
        return self._finish({"a_hangup_cause": self.a_cause})

    def _finish(self, fields: dict[str, str]) -> dict[str, str]:
        status, cause = self.final_status()
        fields["hangup_cause"] = cause
        return self._move(status, fields)

    def final_status(self) -> tuple[str, str]:
        """(status, hangup_cause) once the A leg is gone."""
        if self.cancel_requested:
            return "cancelled", self.a_cause or "ORIGINATOR_CANCEL"
        if self.bridged:
            return "completed", self.a_cause or self.b_cause or "NORMAL_CLEARING"
        if self.answered:
            # A answered but B never did: B's cause is the one that matters.
            return "failed", self.b_cause or self.a_cause or "NORMAL_CLEARING"
        return "failed", self.a_cause or "UNKNOWN"

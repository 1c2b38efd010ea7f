"""A campaign document and its contacts: validation, and the call each
contact attempt places.

Pure. A campaign is a name, a call template (everything ``POST /v1/calls``
takes, but the party the contact fills: ``contact_party``, ``a`` by
default), pacing (calls a second, calls at once), a calling window read in
each contact's time zones (``calling_windows``), a retry ladder
(``ladder``), an optional end (``valid_until``) and where each contact's
report goes (``notify_url``, as ``json`` or ``xml``).

A contact is an id, one or more numbers (rung in turn in one call), its
variables (channel variables on top of the template's) and a caller ID of
its own. ``contact_from_row`` reads one CSV row by its header.

Every refusal is a ``ValidationError`` naming the field; a contact's are
``RowError`` (its row number, the field, the reason) so that an upload can
report each bad row and keep the good ones.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .. import calls
from ..calling_windows import CallingWindow, check_zone, next_opening, parse_window, zones_for
from ..config import Config
from ..errors import ValidationError
from .ladder import RetryLadder, parse_ladder

# Campaign states. ``finished``: every contact is done; ``cancelled``:
# stopped for good (its contacts not yet tried end cancelled).
STATES = ("created", "running", "paused", "cancelled", "finished")
# Which state each action moves from, and to.
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"created"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"created", "running", "paused"}), "cancelled"),
}
NOTIFY_FORMATS = ("json", "xml")
# Call fields a template may not set: the campaign sets them per attempt.
RESERVED = frozenset({"id", "metadata", "retry", "target_call_id"})
MAX_NAME = 100
MAX_CPS = 1000.0
MAX_CONCURRENT = 10_000
MAX_NUMBERS = 5
MAX_INLINE_CONTACTS = 1000
_CONTACT_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CAMPAIGN_ID = re.compile(r"[0-9a-f]{32}")
# The namespace of contact attempt ids (a fixed, random UUID): the call of
# attempt n of a contact has one id, however often it is queued.
_ATTEMPT_NAMESPACE = uuid.UUID("3f1c2a9e-8d47-4b6e-9a05-6c1d7e2b4f80")
# A number the template is checked with, in place of a contact's.
SAMPLE_NUMBER = "+15551230001"


@dataclass(frozen=True)
class Campaign:
    """A validated campaign document."""

    name: str
    call: Mapping[str, Any]
    contact_party: str = "a"
    cps: float = 1.0
    max_concurrent: int = 10
    window: CallingWindow | None = None
    zone: str = ""
    ladder: RetryLadder = field(default_factory=RetryLadder)
    valid_until: datetime | None = None
    notify_url: str | None = None
    notify_format: str = "json"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "call": dict(self.call), "contact_party": self.contact_party,
                               "pacing": {"cps": self.cps, "max_concurrent": self.max_concurrent},
                               "retry": self.ladder.to_json(), "notify_format": self.notify_format}
        if self.window is not None:
            out["calling_window"] = self.window.to_json()
            if self.zone:
                out["calling_window"]["zone"] = self.zone
        if self.valid_until is not None:
            out["valid_until"] = self.valid_until.isoformat().replace("+00:00", "Z")
        if self.notify_url:
            out["notify_url"] = self.notify_url
        return out


@dataclass(frozen=True)
class Contact:
    """One contact of a campaign."""

    id: str
    numbers: tuple[str, ...]
    variables: Mapping[str, str] = field(default_factory=dict)
    caller_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "numbers": list(self.numbers)}
        if self.variables:
            out["variables"] = dict(self.variables)
        if self.caller_id:
            out["caller_id"] = self.caller_id
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Contact:
        return cls(str(data["id"]), tuple(data["numbers"]), dict(data.get("variables") or {}),
                   data.get("caller_id"))


class RowError(ValidationError):
    """A contact refused: its row (1-based, the header is row 1 of a CSV;
    the list index + 1 of a JSON list), the field and the reason."""

    def __init__(self, row: int, field_name: str, reason: str) -> None:
        super().__init__(field_name, reason)
        self.row = row

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


def new_campaign_id() -> str:
    return uuid.uuid4().hex


def check_campaign_id(value: str) -> bool:
    return bool(_CAMPAIGN_ID.fullmatch(value))


def new_nonce() -> str:
    """A campaign's secret: part of every attempt id, never shown."""
    return secrets.token_hex(16)


def attempt_id(campaign_id: str, contact_id: str, attempt: int, nonce: str = "") -> str:
    """The call id of a contact's attempt number ``attempt``: the same every
    time, so that queueing it twice is refused (``JobExists``). The
    campaign's ``nonce`` (``new_nonce``; kept in Redis, never shown) is part
    of it, so that nobody can work out a future attempt's id and place a
    call under it first (a client may choose its calls' ids). Campaigns
    stored without one (empty) keep the ids they had."""
    name = "%s/%s/%d" % (campaign_id, contact_id, attempt)
    return str(uuid.uuid5(_ATTEMPT_NAMESPACE, name + "/" + nonce if nonce else name))


def _number(name: str, value: object, low: float, high: float, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(name, "a number from %g to %g" % (low, high))
    return float(value)


def parse_campaign(data: object, config: Config) -> Campaign:
    """Validate a campaign document (``contacts`` aside: ``parse_contacts``)."""
    if not isinstance(data, Mapping):
        raise ValidationError("body", "must be a JSON object")
    known = {"name", "call", "contact_party", "pacing", "calling_window", "retry", "valid_until", "notify_url",
             "notify_format", "contacts"}
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise ValidationError(unknown[0][:40], "unknown field")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise ValidationError("name", "1 to %d printable characters" % MAX_NAME)
    party = data.get("contact_party", "a")
    if party not in calls.PARTY_NAMES:
        raise ValidationError("contact_party", "a or b: the party each contact's numbers fill")
    template = data.get("call")
    if not isinstance(template, Mapping):
        raise ValidationError("call", "the call template: an object of what POST /v1/calls takes")
    for key in template:
        if key in RESERVED:
            raise ValidationError("call.%s" % key, "set by the campaign for each call")
    own = template.get(party)
    if own is not None and not (isinstance(own, Mapping) and "to" not in own):
        raise ValidationError("call.%s" % party, "filled with each contact's numbers (give only its options)")
    # The template with a sample number must make a valid request.
    try:
        calls.parse_request(_fill(template, party, [SAMPLE_NUMBER], None, {}), config, check_policy=False)
    except ValidationError as exc:
        raise ValidationError("call." + exc.field, exc.reason) from None
    pacing = data.get("pacing") or {}
    if not isinstance(pacing, Mapping) or set(pacing) - {"cps", "max_concurrent"}:
        raise ValidationError("pacing", "an object with cps and max_concurrent")
    cps = _number("pacing.cps", pacing.get("cps"), 0.01, MAX_CPS, 1.0)
    concurrent = pacing.get("max_concurrent", 10)
    if isinstance(concurrent, bool) or not isinstance(concurrent, int) or not 1 <= concurrent <= MAX_CONCURRENT:
        raise ValidationError("pacing.max_concurrent", "a whole number from 1 to %d" % MAX_CONCURRENT)
    window, zone = None, ""
    spec = data.get("calling_window")
    if spec is not None:
        if not isinstance(spec, Mapping):
            raise ValidationError("calling_window", "an object with days, hours, holidays, zone")
        spec = dict(spec)
        raw_zone = spec.pop("zone", None)
        if raw_zone is not None:
            if not isinstance(raw_zone, str):
                raise ValidationError("calling_window.zone", "an IANA time zone name")
            zone = check_zone("calling_window.zone", raw_zone)
        window = parse_window(spec)
    ladder = parse_ladder(data["retry"]) if data.get("retry") is not None else RetryLadder(max_retries=0)
    valid_until = None
    if data.get("valid_until") is not None:
        raw = data["valid_until"]
        try:
            valid_until = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else None
        except ValueError:
            valid_until = None
        if valid_until is None or valid_until.tzinfo is None:
            raise ValidationError("valid_until", "an ISO 8601 time with its offset, e.g. 2026-12-31T18:00:00Z")
        valid_until = valid_until.astimezone(timezone.utc)
    notify = data.get("notify_url")
    if notify is not None:
        try:
            calls.parse_request({"a": SAMPLE_NUMBER, "b": SAMPLE_NUMBER, "callback_url": notify}, config, check_policy=False)
        except ValidationError as exc:
            raise ValidationError("notify_url", exc.reason) from None
    notify_format = data.get("notify_format", "json")
    if notify_format not in NOTIFY_FORMATS:
        raise ValidationError("notify_format", "json or xml")
    return Campaign(name=name.strip(), call=dict(template), contact_party=str(party), cps=cps,
                    max_concurrent=concurrent, window=window, zone=zone, ladder=ladder, valid_until=valid_until,
                    notify_url=notify, notify_format=str(notify_format))


# What ``PATCH /v1/campaigns/<id>`` may change while a campaign runs.
PATCHABLE = ("pacing", "calling_window")


def patch_document(document: Mapping[str, Any], patch: object) -> dict[str, Any]:
    """A stored campaign document with ``patch`` applied: ``pacing`` merged
    (either of cps, max_concurrent), ``calling_window`` replaced (null: none).
    ``ValidationError`` for anything else; the result is to be checked
    with ``parse_campaign``."""
    if not isinstance(patch, Mapping) or not patch:
        raise ValidationError("body", "a JSON object with pacing and/or calling_window")
    for key in patch:
        if key not in PATCHABLE:
            raise ValidationError(str(key)[:40] or "body", "cannot be changed (only %s)" % " and ".join(PATCHABLE))
    out = dict(document)
    if "pacing" in patch:
        pacing = patch["pacing"]
        if not isinstance(pacing, Mapping) or not pacing:
            raise ValidationError("pacing", "an object with cps and/or max_concurrent")
        out["pacing"] = {**(document.get("pacing") or {}), **pacing}
    if "calling_window" in patch:
        if patch["calling_window"] is None:
            out.pop("calling_window", None)
        else:
            out["calling_window"] = patch["calling_window"]
    return out


def load_campaign(document: Mapping[str, Any], config: Config) -> Campaign:
    """A campaign back from its stored JSON (``Campaign.to_json``)."""
    return parse_campaign(document, config)


def _fill(template: Mapping[str, Any], party: str, numbers: Sequence[str], caller_id: str | None,
          variables: Mapping[str, str]) -> dict[str, Any]:
    request = dict(template)
    own = template.get(party)
    to: object = numbers[0] if len(numbers) == 1 else list(numbers)
    request[party] = {**own, "to": to} if isinstance(own, Mapping) else to
    if caller_id:
        request["caller_id_number"] = caller_id
    if variables:
        request["variables"] = {**(template.get("variables") or {}), **variables}
    return request


def build_request(campaign: Campaign, campaign_id: str, contact: Contact, attempt: int, config: Config, *,
                  check_policy: bool = True, nonce: str = "") -> calls.CallRequest:
    """The call of attempt ``attempt`` of ``contact``: the template, the
    contact's numbers in its party, its caller ID and variables, and
    ``metadata`` {campaign, contact, attempt} (what brings the outcome back)."""
    data = _fill(campaign.call, campaign.contact_party, contact.numbers, contact.caller_id, contact.variables)
    data["metadata"] = {"campaign": campaign_id, "contact": contact.id, "attempt": attempt}
    return calls.parse_request(data, config, job_id=attempt_id(campaign_id, contact.id, attempt, nonce),
                               check_policy=check_policy)


_FIELD_OF = {"caller_id_number": "caller_id"}


def check_contact(campaign: Campaign, contact: Contact, row: int, config: Config) -> Contact:
    """``contact`` when its call can be placed (numbers allowed by the
    policy, variables valid); else ``RowError``. Numbers come back in E.164."""
    try:
        request = build_request(campaign, "0" * 32, contact, 1, config)
    except ValidationError as exc:
        name = exc.field
        if name == campaign.contact_party or name.startswith(campaign.contact_party + "."):
            name = "number"
        elif name.startswith("variables."):
            name = "var_" + name[len("variables."):]
        raise RowError(row, _FIELD_OF.get(name, name), exc.reason) from None
    party = request.party(campaign.contact_party)
    numbers = tuple(d.number if d.kind == "e164" else str(d) for d in party.destinations)
    return Contact(contact.id, numbers, contact.variables, contact.caller_id)


def parse_contact(data: object, row: int) -> Contact:
    """A contact of a JSON list: ``{"number": "+1..."}`` or ``{"numbers":
    [...]}``, with ``id``, ``variables`` and ``caller_id`` optional (the id
    defaults to the row)."""
    if not isinstance(data, Mapping):
        raise RowError(row, "contact", "an object with number or numbers")
    unknown = sorted(str(k) for k in data if k not in {"id", "number", "numbers", "variables", "caller_id"})
    if unknown:
        raise RowError(row, unknown[0][:40], "unknown field")
    if "number" in data and "numbers" in data:
        raise RowError(row, "numbers", "give number or numbers, not both")
    raw = data.get("numbers", [data["number"]] if "number" in data else None)
    if not isinstance(raw, list) or not raw:
        raise RowError(row, "number", "is required")
    variables = data.get("variables") or {}
    if not isinstance(variables, Mapping):
        raise RowError(row, "variables", "an object of name: value")
    return _contact(row, data.get("id"), raw, {str(k): v for k, v in variables.items()}, data.get("caller_id"))


def _contact(row: int, contact_id: object, numbers: list[Any], variables: Mapping[str, Any],
             caller_id: object) -> Contact:
    if contact_id is None or contact_id == "":
        contact_id = "r%d" % row
    if not isinstance(contact_id, str) or not _CONTACT_ID.fullmatch(contact_id):
        raise RowError(row, "id", "1 to 64 letters, digits, _ . -")
    if len(numbers) > MAX_NUMBERS:
        raise RowError(row, "number", "at most %d numbers" % MAX_NUMBERS)
    if any(not isinstance(n, str) or not n.strip() for n in numbers):
        raise RowError(row, "number", "numbers are non-empty strings")
    if caller_id is not None and caller_id != "" and not isinstance(caller_id, str):
        raise RowError(row, "caller_id", "digits, optionally with a leading +")
    out_vars: dict[str, str] = {}
    for name, value in variables.items():
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RowError(row, "var_" + name[:40], "values are strings, numbers or booleans")
        out_vars[name] = value if isinstance(value, str) else str(value)
    return Contact(contact_id, tuple(n.strip() for n in numbers), out_vars, caller_id or None)


@dataclass(frozen=True)
class Header:
    """What each column of a CSV upload holds."""

    numbers: tuple[int, ...]
    id: int | None
    caller_id: int | None
    variables: tuple[tuple[int, str], ...]


def parse_header(row: Sequence[str]) -> Header:
    """The header row: ``number`` (and ``number2``, ``number_3`` ... for
    more), optional ``id`` and ``caller_id``; every other column is a
    variable, named by the column (``var_`` taken off)."""
    names = [c.strip().lower() for c in row]
    numbers, variables = [], []
    ident = caller = None
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not name:
            raise ValidationError("header", "column %d has no name" % (i + 1))
        if name in seen:
            raise ValidationError("header", "column %r appears twice" % name)
        seen.add(name)
        if re.fullmatch(r"numbers?(_?[0-9]+)?|phone", name):
            numbers.append(i)
        elif name == "id":
            ident = i
        elif name in ("caller_id", "caller_id_number"):
            caller = i
        else:
            variables.append((i, row[i].strip()[4:] if name.startswith("var_") else row[i].strip()))
    if not numbers:
        raise ValidationError("header", "needs a number column")
    return Header(tuple(numbers), ident, caller, tuple(variables))


def contact_from_row(header: Header, row: Sequence[str], line: int) -> Contact:
    """One CSV row (``line``: its row number, the header being 1)."""
    if len(row) < max([*header.numbers, header.id or 0, header.caller_id or 0, *(i for i, _ in header.variables)]) + 1:
        raise RowError(line, "row", "has %d columns, the header %d" % (len(row), len(header.numbers) + len(
            header.variables) + (header.id is not None) + (header.caller_id is not None)))
    numbers = [row[i].strip() for i in header.numbers if row[i].strip()]
    if not numbers:
        raise RowError(line, "number", "is required")
    variables = {name: row[i] for i, name in header.variables if row[i] != ""}
    return _contact(line, row[header.id].strip() if header.id is not None else None, numbers, variables,
                    row[header.caller_id].strip() if header.caller_id is not None else None)


def contact_zones(contact: Contact, default: str = "") -> tuple[str, ...]:
    """Every zone any of the contact's numbers may be in: the window must be
    open in all of them."""
    zones: list[str] = []
    for number in contact.numbers:
        for zone in zones_for(number, default):
            if zone not in zones:
                zones.append(zone)
    return tuple(zones)


def opening(campaign: Campaign, contact: Contact, now: datetime) -> datetime | None:
    """None when the contact may be called at ``now``; else the first
    moment it may (``datetime.max`` in UTC: never within the horizon)."""
    if campaign.window is None:
        return None
    return next_opening(campaign.window, contact_zones(contact, campaign.zone), now)

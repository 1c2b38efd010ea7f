"""Do-not-call lists: numbers the engine must never ring.

Pure: no I/O. ``store/dnc.py`` keeps the lists in Redis (one global list and
one per account) and uses what is here to read and write them.

An entry is a number in E.164 (``normalise``: written any way a person
writes a number, read in a region when it has no country code), with an
optional reason and an optional expiry (``Entry``; an expired entry no
longer blocks, nor is it listed). Entries are exact numbers:
a list holds no prefixes or ranges.

Which numbers of a call are checked (``checked_numbers``): every
destination of either party that is a phone number. A do-not-call list
names a person's telephone line, and the engine cannot tell which party of
a click-to-call is the customer (a widget rings the visitor first, a
campaign's agent may be rung first). The agent side of a click-to-call is
normally an extension (``user/1000``) or a SIP address: those are not
phone numbers and are never checked. An agent reached on a PSTN number is
checked like any other number, so such a number must not be put on a list.

Bulk files (``parse_line``): one number a line, or CSV rows
``number[,reason[,expires]]``; blank lines and lines starting with ``#``
are skipped, and so is a first line whose first cell is ``number`` or
``phone`` (a header).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import orjson

from .calls import CallRequest
from .config import known_region
from .destinations import typed_number
from .errors import ValidationError

MAX_REASON = 200
# Lists are named like this in answers and counters.
GLOBAL = "global"
ACCOUNT = "account"
_HEADERS = frozenset({"number", "phone", "phone_number", "msisdn"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One number on a list. ``expires``: epoch seconds, or None for never;
    ``added``: epoch seconds."""

    number: str
    reason: str = ""
    expires: float | None = None
    added: float = 0.0

    def active(self, now: float) -> bool:
        return self.expires is None or now < self.expires

    def dumps(self) -> str:
        """The value stored under the number (the number is the hash field)."""
        data: dict[str, object] = {"added": self.added}
        if self.reason:
            data["reason"] = self.reason
        if self.expires is not None:
            data["expires"] = self.expires
        return orjson.dumps(data).decode()

    def to_json(self) -> dict[str, object]:
        """The entry as the API shows it."""
        out: dict[str, object] = {"number": self.number, "added_at": iso(self.added)}
        if self.reason:
            out["reason"] = self.reason
        if self.expires is not None:
            out["expires_at"] = iso(self.expires)
        return out


def loads(number: str, value: str) -> Entry:
    """The entry stored under ``number``; a value not written by ``dumps``
    (a number added by hand with ``HSET key number 1``) is an entry with
    no reason that never expires."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        return Entry(number)
    if not isinstance(data, dict):
        return Entry(number)
    expires = data.get("expires")
    added = data.get("added")
    # What enqueue.lua reads alike: an "expires" that is a JSON number.
    return Entry(number, str(data.get("reason") or ""),
                 float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None,
                 float(added) if isinstance(added, (int, float)) else 0.0)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_region(value: object, default: str = "") -> str:
    """Where numbers written without a country code are (ISO 3166, such as
    US); ``default`` when none is given."""
    if value is None or value == "":
        return default
    if not isinstance(value, str) or not known_region(value.upper()):
        raise ValidationError("region", "must be a region code libphonenumber knows (ISO 3166, such as US, GB, DE)")
    return value.upper()


def normalise(field: str, value: object, region: str = "") -> str:
    """A number in E.164 (``"(212) 555-0123"`` in region US is
    ``"+12125550123"``); ``ValidationError`` naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a phone number (a string)")
    return typed_number(field, value.strip(), region)


def parse_reason(field: str, value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(field, "must be a string")
    value = value.strip()
    if len(value) > MAX_REASON or not value.isprintable():
        raise ValidationError(field, "at most %d printable characters" % MAX_REASON)
    return value


def parse_expiry(field: str, value: object, now: float) -> float | None:
    """When an entry stops blocking: an ISO 8601 time (``2027-01-31`` or
    ``2027-01-31T12:00:00Z``; UTC when it names no offset) or epoch seconds;
    None (or ``""``) for never. It must be in the future."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValidationError(field, "an ISO 8601 time or epoch seconds")
    if isinstance(value, (int, float)):
        ts = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            ts = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise ValidationError(field, "an ISO 8601 time (2027-01-31T12:00:00Z) or epoch seconds") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            ts = parsed.timestamp()
    else:
        raise ValidationError(field, "an ISO 8601 time or epoch seconds")
    if not math.isfinite(ts) or ts <= now:
        raise ValidationError(field, "must be in the future")
    if ts > 253402300799:  # 9999-12-31T23:59:59Z
        raise ValidationError(field, "must be before the year 10000")
    return ts


def parse_item(index: int, item: object, region: str, now: float) -> Entry:
    """One item of a JSON list of entries: a number, or an object with
    ``number`` and optionally ``reason`` and ``expires_at``."""
    field = "numbers[%d]" % index
    if isinstance(item, str):
        return Entry(normalise(field, item, region), added=now)
    if not isinstance(item, dict):
        raise ValidationError(field, "a number, or an object with number, reason and expires_at")
    unknown = sorted(set(item) - {"number", "reason", "expires_at"})
    if unknown:
        raise ValidationError("%s.%s" % (field, str(unknown[0])[:60]), "unknown field (known: number, reason, "
                                                                       "expires_at)")
    if "number" not in item:
        raise ValidationError(field + ".number", "required")
    return Entry(normalise(field + ".number", item["number"], region), parse_reason(field + ".reason",
                                                                                   item.get("reason")),
                 parse_expiry(field + ".expires_at", item.get("expires_at"), now), now)


def parse_line(line: str, region: str, now: float, *, first: bool = False) -> Entry | None:
    """One line of a bulk file; None for a line that holds no entry (blank,
    a comment, or a header when it is the ``first``). ``ValidationError``
    for a line that is none of these nor a good entry."""
    text = line.strip().lstrip("\ufeff")
    if not text or text.startswith("#"):
        return None
    try:
        cells = next(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise ValidationError("line", "not a CSV row: %s" % exc) from None
    cells = [c.strip() for c in cells]
    if first and cells and cells[0].lower() in _HEADERS:
        return None
    if len(cells) > 3:
        raise ValidationError("line", "at most three cells: number, reason, expires")
    number = normalise("number", cells[0], region)
    reason = parse_reason("reason", cells[1]) if len(cells) > 1 else ""
    expires = parse_expiry("expires", cells[2], now) if len(cells) > 2 else None
    return Entry(number, reason, expires, now)


def checked_numbers(request: CallRequest) -> list[tuple[str, str]]:
    """(field, number) of every phone number the call would ring, the first
    party's first: the numbers the do-not-call lists are checked against."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in (request.dial_first, request.second):
        for i, dest in enumerate(request.party(name).destinations):
            if dest.kind == "e164" and dest.number not in seen:
                seen.add(dest.number)
                out.append(("%s[%d]" % (name, i) if len(request.party(name).destinations) > 1 else name,
                            dest.number))
    return out


@dataclass(frozen=True, slots=True)
class Hit:
    """A number of a call found on a list: which field named it, the number,
    the list (``GLOBAL`` or ``ACCOUNT``) and its entry."""

    field: str
    number: str
    list: str
    entry: Entry


def first_hit(numbers: Sequence[tuple[str, str]], lists: Iterable[tuple[str, Sequence[str | None]]],
              now: float) -> Hit | None:
    """The first of ``numbers`` that an active entry blocks. ``lists``:
    (list name, the stored value of each number on it, None where absent),
    as one ``HMGET`` a list answers."""
    found = list(lists)
    for i, (field, number) in enumerate(numbers):
        for name, values in found:
            value = values[i] if i < len(values) else None
            if value is not None:
                entry = loads(number, value)
                if entry.active(now):
                    return Hit(field, number, name, entry)
    return None

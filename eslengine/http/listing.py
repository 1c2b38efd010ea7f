"""``GET /v1/calls``: which calls a query asks for, its cursor, and the
summary of each call it lists. Pure: the route reads the index and the
records (``JobQueue.list_calls``) and hands them here.

    GET /v1/calls?status=failed,cancelled&since=2026-12-01T00:00:00Z
                 &until=...&variables.campaign=spring&limit=50&cursor=...

Newest first. ``next_cursor`` continues the listing where a page stopped
(also when a page holds fewer than ``limit`` calls: a page reads at most
``SCAN_LIMIT`` calls of the index); it is null at the end.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import status
from ..errors import ValidationError
from .present import present

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
# Calls of the index one page reads at most (however few match).
SCAN_LIMIT = 1000
_VARIABLE = "variables."


@dataclass(frozen=True)
class CallQuery:
    statuses: frozenset[str] = frozenset()
    since: float | None = None
    until: float | None = None
    variables: tuple[tuple[str, str], ...] = ()
    limit: int = DEFAULT_LIMIT
    after: tuple[int, str] | None = None

    def matches(self, record: Mapping[str, str]) -> bool:
        if self.statuses and record.get("status") not in self.statuses:
            return False
        if self.variables:
            try:
                request = json.loads(record.get("request") or "{}")
            except ValueError:
                return False
            have = (request.get("variables") or {}) if isinstance(request, dict) else {}
            if any(name not in have or str(have[name]) != value for name, value in self.variables):
                return False
        return True


def parse_query(args: Mapping[str, str]) -> CallQuery:
    """The query of ``args`` (a request's query string, one value each);
    ``ValidationError`` naming the parameter."""
    statuses: frozenset[str] = frozenset()
    since = until = None
    variables = []
    limit = DEFAULT_LIMIT
    after = None
    for name, value in args.items():
        if name == "status":
            statuses = frozenset(s.strip() for s in value.split(",") if s.strip())
            unknown = sorted(statuses - set(status.STATUSES))
            if not statuses or unknown:
                raise ValidationError("status", "one or more of %s, comma-separated" % ", ".join(status.STATUSES))
        elif name in ("since", "until"):
            moment = _time(name, value)
            if name == "since":
                since = moment
            else:
                until = moment
        elif name == "limit":
            if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_LIMIT:
                raise ValidationError("limit", "a whole number from 1 to %d" % MAX_LIMIT)
            limit = int(value)
        elif name == "cursor":
            after = decode_cursor(value)
        elif name.startswith(_VARIABLE) and len(name) > len(_VARIABLE):
            variables.append((name[len(_VARIABLE):], value))
        else:
            raise ValidationError(name[:40] or "query", "unknown query parameter (status, since, until, "
                                  "variables.<name>, limit, cursor)")
    if since is not None and until is not None and since > until:
        raise ValidationError("since", "is after until")
    return CallQuery(statuses, since, until, tuple(sorted(variables)), limit, after)


def _time(name: str, value: str) -> float:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(name, "an ISO 8601 time, e.g. 2026-12-01T09:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def encode_cursor(score: int, job_id: str) -> str:
    return base64.urlsafe_b64encode(("%d:%s" % (score, job_id)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        score, _, job_id = raw.partition(":")
        if not (score.isascii() and score.isdigit() and job_id) or len(job_id) > 64:
            raise ValueError(raw)
        return int(score), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("cursor", "not a cursor this API gave out (next_cursor)") from None


def summary(record: Mapping[str, str]) -> dict[str, Any]:
    """A call as a listing shows it: part of what ``GET /v1/calls/<id>``
    shows (``http.present``), which has the rest."""
    document = present(record, [])
    out: dict[str, Any] = {name: document.get(name) for name in ("id", "status", "a", "b", "variables")}
    out["created_at"], out["updated_at"] = record.get("created_at"), record.get("updated_at")
    if record.get("ended_at"):
        out["ended_at"] = record["ended_at"]
    for name in ("hangup_cause", "ended_by", "failed_party", "key"):
        if name in document:
            out[name] = document[name]
    return out

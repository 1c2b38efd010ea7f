"""A stored call record as the API shows it (``GET /v1/calls/<id>``, the
listings, webhooks). Pure: no I/O."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..status import STATUSES

_PUBLIC = (
    "recording",
    "a_uuid",
    "b_uuid",
    "node",
    "hangup_cause",
    "a_hangup_cause",
    "b_hangup_cause",
    "ended_by",
    "failed_party",
    "error",
)
_TIMES = tuple(s + "_at" for s in STATUSES) + ("created_at", "ended_at", "updated_at")


def present(record: Mapping[str, str], history: list[str]) -> dict[str, Any]:
    """A stored record → the JSON document ``GET /v1/calls/<id>`` returns."""
    request = json.loads(record.get("request") or "{}")
    call_id = record.get("client_id") or record.get("id")
    if record.get("client_id") and isinstance(request, dict):
        request["id"] = call_id  # the id its key knows it by
    out: dict[str, Any] = {
        "id": call_id,
        "status": record.get("status"),
        "a": request.get("a", record.get("a")),
        "b": request.get("b", record.get("b")),
        "caller_id_number": request.get("caller_id_number"),
        "caller_id_name": request.get("caller_id_name"),
        "timeout": request.get("timeout"),
        "variables": request.get("variables", {}),
        "request": request,
    }
    for key in _PUBLIC:
        if record.get(key):
            out[key] = record[key]
    if record.get("owner"):
        out["key"] = record["owner"]
    if record.get("account"):
        out["account"] = record["account"]
    out["attempts"] = int(record.get("attempts", "0"))
    out["timestamps"] = {k[:-3]: record[k] for k in _TIMES if record.get(k)}
    out["durations"] = _durations(record)
    out["history"] = [{"status": s, "at": at} for s, _, at in (h.partition(" ") for h in history)]
    return out


def _durations(record: Mapping[str, str]) -> dict[str, float]:
    def ts(key: str) -> float | None:
        value = record.get(key)
        if not value:
            return None
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()

    out: dict[str, float] = {}
    dialing, answered, bridged, ended = ts("dialing_at"), ts("answered_at"), ts("bridged_at"), ts("ended_at")
    if dialing and (answered or ended):
        out["ring_seconds"] = round((answered or ended or 0) - dialing, 3)
    if bridged and ended:
        out["talk_seconds"] = round(ended - bridged, 3)
    return out

"""A contact's delivery report: what its campaign's notify URL receives once
the contact is done, as JSON or XML.

Pure. The document::

    {"event": "contact.finished", "campaign": {"id": ..., "name": ...},
     "contact": {"id": ..., "numbers": [...], "variables": {...}, "caller_id": ...},
     "outcome": "connected" | "failed" | "cancelled" | "expired" | "skipped_dnc",
     "cause": <hangup cause of its last call, or "">, "attempts": <calls placed>,
     "retries": <of its ladder>, "last_call": <call id, or "">, "finished_at": <ISO time>}

The XML form is the same tree under ``<report>``: each key an element, a
list's items ``<number>`` (numbers) or ``<item>``, variables
``<variable name="...">value</variable>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape, quoteattr

EVENT = "contact.finished"


def report_document(campaign_id: str, campaign_name: str, contact: Mapping[str, str]) -> dict[str, Any]:
    """The report of a done contact, from its stored hash (``store.campaigns``)."""
    doc = json.loads(contact.get("doc") or "{}")
    return {
        "event": EVENT,
        "campaign": {"id": campaign_id, "name": campaign_name},
        "contact": doc,
        "outcome": contact.get("outcome", ""),
        "cause": contact.get("cause") or contact.get("last_cause") or "",
        "attempts": int(contact.get("tries") or 0),
        "retries": int(contact.get("retries") or 0),
        "last_call": contact.get("last_call") or contact.get("call") or "",
        "finished_at": contact.get("finished_at", ""),
    }


def _xml(name: str, value: Any) -> str:
    if isinstance(value, Mapping):
        if name == "variables":
            inner = "".join("<variable name=%s>%s</variable>" % (quoteattr(str(k)), escape(str(v)))
                            for k, v in value.items())
        else:
            inner = "".join(_xml(str(k), v) for k, v in value.items())
        return "<%s>%s</%s>" % (name, inner, name)
    if isinstance(value, list):
        item = "number" if name == "numbers" else "item"
        return "<%s>%s</%s>" % (name, "".join(_xml(item, v) for v in value), name)
    if value is None:
        return "<%s/>" % name
    return "<%s>%s</%s>" % (name, escape(str(value)), name)


def report_body(document: Mapping[str, Any], fmt: str) -> tuple[bytes, str]:
    """The body and content type of a report in ``fmt`` (json or xml)."""
    if fmt == "xml":
        inner = "".join(_xml(k, v) for k, v in document.items())
        return ('<?xml version="1.0" encoding="UTF-8"?><report>%s</report>' % inner).encode(), "application/xml"
    return json.dumps(document, separators=(",", ":")).encode(), "application/json"

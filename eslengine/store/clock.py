"""Times as the records store them."""

from __future__ import annotations

import time
from datetime import datetime, timezone

_last_iso: tuple[int, str] = (-1, "")


def now_iso(ts: float | None = None) -> str:
    """``ts`` (default: now) as UTC ISO 8601 to the millisecond. The text of
    the last millisecond asked for is kept: a busy worker asks several times
    per millisecond."""
    global _last_iso
    if ts is None:
        ts = time.time()
    whole = int(ts)  # rounded to the microsecond the way datetime does it
    ms = whole * 1000 + round((ts - whole) * 1_000_000) // 1000
    if ms == _last_iso[0]:
        return _last_iso[1]
    text = datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    _last_iso = (ms, text)
    return text

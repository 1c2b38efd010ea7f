"""Times as records store them (eslengine.store.clock)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from eslengine.store import now_iso


@settings(max_examples=2000, deadline=None)
@given(st.floats(min_value=0, max_value=4e9, allow_nan=False), st.floats(min_value=0, max_value=0.002))
def test_now_iso_is_datetimes_millisecond_text(ts: float, later: float) -> None:
    """The kept text of the last millisecond never leaks into another one."""
    for moment in (ts, ts + later, ts):
        expected = datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds")
        assert now_iso(moment) == expected.replace("+00:00", "Z")

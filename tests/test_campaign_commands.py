"""``eslengine campaign``'s drawing (eslengine.campaign.commands): pure."""

from __future__ import annotations

import io

from eslengine.campaign.commands import Progress, counter_lines, over, progress_line


def test_the_progress_line_shows_the_share_sent_sizes_rows_and_rate() -> None:
    assert progress_line(0, 2_000_000, 0, 0.0, width=10) == "[..........]   0%  0.0/2.0 MB  0 rows  0 rows/s"
    assert progress_line(1_000_000, 2_000_000, 12_345, 2.0, width=10) == (
        "[#####.....]  50%  1.0/2.0 MB  12,345 rows  6,172 rows/s")
    assert progress_line(5, 0, 1, 1.0, width=4).startswith("[....]   0%")


def test_progress_counts_rows_after_the_header_as_the_file_is_read() -> None:
    clock = iter(float(t) for t in range(100))
    out = io.StringIO()
    progress = Progress(io.BytesIO(b"number\n+1\n+2\n+3\n"), 16, out, clock=lambda: next(clock))
    while progress.read(4):
        pass
    assert progress.sent == 16 and progress.rows - 1 == 3
    assert out.getvalue().rsplit("\r", 1)[1].startswith("[" + "#" * 30 + "] 100%")


def test_counter_lines_show_what_waits_and_why_calls_failed() -> None:
    campaign = {"id": "c1", "name": "autumn", "state": "running", "contacts": 10, "calls": 7,
                "counters": {"queued": 2, "dialing": 1, "retrying": 1, "waiting_window": 2, "done": 4,
                             "connected": 3, "failed": 1, "cancelled": 0, "expired": 0, "skipped_dnc": 0},
                "failed_by_cause": {"USER_BUSY": 1}, "waiting_until": "2026-12-03T08:00:00.000Z"}
    lines = counter_lines(campaign)
    assert lines[0] == "campaign c1  autumn  running"
    assert lines[1] == "contacts 10  done 4 (40%)  calls 7"
    assert "waiting for window 2 (until 2026-12-03T08:00:00.000Z)" in lines[2]
    assert lines[-1] == "failed by cause: USER_BUSY 1"
    assert not over(campaign)
    assert over({**campaign, "state": "finished"})
    assert over({**campaign, "state": "cancelled", "counters": {"done": 10}})
    assert not over({**campaign, "state": "cancelled"})

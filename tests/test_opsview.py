"""The operator's view, pure: ages, the status document, tables, calls."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eslengine.config import Node
from eslengine.opsview import (
    CampaignsSeen,
    LaneSeen,
    QueueSeen,
    Snapshot,
    WorkerSeen,
    age,
    call_document,
    call_row,
    call_text,
    calls_text,
    info_nodes,
    lanes_together,
    refusal_counts,
    running_contacts,
    status_document,
    status_text,
    table,
    worker_info,
    worker_state,
)

NOW = 1_764_662_400.0  # 2025-12-02T08:00:00Z
EMPTY_QUEUE = QueueSeen(waiting=0, oldest_waiting_ms=None, claimed=0, oldest_claimed_ms=None, retries=0,
                        next_retry=None, dead_letters=0, newest_dead_ms=None)


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "-"),
    (0, "0.0s"),
    (0.04, "0.0s"),
    (4.25, "4.2s"),
    (9.99, "10.0s"),
    (10, "10s"),
    (59.9, "59s"),
    (60, "1m00s"),
    (192, "3m12s"),
    (3599, "59m59s"),
    (3600, "1h00m"),
    (5 * 3600 + 7 * 60 + 59, "5h07m"),
    (86400, "1d00h"),
    (2 * 86400 + 3 * 3600 + 1, "2d03h"),
    (-192, "-3m12s"),
])
def test_age(seconds: float | None, shown: str) -> None:
    assert age(seconds) == shown


def info(state: str = "running", nodes: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    fields = worker_info(version="0.1.0", host="w1.example", pid=4242, started_at="2025-12-02T07:56:48.000Z",
                         state=state, pool=2000, nodes=nodes or {})
    return {**fields, "ttl": "60", **extra}


FS1 = {"up": True, "sps": 40, "max_sessions": 900, "switch_sps": 25, "switch_max_sessions": 300, "held": 3,
       "share": 150, "rate": 12}


@pytest.mark.parametrize(("alive", "said", "state"), [
    (True, "running", "running"),
    (True, "draining", "draining"),
    (True, "", "running"),  # an older worker that says nothing
    (True, "stopped", "running"),  # its heartbeat is back: it runs
    (False, "stopped", "stopped"),
    (False, "running", "gone"),
    (False, "draining", "gone"),
    (False, "", "gone"),
])
def test_worker_state(alive: bool, said: str, state: str) -> None:
    assert worker_state(WorkerSeen("w", alive, {"state": said} if said else {}, None, 0, None)) == state


@pytest.mark.parametrize("nodes", ["", "not json", "[1, 2]", "42", '{"fs1": 3}'])
def test_unreadable_node_info_is_no_node(nodes: str) -> None:
    assert info_nodes({"nodes": nodes}) == {}


def test_status_document_of_a_live_worker_a_gone_one_and_a_queue() -> None:
    snapshot = Snapshot(
        now=NOW,
        workers=(
            WorkerSeen("w1", True, info(nodes={"fs1": FS1, "fs2": {**FS1, "up": False, "held": 0}}), 1.24, 2, 1),
            WorkerSeen("w2", False, info(nodes={"fs1": {**FS1, "switch_sps": 99}}), 30.0, 1, None),
        ),
        pacers={"fs1": {"w1": (3, 150, 11.0), "w2": (1, 150, 2.0)}, "fs2": {}},
        queue=QueueSeen(waiting=4, oldest_waiting_ms=int((NOW - 192) * 1000), claimed=1,
                        oldest_claimed_ms=int((NOW - 2.5) * 1000), retries=2, next_retry=NOW + 30.04, dead_letters=7,
                        newest_dead_ms=int((NOW - 3600) * 1000),
                        lanes={"interactive": LaneSeen(1, int((NOW - 4) * 1000), 1, int((NOW - 2.5) * 1000)),
                               "bulk": LaneSeen(3, int((NOW - 192) * 1000), 0, None)}),
        campaigns=CampaignsSeen(running=2, contacts={"queued": 120, "retrying": 3, "waiting_window": 40,
                                                     "dialing": 12}),
        dnc_refused={"api": 5, "dial": 1},
    )
    doc = status_document(snapshot, [Node("10.0.0.2", 8021, "pw", name="fs2", sps=30, max_sessions=1000)])
    assert doc == {
        "version": 1,
        "at": "2025-12-02T08:00:00.000Z",
        "ready": True,
        "nodes": [
            # Configured ones first; what a live worker says wins over the reader's URL.
            {"node": "fs2", "up": False, "sessions": 0, "sps": 25, "max_sessions": 300,
             "url": {"sps": 40, "max_sessions": 900}, "switch": {"sps": 25, "max_sessions": 300},
             "workers": [{"worker": "w1", "connected": False, "held": 0, "share": 150, "switch_sps": 25,
                          "switch_max_sessions": 300}]},
            # The gone worker's place has not lapsed yet: counted in the sessions, not connected, and
            # what it said of the switch is not taken.
            {"node": "fs1", "up": True, "sessions": 4, "sps": 25, "max_sessions": 300,
             "url": {"sps": 40, "max_sessions": 900}, "switch": {"sps": 25, "max_sessions": 300},
             "workers": [{"worker": "w1", "connected": True, "held": 3, "share": 150, "switch_sps": 25,
                          "switch_max_sessions": 300},
                         {"worker": "w2", "connected": False, "held": 1, "share": 150, "switch_sps": None,
                          "switch_max_sessions": None}]},
        ],
        "workers": [
            {"worker": "w1", "state": "running", "seen_ago": 1.2, "host": "w1.example", "pid": 4242,
             "version": "0.1.0", "started_at": "2025-12-02T07:56:48.000Z", "uptime": 192.0, "pool": 2000,
             "calls": 2, "claimed": 1, "nodes": {"fs1": "up", "fs2": "down"}},
            {"worker": "w2", "state": "gone", "seen_ago": 30.0, "host": "w1.example", "pid": 4242,
             "version": "0.1.0", "started_at": "2025-12-02T07:56:48.000Z", "uptime": None, "pool": 2000,
             "calls": 1, "claimed": 0, "nodes": {"fs1": "down"}},
        ],
        "queue": {"waiting": 4, "oldest_waiting_age": 192.0, "claimed": 1, "oldest_claimed_age": 2.5,
                  "retries": 2, "next_retry_in": 30.0, "dead_letters": 7, "newest_dead_letter_age": 3600.0,
                  "lanes": {"interactive": {"waiting": 1, "oldest_waiting_age": 4.0, "claimed": 1,
                                            "oldest_claimed_age": 2.5},
                            "bulk": {"waiting": 3, "oldest_waiting_age": 192.0, "claimed": 0,
                                     "oldest_claimed_age": None}}},
        "campaigns": {"running": 2, "contacts": {"queued": 120, "retrying": 3, "waiting_window": 40, "dialing": 12}},
        "do_not_call": {"refused": {"api": 5, "dial": 1}},
    }
    assert json.loads(json.dumps(doc)) == doc  # plain JSON throughout


def test_a_node_nobody_reports_on_is_down_with_the_urls_limits_only() -> None:
    doc = status_document(Snapshot(NOW, (), {}, EMPTY_QUEUE), [Node("h", 8021, "pw", sps=50, max_sessions=200)])
    assert doc["ready"] is False
    assert doc["nodes"] == [{"node": "h:8021", "up": False, "sessions": 0, "sps": 50, "max_sessions": 200,
                             "url": {"sps": 50, "max_sessions": 200}, "switch": None, "workers": []}]
    assert doc["workers"] == []
    idle = {"waiting": 0, "oldest_waiting_age": None, "claimed": 0, "oldest_claimed_age": None}
    assert doc["queue"] == {**idle, "retries": 0, "next_retry_in": None, "dead_letters": 0,
                            "newest_dead_letter_age": None, "lanes": {"interactive": idle, "bulk": idle}}
    # Nothing read of campaigns or refusals: zeros, every field there.
    assert doc["campaigns"] == {"running": 0, "contacts": {"queued": 0, "retrying": 0, "waiting_window": 0,
                                                           "dialing": 0}}
    assert doc["do_not_call"] == {"refused": {"api": 0, "dial": 0}}


def test_a_live_worker_that_says_nothing_counts_as_connected_while_it_keeps_its_place() -> None:
    snapshot = Snapshot(NOW, (WorkerSeen("old", True, {}, None, 0, None),), {"fs1": {"old": (0, 10, 5.0)}},
                        EMPTY_QUEUE)
    doc = status_document(snapshot)
    [node] = doc["nodes"]
    assert node["up"] is True and doc["ready"] is True
    assert node["workers"][0]["connected"] is None and node["url"] is None and node["sps"] is None
    assert doc["workers"][0] == {"worker": "old", "state": "running", "seen_ago": None, "host": None, "pid": None,
                                 "version": None, "started_at": None, "uptime": None, "pool": None, "calls": 0,
                                 "claimed": 0, "nodes": {}}


def test_a_retry_overdue_has_a_negative_wait_and_shows_as_due() -> None:
    queue = QueueSeen(0, None, 0, None, 1, NOW - 2, 0, None)
    doc = status_document(Snapshot(NOW, (), {}, queue))
    assert doc["queue"]["next_retry_in"] == -2.0
    assert "retries       1      next due" in status_text(doc).splitlines()


def test_status_text_renders_the_document() -> None:
    snapshot = Snapshot(NOW, (WorkerSeen("w1", True, info(nodes={"fs1": FS1}), 0.5, 2, 1),),
                        {"fs1": {"w1": (3, 150, 11.0)}},
                        QueueSeen(4, int((NOW - 192) * 1000), 1, None, 0, None, 0, None,
                                  {"bulk": LaneSeen(4, int((NOW - 192) * 1000), 1, None)}),
                        CampaignsSeen(1, {"queued": 1000, "retrying": 2, "waiting_window": 30, "dialing": 4}),
                        {"api": 7, "dial": 2})
    lines = status_text(status_document(snapshot)).splitlines()
    assert lines == [
        "eslengine at 2025-12-02T08:00:00.000Z: ready",
        "",
        "NODE  STATE  SESSIONS  SPS URL/SWITCH  MAX SESSIONS URL/SWITCH  WORKERS",
        "fs1   up     3/300     40/25           900/300                  1",
        "",
        "WORKER  STATE    SEEN      UPTIME  CALLS  CLAIMED  POOL  VERSION  NODES",
        "w1      running  0.5s ago  3m12s   2      1        2000  0.1.0    fs1:up",
        "",
        "QUEUE         COUNT  AGE",
        "waiting       4      oldest 3m12s",
        "claimed       1      oldest -",
        "retries       0      next -",
        "dead letters  0      newest -",
        "",
        "LANE         WAITING  OLDEST WAITING  CLAIMED  OLDEST CLAIMED",
        "interactive  0        -               0        -",
        "bulk         4        3m12s           1        -",
        "",
        "CAMPAIGNS  RUNNING  QUEUED  RETRYING  WAITING WINDOW  DIALING",
        "contacts   1        1000    2         30              4",
        "",
        "DO-NOT-CALL  AT INTAKE  AT DIAL TIME",
        "refused      7          2",
    ]
    assert "NOT READY" in status_text(status_document(Snapshot(NOW, (), {}, EMPTY_QUEUE))).splitlines()[0]


def test_lanes_together_add_their_counts_and_keep_the_oldest_entry() -> None:
    interactive = LaneSeen(2, 1_000_500, 1, None)
    bulk = LaneSeen(5000, 1_000_000, 40, 1_000_900)
    assert lanes_together([interactive, bulk]) == LaneSeen(5002, 1_000_000, 41, 1_000_900)
    assert lanes_together([]) == LaneSeen(0, None, 0, None)
    assert lanes_together([LaneSeen(0, None, 0, None), interactive]) == interactive


def test_running_contacts_count_only_running_campaigns_by_state() -> None:
    seen = running_contacts([
        {"state": "running", "c:queued": "10", "c:retrying": "1", "c:waiting_window": "3", "c:dialing": "2"},
        {"state": "running", "c:queued": "5", "c:retrying": None, "c:waiting_window": "x", "c:dialing": "-1"},
        {"state": "paused", "c:queued": "100", "c:retrying": "9", "c:waiting_window": "9", "c:dialing": "9"},
        {"state": None, "c:queued": "7"},  # gone since it was listed
        {"state": "cancelled", "c:dialing": "4"},
    ])
    assert seen == CampaignsSeen(running=2, contacts={"queued": 15, "retrying": 1, "waiting_window": 3,
                                                      "dialing": 2})
    assert running_contacts([]) == CampaignsSeen(0, {"queued": 0, "retrying": 0, "waiting_window": 0,
                                                      "dialing": 0})


@pytest.mark.parametrize(("fields", "counts"), [
    ({}, {"api": 0, "dial": 0}),
    ({"api": "12", "dial": "3", "api:acct-1": "10", "dial:acct-1": "3"}, {"api": 12, "dial": 3}),
    ({"api:acct-1": "4"}, {"api": 0, "dial": 0}),  # an account's count is not the total
    ({"api": "not a number", "dial": "-2"}, {"api": 0, "dial": 0}),
])
def test_refusal_counts_are_the_totals_by_where(fields: dict[str, str], counts: dict[str, int]) -> None:
    assert refusal_counts(fields) == counts


def test_table_pads_columns_and_shows_none_as_a_dash() -> None:
    assert table(("A", "LONGER"), [("x", None), ("wide cell", 3)]) == ["A          LONGER", "x          -",
                                                                       "wide cell  3"]
    assert table(("ONLY",), []) == ["ONLY"]


def test_calls_text_one_line_a_call() -> None:
    rows = [{"id": "c1", "status": "failed", "created_at": "2025-12-02T07:59:00.000Z", "a": ["+15551230001"],
             "b": ["+15551230486", "user/1000"], "hangup_cause": "USER_BUSY", "node": "fs1", "worker": "w1"},
            {"id": "c2", "status": "queued", "created_at": "2025-12-02T07:59:30.000Z", "a": "+15551230002",
             "b": None}]
    assert calls_text(rows).splitlines() == [
        "ID  STATUS  CREATED                   A             B                       CAUSE      NODE  WORKER",
        "c1  failed  2025-12-02T07:59:00.000Z  +15551230001  +15551230486,user/1000  USER_BUSY  fs1   w1",
        "c2  queued  2025-12-02T07:59:30.000Z  +15551230002  -                       -          -     -",
    ]


def test_call_text_shows_fields_causes_and_history_with_offsets() -> None:
    document = {"id": "c1", "status": "failed", "a": ["+15551230001"], "b": ["+15551230486"], "node": "fs1",
                "worker": "w1", "attempts": 1, "hangup_cause": "USER_BUSY", "failed_party": "b",
                "caller_id_number": "+15550000000", "caller_id_name": None, "variables": {"z": "1", "a": "x y"},
                "durations": {"ring_seconds": 1.0},
                "history": [{"status": "queued", "at": "2025-12-02T07:59:00.000Z"},
                            {"status": "dialing", "at": "2025-12-02T07:59:00.020Z"},
                            {"status": "failed", "at": "2025-12-02T07:59:01.520Z"}]}
    assert call_text(document).splitlines() == [
        "id            c1",
        "status        failed",
        "a             +15551230001",
        "b             +15551230486",
        "node          fs1",
        "worker        w1",
        "attempts      1",
        "hangup_cause  USER_BUSY",
        "failed_party  b",
        "caller_id     +15550000000",
        'variables     {"a": "x y", "z": "1"}',
        "durations     ring 1.000s",
        "history",
        "  2025-12-02T07:59:00.000Z  queued     +0.000s",
        "  2025-12-02T07:59:00.020Z  dialing    +0.020s",
        "  2025-12-02T07:59:01.520Z  failed     +1.520s",
    ]


def test_a_call_a_client_key_named_is_listed_and_shown_under_its_stored_id() -> None:
    record = {"id": "key_1:order-7", "client_id": "order-7", "status": "queued", "worker": "w1"}
    summary = {"id": "order-7", "status": "queued"}  # as the API shows it to that key
    row = call_row(record, summary)
    assert (row["id"], row["client_id"], row["worker"], row["node"], row["attempts"]) == (
        "key_1:order-7", "order-7", "w1", None, 0)
    assert "client_id" not in call_row({"id": "c1", "client_id": "c1"}, {"id": "c1"})
    document = call_document(record, {"id": "order-7", "status": "queued", "history": []})
    assert (document["id"], document["client_id"]) == ("key_1:order-7", "order-7")
    assert call_text(document).splitlines()[:3] == ["id         key_1:order-7", "client_id  order-7",
                                                    "status     queued"]

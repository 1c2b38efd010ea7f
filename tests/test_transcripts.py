"""The recorded FreeSWITCH transcripts, replayed against the simulator.

Each transcript's client frames are sent, per connection and in recorded
order, to a FakeSwitch whose scenario mirrors the recording's dialplan
(README "Exact configuration used") with the slow cases shortened. Every
reply (anything but an event) must have the recorded Content-Type, and the
recorded bytes wherever the real reply is deterministic. Events are only
counted on the way past: their uuids, times and sequence numbers differ.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from gevent import socket

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.protocol import EVENT_JSON, EVENT_PLAIN, Frame, FrameReader, parse_event

TRANSCRIPTS = Path(__file__).resolve().parent / "data" / "transcripts"
FILES = sorted(TRANSCRIPTS.glob("[01]*.json"))
assert FILES, "no transcripts under %s" % TRANSCRIPTS

# The recording's dialplan, with its 2-60 s waits shortened.
DIALPLAN = Scenario.from_dict({"rules": [
    {"match": "^1000$", "outcome": "answer", "after": 0},
    {"match": "^1001$", "outcome": "answer_then_hangup", "after": 0, "talk": 0.05},
    {"match": "^1183$", "outcome": "early_media", "after": 0.05},
    {"match": "^1486$", "outcome": "busy"},
    {"match": "^1408$", "outcome": "fail", "cause": "NO_ANSWER"},
    {"match": "^1480$", "outcome": "fail", "cause": "NO_USER_RESPONSE"},
    {"match": "^1603$", "outcome": "fail", "cause": "CALL_REJECTED"},
    {"match": "^1999$", "outcome": "answer", "after": 0},
    {"match": "^2001$", "outcome": "answer", "after": 0},
    {"match": "", "outcome": "fail", "cause": "NO_ROUTE_DESTINATION"},
]})

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _load(path: Path) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["entries"]
    return entries


def _frames(data: str) -> list[Frame]:
    reader = FrameReader()
    reader.feed(data.encode("utf-8"))
    return list(reader.frames())


def _is_event(frame: Frame) -> bool:
    return frame.content_type in (EVENT_PLAIN, EVENT_JSON)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_recorded_server_frame_parses(path: Path) -> None:
    by_conn: dict[str, list[str]] = defaultdict(list)
    count: dict[str, int] = defaultdict(int)
    for entry in _load(path):
        if entry.get("dir") == "S":
            by_conn[entry["conn"]].append(entry["data"])
            count[entry["conn"]] += 1
    for conn, chunks in by_conn.items():
        frames = _frames("".join(chunks))
        assert len(frames) == count[conn], conn
        for frame in frames:
            assert frame.content_type
            if _is_event(frame):
                assert parse_event(frame).name


class _Conn:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=2)
        self.reader = FrameReader()
        self.pending: list[Frame] = []
        self.eof = False
        self.events = 0

    def next_reply(self, timeout: float = 3.0) -> Frame | None:
        """The next non-event frame; None at EOF."""
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                frame = self.pending.pop(0)
                if _is_event(frame):
                    parse_event(frame)
                    self.events += 1
                    continue
                return frame
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no reply in time")
            self.sock.settimeout(remaining)
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                continue
            self.reader.feed(data)
            self.pending.extend(self.reader.frames())


def _any_uuid(text: str) -> str:
    """A regex matching ``text`` with any uuid where it has one."""
    return UUID.join(re.escape(part) for part in re.split(UUID, text))


def _check_reply(command: str, expected: Frame, got: Frame) -> None:
    """Compare one reply; the adaptations are the non-deterministic replies."""
    assert got.content_type == expected.content_type, (command, got)
    if expected.content_type != "api/response" and not command.startswith("bgapi"):
        assert (got.headers, got.body) == (expected.headers, expected.body), command
        return
    if command.startswith("api status"):
        # uptime and counters
        assert re.fullmatch(
            r"UP \d+ years?, .*\n.* is ready\n\d+ session\(s\) since startup\n"
            r"\d+ session\(s\) - peak \d+, last 5min \d+ \n"
            r"\d+ session\(s\) per Sec out of max \d+, peak \d+, last 5min \d+ \n"
            r"\d+ session\(s\) max\n.*\n.*\n", got.body), got.body
        return
    if command == "api global_getvar":
        # the host's paths and addresses
        assert got.body.startswith("hostname=vm\n")
        return
    if command.startswith("api show") and ("count" in command or "bridged_calls" in command
                                           or command == "api show calls"):
        # FreeSWITCH's core db is written asynchronously: counts lag
        assert re.fullmatch(r"(?s)(.*\n)?\n\d+ total\.\n", got.body), got.body
        return
    if command.startswith("api show") and "as json" in command:
        # uuids and times; a lagging db may show 0 rows where we show some
        want, have = json.loads(expected.body), json.loads(got.body)
        if want.get("rows") and have.get("rows"):
            assert set(want["rows"][0]) == set(have["rows"][0])
        return
    if command.startswith("api uuid_dump"):
        assert json.loads(got.body)["Unique-ID"] == command.split()[2]
        return
    if command.startswith(("api originate", "bgapi")) and (
        "origination_uuid" not in command or command.startswith("bgapi")
    ):
        # generated uuids (api originate without origination_uuid, bgapi
        # without a Job-UUID header, or with one pushed into the next frame)
        assert re.fullmatch(_any_uuid(expected.body), got.body), (command, got.body)
        assert set(got.headers) == set(expected.headers)
        for key, value in expected.headers.items():
            assert re.fullmatch(_any_uuid(value), got.headers[key]), (command, key)
        return
    if command.startswith("api originate") and expected.body.startswith("+OK ") and expected.body[4:40] not in command:
        # a duplicate origination_uuid: FreeSWITCH carries on with a random one
        assert re.fullmatch(r"\+OK %s\n" % UUID, got.body)
        return
    assert (got.headers, got.body) == (expected.headers, expected.body), command


def _replay(path: Path) -> None:
    # The replay drops the recording's pauses, so originates the real switch
    # saw spread over seconds arrive within one: lift the throttle, except
    # where the recording reads the limits back (09: fsctl sps).
    sps = 30 if path.stem.startswith("09") else 100_000
    switch = FakeSwitch(hostname="vm", ring_time=0.0, scenario=DIALPLAN, auth_timeout=0.2, sps=sps)
    switch.start()
    conns: dict[str, _Conn] = {}
    commands: dict[str, list[str]] = defaultdict(list)
    checked = 0
    try:
        for entry in _load(path):
            conn = entry.get("conn", "")
            note = entry.get("socket") or entry.get("note") or ""
            if "dir" not in entry:
                if note.startswith("TCP connected"):
                    conns[conn] = _Conn(switch.address)
                elif "half-closes" in note:
                    conns[conn].sock.shutdown(socket.SHUT_WR)
                elif "connection closed by FreeSWITCH" in note:
                    c = conns[conn]
                    while c.next_reply() is not None:
                        pass
                    assert c.eof
                elif "SIGTERM" in note:
                    switch.shutdown_notice()
                elif "SIGKILL" in note:
                    switch.drop_connections()
                    switch.stop()
                elif "while FreeSWITCH is down" in note:
                    with pytest.raises(OSError):
                        socket.create_connection(switch.address, timeout=1).close()
                continue
            if entry["dir"] == "C":
                # let earlier originates create their channels first, as the
                # recording's pauses did
                assert switch.wait_until(lambda: switch.in_flight == 0, 15)
                conns[conn].sock.sendall(entry["data"].encode("utf-8"))
                # a line break ends a command frame: one entry can hold two (08)
                for part in entry["data"].split("\n\n"):
                    if part.strip("\n"):
                        commands[conn].append(part.strip("\n"))
                continue
            expected = _frames(entry["data"])[0]
            if _is_event(expected):
                continue
            got = conns[conn].next_reply()
            assert got is not None, (path.name, conn, entry["data"][:80])
            command = ""
            if expected.content_type not in ("auth/request", "text/disconnect-notice"):
                command = commands[conn].pop(0)
            _check_reply(command.split("\n")[0], expected, got)
            checked += 1
    finally:
        for c in conns.values():
            c.sock.close()
        switch.stop()
    assert checked


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_replay(path: Path) -> None:
    _replay(path)

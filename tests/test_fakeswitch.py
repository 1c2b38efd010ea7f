"""The ESL simulator driven over raw sockets, frame by frame."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import gevent
import pytest
from gevent import socket

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.fakeswitch.listener import EventFilter, filter_passes, header_lookup
from eslengine.protocol import (
    API_RESPONSE,
    COMMAND_REPLY,
    DISCONNECT_NOTICE,
    EVENT_JSON,
    EVENT_PLAIN,
    GOODBYE,
    SHUTDOWN_NOTICE,
    Event,
    Frame,
    FrameReader,
    encode_command,
    parse_event,
)

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"


_open: list[Client] = []


class Client:
    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=2)
        _open.append(self)
        self.reader = FrameReader()
        self.frames: list[Frame] = []
        self.eof = False

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, command: str, **headers: str) -> None:
        self.sock.sendall(encode_command(command, {k.replace("_", "-"): v for k, v in headers.items()}))

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.eof:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, OSError):
            return False
        if not data:
            self.eof = True
            return False
        self.reader.feed(data)
        self.frames.extend(self.reader.frames())
        return True

    def frame(self, timeout: float = 2.0) -> Frame:
        deadline = time.monotonic() + timeout
        while not self.frames:
            if not self._fill(deadline):
                raise AssertionError("no frame within %.1fs (eof=%s)" % (timeout, self.eof))
        return self.frames.pop(0)

    def reply(self, timeout: float = 2.0) -> Frame:
        """The next frame that is not an event."""
        deadline = time.monotonic() + timeout
        while True:
            for i, f in enumerate(self.frames):
                if f.content_type not in (EVENT_PLAIN, EVENT_JSON):
                    return self.frames.pop(i)
            if not self._fill(deadline):
                raise AssertionError("no reply within %.1fs" % timeout)

    def events_until(self, predicate, timeout: float = 2.0) -> list[Event]:
        """Events (in order) up to and including the first that matches."""
        deadline = time.monotonic() + timeout
        seen: list[Event] = []
        while True:
            while self.frames:
                f = self.frames[0]
                if f.content_type not in (EVENT_PLAIN, EVENT_JSON):
                    break
                self.frames.pop(0)
                ev = parse_event(f)
                seen.append(ev)
                if predicate(ev):
                    return seen
            if self.frames and self.frames[0].content_type not in (EVENT_PLAIN, EVENT_JSON):
                self.frames.append(self.frames.pop(0))
                if all(fr.content_type not in (EVENT_PLAIN, EVENT_JSON) for fr in self.frames):
                    if not self._fill(deadline):
                        raise AssertionError("event not seen; got %s" % [e.name for e in seen])
                continue
            if not self._fill(deadline):
                raise AssertionError("event not seen; got %s" % [(e.name, e.get("Unique-ID")) for e in seen])

    def wait_eof(self, timeout: float = 2.0) -> list[Frame]:
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline) and not self.eof:
                raise AssertionError("connection not closed")
        out, self.frames = self.frames, []
        return out

    def auth(self, password: str = "ClueCon") -> None:
        assert self.frame().content_type == "auth/request"
        self.send("auth " + password)
        assert self.reply().headers["Reply-Text"] == "+OK accepted"

    def api(self, cmd: str) -> str:
        self.send("api " + cmd)
        f = self.reply()
        assert f.content_type == API_RESPONSE, f
        return f.body

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


@pytest.fixture
def switch() -> Iterator[FakeSwitch]:
    fs = FakeSwitch(ring_time=0.05, auth_timeout=0.3)
    fs.start()
    yield fs
    fs.stop()


@pytest.fixture
def client(switch: FakeSwitch) -> Iterator[Client]:
    c = Client(switch.address)
    c.auth()
    yield c
    c.close()


def events_client(switch: FakeSwitch, fmt: str = "plain", names: str = "ALL") -> Client:
    c = Client(switch.address)
    c.auth()
    c.send("event %s %s" % (fmt, names))
    assert c.reply().headers["Reply-Text"] == "+OK event listener enabled " + fmt
    return c


def names_and_channels(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.name, e.get("Channel-Name") or "") for e in events]


# -- protocol ------------------------------------------------------------------

def test_auth_errors_and_blank_line(switch: FakeSwitch) -> None:
    c = Client(switch.address)
    assert c.frame().content_type == "auth/request"
    c.send("api status")
    assert c.reply().headers["Reply-Text"] == "-ERR command not found"
    c.send("auth ClueCon")
    assert c.reply().headers["Reply-Text"] == "+OK accepted"
    c.send("auth ClueCon")
    assert c.reply().headers["Reply-Text"] == "-ERR command not found"
    c.raw(b"\n\n")
    c.send("api echo after-blank")
    assert c.reply().body == "after-blank"   # the blank line got no reply of its own


def test_wrong_password_gets_notice_and_close(switch: FakeSwitch) -> None:
    c = Client(switch.address)
    c.frame()
    c.send("auth nope")
    assert c.reply().headers["Reply-Text"] == "-ERR invalid"
    rest = c.wait_eof()
    assert [(f.content_type, f.body) for f in rest] == [(DISCONNECT_NOTICE, GOODBYE)]
    assert len(GOODBYE) == 67


def test_preauth_idle_timeout(switch: FakeSwitch) -> None:
    c = Client(switch.address)
    c.frame()
    rest = c.wait_eof(timeout=2)
    assert [f.body for f in rest] == [GOODBYE]


def test_exit_and_half_close(switch: FakeSwitch, client: Client) -> None:
    client.send("exit")
    assert client.reply().headers["Reply-Text"] == "+OK bye"
    assert [f.body for f in client.wait_eof()] == [GOODBYE]
    other = Client(switch.address)
    other.auth()
    other.sock.shutdown(socket.SHUT_WR)
    assert [f.body for f in other.wait_eof()] == [GOODBYE]


def test_userauth_permissions(switch: FakeSwitch) -> None:
    switch.users["ops@example.com"] = ("pw", frozenset({"status"}), None)
    c = Client(switch.address)
    c.frame()
    c.send("userauth ops@example.com:pw")
    assert c.reply().headers["Reply-Text"] == "+OK accepted"
    assert c.api("status").startswith("UP ")
    c.send("api version")
    assert c.reply().headers["Reply-Text"] == "-ERR permission denied"
    bad = Client(switch.address)
    bad.frame()
    bad.send("userauth ops@example.com:wrong")
    assert bad.reply().headers["Reply-Text"] == "-ERR invalid"
    bad.wait_eof()


def test_command_replies(client: Client) -> None:
    expect = [
        ("event plain NOSUCH_EVENT", "-ERR no keywords supplied"),
        ("event", "-ERR no keywords supplied"),
        ("event bogusformat CHANNEL_CREATE", "+OK event listener enabled plain"),
        ("nixevent", "-ERR no keywords supplied"),
        ("nixevent CHANNEL_CREATE", "+OK events nixed"),
        ("noevents", "+OK no longer listening for events"),
        ("noevents", "-ERR not listening for events"),
        ("filter Unique-ID abc", "+OK filter added. [Unique-ID]=[abc]"),
        ("filter delete Unique-ID", "+OK filter deleted. [Unique-ID][]"),
        ("filter delete all", "+OK filter deleted. [all][]"),
        ("filter", "-ERR command not found"),
        ("filter Unique-ID", "-ERR invalid syntax"),
        ("filter add Job-UUID /^ab-/", "+OK filter added. [Job-UUID]=[/^ab-/]"),
        ("filter delete Job-UUID /^ab-/", "+OK filter deleted. [Job-UUID][/^ab-/]"),
        ("divert_events on", "-ERR not controlling a session."),
        ("linger", "-ERR not controlling a session"),
        ("log info", "+OK log level info [6]"),
        ("log bogus", "-ERR invalid log level"),
        ("nolog", "+OK no longer logging"),
        ("nolog", "-ERR not loging"),
        ("myevents 00000000-0000-0000-0000-000000000000", "+OK Events Enabled"),
        ("nosuchcommand", "-ERR command not found"),
    ]
    for command, text in expect:
        client.send(command)
        f = client.reply()
        assert (command, f.content_type, f.headers["Reply-Text"]) == (command, COMMAND_REPLY, text)


def test_api_replies(client: Client) -> None:
    assert client.api("nosuchapi foo") == "-ERR nosuchapi Command not found!\n"
    assert client.api("uuid_kill %s" % A) == "-ERR No such channel!\n"
    assert client.api("uuid_exists %s" % A) == "false"
    assert client.api("uuid_getvar %s x" % A) == "-ERR No such channel!\n"
    assert client.api("originate").startswith("-USAGE: <call url> <exten>|&<application_name>")
    assert client.api("show calls as json") == '{"row_count": 0}\n'
    assert client.api("show channels count") == "\n0 total.\n"
    assert client.api("hupall NORMAL_CLEARING") == "+OK hangup all channels with cause NORMAL_CLEARING\n"
    assert client.api("fsctl sps") == "+OK sessions per second: 30\n"
    assert client.api("fsctl sps 50") == "+OK sessions per second: 50\n"
    assert client.api("fsctl max_sessions 7") == "+OK max sessions: 7\n"
    assert client.api("version") == "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)\n"
    assert client.api("global_getvar hostname") == "fakeswitch"
    assert client.api("global_getvar nosuchvar") == "-ERR no reply\n"
    assert client.api("echo hi there") == "hi there"
    assert client.api("uuid_broadcast %s x both" % A) == "-ERR invalid uuid\n"
    assert client.api("sched_hangup +5 %s" % A) == "-ERR No such channel!\n"
    status = client.api("status")
    assert "0 session(s) per Sec out of max 50, peak 0, last 5min 0 \n" in status
    assert "7 session(s) max\n" in status


def test_bgapi_with_and_without_job_uuid(switch: FakeSwitch) -> None:
    c = events_client(switch, names="BACKGROUND_JOB")
    c.send("bgapi status", Job_UUID="job-1")
    r = c.reply()
    assert r.headers["Reply-Text"] == "+OK Job-UUID: job-1" and r.headers["Job-UUID"] == "job-1"
    ev = c.events_until(lambda e: e.name == "BACKGROUND_JOB")[-1]
    assert ev.get("Job-UUID") == "job-1" and ev.get("Job-Command") == "status"
    assert ev.body.startswith("UP ")
    c.send("bgapi echo x y")
    r = c.reply()
    job = r.headers["Job-UUID"]
    assert r.headers["Reply-Text"] == "+OK Job-UUID: " + job and len(job) == 36
    ev = c.events_until(lambda e: e.name == "BACKGROUND_JOB")[-1]
    assert (ev.get("Job-UUID"), ev.get("Job-Command-Arg"), ev.body) == (job, "x y", "x y")


def test_newline_in_command_runs_a_second_command(switch: FakeSwitch) -> None:
    c = events_client(switch, names="BACKGROUND_JOB")
    c.raw(b"bgapi originate {origination_uuid=%s}loopback/1000/default &park()\n\n"
          b"api echo INJECTED/default &park()\nJob-UUID: client-job\n\n" % A.encode())
    r = c.reply()
    assert r.headers["Reply-Text"].startswith("+OK Job-UUID: ")
    assert r.headers["Job-UUID"] != "client-job"
    assert c.reply().body == "INJECTED/default &park()"
    ev = c.events_until(lambda e: e.name == "BACKGROUND_JOB")[-1]
    assert ev.body == "+OK %s\n" % A and ev.get("Job-UUID") != "client-job"
    # One originate received, one finished (the api command is neither).
    assert len(switch.board.stats.originate_log) == 1 and len(switch.board.stats.result_log) == 1
    assert switch.board.stats.result_log[0] >= switch.board.stats.originate_log[0][0]


# -- calls -----------------------------------------------------------------------

STD = ("{origination_uuid=%s,origination_caller_id_number=15551234567,"
       "origination_caller_id_name='Click To Call',my_campaign=c42,ignore_early_media=true,"
       "originate_timeout=20,sip_h_X-Job-Id=j1}")


def test_successful_originate_order_and_headers(switch: FakeSwitch) -> None:
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE")
    c.send("bgapi originate " + STD % A + "loopback/1000/default &park()", Job_UUID="j-1")
    assert c.reply().headers["Reply-Text"] == "+OK Job-UUID: j-1"
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    assert names_and_channels(evs) == [
        ("CHANNEL_CREATE", "loopback/1000-a"), ("CHANNEL_CREATE", "loopback/1000-b"),
        ("CHANNEL_ANSWER", "loopback/1000-a"), ("CHANNEL_ANSWER", "loopback/1000-b"),
        ("BACKGROUND_JOB", ""),
    ]
    create_a = evs[0]
    assert create_a.get("Unique-ID") == A and create_a.get("Call-Direction") == "outbound"
    assert create_a.variable("sip_h_X-Job-Id") == "j1"
    assert create_a.variable("origination_caller_id_name") == "Click To Call"
    assert create_a.get("Caller-Caller-ID-Name") == "Click To Call"
    assert create_a.variable("other_loopback_leg_uuid") == evs[1].get("Unique-ID")
    assert evs[1].variable("loopback_leg") == "B" and evs[1].get("Call-Direction") == "inbound"
    job = evs[-1]
    assert job.body == "+OK %s\n" % A and job.get("Job-Command") == "originate"
    assert job.get("Job-Command-Arg") == STD % A + "loopback/1000/default &park()"
    assert c.api("uuid_getvar %s my_campaign" % A) == "c42"
    assert c.api("uuid_exists %s" % A) == "true"
    rows = json.loads(c.api("show calls as json"))
    assert rows["row_count"] == 2 and {r["name"] for r in rows["rows"]} == {"loopback/1000-a", "loopback/1000-b"}
    assert c.api("uuid_kill %s" % A) == "+OK\n"
    evs = c.events_until(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Channel-Name") == "loopback/1000-b")
    assert [e.name for e in evs] == ["CHANNEL_HANGUP", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP_COMPLETE"]
    hc = evs[2]
    assert hc.get("Hangup-Cause") == "NORMAL_CLEARING" and hc.variable("hangup_cause") == "NORMAL_CLEARING"
    # the caller/callee swap on the -a leg once it runs its application
    assert hc.get("Caller-Caller-ID-Name") == "Outbound Call" and hc.get("Caller-Callee-ID-Name") == "Click To Call"
    assert hc.get("Caller-Orig-Caller-ID-Number") == "15551234567"
    assert switch.wait_until(lambda: not switch.channels, 1)
    rec = switch.originates_with("my_campaign", "c42")
    assert len(rec) == 1 and rec[0].job_uuid == "j-1" and rec[0].result == "+OK %s\n" % A


def test_json_events_and_url_encoding(switch: FakeSwitch) -> None:
    c = events_client(switch, fmt="json", names="BACKGROUND_JOB")
    c.send("bgapi originate " + STD % A + "loopback/1000/default &park()", Job_UUID="j-2")
    c.reply()
    f = None
    while f is None or f.content_type != EVENT_JSON:
        f = c.frame()
    data = json.loads(f.body)
    assert data["Job-Command-Arg"] == STD % A + "loopback/1000/default &park()"
    assert data["_body"] == "+OK %s\n" % A and not f.body.endswith("\n")
    p = events_client(switch, names="CHANNEL_HANGUP")
    p.api("uuid_kill %s" % A)
    raw = None
    while raw is None or raw.content_type != EVENT_PLAIN:
        raw = p.frame()
    assert "variable_origination_caller_id_name: Click%20To%20Call\n" in raw.body


@pytest.mark.parametrize(
    "dest, cause",
    [("1486", "USER_BUSY"), ("404", "UNALLOCATED_NUMBER"), ("1503", "NORMAL_TEMPORARY_FAILURE")],
)
def test_failures_by_destination(switch: FakeSwitch, client: Client, dest: str, cause: str) -> None:
    assert client.api("originate {origination_uuid=%s}loopback/%s/default &park()" % (A, dest)) == "-ERR %s\n" % cause
    assert switch.wait_until(lambda: not switch.channels, 1)


def test_endpoints(switch: FakeSwitch, client: Client) -> None:
    assert client.api("originate error/user_busy &park()") == "-ERR USER_BUSY\n"
    assert client.api("originate nosuch/endpoint &park()") == "-ERR CHAN_NOT_IMPLEMENTED\n"
    assert client.api("originate {origination_uuid=%s}sofia/gateway/gw/15551230486 &park()" % A) == "-ERR USER_BUSY\n"
    assert client.api("originate {origination_uuid=%s}user/1000@example.com &park()" % A) == "+OK %s\n" % A
    ch = switch.channels[A]
    assert ch.name == "user/1000@example.com" and ch.peer is None
    assert len(switch.channels) == 1


def test_no_answer_after_originate_timeout(switch: FakeSwitch) -> None:
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_PROGRESS CHANNEL_HANGUP_COMPLETE")
    started = time.monotonic()
    c.send("bgapi originate {origination_uuid=%s,originate_timeout=0.3}loopback/1408/default &park()" % A)
    c.reply()
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    assert time.monotonic() - started >= 0.25
    assert evs[-1].body == "-ERR NO_ANSWER\n"
    assert [e.name for e in evs[:2]] == ["CHANNEL_PROGRESS", "CHANNEL_PROGRESS"]
    hcs = [e for e in evs if e.name == "CHANNEL_HANGUP_COMPLETE"]
    assert {e.get("Hangup-Cause") for e in hcs} == {"NO_ANSWER"}


def test_early_media_returns_before_answer(switch: FakeSwitch) -> None:
    switch.board.scenario = Scenario.from_dict({"rules": [{"match": "^1183$", "outcome": "early_media", "after": 0.3}]})
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER")
    c.send("bgapi originate {origination_uuid=%s,ignore_early_media=false}loopback/1183/default &park()" % A)
    c.reply()
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    assert [e.name for e in evs] == ["CHANNEL_PROGRESS_MEDIA", "CHANNEL_PROGRESS_MEDIA", "BACKGROUND_JOB"]
    later = c.events_until(lambda e: e.name == "CHANNEL_ANSWER")
    assert later[-1].get("Unique-ID") == A
    c.send("bgapi originate {origination_uuid=%s,ignore_early_media=true}loopback/1183/default &park()" % B)
    c.reply()
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    assert "CHANNEL_ANSWER" in [e.name for e in evs] and evs[-1].body == "+OK %s\n" % B


def test_duplicate_origination_uuid_gets_a_random_one(client: Client) -> None:
    assert client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % A) == "+OK %s\n" % A
    second = client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % A)
    assert second.startswith("+OK ") and second != "+OK %s\n" % A and len(second) == 41


def test_failover_reuses_uuid(switch: FakeSwitch) -> None:
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE")
    c.send("bgapi originate {origination_uuid=%s}loopback/1486|loopback/1000/default &park()" % A)
    c.reply()
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    ids = [(e.name, e.get("Unique-ID"), e.get("Hangup-Cause")) for e in evs if e.get("Unique-ID") == A]
    assert ids == [("CHANNEL_CREATE", A, None), ("CHANNEL_HANGUP_COMPLETE", A, "USER_BUSY"), ("CHANNEL_CREATE", A, None)]
    assert evs[-1].body == "+OK %s\n" % A
    assert switch.channels[A].dest == "1000"


def test_simultaneous_first_answer_wins(switch: FakeSwitch) -> None:
    switch.board.scenario = Scenario.from_dict({"rules": [{"match": "^2000$", "outcome": "answer", "after": 0.5}]})
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")
    c.send("bgapi originate {origination_uuid=%s}loopback/2000,loopback/1000/default &park()" % A)
    c.reply()
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    ok, _, uuid = evs[-1].body.partition(" ")
    assert ok == "+OK" and uuid.strip() != A       # the first leg got the uuid, the second answered
    assert "LOSE_RACE" in {e.get("Hangup-Cause") for e in evs}  # a ringing loser, as on a real switch
    assert A not in switch.channels


def test_bridge_event_order_and_variables(switch: FakeSwitch) -> None:
    switch.board.scenario = Scenario.from_dict({"rules": [{"match": "^1001$", "outcome": "answer_then_hangup", "talk": 0.1}]})
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_BRIDGE "
                                     "CHANNEL_UNBRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE")
    c.send("bgapi originate " + STD % A + "loopback/1000/default &bridge({origination_uuid=%s,b_leg_var=customer}"
           "loopback/1001/default)" % B, Job_UUID="j-b")
    c.reply()
    evs = c.events_until(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == B, timeout=3)
    assert names_and_channels(evs) == [
        ("CHANNEL_CREATE", "loopback/1000-a"), ("CHANNEL_CREATE", "loopback/1000-b"),
        ("CHANNEL_ANSWER", "loopback/1000-a"), ("CHANNEL_ANSWER", "loopback/1000-b"),
        ("BACKGROUND_JOB", ""),
        ("CHANNEL_CREATE", "loopback/1001-a"), ("CHANNEL_CREATE", "loopback/1001-b"),
        ("CHANNEL_ANSWER", "loopback/1001-a"), ("CHANNEL_ANSWER", "loopback/1001-b"),
        ("CHANNEL_BRIDGE", "loopback/1000-a"),
        ("CHANNEL_HANGUP", "loopback/1001-b"), ("CHANNEL_HANGUP", "loopback/1001-a"),
        ("CHANNEL_HANGUP_COMPLETE", "loopback/1001-b"),
        ("CHANNEL_UNBRIDGE", "loopback/1000-a"),
        ("CHANNEL_HANGUP", "loopback/1000-a"), ("CHANNEL_HANGUP", "loopback/1000-b"),
        ("CHANNEL_HANGUP_COMPLETE", "loopback/1000-a"), ("CHANNEL_HANGUP_COMPLETE", "loopback/1000-b"),
        ("CHANNEL_HANGUP_COMPLETE", "loopback/1001-a"),
    ]
    bridge = evs[9]
    assert (bridge.get("Bridge-A-Unique-ID"), bridge.get("Bridge-B-Unique-ID")) == (A, B)
    assert bridge.get("Other-Type") == "originatee" and bridge.get("Other-Leg-Unique-ID") == B
    b_create = evs[5]
    assert b_create.variable("b_leg_var") == "customer" and b_create.variable("sip_h_X-Job-Id") is None
    assert b_create.variable("originator") == A and b_create.variable("originating_leg_uuid") == A
    assert evs[0].variable("b_leg_var") is None
    assert {e.get("Hangup-Cause") for e in evs if e.name == "CHANNEL_HANGUP"} == {"NORMAL_CLEARING"}
    a_done = evs[16]
    assert a_done.variable("originate_disposition") == "SUCCESS"
    assert a_done.variable("last_bridge_hangup_cause") == "NORMAL_CLEARING"


def test_failed_bridge_ends_a_leg_with_b_cause(switch: FakeSwitch) -> None:
    c = events_client(switch, names="BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")
    c.send("bgapi originate {origination_uuid=%s}loopback/1000/default &bridge(loopback/1486/default)" % A)
    c.reply()
    evs = c.events_until(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == A)
    assert evs[0].name == "BACKGROUND_JOB" and evs[0].body == "+OK %s\n" % A
    a_done = evs[-1]
    assert a_done.get("Hangup-Cause") == "USER_BUSY"
    assert a_done.variable("originate_disposition") == "USER_BUSY"
    assert a_done.variable("last_bridge_hangup_cause") == "USER_BUSY"


def test_sps_throttle_and_loopback_costs_two(switch: FakeSwitch, client: Client) -> None:
    assert client.api("fsctl sps 5") == "+OK sessions per second: 5\n"
    # wait for a fresh second so the whole burst lands in one
    start = int(time.time()) + 1
    gevent.sleep(max(0.0, start - time.time()))
    results = [client.api("originate user/%d &park()" % n) for n in range(6)]
    if int(time.time()) != start:
        pytest.skip("burst crossed a second boundary")
    assert [r.startswith("+OK") for r in results] == [True] * 4 + [False] * 2
    assert results[-1] == "-ERR DESTINATION_OUT_OF_ORDER\n"
    assert switch.stats.refused_over_limit == 2
    client.api("hupall")
    client.api("fsctl sps 1000")
    # like FreeSWITCH, a new sps value takes effect at the next second
    assert switch.wait_until(lambda: int(time.time()) > start, 1.5)
    client.api("fsctl max_sessions 3")
    assert client.api("originate loopback/1000/default &park()").startswith("+OK")
    assert len(switch.channels) == 2
    # one session left: the -a leg is created, the -b leg is refused; the call
    # then sits until its originate timeout and fails NO_ANSWER
    assert client.api("originate {originate_timeout=0.2}loopback/1000/default &park()") == "-ERR NO_ANSWER\n"
    assert client.api("originate user/1 &park()").startswith("+OK")
    assert len(switch.channels) == 3
    assert client.api("originate user/2 &park()") == "-ERR DESTINATION_OUT_OF_ORDER\n"


def test_hupall_with_variable_and_sched_hangup(switch: FakeSwitch, client: Client) -> None:
    client.api("originate {origination_uuid=%s,my_campaign=c42}loopback/1000/default &park()" % A)
    client.api("originate {origination_uuid=%s,my_campaign=c99}loopback/1000/default &park()" % B)
    assert client.api("hupall MANAGER_REQUEST my_campaign c42") == \
        "+OK hangup all channels matching [my_campaign]=[c42] with cause: MANAGER_REQUEST\n"
    assert A not in switch.channels and B in switch.channels and len(switch.channels) == 2
    c = events_client(switch, names="CHANNEL_HANGUP_COMPLETE")
    assert client.api("sched_hangup +0 %s ALLOTTED_TIMEOUT" % B) == "+OK\n"
    ev = c.events_until(lambda e: e.get("Unique-ID") == B)[-1]
    assert ev.get("Hangup-Cause") == "ALLOTTED_TIMEOUT"


def test_broadcast_emits_execute(switch: FakeSwitch, client: Client) -> None:
    client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % A)
    c = events_client(switch, names="CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE")
    assert client.api("uuid_broadcast %s tone_stream://%%(200,0,800) both" % A) == "+OK Message sent\n"
    ev = c.events_until(lambda e: e.name == "CHANNEL_EXECUTE_COMPLETE")[-1]
    assert ev.get("Application-Response") == "FILE PLAYED"
    assert client.api("sched_broadcast +1 %s x aleg" % A) == "+OK Message scheduled\n"


def test_filter_and_myevents(switch: FakeSwitch, client: Client) -> None:
    c = events_client(switch, names="CHANNEL_CREATE")
    c.send("filter Unique-ID " + B)
    c.reply()
    client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % A)
    client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % B)
    evs = c.events_until(lambda e: True)
    assert [e.get("Unique-ID") for e in evs] == [B]
    m = Client(switch.address)
    m.auth()
    m.send("myevents " + A)
    assert m.reply().headers["Reply-Text"] == "+OK Events Enabled"
    m.send("myevents " + A)
    assert m.reply().headers["Reply-Text"] == "-ERR aready enabled."
    client.api("uuid_kill " + A)
    evs = m.events_until(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE")
    assert {e.get("Unique-ID") for e in evs} == {A}
    last = m.wait_eof()[-1]
    assert last.headers.get("Controlled-Session-UUID") == A and last.body == GOODBYE


@pytest.mark.parametrize("filters, headers, passes", [
    ([], {"unique-id": "x"}, False),
    ([("Unique-ID", "x")], {"unique-id": "x"}, True),
    ([("unique-id", "X")], {"Unique-ID": "x"}, True),  # names and values in any case
    ([("Unique-ID", "y")], {"unique-id": "x"}, False),
    ([("Caller-Context", "x")], {"unique-id": "x"}, False),  # a header the event lacks
    ([("Unique-ID", "y"), ("variable_w", "w1")], {"unique-id": "x", "variable_w": "w1"}, True),
    ([("variable_w", "w1"), ("Unique-ID", "-x")], {"unique-id": "x", "variable_w": "w1"}, False),
    ([("Unique-ID", "-x")], {"unique-id": "y"}, False),  # no positive match
    ([("Unique-ID", "+ x")], {"unique-id": "x"}, True),
    ([("Job-UUID", "/^ab12-/")], {"job-uuid": "ab12-0000"}, True),
    ([("Job-UUID", "/^ab12-/")], {"job-uuid": "cd34-ab12-"}, False),
    ([("Job-UUID", "/AB12/i")], {"job-uuid": "x-ab12"}, True),
    ([("Job-UUID", "/AB12/")], {"job-uuid": "x-ab12"}, False),
    ([("Job-UUID", "/^ab12-")], {"job-uuid": "ab12-0000"}, False),  # no closing slash
    ([("Job-UUID", "/(/")], {"job-uuid": "("}, False),  # does not compile
])
def test_filter_semantics(filters: list[tuple[str, str]], headers: dict[str, str], passes: bool) -> None:
    parsed = [EventFilter(name, value) for name, value in filters]
    assert filter_passes(parsed, header_lookup(list(headers.items()))) is passes


def test_filters_select_a_workers_events_and_jobs(switch: FakeSwitch) -> None:
    """A variable filter passes the channels that carry it; a regex on
    Job-UUID passes only the BACKGROUND_JOBs of this client's bgapi."""
    c = events_client(switch, names="CHANNEL_CREATE BACKGROUND_JOB")
    for command in ("filter variable_owner w1", "filter Job-UUID /^w1-/"):
        c.send(command)
        assert c.reply().headers["Reply-Text"].startswith("+OK filter added.")
    other = Client(switch.address)
    other.auth()
    c.send("bgapi originate {origination_uuid=%s,owner=w1}loopback/1000/default &park()" % A, Job_UUID="w1-1")
    assert c.reply().headers["Reply-Text"] == "+OK Job-UUID: w1-1"
    other.send("bgapi originate {origination_uuid=%s,owner=w2}loopback/1000/default &park()" % B, Job_UUID="w2-1")
    assert other.reply().headers["Reply-Text"] == "+OK Job-UUID: w2-1"
    gevent.sleep(0.3)
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    # The loopback pair's -b leg carries the -a leg's variables.
    assert [e.name for e in evs] == ["CHANNEL_CREATE", "CHANNEL_CREATE", "BACKGROUND_JOB"]
    assert evs[0].get("Unique-ID") == A and {e.get("variable_owner") for e in evs[:2]} == {"w1"}
    assert evs[-1].get("Job-UUID") == "w1-1"
    c.send("filter delete variable_owner w1")
    assert c.reply().headers["Reply-Text"] == "+OK filter deleted. [variable_owner][w1]"
    c.send("bgapi originate {origination_uuid=%s,owner=w1}loopback/1000/default &park()" % C, Job_UUID="w1-2")
    c.reply()
    evs = c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    assert [e.name for e in evs] == ["BACKGROUND_JOB"]


def test_event_format_applies_to_whole_connection(switch: FakeSwitch, client: Client) -> None:
    c = events_client(switch, names="CHANNEL_CREATE")
    c.send("event json CHANNEL_ANSWER")
    c.reply()
    client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % A)
    kinds = {c.frame().content_type for _ in range(4)}
    assert kinds == {EVENT_JSON}


def test_fault_injection(switch: FakeSwitch, client: Client) -> None:
    client.api("originate {origination_uuid=%s}loopback/1000/default &park()" % A)
    switch.stall(0.3)
    started = time.monotonic()
    assert client.api("echo late") == "late"
    assert time.monotonic() - started >= 0.25
    switch.drop_connections()
    assert client.wait_eof() == []
    watcher = events_client(switch, names="CHANNEL_HANGUP")
    idle = Client(switch.address)
    idle.auth()
    switch.shutdown_notice()
    evs = watcher.events_until(lambda e: e.name == "CHANNEL_HANGUP")
    assert evs[-1].get("Hangup-Cause") == "SYSTEM_SHUTDOWN"
    assert [f.body for f in idle.wait_eof()] == [SHUTDOWN_NOTICE]
    assert watcher.wait_eof()[-1].body == SHUTDOWN_NOTICE
    with pytest.raises(OSError):
        socket.create_connection(switch.address, timeout=1)


def test_stop_frees_port() -> None:
    fs = FakeSwitch()
    fs.start()
    address = fs.address
    c = Client(address)
    c.frame()
    fs.stop()
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=1)


# -- journal and signals ---------------------------------------------------------

J1 = "cccccccc-0000-4000-8000-000000000003"


def test_record_journals_originates_and_results(tmp_path) -> None:
    path = tmp_path / "received.jsonl"
    fs = FakeSwitch(ring_time=0.05, record=str(path))
    fs.start()
    try:
        c = events_client(fs, names="BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")
        c.send("bgapi originate {origination_uuid=%s,eslengine_job_id=%s,eslengine_attempt=2,eslengine_leg=a}"
               "sofia/gateway/gw/1000 &park()" % (A, J1), Job_UUID="bg-1")
        c.reply()
        c.events_until(lambda e: e.name == "BACKGROUND_JOB")
        assert c.api("uuid_kill %s USER_BUSY" % A) == "+OK\n"
        c.events_until(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE")
        assert c.api("originate {eslengine_job_id=%s}loopback/1486/default &park()" % B) == "-ERR USER_BUSY\n"
        c.send("bgapi originate {eslengine_job_id=%s}loopback/1000/default" % J1, Job_UUID="bg-2")
        c.reply()
        c.events_until(lambda e: e.name == "BACKGROUND_JOB")
    finally:
        fs.stop()
    from eslengine.fakeswitch.journal import read_journal

    entries = read_journal(path)
    hangups = [(e["job_id"], e["attempt"], e["leg"], e["uuid"], e["cause"], e["answered"])
               for e in entries if e["kind"] == "hangup"]
    assert hangups[0] == (J1, "2", "a", A, "USER_BUSY", True)
    assert {h[:2] + h[4:] for h in hangups[1:]} == {(B, None, "USER_BUSY", False)}
    got = [(e["kind"], e["job_id"], e["attempt"], e["bgapi_job_uuid"], e.get("result"))
           for e in entries if e["kind"] != "hangup"]
    assert got[:2] == [("originate", J1, "2", "bg-1", None), ("result", J1, "2", "bg-1", "+OK " + A)]
    assert got[2:4] == [("originate", B, None, None, None), ("result", B, None, None, "-ERR USER_BUSY")]
    assert [g[:4] for g in got[4:]] == [("originate", J1, None, "bg-2"), ("result", J1, None, "bg-2")]
    assert got[5][4].startswith("-USAGE")
    # a second switch on the same file appends
    fs = FakeSwitch(record=str(path))
    fs.start()
    try:
        c = Client(fs.address)
        c.auth()
        c.api("originate {eslengine_job_id=%s}loopback/1503/default &park()" % J1)
    finally:
        fs.stop()
    assert [e["kind"] for e in read_journal(path) if e["kind"] != "hangup"][6:] == ["originate", "result"]


def test_simulator_process_journal_survives_sigkill_and_signals_inject_faults(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from eslengine.fakeswitch.journal import read_journal
    from eslengine.stack import free_port, wait_for_port

    path = tmp_path / "received.jsonl"
    log_path = tmp_path / "switch.log"
    port = free_port()
    argv = [sys.executable, "-m", "eslengine", "fakeswitch", "--bind", "127.0.0.1:%d" % port,
            "--ring-time", "0.01", "--record", str(path), "--stall-seconds", "0.5"]

    def start() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(port, 15, proc)
        return proc

    def log_has(text: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in log_path.read_text():
                return True
            time.sleep(0.02)
        return False

    proc = start()
    try:
        c = Client(("127.0.0.1", port))
        c.auth()
        assert c.api("originate {eslengine_job_id=%s}loopback/1000/default &park()" % J1).startswith("+OK ")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        proc = start()
        c = Client(("127.0.0.1", port))
        c.auth()
        assert c.api("originate {eslengine_job_id=%s,eslengine_attempt=2}loopback/1486/default &park()"
                     % J1) == "-ERR USER_BUSY\n"
        entries = [e for e in read_journal(path) if e["kind"] != "hangup"]
        assert [(e["kind"], e["attempt"]) for e in entries] == [
            ("originate", None), ("result", None), ("originate", "2"), ("result", "2")]
        assert {e["job_id"] for e in entries} == {J1} and entries[0]["pid"] != entries[2]["pid"] == proc.pid

        os.kill(proc.pid, signal.SIGUSR1)
        c.wait_eof()
        c = Client(("127.0.0.1", port))
        c.auth()
        os.kill(proc.pid, signal.SIGUSR2)
        assert log_has("SIGUSR2")
        started = time.monotonic()
        assert c.api("echo late") == "late"
        assert time.monotonic() - started >= 0.3
        c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

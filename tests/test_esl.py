"""eslengine.esl against a scripted event-socket server.

The server side replies with the exact frames a real FreeSWITCH 1.11 sent in
the recorded transcripts (``freeswitch-esl-transcripts/*.json``), so these
tests check the client against real bytes, not against our own encoder.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import gevent.socket
import pytest
from gevent.server import StreamServer
from hypothesis import given, settings
from hypothesis import strategies as st

from eslengine import protocol
from eslengine.config import Node
from eslengine.errors import EslAuthError, EslCommandError, EslConnectionError, EslTimeout
from eslengine.esl import DEFAULT_EVENTS, EslConnection, NodeLink
from eslengine.fakeswitch import FakeSwitch
from eslengine.protocol import Event

TRANSCRIPTS = Path(__file__).resolve().parent / "data" / "transcripts"

# 04a / 04c: the originate the transcripts recorded.
JOB_PLAIN = "5dd2c00e-e66a-4d6e-805a-f23715c5a6f9"
JOB_JSON = "b2ce823d-f503-445b-9400-a878f3f21bce"
A_UUID_PLAIN = "dab2bbb6-10f6-470c-8776-3367de375d65"
A_UUID_JSON = "d4df3078-195a-480c-b252-4d6c16dafcb1"


# -- transcripts -------------------------------------------------------------


@cache
def _entries(name: str) -> list[dict[str, Any]]:
    path = TRANSCRIPTS / name
    if not path.exists():
        raise FileNotFoundError(path)
    entries: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["entries"]
    return entries


def server_frames(name: str, conn: str = "conn1") -> list[str]:
    """Every frame FreeSWITCH sent on ``conn``, in order."""
    return [e["data"] for e in _entries(name) if e.get("dir") == "S" and e.get("conn") == conn]


def client_frames(name: str, conn: str = "conn1") -> list[str]:
    return [e["data"] for e in _entries(name) if e.get("dir") == "C" and e.get("conn") == conn]


def replies_to(name: str, command: str, count: int = 1) -> list[str]:
    """The ``count`` frames FreeSWITCH sent right after the client sent ``command``."""
    entries = _entries(name)
    for i, entry in enumerate(entries):
        if entry.get("dir") == "C" and entry["data"] == command + "\n\n":
            conn = entry["conn"]
            after = [e["data"] for e in entries[i + 1 :] if e.get("dir") == "S" and e.get("conn") == conn]
            return after[:count]
    raise AssertionError("%s: %r not in transcript" % (name, command))


def body_of(frame: str) -> str:
    return frame.partition("\n\n")[2]


def greeting() -> str:
    return server_frames("01_auth.json")[0]


def auth_accepted() -> str:
    return replies_to("01_auth.json", "auth ClueCon")[0]


def plain_listener_enabled() -> str:
    return server_frames("04a_originate_plain_jobuuid.json")[4]


# -- the scripted server -----------------------------------------------------


class PeerGone(Exception):
    pass


class Peer:
    """The server's end of one client connection, recording every command."""

    def __init__(self, sock: gevent.socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.commands: list[str] = []
        self.closed_by_client = gevent.event.Event()

    def send(self, *frames: str) -> None:
        self.sock.sendall("".join(frames).encode("utf-8"))

    def read_command(self, timeout: float = 5.0) -> str:
        with gevent.Timeout(timeout):
            while b"\n\n" not in self.buf:
                data = self.sock.recv(65536)
                if not data:
                    self.closed_by_client.set()
                    raise PeerGone()
                self.buf += data
        raw, _, self.buf = self.buf.partition(b"\n\n")
        command = raw.decode("utf-8")
        self.commands.append(command)
        return command

    def hold(self, timeout: float = 10.0) -> None:
        """Read (and record) commands without answering until the client closes."""
        while True:
            self.read_command(timeout)

    def prelude(self, subscribed: str | None = None) -> None:
        self.send(greeting())
        self.read_command()
        self.send(auth_accepted())
        self.read_command()
        self.send(subscribed or plain_listener_enabled())


Script = Callable[[Peer], None]


class ScriptedSwitch:
    def __init__(self, script: Script, port: int = 0) -> None:
        self.script = script
        self.server = StreamServer(("127.0.0.1", port), self._handle)
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def node(self, password: str = "ClueCon", user: str = "") -> Node:
        return Node("127.0.0.1", self.port, password, name="fs-test", user=user)

    def stop(self) -> None:
        self.server.stop(timeout=1)

    def _handle(self, sock: gevent.socket.socket, _addr: object) -> None:
        peer = Peer(sock)
        self.peers.append(peer)
        try:
            self.script(peer)
        except PeerGone:
            pass
        except gevent.GreenletExit:
            raise
        except BaseException as exc:  # a script failure fails the test at teardown
            self.errors.append(exc)
        finally:
            sock.close()


@pytest.fixture
def switch() -> Iterator[Callable[..., ScriptedSwitch]]:
    made: list[ScriptedSwitch] = []

    def make(script: Script, port: int = 0) -> ScriptedSwitch:
        sw = ScriptedSwitch(script, port)
        sw.server.start()
        made.append(sw)
        return sw

    yield make
    for sw in made:
        sw.stop()
    assert [e for sw in made for e in sw.errors] == []


@pytest.fixture
def conns() -> Iterator[list[EslConnection]]:
    """Connections to close at teardown."""
    opened: list[EslConnection] = []
    yield opened
    for conn in opened:
        conn.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.005)
    return True


def hold_after_prelude(peer: Peer) -> None:
    peer.prelude()
    peer.hold()


class Recorder:
    """on_event / on_close sink."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closes: list[BaseException | None] = []
        self.log: list[str] = []

    def on_event(self, event: Event) -> None:
        self.events.append(event)
        self.log.append(event.name)

    def on_close(self, _conn: EslConnection, exc: BaseException | None) -> None:
        self.closes.append(exc)
        self.log.append("close")


# -- connect and auth ----------------------------------------------------------


def test_json_event_parsing_is_strict_first_and_lenient_second() -> None:
    event = protocol.parse_json_event('{"Event-Name":"CUSTOM","Caller-Caller-ID-Name":"a\\tb","_body":"x"}')
    assert (event.name, event.headers["Caller-Caller-ID-Name"], event.body) == ("CUSTOM", "a\tb", "x")
    lenient = protocol.parse_json_event('{"Event-Name":"CUSTOM","variable_x":"raw\ttab"}')
    assert lenient.headers["variable_x"] == "raw\ttab"  # a raw control character: orjson refuses, json takes it
    for bad in ("{", "[1]", "not json"):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_json_event(bad)


def test_connect_authenticates_and_subscribes(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    sw = switch(hold_after_prelude)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    assert conn.connected
    assert sw.peers[0].commands == ["auth ClueCon", "event plain " + " ".join(DEFAULT_EVENTS)]


def test_wrong_password_is_auth_error(switch: Callable[..., ScriptedSwitch]) -> None:
    refused = replies_to("01_auth.json", "auth WrongPassword", count=2)  # -ERR invalid + disconnect-notice

    def script(peer: Peer) -> None:
        peer.send(greeting())
        peer.read_command()
        peer.send(*refused)

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(password="WrongPassword"), timeout=2, on_close=rec.on_close)
    with pytest.raises(EslAuthError) as info:
        conn.connect()
    assert "-ERR invalid" in str(info.value)
    assert "WrongPassword" not in str(info.value)
    assert not conn.connected
    assert sw.peers[0].commands == ["auth WrongPassword"]
    conn._process_events_greenlet.join(timeout=2)
    assert rec.closes == []


def test_userauth_command_text(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    sw = switch(hold_after_prelude)
    conn = EslConnection(sw.node(password="s3cret", user="engine@example.com"), timeout=2)
    conns.append(conn)
    conn.connect()
    assert sw.peers[0].commands[0] == "userauth engine@example.com:s3cret"


def test_no_greeting_times_out(switch: Callable[..., ScriptedSwitch]) -> None:
    sw = switch(lambda peer: peer.hold())
    conn = EslConnection(sw.node(), timeout=0.3)
    started = time.monotonic()
    with pytest.raises(EslTimeout):
        conn.connect()
    assert time.monotonic() - started < 2
    assert not conn.connected


def test_the_connection_speaks_the_protocol_itself() -> None:
    """EslConnection is a plain class over protocol.py: importing it loads
    no other event-socket client."""
    assert EslConnection.__mro__ == (EslConnection, object)
    probe = "import sys, eslengine.esl; print(sorted(m for m in sys.modules if m.split('.')[0] == 'greenswitch'))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_as_a_context_manager_it_connects_and_closes(switch: Callable[..., ScriptedSwitch]) -> None:
    sw = switch(hold_after_prelude)
    rec = Recorder()
    node = sw.node()
    with EslConnection(node, timeout=2, on_close=rec.on_close) as conn:
        assert conn.connected
        assert (conn.host, conn.port, conn.password, conn.label) == ("127.0.0.1", sw.port, "ClueCon", "fs-test")
    assert not conn.connected
    assert wait_for(lambda: rec.closes == [None])
    assert wait_for(lambda: sw.peers[0].closed_by_client.is_set())


def test_connection_refused() -> None:
    probe = gevent.socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(EslConnectionError) as info:
        EslConnection(Node("127.0.0.1", port, "ClueCon"), timeout=1).connect()
    assert isinstance(info.value.__cause__, OSError)


def test_refused_subscription_is_command_error(switch: Callable[..., ScriptedSwitch]) -> None:
    refused = replies_to("03_event_subscribe.json", "event plain NOSUCH_EVENT")[0]

    def script(peer: Peer) -> None:
        peer.prelude(subscribed=refused)
        peer.hold()

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2, events=["NOSUCH_EVENT"])
    with pytest.raises(EslCommandError) as info:
        conn.connect()
    assert info.value.reply == "-ERR no keywords supplied"
    assert not conn.connected


# -- api -------------------------------------------------------------------------


def test_api_returns_body_including_err(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    status = [f for f in server_frames("01_auth.json", "conn2") if "api/response" in f]
    unknown = replies_to("02_api_basic.json", "api nosuchapi foo")[0]

    def script(peer: Peer) -> None:
        peer.prelude()
        assert peer.read_command() == "api status"
        peer.send(status[0])
        assert peer.read_command() == "api nosuchapi foo"
        peer.send(unknown)
        peer.hold()

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    body = conn.api("status")
    assert body == body_of(status[0])
    assert body.startswith("UP 0 years") and len(body.encode()) == 331
    assert conn.api("nosuchapi foo") == "-ERR nosuchapi Command not found!\n"


def test_crlf_is_refused_before_anything_is_written(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    status = [f for f in server_frames("01_auth.json", "conn2") if "api/response" in f][0]

    def script(peer: Peer) -> None:
        peer.prelude()
        peer.read_command()
        peer.send(status)
        peer.hold()

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    for command in ("status\nexit", "status\r", "originate x\n\napi echo INJECTED"):
        with pytest.raises(ValueError):
            conn.api(command)
    with pytest.raises(ValueError):
        conn.bgapi("originate loopback/1000/default &park()\n\napi echo INJECTED")
    with pytest.raises(ValueError):
        conn.bgapi("originate loopback/1000/default &park()", job_uuid="x\n\napi echo INJECTED")
    assert len(conn._jobs) == 0
    # The next command is the only thing the switch sees after the subscription.
    assert conn.api("status") == body_of(status)
    assert sw.peers[0].commands[2:] == ["api status"]
    assert conn.connected


def test_pipelined_commands_get_their_own_replies_in_order(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    commands = ["version", "global_getvar hostname", "global_getvar nosuchvar"]
    replies = [replies_to("02_api_basic.json", "api " + c)[0] for c in commands]
    all_written = gevent.event.Event()

    def script(peer: Peer) -> None:
        peer.prelude()
        for _ in commands:
            peer.read_command()
        all_written.set()
        peer.send(*replies)  # one write: three replies in one recv
        peer.hold()

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    callers: list[gevent.Greenlet] = []
    for command in commands:
        callers.append(gevent.spawn(conn.api, command))
        gevent.sleep(0)  # each caller writes before the next starts
    assert all_written.wait(timeout=2)
    gevent.joinall(callers, timeout=2)
    assert [g.value for g in callers] == [body_of(r) for r in replies]
    assert [g.value for g in callers] == [
        "FreeSWITCH Version 1.11.3-dev~64bit ( 64bit)\n", "vm", "-ERR no reply\n"]
    assert sw.peers[0].commands[2:] == ["api " + c for c in commands]
    assert conn.unanswered_for(time.monotonic()) == 0.0
    assert conn.connected


# -- bgapi and events ------------------------------------------------------------


def _bgapi_script(name: str, first: Callable[[list[str]], list[str]]) -> tuple[Script, str, str]:
    """A script for transcript ``name``: prelude, then answer the bgapi with
    the recorded reply and events (ordered by ``first``); returns the
    script, the client's bgapi frame and its command."""
    frames = server_frames(name)
    bgapi_frame = next(f for f in client_frames(name) if f.startswith("bgapi "))
    command = bgapi_frame[len("bgapi ") :].split("\nJob-UUID: ")[0]
    # [reply, CREATE, CREATE, ANSWER, ANSWER, BACKGROUND_JOB]
    burst = first(frames[5:11])

    def script(peer: Peer) -> None:
        peer.prelude(subscribed=frames[4])
        peer.read_command()
        peer.send(*burst)  # one write: several frames per recv
        peer.hold()

    return script, bgapi_frame, command


def test_bgapi_plain_resolves_job_and_delivers_events(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    script, bgapi_frame, command = _bgapi_script("04a_originate_plain_jobuuid.json", lambda f: f)
    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, on_event=rec.on_event)
    conns.append(conn)
    conn.connect()

    job = conn.bgapi(command, job_uuid=JOB_PLAIN)
    assert sw.peers[0].commands[2] + "\n\n" == bgapi_frame  # byte for byte what FreeSWITCH got
    assert job.result(timeout=2) == (True, A_UUID_PLAIN)
    assert job.ready()
    assert wait_for(lambda: len(rec.events) == 5)
    assert [e.name for e in rec.events] == [
        "CHANNEL_CREATE",
        "CHANNEL_CREATE",
        "CHANNEL_ANSWER",
        "CHANNEL_ANSWER",
        "BACKGROUND_JOB",
    ]
    create = rec.events[0]
    assert create.variable("origination_caller_id_name") == "Click To Call"
    assert create.get("Unique-ID") == A_UUID_PLAIN
    assert create.get("Channel-Name") == "loopback/1000-a"
    assert create.get("FreeSWITCH-IPv6") == "fd00::2"
    background = rec.events[4]
    assert job.event is background
    assert background.get("Job-UUID") == JOB_PLAIN
    assert background.body == "+OK %s\n" % A_UUID_PLAIN
    assert background.get("Content-Length") == "41"
    arg = background.get("Job-Command-Arg") or ""
    assert arg == command[len("originate ") :]
    assert "+OK" not in arg and "\n" not in arg


def test_bgapi_json_resolves_job_and_delivers_events(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    script, bgapi_frame, command = _bgapi_script("04c_originate_json_jobuuid.json", lambda f: f)
    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, event_format="json", on_event=rec.on_event)
    conns.append(conn)
    conn.connect()
    assert sw.peers[0].commands[1] == "event json " + " ".join(DEFAULT_EVENTS)

    job = conn.bgapi(command, job_uuid=JOB_JSON)
    assert sw.peers[0].commands[2] + "\n\n" == bgapi_frame
    assert job.result(timeout=2) == (True, A_UUID_JSON)
    assert wait_for(lambda: len(rec.events) == 5)
    assert rec.events[0].variable("origination_caller_id_name") == "Click To Call"
    background = rec.events[4]
    assert background.name == "BACKGROUND_JOB"
    assert background.body == "+OK %s\n" % A_UUID_JSON
    assert background.get("Job-Command-Arg") == command[len("originate ") :]


def test_background_job_before_reply_still_resolves(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    # BACKGROUND_JOB first, then the command/reply.
    script, _, command = _bgapi_script("04a_originate_plain_jobuuid.json", lambda f: [f[5], f[0]])
    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, on_event=rec.on_event)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi(command, job_uuid=JOB_PLAIN)
    assert job.result(timeout=2) == (True, A_UUID_PLAIN)
    assert wait_for(lambda: [e.name for e in rec.events] == ["BACKGROUND_JOB"])


def _accept_bgapi_then_hold(peer: Peer) -> None:
    """A switch that accepts one bgapi (its +OK reply) and then says nothing."""
    peer.prelude()
    peer.read_command()
    peer.send(server_frames("04a_originate_plain_jobuuid.json")[5])
    peer.hold()


@pytest.mark.parametrize("order", ["reply_first", "event_first"])
def test_done_callback_gets_the_result_either_way_round(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection], order: str
) -> None:
    frames = (lambda f: f) if order == "reply_first" else (lambda f: [f[5], f[0]])
    script, _, command = _bgapi_script("04a_originate_plain_jobuuid.json", frames)
    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi(command, job_uuid=JOB_PLAIN)
    seen: list[tuple[bool, str]] = []
    job.add_done_callback(lambda done: seen.append(done.result(None)))
    assert wait_for(lambda: seen == [(True, A_UUID_PLAIN)])


def test_done_callback_hears_of_a_closed_connection(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    sw = switch(_accept_bgapi_then_hold)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi("originate loopback/1000/default &park()", job_uuid=JOB_PLAIN)
    errors: list[BaseException] = []

    def done(j: object) -> None:
        try:
            j.result(None)  # type: ignore[attr-defined]
        except EslConnectionError as exc:
            errors.append(exc)

    job.add_done_callback(done)
    conn.close()
    assert wait_for(lambda: len(errors) == 1)


def test_bgapi_sends_generated_job_uuid(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    def script(peer: Peer) -> None:
        peer.prelude()
        command = peer.read_command()
        job_uuid = command.split("\nJob-UUID: ")[1]
        # The recorded reply shape, with the uuid this client chose echoed.
        reply = server_frames("04a_originate_plain_jobuuid.json")[5].replace(JOB_PLAIN, job_uuid)
        peer.send(reply)
        peer.hold()

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi("originate loopback/1000/default &park()")
    assert len(job.job_uuid) == 36
    assert sw.peers[0].commands[2] == "bgapi originate loopback/1000/default &park()\nJob-UUID: " + job.job_uuid
    assert not job.ready()
    with pytest.raises(EslTimeout):
        job.result(timeout=0.05)
    assert conn.connected  # a job's deadline is the caller's business, not the connection's


def test_bgapi_err_reply_is_command_error(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    refused = replies_to("01_auth.json", "nosuchcommand foo")[0]  # -ERR command not found

    def script(peer: Peer) -> None:
        peer.prelude()
        peer.read_command()
        peer.send(refused)
        peer.hold()

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2)
    conns.append(conn)
    conn.connect()
    with pytest.raises(EslCommandError) as info:
        conn.bgapi("originate loopback/1000/default &park()", job_uuid=JOB_PLAIN)
    assert info.value.reply == "-ERR command not found"
    assert JOB_PLAIN not in conn._jobs
    assert conn.connected


def test_frames_split_across_reads_are_put_back_together(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    frames = server_frames("04c_originate_json_jobuuid.json")
    data = "".join(frames[5:11]).encode("utf-8")  # reply, four channel events, BACKGROUND_JOB

    def script(peer: Peer) -> None:
        peer.prelude(subscribed=frames[4])
        peer.read_command()
        peer.sock.setsockopt(gevent.socket.IPPROTO_TCP, gevent.socket.TCP_NODELAY, 1)
        for start in range(0, len(data), 7):  # splits headers, lengths and bodies
            peer.sock.sendall(data[start : start + 7])
            gevent.sleep(0)
        peer.hold()

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, event_format="json", on_event=rec.on_event)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi("originate x", job_uuid=JOB_JSON)
    assert job.result(timeout=2) == (True, A_UUID_JSON)
    assert wait_for(lambda: len(rec.events) == 5)
    assert [e.name for e in rec.events] == [
        "CHANNEL_CREATE", "CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_ANSWER", "BACKGROUND_JOB"]
    assert rec.events[0].variable("origination_caller_id_name") == "Click To Call"


def test_header_value_with_encoded_newline(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    headers = [
        ("Event-Name", "CHANNEL_CREATE"),
        ("variable_note", "line one\nSecond-Line: not a header"),
        ("Unique-ID", "u-1"),
    ]
    body = protocol.format_plain_event(headers)
    frame = protocol.encode_frame([("Content-Type", protocol.EVENT_PLAIN)], body, length_first=True)

    def script(peer: Peer) -> None:
        peer.prelude()
        peer.send(frame.decode())
        peer.hold()

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, on_event=rec.on_event)
    conns.append(conn)
    conn.connect()
    assert wait_for(lambda: len(rec.events) == 1)
    assert rec.events[0].headers == dict(headers)


def test_many_events_arrive_in_order(switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]) -> None:
    count = 2000
    create = server_frames("04a_originate_plain_jobuuid.json")[6]
    template = protocol.parse_plain_event(body_of(create)).headers
    burst = []
    for seq in range(count):
        headers = dict(template, **{"Event-Sequence": str(seq)})
        body = protocol.format_plain_event(headers.items())
        burst.append(protocol.encode_frame([("Content-Type", protocol.EVENT_PLAIN)], body, length_first=True))
    data = b"".join(burst)

    def script(peer: Peer) -> None:
        peer.prelude()
        peer.sock.sendall(data)
        peer.hold()

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, on_event=rec.on_event)
    conns.append(conn)
    conn.connect()
    assert wait_for(lambda: len(rec.events) == count)
    assert [e.get("Event-Sequence") for e in rec.events] == [str(n) for n in range(count)]
    assert rec.events[-1].variable("origination_caller_id_name") == "Click To Call"


def test_handler_exception_is_logged_and_dispatch_goes_on(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection], caplog: pytest.LogCaptureFixture
) -> None:
    creates = server_frames("04a_originate_plain_jobuuid.json")[6:8]

    def script(peer: Peer) -> None:
        peer.prelude()
        peer.send(*creates)
        peer.hold()

    seen: list[str | None] = []

    def on_event(event: Event) -> None:
        seen.append(event.get("Unique-ID"))
        if len(seen) == 1:
            raise RuntimeError("handler bug")

    sw = switch(script)
    conn = EslConnection(sw.node(), timeout=2, on_event=on_event)
    conns.append(conn)
    with caplog.at_level(logging.ERROR, logger="eslengine.esl"):
        conn.connect()
        assert wait_for(lambda: len(seen) == 2)
    assert seen[0] != seen[1]
    failures = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(failures) == 1
    assert conn.connected


# -- failure: deadlines and dead sockets ----------------------------------------


def test_missed_reply_times_out_and_fails_everything_pending(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    bgapi_reply = server_frames("04a_originate_plain_jobuuid.json")[5]

    def script(peer: Peer) -> None:
        peer.prelude()
        peer.read_command()
        peer.send(bgapi_reply)
        peer.hold()  # never answers again

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, on_close=rec.on_close)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi("originate loopback/1000/default &park()", job_uuid=JOB_PLAIN)

    started = time.monotonic()
    stalled = gevent.spawn(conn.api, "status", timeout=0.3)
    behind = gevent.spawn(conn.api, "version", timeout=5)
    gevent.joinall([stalled, behind], timeout=3)
    assert isinstance(stalled.exception, EslTimeout)
    assert isinstance(behind.exception, EslConnectionError)
    assert time.monotonic() - started < 2
    with pytest.raises(EslConnectionError):
        job.result(timeout=1)
    assert not conn.connected
    assert wait_for(lambda: len(rec.closes) == 1)
    assert isinstance(rec.closes[0], EslConnectionError)
    assert isinstance(rec.closes[0].__cause__, EslTimeout)
    assert wait_for(lambda: sw.peers[0].closed_by_client.is_set())
    assert sw.peers[0].commands[3:] == ["api status", "api version"]
    with pytest.raises(EslConnectionError):
        conn.api("status")


def test_abrupt_close_fails_pending_and_calls_on_close(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    # SIGKILL: the switch's socket just ends, no notice.
    prelude = server_frames("11d_shutdown_sigkill.json", "connA")
    bgapi_reply = server_frames("04a_originate_plain_jobuuid.json")[5]

    def script(peer: Peer) -> None:
        peer.prelude(subscribed=prelude[2])
        peer.read_command()
        peer.send(bgapi_reply)
        peer.read_command()  # the api, left unanswered

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=5, on_close=rec.on_close)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi("originate loopback/1000/default &park()", job_uuid=JOB_PLAIN)
    started = time.monotonic()
    with pytest.raises(EslConnectionError):
        conn.api("status")
    with pytest.raises(EslConnectionError):
        job.result(timeout=1)
    assert time.monotonic() - started < 2
    conn._process_events_greenlet.join(timeout=2)  # the dispatcher calls on_close, then ends
    assert len(rec.closes) == 1
    assert "closed by the switch" in str(rec.closes[0])
    conn.close()
    assert len(rec.closes) == 1


def test_shutdown_notice_fails_pending_after_delivering_events(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    frames = server_frames("11c_shutdown_sigterm.json", "connA")
    # greeting, auth, event reply, HANGUP, HANGUP, HANGUP_COMPLETE, HANGUP_COMPLETE, notice
    assert "shut down" in frames[-1]

    def script(peer: Peer) -> None:
        peer.prelude(subscribed=frames[2])
        peer.read_command()
        peer.send(*frames[3:])
        peer.hold()  # the socket stays open: the notice alone ends the connection

    sw = switch(script)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=5, on_event=rec.on_event, on_close=rec.on_close)
    conns.append(conn)
    conn.connect()
    started = time.monotonic()
    with pytest.raises(EslConnectionError) as info:
        conn.api("status")
    assert time.monotonic() - started < 2
    assert "The system is being shut down." in str(info.value)
    assert wait_for(lambda: rec.closes != [])
    assert rec.log == ["CHANNEL_HANGUP", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP_COMPLETE", "close"]
    assert rec.events[0].get("Hangup-Cause") == "SYSTEM_SHUTDOWN"


def test_close_fails_pending_job_and_reports_clean_close(
    switch: Callable[..., ScriptedSwitch], conns: list[EslConnection]
) -> None:
    sw = switch(_accept_bgapi_then_hold)
    rec = Recorder()
    conn = EslConnection(sw.node(), timeout=2, on_close=rec.on_close)
    conns.append(conn)
    conn.connect()
    job = conn.bgapi("originate loopback/1000/default &park()", job_uuid=JOB_PLAIN)
    waiter = gevent.spawn(job.result, 5)
    gevent.sleep(0)
    conn.close()
    waiter.join(timeout=2)
    assert isinstance(waiter.exception, EslConnectionError)
    assert wait_for(lambda: rec.closes == [None])
    assert wait_for(lambda: sw.peers[0].closed_by_client.is_set())


# -- NodeLink --------------------------------------------------------------------


def test_node_link_reconnects_after_the_switch_comes_back(switch: Callable[..., ScriptedSwitch]) -> None:
    status = [f for f in server_frames("01_auth.json", "conn2") if "api/response" in f][0]
    drop = gevent.event.Event()

    def first_life(peer: Peer) -> None:
        peer.prelude()
        drop.wait(timeout=10)

    def second_life(peer: Peer) -> None:
        peer.prelude()
        while True:
            if peer.read_command() == "api status":
                peer.send(status)

    sw1 = switch(first_life)
    port = sw1.port
    ups: list[NodeLink] = []
    downs: list[BaseException | None] = []
    link = NodeLink(
        sw1.node(),
        timeout=1,
        on_event=None,
        on_up=ups.append,
        on_down=lambda _link, exc: downs.append(exc),
        min_delay=0.02,
        max_delay=0.1,
    )
    link.start()
    try:
        assert link.wait_up(timeout=3)
        assert wait_for(lambda: len(ups) == 1)
        assert ups[0] is link

        drop.set()
        sw1.stop()  # connection dropped, and connects are refused for a while
        assert wait_for(lambda: len(downs) == 1)
        assert isinstance(downs[0], EslConnectionError)
        assert not link.up
        with pytest.raises(EslConnectionError):
            link.api("status")

        switch(second_life, port=port)
        assert wait_for(lambda: len(ups) == 2)
        assert link.wait_up(timeout=1)
        assert link.api("status", timeout=2) == body_of(status)
    finally:
        link.stop()
    assert downs[1:] == [None]
    assert not link.up


# -- against the simulator -------------------------------------------------------


def test_against_fakeswitch_originate_stall_and_reconnect() -> None:
    fs = FakeSwitch(ring_time=0.02, talk_time=0.05)
    fs.start()
    events: list[Event] = []
    ups: list[NodeLink] = []
    downs: list[BaseException | None] = []
    node = Node(fs.address[0], fs.address[1], "ClueCon", name="fake")
    link = NodeLink(
        node,
        timeout=0.5,
        on_event=events.append,
        on_up=ups.append,
        on_down=lambda _link, exc: downs.append(exc),
        min_delay=0.02,
        max_delay=0.1,
    )
    link.start()
    try:
        assert link.wait_up(timeout=3)
        job_id = "0b7f8c1e-6a8e-4e0a-9a55-3c1d2f4e5a60"
        answered = link.bgapi(
            "originate {origination_uuid=%s,eslengine_job_id=%s,origination_caller_id_name='Click To Call'}"
            "loopback/1000/default &park()" % (job_id, job_id)
        )
        busy = link.bgapi("originate {eslengine_job_id=busy-1}loopback/1486/default &park()")
        assert answered.result(timeout=3) == (True, job_id)
        assert busy.result(timeout=3) == (False, "USER_BUSY")
        assert wait_for(lambda: any(e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == job_id for e in events))
        mine = [e for e in events if e.variable("eslengine_job_id") == job_id]
        assert mine[0].name == "CHANNEL_CREATE"
        assert mine[0].variable("origination_caller_id_name") == "Click To Call"

        fs.stall(2.0)  # replies stop coming: the command's deadline closes the connection
        with pytest.raises(EslTimeout):
            link.api("status")
        assert wait_for(lambda: len(downs) == 1)
        assert isinstance(downs[0], EslConnectionError)
        fs.stall(0)
        assert wait_for(lambda: len(ups) == 2)

        fs.drop_connections()
        assert wait_for(lambda: len(ups) == 3 and link.up)
        assert link.api("status", timeout=2).startswith("UP ")
    finally:
        link.stop()
        fs.stop()


A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"
D = "dddddddd-0000-4000-8000-000000000004"
E = "eeeeeeee-0000-4000-8000-000000000005"
F = "ffffffff-0000-4000-8000-000000000006"


def test_node_link_filters_hold_across_reconnects() -> None:
    """A link's filters are set before it subscribes, one added while it is
    up takes effect at once, and every later connection has them all."""
    fs = FakeSwitch(ring_time=0.02, talk_time=0.02)
    fs.start()
    events: list[Event] = []
    ups: list[NodeLink] = []
    node = Node(fs.address[0], fs.address[1], "ClueCon", name="fake")
    link = NodeLink(node, timeout=0.5, on_event=events.append, on_up=ups.append, min_delay=0.02, max_delay=0.1,
                    filters=[("variable_owner", "w1"), ("Job-UUID", "/^w1-/")])
    link.start()

    def place(owner: str, uuid: str) -> None:
        job = link.bgapi("originate {origination_uuid=%s,owner=%s}loopback/1000/default &park()" % (uuid, owner),
                         job_uuid="%s-%s" % (owner, uuid))
        if owner == "w1":
            assert job.result(timeout=3) == (True, uuid)
        link.api("uuid_kill " + uuid)

    def seen(uuid: str) -> bool:
        return any(e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == uuid for e in events)

    try:
        assert link.wait_up(timeout=3)
        place("w2", A)
        place("w1", B)
        assert wait_for(lambda: seen(B))
        assert not seen(A) and all(e.variable("owner") in ("w1", None) for e in events)
        link.add_filter("variable_owner", "w2")
        place("w2", C)
        assert wait_for(lambda: seen(C))
        fs.drop_connections()
        assert wait_for(lambda: len(ups) == 2 and link.up)
        place("w2", D)
        assert wait_for(lambda: seen(D))
        link.remove_filter("variable_owner", "w2")
        place("w2", E)
        place("w1", F)
        assert wait_for(lambda: seen(F))
        assert not seen(E)
        assert link.filters == [("variable_owner", "w1"), ("Job-UUID", "/^w1-/")]
        with pytest.raises(ValueError):
            link.add_filter("variable_owner", "w1\napi hupall")
    finally:
        link.stop()
        fs.stop()


# -- event-json encoding -----------------------------------------------------

@settings(max_examples=300, deadline=None)
# ("_body" is where the JSON form keeps the body: no header has that name.)
@given(st.lists(st.tuples(st.text().filter(lambda name: name != "_body"), st.text()), max_size=6), st.text())
def test_json_event_text_is_the_compact_stdlib_form(headers: list[tuple[str, str]], body: str) -> None:
    """The simulator's fast encoder writes what ``json.dumps`` would, lone
    surrogates included, and the parser reads it back."""
    data = dict(headers)
    if body:
        data["Content-Length"] = str(len(body.encode("utf-8", "surrogatepass")))
        data["_body"] = body
    text = protocol.format_json_event(headers, body)
    assert text == json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    event = protocol.parse_json_event(text)
    assert event.body == body
    assert event.headers == {k: v for k, v in data.items() if k != "_body"}


_PRINTABLE_KEPT = frozenset(chr(c) for c in range(0x20, 0x7F)) - frozenset("\r\n \"#%&+:;<=>?@[\\]^`{|}")


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40))
@settings(max_examples=500)
def test_url_encode_is_switch_url_encode(value: str) -> None:
    # switch_url_encode: every byte of a character outside the kept printable
    # set becomes %XX (upper case); everything else stays.
    expected = "".join(c if c in _PRINTABLE_KEPT else "".join("%%%02X" % b for b in c.encode("utf-8"))
                       for c in value)
    assert protocol.url_encode(value) == expected

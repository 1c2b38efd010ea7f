"""The simulator's handling of the dial-string options the engine emits
(failover, leg timeouts, retries, early media, per-party variables,
execute_on_answer hooks, the eslengine_connect extension), driven over raw
sockets with a time scale so FreeSWITCH's whole seconds pass quickly."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.fakeswitch.apps import execute_on_split
from eslengine.fakeswitch.cli import main
from eslengine.fakeswitch.dialplan import CONNECT_CONTINUE
from eslengine.protocol import Event

from .test_fakeswitch import Client, events_client

A = "aaaaaaaa-0000-4000-8000-00000000000a"
B = "bbbbbbbb-0000-4000-8000-00000000000b"
JOB = "cccccccc-0000-4000-8000-00000000000c"
SCALE = 20.0   # one FreeSWITCH second = 50 ms

_clients: list[Client] = []


@pytest.fixture
def switch() -> Iterator[FakeSwitch]:
    fs = FakeSwitch(ring_time=0.02, auth_timeout=0.5, time_scale=SCALE)
    fs.start()
    yield fs
    for c in _clients:
        c.close()
    _clients.clear()
    fs.stop()


def listen(switch: FakeSwitch, names: str = "ALL") -> Client:
    c = events_client(switch, names=names)
    _clients.append(c)
    return c


def bgapi(c: Client, args: str) -> None:
    c.send("bgapi originate " + args, Job_UUID=JOB)
    assert c.reply().headers["Reply-Text"] == "+OK Job-UUID: " + JOB


def job_done(e: Event) -> bool:
    return e.name == "BACKGROUND_JOB"


def hangup_of(uuid: str):
    return lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == uuid


def test_execute_on_split_follows_switch_channel() -> None:
    assert execute_on_split("sched_hangup +60 ALLOTTED_TIMEOUT") == ("sched_hangup", "+60 ALLOTTED_TIMEOUT", False)
    assert execute_on_split("sched_broadcast +5 playback::tone_stream://%(500,0,800) both") == (
        "sched_broadcast", "+5 playback::tone_stream://%(500,0,800) both", False)
    assert execute_on_split("set:x=1") == ("set", "x=1", False)
    assert execute_on_split("playback::/tmp/a.wav") == ("playback", "/tmp/a.wav", True)
    assert execute_on_split("answer") == ("answer", None, False)


# -- | and , with leg_timeout, originate_timeout -----------------------------

def test_failover_after_leg_timeout_reuses_origination_uuid(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE")
    bgapi(c, "{origination_uuid=%s,originate_timeout=4}[leg_timeout=2]loopback/1408/default"
             "|[leg_timeout=2]loopback/1000/default &park()" % A)
    t0 = time.monotonic()
    evs = c.events_until(job_done)
    assert evs[-1].body == "+OK %s\n" % A
    first_a = [e for e in evs if e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Channel-Name") == "loopback/1408-a"]
    assert first_a and first_a[0].get("Hangup-Cause") == "ALLOTTED_TIMEOUT" and first_a[0].get("Unique-ID") == A
    creates = [(e.get("Channel-Name"), e.get("Unique-ID")) for e in evs if e.name == "CHANNEL_CREATE"]
    assert ("loopback/1000-a", A) in creates
    assert 2 / SCALE <= time.monotonic() - t0 < 1.0


def test_simultaneous_legs_first_answer_wins(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE")
    bgapi(c, "{origination_uuid=%s}[leg_timeout=5]loopback/1408/default,[leg_timeout=5]loopback/1000/default"
             " &park()" % A)
    evs = c.events_until(job_done)
    winner = evs[-1].body.split()[1]
    assert winner != A          # the second leg could not take the uuid the first one holds
    if not any(hangup_of(A)(e) for e in evs):
        evs += c.events_until(hangup_of(A))
    loser = [e for e in evs if hangup_of(A)(e)][0]
    assert loser.get("Hangup-Cause") == "LOSE_RACE"  # as a real switch ends a ringing loser
    assert switch.channels[winner].name == "loopback/1000-a"


def test_originate_timeout_ends_the_whole_originate(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE")
    bgapi(c, "{originate_timeout=1}loopback/1408/default|loopback/1000/default &park()")
    evs = c.events_until(job_done)
    assert evs[-1].body == "-ERR NO_ANSWER\n"
    assert {e.get("Channel-Name") for e in evs if e.name == "CHANNEL_CREATE"} == {"loopback/1408-a", "loopback/1408-b"}


def test_every_leg_timing_out_reports_allotted_timeout(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB")
    bgapi(c, "{originate_timeout=10}[leg_timeout=1]loopback/1408/default|[leg_timeout=1]loopback/2408/default &park()")
    assert c.events_until(job_done)[-1].body == "-ERR ALLOTTED_TIMEOUT\n"


# -- originate_retries ---------------------------------------------------------

def test_retries_redial_with_the_same_uuid_and_report_the_last_cause(switch: FakeSwitch) -> None:
    scenario = Scenario.from_dict({"rules": [{"match": "^1555$", "outcome": "busy"}]})
    switch.board.scenario = scenario
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE")
    t0 = time.monotonic()
    bgapi(c, "{origination_uuid=%s,originate_retries=3,originate_retry_sleep_ms=1000}loopback/1555/default"
             " &park()" % A)
    evs = c.events_until(job_done, timeout=3)
    elapsed = time.monotonic() - t0
    creates = [e.get("Unique-ID") for e in evs if e.name == "CHANNEL_CREATE" and e.get("Channel-Name") == "loopback/1555-a"]
    assert creates == [A, A, A]
    assert evs[-1].body == "-ERR USER_BUSY\n"
    assert elapsed >= 2 * 1.0 / SCALE


def test_retries_last_cause_and_out_of_range_values(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE")
    # 101 is out of range: one attempt only
    bgapi(c, "{originate_retries=101}loopback/1486/default &park()")
    evs = c.events_until(job_done)
    assert evs[-1].body == "-ERR USER_BUSY\n"
    assert len([e for e in evs if e.name == "CHANNEL_CREATE"]) == 2
    # two groups, two attempts: the cause of the last group of the last attempt
    bgapi(c, "{originate_retries=2,originate_retry_sleep_ms=500}loopback/1486/default|loopback/1404/default &park()")
    evs = c.events_until(job_done)
    assert evs[-1].body == "-ERR UNALLOCATED_NUMBER\n"
    assert len([e for e in evs if e.name == "CHANNEL_CREATE"]) == 8


# -- early media ---------------------------------------------------------------

@pytest.mark.parametrize("ignore, before_answer", [("false", True), ("true", False)])
def test_ignore_early_media(switch: FakeSwitch, ignore: str, before_answer: bool) -> None:
    switch.board.scenario = Scenario.from_dict({"rules": [{"match": "^1183$", "outcome": "early_media", "after": 0.2}]})
    c = listen(switch, "BACKGROUND_JOB CHANNEL_PROGRESS_MEDIA CHANNEL_ANSWER")
    bgapi(c, "{origination_uuid=%s,ignore_early_media=%s}sofia/gateway/gw/1183 &park()" % (A, ignore))
    evs = c.events_until(job_done)
    assert evs[-1].body == "+OK %s\n" % A
    names = [e.name for e in evs]
    assert names[0] == "CHANNEL_PROGRESS_MEDIA"
    assert ("CHANNEL_ANSWER" not in names) is before_answer


# -- per-party variables -------------------------------------------------------

PARTY_A = ("{origination_uuid=%s,eslengine_job_id=%s,eslengine_leg=a,origination_caller_id_number=15550001111,"
           "origination_caller_id_name=Agent\\sDesk,presence_id=agent@example.com,sip_auto_answer=true,"
           "sip_h_X-Campaign=c7,ringback=%%(2000\\,4000\\,440\\,480),transfer_ringback=local_stream://moh,"
           "proxy_media=true}" % (A, JOB))


def test_party_variables_and_caller_id_on_every_leg(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_BRIDGE")
    bgapi(c, PARTY_A + "loopback/1000/default &bridge({origination_uuid=%s,eslengine_job_id=%s,eslengine_leg=b,"
          "origination_caller_id_number=anonymous,origination_caller_id_name=Anonymous,"
          "origination_privacy=hide_name:hide_number,sip_h_X-Campaign=c8}loopback/1001/default)" % (B, JOB))
    evs = c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    creates = {e.get("Channel-Name"): e for e in evs if e.name == "CHANNEL_CREATE"}
    for name in ("loopback/1000-a", "loopback/1000-b"):
        e = creates[name]
        assert (e.get("Caller-Caller-ID-Name"), e.get("Caller-Caller-ID-Number")) == ("Agent Desk", "15550001111")
        assert e.variable("eslengine_leg") == "a" and e.variable("sip_h_X-Campaign") == "c7"
        assert e.variable("presence_id") == "agent@example.com" and e.variable("sip_auto_answer") == "true"
        assert e.variable("ringback") == "%(2000,4000,440,480)"
        assert e.variable("transfer_ringback") == "local_stream://moh" and e.variable("proxy_media") == "true"
        assert e.get("Caller-Privacy-Hide-Name") == "false" and e.get("Caller-Screen-Bit") == "true"
    for name in ("loopback/1001-a", "loopback/1001-b"):
        e = creates[name]
        assert (e.get("Caller-Caller-ID-Name"), e.get("Caller-Caller-ID-Number")) == ("Anonymous", "anonymous")
        assert e.get("Caller-Privacy-Hide-Name") == "true" and e.get("Caller-Privacy-Hide-Number") == "true"
        assert e.get("Caller-Screen-Bit") == "false"
        assert e.variable("eslengine_leg") == "b" and e.variable("sip_h_X-Campaign") == "c8"
        assert e.variable("ringback") is None
    bridge = evs[-1]
    assert bridge.variable("ringback") == "%(2000,4000,440,480)"


# -- execute_on_answer on the second party ---------------------------------------

def bridge_with(hooks: str, a_extra: str = "") -> str:
    return ("{origination_uuid=%s,eslengine_job_id=%s%s}loopback/1000/default &bridge({origination_uuid=%s,"
            "eslengine_job_id=%s,%s}loopback/1001/default)" % (A, JOB, a_extra, B, JOB, hooks))


@pytest.mark.parametrize("a_extra, a_cause", [("", "NORMAL_CLEARING"),
                                              (",hangup_after_bridge=true", "ALLOTTED_TIMEOUT")])
def test_sched_hangup_on_answer(switch: FakeSwitch, a_extra: str, a_cause: str) -> None:
    c = listen(switch, "CHANNEL_BRIDGE CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE")
    bgapi(c, bridge_with("execute_on_answer_1=sched_hangup\\s+2\\sALLOTTED_TIMEOUT", a_extra))
    evs = c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    execs = [e for e in evs if e.name == "CHANNEL_EXECUTE" and e.get("Application") != "bridge"]
    assert [(e.get("Unique-ID"), e.get("Application"), e.get("Application-Data")) for e in execs] == [
        (B, "sched_hangup", "+2 ALLOTTED_TIMEOUT")]
    bridged = time.monotonic()
    evs = c.events_until(hangup_of(B))
    assert 1.5 / SCALE <= time.monotonic() - bridged < 1.0
    done = {e.get("Unique-ID"): e for e in evs if e.name == "CHANNEL_HANGUP_COMPLETE"}
    assert done[B].get("Hangup-Cause") == "ALLOTTED_TIMEOUT"
    assert done[A].get("Hangup-Cause") == a_cause
    assert done[A].variable("bridge_hangup_cause") == "ALLOTTED_TIMEOUT"


def test_sched_broadcast_plays_on_both_bridged_legs(switch: FakeSwitch) -> None:
    c = listen(switch, "CHANNEL_BRIDGE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE")
    bgapi(c, bridge_with("execute_on_answer_1=sched_hangup\\s+4,"
                         "execute_on_answer_2=sched_broadcast\\s+1\\splayback::/sounds/beep.wav\\sboth,"
                         "execute_on_answer_3=sched_broadcast\\s+2\\s/sounds/last.wav\\sboth"))
    c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    evs = c.events_until(lambda e: e.name == "CHANNEL_EXECUTE_COMPLETE" and e.get("Application-Data") == "/sounds/last.wav"
                         and e.get("Unique-ID") == A)
    plays = [(e.name, e.get("Unique-ID"), e.get("Application-Data")) for e in evs if e.get("Application") == "playback"]
    for sound in ("/sounds/beep.wav", "/sounds/last.wav"):
        for uuid in (B, A):
            assert ("CHANNEL_EXECUTE", uuid, sound) in plays
            assert ("CHANNEL_EXECUTE_COMPLETE", uuid, sound) in plays
    complete = [e for e in evs if e.name == "CHANNEL_EXECUTE_COMPLETE" and e.get("Application") == "playback"][0]
    assert complete.get("Application-Response") == "FILE PLAYED"


def test_record_session_start_and_stop(switch: FakeSwitch) -> None:
    c = listen(switch, "CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE RECORD_START RECORD_STOP")
    bgapi(c, bridge_with("execute_on_answer_1=sched_hangup\\s+1,execute_on_answer_2=record_session\\s/rec/%s.wav" % JOB))
    evs = c.events_until(hangup_of(B))
    mine = [(e.name, e.get("Unique-ID")) for e in evs if e.get("Unique-ID") == B]
    assert mine == [("CHANNEL_ANSWER", B), ("RECORD_START", B), ("CHANNEL_HANGUP", B), ("RECORD_STOP", B),
                    ("CHANNEL_HANGUP_COMPLETE", B)]
    for e in evs:
        if e.name.startswith("RECORD_"):
            assert e.get("Record-File-Path") == "/rec/%s.wav" % JOB
            assert e.variable("eslengine_job_id") == JOB


# -- form 2: eslengine_connect XML eslengine --------------------------------------

def test_connect_extension_announces_then_bridges(switch: FakeSwitch) -> None:
    switch.board.playback_time = 1.0
    c = listen(switch, "BACKGROUND_JOB CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_BRIDGE")
    bridge = ("{origination_uuid=%s\\,eslengine_job_id=%s\\,eslengine_leg=b}loopback/1001/default"
              "|loopback/1002/default" % (B, JOB))
    bgapi(c, "{origination_uuid=%s,eslengine_job_id=%s,eslengine_bridge=%s,eslengine_announce=/sounds/hi.wav,"
             "eslengine_say=Your\\scall,eslengine_tts_engine=flite,eslengine_tts_voice=kal}loopback/1000/default"
             " eslengine_connect XML eslengine" % (A, JOB, bridge))
    evs = c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    assert evs[0].name == "BACKGROUND_JOB" and evs[0].body == "+OK %s\n" % A
    steps = [(e.name, e.get("Application"), e.get("Application-Data")) for e in evs[1:-1]]
    assert steps == [
        ("CHANNEL_EXECUTE", "answer", None), ("CHANNEL_EXECUTE_COMPLETE", "answer", None),
        ("CHANNEL_EXECUTE", "playback", "/sounds/hi.wav"), ("CHANNEL_EXECUTE_COMPLETE", "playback", "/sounds/hi.wav"),
        ("CHANNEL_EXECUTE", "speak", "flite|kal|Your call"), ("CHANNEL_EXECUTE_COMPLETE", "speak", "flite|kal|Your call"),
        ("CHANNEL_EXECUTE", "set", "continue_on_fail=" + CONNECT_CONTINUE),
        ("CHANNEL_EXECUTE_COMPLETE", "set", "continue_on_fail=" + CONNECT_CONTINUE),
        ("CHANNEL_EXECUTE", "bridge", bridge.replace("\\,", ",")),
    ]
    assert all(e.get("Unique-ID") == A for e in evs[1:-1])
    assert (evs[-1].get("Bridge-A-Unique-ID"), evs[-1].get("Bridge-B-Unique-ID")) == (A, B)


def test_other_extensions_keep_parking(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_EXECUTE")
    bgapi(c, "{origination_uuid=%s}loopback/1000/default eslengine_connect XML default" % A)
    evs = c.events_until(job_done)
    assert evs[-1].body == "+OK %s\n" % A
    assert A in switch.channels and switch.channels[A].app == "park"


def test_held_leg_waits_in_park_until_transferred_to_the_connect_extension(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_BRIDGE")
    bridge = "{origination_uuid=%s\\,eslengine_leg=b}sofia/gateway/gw/15551230002" % B
    bgapi(c, "{origination_uuid=%s,eslengine_job_id=%s,eslengine_bridge=%s,park_timeout=30}"
             "sofia/gateway/gw/15551230001 &park()" % (A, JOB, bridge))
    evs = c.events_until(job_done)
    assert evs[-1].body == "+OK %s\n" % A
    assert [e.get("Unique-ID") for e in evs if e.name == "CHANNEL_CREATE"] == [A]  # no second leg yet
    assert switch.channels[A].app == "park"
    assert switch.api("uuid_transfer", "%s eslengine_connect XML eslengine" % B, None) == "-ERR No such channel!\n"
    assert switch.api("uuid_transfer", A, None).startswith("-USAGE:")
    assert switch.api("uuid_transfer", "%s eslengine_connect XML eslengine" % A, None) == "+OK\n"
    evs = c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    assert [e.get("Unique-ID") for e in evs if e.name == "CHANNEL_CREATE"] == [B]
    assert (evs[-1].get("Bridge-A-Unique-ID"), evs[-1].get("Bridge-B-Unique-ID")) == (A, B)


def test_uuid_setvar_reads_its_value_as_freeswitch_does(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB")
    bgapi(c, "{origination_uuid=%s}sofia/gateway/gw/15551230001 &park()" % A)
    c.events_until(job_done)
    channel = switch.channels[A]
    # The value is the rest of the line, cleaned once: quotes go, escapes are read, ends are trimmed.
    assert switch.api("uuid_setvar", "%s v1 'a b'  c\\s\\,d " % A, None) == "+OK\n"
    assert channel.variables["v1"] == "a b  c \\,d"  # \\s is a space; \\, is kept (no delimiter)
    assert switch.api("uuid_setvar", "%s v2 x\\sy" % A, None) == "+OK\n"
    assert channel.variables["v2"] == "x y"
    assert switch.api("uuid_setvar", "%s v3 ${danger}" % A, None) == "+OK\n"  # refused, but +OK
    assert "v3" not in channel.variables
    assert switch.api("uuid_setvar", "%s v2" % A, None) == "+OK\n" and "v2" not in channel.variables
    assert switch.api("uuid_setvar", "%s v1 x" % B, None) == "-ERR No such channel!\n"
    assert switch.api("uuid_setvar", A, None).startswith("-USAGE:")


def test_engine_connects_a_held_leg_with_setvar_then_transfer(switch: FakeSwitch) -> None:
    from eslengine import dialstring
    from eslengine.calls import parse_request
    from eslengine.config import Config

    config = Config(gateway="gw", allow_unvalidated_numbers=True)  # 555-01xx: not a valid number
    request = parse_request({"id": A, "a": "+15551230001", "b": "+15551230002",
                             "variables": {"note": "a, b = c 'd' \\e"}}, config)
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_BRIDGE")
    bgapi(c, dialstring.originate_command(request, config, hold=True)[len("originate "):])
    assert c.events_until(job_done)[-1].body == "+OK %s\n" % A
    verb, _, arg = dialstring.bridge_setvar_command(A, request, config).partition(" ")
    assert switch.api(verb, arg, None) == "+OK\n"
    verb, _, arg = dialstring.transfer_command(A).partition(" ")
    assert switch.api(verb, arg, None) == "+OK\n"
    evs = c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    (b_create,) = [e for e in evs if e.name == "CHANNEL_CREATE"]
    assert b_create.variable("eslengine_leg") == "b" and b_create.variable("eslengine_var_note") == "a, b = c 'd' \\e"


def test_park_timeout_hangs_up_a_leg_nobody_transfers(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")
    bgapi(c, "{origination_uuid=%s,park_timeout=2:RECOVERY_ON_TIMER_EXPIRE}sofia/gateway/gw/15551230001 &park()"
          % A)
    started = time.monotonic()
    evs = c.events_until(hangup_of(A))
    assert evs[-1].get("Hangup-Cause") == "RECOVERY_ON_TIMER_EXPIRE"
    assert time.monotonic() - started >= 2 / SCALE


# -- in-process event log ------------------------------------------------------------

def test_events_are_kept_without_subscribers(switch: FakeSwitch) -> None:
    c = Client(switch.address)
    _clients.append(c)
    c.auth()
    bgapi(c, bridge_with("execute_on_answer_1=sched_hangup\\s+1"))
    assert switch.wait_until(lambda: any(n == "CHANNEL_HANGUP_COMPLETE" and h.get("Unique-ID") == A
                                         for n, h in switch.events), 2)
    mine = switch.events_for(JOB)
    names = [n for n, _h in mine]
    assert names[0] == "CHANNEL_CREATE" and "BACKGROUND_JOB" in names and "CHANNEL_BRIDGE" in names
    job = [h for n, h in mine if n == "BACKGROUND_JOB"][0]
    assert job["_body"] == "+OK %s\n" % A
    assert switch.events_for("nope") == []


def test_event_log_is_bounded() -> None:
    fs = FakeSwitch(events_kept=5)
    fs.start()
    try:
        c = Client(fs.address)
        c.auth()
        assert c.api("originate loopback/1000/default &park()").startswith("+OK")
        assert c.api("originate loopback/1001/default &park()").startswith("+OK")
        assert len(fs.events) == 5
        assert fs.events[-1][1]["Caller-Destination-Number"] == "1001"
        c.close()
    finally:
        fs.stop()


def test_time_scale_cli_flag_is_validated() -> None:
    with pytest.raises(SystemExit):
        main(["--time-scale", "0"])
    with pytest.raises(ValueError):
        FakeSwitch(time_scale=0)


# -- stages the real switch applies: duplicate uuids, enterprise, expansion ------

def test_a_shared_origination_uuid_fails_the_second_sofia_leg_of_a_group(switch: FakeSwitch) -> None:
    """Every leg of a , group gets the {} block: a second sofia leg cannot
    take the uuid the first holds ("Duplicate UUID!"), so only the first
    rings."""
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE")
    bgapi(c, "{origination_uuid=%s,originate_timeout=2}sofia/gateway/gw/15551230408,"
             "sofia/gateway/gw/15551230001 &park()" % A)
    evs = c.events_until(job_done)
    assert evs[-1].body == "-ERR NO_ANSWER\n"
    assert [e.get("Channel-Name") for e in evs if e.name == "CHANNEL_CREATE"] == ["sofia/gateway/gw/15551230408"]


def test_a_uuid_in_the_first_legs_own_block_lets_every_leg_ring(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE")
    bgapi(c, "{originate_timeout=4}[origination_uuid=%s,leg_timeout=3]sofia/gateway/gw/15551230408,"
             "[leg_timeout=3]sofia/gateway/gw/15551230001 &park()" % A)
    evs = c.events_until(job_done)
    creates = {e.get("Channel-Name"): e.get("Unique-ID") for e in evs if e.name == "CHANNEL_CREATE"}
    assert creates["sofia/gateway/gw/15551230408"] == A
    winner = evs[-1].body.split()[1]
    assert creates["sofia/gateway/gw/15551230001"] == winner != A


def test_enterprise_parts_are_dialled_at_once(switch: FakeSwitch) -> None:
    """:_: anywhere splits the dial string before any escape is read."""
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE")
    bgapi(c, "{origination_uuid=%s,note=\\:_:sofia/gateway/gw/19005550000,x=1}sofia/gateway/gw/15551230408 &park()"
          % A)
    evs = c.events_until(job_done)
    names = [e.get("Channel-Name") for e in evs if e.name == "CHANNEL_CREATE"]
    assert "sofia/gateway/gw/19005550000" in names
    assert "sofia/gateway/gw/15551230408" not in names  # inside the second part, after "x=1}"


def test_application_data_is_expanded_and_refused_with_an_escaped_quote(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE")
    bgapi(c, "{origination_uuid=%s,target=loopback/1000/default}loopback/1001/default &bridge(${target})" % A)
    c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    assert switch.channels[A].variables["current_application_data"] == "loopback/1000/default"
    c2 = listen(switch, "BACKGROUND_JOB CHANNEL_HANGUP_COMPLETE")
    c2.send("bgapi originate {origination_uuid=%s}loopback/1002/default &bridge(loopback/x\\\\'y/default)" % B,
            Job_UUID=JOB)
    c2.reply()
    evs = c2.events_until(hangup_of(B))
    assert [e.get("Hangup-Cause") for e in evs if hangup_of(B)(e)] == ["NORMAL_CLEARING"]


def test_expansion_rereads_a_stored_value_before_bridge_parses_it(switch: FakeSwitch) -> None:
    """uuid_setvar cleans its value once; bridge ${eslengine_bridge} then
    expands it (\\\\\\\\ is one backslash, \\\\' vanishes) before the block's own
    rounds: a value escaped for uuid_setvar alone loses its escapes."""
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_BRIDGE")
    bgapi(c, "{origination_uuid=%s,park_timeout=30}sofia/gateway/gw/15551230001 &park()" % A)
    c.events_until(job_done)
    # note=back\\slash escaped for the block's two rounds and uuid_setvar, not
    # for expansion: 8 backslashes on the wire, 4 stored, 2 after expansion,
    # 1 after the , round, and the = round reads "\\s" as a space.
    assert switch.api("uuid_setvar", "%s eslengine_bridge {eslengine_leg=b,note=back%sslash}"
                      "sofia/gateway/gw/15551230002" % (A, "\\" * 8), None) == "+OK\n"
    assert switch.api("uuid_transfer", "%s eslengine_connect XML eslengine" % A, None) == "+OK\n"
    evs = c.events_until(lambda e: e.name == "CHANNEL_BRIDGE")
    (b_create,) = [e for e in evs if e.name == "CHANNEL_CREATE"]
    assert b_create.variable("note") == "back lash"


def test_a_failover_leg_cannot_take_the_uuid_of_a_failed_sofia_leg(switch: FakeSwitch) -> None:
    """The failed leg's session lasts until the originate is over: the next
    sofia leg asking for its uuid fails "Duplicate UUID!" (a loopback leg
    takes it, as recorded)."""
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE")
    bgapi(c, "{origination_uuid=%s}sofia/gateway/gw/15551230486|sofia/gateway/gw/15551230001 &park()" % A)
    evs = c.events_until(job_done)
    assert evs[-1].body == "-ERR DESTINATION_OUT_OF_ORDER\n"
    assert [e.get("Channel-Name") for e in evs if e.name == "CHANNEL_CREATE"] == ["sofia/gateway/gw/15551230486"]


def test_legs_still_ringing_when_the_originating_channel_hangs_up_are_cancelled(switch: FakeSwitch) -> None:
    c = listen(switch, "BACKGROUND_JOB CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE")
    bgapi(c, "{origination_uuid=%s,target=sofia/gateway/gw/15551230408}sofia/gateway/gw/15551230001"
             " &bridge(${target})" % A)
    c.events_until(lambda e: e.name == "CHANNEL_CREATE" and e.get("Channel-Name", "").endswith("408"))
    switch.api("uuid_kill", A, None)
    evs = c.events_until(lambda e: e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Channel-Name", "").endswith("408"))
    assert evs[-1].get("Hangup-Cause") == "ORIGINATOR_CANCEL"

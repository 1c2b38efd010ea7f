"""The harness's switch works as the rest of the suite assumes: the shipped
configuration is in force, and the callee context answers by the
simulator's convention (eslengine/fakeswitch/scenario.py)."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from eslengine.config import Node
from eslengine.esl import EslConnection
from eslengine.fakeswitch.server import FakeSwitch
from eslengine.worker import WORKER_EVENT_FORMAT, WORKER_EVENTS

from .events import CALLEE_PROFILE, CARRIER_PROFILE
from .switch import SHIPPED, RealSwitch


def shipped_user_param(name: str) -> str:
    text = (SHIPPED / "directory" / "default" / "eslengine.xml").read_text(encoding="utf-8")
    found = re.search(r'<param name="%s" value="([^"]*)"/>' % re.escape(name), text)
    assert found is not None, name
    return found.group(1)


def test_the_simulator_takes_the_same_settings(real_switch: RealSwitch) -> None:
    sim = FakeSwitch(**real_switch.settings.fakeswitch_kwargs())

    assert (sim.board.ring_time, sim.board.talk_time) == (0.5, 2.0)


def test_the_admin_password_runs_api_status(real_switch: RealSwitch) -> None:
    status = real_switch.api("status")

    assert "is ready" in status
    assert "1000 session(s) max" in status
    assert real_switch.api("fsctl sps") == "+OK sessions per second: 100\n"


def test_the_shipped_pieces_are_loaded(real_switch: RealSwitch) -> None:
    assert real_switch.api("global_getvar domain") == "127.0.0.1"
    assert real_switch.api("acl 127.0.0.1 eslengine") == "true"
    assert real_switch.api("acl 192.0.2.10 eslengine") == "false"
    assert real_switch.api("user_exists id eslengine 127.0.0.1") == "true"
    assert '<extension name="eslengine_e164">' in real_switch.api("xml_locate dialplan context name eslengine")
    assert real_switch.api("fsctl max_sessions") == "+OK max sessions: 1000\n"


def test_every_listener_is_on_loopback(real_switch: RealSwitch) -> None:
    listeners = real_switch.listeners()

    assert {address for _proto, address, _port in listeners} == {"127.0.0.1"}
    tcp = {port for proto, _address, port in listeners if proto == "tcp"}
    ports = real_switch.ports
    assert {ports.esl, ports.carrier_sip, ports.callee_sip} <= tcp


def test_the_shipped_user_logs_in_with_userauth_and_gets_its_lists(real_switch: RealSwitch) -> None:
    with real_switch.open_socket() as conn:
        reply = conn.userauth(real_switch.esl_user, real_switch.esl_user_password)

    assert reply.text == "+OK accepted"
    assert reply.headers["Allowed-API"] == shipped_user_param("esl-allowed-api")
    assert reply.headers["Allowed-Events"] == shipped_user_param("esl-allowed-events")
    assert reply.headers["Allowed-LOG"] == "false"


def test_the_shipped_user_is_refused_a_command_not_on_its_list(real_switch: RealSwitch) -> None:
    with real_switch.connect() as conn:
        assert conn.send("api status").text == "-ERR permission denied"
        assert conn.send("bgapi status").text == "-ERR permission denied"
        assert conn.send("log debug").text == "-ERR permission denied"
        assert conn.api("uuid_exists %s" % uuid.uuid4()) == "false"


def test_the_shipped_user_subscribes_only_to_its_events(real_switch: RealSwitch) -> None:
    with real_switch.connect() as conn:
        assert conn.send("event json ALL").text == "-ERR permission denied"
        assert conn.send("event json CHANNEL_EXECUTE").text == "-ERR permission denied"
        assert conn.send("event json " + shipped_user_param("esl-allowed-events").replace(",", " ")).ok


def test_the_engines_client_logs_in_with_the_ready_made_url(real_switch: RealSwitch) -> None:
    node = Node.from_url(real_switch.freeswitch_url)
    conn = EslConnection(node, events=WORKER_EVENTS, event_format=WORKER_EVENT_FORMAT)
    conn.connect()
    try:
        assert conn.api("uuid_exists %s" % uuid.uuid4()).strip() == "false"
    finally:
        conn.close()

    assert (node.sps, node.max_sessions) == (100, 1000)


@pytest.mark.parametrize("login", ["userauth", "auth"])
def test_a_wrong_password_is_refused(real_switch: RealSwitch, login: str) -> None:
    with real_switch.open_socket() as conn:
        if login == "userauth":
            reply = conn.userauth(real_switch.esl_user, "not-" + real_switch.esl_user_password)
        else:
            reply = conn.auth("not-" + real_switch.password)

    assert reply.text == "-ERR invalid"


def test_an_originate_through_the_gateway_reaches_the_callee_which_answers(real_switch: RealSwitch) -> None:
    job = str(uuid.uuid4())
    mark = real_switch.events.mark()

    result = real_switch.bgapi(
        "originate {origination_uuid=%s,origination_caller_id_number=+15557770000,"
        "origination_caller_id_name=Acme,sip_h_X-Eslengine-Job=%s}sofia/gateway/selfgw/+15551230001 &park()"
        % (job, job))

    assert result == "+OK %s\n" % job
    callee = real_switch.events.wait_callee_leg([job], timeout=10, since=mark, ended=True)
    carrier = real_switch.events.wait_ended(job, timeout=10, since=mark)
    assert carrier.profile == CARRIER_PROFILE and carrier.direction == "outbound"
    assert carrier.names.index("CHANNEL_PROGRESS") < carrier.names.index("CHANNEL_ANSWER")
    assert carrier.hangup_cause == "NORMAL_CLEARING"
    assert carrier.var("sip_hangup_disposition") == "recv_bye"

    assert callee.profile == CALLEE_PROFILE and callee.direction == "inbound"
    assert callee.answered
    assert callee.destination_number == "+15551230001"
    assert (callee.caller_id_name, callee.caller_id_number) == ("Acme", "+15557770000")
    assert callee.sip_headers["X-Eslengine-Job"] == job
    assert [(a.name, a.data) for a in callee.applications] == [
        ("ring_ready", ""), ("sleep", "500"), ("answer", ""),
        ("playback", "silence_stream://2000"), ("hangup", "NORMAL_CLEARING")]
    assert callee.hangup_cause == "NORMAL_CLEARING"
    assert callee.var("read_codec") == "PCMU"


@pytest.mark.parametrize(("number", "cause", "sip_status"), [
    ("+15551230486", "USER_BUSY", "486"),
    ("+15551230404", "UNALLOCATED_NUMBER", "404"),
    ("+15551230503", "NORMAL_TEMPORARY_FAILURE", "503"),
])
def test_a_failing_number_fails_the_originate_with_its_cause(
        real_switch: RealSwitch, number: str, cause: str, sip_status: str) -> None:
    job = str(uuid.uuid4())
    mark = real_switch.events.mark()

    result = real_switch.bgapi("originate {origination_uuid=%s}sofia/gateway/selfgw/%s &park()" % (job, number))

    assert result == "-ERR %s\n" % cause
    carrier = real_switch.events.wait_ended(job, timeout=10, since=mark)
    callee = real_switch.events.wait_callee_leg([job], timeout=10, since=mark, ended=True)
    assert carrier.hangup_cause == cause
    assert carrier.var("sip_term_status") == sip_status
    assert "CHANNEL_ANSWER" not in carrier.names + callee.names
    assert callee.hangup_cause == cause
    assert [a.name for a in callee.applications] == ["hangup"]


def test_an_unanswered_call_rings_until_the_originate_timeout(real_switch: RealSwitch) -> None:
    job = str(uuid.uuid4())
    mark = real_switch.events.mark()
    began = time.monotonic()

    result = real_switch.bgapi(
        "originate {origination_uuid=%s,originate_timeout=2}sofia/gateway/selfgw/+15551230408 &park()" % job)

    # originate_timeout is counted in whole seconds of the wall clock
    # (switch_ivr_originate.c: elapsed = switch_epoch_time_now(NULL) - start),
    # so it ends between 1 and 2 seconds after the start.
    assert 1.0 <= time.monotonic() - began < 3.0
    assert result == "-ERR NO_ANSWER\n"
    carrier = real_switch.events.wait_ended(job, timeout=10, since=mark)
    callee = real_switch.events.wait_callee_leg([job], timeout=10, since=mark, ended=True)
    assert "CHANNEL_PROGRESS" in carrier.names
    assert carrier.hangup_cause == "NO_ANSWER"
    assert callee.hangup_cause == "ORIGINATOR_CANCEL"
    assert not callee.answered


def test_user_1000_rings_the_callee_through_the_domains_dial_string(real_switch: RealSwitch) -> None:
    job = str(uuid.uuid4())
    mark = real_switch.events.mark()

    result = real_switch.bgapi("originate {origination_uuid=%s}user/1000 &park()" % job)

    assert result == "+OK %s\n" % job
    callee = real_switch.events.wait_callee_leg([job], timeout=10, since=mark)
    assert callee.destination_number == "1000"
    assert real_switch.leg(job, mark).channel_name == "sofia/carrier/1000@%s" % real_switch.callee_address


@pytest.mark.parametrize(("job_id", "destination"), [
    ("00000000-0000-4000-8000-000000000000", "12ab"),
    ("not-a-uuid", "15551230001"),
    (None, "15551230001"),
], ids=["not_e164", "job_id_not_a_uuid", "no_job_id"])
def test_the_eslengine_context_refuses_what_is_not_an_engine_e164_call(
        real_switch: RealSwitch, job_id: str | None, destination: str) -> None:
    leg = str(uuid.uuid4())
    mark = real_switch.events.mark()
    variables = "origination_uuid=%s" % leg + ("" if job_id is None else ",eslengine_job_id=%s" % job_id)

    result = real_switch.bgapi("originate {%s}loopback/%s/eslengine &park()" % (variables, destination))

    assert result == "-ERR INVALID_NUMBER_FORMAT\n"
    b_leg = real_switch.events.legs(mark, lambda found: found.channel_name == "loopback/%s-b" % destination)[0]
    assert [a.name for a in b_leg.applications] == ["log", "hangup"]
    assert b_leg.applications[0].data == "WARNING eslengine: refused destination %s job %s" % (
        destination, job_id or "")
    assert not real_switch.events.legs(mark, lambda found: found.profile is not None)


def test_the_loopback_route_bridges_to_the_gateway_with_the_jobs_variables(real_switch: RealSwitch) -> None:
    job = str(uuid.uuid4())
    mark = real_switch.events.mark()

    real_switch.bgapi(
        "originate {origination_uuid=%s,eslengine_job_id=%s,eslengine_leg=a,origination_caller_id_number=+15557770000,"
        "origination_caller_id_name=Acme}loopback/15551230001/eslengine &park()" % (job, job))

    callee = real_switch.events.wait_callee_leg(job, timeout=10, since=mark, ended=True)
    legs = {leg.channel_name: leg for leg in real_switch.events.job_legs(job, mark)}
    assert set(legs) == {"loopback/15551230001-a", "loopback/15551230001-b", "sofia/carrier/15551230001"}
    assert legs["loopback/15551230001-a"].uuid == job
    bridge = legs["loopback/15551230001-b"].applications
    assert [(a.name, a.data) for a in bridge][:2] == [
        ("set", "hangup_after_bridge=true"),
        ("bridge", "{media_mix_inbound_outbound_codecs=true,eslengine_job_id=%s,eslengine_leg=a,eslengine_role=}"
                   "sofia/gateway/selfgw/15551230001" % job)]
    assert legs["sofia/carrier/15551230001"].var("eslengine_leg") == "a"
    assert callee.destination_number == "15551230001"
    assert (callee.caller_id_name, callee.caller_id_number) == ("Acme", "+15557770000")


def test_the_loopback_route_connects_the_callee(real_switch: RealSwitch) -> None:
    """The carrier leg offers the profile's codecs as well as the loopback
    leg's L16 (media_mix_inbound_outbound_codecs in the shipped context), so
    a callee that knows no L16 answers."""
    job = str(uuid.uuid4())
    mark = real_switch.events.mark()

    result = real_switch.bgapi(
        "originate {origination_uuid=%s,eslengine_job_id=%s}loopback/15551230001/eslengine &park()" % (job, job))

    carrier = [leg for leg in real_switch.events.job_legs(job, mark) if leg.profile == CARRIER_PROFILE]
    assert carrier and carrier[0].var("rtp_use_codec_string") != "L16@8000h@20i"
    assert result == "+OK %s\n" % job

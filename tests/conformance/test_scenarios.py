"""The same calls through the whole engine (API and worker processes) against
the simulator and against a real FreeSWITCH, compared.

Each scenario is one request. It is placed on both switches at once, each
with its own API and worker, and once both calls are over the two are
summed up the same way and must be equal:

* the call record: status, hangup cause, each party's cause;
* the channels each party got: the numbers dialled and each leg's hangup
  cause;
* the applications that ran on each party's legs (the ones the engine's
  options make the switch run);
* what the called side received on each leg that reached it: caller ID
  name and number, and the X- headers (on the real switch, as the callee
  profile's inbound leg saw them in the INVITE; on the simulator, as the
  outbound leg's variables);
* the custom variables each party's legs carry.

Every call goes through the shipped event-socket user (``userauth``), the
shipped dialplan context and the route ``sofia/gateway/<gw>/{e164}``: real
SIP between two profiles of the test switch.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
import pytest

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.stack import LocalStack
from tests.conftest import RedisServer

from .events import Leg
from .switch import RealSwitch

FINAL = ("completed", "failed", "cancelled")
GATEWAY = "selfgw"
# Applications the engine's options make the switch run on a party's legs.
APPS = frozenset({"bridge", "playback", "speak", "record_session", "sched_hangup", "sched_broadcast", "park",
                  "answer"})
SIM_PASSWORD = "pw-conformance"


@dataclass
class Target:
    name: str
    stacks: dict[str, LocalStack]


def _env(prefix: str, url: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "ESLENGINE_KEY_PREFIX": prefix,
        "ESLENGINE_FREESWITCH": url,
        "ESLENGINE_GATEWAY": GATEWAY,
        "ESLENGINE_ROUTE_TEMPLATE": "sofia/gateway/{gateway}/{e164}",
        "ESLENGINE_USER_DOMAIN": "127.0.0.1",
        "ESLENGINE_LOG_LEVEL": "INFO",
        **extra,
    }


# The engine's two ways of starting the second party's leg, and the loopback
# route through the shipped eslengine dialplan context.
MODES = {"engine": {}, "switch": {"ESLENGINE_BRIDGE": "switch"},
         "loopback": {"ESLENGINE_ROUTE_TEMPLATE": "loopback/{number}/eslengine"}}
BRIDGE_MODES = ("engine", "switch")


@pytest.fixture(scope="module")
def simulator(real_switch: RealSwitch) -> Iterator[FakeSwitch]:
    # ...777 stays up until the caller hangs up, as in conf/dialplan/callee.xml.
    scenario = Scenario.from_dict({"rules": [{"match": "777$", "outcome": "answer", "talk": 3600}]})
    sim = FakeSwitch(("127.0.0.1", 0), SIM_PASSWORD, scenario=scenario, **real_switch.settings.fakeswitch_kwargs())
    sim.start()
    yield sim
    sim.stop()


def _stacks(redis_server: RedisServer, port: int, url: str) -> dict[str, LocalStack]:
    stacks: dict[str, LocalStack] = {}
    try:
        for mode, extra in MODES.items():
            stack = LocalStack(redis_url=redis_server.url, switch_port=port,
                               env=_env("conf-%s-%s" % (mode, uuid.uuid4().hex[:6]), url, extra))
            stacks[mode] = stack
            stack.start()
    except BaseException:
        for stack in stacks.values():
            stack.stop()
        raise
    return stacks


@pytest.fixture(scope="module")
def targets(redis_server: RedisServer, real_switch: RealSwitch, simulator: FakeSwitch) -> Iterator[list[Target]]:
    sim_url = "esl://:%s@127.0.0.1:%d?name=sim&sps=%d&max_sessions=%d" % (
        SIM_PASSWORD, simulator.address[1], real_switch.settings.sps, real_switch.settings.max_sessions)
    built = [Target("simulator", _stacks(redis_server, simulator.address[1], sim_url))]
    try:
        built.append(Target("freeswitch", _stacks(redis_server, real_switch.esl_port, real_switch.freeswitch_url)))
        yield built
    finally:
        for target in built:
            for stack in target.stacks.values():
                stack.stop()
                stack.cleanup()


# ---------------------------------------------------------------- observing


def _record(stack: LocalStack, job_id: str) -> dict[str, Any]:
    code, doc, _ = stack.http("GET", "/v1/calls/%s" % job_id)
    assert code == 200, doc
    return doc


def _wait_final(stack: LocalStack, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        doc = _record(stack, job_id)
        if doc["status"] in FINAL:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError("call %s not over after %.0fs: %s" % (job_id, timeout, doc))
        gevent.sleep(0.05)


def _wait_status(stack: LocalStack, job_id: str, statuses: tuple[str, ...], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while _record(stack, job_id)["status"] not in statuses:
        assert time.monotonic() < deadline, "call %s never reached %s" % (job_id, statuses)
        gevent.sleep(0.05)


# Channel variables of the engine's own compared on both switches, beside
# the custom (eslengine_var_*) ones.
SHOWN_VARIABLES = frozenset({"variable_hold_music"})


@dataclass
class LegView:
    party: str
    destination: str
    cause: str
    apps: tuple[str, ...]
    caller: tuple[str, str]          # what the called side saw: (name, number)
    headers: tuple[tuple[str, str], ...]  # X- headers the called side received
    variables: tuple[tuple[str, str], ...]  # eslengine_var_* on the leg
    reached: bool                    # the called side got the call
    creates: int                     # channels created with this uuid (a retry reuses it)


def _summary(record: dict[str, Any], legs: list[LegView]) -> dict[str, Any]:
    out: dict[str, Any] = {k: record.get(k) for k in ("status", "hangup_cause", "a_hangup_cause",
                                                       "b_hangup_cause", "ended_by", "failed_party")}
    for party in ("a", "b"):
        mine = sorted((leg for leg in legs if leg.party == party), key=lambda leg: (leg.destination, leg.cause))
        out[party] = [
            {"destination": leg.destination, "cause": leg.cause, "creates": leg.creates,
             "apps": sorted(set(leg.apps)),
             "received": (leg.caller, dict(leg.headers)) if leg.reached else None,
             "variables": dict(leg.variables)}
            for leg in mine
        ]
    return out


def _sim_legs(sim: FakeSwitch, job_id: str) -> list[LegView]:
    by_uuid: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for name, headers in sim.events_for(job_id):
        uid = headers.get("Unique-ID", "")
        if headers.get("variable_eslengine_leg") in ("a", "b"):
            by_uuid.setdefault(uid, []).append((name, headers))
    views = []
    for events in by_uuid.values():
        created = next((h for n, h in events if n == "CHANNEL_CREATE"), events[0][1])
        ended = next((h for n, h in events if n == "CHANNEL_HANGUP_COMPLETE"), {})
        final = ended or events[-1][1]
        reached = any(n in ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER") for n, _ in events) or (
            final.get("Hangup-Cause") in ("USER_BUSY", "UNALLOCATED_NUMBER", "NORMAL_TEMPORARY_FAILURE"))
        views.append(LegView(
            party=created["variable_eslengine_leg"],
            destination=created.get("Caller-Destination-Number", ""),
            cause=ended.get("Hangup-Cause", ""),
            apps=tuple(h.get("Application", "") for n, h in events
                       if n == "CHANNEL_EXECUTE" and h.get("Application") in APPS),
            caller=_as_received(created.get("Caller-Caller-ID-Name", ""), created.get("Caller-Caller-ID-Number", "")),
            headers=tuple(sorted((k[len("variable_sip_h_"):], v) for k, v in final.items()
                                 if k.startswith("variable_sip_h_X-") and not k.startswith("variable_sip_h_X-Conf"))),
            variables=tuple(sorted((k[len("variable_"):], v) for k, v in final.items()
                                   if k.startswith("variable_eslengine_var_") or k in SHOWN_VARIABLES)),
            reached=reached,
            creates=sum(1 for n, _ in events if n == "CHANNEL_CREATE"),
        ))
    return views


def _as_received(name: str, number: str) -> tuple[str, str]:
    """What a SIP callee makes of a caller ID: a From header with no display
    name shows the number as the name."""
    return (name or number, number)


def _real_legs(rs: RealSwitch, job_id: str, since: int) -> list[LegView]:
    views = []
    for leg in rs.events.job_legs(job_id, since):
        party = leg.var("eslengine_leg")
        if party not in ("a", "b") or leg.profile == "carrier" and leg.channel_name.startswith("loopback/"):
            continue
        callee = rs.events.callee_legs([leg.uuid], since)
        seen: Leg | None = callee[0] if callee else None
        views.append(LegView(
            party=party,
            destination=leg.destination_number or "",
            cause=leg.hangup_cause or "",
            apps=tuple(app.name for app in leg.applications if app.name in APPS),
            caller=(seen.caller_id_name or "", seen.caller_id_number or "") if seen else ("", ""),
            headers=tuple(sorted((k, v) for k, v in (seen.sip_headers if seen else {}).items()
                                 if not k.startswith("X-Conf"))),
            variables=tuple(sorted((name[len("variable_"):], value) for name, value in _variables(leg)
                                   if name.startswith("variable_eslengine_var_") or name in SHOWN_VARIABLES)),
            reached=seen is not None,
            creates=leg.names.count("CHANNEL_CREATE"),
        ))
    return views


def _variables(leg: Leg) -> list[tuple[str, str]]:
    final = leg.first("CHANNEL_HANGUP_COMPLETE") or (leg.events[-1] if leg.events else None)
    if final is None:
        return []
    return [(k, v) for k, v in final.headers.items() if k.startswith("variable_")]


def _legs_over(rs: RealSwitch, sim: FakeSwitch, job_ids: dict[str, str], since: int, timeout: float = 15.0) -> None:
    """Wait until every leg of both calls has its HANGUP_COMPLETE."""
    deadline = time.monotonic() + timeout
    while True:
        real = rs.events.job_legs(job_ids["freeswitch"], since)
        sim_events = sim.events_for(job_ids["simulator"])
        sim_up = {h.get("Unique-ID") for n, h in sim_events if n == "CHANNEL_CREATE"} - {
            h.get("Unique-ID") for n, h in sim_events if n == "CHANNEL_HANGUP_COMPLETE"}
        if all(leg.ended for leg in real) and not sim_up:
            return
        assert time.monotonic() < deadline, "legs still up: real %s sim %s" % (
            [leg.uuid for leg in real if not leg.ended], sim_up)
        gevent.sleep(0.1)


@dataclass
class Run:
    records: dict[str, dict[str, Any]]
    summaries: dict[str, dict[str, Any]]


def run(targets: list[Target], rs: RealSwitch, sim: FakeSwitch, body: dict[str, Any], *, mode: str = "engine",
        during: Any = None, timeout: float = 30.0) -> Run:
    """Place ``body`` on both switches, wait for both calls to end, and
    return their records and summaries. ``during(stack, job_id)`` runs on
    each while the call is up (a cancel, say)."""
    since = rs.events.mark()
    job_ids: dict[str, str] = {}
    for target in targets:
        code, doc, _ = target.stacks[mode].http("POST", "/v1/calls", body)
        assert code == 202, (target.name, doc)
        job_ids[target.name] = str(doc["id"])
    if during is not None:
        greenlets = [gevent.spawn(during, t.stacks[mode], job_ids[t.name]) for t in targets]
        gevent.joinall(greenlets, raise_error=True)
    records = {t.name: _wait_final(t.stacks[mode], job_ids[t.name], timeout) for t in targets}
    _legs_over(rs, sim, job_ids, since)
    summaries = {
        "simulator": _summary(records["simulator"], _sim_legs(sim, job_ids["simulator"])),
        "freeswitch": _summary(records["freeswitch"], _real_legs(rs, job_ids["freeswitch"], since)),
    }
    return Run(records, summaries)


RECORD_FIELDS = ("status", "hangup_cause", "a_hangup_cause", "b_hangup_cause")


# (scenario, simulator's outcome, FreeSWITCH's outcome, the whole summary agreed):
# printed as a table at the end of the run (conftest.pytest_terminal_summary).
RESULTS: list[tuple[str, str, str, str]] = []


def _outcome(record: dict[str, Any]) -> str:
    causes = "/".join(record.get(k) or "-" for k in ("a_hangup_cause", "b_hangup_cause"))
    return "%s %s (a/b %s)" % (record.get("status"), record.get("hangup_cause") or "-", causes)


def _note(result: Run, agreed: str) -> None:
    test = os.environ.get("PYTEST_CURRENT_TEST", "?").split("::", 1)[-1].rsplit(" ", 1)[0]
    RESULTS.append((test, _outcome(result.records["simulator"]), _outcome(result.records["freeswitch"]), agreed))


def same_record(result: Run) -> dict[str, Any]:
    """The call records agree (for the loopback route, where the simulator
    has no carrier leg behind the loopback pair)."""
    sim, real = ({k: r.get(k) for k in RECORD_FIELDS} for r in (result.records["simulator"],
                                                                 result.records["freeswitch"]))
    _note(result, "record" if sim == real else "DIFFERS")
    assert sim == real, _diff(sim, real)
    return real


def same(result: Run) -> dict[str, Any]:
    """The summary both switches agree on (the test fails on any difference)."""
    sim, real = result.summaries["simulator"], result.summaries["freeswitch"]
    _note(result, "all" if sim == real else "DIFFERS")
    assert sim == real, _diff(sim, real)
    return real


def _diff(sim: dict[str, Any], real: dict[str, Any]) -> str:
    lines = ["simulator and FreeSWITCH differ:"]
    for key in sorted(set(sim) | set(real)):
        if sim.get(key) != real.get(key):
            lines.append("  %s:\n    simulator:  %r\n    freeswitch: %r" % (key, sim.get(key), real.get(key)))
    return "\n".join(lines)


# ---------------------------------------------------------------- scenarios

A, B = "+15551230001", "+15551230002"
# Stays up until the caller hangs up.
LONG_A, LONG_B = "+15551230777", "+15552220777"


@pytest.mark.parametrize("mode", BRIDGE_MODES)
def test_connect(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch, mode: str) -> None:
    got = same(run(targets, real_switch, simulator, {"a": A, "b": B}, mode=mode))
    assert (got["status"], got["hangup_cause"]) == ("completed", "NORMAL_CLEARING")
    assert [leg["destination"] for leg in got["a"]] == [A] and [leg["destination"] for leg in got["b"]] == [B]


@pytest.mark.parametrize(("body", "status", "cause"), [
    ({"a": A, "b": "+15551230486"}, "failed", "USER_BUSY"),
    ({"a": "+15551230486", "b": B}, "failed", "USER_BUSY"),
    ({"a": {"to": "+15551230408", "timeout": 5}, "b": B}, "failed", "NO_ANSWER"),
    ({"a": LONG_A, "b": {"to": "+15551230408", "timeout": 5}}, "failed", "NO_ANSWER"),
    ({"a": A, "b": {"to": "+15551230408", "timeout": 5}}, "failed", "ORIGINATOR_CANCEL"),
    ({"a": "+15551230404", "b": B}, "failed", "UNALLOCATED_NUMBER"),
    ({"a": A, "b": "+15551230503"}, "failed", "NORMAL_TEMPORARY_FAILURE"),
], ids=["b-busy", "a-busy", "a-no-answer", "b-no-answer", "a-hangs-up-while-b-rings", "unallocated",
        "temporary-failure"])
def test_failures(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch, body: dict[str, Any],
                  status: str, cause: str, request: pytest.FixtureRequest) -> None:
    got = same(run(targets, real_switch, simulator, body))
    assert (got["status"], got["hangup_cause"]) == (status, cause)
    assert got["failed_party"] == FAILED_PARTY[request.node.callspec.id]


# Whose leg ended each failure (test_failures' ids).
FAILED_PARTY = {"b-busy": "b", "a-busy": "a", "a-no-answer": "a", "b-no-answer": "b", "a-hangs-up-while-b-rings": "a",
                "unallocated": "a", "temporary-failure": "b"}


def test_cancel_while_ringing(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    def cancel(stack: LocalStack, job_id: str) -> None:
        _wait_status(stack, job_id, ("ringing",))
        assert stack.http("DELETE", "/v1/calls/%s" % job_id)[0] == 202

    got = same(run(targets, real_switch, simulator, {"a": {"to": "+15551230408", "timeout": 30}, "b": B},
                   during=cancel))
    assert got["status"] == "cancelled"


def test_hang_up_a_bridged_call(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    def hang_up(stack: LocalStack, job_id: str) -> None:
        _wait_status(stack, job_id, ("bridged",))
        assert stack.http("DELETE", "/v1/calls/%s" % job_id)[0] == 202

    result = run(targets, real_switch, simulator, {"a": LONG_A, "b": LONG_B}, during=hang_up)
    # hupall hangs up both legs of the job while the bridge hangs up the one
    # the other left: on a real switch the second leg ends ORIGINATOR_CANCEL
    # (hupall first) or NORMAL_CLEARING (the bridge first), run to run.
    either = {"ORIGINATOR_CANCEL", "NORMAL_CLEARING"}
    for summary in result.summaries.values():
        assert summary["b_hangup_cause"] in either and summary["b"][0]["cause"] in either, summary
        summary["b_hangup_cause"] = summary["b"][0]["cause"] = "ORIGINATOR_CANCEL or NORMAL_CLEARING"
    got = same(result)
    # It had connected: completed, ended by the API's hangup.
    assert (got["status"], got["a_hangup_cause"], got["ended_by"]) == ("completed", "ORIGINATOR_CANCEL", "api")


def test_caller_ids_as_the_called_side_sees_them(targets: list[Target], real_switch: RealSwitch,
                                                 simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {
        "a": {"to": A, "caller_id_number": "+15557770000", "caller_id_name": "Acme Support"},
        "b": {"to": B, "show_other_number": True, "caller_id_name": "Web lead"}}))
    assert got["a"][0]["received"][0] == ("Acme Support", "+15557770000")
    assert got["b"][0]["received"][0] == ("Web lead", A)


def test_anonymous(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {"a": A, "b": {"to": B, "anonymous": True},
                                                     "caller_id_number": "+15557770000"}))
    assert got["status"] == "completed"


@pytest.mark.parametrize("mode", BRIDGE_MODES)
def test_x_headers_as_received(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch,
                               mode: str) -> None:
    got = same(run(targets, real_switch, simulator, {
        "a": {"to": A, "sip_headers": {"X-Campaign": "spring sale", "X-A-Only": "1"}},
        "b": {"to": B, "sip_headers": {"X-Campaign": "b's own"}}}, mode=mode))
    assert got["a"][0]["received"][1] == {"X-Campaign": "spring sale", "X-A-Only": "1"}
    assert got["b"][0]["received"][1] == {"X-Campaign": "b's own"}


def test_sequential_destinations(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {"a": {"to": ["+15551230486", A]}, "b": B}))
    assert got["status"] == "completed" and len(got["a"]) == 2


@pytest.mark.parametrize("order", [["+15551230408", A], [A, "+15551230408"]], ids=["second-answers", "first-answers"])
def test_simultaneous_destinations(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch,
                                   order: list[str]) -> None:
    result = run(targets, real_switch, simulator, {"a": {"to": order, "mode": "simultaneous", "timeout": 10},
                                                   "b": B})
    got = same(result)
    assert got["status"] == "completed" and len(got["a"]) == 2
    for name, record in result.records.items():
        assert record["a_uuid"], name


def test_retries(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {"a": {"to": "+15551230503", "retries": 1}, "b": B}))
    assert (got["status"], got["hangup_cause"]) == ("failed", "NORMAL_TEMPORARY_FAILURE")
    assert [leg["creates"] for leg in got["a"]] == [2]   # the retry takes the job id again


def test_max_duration_and_warnings(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {
        "a": LONG_A, "b": LONG_B, "max_duration": 10, "warnings": [{"after": 2}, {"before_end": 3}]}, timeout=40))
    assert (got["status"], got["hangup_cause"]) == ("completed", "ALLOTTED_TIMEOUT")


def test_recording(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    result = run(targets, real_switch, simulator, {"a": A, "b": B, "record": True})
    got = same(result)
    assert got["status"] == "completed"
    assert "record_session" in got["b"][0]["apps"]


def test_music_on_hold(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {"a": A, "b": B, "music_on_hold": "moh"}))
    assert got["status"] == "completed"
    for party in ("a", "b"):
        assert got[party][0]["variables"] == {"hold_music": "local_stream://moh"}


def test_ringback(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    got = same(run(targets, real_switch, simulator, {"a": A, "b": B, "ringback": "uk-ring"}))
    assert got["status"] == "completed"


HOSTILE = ["O'Brien", "back\\slash", "a, b = 'c' \"d\" \\e ;!@~", "in  side", "it\\'s \\\\ \\s \\, \\$x $5",
           "caf\u00e9 \u4e2d\u6587"]


@pytest.mark.parametrize("mode", BRIDGE_MODES)
@pytest.mark.parametrize("value", HOSTILE)
def test_client_text_on_every_path(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch,
                                   mode: str, value: str) -> None:
    name = value if '"' not in value and "\\" not in value else "Caller"
    got = same(run(targets, real_switch, simulator, {
        "a": {"to": A, "caller_id_name": name, "sip_headers": {"X-Note": value}},
        "b": {"to": B, "caller_id_name": name, "sip_headers": {"X-Note": value}},
        "variables": {"note": value}}, mode=mode))
    assert got["status"] == "completed"
    for party in ("a", "b"):
        leg = got[party][0]
        assert leg["variables"] == {"eslengine_var_note": value}
        assert leg["received"][1] == {"X-Note": value}


# ---------------------------------------------------------------- the loopback route


def _callee_views(rs: RealSwitch, job_id: str) -> dict[str, list[tuple[str, str]]]:
    """party -> the caller IDs the callee saw on the legs that reached it."""
    out: dict[str, list[tuple[str, str]]] = {}
    for leg in rs.events.job_legs(job_id):
        party = leg.var("eslengine_leg")
        if leg.profile != "carrier" or party not in ("a", "b"):
            continue
        for seen in rs.events.callee_legs([leg.uuid]):
            out.setdefault(party, []).append((seen.caller_id_name or "", seen.caller_id_number or ""))
    return out


@pytest.mark.parametrize(("body", "status", "cause"), [
    ({"a": A, "b": B}, "completed", "NORMAL_CLEARING"),
    ({"a": A, "b": "+15551230486"}, "failed", "USER_BUSY"),
    ({"a": LONG_A, "b": {"to": "+15551230408", "timeout": 5}}, "failed", "NO_ANSWER"),
    ({"a": {"to": "+15551230408", "timeout": 5}, "b": B}, "failed", "NO_ANSWER"),
    ({"a": A, "b": "+15551230503"}, "failed", "NORMAL_TEMPORARY_FAILURE"),
], ids=["connect", "b-busy", "b-no-answer", "a-no-answer", "b-temporary-failure"])
def test_the_loopback_route(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch,
                            body: dict[str, Any], status: str, cause: str) -> None:
    """ESLENGINE_ROUTE_TEMPLATE=loopback/{number}/eslengine: each party is a
    loopback pair whose -b leg the shipped context bridges to the carrier.
    The record is the gateway route's, and the job's caller IDs reach the
    carrier for both parties."""
    body = {**body, "caller_id_number": "+15557770000", "caller_id_name": "Acme Support"}
    result = run(targets, real_switch, simulator, body, mode="loopback")
    got = same_record(result)
    assert (got["status"], got["hangup_cause"]) == (status, cause)
    seen = _callee_views(real_switch, result.records["freeswitch"]["id"])
    for party, caller_ids in seen.items():
        assert set(caller_ids) == {("Acme Support", "+15557770000")}, (party, caller_ids)
    assert "a" in seen and ("b" in seen or status == "failed" and body["a"] != A)


def test_the_loopback_route_with_no_caller_id(targets: list[Target], real_switch: RealSwitch,
                                              simulator: FakeSwitch) -> None:
    """The second party sees the first party's number, as on the gateway
    route, not the loopback leg's "Outbound Call" <eslengine>."""
    seen = {}
    for mode in ("loopback", "engine"):
        result = run(targets, real_switch, simulator, {"a": A, "b": B}, mode=mode)
        assert same_record(result)["status"] == "completed"
        seen[mode] = _callee_views(real_switch, result.records["freeswitch"]["id"])
    assert seen["loopback"] == seen["engine"]
    assert seen["loopback"]["b"] == [(A, A)]


# ---------------------------------------------------------------- media


def _sound_file(real_switch: RealSwitch, relative: str) -> None:
    """A second of 8 kHz silence where the switch looks for ``relative``
    (no sound_prefix here: relative to its sounds directory)."""
    import wave

    path = real_switch.workdir / "sounds" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000)


@pytest.mark.parametrize("mode", BRIDGE_MODES)
def test_announcement_before_the_second_party(targets: list[Target], real_switch: RealSwitch,
                                              simulator: FakeSwitch, mode: str) -> None:
    _sound_file(real_switch, "eslengine/hello.wav")
    since = real_switch.events.mark()
    result = run(targets, real_switch, simulator, {"a": A, "b": B,
                                                   "announcement": {"file": "eslengine/hello.wav"}}, mode=mode)
    got = same(result)
    assert got["status"] == "completed" and "playback" in got["a"][0]["apps"]
    # On the real switch the file played, then the second party was rung.
    job = result.records["freeswitch"]["id"]
    events = real_switch.events.events(since)
    played = [i for i, e in enumerate(events) if e.name == "CHANNEL_EXECUTE_COMPLETE"
              and e.get("Application") == "playback" and e.uuid == job]
    b_created = [i for i, e in enumerate(events) if e.name == "CHANNEL_CREATE" and e.variable("eslengine_leg") == "b"]
    assert played and b_created and played[0] < b_created[0]
    assert events[played[0]].get("Application-Response") == "FILE PLAYED"


def test_the_recording_is_written(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch) -> None:
    result = run(targets, real_switch, simulator, {"a": A, "b": B, "record": True})
    got = same(result)
    assert got["status"] == "completed"
    real = result.records["freeswitch"]
    # The switch's own recordings_dir (global_getvar), where it wrote the file.
    assert real["recording"] == "%s/%s.wav" % (real_switch.api("global_getvar recordings_dir").strip(), real["id"])
    deadline = time.monotonic() + 5
    path = Path(real["recording"])
    while not (path.exists() and path.stat().st_size > 44):
        assert time.monotonic() < deadline, "no recording at %s" % path
        gevent.sleep(0.1)
    sim = result.records["simulator"]
    assert sim["recording"] == "%s/var/lib/freeswitch/recordings/%s.wav" % (simulator.base_dir, sim["id"])


@pytest.mark.parametrize("extra", [{"announcement": {"file": "eslengine/hello.wav"}}, {"media": "bypass"}],
                         ids=["connect-extension", "bypass-media"])
@pytest.mark.parametrize("value", ["O'Brien", "back\\slash", "a, b = 'c' \"d\" \\e ;!@~", "it\\'s \\\\ \\s \\, \\$x $5"])
def test_client_text_on_the_other_paths(targets: list[Target], real_switch: RealSwitch, simulator: FakeSwitch,
                                        extra: dict[str, Any], value: str) -> None:
    """The connect extension with something to play first (the second
    party's dial string rides in the first leg's block), and media bypass
    (&bridge with the first leg's eslengine_bridge), in the switch mode
    where the originate carries the second dial string itself."""
    _sound_file(real_switch, "eslengine/hello.wav")
    got = same(run(targets, real_switch, simulator, {
        "a": {"to": A, "sip_headers": {"X-Note": value}}, "b": {"to": B, "sip_headers": {"X-Note": value}},
        "variables": {"note": value}, **extra}, mode="switch"))
    assert got["status"] == "completed"
    for party in ("a", "b"):
        assert got[party][0]["variables"] == {"eslengine_var_note": value}
        assert got[party][0]["received"][1] == {"X-Note": value}

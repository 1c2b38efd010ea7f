"""The switch's own limits win, on a real FreeSWITCH.

An operator's node URL may say more than the switch allows: ``sps=1000``
while switch.conf.xml says 100, or a limit lowered live with
``fsctl sps <n>``. The engine reads the switch's own limits (``fsctl sps``,
``fsctl max_sessions``) and paces by the lower value; an originate the
switch's throttle refuses anyway (``-ERR DESTINATION_OUT_OF_ORDER`` with no
channel) is placed again, never ended failed. Here every call of a burst
must connect.

Two switches: the "caller" switch the engine drives (sps 100) sends every
leg through its carrier gateway to the callee profile of a second switch,
which answers. With one switch the called side's inbound legs would be
created on the same switch and spend its sessions-per-second too, and the
engine cannot pace sessions it does not create. The same burst runs on the
simulator with the same limits.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.stack import LocalStack
from tests.conftest import RedisServer

from .switch import RealSwitch, SwitchSettings

FINAL = ("completed", "failed", "cancelled")
SWITCH_SPS = 100
URL_SPS = 1000
BURST = 200
SIM_PASSWORD = "pw-limits"
# Two legs a call on each switch, a few seconds each: room for every one.
CALLER = SwitchSettings(sps=SWITCH_SPS, max_sessions=1000, ring_time=0.2, talk_time=1.0, rtp_ports=1200)
CALLEE = SwitchSettings(sps=2000, max_sessions=2000, ring_time=0.2, talk_time=1.0, rtp_ports=1200)


@pytest.fixture(scope="module")
def switches() -> Iterator[tuple[RealSwitch, RealSwitch]]:
    callee = RealSwitch(CALLEE)
    callee.start()
    try:
        caller = RealSwitch(CALLER, gateway_proxy=callee.callee_address)
        caller.start()
        try:
            yield caller, callee
        finally:
            caller.stop()
    finally:
        callee.stop()


def _stack(redis_server: RedisServer, port: int, url: str) -> LocalStack:
    return LocalStack(redis_url=redis_server.url, switch_port=port, workers=0, env={
        "ESLENGINE_KEY_PREFIX": "limits-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": url,
        "ESLENGINE_GATEWAY": "selfgw",
        "ESLENGINE_ROUTE_TEMPLATE": "sofia/gateway/{gateway}/{e164}",
        "ESLENGINE_USER_DOMAIN": "127.0.0.1",
        "ESLENGINE_LOG_LEVEL": "INFO",
    })


def _push(stack: LocalStack, count: int, first: int, *, a_waits: bool = False) -> list[str]:
    """Queue ``count`` calls; with ``a_waits`` the first party (a number
    ending 777, see conf/dialplan/callee.xml) stays on the line until the
    call ends, however long the second party takes."""
    ids = []
    for i in range(first, first + count):
        a = "+1555%03d0777" % (i % 1000) if a_waits else "+1555300%04d" % i
        code, doc, _ = stack.http("POST", "/v1/calls", {"a": a, "b": "+1555400%04d" % i})
        assert code == 202, doc
        ids.append(str(doc["id"]))
    return ids


def _finals(stack: LocalStack, ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    done: dict[str, dict[str, Any]] = {}
    while len(done) < len(ids):
        for job_id in ids:
            if job_id not in done:
                code, doc, _ = stack.http("GET", "/v1/calls/%s" % job_id)
                assert code == 200, doc
                if doc["status"] in FINAL:
                    done[job_id] = doc
        if len(done) < len(ids):
            assert time.monotonic() < deadline, "%d of %d calls not over after %.0fs" % (
                len(ids) - len(done), len(ids), timeout)
            gevent.sleep(0.5)
    return [done[job_id] for job_id in ids]


def _outcomes(docs: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for doc in docs:
        key = (doc["status"], doc.get("hangup_cause") or "-")
        counts[key] = counts.get(key, 0) + 1
    return counts


def _burst_connects(stack: LocalStack, count: int, first: int) -> list[dict[str, Any]]:
    """Queue ``count`` calls while no worker runs, start one, and return
    every record once all are over: each must have connected."""
    stack.start()
    try:
        ids = _push(stack, count, first, a_waits=True)
        stack.start_worker()
        docs = _finals(stack, ids, timeout=120)
    except BaseException:
        stack.stop()
        raise
    connected = [d for d in docs if d["status"] == "completed" and "bridged" in d["timestamps"]]
    assert len(connected) == count, "only %d of %d connected: %s\n%s" % (
        len(connected), count, _outcomes(docs), stack.processes["worker"].log()[-3000:])
    return docs


def _refusals(switch: RealSwitch, since: int) -> int:
    """Originates the switch's throttle refused since ``since``."""
    return sum(1 for event in switch.events.events(since, "BACKGROUND_JOB")
               if event.body.startswith("-ERR DESTINATION_OUT_OF_ORDER"))


def test_a_url_saying_more_sps_than_the_switch_allows_connects_every_call(
        redis_server: RedisServer, switches: tuple[RealSwitch, RealSwitch]) -> None:
    caller, _ = switches
    assert caller.api("fsctl sps") == "+OK sessions per second: %d\n" % SWITCH_SPS
    stack = _stack(redis_server, caller.esl_port, caller.url_with_limits(URL_SPS, 1000))
    mark = caller.events.mark()
    try:
        _burst_connects(stack, BURST, 0)
        log = stack.processes["worker"].log()
        refused = _refusals(caller, mark)
    finally:
        stack.stop()
        stack.cleanup()
    # The worker read the switch's limit before its first originate, so the
    # throttle had nothing to refuse.
    assert "the switch allows sps=%d" % SWITCH_SPS in log, log[-2000:]
    assert refused == 0


def test_an_sps_lowered_live_is_followed_and_every_call_connects(
        redis_server: RedisServer, switches: tuple[RealSwitch, RealSwitch]) -> None:
    caller, _ = switches
    stack = _stack(redis_server, caller.esl_port, caller.url_with_limits(SWITCH_SPS, 1000))
    try:
        stack.start()
        # The worker starts believing 100; the operator then lowers it to 20
        # and 80 calls come at once: until the worker reads the new limit
        # (every 10 s, or at once after a refusal) the switch refuses
        # sessions, first parties' and second parties' alike.
        stack.start_worker()
        ids = _push(stack, 2, 1000)
        _finals(stack, ids, timeout=30)
        assert caller.api("fsctl sps 20") == "+OK sessions per second: 20\n"
        mark = caller.events.mark()
        ids = _push(stack, 80, 2000, a_waits=True)
        docs = _finals(stack, ids, timeout=120)
        connected = [d for d in docs if d["status"] == "completed" and "bridged" in d["timestamps"]]
        assert len(connected) == len(ids), "only %d of %d connected: %s\n%s" % (
            len(connected), len(ids), _outcomes(docs),
            "\n".join(str({k: d.get(k) for k in ("id", "status", "failed_party", "a_hangup_cause",
                                                  "b_hangup_cause", "attempts", "history")})
                      for d in docs if d not in connected))
        print("throttle refusals after the live change: %d" % _refusals(caller, mark))
    finally:
        caller.api("fsctl sps %d" % SWITCH_SPS)
        stack.stop()
        stack.cleanup()


def test_the_simulator_with_the_same_limits_connects_every_call(redis_server: RedisServer) -> None:
    # ...777 stays up until the caller hangs up, as in conf/dialplan/callee.xml.
    scenario = Scenario.from_dict({"rules": [{"match": "777$", "outcome": "answer", "talk": 3600}]})
    sim = FakeSwitch(("127.0.0.1", 0), SIM_PASSWORD, scenario=scenario, **CALLER.fakeswitch_kwargs())
    sim.start()
    try:
        url = "esl://:%s@127.0.0.1:%d?sps=%d&max_sessions=1000" % (SIM_PASSWORD, sim.address[1], URL_SPS)
        stack = _stack(redis_server, sim.address[1], url)
        try:
            _burst_connects(stack, BURST, 0)
        finally:
            stack.stop()
            stack.cleanup()
    finally:
        sim.stop()

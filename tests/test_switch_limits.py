"""The switch's own limits win: a worker reads them (fsctl sps, fsctl
max_sessions) and paces by the lower of those and the URL's; a session the
switch's throttle refuses anyway never ends a call failed."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

import gevent
import pytest

from eslengine.fakeswitch import Scenario
from eslengine.fakeswitch.scenario import Outcome, Rule
from eslengine.protocol import fsctl_limit
from eslengine.worker import ESL_API_COMMANDS, Timings
from tests.conftest import RedisServer
from tests.rig import Rig, wait_for


@pytest.mark.parametrize(("body", "limit"), [
    ("+OK sessions per second: 100\n", 100),
    ("+OK max sessions: 1000\n", 1000),
    ("+OK sessions per second: 0\n", None),
    ("-ERR permission denied\n", None),
    ("-USAGE: fsctl [recover|send_sighup|hupall|pause|resume|shutdown|sps|max_sessions]\n", None),
    ("+OK\n", None),
    ("+OK max sessions: -3\n", None),
    ("+OK max sessions: \u0661\u0662\n", None),
    ("", None),
])
def test_fsctl_answers_are_read_as_limits(body: str, limit: int | None) -> None:
    assert fsctl_limit(body) == limit


def _url_node(rig: Rig, **settings: Any) -> Any:
    """The rig's node as the worker's URL gives it, with ``settings``."""
    return replace(rig.config.nodes[0], **settings)


def test_a_switch_with_a_lower_sps_than_the_url_completes_every_call(redis_server: RedisServer,
                                                                      key_prefix: str) -> None:
    # The first party stays 1 s: time for its second party's turn on a node
    # paced at 19 sessions a second, behind the other calls' second parties.
    rig = Rig(redis_server, key_prefix, sps=20, talk_time=1.0)
    try:
        rig.start_worker(nodes=(_url_node(rig, sps=1000),))
        jobs = [rig.submit(a="+1555123%04d" % (2 * i), b="+1555123%04d" % (2 * i + 1)) for i in range(100)]
        docs = [rig.final(job_id, timeout=40) for job_id in jobs]
        assert [d["status"] for d in docs] == ["completed"] * 100, \
            sorted({(d["status"], d["hangup_cause"]) for d in docs})
    finally:
        rig.close()


def test_the_worker_paces_by_the_switchs_lower_sps_and_follows_a_live_change(redis_server: RedisServer,
                                                                              key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, sps=20, talk_time=1.0)
    asked: list[str] = []
    fsctl = rig.switch.api

    def api(cmd: str, arg: str, listener: Any) -> str:
        if cmd == "fsctl":
            asked.append(arg)
        return fsctl(cmd, arg, listener)

    rig.switch.api = api  # type: ignore[method-assign]
    try:
        worker = rig.start_worker(nodes=(_url_node(rig, sps=1000, max_sessions=5000),),
                                  timings=Timings(limits_period=0.5))
        state = worker.nodes[0]
        wait_for(lambda: state.pacer.rate_share is not None and state.pacer.rate > 0, timeout=10)
        assert asked[:2] == ["sps", "max_sessions"]
        assert (state.pacer.sps, state.pacer.max_sessions, state.pacer.rate) == (20, 1000, 19)
        jobs = [rig.submit(a="+1555123%04d" % (2 * i), b="+1555123%04d" % (2 * i + 1)) for i in range(20)]
        assert {(d["status"], d["hangup_cause"]) for d in (rig.final(j, timeout=20) for j in jobs)} == \
            {("completed", "NORMAL_CLEARING")}
        assert rig.switch.stats.refused_over_limit == 0
        # An operator lowers the switch's sps live: the worker follows it
        # within its re-read period, through its share of the node.
        fsctl("fsctl", "sps 8", None)
        wait_for(lambda: state.pacer.rate == 7, timeout=2.0)
        before = dict(rig.switch.stats.sessions_per_second)
        jobs = [rig.submit(a="+1555124%04d" % (2 * i), b="+1555124%04d" % (2 * i + 1)) for i in range(12)]
        assert {(d["status"], d["hangup_cause"]) for d in (rig.final(j, timeout=20) for j in jobs)} == \
            {("completed", "NORMAL_CLEARING")}
        after = {sec: n - before.get(sec, 0) for sec, n in rig.switch.stats.sessions_per_second.items()}
        assert max(after.values()) <= 7, after
        assert rig.switch.stats.refused_over_limit == 0
        # And back up, never above the URL's.
        fsctl("fsctl", "sps 2000", None)
        wait_for(lambda: state.pacer.rate == 999, timeout=2.0)
    finally:
        rig.close()


def test_without_fsctl_the_worker_paces_by_the_url_and_says_so_once(redis_server: RedisServer, key_prefix: str,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    users = {"eslengine@sim": ("pw", frozenset(ESL_API_COMMANDS) - {"fsctl"}, None)}
    rig = Rig(redis_server, key_prefix, sps=20, talk_time=1.0, users=users)
    try:
        with caplog.at_level("WARNING", logger="eslengine.worker"):
            worker = rig.start_worker(nodes=(_url_node(rig, sps=20, user="eslengine@sim", password="pw"),),
                                      timings=Timings(limits_period=0.3))
            jobs = [rig.submit(a="+1555123%04d" % (2 * i), b="+1555123%04d" % (2 * i + 1)) for i in range(10)]
            assert {(d["status"], d["hangup_cause"]) for d in (rig.final(j, timeout=20) for j in jobs)} == \
            {("completed", "NORMAL_CLEARING")}
            # Several re-reads, each refused, each silent.
            asked = worker.nodes[0].limits_asked
            wait_for(lambda: worker.nodes[0].limits_asked > asked + 0.5, timeout=5)
        warnings = [r.getMessage() for r in caplog.records if "fsctl" in r.getMessage()]
        assert len(warnings) == 1, warnings
        assert "-ERR permission denied" in warnings[0] and "esl-allowed-api" in warnings[0]
        assert worker.nodes[0].pacer.rate == 19
    finally:
        rig.close()


def test_a_throttled_originate_is_placed_again_and_a_failed_leg_is_not(redis_server: RedisServer,
                                                                       key_prefix: str) -> None:
    # The switch's throttle refuses every new session for a moment (its sps
    # at 1, set behind the worker's back): the originates fail
    # DESTINATION_OUT_OF_ORDER with no channel, and are placed again. A leg
    # that is created and then fails with the same cause ends the call.
    scenario = Scenario((Rule(re.compile("9999$"), Outcome("fail", cause="DESTINATION_OUT_OF_ORDER")),))
    rig = Rig(redis_server, key_prefix, sps=30, talk_time=1.0, scenario=scenario)
    try:
        worker = rig.start_worker()
        wait_for(lambda: worker.nodes[0].pacer.rate == 29, timeout=10)
        failing = rig.submit(a="+15551239999", b="+15551230001")
        assert rig.final(failing)["hangup_cause"] == "DESTINATION_OUT_OF_ORDER"
        assert len(rig.switch.originates_with("eslengine_job_id", failing)) == 1
        rig.switch.board.sps = 1
        # The switch's throttle counts per clock second, from the next one on.
        second = int(time.time())
        wait_for(lambda: int(time.time()) != second, timeout=2)
        jobs = [rig.submit(a="+1555125%04d" % (2 * i), b="+1555125%04d" % (2 * i + 1)) for i in range(5)]
        wait_for(lambda: rig.switch.stats.refused_over_limit >= 2, timeout=5)
        rig.switch.board.sps = 30
        docs = [rig.final(job_id, timeout=20) for job_id in jobs]
        assert [(d["status"], d["hangup_cause"], d.get("error")) for d in docs] == [("completed", "NORMAL_CLEARING", None)] * 5
        for job_id in jobs:
            attempts = [r.variables.get("eslengine_attempt") for r in rig.switch.originates_with("eslengine_job_id",
                                                                                               job_id)]
            assert len(attempts) >= 2 and len(set(attempts)) == len(attempts), attempts
    finally:
        rig.close()


def test_a_throttled_attempt_does_not_count_against_the_retry_policy(redis_server: RedisServer,
                                                                     key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, sps=30, talk_time=1.0)
    try:
        worker = rig.start_worker()
        wait_for(lambda: worker.nodes[0].pacer.rate == 29, timeout=10)
        rig.switch.board.sps = 1
        second = int(time.time())
        wait_for(lambda: int(time.time()) != second, timeout=2)
        job_id = rig.submit(a="+15551230486", b="+15551230001",
                            retry={"attempts": 3, "backoff": 1, "on": ["busy"]})
        wait_for(lambda: rig.switch.stats.refused_over_limit >= 1, timeout=5)
        rig.switch.board.sps = 30
        # Throttled once, then busy three times (each after a retry's wait).
        wait_for(lambda: len(rig.switch.originates_with("eslengine_job_id", job_id)) >= 4, timeout=15)
        doc = rig.final(job_id, timeout=15)
        assert (doc["status"], doc["hangup_cause"]) == ("failed", "USER_BUSY")
        gevent.sleep(2.5)  # no fifth originate after the policy's last attempt
        originates = rig.switch.originates_with("eslengine_job_id", job_id)
        assert [r.variables.get("eslengine_attempt") for r in originates] == ["1", "2", "3", "4"]
    finally:
        rig.close()


def test_a_second_party_the_throttle_refuses_is_connected_again(redis_server: RedisServer, key_prefix: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # The first party answers and waits parked; the switch (its session
    # limit lowered behind the worker's back) refuses the second party's
    # session. The connect extension parks the first party again with
    # eslengine_connect_refused=true; the worker sees it, slows down and
    # connects it again once the switch allows: one originate, one call.
    # The first party (...0777) stays on the line until the call ends.
    scenario = Scenario((Rule(re.compile("0777$"), Outcome("answer", talk=3600)),))
    rig = Rig(redis_server, key_prefix, sps=30, talk_time=1.0, scenario=scenario)
    try:
        worker = rig.start_worker()
        wait_for(lambda: worker.nodes[0].pacer.rate == 29, timeout=10)
        rig.switch.board.max_sessions = 1
        with caplog.at_level("INFO", logger="eslengine.worker"):
            job_id = rig.submit(a="+15551230777", b="+15551230002")
            wait_for(lambda: rig.switch.stats.refused_over_limit >= 1, timeout=5)
            wait_for(lambda: any("connecting it again" in r.getMessage() for r in caplog.records), timeout=5)
            rig.switch.board.max_sessions = 1000
            doc = rig.final(job_id, timeout=20)
        assert (doc["status"], doc["hangup_cause"], doc.get("error")) == ("completed", "NORMAL_CLEARING", None)
        assert "bridged" in doc["timestamps"]
        originates = rig.switch.originates_with("eslengine_job_id", job_id)
        assert len(originates) == 1
    finally:
        rig.close()


def test_a_second_party_that_fails_out_of_order_ends_the_call(redis_server: RedisServer, key_prefix: str) -> None:
    # A second party whose leg was created and failed DESTINATION_OUT_OF_ORDER
    # is a real failure: not connected again.
    scenario = Scenario((Rule(re.compile("9999$"), Outcome("fail", cause="DESTINATION_OUT_OF_ORDER")),))
    rig = Rig(redis_server, key_prefix, sps=30, talk_time=1.0, scenario=scenario)
    sent: list[str] = []
    api = rig.switch.api

    def recording(cmd: str, arg: str, listener: Any) -> str:
        sent.append(cmd)
        return api(cmd, arg, listener)

    rig.switch.api = recording  # type: ignore[method-assign]
    try:
        worker = rig.start_worker()
        wait_for(lambda: worker.nodes[0].pacer.rate == 29, timeout=10)
        job_id = rig.submit(a="+15551230001", b="+15551239999")
        doc = rig.final(job_id, timeout=15)
        assert (doc["status"], doc["hangup_cause"], doc["failed_party"]) == \
            ("failed", "DESTINATION_OUT_OF_ORDER", "b")
        assert rig.switch.stats.refused_over_limit == 0
        assert sent.count("uuid_transfer") == 1
    finally:
        rig.close()


def test_a_call_the_throttle_keeps_refusing_ends_after_max_throttled(redis_server: RedisServer,
                                                                      key_prefix: str) -> None:
    # A switch that starts no session at all (max_sessions 0 behind the
    # worker's back): the call is placed again max_throttled times, then
    # ends failed with the refusal's cause and an error that says why.
    rig = Rig(redis_server, key_prefix, sps=30, talk_time=1.0)
    try:
        worker = rig.start_worker(timings=Timings(max_throttled=3, throttle_hold=0.2))
        wait_for(lambda: worker.nodes[0].pacer.rate == 29, timeout=10)
        rig.switch.board.max_sessions = 0
        job_id = rig.submit(a="+15551230001", b="+15551230002")
        doc = rig.final(job_id, timeout=20)
        assert (doc["status"], doc["hangup_cause"]) == ("failed", "DESTINATION_OUT_OF_ORDER")
        assert doc["error"] == "the switch's throttle refused this call 4 times; not placed again"
        assert len(rig.switch.originates_with("eslengine_job_id", job_id)) == 4
    finally:
        rig.close()

"""The worker's nodes: pacing, shares among the workers on a node, a
switch that stops answering, each node's recordings_dir
(eslengine/worker/nodes.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import gevent
import pytest

from eslengine.fakeswitch import FakeSwitch
from eslengine.worker import ESL_API_COMMANDS, Timings
from tests.conftest import RedisServer
from tests.rig import Rig, wait_for


@pytest.mark.parametrize("bridge", ["engine", "switch"])
def test_pacing_keeps_the_switch_from_refusing(redis_server: RedisServer, key_prefix: str, bridge: str) -> None:
    rig = Rig(redis_server, key_prefix, sps=6, talk_time=1.0)
    try:
        ids = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(8)]
        rig.start_worker(bridge=bridge)
        docs = [rig.final(i, timeout=20) for i in ids]
        assert all(d["status"] == "completed" for d in docs), [
            (d["status"], d["hangup_cause"], d.get("error"), d["history"]) for d in docs if d["status"] != "completed"]
        assert rig.switch.stats.refused_over_limit == 0
        tails = {r.args.rsplit(" ", 1)[-1][:8] for r in rig.switch.board.originates}
        assert tails == ({"&park()"} if bridge == "engine" else {"&bridge("})
    finally:
        rig.close()


def test_workers_on_one_node_share_its_limits(redis_server: RedisServer, key_prefix: str) -> None:
    # Two workers, each configured with the node's whole limit (11 sessions
    # a second: 10 starts in any second). Together they keep to it: the
    # switch refuses nothing, and both place calls. (A first party that
    # answered waits up to a second in park for the second party's start,
    # the pacer's turn: longer when a worker's share has just shrunk.)
    rig = Rig(redis_server, key_prefix, sps=11, max_sessions=12, talk_time=1.0)
    try:
        ids = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(40)]
        first = rig.start_worker()
        wait_for(lambda: rig.switch.stats.originate_log, timeout=5)
        second = rig.start_worker()
        docs = [rig.final(i, timeout=30) for i in ids]
        assert [d["status"] for d in docs] == ["completed"] * len(ids), [
            (d.get("error"), d.get("hangup_cause"), d["history"]) for d in docs if d["status"] != "completed"]
        assert rig.switch.stats.refused_over_limit == 0
        placed_by = {rig.client.hget(rig.queue.keys.call(i), "worker") for i in ids}
        assert placed_by == {first.consumer, second.consumer}
        shares = [(w.nodes[0].pacer.rate, w.nodes[0].pacer.ceiling) for w in (first, second)]
        assert shares == [(5, 6), (5, 6)]
    finally:
        rig.close()


def test_a_dead_workers_node_place_goes_once_its_calls_are_adopted(redis_server: RedisServer,
                                                                    key_prefix: str) -> None:
    # Two workers share a node (11 sessions/s: 5 starts a second each). The
    # first dies with calls up. The second adopts them, says it holds their
    # sessions, then takes the dead worker's place off the node: its share
    # grows to the whole node within seconds, not when the place lapses
    # (Timings.share_ttl after the dead worker's last renewal).
    rig = Rig(redis_server, key_prefix, sps=11, max_sessions=40)
    try:
        rig.switch.board.talk_time = None  # calls stay up
        first = rig.start_worker()
        ids = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(3)]
        wait_for(lambda: all(rig.client.hget(rig.queue.keys.call(i), "status") == "bridged" for i in ids))
        second = rig.start_worker()
        label = first.nodes[0].node.label
        wait_for(lambda: second.nodes[0].pacer.rate == 5 and first.nodes[0].pacer.rate == 5)
        # The first worker dies: no more renewals, heartbeat gone.
        rig.crash(first)
        died = time.monotonic()
        rig.queue.forget_worker(first.consumer)
        wait_for(lambda: first.consumer not in rig.queue.node_pacers(label), timeout=15)
        assert time.monotonic() - died < Timings().share_ttl - 2  # given up, not lapsed
        assert set(ids) <= set(second.calls)
        held, _, _ = rig.queue.node_pacers(label)[second.consumer]
        assert held == sum(second.calls[i].cost for i in ids) > 0
        wait_for(lambda: second.nodes[0].pacer.rate == 10, timeout=3)
        rig.switch.api("hupall", "NORMAL_CLEARING", None)
        assert [rig.final(i)["status"] for i in ids] == ["completed"] * 3
        assert [len(rig.switch.originates_with("eslengine_job_id", i)) for i in ids] == [1, 1, 1]
    finally:
        rig.close()


def test_a_switch_that_stops_answering_gets_no_more_originates(redis_server: RedisServer, key_prefix: str) -> None:
    # The switch answers no command for 1.5 s. Each originate written meanwhile
    # may or may not run, and is never placed again if the connection dies:
    # the worker stops writing half a second into the silence.
    # The switch takes up to 200 sessions a second: what it queued during
    # the silence runs at once when it answers again, within its limit.
    rig = Rig(redis_server, key_prefix, sps=200, talk_time=0.2)
    try:
        # The switch bridges (the engine's own transfer would also wait out the
        # silence, past these short calls).
        worker = rig.start_worker(nodes=(replace(rig.config.nodes[0], sps=31),), bridge="switch")
        first = rig.submit(a="+15551230001", b="+15551240001")
        assert rig.final(first)["status"] == "completed"
        link = worker.nodes[0].link
        rig.switch.stall(1.5)
        ids = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(40)]
        most = 0
        deadline = time.monotonic() + 1.4
        while time.monotonic() < deadline:
            most = max(most, len(link.connection._commands_sent))
            gevent.sleep(0.02)
        # 30 session starts a second (two a call) for 0.5 s, and a few in
        # flight; without the hold it is 20 and more.
        assert 3 <= most <= 12, most
        docs = [rig.final(i, timeout=20) for i in ids]
        assert [d["status"] for d in docs] == ["completed"] * len(ids)
    finally:
        rig.close()


RECORDINGS = "/usr/local/freeswitch/var/lib/freeswitch/recordings"  # a source install's, default prefix


def say_recordings_dir(switch: FakeSwitch, directory: str) -> list[str]:
    """Make the simulator's global_getvar know ``recordings_dir`` (as a real
    switch does); returns the list every global_getvar it answers goes to."""
    asked: list[str] = []
    known = switch._global_vars
    api = switch.api

    def api_spy(cmd: str, arg: str, listener: Any) -> str:
        if cmd == "global_getvar":
            asked.append(arg)
        return api(cmd, arg, listener)

    switch._global_vars = lambda: [*known(), ("recordings_dir", directory)]  # type: ignore[method-assign]
    switch.api = api_spy  # type: ignore[method-assign]
    return asked


@pytest.mark.parametrize("bridge", ["engine", "switch"])
def test_recordings_go_to_the_switch_s_own_recordings_dir(redis_server: RedisServer, key_prefix: str,
                                                          bridge: str) -> None:
    rig = Rig(redis_server, key_prefix, talk_time=0.3)
    asked = say_recordings_dir(rig.switch, RECORDINGS + "/")
    try:
        worker = rig.start_worker(bridge=bridge)
        job_id = rig.submit(a="+15551230001", b="+15551230002", record=True)
        doc = rig.final(job_id)
        assert doc["status"] == "completed"
        assert doc["recording"] == "%s/%s.wav" % (RECORDINGS, job_id)
        started = [h for name, h in rig.switch.events_for(job_id) if name == "RECORD_START"]
        assert started and started[0]["Record-File-Path"] == doc["recording"]
        # Asked once a connection, not once a call.
        rig.submit(a="+15551230003", b="+15551230004", record=True)
        assert asked == ["recordings_dir"]
        rig.switch.drop_connections()
        wait_for(lambda: not worker.nodes[0].up, timeout=5)
        wait_for(lambda: worker.nodes[0].up, timeout=10)
        # The node is up again with the directory it already knows; the new
        # connection asks once more, as soon as it is made.
        wait_for(lambda: len(asked) == 2, timeout=5)
        assert asked == ["recordings_dir"] * 2
    finally:
        rig.close()


def test_eslengine_recordings_dir_wins_and_the_switch_is_not_asked(redis_server: RedisServer,
                                                                     key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, talk_time=0.3)
    asked = say_recordings_dir(rig.switch, RECORDINGS)
    try:
        rig.start_worker(recordings_dir="/srv/calls")
        job_id = rig.submit(a="+15551230001", b="+15551230002", record={"format": "mp3"})
        assert rig.final(job_id)["recording"] == "/srv/calls/%s.mp3" % job_id
        assert asked == []
    finally:
        rig.close()


def test_a_switch_that_does_not_say_its_recordings_dir_gets_the_packages_one(redis_server: RedisServer,
                                                                             key_prefix: str,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    # global_getvar refused (an ESL user from before the engine asked), or
    # no usable answer: the calls still run, under the packages' directory,
    # and the log says what to do.
    users = {"eslengine@sim": ("pw", frozenset(ESL_API_COMMANDS) - {"global_getvar"}, None)}
    rig = Rig(redis_server, key_prefix, talk_time=0.3, users=users)
    try:
        with caplog.at_level("WARNING", logger="eslengine.worker"):
            rig.start_worker(nodes=(replace(rig.config.nodes[0], user="eslengine@sim", password="pw"),))
            job_id = rig.submit(a="+15551230001", b="+15551230002", record=True)
            doc = rig.final(job_id)
        assert doc["recording"] == "/var/lib/freeswitch/recordings/%s.wav" % job_id
        assert any("-ERR permission denied" in r.getMessage() and "ESLENGINE_RECORDINGS_DIR" in r.getMessage()
                   for r in caplog.records)
    finally:
        rig.close()

"""Reliability: retries and dead letters, crash and stop hand-over, lost
sends, several nodes, Redis restarts. Workers and simulators run in this
process against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import gevent
import gevent.event
import pytest
import redis

from eslengine import dialstring
from eslengine.calls import parse_request
from eslengine.config import Config, Node
from eslengine.errors import QueueUnavailable
from eslengine.esl import BackgroundJob
from eslengine.fakeswitch import FakeSwitch, Scenario
from eslengine.store import GROUP, JobQueue, Keys
from eslengine.worker import Timings, Worker
from tests.conftest import RedisServer
from tests.rig import Rig, wait_for


def _not_completed(docs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(d["status"], d.get("hangup_cause"), d.get("error"), d["history"]) for d in docs if d["status"] != "completed"]


def attempts_seen(switch: FakeSwitch, job_id: str) -> list[str]:
    return [r.variables.get("eslengine_attempt", "?") for r in switch.originates_with("eslengine_job_id", job_id)]


def test_busy_is_retried_with_backoff_then_dead_lettered(rig: Rig) -> None:
    rig.start_worker()
    job = rig.submit(a="+15551230486", b="+15551230002", retry={"attempts": 3, "backoff": 1})
    started = time.monotonic()
    doc = rig.final(job, timeout=20)
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "USER_BUSY")
    assert time.monotonic() - started >= 3.0  # 1 s, then 2 s between attempts
    assert attempts_seen(rig.switch, job) == ["1", "2", "3"]
    assert doc["attempts"] == 3
    assert [h["status"] for h in doc["history"]].count("queued") == 3
    (entry_id, dead), = rig.queue.dead_letters()
    assert dead["job_id"] == job and dead["reason"] == "failed after 3 attempts: USER_BUSY"
    # Re-queued from the dead letters, it is placed again from scratch.
    assert rig.queue.requeue_dead(entry_id) == job
    assert rig.queue.dead_letters() == []
    wait_for(lambda: len(attempts_seen(rig.switch, job)) == 4, timeout=10)


def test_retry_succeeds_when_the_callee_frees_up(rig: Rig) -> None:
    rig.start_worker()
    job = rig.submit(a="+15551230001", b="+15551230486", retry={"attempts": 2, "backoff": 1, "on": ["busy"]})
    # B is busy on the first attempt; free it before the second.
    wait_for(lambda: rig.queue.get(job)["attempts"] == 1 and rig.queue.get(job)["status"] == "queued", timeout=10)
    rig.switch.board.scenario = rig.switch.board.scenario.__class__.from_dict(
        {"rules": [{"match": "486$", "outcome": "answer"}]})
    doc = rig.final(job, timeout=10)
    assert doc["status"] == "completed" and doc["attempts"] == 2
    assert attempts_seen(rig.switch, job) == ["1", "2"]
    assert rig.queue.dead_letters() == []


@pytest.mark.parametrize("a", ["+15551230404", "+15551230486"])
def test_failures_that_must_not_retry(rig: Rig, a: str) -> None:
    rig.start_worker()
    job = rig.submit(a=a, b="+15551230002", retry={"attempts": 3, "backoff": 1, "on": ["no_answer", "temporary"]})
    doc = rig.final(job)
    assert doc["status"] == "failed" and attempts_seen(rig.switch, job) == ["1"]
    gevent.sleep(1.5)
    assert attempts_seen(rig.switch, job) == ["1"]


def crash(rig: Rig, worker: Worker) -> None:
    """What SIGKILL leaves behind: nothing acknowledged, nothing cleaned up;
    the heartbeat expires (here: at once)."""
    rig.crash(worker)
    rig.queue.forget_worker(worker.consumer)


def test_crashed_workers_calls_are_adopted_not_redialed(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)  # calls stay up until hung up
    try:
        first = rig.start_worker()
        jobs = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(5)]
        for job in jobs:
            wait_for(lambda job=job: rig.queue.get(job)["status"] == "bridged")
        crash(rig, first)
        second = rig.start_worker()
        wait_for(lambda: all(job in second.calls for job in jobs), timeout=15)
        for job in jobs:
            rig.switch.api("uuid_kill", job, None)
        for job in jobs:
            doc = rig.final(job)
            assert doc["status"] == "completed", json.dumps(doc)
            assert attempts_seen(rig.switch, job) == ["1"]
    finally:
        rig.close()


def test_crash_while_ringing_and_unacknowledged(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, ring_time=1.0)  # answered calls stay up until hung up
    try:
        first = rig.start_worker()
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "ringing")
        crash(rig, first)
        second = rig.start_worker()
        wait_for(lambda: job in second.calls and rig.queue.get(job)["status"] == "bridged", timeout=15)
        rig.switch.api("uuid_kill", job, None)
        doc = rig.final(job, timeout=15)
        assert doc["status"] == "completed", (doc, rig.switch.events_for(job)[-3:])
        assert attempts_seen(rig.switch, job) == ["1"]
        assert rig.client.xpending(rig.queue.keys.jobs, GROUP)["pending"] == 0
    finally:
        rig.close()


def _half_placed(rig: Rig, state: str) -> str:
    """A job a dead worker marked as being placed (attempt 1, ``state``)
    whose call no switch has."""
    job = str(uuid.uuid4())
    request = parse_request({"id": job, "a": "+15551230001", "b": "+15551230002"}, rig.config)
    rig.queue.enqueue(request)
    rig.queue.ensure_group()
    rig.queue.read("dead-worker", 10, 10)
    rig.queue.transition(job, "dialing", {"originated": "1", "attempts": "1", "attempt_state": state,
                                          "worker": "dead-worker"})
    rig.client.sadd(rig.queue.keys.workers, "dead-worker")
    return job


def test_originate_that_never_left_is_placed_as_the_next_attempt(rig: Rig) -> None:
    job = _half_placed(rig, "pending")
    rig.start_worker()
    doc = rig.final(job, timeout=15)
    assert doc["status"] == "completed" and doc["attempts"] == 2
    assert attempts_seen(rig.switch, job) == ["2"]


def test_originate_written_but_never_run_is_placed_as_the_next_attempt(rig: Rig) -> None:
    # The dead worker wrote it ("sent"), but the switch keeps no marker of
    # attempt 1: it never created a channel for it.
    job = _half_placed(rig, "sent")
    rig.start_worker()
    doc = rig.final(job, timeout=15)
    assert doc["status"] == "completed" and doc["attempts"] == 2
    assert attempts_seen(rig.switch, job) == ["2"]


@pytest.mark.parametrize("state", ["pending", "sent"])
def test_originate_the_switch_ran_and_ended_gets_its_outcome_from_the_marker(rig: Rig, state: str) -> None:
    job = _half_placed(rig, state)
    leg = str(uuid.uuid4())
    rig.switch.db.insert(dialstring.MARKER_REALM, dialstring.marker_key(job, 1),
                         "end;NORMAL_CLEARING;1700000000;0;USER_BUSY;" + leg)
    rig.start_worker()
    doc = rig.final(job, timeout=15)
    # The first party answered, the second was busy: never placed again.
    assert (doc["status"], doc["hangup_cause"], doc["a_uuid"]) == ("failed", "USER_BUSY", leg), json.dumps(doc)
    assert attempts_seen(rig.switch, job) == []
    wait_for(lambda: rig.switch.db.select(dialstring.MARKER_REALM, dialstring.marker_key(job, 1)) is None)


def test_originate_the_switch_ran_and_lost_to_a_restart_ends_crash(rig: Rig) -> None:
    job = _half_placed(rig, "sent")
    rig.switch.db.insert(dialstring.MARKER_REALM, dialstring.marker_key(job, 1), "up;" + job)
    rig.start_worker()
    doc = rig.final(job, timeout=15)
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "CRASH"), json.dumps(doc)
    assert "switch stopped" in doc["error"]
    assert attempts_seen(rig.switch, job) == []


@pytest.mark.parametrize(("a", "status", "cause"), [("+15551230001", "completed", "NORMAL_CLEARING"),
                                                    ("+15551230486", "failed", "USER_BUSY")])
def test_connection_lost_with_an_originate_the_switch_ran_records_its_real_outcome(
        redis_server: RedisServer, key_prefix: str, a: str, status: str, cause: str) -> None:
    # The connection dies right after the originate is written; the switch
    # runs it, and the call ends before the worker is connected again: no
    # result, no event. The attempt marker has the outcome.
    rig = Rig(redis_server, key_prefix, ring_time=0.05, talk_time=0.2)
    try:
        # The switch bridges the second party itself (a held first party
        # would wait in park for a worker that is not there).
        worker = rig.start_worker(bridge="switch")
        wait_for(lambda: worker.nodes[0].up)
        rig.switch.lose_originate(run=True, stall=1.5)
        job = rig.submit(a=a, b="+15551230002")
        doc = rig.final(job, timeout=20)
        assert (doc["status"], doc["hangup_cause"]) == (status, cause), json.dumps(doc)
        assert attempts_seen(rig.switch, job) == ["1"]
        wait_for(lambda: rig.switch.db.select(dialstring.MARKER_REALM, dialstring.marker_key(job, 1)) is None)
    finally:
        rig.close()


def test_connection_lost_with_an_originate_the_switch_never_got_places_it_again_once(
        redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, ring_time=0.05, talk_time=0.2)
    try:
        worker = rig.start_worker()
        wait_for(lambda: worker.nodes[0].up)
        rig.switch.lose_originate(run=False, stall=1.0)
        job = rig.submit(a="+15551230001", b="+15551230002")
        doc = rig.final(job, timeout=20)
        assert (doc["status"], doc["attempts"]) == ("completed", 2), json.dumps(doc)
        assert attempts_seen(rig.switch, job) == ["2"]
    finally:
        rig.close()


def test_a_call_whose_switch_died_while_it_was_up_ends_crash(redis_server: RedisServer, key_prefix: str,
                                                             tmp_path: Any) -> None:
    db_file = str(tmp_path / "fs.db.jsonl")
    rig = Rig(redis_server, key_prefix, db_file=db_file)  # calls stay up until hung up
    try:
        worker = rig.start_worker()
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "bridged")
        # SIGKILL: no hangup, no notice; mod_db's file stays. The same switch
        # comes back on the same port.
        address = rig.switch.address
        rig.switch.stop()
        rig.switch = FakeSwitch(address, "s3cret", ring_time=0.05, db_file=db_file)
        rig.switch.start()
        doc = rig.final(job, timeout=20)
        assert (doc["status"], doc["hangup_cause"]) == ("completed", "CRASH"), json.dumps(doc)
        assert worker.nodes[0].up
    finally:
        rig.close()


def test_stopped_worker_hands_live_calls_over(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)
    try:
        first = rig.start_worker()
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "bridged")
        second = rig.start_worker()
        rig.workers.remove(first)
        first.stop(grace=0.5)  # SIGTERM: drains for the grace period, then lets go
        wait_for(lambda: job in second.calls, timeout=15)
        rig.switch.api("uuid_kill", job, None)
        assert rig.final(job)["status"] == "completed"
        assert attempts_seen(rig.switch, job) == ["1"]
    finally:
        rig.close()


class TwoNodes:
    def __init__(self, redis_server: RedisServer, prefix: str) -> None:
        self.switches = [FakeSwitch(("127.0.0.1", 0), "pw", ring_time=0.05, talk_time=1.0, hostname=n, sps=1000)
                         for n in ("fs1", "fs2")]
        for sw in self.switches:
            sw.start()
        self.config = Config(
            redis_url=redis_server.url, key_prefix=prefix, esl_timeout=2.0, reconnect_max_delay=0.5,
            allow_unvalidated_numbers=True,  # the fictional 555-01xx range
            nodes=tuple(Node("127.0.0.1", sw.address[1], "pw", name=n, sps=200)
                        for sw, n in zip(self.switches, ("fs1", "fs2"))))
        self.client = redis.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=5)
        self.queue = JobQueue(self.client, Keys(prefix), record_ttl=600)
        self.worker = Worker(self.config, JobQueue(self.client, Keys(prefix), record_ttl=600))
        self.worker.start()

    def submit_many(self, n: int) -> list[str]:
        return [self.queue.enqueue(parse_request({"a": "+1555123%04d" % i, "b": "+1555124%04d" % i}, self.config))
                for i in range(n)]

    def finals(self, jobs: list[str]) -> list[dict[str, Any]]:
        out = []
        for job in jobs:
            out.append(wait_for(lambda job=job: (d := self.queue.get(job)) and d["status"] in (
                "completed", "failed", "cancelled") and d, timeout=20))
        return out

    def close(self) -> None:
        self.worker.stop(grace=1)
        for sw in self.switches:
            sw.stop()
        self.client.close()


def test_several_nodes_share_work_and_a_dead_node_is_routed_around(redis_server: RedisServer, key_prefix: str) -> None:
    nodes = TwoNodes(redis_server, key_prefix)
    try:
        wait_for(lambda: all(s.up for s in nodes.worker.nodes))
        docs = nodes.finals(nodes.submit_many(40))
        assert {d["node"] for d in docs} == {"fs1", "fs2"}
        assert all(d["status"] == "completed" for d in docs), _not_completed(docs)
        # fs2 goes down: within seconds it gets no work, and nothing is lost.
        down = nodes.switches[1]
        port = down.address[1]
        down.stop()
        wait_for(lambda: not nodes.worker.nodes[1].up, timeout=5)
        docs = nodes.finals(nodes.submit_many(20))
        assert {d["node"] for d in docs} == {"fs1"}
        assert all(d["status"] == "completed" for d in docs), _not_completed(docs)
        # It comes back on the same port and is used again.
        back = FakeSwitch(("127.0.0.1", port), "pw", ring_time=0.05, talk_time=1.0, hostname="fs2", sps=1000)
        back.start()
        nodes.switches[1] = back
        wait_for(lambda: nodes.worker.nodes[1].up, timeout=10)
        docs = nodes.finals(nodes.submit_many(40))
        assert "fs2" in {d["node"] for d in docs}
    finally:
        nodes.close()


def test_worker_rides_out_a_redis_restart(key_prefix: str) -> None:
    server = RedisServer()
    try:
        rig = Rig(server, key_prefix, talk_time=1.0)
        rig.start_worker()
        assert rig.final(rig.submit(a="+15551230001", b="+15551230002"))["status"] == "completed"
        server.stop()
        gevent.sleep(1.5)  # the worker sees Redis gone and backs off
        restarted = subprocess.Popen(
            ["redis-server", "--port", str(server.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: _pings(server.port), timeout=10)
            # A fresh Redis (no persistence in this test): new work flows again.
            job = rig.submit(a="+15551230003", b="+15551230004")
            assert rig.final(job, timeout=20)["status"] in ("completed",)
        finally:
            rig.close()
            restarted.terminate()
            restarted.wait(timeout=10)
    finally:
        server.stop()


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False


def test_dead_letter_cli(redis_server: RedisServer, key_prefix: str) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.xadd(Keys(key_prefix).dead, {"job": json.dumps({"a": "+15551230001", "b": "+15551230002"}),
                                       "reason": "test"})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")},
           "ESLENGINE_REDIS_URL": redis_server.url, "ESLENGINE_KEY_PREFIX": key_prefix}
    listed = subprocess.run([sys.executable, "-m", "eslengine", "dead", "list"], capture_output=True, text=True,
                            env=env, timeout=30)
    assert listed.returncode == 0 and "\ttest" in listed.stdout
    entry = listed.stdout.split("\t")[0]
    requeued = subprocess.run([sys.executable, "-m", "eslengine", "dead", "requeue", entry], capture_output=True,
                              text=True, env=env, timeout=30)
    assert requeued.returncode == 0, requeued.stderr
    assert client.xlen(Keys(key_prefix).dead) == 0 and client.xlen(Keys(key_prefix).jobs) == 1
    missing = subprocess.run([sys.executable, "-m", "eslengine", "dead", "requeue", "1-1"], capture_output=True,
                             text=True, env=env, timeout=30)
    assert missing.returncode == 1 and "no dead letter" in missing.stderr


def test_nodes_cli_shows_the_workers_sharing_each_node(redis_server: RedisServer, key_prefix: str) -> None:
    queue = JobQueue(redis.Redis.from_url(redis_server.url, decode_responses=True), Keys(key_prefix))
    queue.pace_node("fs1", "w-a", 12.0, 7, 500)
    queue.pace_node("fs1", "w-b", 12.0, 0, 500)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")},
           "ESLENGINE_REDIS_URL": redis_server.url, "ESLENGINE_KEY_PREFIX": key_prefix,
           "ESLENGINE_FREESWITCH": "esl://:pw@127.0.0.1:8021?name=fs1&sps=31&max_sessions=1000,"
                                   "esl://:pw@127.0.0.1:8022?name=fs2"}
    shown = subprocess.run([sys.executable, "-m", "eslengine", "nodes"], capture_output=True, text=True, env=env,
                           timeout=30)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    # No worker said what the switch allows (these two only keep places).
    assert lines[0] == ("fs1\tsps 31\tmax_sessions 1000\t2 worker(s), 15 session starts a second each"
                        "\tswitch limits not read")
    assert lines[1].startswith("  w-a\tholds 7 of its 500 sessions\tplace lapses in 1")
    assert lines[2].startswith("  w-b\tholds 0 of its 500 sessions\t")
    assert lines[3].startswith("fs2\tsps 30\tmax_sessions 1000\t0 worker(s)")
    assert len(lines) == 4


@pytest.mark.parametrize("bridge,talk", [("switch", 1.5), ("engine", 8.0)])
def test_stalled_switch_result_lost_is_reconciled_not_redialed(redis_server: RedisServer, key_prefix: str,
                                                               bridge: str, talk: float) -> None:
    # With bridge=engine the first party waits parked until the worker sees
    # the call again (after the stall) and connects the second: it must
    # still be there (talk time counts from its answer).
    rig = Rig(redis_server, key_prefix, talk_time=talk, ring_time=0.2)
    try:
        worker = rig.start_worker(bridge=bridge)
        wait_for(lambda: worker.nodes[0].up)
        rig.switch.stall(3.0)  # replies held back past the worker's 2 s deadline
        job = rig.submit(a="+15551230001", b="+15551230002")
        doc = rig.final(job, timeout=25)
        assert doc["status"] == "completed", json.dumps(doc)
        assert attempts_seen(rig.switch, job) == ["1"]
    finally:
        rig.close()


def test_a_result_that_never_comes_is_given_up_and_the_call_found(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    # The switch runs the originate but its BACKGROUND_JOB never reaches the
    # worker: after the result's deadline the worker looks for the call on
    # the switch, follows it to its end and never dials it again.
    monkeypatch.setattr(BackgroundJob, "add_done_callback", lambda self, callback: None)
    rig.start_worker(timings=Timings(silence_check=0.4, result_per_ring_second=0.0, result_grace=0.5))
    job = rig.submit(a="+15551230001", b="+15551230002")
    doc = rig.final(job, timeout=15)
    assert doc["status"] == "completed" and doc["attempts"] == 1, json.dumps(doc)
    # Only an outcome (here: the call seen on the switch) acknowledges the entry.
    wait_for(lambda: rig.queue.redis.xpending(rig.queue.keys.jobs, GROUP)["pending"] == 0, timeout=10)
    assert attempts_seen(rig.switch, job) == ["1"]


def test_connection_dropped_mid_call_catches_up(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, ring_time=0.3)
    try:
        worker = rig.start_worker()
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "ringing")
        rig.switch.drop_connections()  # the answer and the bridge happen while the link is down
        wait_for(lambda: worker.nodes[0].up and rig.queue.get(job)["status"] == "bridged", timeout=15)
        rig.switch.api("uuid_kill", job, None)
        doc = rig.final(job)
        assert doc["status"] == "completed" and attempts_seen(rig.switch, job) == ["1"]
    finally:
        rig.close()


def test_refused_originate_is_placed_again_and_gives_up_after_three(rig: Rig) -> None:
    worker = rig.start_worker()
    wait_for(lambda: worker.nodes[0].up)
    rig.switch.refuse_bgapi(2)
    job = rig.submit(a="+15551230001", b="+15551230002")
    doc = rig.final(job)
    assert doc["status"] == "completed", doc
    assert attempts_seen(rig.switch, job) == ["1"]
    writes: list[tuple[str, str, dict[str, str]]] = []
    transition = worker.queue.transition

    def spy(job_id: str, status: str = "", fields: Any = None, **kw: Any) -> bool:
        writes.append((job_id, status, dict(fields or {})))
        return transition(job_id, status, fields, **kw)

    worker.queue.transition = spy  # type: ignore[method-assign]
    rig.switch.refuse_bgapi(3, "-ERR permission denied")
    job = rig.submit(a="+15551230003", b="+15551230004")
    doc = rig.final(job)
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "DESTINATION_OUT_OF_ORDER"), doc
    # The reason is written with the failure itself: no reader sees "failed" without it.
    (failed,) = [fields for job_id, status, fields in writes if job_id == job and status == "failed"]
    assert "permission denied" in failed["error"], writes
    assert "permission denied" in doc["error"] and attempts_seen(rig.switch, job) == [], doc


def test_refused_password_is_retried_until_fixed(rig: Rig) -> None:
    rig.switch.password = "rotated"
    worker = rig.start_worker()
    gevent.sleep(1.5)
    assert not worker.nodes[0].up  # auth refused, retrying with backoff
    rig.switch.password = "s3cret"
    wait_for(lambda: worker.nodes[0].up, timeout=15)
    assert rig.final(rig.submit(a="+15551230001", b="+15551230002"))["status"] == "completed"


class Partition:
    """Cuts one worker's heartbeat renewals off Redis (everything else it
    sends still gets through) while ``cut`` is set."""

    def __init__(self, worker: Worker) -> None:
        self.cut = False
        self._beat = worker.queue.beat
        worker.queue.beat = self.beat  # type: ignore[method-assign]

    def beat(self, *args: Any, **kwargs: Any) -> bool:
        if self.cut:
            raise QueueUnavailable("heartbeat: Connection refused (partitioned)")
        return bool(self._beat(*args, **kwargs))


def heartbeat_lapsed(rig: Rig, worker: Worker) -> bool:
    return not rig.client.exists(rig.queue.keys.heartbeat(worker.consumer))


# A heartbeat that lapses within seconds (the share places keep theirs).
SHORT_HEARTBEAT = Timings(heartbeat_ttl=1.5, lease_margin=0.5)


def paused_before_originate(worker: Worker) -> tuple[gevent.event.Event, gevent.event.Event]:
    """Stop ``worker``'s greenlet world's originates right before they are
    written: (set when one is there, set it to let it go on)."""
    link = worker.nodes[0].link
    write = link.bgapi
    at_write, go_on = gevent.event.Event(), gevent.event.Event()

    def paused_bgapi(command: str, **kwargs: Any) -> BackgroundJob:
        if command.startswith("originate"):
            at_write.set()
            go_on.wait()
        return write(command, **kwargs)

    link.bgapi = paused_bgapi
    return at_write, go_on


def test_a_worker_whose_heartbeat_lapsed_does_not_send_and_its_adopter_places_the_job_once(
        redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, talk_time=1.0)
    try:
        first = rig.start_worker(timings=SHORT_HEARTBEAT)
        wait_for(lambda: first.nodes[0].up)
        # The first worker stops right before writing its originate, and its
        # heartbeat cannot be renewed.
        at_write, go_on = paused_before_originate(first)
        partition = Partition(first)
        job = rig.submit(a="+15551230001", b="+15551230002")
        assert at_write.wait(timeout=10)
        partition.cut = True
        wait_for(lambda: heartbeat_lapsed(rig, first), timeout=5)
        second = rig.start_worker(timings=SHORT_HEARTBEAT)
        # The second adopts it: no channel, the attempt never left: placed again.
        wait_for(lambda: attempts_seen(rig.switch, job) == ["2"], timeout=15)
        go_on.set()  # the first resumes: its lease has lapsed, nothing is written
        gevent.sleep(0.5)
        assert job in first.calls and attempts_seen(rig.switch, job) == ["2"]
        # Its heartbeat back, it finds the job taken and lets it go.
        partition.cut = False
        wait_for(lambda: job not in first.calls, timeout=5)
        doc = rig.final(job, timeout=15)
        assert doc["status"] == "completed" and doc["attempts"] == 2, json.dumps(doc)
        assert attempts_seen(rig.switch, job) == ["2"]
        assert rig.client.hget(rig.queue.keys.call(job), "worker") == second.consumer
        assert rig.client.xpending(rig.queue.keys.jobs, GROUP)["pending"] == 0
    finally:
        rig.close()


def test_a_worker_whose_lapsed_job_nobody_took_places_it_itself_once(redis_server: RedisServer,
                                                                     key_prefix: str) -> None:
    # The heartbeat lapses and nobody adopts the job: once renewed, the
    # worker asks Redis whether the job is still its own, and places it.
    rig = Rig(redis_server, key_prefix, talk_time=1.0)
    try:
        first = rig.start_worker(timings=SHORT_HEARTBEAT)
        wait_for(lambda: first.nodes[0].up)
        at_write, go_on = paused_before_originate(first)
        partition = Partition(first)
        job = rig.submit(a="+15551230001", b="+15551230002")
        assert at_write.wait(timeout=10)
        partition.cut = True
        wait_for(lambda: heartbeat_lapsed(rig, first), timeout=5)
        epoch = first.registry.lease.epoch
        go_on.set()
        gevent.sleep(0.5)
        assert attempts_seen(rig.switch, job) == []
        partition.cut = False
        doc = rig.final(job, timeout=15)
        assert doc["status"] == "completed" and attempts_seen(rig.switch, job) == ["1"], json.dumps(doc)
        assert first.registry.lease.epoch == epoch + 1
    finally:
        rig.close()


def test_a_worker_whose_call_was_adopted_during_a_lapse_writes_nothing_more_for_it(
        redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)  # calls stay up until hung up
    try:
        first = rig.start_worker(timings=SHORT_HEARTBEAT)
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "bridged")
        partition = Partition(first)
        partition.cut = True
        wait_for(lambda: heartbeat_lapsed(rig, first), timeout=5)
        second = rig.start_worker(timings=SHORT_HEARTBEAT)
        wait_for(lambda: job in second.calls, timeout=15)
        writes: list[tuple[str, str]] = []
        transition = first.queue.transition

        def spy(job_id: str, status: str = "", fields: Any = None, **kw: Any) -> bool:
            writes.append((job_id, status))
            return transition(job_id, status, fields, **kw)

        first.queue.transition = spy  # type: ignore[method-assign]
        partition.cut = False
        rig.switch.api("uuid_kill", job, None)  # both hear the hangup; only the owner writes it
        doc = rig.final(job)
        assert doc["status"] == "completed" and attempts_seen(rig.switch, job) == ["1"]
        wait_for(lambda: job not in first.calls and job not in second.calls, timeout=5)
        assert [w for w in writes if w[0] == job] == []
    finally:
        rig.close()


def test_a_draining_worker_keeps_its_heartbeat_and_its_calls(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)  # calls stay up until hung up
    try:
        first = rig.start_worker(timings=SHORT_HEARTBEAT)
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "bridged")
        second = rig.start_worker(timings=SHORT_HEARTBEAT)
        rig.workers.remove(first)
        stopping = gevent.spawn(first.stop, grace=30)  # SIGTERM
        # Several heartbeat lifetimes later, the draining worker is alive and
        # still the call's only follower.
        deadline = time.monotonic() + 4 * SHORT_HEARTBEAT.heartbeat_ttl
        while time.monotonic() < deadline:
            assert job not in second.calls
            assert not heartbeat_lapsed(rig, first)
            gevent.sleep(0.1)
        assert rig.client.hget(rig.queue.keys.call(job), "worker") == first.consumer
        rig.switch.api("uuid_kill", job, None)
        doc = rig.final(job)
        assert doc["status"] == "completed" and attempts_seen(rig.switch, job) == ["1"]
        stopping.get(timeout=10)  # drained: it stops now, and only now lets its heartbeat go
        assert heartbeat_lapsed(rig, first)
        assert job not in second.calls
        assert [h["status"] for h in doc["history"]].count("completed") == 1
    finally:
        rig.close()


def test_a_draining_worker_still_connects_a_held_call_s_second_party(redis_server: RedisServer,
                                                                     key_prefix: str) -> None:
    # The first party answers a few seconds into the drain, after the pacing
    # share the worker had when it began would have lapsed.
    rig = Rig(redis_server, key_prefix, talk_time=2.0, scenario=Scenario.from_dict(
        {"rules": [{"match": "0001$", "outcome": "answer", "after": Timings().share_lease + 1.5}]}))
    try:
        first = rig.start_worker(bridge="engine")
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "ringing")
        rig.workers.remove(first)
        stopping = gevent.spawn(first.stop, grace=30)
        doc = rig.final(job, timeout=15)
        assert doc["status"] == "completed" and doc["b_uuid"], json.dumps(doc)
        stopping.get(timeout=10)
    finally:
        rig.close()

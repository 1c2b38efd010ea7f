"""The worker and the two lanes, and do-not-call numbers at dial time, with
the simulator: interactive jobs are dialed before bulk ones queued before
them, both lanes' entries are taken over when their reader dies, retries
keep their lane, and a number listed after its job was queued is never
originated."""

from __future__ import annotations

import time

import gevent

from eslengine import dnc
from eslengine.calls import parse_request
from eslengine.store import GROUP
from tests.conftest import RedisServer
from tests.rig import Rig, statuses, wait_for


def originated(rig: Rig) -> list[str]:
    """The job ids of the originates the switch received, in order."""
    return [job for _, job in rig.switch.stats.originate_log]


def test_an_interactive_job_queued_after_500_bulk_jobs_is_originated_before_most_of_them(
        redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, sps=50, talk_time=0.1)
    try:
        bulk = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i, lane="bulk") for i in range(500)]
        rig.start_worker()
        # The worker is busy with the bulk lane when the interactive job comes.
        wait_for(lambda: len(originated(rig)) >= 20, timeout=20)
        interactive = rig.submit(a="+15551250001", b="+15551250002")
        wait_for(lambda: interactive in originated(rig), timeout=20)
        order = originated(rig)
        before = order.index(interactive)
        bulk_before = len(set(order[:before]) & set(bulk))
        # Only the bulk jobs already started or claimed ahead went first.
        assert bulk_before < 250, bulk_before
        assert bulk_before < len(bulk) - len(set(order) & set(bulk)), (bulk_before, len(order))
    finally:
        rig.close()


def test_entries_of_both_lanes_are_placed_once_when_their_reader_dies(rig: Rig) -> None:
    rig.queue.ensure_group()
    # A worker that read one job of each lane and died (its heartbeat gone):
    # the worker that adopts it places them.
    adopted = [rig.submit(a="+15551230001", b="+15551230002"),
               rig.submit(a="+15551230003", b="+15551230004", lane="bulk")]
    rig.queue.beat("dead-worker", 60, "t")
    assert len(rig.queue.read("dead-worker", 10, None, ("interactive", "bulk"))) == 2
    rig.queue.forget_worker("dead-worker")
    # A reader that was never a worker (no heartbeat) read two more: the
    # reclaim loop takes them over once they are idle.
    reclaimed = [rig.submit(a="+15551230005", b="+15551230006"),
                 rig.submit(a="+15551230007", b="+15551230008", lane="bulk")]
    assert len(rig.queue.read("gone-reader", 10, None, ("interactive", "bulk"))) == 2
    rig.start_worker(claim_idle_ms=1)
    for job in adopted + reclaimed:
        doc = rig.final(job, timeout=20)
        assert doc["status"] == "completed", doc
        assert len(rig.switch.originates_with("eslengine_job_id", job)) == 1
    for stream in (rig.queue.keys.jobs, rig.queue.keys.jobs_bulk):
        wait_for(lambda stream=stream: rig.client.xpending(stream, GROUP)["pending"] == 0)
        assert rig.client.xlen(stream) == 0


def test_a_retry_keeps_its_lane(rig: Rig) -> None:
    rig.start_worker()
    bulk = rig.submit(a="+15551230486", b="+15551230002", lane="bulk", retry={"attempts": 2, "backoff": 1})
    interactive = rig.submit(a="+15551230486", b="+15551230003", retry={"attempts": 2, "backoff": 1})
    for job in (bulk, interactive):
        doc = rig.final(job, timeout=20)
        assert (doc["status"], doc["attempts"]) == ("failed", 2), doc
    # Each stream had its own job's two entries (the first and the retry).
    assert rig.client.xinfo_stream(rig.queue.keys.jobs_bulk)["entries-added"] == 2
    assert rig.client.xinfo_stream(rig.queue.keys.jobs)["entries-added"] == 2
    # A job added straight to the bulk stream, with no lane in its document, too.
    bare = parse_request({"a": "+15551230486", "b": "+15551230004", "retry": {"attempts": 2, "backoff": 1}},
                         rig.config)
    rig.client.xadd(rig.queue.keys.jobs_bulk, {"job": bare.dumps()})
    assert rig.final(bare.id, timeout=20)["attempts"] == 2
    assert rig.client.xinfo_stream(rig.queue.keys.jobs_bulk)["entries-added"] == 4
    assert rig.client.xinfo_stream(rig.queue.keys.jobs)["entries-added"] == 2


def test_a_number_listed_after_its_job_was_queued_is_not_originated(rig: Rig) -> None:
    listed = rig.submit(a="+15551230001", b="+15551230002")
    free = rig.submit(a="+15551230003", b="+15551230004")
    account = rig.queue.enqueue(parse_request({"a": "+15551230005", "b": "user/1000"}, rig.config), account="acme")
    rig.queue.dnc.add("", [dnc.Entry("+15551230002", "asked today", added=time.time())])
    rig.queue.dnc.add("acme", [dnc.Entry("+15551230005", added=time.time())])
    rig.start_worker()
    doc = rig.final(listed)
    assert (doc["status"], doc["hangup_cause"]) == ("skipped_dnc", "CALL_REJECTED")
    assert "b +15551230002" in doc["error"] and "global" in doc["error"]
    assert statuses(doc) == ["queued", "dialing", "skipped_dnc"]
    assert rig.final(account)["status"] == "skipped_dnc"
    assert rig.final(free)["status"] == "completed"
    gevent.sleep(0.2)
    assert rig.switch.originates_with("eslengine_job_id", listed) == []
    assert rig.switch.originates_with("eslengine_job_id", account) == []
    assert len(rig.switch.originates_with("eslengine_job_id", free)) == 1
    assert rig.queue.dnc.refusals() == {"api": 0, "dial": 2}
    assert rig.queue.dnc.refusals("acme") == {"api": 0, "dial": 1}
    for stream in (rig.queue.keys.jobs, rig.queue.keys.jobs_bulk):
        assert rig.client.xpending(stream, GROUP)["pending"] == 0


def test_a_number_listed_between_two_attempts_is_not_dialed_again(rig: Rig) -> None:
    rig.start_worker()
    job = rig.submit(a="+15551230486", b="+15551230002", retry={"attempts": 3, "backoff": 1})
    wait_for(lambda: rig.queue.get(job)["attempts"] == 1 and rig.queue.get(job)["status"] == "queued", timeout=10)
    rig.queue.dnc.add("", [dnc.Entry("+15551230486", added=time.time())])
    doc = rig.final(job, timeout=15)
    assert doc["status"] == "skipped_dnc" and "a +15551230486" in doc["error"]
    assert len(rig.switch.originates_with("eslengine_job_id", job)) == 1



def test_a_number_listed_while_its_job_waits_for_the_pacer_is_not_originated(redis_server: RedisServer,
                                                                            key_prefix: str) -> None:
    # Two starts a second: the jobs claimed ahead wait for their turns, their
    # calls already "dialing". The lists are read again right before the
    # originate of a job whose turn was long in coming.
    rig = Rig(redis_server, key_prefix, sps=3, talk_time=0.1)
    try:
        jobs = [rig.submit(a="+155512300%02d" % i, b="user/1000") for i in range(4)]
        rig.start_worker()
        last = jobs[-1]
        wait_for(lambda: rig.queue.get(last)["status"] == "dialing", timeout=10)
        assert rig.switch.originates_with("eslengine_job_id", last) == []
        rig.queue.dnc.add("", [dnc.Entry("+15551230003", added=time.time())])
        doc = rig.final(last, timeout=10)
        assert doc["status"] == "skipped_dnc", doc
        assert rig.switch.originates_with("eslengine_job_id", last) == []
        for job in jobs[:-1]:
            rig.final(job, timeout=10)
            assert len(rig.switch.originates_with("eslengine_job_id", job)) == 1
    finally:
        rig.close()


def test_an_interactive_job_takes_the_nodes_next_turn_ahead_of_the_bulk_jobs_waiting(rig: Rig) -> None:
    from eslengine.pacing import Pacer
    from eslengine.worker import Worker

    worker = Worker(rig.config, rig.queue)  # not started: the node's state is set by hand
    worker.phase.running = True
    state = worker.nodes[0]
    state.link = type("Link", (), {"up": True, "unanswered_for": lambda self, now: 0.0})()
    state.ready = True
    state.pacer = Pacer(sps=5, max_sessions=100)  # 4 starts a second, one every 0.25 s
    order: list[str] = []

    def take(name: str, bulk: bool) -> None:
        assert worker.nodes.acquire(1, bulk=bulk) is state
        order.append(name)

    bulk = [gevent.spawn(take, "bulk%d" % i, True) for i in range(4)]
    wait_for(lambda: order == ["bulk0"], timeout=5)
    interactive = gevent.spawn(take, "interactive", False)
    gevent.joinall([*bulk, interactive], timeout=10)
    worker.phase.running = False
    # The next turn after the interactive job came was its own.
    assert order[:2] == ["bulk0", "interactive"], order
    assert sorted(order) == ["bulk0", "bulk1", "bulk2", "bulk3", "interactive"]

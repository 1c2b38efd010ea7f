"""The worker's claiming: how many jobs it takes off the stream, and which
stale entries it takes over (eslengine/worker/claiming.py)."""

from __future__ import annotations

import gevent

from eslengine.store import GROUP
from eslengine.worker import Worker
from tests.conftest import RedisServer
from tests.rig import Rig, wait_for


def test_a_job_held_by_a_live_worker_is_not_taken_over(rig: Rig) -> None:
    # A live worker may hold a job long before its pacer lets it originate
    # (a node down, a share just cut). Another worker's reclaim, however
    # short its idle limit, leaves the entry alone: taking it over would
    # place the call a second time when the first worker gets its turn.
    job_id = rig.submit(a="+15551230001", b="+15551230002")
    rig.queue.ensure_group()
    (entry_id, _), = rig.queue.read("slow-worker", 10, 10)
    rig.queue.beat("slow-worker", 60)
    rig.start_worker(claim_idle_ms=1)
    gevent.sleep(2.5)  # two reclaim rounds
    assert rig.switch.originates_with("eslengine_job_id", job_id) == []
    assert rig.client.xpending_range(rig.queue.keys.jobs, GROUP, "-", "+", 10)[0]["consumer"] == "slow-worker"
    # The slow worker dies (its heartbeat is gone): its job is placed, once.
    rig.queue.forget_worker("slow-worker")
    assert rig.final(job_id, timeout=15)["status"] == "completed"
    assert len(rig.switch.originates_with("eslengine_job_id", job_id)) == 1


def test_a_worker_claims_nothing_for_a_node_it_has_no_share_of_yet(rig: Rig) -> None:
    # Jobs claimed for a node this worker may not start calls on (no share
    # yet, or waiting to join other workers there) would only wait in its
    # hands, where no other worker may take them.
    worker = Worker(rig.config, rig.queue)  # not started: the node's state is set by hand
    state = worker.nodes[0]
    state.link = type("Link", (), {"up": True})()
    state.ready = True
    assert worker.claims.ahead() == 0
    state.pacer.set_share(10, 20)
    assert worker.claims.ahead() > 0
    state.pacer.set_share(0, 0)  # what Nodes.renew_share sets while the worker waits to join others
    assert worker.claims.ahead() == 0


def test_a_worker_claims_no_more_than_its_nodes_can_start_soon(redis_server: RedisServer, key_prefix: str) -> None:
    # 300 jobs, a node that starts 5 sessions a second: the worker takes about
    # a second's worth off the stream; the rest stay queued, free for any
    # other worker, instead of waiting in "dialing" for this one's pacer.
    rig = Rig(redis_server, key_prefix, sps=5, talk_time=0.2)
    try:
        ids = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(300)]
        rig.start_worker(concurrency=2000)
        wait_for(lambda: len(rig.switch.stats.originate_log) >= 3, timeout=10)
        gevent.sleep(1.5)
        records = [rig.client.hget(rig.queue.keys.call(i), "status") for i in ids]
        dialing = records.count("dialing")
        assert 1 <= dialing <= 8, dialing  # Timings.claim_ahead s of 4 starts a second, and a little
        assert records.count("queued") >= 250
        assert rig.client.xlen(rig.queue.keys.jobs) >= 250
    finally:
        rig.close()

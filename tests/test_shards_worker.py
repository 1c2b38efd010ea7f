"""Workers of a sharded store (ESLENGINE_REDIS_SHARDS): one a shard in a
worker process, each claiming and beating in its own shard, and a dead
process's calls adopted in every shard. Workers and the simulator run in
this process against the suite's Redis."""

from __future__ import annotations

import dataclasses
import json
import uuid

from eslengine.calls import parse_request
from eslengine.store import Keys, ShardedQueue, shards
from eslengine.worker import Worker
from eslengine.worker.core import shard_workers
from tests.conftest import RedisServer
from tests.rig import Rig, wait_for
from tests.test_reliability import attempts_seen


def _sharded(rig: Rig, count: int = 3) -> ShardedQueue:
    return ShardedQueue(rig.client, Keys(rig.config.key_prefix), shards=count, record_ttl=600)


def _start(rig: Rig, queue: ShardedQueue, name: str) -> list[Worker]:
    config = dataclasses.replace(rig.config, redis_shards=len(queue.shards), metrics_port=0)
    workers = shard_workers(config, queue, consumer=name)
    for worker in workers:
        worker.start()
    return workers


def _id_in(shard: int, count: int = 3) -> str:
    while True:
        call_id = str(uuid.uuid4())
        if shards.shard_of(call_id, count) == shard:
            return call_id


def test_one_shard_is_one_worker_as_always(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)
    try:
        workers = shard_workers(rig.config, rig.queue, consumer="w1")
        assert [(w.consumer, w.queue is rig.queue, w.dispatcher is not None) for w in workers] == [("w1", True, True)]
    finally:
        rig.close()


def test_a_process_has_a_worker_a_shard_and_one_dispatcher(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)
    try:
        queue = _sharded(rig)
        config = dataclasses.replace(rig.config, redis_shards=3, metrics_port=9)
        workers = shard_workers(config, queue, consumer="w1")
        assert [w.consumer for w in workers] == ["w1", "w1.s1", "w1.s2"]
        assert [w.queue.keys.tag for w in workers] == [Keys(key_prefix, n).tag for n in range(3)]
        assert [w.dispatcher is not None for w in workers] == [True, False, False]
        assert [w.config.metrics_port for w in workers] == [9, 0, 0]
        # Every one paces the nodes in the base shard.
        assert all(w.nodes.queue is queue.of_shard(0) for w in workers)
        # A process serving some shards only: the first has the metrics port.
        some = shard_workers(dataclasses.replace(config, worker_shards=(1, 2)), queue, consumer="w2")
        assert [(w.consumer, w.queue.keys.shard, w.dispatcher is None, w.config.metrics_port) for w in some] == [
            ("w2.s1", 1, True, 9), ("w2.s2", 2, True, 0)]
    finally:
        rig.close()


def test_calls_of_every_shard_are_placed_by_that_shards_worker(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, talk_time=0.2)
    try:
        queue = _sharded(rig)
        workers = _start(rig, queue, "w1")
        rig.workers += workers
        jobs = {shard: [queue.enqueue(parse_request({"id": _id_in(shard), "a": "+1555123%04d" % (10 * shard + i),
                                                     "b": "+15551240001"}, rig.config)) for i in range(3)]
                for shard in range(3)}
        for shard, ids in jobs.items():
            for job in ids:
                doc = wait_for(lambda job=job: (d := queue.get(job)) and d["status"] == "completed" and d, timeout=15)
                assert queue.record(job).get("worker") == workers[shard].consumer, json.dumps(doc)
                assert rig.client.exists(Keys(key_prefix, shard).call(job))
        for shard in range(3):
            assert rig.client.sismember(Keys(key_prefix, shard).workers, workers[shard].consumer)
    finally:
        rig.close()


def test_a_dead_processs_calls_are_adopted_in_every_shard(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)  # calls stay up until hung up
    try:
        queue = _sharded(rig)
        first = _start(rig, queue, "first")
        jobs = [queue.enqueue(parse_request({"id": _id_in(n % 3), "a": "+1555123%04d" % n, "b": "+1555124%04d" % n},
                                            rig.config)) for n in range(6)]
        for job in jobs:
            wait_for(lambda job=job: queue.get(job)["status"] == "bridged", timeout=15)
        for worker in first:  # SIGKILL: nothing cleaned up; the heartbeats expire (here: at once)
            worker.halt()
            worker.queue.forget_worker(worker.consumer)
        second = _start(rig, queue, "second")
        rig.workers += second
        for job in jobs:
            shard = shards.shard_of(job, 3)
            wait_for(lambda job=job, shard=shard: job in second[shard].calls, timeout=15)
        for job in jobs:
            rig.switch.api("uuid_kill", job, None)
        for job in jobs:
            doc = wait_for(lambda job=job: (d := queue.get(job)) and d["status"] in ("completed", "failed") and d,
                           timeout=15)
            assert doc["status"] == "completed", json.dumps(doc)
            assert queue.record(job).get("worker") == second[shards.shard_of(job, 3)].consumer
            assert attempts_seen(rig.switch, job) == ["1"]
    finally:
        rig.close()


def test_status_calls_and_dead_letters_read_every_shard(redis_server: RedisServer, key_prefix: str) -> None:
    from eslengine import ops
    from tests.test_ops_status import cli

    rig = Rig(redis_server, key_prefix, ring_time=0.05)  # answered calls stay up until hung up
    try:
        queue = _sharded(rig)
        env = {"ESLENGINE_REDIS_SHARDS": "3"}
        # Nothing running: queued jobs of every shard are counted.
        for shard in range(3):
            queue.enqueue(parse_request({"id": _id_in(shard), "a": "+15551230001", "b": "+15551230002"}, rig.config))
        queue.of_shard(2).dead_letter_job("x", "{}", "test")
        config = dataclasses.replace(rig.config, redis_shards=3)
        assert ops.status_document(config, queue)["queue"]["waiting"] == 3
        assert ops.status_document(config, queue)["queue"]["dead_letters"] == 1
        # Each lane read in every shard; the base shard's refusal counts once.
        queue.enqueue(parse_request({"id": _id_in(2), "a": "+15551230001", "b": "+15551230002"}, rig.config),
                      lane="bulk")
        queue.dnc.count_refusal("api", "")
        document = ops.status_document(config, queue)
        assert {lane: shown["waiting"] for lane, shown in document["queue"]["lanes"].items()} == {
            "interactive": 3, "bulk": 1}
        assert document["queue"]["waiting"] == 4
        assert document["do_not_call"]["refused"] == {"api": 1, "dial": 0}
        dead = cli("dead", "list", rig=rig, env=env)
        assert dead.returncode == 0 and "2/" in dead.stdout, (dead.stdout, dead.stderr)

        workers = _start(rig, queue, "w1")
        rig.workers += workers
        live = queue.enqueue(parse_request({"id": _id_in(2), "a": "+15551230001", "b": "+15551230002"}, rig.config))
        wait_for(lambda: queue.get(live)["status"] == "bridged", timeout=15)  # type: ignore[index]
        shown = {w["worker"] for w in ops.status_document(config, queue)["workers"]}
        assert shown == {"w1", "w1.s1", "w1.s2"}
        # --live finds the call in its shard's live sets even out of the index.
        rig.client.zrem(Keys(key_prefix, 2).index(), live)
        listed = cli("calls", "list", "--live", "--json", rig=rig, env=env)
        assert listed.returncode == 0, listed.stderr
        assert live in [row["id"] for row in json.loads(listed.stdout)["calls"]]
        shown_call = cli("calls", "show", live, "--json", rig=rig, env=env)
        assert json.loads(shown_call.stdout)["worker"] == "w1.s2"
        rig.switch.api("uuid_kill", live, None)
    finally:
        rig.close()


def test_do_not_call_numbers_are_refused_and_skipped_in_every_shard(redis_server: RedisServer,
                                                                    key_prefix: str) -> None:
    """One copy of the lists, in the base shard: a listed number is refused
    at intake whatever shard the call would go to, and a number listed once
    its job is queued is skipped at dial time by that shard's worker; a
    bulk-lane job of shard 2 is placed by shard 2's worker."""
    import time

    import pytest

    from eslengine import dnc
    from eslengine.errors import DoNotCall
    from eslengine.store.keys import GROUP

    rig = Rig(redis_server, key_prefix, talk_time=0.5)
    try:
        queue = _sharded(rig)
        queue.dnc.add("", [dnc.Entry("+15551239001", added=time.time())])
        queue.dnc.add("acme", [dnc.Entry("+15551239002", added=time.time())])
        for shard in range(3):
            with pytest.raises(DoNotCall) as refused:
                queue.enqueue(parse_request({"id": _id_in(shard), "a": "+15551230001", "b": "+15551239001"},
                                            rig.config), lane="bulk")
            assert (refused.value.number, refused.value.list) == ("+15551239001", dnc.GLOBAL)
            with pytest.raises(DoNotCall) as refused:
                queue.enqueue(parse_request({"id": _id_in(shard), "a": "+15551239002", "b": "+15551230001"},
                                            rig.config), account="acme")
            assert refused.value.list == dnc.ACCOUNT
        for shard in range(3):
            keys = Keys(key_prefix, shard)
            assert rig.client.xlen(keys.jobs) == 0 and rig.client.xlen(keys.jobs_bulk) == 0
            assert rig.client.zcard(keys.index()) == 0
        assert queue.dnc.refusals() == {"api": 6, "dial": 0}
        assert queue.dnc.refusals("acme") == {"api": 3, "dial": 0}
        # The lists exist once, in the base shard.
        assert not any(rig.client.exists(Keys(key_prefix, n).tag + ":dnc:global") for n in (1, 2))

        # Queued in every shard and lane, then listed before any worker runs.
        later = {shard: queue.enqueue(parse_request({"id": _id_in(shard), "a": "+15551230001",
                                                     "b": "+1555123800%d" % shard}, rig.config),
                                      lane="bulk" if shard == 2 else "interactive")
                 for shard in range(3)}
        bulk = queue.enqueue(parse_request({"id": _id_in(2), "a": "+15551230002", "b": "+15551230003"}, rig.config),
                             lane="bulk")
        assert rig.client.xlen(Keys(key_prefix, 2).jobs_bulk) == 2
        queue.dnc.add("", [dnc.Entry("+1555123800%d" % shard, added=time.time()) for shard in range(3)])
        workers = _start(rig, queue, "w1")
        rig.workers += workers
        for shard, job in later.items():
            doc = wait_for(lambda job=job: (d := queue.get(job)) and d["status"] in ("skipped_dnc", "completed",
                                                                                     "failed") and d, timeout=15)
            assert doc["status"] == "skipped_dnc", json.dumps(doc)
            assert queue.record(job).get("worker") == workers[shard].consumer
            assert rig.switch.originates_with("eslengine_job_id", job) == []
        doc = wait_for(lambda: (d := queue.get(bulk)) and d["status"] in ("completed", "failed") and d, timeout=15)
        assert doc["status"] == "completed", json.dumps(doc)
        record = queue.record(bulk)
        assert (record.get("worker"), record.get("lane")) == ("w1.s2", "bulk")
        assert rig.client.exists(Keys(key_prefix, 2).call(bulk))
        assert len(rig.switch.originates_with("eslengine_job_id", bulk)) == 1
        assert queue.dnc.refusals() == {"api": 6, "dial": 3}
        for shard in range(3):
            keys = Keys(key_prefix, shard)
            for stream in (keys.jobs, keys.jobs_bulk):
                assert rig.client.xpending(stream, GROUP)["pending"] == 0
    finally:
        rig.close()

"""The client ``connect`` builds for each URL form, and which of redis-py's
errors mean "Redis is unavailable for now" (``QueueUnavailable``: the API
answers 503, the worker backs off) and which are ours to see."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
import redis.cluster
import redis.sentinel
from redis.exceptions import (
    AskError,
    ClusterDownError,
    CrossSlotTransactionError,
    MovedError,
    RedisClusterException,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.sentinel import MasterNotFoundError

from eslengine.errors import QueueUnavailable
from eslengine.redisbatch import CommandBatcher
from eslengine.redisurl import RedisUrlError
from eslengine.store import JobQueue, Keys, connect, redis_errors
from tests.conftest import RedisServer, call_request, free_port, maybe_batched
from tests.redisha import RedisCluster, ServerProcess, replica_of, wait_replicas_up


@pytest.mark.parametrize("error", [
    redis.ConnectionError("Connection refused"),
    redis.TimeoutError("Timeout reading from socket"),
    MasterNotFoundError("No master found for 'mymaster'"),
    redis.ReadOnlyError("You can't write against a read only replica."),
    ClusterDownError("The cluster is down"),
    TryAgainError("Multiple keys request during rehashing of slot"),
    MovedError("3999 127.0.0.1:6381"),
    AskError("3999 127.0.0.1:6381"),
    SlotNotCoveredError('Slot "3999" is not covered by the cluster.'),
    RedisClusterException("Redis Cluster cannot be connected. Please provide at least one reachable node: x"),
    RedisClusterException("All slots are not covered after query all startup_nodes. 5461 of 16384 covered..."),
    redis.ResponseError("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
    redis.ResponseError("NOREPLICAS Not enough good replicas to write."),
])
def test_a_failover_or_outage_error_is_queue_unavailable(error: Exception) -> None:
    with pytest.raises(QueueUnavailable, match="^enqueue: "), redis_errors("enqueue"):
        raise error


@pytest.mark.parametrize("error", [
    redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    CrossSlotTransactionError("Cannot run a transaction over keys of more than one slot"),
    RedisClusterException("ERROR: Calling pipelined function bgsave is blocked when running redis in cluster mode..."),
])
def test_a_mistake_of_ours_is_not_hidden_as_an_outage(error: Exception) -> None:
    with pytest.raises(type(error)), redis_errors("enqueue"):
        raise error


def test_a_sentinel_url_gives_the_sentinel_managed_primary_and_no_sentinel_is_an_outage() -> None:
    client = connect("redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/mymaster/2" % (free_port(), free_port()),
                     timeout=1.0)
    pool = client.connection_pool
    assert isinstance(pool, redis.sentinel.SentinelConnectionPool) and isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.service_name, pool.connection_kwargs["db"], pool.max_connections) == ("mymaster", 2, 64)
    with pytest.raises(QueueUnavailable) as caught, redis_errors("ping"):
        client.ping()
    assert str(caught.value) == "ping: No master found for 'mymaster'"


def test_an_unreachable_cluster_is_an_outage_at_connect() -> None:
    with pytest.raises(QueueUnavailable, match="^reach the cluster: "):
        connect("redis+cluster://127.0.0.1:%d" % free_port(), timeout=1.0)


def test_a_bad_url_is_refused_before_any_connection() -> None:
    with pytest.raises(RedisUrlError, match="no service name"):
        connect("redis+sentinel://127.0.0.1:26379")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    c = RedisCluster()
    yield c
    c.stop()


def test_a_cluster_url_gives_a_cluster_client_that_runs_the_store_on_every_primary(cluster: RedisCluster) -> None:
    client = connect(cluster.url)
    assert isinstance(client, redis.cluster.RedisCluster)
    # Prefixes whose slots fall on each of the three primaries.
    owners: dict[str, str] = {}
    n = 0
    while len(set(owners.values())) < 3:
        prefix = "conn-%d" % n
        owners[prefix] = client.get_node_from_key(Keys(prefix).jobs).name
        n += 1
    for prefix in {owner: prefix for prefix, owner in owners.items()}.values():
        queue = JobQueue(client, Keys(prefix), record_ttl=60)
        queue.ensure_group()
        direct = queue.enqueue(call_request())
        batcher = CommandBatcher(client, route_key=queue.keys.jobs)
        batcher.start()
        try:
            queue.use_batcher(batcher)
            batched = queue.enqueue(call_request())
            assert [queue.get(direct)["status"], queue.get(batched)["status"]] == ["queued", "queued"]
            # Both reached the stream on the primary that owns the prefix's slot.
            node = client.get_node_from_key(queue.keys.jobs).redis_connection
            assert node.xlen(queue.keys.jobs) == 2
        finally:
            batcher.stop()
    client.close()


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[ServerProcess, ServerProcess]]:
    primary = ServerProcess()
    replica = replica_of(primary)
    try:
        wait_replicas_up(primary, [replica])
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


@pytest.mark.parametrize("batched", [False, True])
def test_with_wait_replicas_an_accepted_job_is_on_the_replica_when_enqueue_returns(
        replicated: tuple[ServerProcess, ServerProcess], key_prefix: str, batched: bool) -> None:
    primary, replica = replicated
    client = connect("redis://127.0.0.1:%d/0" % primary.port)
    queue = JobQueue(client, Keys(key_prefix), record_ttl=60, wait_replicas=1)
    with maybe_batched(queue, batched):
        job_id = queue.enqueue(call_request())
    # Read on the replica at once: the WAIT made sure it holds the record.
    assert replica.client().hget(Keys(key_prefix).call(job_id), "status") == "queued"
    client.close()


@pytest.mark.parametrize("batched", [False, True])
def test_a_job_no_replica_acknowledges_is_an_outage_naming_the_count(
        redis_server: RedisServer, key_prefix: str, batched: bool) -> None:
    # The suite's redis-server has no replica: WAIT 1 gets 0 acknowledgements.
    client = connect(redis_server.url)
    queue = JobQueue(client, Keys(key_prefix), record_ttl=60, wait_replicas=1, wait_ms=20)
    request = call_request()
    with maybe_batched(queue, batched), pytest.raises(QueueUnavailable, match="on 0 of 1 replicas within 20 ms"):
        queue.enqueue(request)
    # It was written (on the primary alone): the error says so, and a retry
    # of the same id meets it.
    assert queue.get(request.id)["status"] == "queued"
    client.close()


def test_a_script_unknown_to_the_server_is_loaded_and_waited_for(redis_server: RedisServer, key_prefix: str) -> None:
    client = connect(redis_server.url)
    client.script_flush()
    queue = JobQueue(client, Keys(key_prefix), record_ttl=60, wait_replicas=1, wait_ms=20)
    request = call_request()
    with pytest.raises(QueueUnavailable, match="replicas"):
        queue.enqueue(request)
    assert queue.get(request.id)["status"] == "queued"
    client.close()


def test_the_batcher_follows_its_slot_to_another_primary(cluster: RedisCluster) -> None:
    client = connect(cluster.url)
    keys = Keys("moving-%s" % uuid.uuid4().hex[:8])
    slot = client.keyslot(keys.jobs)
    source = client.get_node_from_key(keys.jobs)
    target = next(n for n in client.get_primaries() if n.name != source.name)
    batcher = CommandBatcher(client, route_key=keys.jobs)
    batcher.start()
    try:
        assert batcher.call("GET", keys.jobs) is None  # connected to the slot's primary; the slot stays empty
        # Hand the (empty) slot over: the target first, then the source, then the rest.
        target_id = target.redis_connection.execute_command("CLUSTER", "MYID")
        for node in [target] + [n for n in client.get_primaries() if n.name != target.name]:
            node.redis_connection.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        # The old primary answers MOVED; the batcher sends it again to the new one.
        assert batcher.call("XADD", keys.jobs, "*", "job", "{}")
        assert target.redis_connection.xlen(keys.jobs) == 1
        assert batcher.call("XLEN", keys.jobs) == 1  # and stays there
    finally:
        batcher.stop()
        client.close()

"""The Redis client, and the one place redis-py's errors become ``QueueUnavailable``.

``connect`` builds redis-py's own client for what the URL names
(``redisurl``): a plain client, the Sentinel-managed client of the primary
(``Sentinel.master_for``: it asks the Sentinels again after a failover) or a
``RedisCluster`` (it follows MOVED and refreshes its slot map). Failover
itself is theirs; while it lasts, ``redis_errors`` reports it as
``QueueUnavailable``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import redis
import redis.cluster
import redis.sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import AskError, ClusterError, RedisClusterException, SlotNotCoveredError, TryAgainError
from redis.retry import Retry

from .. import metrics
from ..errors import QueueUnavailable
from ..redisurl import RedisTarget, parse_redis_url


@contextlib.contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py's errors into ``QueueUnavailable``."""
    try:
        yield
    except redis.sentinel.MasterNotFoundError as exc:
        # redis-py's message goes on with the repr of every Sentinel client.
        metrics.count_redis_error(exc)
        raise QueueUnavailable("%s: %s" % (what, str(exc).split(" : ", 1)[0])) from exc
    # ReadOnlyError is a demoted primary; the cluster's are a slot moving
    # (AskError covers MovedError) or its primary failing.
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError,
            ClusterError, TryAgainError, AskError, SlotNotCoveredError) as exc:
        metrics.count_redis_error(exc)
        raise QueueUnavailable("%s: %s" % (what, exc)) from exc
    except redis.ResponseError as exc:
        metrics.count_redis_error(exc)
        # NOREPLICAS: a primary with min-replicas-to-write cut off from its replicas.
        if any(word in str(exc) for word in ("NOGROUP", "LOADING", "MASTERDOWN", "NOREPLICAS")):
            raise QueueUnavailable("%s: %s" % (what, exc)) from exc
        raise
    except RedisClusterException as exc:
        metrics.count_redis_error(exc)
        # No node answers (the client cannot learn the slot map); the others
        # (a cross-slot transaction...) are mistakes of ours, and raised.
        if "cannot be connected" in str(exc) or "not covered" in str(exc):
            raise QueueUnavailable("%s: %s" % (what, exc)) from exc
        raise


class BlockingSentinelConnectionPool(redis.sentinel.SentinelConnectionPool, redis.BlockingConnectionPool):
    """The Sentinel-managed pool, with ``BlockingConnectionPool``'s waiting
    for a free connection instead of failing when all are in use."""


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), 1)


def connect(url: str, *, timeout: float = 5.0, max_connections: int = 64) -> Any:
    """A client whose every call has a deadline. It retries a failed command
    once after a short pause; longer outages are the caller's to back off
    from (the API answers 503, the worker waits and resumes). Its pool holds
    at most ``max_connections`` (per node, in a cluster); thousands of
    greenlets share them, waiting (up to the deadline) for a free one rather
    than failing. ``url`` is read by ``redisurl.parse_redis_url`` (a bad one
    raises its ``RedisUrlError``)."""
    return client_for(parse_redis_url(url), timeout=timeout, max_connections=max_connections)


def client_for(target: RedisTarget, *, timeout: float = 5.0, max_connections: int = 64) -> Any:
    """The client ``connect`` makes for ``target``: ``redis.Redis``, or
    ``redis.cluster.RedisCluster`` (typed Any: the two share most commands
    but no base class)."""
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 2.0),
        "decode_responses": True,
    }
    if target.kind == "single":
        pool = redis.BlockingConnectionPool.from_url(
            target.url, max_connections=max_connections, timeout=timeout, retry=_retry(),
            health_check_interval=30, **common)
        return redis.Redis(connection_pool=pool)
    auth: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.kind == "sentinel":
        sentinel_auth = {"password": target.sentinel_password} if target.sentinel_password else {}
        sentinels = redis.sentinel.Sentinel(
            list(target.hosts),
            # Each Sentinel is asked once (redis-py's default would try three
            # more times, seconds apart): the next Sentinel is the retry.
            sentinel_kwargs={"socket_timeout": min(timeout, 2.0), "socket_connect_timeout": min(timeout, 2.0),
                             "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), 0), "ssl": target.tls,
                             **sentinel_auth})
        return sentinels.master_for(
            target.service, connection_pool_class=BlockingSentinelConnectionPool, db=target.db,
            max_connections=max_connections, timeout=timeout, retry=_retry(), health_check_interval=30,
            ssl=target.tls, **auth, **common)
    with redis_errors("reach the cluster"):  # it reads the slot map at once
        return redis.cluster.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode(host, port) for host, port in target.hosts],
            retry=_retry(), max_connections=max_connections, ssl=target.tls, **auth, **common)

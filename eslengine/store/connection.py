"""The Redis client, and the one place redis-py's errors become ``QueueUnavailable``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .. import metrics
from ..errors import QueueUnavailable


@contextlib.contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Translate redis-py's errors into ``QueueUnavailable``."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError) as exc:
        metrics.count_redis_error(exc)
        raise QueueUnavailable("%s: %s" % (what, exc)) from exc
    except redis.ResponseError as exc:
        metrics.count_redis_error(exc)
        if "NOGROUP" in str(exc) or "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
            raise QueueUnavailable("%s: %s" % (what, exc)) from exc
        raise


def connect(url: str, *, timeout: float = 5.0, max_connections: int = 64) -> redis.Redis:
    """A client whose every call has a deadline. It retries a failed command
    once after a short pause; longer outages are the caller's to back off
    from (the API answers 503, the worker waits and resumes). Its pool holds
    at most ``max_connections``; thousands of greenlets share them, waiting
    (up to the deadline) for a free one rather than failing."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        health_check_interval=30,
        decode_responses=True,
    )
    return redis.Redis(connection_pool=pool)

"""The API over a store of three shards (ESLENGINE_REDIS_SHARDS=3) on the
suite's Redis: calls placed, read, cancelled and listed across shards, and
an Idempotency-Key's record in its call's shard."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from eslengine.http import create_app
from eslengine.store import Keys, ShardedQueue, connect, shards
from tests.test_api import AUTH, VALID, post
from tests.test_api import config as config  # noqa: F401  (a fixture)


@pytest.fixture
def sharded(config: Any) -> Iterator[ShardedQueue]:  # noqa: F811
    client = connect(config.redis_url)
    yield ShardedQueue(client, Keys(config.key_prefix), shards=3, record_ttl=config.record_ttl)
    client.close()
    client.connection_pool.disconnect()


@pytest.fixture(params=[False, True], ids=["flask", "fast-intake"])
def client(request: pytest.FixtureRequest, config: Any, sharded: ShardedQueue) -> FlaskClient:  # noqa: F811
    app: Flask = create_app(dataclasses.replace(config, redis_shards=3), sharded, fast_intake=request.param)
    return app.test_client()


def test_calls_of_every_shard_are_read_cancelled_and_listed(client: FlaskClient, redis_client: redis.Redis,
                                                            key_prefix: str) -> None:
    placed = []
    for n in range(12):
        resp = post(client, {**VALID, "variables": {"n": str(n)}})
        assert resp.status_code == 202, resp.get_json()
        placed.append(resp.get_json()["id"])
    for job_id in placed:
        assert redis_client.exists(Keys(key_prefix, shards.shard_of(job_id, 3)).call(job_id))
        assert client.get("/v1/calls/" + job_id, headers=AUTH).get_json()["status"] == "queued"
    assert len({shards.shard_of(job_id, 3) for job_id in placed}) > 1
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = client.get("/v1/calls?limit=5" + ("&cursor=" + cursor if cursor else ""), headers=AUTH).get_json()
        seen += [c["id"] for c in page["calls"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(placed))
    assert client.delete("/v1/calls/" + placed[3], headers=AUTH).status_code == 200  # still queued: ended at once
    assert client.get("/v1/calls/" + placed[3], headers=AUTH).get_json()["status"] == "cancelled"


def test_an_idempotency_key_without_an_id_gives_its_id_and_its_record_its_shard(
        client: FlaskClient, redis_client: redis.Redis, key_prefix: str) -> None:
    headers = {**AUTH, "Idempotency-Key": "order-77"}
    first = post(client, VALID, headers)
    again = post(client, VALID, headers)
    assert first.status_code == again.status_code == 202
    job_id = first.get_json()["id"]
    assert again.get_json()["id"] == job_id and again.headers["Idempotent-Replayed"] == "true"
    (idem,) = [k for k in redis_client.scan_iter(match="*%s*:idem:*" % key_prefix)]
    assert idem.startswith(Keys(key_prefix, shards.shard_of(job_id, 3)).tag + ":")
    digest = idem.rsplit(":", 1)[1]
    assert job_id == shards.idempotent_id("", digest)  # an operator key owns nothing
    assert sum(redis_client.xlen(Keys(key_prefix, n).jobs) for n in range(3)) == 1

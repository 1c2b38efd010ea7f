"""A worker across a Redis outage that refuses its writes: a call that ends
while its status cannot be written is recorded once Redis takes writes
again, from what the switch says of it, and is not placed again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RedisServer
from tests.rig import Rig, statuses, wait_for


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def test_a_call_whose_end_could_not_be_written_is_recorded_when_writes_come_back(
        private_redis: RedisServer, key_prefix: str) -> None:
    rig = Rig(private_redis, key_prefix, talk_time=1.0)
    try:
        rig.start_worker()
        job = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job)["status"] == "bridged", timeout=10)
        # The primary refuses every write (NOREPLICAS), as one cut off from its
        # replicas does with min-replicas-to-write.
        rig.client.config_set("min-replicas-to-write", 1)
        try:
            # The call ends on the switch meanwhile; its end is not written.
            wait_for(lambda: not rig.switch.board.channels, timeout=10)
            wait_for(lambda: rig.queue.get(job)["status"] == "bridged", timeout=1)
        finally:
            rig.client.config_set("min-replicas-to-write", 0)
        doc = rig.final(job, timeout=20)
        assert (doc["status"], doc["hangup_cause"]) == ("completed", "NORMAL_CLEARING")
        assert statuses(doc)[-1] == "completed"
        assert len(rig.switch.originates_with("eslengine_job_id", job)) == 1
    finally:
        rig.close()

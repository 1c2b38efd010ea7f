"""The worker's timings (eslengine/worker/timings.py) and the messages its
calls' inboxes take (eslengine/worker/call.py): pure, no clock, no Redis."""

from __future__ import annotations

import dataclasses

import pytest
import redis

from eslengine.config import Config, Node
from eslengine.store import JobQueue, Keys
from eslengine.worker import Timings, Worker
from eslengine.worker.call import CANCEL, RECHECK, RECONCILE, Call, Cancel, Recheck, Reconcile


@pytest.mark.parametrize(("field", "value"), [
    ("silence_check", 60.0),
    ("heartbeat_ttl", 6.0),
    ("lease_margin", 1.0),
    ("pacing_window", 1.005),
    ("stall_hold", 0.5),
    ("claim_ahead", 1.0),
    ("share_beat", 1.0),
    ("share_lease", 3.0),
    ("share_ttl", 12.0),
    ("limits_period", 10.0),
    ("limits_min_gap", 1.0),
    ("throttle_hold", 3.0),
    ("throttle_settle", 0.2),
    ("connect_check", 1.0),
    ("connect_look", 0.5),
    ("connect_look_for", 10.0),
    ("connect_refusals", 20),
    ("reconcile_patience", 60.0),
    ("max_placed_again", 5),
    ("retry_pump", 0.5),
])
def test_the_default_timings_are_the_ones_the_worker_runs_with(field: str, value: float) -> None:
    assert getattr(Timings(), field) == value


@pytest.mark.parametrize(("timings", "beat_every", "join_wait"), [
    (Timings(), 2.0, 3.0 + 1.005 + 0.25),
    (Timings(heartbeat_ttl=1.5, share_lease=1.0, pacing_window=1.0), 0.5, 2.25),
])
def test_the_derived_periods_follow_their_fields(timings: Timings, beat_every: float, join_wait: float) -> None:
    assert timings.beat_every == pytest.approx(beat_every)
    assert timings.join_wait == pytest.approx(join_wait)


@pytest.mark.parametrize(("timings", "ring_timeout", "wait"), [
    (Timings(), 60, 390.0),
    (Timings(), 0, 30.0),
    (Timings(result_per_ring_second=0.0, result_grace=0.5), 60, 0.5),
])
def test_an_originate_result_is_awaited_by_the_ring_timeout(timings: Timings, ring_timeout: float,
                                                            wait: float) -> None:
    assert timings.result_wait(ring_timeout) == wait


def test_timings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timings().heartbeat_ttl = 1.0  # type: ignore[misc]


def test_a_worker_runs_with_the_timings_it_is_given() -> None:
    config = Config(redis_url="redis://127.0.0.1:1/0", nodes=(Node("127.0.0.1", 1, "x", sps=30),))
    queue = JobQueue(redis.Redis(), Keys("t"))
    timings = Timings(lease_margin=0.25, pacing_window=2.0)
    worker = Worker(config, queue, timings=timings)
    assert worker.timings is timings
    assert worker.registry.lease.margin == 0.25
    assert worker.nodes[0].pacer.window == 2.0
    assert Worker(config, queue).timings == Timings()


@pytest.mark.parametrize(("message", "kind"), [(CANCEL, Cancel), (RECHECK, Recheck), (RECONCILE, Reconcile)])
def test_inbox_messages_are_types_not_strings(message: object, kind: type) -> None:
    assert type(message) is kind and not isinstance(message, str)
    assert message == kind() and hash(message) == hash(kind())
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.x = 1  # type: ignore[attr-defined]


def test_a_call_keeps_its_fields_in_slots() -> None:
    # Memory per live call is a tracked figure: no per-call __dict__.
    assert "__slots__" in Call.__dict__
    assert not hasattr(Call.__new__(Call), "__dict__")

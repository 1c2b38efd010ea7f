"""The worker's lease: pure, every time passed in."""

from __future__ import annotations

import pytest

from eslengine.lease import Lease


def test_a_new_lease_holds_nothing_until_its_first_renewal() -> None:
    lease = Lease(margin=1.0)
    assert not lease.holds(0.0) and lease.epoch == 0
    assert lease.renewed(sent=10.0, ttl=6.0, unbroken=False) is True
    assert lease.epoch == 1


@pytest.mark.parametrize(("now", "holds"), [
    (10.0, True),
    (14.999, True),
    (15.0, False),   # sent + ttl - margin: the key may live on, the lease does not
    (16.0, False),   # the key itself may be gone from here on
    (99.0, False),
])
def test_the_lease_ends_a_margin_before_the_heartbeat_can_expire(now: float, holds: bool) -> None:
    lease = Lease(margin=1.0)
    lease.renewed(sent=10.0, ttl=6.0, unbroken=False)
    assert lease.holds(now) is holds


def test_the_lease_counts_from_when_the_renewal_was_sent_not_when_it_was_answered() -> None:
    # A renewal sent at 10 and answered at 14.5 (Redis slow, or a pause in
    # between): the key may have been set at any moment from 10 on.
    lease = Lease(margin=1.0)
    lease.renewed(sent=10.0, ttl=6.0, unbroken=False)
    assert not lease.holds(15.2)


def test_unbroken_renewals_keep_the_epoch_and_move_the_end() -> None:
    lease = Lease(margin=1.0)
    lease.renewed(sent=0.0, ttl=6.0, unbroken=False)
    for sent in (2.0, 4.0, 6.0):
        assert lease.renewed(sent=sent, ttl=6.0, unbroken=True) is False
    assert lease.epoch == 1
    assert lease.holds(10.9) and not lease.holds(11.0)


def test_a_renewal_that_finds_the_heartbeat_lapsed_starts_a_new_epoch() -> None:
    # Paused for 20 s: nothing renewed, the key expired, another worker may
    # have adopted the jobs. The next renewal says so.
    lease = Lease(margin=1.0)
    lease.renewed(sent=0.0, ttl=6.0, unbroken=False)
    assert not lease.holds(20.0)
    assert lease.renewed(sent=20.0, ttl=6.0, unbroken=False) is True
    assert lease.epoch == 2 and lease.holds(20.0) and not lease.holds(25.0)


def test_a_lapse_shorter_than_the_key_keeps_the_epoch() -> None:
    # Late by 5.5 s: the lease had ended (5 s) but the key had not (6 s); no
    # other worker could adopt anything.
    lease = Lease(margin=1.0)
    lease.renewed(sent=0.0, ttl=6.0, unbroken=False)
    assert not lease.holds(5.5)
    assert lease.renewed(sent=5.5, ttl=6.0, unbroken=True) is False
    assert lease.epoch == 1 and lease.holds(5.5)


def test_after_a_failed_renewal_the_next_one_starts_a_new_epoch() -> None:
    # The failed one may have reached Redis after the key had expired: the
    # key found "unbroken" afterwards would then be that one's.
    lease = Lease(margin=1.0)
    lease.renewed(sent=0.0, ttl=6.0, unbroken=False)
    lease.failed()
    assert lease.holds(4.0)  # the last successful renewal still stands
    assert lease.renewed(sent=4.0, ttl=6.0, unbroken=True) is True
    assert lease.epoch == 2
    assert lease.renewed(sent=6.0, ttl=6.0, unbroken=True) is False


def test_an_ended_lease_holds_nothing_and_its_next_renewal_is_a_new_epoch() -> None:
    lease = Lease(margin=1.0)
    lease.renewed(sent=0.0, ttl=6.0, unbroken=False)
    lease.end()
    assert not lease.holds(0.5)
    assert lease.renewed(sent=1.0, ttl=6.0, unbroken=True) is True and lease.holds(1.0)

"""How long a worker may act for the jobs it holds: its lease.

Pure bookkeeping on times the caller passes in (``time.monotonic()``); no
clock, no Redis, no sleeping.

A worker holds its jobs while its heartbeat key lives in Redis. The key is
set to expire ``ttl`` seconds after each renewal reaches Redis; once it has
expired, another worker may take the jobs over (``JobQueue.adopt`` and
``JobQueue.claim_stale`` test the key in the same script that takes them).
A renewal reaches Redis after it was sent, so the key lives at least until
``sent + ttl``, ``sent`` read before the renewal left. The lease ends
``margin`` earlier: the margin covers the rate difference of the two clocks
and the time an originate written just before the end needs to create its
channel on the switch, where a worker adopting the job looks for it.

Before it writes an originate, or any command that starts a call leg, the
worker checks ``Lease.holds(now)``, with nothing that can yield between the
check and the write. The one window this leaves: the process is stopped
(SIGSTOP, a VM pause, swapping) after the check and before the bytes reach
the socket; the write then happens whenever it resumes, lease or not.

Epochs. Each stretch during which the heartbeat key lived without a break
is an epoch; ``Lease.epoch`` counts them. A renewal that finds the key gone
(it expired: a pause, a partition), or that follows a renewal whose outcome
is unknown, starts a new epoch: in the gap another worker may have adopted
any job this one held. A job taken while the lease held in epoch ``e`` is
still this worker's as long as the epoch is ``e``; in a later epoch the
worker asks Redis whether it still owns the job before acting for it again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Lease:
    """One worker's lease on its jobs."""

    # Seconds the lease ends before the heartbeat key can expire.
    margin: float
    # The lease holds while now < until (monotonic seconds).
    until: float = float("-inf")
    epoch: int = 0
    # The next successful renewal starts a new epoch: nothing is known of
    # the key since the last one (none yet, or one that failed).
    doubt: bool = True

    def holds(self, now: float) -> bool:
        """Whether the worker may act for its jobs at ``now``."""
        return now < self.until

    def renewed(self, sent: float, ttl: float, unbroken: bool) -> bool:
        """A renewal sent at ``sent`` set the key to live ``ttl`` seconds;
        ``unbroken``: Redis found the key still there, set by this worker.
        Returns whether a new epoch started."""
        new = self.doubt or not unbroken
        if new:
            self.epoch += 1
        self.doubt = False
        self.until = max(self.until, sent + ttl - self.margin)
        return new

    def failed(self) -> None:
        """A renewal failed or its reply was lost: it may or may not have
        reached Redis. The lease still ends when the last one said."""
        self.doubt = True

    def end(self) -> None:
        """The worker gave its heartbeat up: no more acting on any job."""
        self.until = float("-inf")
        self.doubt = True

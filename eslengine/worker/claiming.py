"""Taking jobs off the streams, no faster than the nodes can start them.

The claim loop reads new entries for this worker while the pool has room
and the jobs claimed but not yet originated stay under what the nodes'
pacers can start soon (``Timings.claim_ahead``); the reclaim loop takes
over entries left idle by workers that are gone. Each entry is handed to
``run_entry`` in the pool.

Interactive jobs never wait behind bulk ones (``bulk_room``): each round
reads the interactive lane first, and the bulk lane only with the room left
less ``Config.interactive_reserve``, so that an interactive job that comes
while the bulk lane is full still finds room at once; the nodes' pacers
serve it before the bulk jobs claimed before it (``Nodes.acquire``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent
import gevent.event
import gevent.pool

from ..config import Config
from ..errors import QueueUnavailable
from ..store import JobQueue
from .call import no_slot
from .nodes import Nodes
from .phase import Phase
from .registry import Registry
from .timings import Timings

log = logging.getLogger(__name__)

RunEntry = Callable[[str, dict[str, str], Callable[[], None], int], None]


class Claims:
    """The claim and reclaim loops, and the count of claimed jobs whose
    originate is not written yet."""

    def __init__(self, config: Config, queue: JobQueue, consumer: str, timings: Timings, phase: Phase,
                 registry: Registry, nodes: Nodes, pool: gevent.pool.Pool, *, run_entry: RunEntry) -> None:
        self.config = config
        self.queue = queue
        self.consumer = consumer
        self.timings = timings
        self.phase = phase
        self.registry = registry
        self.nodes = nodes
        self.pool = pool
        self._run_entry = run_entry
        # Jobs claimed by the claim loop whose originate is not written yet.
        self._unsent = 0
        self._room = gevent.event.Event()
        # Stream entries this worker is working on: never its stale ones.
        self.in_hand: set[str] = set()

    def wake(self) -> None:
        """There may be room to claim more (a slot given back, a share grown)."""
        self._room.set()

    def claim_loop(self) -> None:
        backoff = 0.1
        group_ready = False
        while self.phase.running:
            try:
                if not group_ready:
                    self.queue.ensure_group()
                    group_ready = True
                if not self.nodes.any_up():
                    gevent.sleep(0.2)
                    continue
                free = self.pool.free_count()
                if free <= 0:
                    self.pool.wait_available(timeout=1)
                    continue
                room = min(free, self.ahead() - self._unsent)
                if room <= 0:
                    self._room.clear()
                    self._room.wait(timeout=1)
                    continue
                if not self.registry.holds():
                    gevent.sleep(0.1)
                    continue
                epoch = self.registry.lease.epoch
                self._claim(room, epoch)
                backoff = 0.1
            except QueueUnavailable as exc:
                log.warning("worker %s: Redis unavailable (%s); retrying in %.1fs", self.consumer, exc, backoff)
                # A Redis that came back empty (no persistence, or a failover
                # to a replica that lagged) has lost the consumer group.
                group_ready = group_ready and "NOGROUP" not in str(exc)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:
                log.exception("worker %s: claim loop error", self.consumer)
                gevent.sleep(1)

    def _claim(self, room: int, epoch: int) -> None:
        """One round: interactive entries up to ``room``, then bulk ones
        with what ``bulk_room`` leaves; with neither, wait up to a second for
        an entry of a lane there is room for."""
        got = self.queue.read(self.consumer, min(room, 200), None)
        bulk = bulk_room(room - len(got), self.config.interactive_reserve)
        if bulk > 0:
            got += self.queue.read(self.consumer, min(bulk, 200), None, ("bulk",))
        if not got:
            # Both streams at once (at most one entry each: room for both),
            # or the interactive one only while the bulk lane may take
            # nothing, for a short while: room for bulk jobs opens as the
            # jobs claimed are originated.
            if bulk > 0:
                got = self.queue.read(self.consumer, 1, 1000, ("interactive", "bulk"))
            else:
                got = self.queue.read(self.consumer, 1, 100)
        for entry_id, fields in got:
            self.pool.spawn(self._run_entry, entry_id, fields, self.slot(), epoch)

    def ahead(self) -> int:
        """Session starts the nodes that are up may make in
        ``Timings.claim_ahead`` seconds: an upper bound of the calls they
        may start (a call costs one session or more). A node this worker has
        no share of (none yet, or none while it waits to join others there:
        ``Nodes.renew_share``) starts none: jobs claimed for it would only
        wait in its hands."""
        return self.nodes.starts_within(self.timings.claim_ahead)

    def slot(self) -> Callable[[], None]:
        """Count one more claimed job not yet originated; the returned
        function gives the slot back (once, however often it is called)."""
        self._unsent += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._unsent -= 1
                self._room.set()

        return release

    def reclaim_loop(self) -> None:
        interval = max(1.0, min(30.0, self.config.claim_idle_ms / 4000))
        while self.phase.running:
            gevent.sleep(interval)
            try:
                if not self.nodes.any_up() or self.pool.free_count() <= 0:
                    continue
                if not self.registry.holds():
                    continue
                epoch = self.registry.lease.epoch
                for entry_id, fields in self.queue.claim_stale(self.consumer, self.config.claim_idle_ms,
                                                               in_hand=self.in_hand):
                    if not self.phase.running:
                        break
                    log.info("worker %s: took over stale entry %s", self.consumer, entry_id)
                    self.pool.spawn(self._run_entry, entry_id, fields, no_slot, epoch)
            except QueueUnavailable as exc:
                log.warning("worker %s: reclaim skipped: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: reclaim loop error", self.consumer)


def bulk_room(room: int, reserve: int) -> int:
    """How many bulk-lane jobs a claim round may take with ``room`` left
    after the interactive ones: all but the last ``reserve``, which stay for
    an interactive job that may come meanwhile."""
    return max(0, room - reserve)

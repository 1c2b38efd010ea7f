"""This worker among the others: its heartbeat, the lease on its jobs that
the heartbeat holds, and the adoption of dead workers' calls and jobs.

A worker acts for a job (writes its record, acknowledges its entry, writes a
command that starts a call leg) only while its lease holds, and in the
lease's epoch in which the job was last known to be its own
(``Registry.confirm``, ``Registry.guard``; see ``eslengine.lease``). A
worker whose heartbeat has expired is dead: ``Adoption`` takes its calls
and its unacknowledged jobs over.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import gevent
import gevent.event
import gevent.pool

from ..errors import JobTakenOver, LeaseLapsed, QueueUnavailable
from ..lease import Lease
from ..store import JobQueue
from .call import no_slot
from .nodes import Nodes
from .phase import Phase
from .timings import Timings

if TYPE_CHECKING:
    from .call import Call

log = logging.getLogger(__name__)


class Registry:
    """This worker's heartbeat, renewed in Redis, and its lease."""

    def __init__(self, queue: JobQueue, consumer: str, timings: Timings, phase: Phase) -> None:
        self.queue = queue
        self.consumer = consumer
        self.timings = timings
        self.phase = phase
        # This worker acts for its jobs only while its lease holds; its
        # heartbeat holds this token (one per process).
        self.lease = Lease(timings.lease_margin)
        self.token = uuid.uuid4().hex
        # Set (and replaced) at each successful renewal.
        self._renewed = gevent.event.Event()

    def holds(self) -> bool:
        """Whether the lease holds now."""
        return self.lease.holds(time.monotonic())

    def beat_loop(self) -> None:
        """Renew this worker's heartbeat, and its lease with it, every
        ``Timings.beat_every`` seconds until the worker has stopped (its
        ``stop`` ends this once the calls are drained). A renewal that finds
        the heartbeat lapsed starts a new lease epoch: each job is checked to
        be still this worker's before it acts for it again (``confirm``)."""
        while True:
            sent = time.monotonic()
            try:
                unbroken = self.queue.beat(self.consumer, self.timings.heartbeat_ttl, self.token)
            except QueueUnavailable as exc:
                self.lease.failed()
                log.warning("worker %s: heartbeat not renewed: %s", self.consumer, exc)
                gevent.sleep(min(0.5, self.timings.beat_every))
                continue
            first = self.lease.epoch == 0
            if self.lease.renewed(sent, self.timings.heartbeat_ttl, unbroken) and not first:
                log.warning("worker %s: its heartbeat lapsed (or may have); each job is checked to be still its own "
                            "before it acts for it again", self.consumer)
            renewed, self._renewed = self._renewed, gevent.event.Event()
            renewed.set()
            gevent.sleep(self.timings.beat_every)

    def confirm(self, call: Call) -> None:
        """Return once this worker may act for ``call`` (write its record,
        acknowledge its entry, place it): its lease holds and the job is its
        own in the lease's epoch. While the lease does not hold (a renewal
        late or failing: Redis out of reach, the process paused) it waits;
        in a new epoch it asks Redis whether the job is still its own.
        Raises ``JobTakenOver`` when another worker took it over."""
        waited = False
        while True:
            lease = self.lease
            if lease.holds(time.monotonic()):
                if call.epoch == lease.epoch:
                    return
                epoch = lease.epoch
                entry = call.entry_id if not call.settled else ""
                if not self.queue.owns(self.consumer, self.token, call.request.id, entry):
                    raise JobTakenOver(call.request.id)
                if lease.epoch == epoch:
                    call.epoch = epoch
                continue
            if not self.phase.alive:
                raise QueueUnavailable("job %s: this worker's heartbeat is no longer renewed" % call.request.id)
            if not waited:
                waited = True
                log.info("job %s: waiting for this worker's heartbeat to be renewed", call.request.id)
            self._renewed.wait(timeout=0.5)

    def still_owns(self, call: Call) -> bool:
        """``confirm`` as a yes or no; no when Redis cannot say."""
        try:
            self.confirm(call)
        except (JobTakenOver, QueueUnavailable) as exc:
            log.warning("job %s: not acted on: %s", call.request.id, exc)
            return False
        return True

    def guard(self, call: Call) -> Callable[[], None]:
        """The check made last before a command that starts a call leg is
        written (``EslConnection.send`` calls it with nothing that yields
        between the two): the lease holds, in the epoch in which the job was
        last known to be this worker's. Else ``LeaseLapsed``, and nothing is
        written. If the process is stopped between this check and the
        socket write, the write happens when it resumes, lease or not: the
        one window fencing leaves open."""
        def guard() -> None:
            lease = self.lease
            if not lease.holds(time.monotonic()) or call.epoch != lease.epoch:
                raise LeaseLapsed("job %s: this worker's lease has lapsed" % call.request.id)
        return guard

    def end(self) -> None:
        """The worker gave its heartbeat up: no more acting on any job."""
        self.lease.end()

    def forget(self) -> None:
        """Clear the heartbeat: calls still in this worker's live set are
        adopted by another worker at once."""
        try:
            self.queue.forget_worker(self.consumer)
        except QueueUnavailable as exc:
            log.warning("worker %s: could not clear its heartbeat: %s", self.consumer, exc)


class Adoption:
    """Takes over what workers whose heartbeat expired left: their calls
    (``adopt``: followed, or placed again if never run) and their jobs'
    unacknowledged entries (``run_entry``), and gives their places on the
    nodes up once their calls are counted here."""

    def __init__(self, queue: JobQueue, consumer: str, timings: Timings, phase: Phase, registry: Registry,
                 nodes: Nodes, pool: gevent.pool.Pool, *, adopt: Callable[[str, int], None],
                 run_entry: Callable[[str, dict[str, str], Callable[[], None], int], None]) -> None:
        self.queue = queue
        self.consumer = consumer
        self.timings = timings
        self.phase = phase
        self.registry = registry
        self.nodes = nodes
        self.pool = pool
        self._adopt = adopt
        self._run_entry = run_entry
        # Calls adopted from dead workers and not yet held on a node here;
        # dead workers whose node places this worker takes care of.
        self._adopting: set[str] = set()
        self._places_dropped: set[str] = set()

    def held(self, job_id: str) -> None:
        """The adopted call ``job_id`` holds its sessions on a node here, or
        will never hold any."""
        self._adopting.discard(job_id)

    def sweep_loop(self) -> None:
        """Adopt the calls and unacknowledged jobs of workers whose
        heartbeat has expired."""
        while self.phase.running:
            try:
                if self.nodes.any_up() and self.registry.holds():
                    epoch = self.registry.lease.epoch
                    for dead in self.queue.dead_workers(self.consumer):
                        adopted = self.queue.adopt(dead, self.consumer)
                        if adopted is None:
                            continue  # another worker adopts it
                        calls_, entries = adopted
                        if calls_ or entries:
                            log.warning("worker %s: adopting %d call(s) and %d job(s) of dead worker %s",
                                        self.consumer, len(calls_), len(entries), dead)
                        self._adopting.update(calls_)
                        for job_id in calls_:
                            self.pool.spawn(self._adopt, job_id, epoch)
                        if dead not in self._places_dropped:
                            self._places_dropped.add(dead)
                            gevent.spawn(self._drop_places, dead, calls_)
                        for entry_id, fields in entries:
                            self.pool.spawn(self._run_entry, entry_id, fields, no_slot, epoch)
            except QueueUnavailable as exc:
                log.warning("worker %s: sweep skipped: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: sweep error", self.consumer)
            gevent.sleep(self.timings.beat_every)

    def _drop_places(self, dead: str, adopted: Sequence[str]) -> None:
        """Take a dead worker's places off the nodes this worker adopted it
        on, so that the shares grow now rather than when its places lapse
        (``Timings.share_ttl``). Its sessions are counted first: once every
        call adopted from it is held here (or has ended), this worker says
        what it holds on each node; only then does the dead one's place go.
        A node that is not up here keeps the place until it lapses."""
        deadline = time.monotonic() + self.timings.share_ttl
        while self.phase.running and any(job_id in self._adopting for job_id in adopted):
            if time.monotonic() > deadline:
                return
            gevent.sleep(0.05)
        for state in self.nodes:
            if not (self.phase.running and state.up):
                continue
            try:
                self.nodes.renew_share(state)
                self.queue.leave_node(state.node.label, dead)
            except QueueUnavailable as exc:
                log.warning("node %s: dead worker %s's place left to lapse: %s", state.node.label, dead, exc)
                continue
            log.info("node %s: dead worker %s's place given up (%d session(s) held here)",
                     state.node.label, dead, state.pacer.live)

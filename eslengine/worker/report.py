"""What this worker says of itself for ``eslengine status``: its version,
host, start, state, and its view of each node (connected or not, the
switch's own sps and max_sessions as it read them, the sessions it holds
and its share), renewed in Redis as often as its heartbeat
(``Overview.publish``).

The info outlives the heartbeat (``info_ttl``): a worker that is gone still
shows what it last said, for a while, beside the word ``gone``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import gevent

from .. import __version__
from ..errors import QueueUnavailable
from ..opsview import DRAINING, RUNNING, STOPPED, iso, worker_info
from ..store import JobQueue
from .nodes import Nodes, NodeState
from .phase import Phase
from .timings import Timings

log = logging.getLogger(__name__)


def info_ttl(timings: Timings) -> float:
    """How long a worker's info lives after its last renewal: ten
    heartbeats, at least a minute."""
    return max(60.0, 10 * timings.heartbeat_ttl)


def node_view(state: NodeState) -> dict[str, Any]:
    """This worker's view of one node, as ``opsview.worker_info`` takes it."""
    return {"up": state.up, "sps": state.node.sps, "max_sessions": state.node.max_sessions,
            "switch_sps": state.switch_sps, "switch_max_sessions": state.switch_max_sessions,
            "held": state.pacer.live, "share": state.pacer.ceiling, "rate": state.pacer.rate}


class Report:
    """Publishes the worker's info every heartbeat while it is alive."""

    def __init__(self, queue: JobQueue, consumer: str, timings: Timings, phase: Phase, nodes: Nodes, *,
                 pool: int, now: Callable[[], float]) -> None:
        self.queue = queue
        self.consumer = consumer
        self.timings = timings
        self.phase = phase
        self.nodes = nodes
        self.pool = pool
        self._now = now
        self.started_at = iso(now())

    def fields(self, state: str) -> dict[str, str]:
        return worker_info(version=__version__, host=socket.gethostname(), pid=os.getpid(),
                           started_at=self.started_at, state=state, pool=self.pool,
                           nodes={s.node.label: node_view(s) for s in self.nodes})

    def publish(self, state: str) -> None:
        self.queue.overview.publish(self.consumer, self.fields(state), info_ttl(self.timings), self._now())

    def loop(self) -> None:
        """Renew the info every ``Timings.beat_every`` seconds while the
        worker is alive: ``running``, then ``draining`` once it stops."""
        while self.phase.alive:
            try:
                self.publish(RUNNING if self.phase.running else DRAINING)
            except QueueUnavailable as exc:
                # The heartbeat's own warning says Redis is out of reach.
                log.debug("worker %s: status info not renewed: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: status info error", self.consumer)
            gevent.sleep(self.timings.beat_every)

    def stopped(self) -> None:
        """The worker has stopped: say so, for the info's remaining life."""
        try:
            self.publish(STOPPED)
        except QueueUnavailable as exc:
            log.warning("worker %s: could not say it stopped: %s", self.consumer, exc)

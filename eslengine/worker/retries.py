"""The retry pump: jobs whose retry is due go back to the stream."""

from __future__ import annotations

import logging
import time

import gevent

from ..errors import QueueUnavailable
from ..store import JobQueue
from .phase import Phase
from .timings import Timings

log = logging.getLogger(__name__)


class RetryPump:
    """Moves the jobs whose retry time has come back to the stream, every
    ``Timings.retry_pump`` seconds while the worker runs."""

    def __init__(self, queue: JobQueue, consumer: str, timings: Timings, phase: Phase) -> None:
        self.queue = queue
        self.consumer = consumer
        self.timings = timings
        self.phase = phase

    def loop(self) -> None:
        while self.phase.running:
            try:
                moved = self.queue.move_due_retries(time.time())
                if moved:
                    log.info("worker %s: %d retr%s due, queued", self.consumer, moved, "y" if moved == 1 else "ies")
            except QueueUnavailable as exc:
                log.warning("worker %s: retries not moved: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: retry loop error", self.consumer)
            gevent.sleep(self.timings.retry_pump)

"""Cancels: the API publishes a job id on the cancel channel; the worker
following that call hears it."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent

from ..store import JobQueue
from .phase import Phase

log = logging.getLogger(__name__)


class CancelListener:
    """Subscribes to the cancel channel while the worker runs and passes
    each job id published there to ``on_cancel``."""

    def __init__(self, queue: JobQueue, consumer: str, phase: Phase, *, on_cancel: Callable[[str], None]) -> None:
        self.queue = queue
        self.consumer = consumer
        self.phase = phase
        self._on_cancel = on_cancel

    def loop(self) -> None:
        while self.phase.running:
            pubsub = self.queue.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.queue.keys.cancel)
                while self.phase.running:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self._on_cancel(str(message["data"]))
            except Exception as exc:  # redis errors: reconnect after a pause
                log.warning("worker %s: cancel channel lost (%s); resubscribing", self.consumer, exc)
                gevent.sleep(1)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    log.debug("pubsub close failed", exc_info=True)

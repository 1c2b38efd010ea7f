"""The worker: claim jobs from Redis, originate them, follow their calls.

One gevent pool; one place in it per call for the call's whole life
(``life.py``). Channel events arrive on each node's event-socket connection
and are routed by their ``eslengine_job_id`` variable into the owning call's
inbox, so handlers stay short and each call's state changes in one place. A
call has a greenlet only while its inbox has something for it: one that
waits for its next event keeps its place in the pool with an unstarted
greenlet, which that event starts (``Inbox``, ``CallPool``); a live call
then costs a few KiB, not the ten or more of a parked greenlet's stack and
frames. The job's stream entry is acknowledged once the originate's outcome
is known; until then a worker that dies leaves it to be taken over by
another. Webhook deliveries, queued in Redis with each status change, go out
from a pool of their own (``webhooks.Webhooks``), never from a call's
greenlet.

This module has the worker's life (``start``, ``stop``, ``halt``, ``run``)
and wires its parts: the nodes (``nodes.py``), its heartbeat, lease and
adoption of dead workers' calls (``registry.py``), claiming
(``claiming.py``), the retry pump (``retries.py``), the cancel channel
(``cancels.py``), the switches' attempt markers (``attempt_markers.py``),
what it says of itself for ``eslengine status`` (``report.py``),
and each call's life (``life.py``, ``connect.py``, ``recovery.py``).

With the store in several shards (``ESLENGINE_REDIS_SHARDS``), a worker
process runs one ``Worker`` a shard it serves (``shard_workers``): each its
own claims, heartbeat, adoption, retries, cancels and webhooks in its
shard, every one pacing the nodes in shard 0.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import gevent
import gevent.event

from .. import logformat
from ..campaign.dispatcher import Dispatcher
from ..config import Config
from ..esl import NodeLink
from ..inbox import CallPool, Follower
from ..metrics import WorkerMetrics
from ..protocol import Event, job_result
from ..redisbatch import CommandBatcher
from ..store import JobQueue
from ..webhooks import Webhooks
from .attempt_markers import SwitchMarkers
from .call import CANCEL, JOB_HEADER, RECHECK, WORKER_HEADER, Call, OriginateResult
from .campaigns import CampaignGate
from .cancels import CancelListener
from .claiming import Claims
from .nodes import Nodes, NodeState
from .phase import Phase
from .recovery import Recovering
from .registry import Adoption, Registry
from .report import Report
from .retries import RetryPump
from .timings import Timings

log = logging.getLogger(__name__)

# What the worker subscribes to. Not CHANNEL_CREATE: the first leg's uuid is
# the job id (or comes with the answer or the result), and every event costs
# parsing on the hot path.
WORKER_EVENTS = ("BACKGROUND_JOB", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER", "CHANNEL_BRIDGE",
                 "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")
# The event format the worker subscribes with: JSON events parse in C, half
# the cost of the plain format.
WORKER_EVENT_FORMAT = "json"
# Every API command the worker sends (``api`` or ``bgapi``), and no other.
# A directory user's esl-allowed-api (freeswitch-conf/directory/default/
# eslengine.xml) must list exactly these: mod_event_socket's
# auth_api_command refuses anything else with "-ERR permission denied".
ESL_API_COMMANDS = (
    "originate",      # every call (bgapi)
    "uuid_setvar",    # a held first leg's second party (connect.py: _connect_held)
    "uuid_transfer",  # then to the connect extension (bgapi)
    "uuid_exists",    # is a call's leg still up (Nodes.find_channel, recovery.py: _recheck)
    "uuid_dump",      # what a live leg did while unseen (_catch_up, _await_park, _connect_refused)
    "hupall",         # cancel: every leg of one job (life.py: _hangup_until_gone)
    "uuid_kill",      # a held first leg whose second party cannot be connected (_drop_held)
    "global_getvar",  # the node's recordings_dir, once a connection (Nodes.read_recordings_dir)
    "fsctl",          # only fsctl sps / fsctl max_sessions: the node's own limits (Nodes.read_limits)
    "db",             # only db select / db delete of attempt markers (SwitchMarkers)
)

# A worker's name goes on every channel it places (dialstring.WORKER_VAR).
_CONSUMER = re.compile(r"[A-Za-z0-9._:@+-]{1,100}\Z")

LinkFactory = Callable[..., Any]


def _default_name() -> str:
    """host-pid-random, the host cleaned to what a worker name may hold."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:60] or "worker"
    return "%s-%d-%s" % (host, os.getpid(), uuid.uuid4().hex[:6])


class Worker(Recovering):
    """Turns queued jobs into calls on one or more FreeSWITCH nodes."""

    def __init__(
        self,
        config: Config,
        queue: JobQueue,
        *,
        consumer: str | None = None,
        link_factory: LinkFactory = NodeLink,
        timings: Timings | None = None,
        base: JobQueue | None = None,
        dispatch: bool = True,
    ) -> None:
        """``queue``: the shard this worker claims from (``store.shards``);
        ``base``: shard 0's, where the nodes are paced and campaigns kept
        (``queue`` itself by default); ``dispatch``: whether it runs the
        campaign dispatcher (one shard's worker of a process does)."""
        self.config = config
        self.queue = queue
        base = queue if base is None else base
        self.consumer = consumer or _default_name()
        if not _CONSUMER.match(self.consumer):
            raise ValueError("worker name %r: use 1-100 letters, digits and . _ : @ + -" % self.consumer)
        self.timings = timings or Timings()
        self.phase = Phase()
        self._job_tag = uuid.uuid4().hex[:8]
        self.pool = CallPool(config.concurrency, greenlet_class=Follower)
        self.calls: dict[str, Call] = {}
        self._bg: dict[str, Call] = {}
        self._link_factory = link_factory
        self._greenlets: list[gevent.Greenlet] = []
        self.stopped = gevent.event.Event()
        self.webhooks = Webhooks(queue, config)
        self.registry = Registry(queue, self.consumer, self.timings, self.phase)
        self.nodes = Nodes(config, base, self.consumer, self.timings, self.phase, on_share=self._share_changed)
        self.claims = Claims(config, queue, self.consumer, self.timings, self.phase, self.registry, self.nodes,
                             self.pool, run_entry=self._run_entry)
        self.adoption = Adoption(queue, self.consumer, self.timings, self.phase, self.registry, self.nodes, self.pool,
                                 adopt=self._adopt, run_entry=self._run_entry)
        self.retries = RetryPump(queue, self.consumer, self.timings, self.phase)
        self.cancels = CancelListener(queue, self.consumer, self.phase, on_cancel=self._on_cancel)
        self.markers = SwitchMarkers(config, self.nodes, self.phase)
        self.report = Report(queue, self.consumer, self.timings, self.phase, self.nodes, pool=config.concurrency,
                             now=time.time)
        self.metrics = WorkerMetrics(self)
        self.gate = CampaignGate(base)
        self.dispatcher = Dispatcher(config, base, on_report=self.webhooks.wake) if dispatch else None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.metrics.start()  # first: a metrics port that cannot be listened on stops the start
        self.phase.running = True
        logformat.set_context(worker=self.consumer)  # on every JSON log line of this process
        self.batcher = CommandBatcher(self.queue.redis, timeout=max(5.0, self.config.esl_timeout),
                                      route_key=self.queue.keys.jobs)
        self.batcher.start()
        self.queue.use_batcher(self.batcher)
        for state in self.nodes:
            state.link = self._link_factory(
                state.node,
                events=WORKER_EVENTS,
                filters=self._event_filters(),
                event_format=WORKER_EVENT_FORMAT,
                timeout=self.config.esl_timeout,
                on_event=lambda event, s=state: self._on_event(s, event),
                on_up=lambda link, s=state: self._on_node_up(s),
                max_delay=self.config.reconnect_max_delay,
            )
            state.link.start()
        self.phase.alive = True
        self._greenlets = [
            *(gevent.spawn(self.markers.forget_loop, state) for state in self.nodes),
            gevent.spawn(self.claims.claim_loop),
            gevent.spawn(self.registry.beat_loop),
            gevent.spawn(self.claims.reclaim_loop),
            gevent.spawn(self.cancels.loop),
            gevent.spawn(self.adoption.sweep_loop),
            gevent.spawn(self.retries.loop),
            gevent.spawn(self._silence_loop),
            gevent.spawn(self.nodes.share_loop),
            gevent.spawn(self.nodes.limits_loop),
            gevent.spawn(self.report.loop),
        ]
        self.webhooks.start()
        if self.dispatcher is not None:
            self.dispatcher.start()
        log.info("worker %s: started, %d node(s), pool %d", self.consumer, len(self.nodes), self.config.concurrency)

    def halt(self) -> None:
        """Stop dead, as SIGKILL would: nothing more is acknowledged,
        recorded or renewed, no call is hung up, and the event sockets
        close (what another worker then adopts; tests use it)."""
        self.phase.running = False
        if self.dispatcher is not None:
            self.dispatcher.stop(release=False)
        self.pool.kill(block=True)
        gevent.killall(self._greenlets)
        for state in self.nodes:
            state.link.stop()
        self.metrics.stop()

    def stop(self, grace: float = 30.0) -> None:
        """Stop claiming; let calls in progress finish for up to ``grace``
        seconds, then stop following them. Jobs whose originate outcome was not
        known stay unacknowledged for another worker to take over."""
        if not self.phase.running:
            return
        self.phase.running = False
        if self.dispatcher is not None:
            self.dispatcher.stop()
        log.info("worker %s: draining %d call(s), grace %.0fs", self.consumer, len(self.calls), grace)
        self.nodes.wake()
        gevent.killall(self._greenlets[:1], timeout=5)
        if not self.pool.join(timeout=grace):
            log.warning("worker %s: %d call(s) still up after grace; no longer followed", self.consumer, len(self.pool))
            self.pool.kill(timeout=5)
            for call in list(self.calls.values()):
                self._let_go(call)  # parked: its greenlet, never started, was stopped
        # The heartbeat went on while the calls drained (a draining worker
        # is alive: nobody adopts its calls); it stops only now.
        gevent.killall(self._greenlets, timeout=5)
        self.phase.alive = False
        self.registry.end()
        self.webhooks.stop()
        for state in self.nodes:
            if state.link is not None:
                state.link.stop()
        self.nodes.leave()
        self.report.stopped()
        # Calls still up stay in this worker's live set; with the heartbeat
        # gone another worker adopts them at once.
        self.registry.forget()
        self.batcher.stop()
        self.metrics.stop()
        self.stopped.set()
        log.info("worker %s: stopped", self.consumer)

    # ------------------------------------------------------------ events

    def _event_filters(self) -> list[tuple[str, str]]:
        """What this worker's event sockets pass: the channels it placed
        (they carry its name), the BACKGROUND_JOBs of its own bgapi
        commands, and (added while they last) the calls it took over.
        Other workers' calls and the switch's other traffic never reach it."""
        return [(WORKER_HEADER, self.consumer), ("Job-UUID", "/^%s-/" % self._job_tag)]

    def _on_event(self, state: NodeState, event: Event) -> None:
        if event.name == "BACKGROUND_JOB":
            call = self._bg.get(event.headers.get("Job-UUID", ""))
            if call is not None and call.lost and not call.settled:
                ok, text = job_result(event.body)
                call.inbox.put(OriginateResult(ok, text, attempt=call.attempt))
            return
        job_id = event.headers.get(JOB_HEADER)
        if not job_id:
            return
        if event.headers.get("variable_loopback_leg") == "B":
            return  # the inbound half of a loopback pair; its -a twin speaks for the leg
        call = self.calls.get(job_id)
        if call is not None and (call.node is None or call.node is state):
            call.inbox.put(event)

    def _on_node_up(self, state: NodeState) -> None:
        self.nodes.on_up(state)
        for call in list(self.calls.values()):
            if call.node is state:
                call.inbox.put(RECHECK)

    def _on_cancel(self, job_id: str) -> None:
        call = self.calls.get(job_id)
        if call is not None:
            call.cancel_seen = True
            call.inbox.put(CANCEL)

    def _share_changed(self) -> None:
        """A node's share may have grown: the claim loop may take more."""
        self.claims.wake()


def shard_workers(config: Config, queue: JobQueue, *, consumer: str | None = None,
                  link_factory: LinkFactory = NodeLink, timings: Timings | None = None) -> list[Worker]:
    """The workers of one process: one a shard it serves (``store.shards``;
    ``Config.worker_shards``, by default every shard), each claiming from
    its shard's queue only and beating in it, pacing the nodes in shard 0
    among the others. Shard 0's is named ``consumer`` and runs the campaign
    dispatcher; shard n's is ``<consumer>.s<n>``; the first one serves the
    metrics port. With one shard, the one worker as always."""
    name = consumer or _default_name()
    base = queue.of_shard(0)
    served = config.worker_shards or tuple(range(len(queue.shards)))
    workers: list[Worker] = []
    for n in served:
        settings = config if not workers else dataclasses.replace(config, metrics_port=0)
        workers.append(Worker(settings, queue.of_shard(n), consumer=name if n == 0 else "%s.s%d" % (name, n),
                              link_factory=link_factory, timings=timings, base=base, dispatch=n == 0))
    return workers


def run(config: Config, queue: JobQueue, *, stop_signals: Sequence[int] = ()) -> None:
    """Run a worker (one a shard) until one of ``stop_signals`` arrives (then drain)."""
    workers = shard_workers(config, queue)
    for worker in workers:
        worker.start()

    def stop() -> None:
        gevent.joinall([gevent.spawn(worker.stop) for worker in workers])

    for signum in stop_signals:
        gevent.signal_handler(signum, lambda: gevent.spawn(stop))
    for worker in workers:
        worker.stopped.wait()

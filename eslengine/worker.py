"""The worker: claim jobs from Redis, originate them, follow their calls.

One gevent pool; one place in it per call for the call's whole life:

    claim → validate → pick a node (pacing) → mark dialing → bgapi originate
          → BACKGROUND_JOB result → ack → follow channel events → final status

Channel events arrive on each node's event-socket connection and are routed by
their ``eslengine_job_id`` variable into the owning call's inbox, so handlers
stay short and each call's state changes in one place. A call has a greenlet
only while its inbox has something for it: one that waits for its next event
keeps its place in the pool with an unstarted greenlet, which that event
starts (``Inbox``, ``CallPool``); a live call then costs a few KiB, not the
ten or more of a parked greenlet's stack and frames. The job's stream entry
is acknowledged once the originate's outcome is known; until then a worker
that dies leaves it to be taken over by another. Webhook deliveries, queued
in Redis with each status change, go out from a pool of their own
(``webhooks.Webhooks``), never from a call's greenlet.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import gevent
import gevent.event
import gevent.lock
import gevent.queue

from . import dialstring
from .calls import FINAL, CallRequest, CallState, check_policy, loads_request, parse_id
from .config import PACKAGE_RECORDINGS_DIR, Config, Node, check_recordings_dir
from .errors import (ConfigError, EslCommandError, EslConnectionError, EslError, EslNotSent, EslTimeout,
                     JobTakenOver, LeaseLapsed, QueueUnavailable, ValidationError)
from .esl import BackgroundJob, NodeLink
from .lease import Lease
from .markers import NEVER_RAN_SETTLE, SWITCH_DIED_CAUSE, Resolution, Verdict, legs_to_find, resolve
from .inbox import CallPool, Follower, Inbox
from .pacing import Pacer, node_share, session_cost
from .protocol import Event, fsctl_limit, job_result
from .queue import JOB_FIELD, JobQueue
from .redisbatch import CommandBatcher
from .webhooks import Webhooks

log = logging.getLogger(__name__)

_CANCEL = "cancel"
_RECHECK = "recheck"
_RECONCILE = "reconcile"
# How long a call may go without any event before the worker asks the switch
# whether it still exists.
SILENCE_CHECK = 60.0
# What the worker subscribes to. Not CHANNEL_CREATE: the first leg's uuid is
# the job id (or comes with the answer or the result), and every event costs
# parsing on the hot path.
WORKER_EVENTS = ("BACKGROUND_JOB", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER", "CHANNEL_BRIDGE",
                 "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")
# The event format the worker subscribes with: JSON events parse in C, half
# the cost of the plain format.
WORKER_EVENT_FORMAT = "json"
# How a first party that answered ends when the engine cannot start its
# second party's leg (a command refused or failed, or the switch out of
# reach): Q.850 27, the destination cannot be reached because its interface
# is not working. The same cause as an originate the switch refuses.
CONNECT_FAILED_CAUSE = "DESTINATION_OUT_OF_ORDER"
# A worker whose heartbeat is this old is dead; its calls are adopted. It
# renews it every HEARTBEAT_TTL / 3 seconds (also while it drains), and acts
# for its jobs only while its lease holds: until LEASE_MARGIN seconds before
# its last renewal can expire (see ``lease``).
HEARTBEAT_TTL = 6
LEASE_MARGIN = 1.0
# Every API command the worker sends (``api`` or ``bgapi``), and no other.
# A directory user's esl-allowed-api (freeswitch-conf/directory/default/
# eslengine.xml) must list exactly these: mod_event_socket's
# auth_api_command refuses anything else with "-ERR permission denied".
ESL_API_COMMANDS = (
    "originate",      # every call (bgapi)
    "uuid_setvar",    # a held first leg's second party (_connect_held)
    "uuid_transfer",  # then to the connect extension (bgapi)
    "uuid_exists",    # is a call's leg still up (_find_channel, _recheck)
    "uuid_dump",      # what a live leg did while unseen (_catch_up, _await_park, _connect_refused)
    "hupall",         # cancel: every leg of one job (_hangup_until_gone)
    "uuid_kill",      # a held first leg whose second party cannot be connected (_drop_held)
    "global_getvar",  # the node's recordings_dir, once a connection (_read_recordings_dir)
    "fsctl",          # only fsctl sps / fsctl max_sessions: the node's own limits (_read_limits)
    "db",             # only db select / db delete of attempt markers (_attempt_on, _forget_loop)
)


# Originates a worker may have written to one node and not yet had the
# command reply for. FreeSWITCH answers bgapi commands one at a time per
# connection; thousands written at once would wait past the command deadline.
MAX_UNANSWERED = 64

PACING_WINDOW = 1.005

# A worker's name goes on every channel it places (dialstring.WORKER_VAR).
_CONSUMER = re.compile(r"[A-Za-z0-9._:@+-]{1,100}\Z")
_WORKER_HEADER = "variable_" + dialstring.WORKER_VAR
_JOB_HEADER = "variable_" + dialstring.JOB_VAR

# A node that has left a command unanswered this long gets no new originate
# until it answers: every originate written to a switch that has stopped
# answering may or may not run, and would never be placed again.
STALL_HOLD = 0.5

# Jobs the claim loop takes off the stream and has not yet originated are at
# most what the nodes' pacers can start in this many seconds (one more a node).
# Claimed is "dialing": a job claimed long before its turn would sit there,
# out of reach of another worker whose nodes have room, and would have to be
# checked on the switch if this worker died.
CLAIM_AHEAD = 1.0

# Workers that pace the same node (the same ``Node.label``) share its limits
# (``pacing.node_share``). Each renews its place every SHARE_BEAT seconds; its
# share holds for SHARE_LEASE seconds after it asked, so a worker that cannot
# renew stops starting sessions there. A worker's place lapses SHARE_TTL
# seconds after its last renewal: later than its heartbeat, so that the calls
# of a dead worker are adopted (and counted by their adopter) before the
# others' shares grow. A worker that joins starts nothing on the node for
# JOIN_WAIT seconds: by then every other has its new share, or none, and
# starts made under the old shares have left the pacing window.
SHARE_BEAT = 1.0
SHARE_LEASE = 3.0
SHARE_TTL = 2.0 * HEARTBEAT_TTL
JOIN_WAIT = SHARE_LEASE + PACING_WINDOW + 0.25

# A worker reads each node's own limits (``fsctl sps``, ``fsctl
# max_sessions``) when it connects and every LIMITS_PERIOD seconds after
# (an operator may change them live), and paces by the lower of those and
# the URL's. A throttle refusal (see ``Worker._throttled``) keeps the node
# to half the starts its pacing window held (``Pacer.slow_down``) until
# THROTTLE_HOLD seconds after the last one, and has the limits read again,
# at most once every LIMITS_MIN_GAP seconds. THROTTLE_SETTLE: how long a
# refusal's channel events, if the leg was created after all, may lag its
# BACKGROUND_JOB.
LIMITS_PERIOD = 10.0
LIMITS_MIN_GAP = 1.0
THROTTLE_HOLD = 3.0
THROTTLE_SETTLE = 0.2
# A held call's second party is started by the switch's dialplan (the
# connect extension's bridge); when the throttle refuses that session, the
# extension parks the first party again with CONNECT_REFUSED_VAR set. The
# worker looks (uuid_dump) when no sign of the second party came within
# CONNECT_CHECK seconds of the transfer, every CONNECT_LOOK seconds for up
# to CONNECT_LOOK_FOR, and sends it again, at most CONNECT_REFUSALS times.
CONNECT_CHECK = 1.0
CONNECT_LOOK = 0.5
CONNECT_LOOK_FOR = 10.0
CONNECT_REFUSALS = 20
# FreeSWITCH's answer when its sps throttle or session limit refuses a new
# session: the endpoint gets no session (switch_core_session_request_uuid,
# "Throttle Error!" / "Over Session Limit!") and the originate fails with
# this cause before any channel exists.
THROTTLE_CAUSE = "DESTINATION_OUT_OF_ORDER"

# An originate whose result was lost is looked for on its switch through
# the attempt markers (see markers.py). A switch that cannot be asked is
# asked again, for up to RECONCILE_PATIENCE seconds after the loss (a
# restart takes a few); then the call ends UNKNOWN. An attempt the switch
# never ran is placed again as the next attempt, at most MAX_PLACED_AGAIN
# times for one job and worker.
RECONCILE_PATIENCE = 60.0
MAX_PLACED_AGAIN = 5


class MarkersUnavailable(Exception):
    """The switch keeps no attempt markers for the engine: no mod_db, or
    the ESL user may not run ``db``."""


def _no_slot() -> None:
    """``release_claim`` of a job the claim loop did not count."""


def _default_name() -> str:
    """host-pid-random, the host cleaned to what a worker name may hold."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:60] or "worker"
    return "%s-%d-%s" % (host, os.getpid(), uuid.uuid4().hex[:6])


@dataclass
class NodeState:
    node: Node
    pacer: Pacer
    # The worker's config as the calls on this node use it: recordings_dir
    # is the engine's, or else the node's own. ``ready`` once that is known
    # (the node takes no calls before).
    config: Config
    ready: bool = False
    link: Any = None  # NodeLink
    sending: gevent.lock.BoundedSemaphore = field(default_factory=lambda: gevent.lock.BoundedSemaphore(MAX_UNANSWERED))
    # Held first legs waiting for their turn to start the second leg: they
    # go before new originates on this node.
    connecting: int = 0
    # Other workers pacing this node when this one last renewed its place,
    # and until when this worker, having joined them, starts nothing there.
    sharers: int = 0
    join_until: float = 0.0
    no_share: bool = False  # too many workers for the node's sps (logged once)
    # The switch's own limits as last read (None: not read, or it will not
    # say), and when they were last asked for.
    switch_sps: int | None = None
    switch_max_sessions: int | None = None
    limits_asked: float = float("-inf")
    limits_answered: bool = False  # asked once at least, answered or refused
    limits_refused: bool = False  # logged once

    @property
    def up(self) -> bool:
        return bool(self.ready and self.link is not None and self.link.up)

    @property
    def sps(self) -> int:
        """The node's sessions per second: the URL's, or the switch's if lower."""
        return min(self.node.sps, self.switch_sps or self.node.sps)

    @property
    def max_sessions(self) -> int:
        """The node's live-session limit: the URL's, or the switch's if lower."""
        return min(self.node.max_sessions, self.switch_max_sessions or self.node.max_sessions)


@dataclass(slots=True)
class Call:
    request: CallRequest
    entry_id: str
    state: CallState = field(default_factory=CallState)
    inbox: Inbox = field(default_factory=Inbox)
    node: NodeState | None = None
    # True once the originate's outcome is known and the entry acknowledged.
    settled: bool = False
    attempt: int = 1
    # The switch acknowledged this attempt's originate (bgapi +OK reply).
    sent: bool = False
    # The node this attempt's originate was written to (or the one its
    # markers were found on), kept after the call leaves ``node``.
    sent_to: NodeState | None = None
    # Waiting for what the switch says of an attempt whose result was lost;
    # since when (monotonic), and when its markers were first found missing.
    reconciling: bool = False
    lost_at: float = 0.0
    absent_since: float = 0.0
    # Attempts placed again because the switch never ran them.
    never_ran: int = 0
    # The job went back to the queue to be placed again later.
    retried: bool = False
    redials: int = 0
    # The originate's result was lost (connection gone); ``looks`` counts
    # how often the switches were asked about the call since.
    lost: bool = False
    refusals: int = 0
    # The current attempt's channel events seen (any leg), and how many
    # attempts the switch's throttle refused with no channel created.
    channel_seen: bool = False
    throttled: int = 0
    looks: int = 0
    # Sessions the call may hold at once (see Worker._cost); reserved on
    # ``node``'s pacer while the call has one.
    cost: int = 0
    # The first leg parks when it answers and the worker starts the second
    # (Config.bridge "engine"); ``first_cost`` is the first party's share.
    held: bool = False
    first_cost: int = 0
    connecting: bool = False  # _connect_held is running or ran
    # While _connect_held looks for the second party after a transfer: set
    # by the second party's first event, the bridge, or the call's end.
    connect_wait: gevent.event.Event | None = None
    # A cancel arrived (it is also in the inbox, for the follow loop).
    cancel_seen: bool = False
    # The bgapi Job-UUIDs of its originates (keys of Worker._bg).
    bg_uuids: list[str] = field(default_factory=list)
    # time.monotonic() of the last inbox item (Worker._silence_loop), and
    # when the sent originate's result is overdue (0: not waiting for one).
    heard: float = field(default_factory=time.monotonic)
    result_due: float = 0.0
    job: BackgroundJob | None = None  # the sent originate's, held while awaited
    # Gives back the claim loop's slot (see Worker._claim_slot) once the
    # originate was written or the job ended; idempotent.
    release_claim: Callable[[], None] = _no_slot
    # Placed by another worker: the event sockets pass its events by job id.
    foreign: bool = False
    # The lease epoch in which this worker last knew the job to be its own
    # (``Worker._confirm``).
    epoch: int = 0
    # The hangup cause last written to the call's record.
    hangup_cause: str = ""
    # The second party's last leg that ended before any of its legs
    # answered: (uuid, hangup cause). The record names it as the second
    # party's leg if none ever answers.
    b_unanswered: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class OriginateResult:
    """The BACKGROUND_JOB of a call's originate (or why it never came)."""

    ok: bool
    text: str
    lost: BaseException | None = None
    # The attempt it answers (0: the call's current one).
    attempt: int = 0


LinkFactory = Callable[..., Any]


class Worker:
    """Turns queued jobs into calls on one or more FreeSWITCH nodes."""

    def __init__(
        self,
        config: Config,
        queue: JobQueue,
        *,
        consumer: str | None = None,
        link_factory: LinkFactory = NodeLink,
        limits_period: float = LIMITS_PERIOD,
    ) -> None:
        self.config = config
        self.queue = queue
        self.consumer = consumer or _default_name()
        if not _CONSUMER.match(self.consumer):
            raise ValueError("worker name %r: use 1-100 letters, digits and . _ : @ + -" % self.consumer)
        # Every bgapi Job-UUID this worker sends starts with this tag.
        self._job_tag = uuid.uuid4().hex[:8]
        self.pool = CallPool(config.concurrency, greenlet_class=Follower)
        # The pacers' second is 5 ms longer than the switch's: what the engine
        # sends evenly can reach the switch a few milliseconds closer together.
        # No share of any node until this worker has its place among the
        # workers pacing it (``_share_loop``).
        node_config = replace(config, recordings_dir=config.recordings_dir or PACKAGE_RECORDINGS_DIR)
        self.nodes = [NodeState(n, Pacer(n.sps, n.max_sessions, window=PACING_WINDOW, rate_share=0, session_share=0),
                                node_config, ready=config.recordings_dir is not None)
                      for n in config.nodes]
        self.calls: dict[str, Call] = {}
        # bgapi Job-UUID -> call, so a BACKGROUND_JOB that arrives on another
        # connection (after a reconnect) still reaches its call.
        self._bg: dict[str, Call] = {}
        self._link_factory = link_factory
        self._limits_period = limits_period
        self._running = False
        self._greenlets: list[gevent.Greenlet] = []
        self._capacity = gevent.event.Event()
        # Jobs claimed by the claim loop whose originate is not written yet.
        self._unsent = 0
        self._claim_room = gevent.event.Event()
        # One greenlet at a time waits for the pacers' next turn; the others
        # queue on this lock instead of all waking at every turn.
        self._admission = gevent.lock.Semaphore()
        self._share_wake = gevent.event.Event()
        # Calls adopted from dead workers and not yet held on a node here;
        # dead workers whose node places this worker takes care of.
        self._adopting: set[str] = set()
        self._places_dropped: set[str] = set()
        # Stream entries this worker is working on: never its stale ones.
        self._entries: set[str] = set()
        # Attempt markers to drop, per node (see _forget_loop).
        self._forget: dict[int, gevent.queue.Queue] = {id(s): gevent.queue.Queue() for s in self.nodes}
        self._markers_refused: set[str] = set()  # nodes logged as keeping no markers
        self.stopped = gevent.event.Event()
        self.webhooks = Webhooks(queue, config)
        # This worker acts for its jobs only while its lease holds; its
        # heartbeat holds this token (one per process).
        self._lease = Lease(LEASE_MARGIN)
        self._token = uuid.uuid4().hex
        # From start() until stop() has drained the calls: the heartbeat and
        # the node places are renewed (``_running`` ends when draining begins).
        self._alive = False
        # Set (and replaced) at each successful renewal.
        self._renewed = gevent.event.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._running = True
        self.batcher = CommandBatcher(self.queue.redis, timeout=max(5.0, self.config.esl_timeout))
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
        self._alive = True
        self._greenlets = [
            *(gevent.spawn(self._forget_loop, state) for state in self.nodes),
            gevent.spawn(self._claim_loop),
            gevent.spawn(self._beat_loop),
            gevent.spawn(self._reclaim_loop),
            gevent.spawn(self._cancel_listener),
            gevent.spawn(self._sweep_loop),
            gevent.spawn(self._retry_loop),
            gevent.spawn(self._silence_loop),
            gevent.spawn(self._share_loop),
            gevent.spawn(self._limits_loop),
        ]
        self.webhooks.start()
        log.info("worker %s: started, %d node(s), pool %d", self.consumer, len(self.nodes), self.config.concurrency)

    def halt(self) -> None:
        """Stop dead, as SIGKILL would: nothing more is acknowledged,
        recorded or renewed, no call is hung up, and the event sockets
        close (what another worker then adopts; tests use it)."""
        self._running = False
        self.pool.kill(block=True)
        gevent.killall(self._greenlets)
        for state in self.nodes:
            state.link.stop()

    def stop(self, grace: float = 30.0) -> None:
        """Stop claiming; let calls in progress finish for up to ``grace``
        seconds, then stop following them. Jobs whose originate outcome was not
        known stay unacknowledged for another worker to take over."""
        if not self._running:
            return
        self._running = False
        log.info("worker %s: draining %d call(s), grace %.0fs", self.consumer, len(self.calls), grace)
        self._capacity.set()
        gevent.killall(self._greenlets[:1], timeout=5)
        if not self.pool.join(timeout=grace):
            log.warning("worker %s: %d call(s) still up after grace; no longer followed", self.consumer, len(self.pool))
            self.pool.kill(timeout=5)
            for call in list(self.calls.values()):
                self._let_go(call)  # parked: its greenlet, never started, was stopped
        # The heartbeat went on while the calls drained (a draining worker
        # is alive: nobody adopts its calls); it stops only now.
        gevent.killall(self._greenlets, timeout=5)
        self._alive = False
        self._lease.end()
        self.webhooks.stop()
        for state in self.nodes:
            if state.link is not None:
                state.link.stop()
        self._leave_nodes()
        try:
            # Calls still up stay in this worker's live set; with the
            # heartbeat gone another worker adopts them at once.
            self.queue.forget_worker(self.consumer)
        except QueueUnavailable as exc:
            log.warning("worker %s: could not clear its heartbeat: %s", self.consumer, exc)
        self.batcher.stop()
        self.stopped.set()
        log.info("worker %s: stopped", self.consumer)

    # ------------------------------------------------------------ claiming

    def _claim_loop(self) -> None:
        backoff = 0.1
        group_ready = False
        while self._running:
            try:
                if not group_ready:
                    self.queue.ensure_group()
                    group_ready = True
                if not any(s.up for s in self.nodes):
                    gevent.sleep(0.2)
                    continue
                free = self.pool.free_count()
                if free <= 0:
                    self.pool.wait_available(timeout=1)
                    continue
                room = min(free, self._claim_ahead() - self._unsent)
                if room <= 0:
                    self._claim_room.clear()
                    self._claim_room.wait(timeout=1)
                    continue
                if not self._lease.holds(time.monotonic()):
                    gevent.sleep(0.1)
                    continue
                epoch = self._lease.epoch
                for entry_id, fields in self.queue.read(self.consumer, min(room, 200), 1000):
                    self.pool.spawn(self._run_entry, entry_id, fields, self._claim_slot(), epoch)
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

    def _claim_ahead(self) -> int:
        """Session starts the nodes that are up may make in CLAIM_AHEAD
        seconds: an upper bound of the calls they may start (a call costs
        one session or more). A node this worker has no share of (none yet,
        or none while it waits to join others there: ``_renew_share``)
        starts none: jobs claimed for it would only wait in its hands."""
        return sum(int(s.pacer.rate * CLAIM_AHEAD / s.pacer.window) + 1
                   for s in self.nodes if s.up and s.pacer.rate > 0)

    def _claim_slot(self) -> Callable[[], None]:
        """Count one more claimed job not yet originated; the returned
        function gives the slot back (once, however often it is called)."""
        self._unsent += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._unsent -= 1
                self._claim_room.set()

        return release

    def _share_loop(self) -> None:
        """Keep this worker's place among the workers pacing each node that
        is up, and each pacer to this worker's share; also while it drains
        (a held call's second party still takes its turn)."""
        while self._alive:
            self._share_wake.clear()
            for state in self.nodes:
                if state.up:
                    try:
                        self._renew_share(state)
                    except QueueUnavailable as exc:
                        log.warning("node %s: share not renewed: %s", state.node.label, exc)
                    except Exception:
                        log.exception("node %s: share loop error", state.node.label)
            self._share_wake.wait(timeout=SHARE_BEAT)

    def _renew_share(self, state: NodeState) -> None:
        pacer, node = state.pacer, state.node
        asked = time.monotonic()
        added, said = self.queue.pace_node(node.label, self.consumer, SHARE_TTL, pacer.live, pacer.ceiling)
        now = time.monotonic()
        others = [value for name, value in said.items() if name != self.consumer]
        # Joining others, or coming back after this worker's place lapsed
        # while it shared the node (Redis lost the place, or could not be
        # reached): the others may still be on larger shares.
        if added and (others or state.sharers):
            state.join_until = now + JOIN_WAIT
            log.info("node %s: %d other worker(s) pace it; starting calls there in %.1fs",
                     node.label, len(others), JOIN_WAIT)
        if added or len(others) != state.sharers:
            log.info("node %s: paced by %d worker(s)", node.label, len(others) + 1)
        state.sharers = len(others)
        if now < state.join_until or not state.limits_answered:
            # Joining others, or the switch's own limits not asked yet.
            pacer.set_share(0, 0, until=asked + SHARE_LEASE)
            return
        rate, sessions = node_share(state.sps, state.max_sessions, len(others) + 1, others)
        if rate == 0 and not state.no_share:
            log.warning("node %s: %d workers share %d sessions/s; this one has no share of it",
                        node.label, len(others) + 1, state.sps)
        state.no_share = rate == 0
        pacer.set_share(rate, sessions, until=asked + SHARE_LEASE)
        self._capacity.set()
        self._claim_room.set()

    def _limits_loop(self) -> None:
        """Read each node's own limits again every ``limits_period``
        seconds: an operator may change them live (``fsctl sps N``)."""
        while self._running:
            gevent.sleep(self._limits_period)
            for state in self.nodes:
                if state.up and time.monotonic() - state.limits_asked >= self._limits_period / 2:
                    try:
                        self._read_limits(state)
                    except Exception:
                        log.exception("node %s: limits loop error", state.node.label)

    def _read_limits(self, state: NodeState) -> None:
        """Ask the node for its own limits (``fsctl sps``, ``fsctl
        max_sessions``) and pace it by the lower of those and the URL's,
        through the same share computation as the URL's (``_renew_share``).
        A switch that will not say (an ESL user without fsctl) keeps the
        URL's values, and the log says so once."""
        label = state.node.label
        state.limits_asked = time.monotonic()
        said: list[int | None] = []
        for name in ("sps", "max_sessions"):
            try:
                reply = state.link.api("fsctl " + name)
            except EslCommandError as exc:
                reply = exc.reply
            except EslError as exc:
                log.warning("node %s: limits not read: %s", label, exc)
                return  # this connection is failing; the next one asks again
            said.append(fsctl_limit(reply))
            if said[-1] is None:
                if not state.limits_refused:
                    state.limits_refused = True
                    log.warning("node %s: the switch did not say its fsctl %s (%r); pacing by the URL's sps=%d "
                                "max_sessions=%d: allow fsctl in the ESL user's esl-allowed-api, or keep the URL's "
                                "sps and max_sessions at switch.conf.xml's", label, name, reply.strip()[:200],
                                state.node.sps, state.node.max_sessions)
                break
        if len(said) == 2 and said[1] is not None:
            before = (state.sps, state.max_sessions)
            state.switch_sps, state.switch_max_sessions = said
            if (state.sps, state.max_sessions) != before or not state.limits_answered:
                log.info("node %s: the switch allows sps=%s max_sessions=%s; pacing by sps=%d max_sessions=%d",
                         label, said[0], said[1], state.sps, state.max_sessions)
        state.pacer.sps, state.pacer.max_sessions = state.sps, state.max_sessions
        state.limits_answered = True
        self._share_wake.set()

    def _leave_nodes(self) -> None:
        """Give up this worker's place on the nodes where it holds nothing."""
        for state in self.nodes:
            if state.pacer.live == 0:
                try:
                    self.queue.leave_node(state.node.label, self.consumer)
                except QueueUnavailable as exc:
                    log.warning("node %s: place not given up: %s", state.node.label, exc)

    def _reclaim_loop(self) -> None:
        interval = max(1.0, min(30.0, self.config.claim_idle_ms / 4000))
        while self._running:
            gevent.sleep(interval)
            try:
                if not any(s.up for s in self.nodes) or self.pool.free_count() <= 0:
                    continue
                if not self._lease.holds(time.monotonic()):
                    continue
                epoch = self._lease.epoch
                for entry_id, fields in self.queue.claim_stale(self.consumer, self.config.claim_idle_ms,
                                                               in_hand=self._entries):
                    if not self._running:
                        break
                    log.info("worker %s: took over stale entry %s", self.consumer, entry_id)
                    self.pool.spawn(self._run_entry, entry_id, fields, _no_slot, epoch)
            except QueueUnavailable as exc:
                log.warning("worker %s: reclaim skipped: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: reclaim loop error", self.consumer)

    def _beat_loop(self) -> None:
        """Renew this worker's heartbeat, and its lease with it, every
        HEARTBEAT_TTL / 3 seconds until the worker has stopped (``stop``
        ends it once the calls are drained). A renewal that finds the
        heartbeat lapsed starts a new lease epoch: each job is checked to be
        still this worker's before it acts for it again (``_confirm``)."""
        while True:
            sent = time.monotonic()
            try:
                unbroken = self.queue.beat(self.consumer, HEARTBEAT_TTL, self._token)
            except QueueUnavailable as exc:
                self._lease.failed()
                log.warning("worker %s: heartbeat not renewed: %s", self.consumer, exc)
                gevent.sleep(min(0.5, HEARTBEAT_TTL / 3))
                continue
            first = self._lease.epoch == 0
            if self._lease.renewed(sent, HEARTBEAT_TTL, unbroken) and not first:
                log.warning("worker %s: its heartbeat lapsed (or may have); each job is checked to be still its own "
                            "before it acts for it again", self.consumer)
            renewed, self._renewed = self._renewed, gevent.event.Event()
            renewed.set()
            gevent.sleep(HEARTBEAT_TTL / 3)

    def _sweep_loop(self) -> None:
        """Adopt the calls and unacknowledged jobs of workers whose
        heartbeat has expired."""
        while self._running:
            try:
                if any(s.up for s in self.nodes) and self._lease.holds(time.monotonic()):
                    epoch = self._lease.epoch
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
                            self.pool.spawn(self._run_entry, entry_id, fields, _no_slot, epoch)
            except QueueUnavailable as exc:
                log.warning("worker %s: sweep skipped: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: sweep error", self.consumer)
            gevent.sleep(HEARTBEAT_TTL / 3)

    def _retry_loop(self) -> None:
        while self._running:
            try:
                moved = self.queue.move_due_retries(time.time())
                if moved:
                    log.info("worker %s: %d retr%s due, queued", self.consumer, moved, "y" if moved == 1 else "ies")
            except QueueUnavailable as exc:
                log.warning("worker %s: retries not moved: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: retry loop error", self.consumer)
            gevent.sleep(0.5)

    def _drop_places(self, dead: str, adopted: Sequence[str]) -> None:
        """Take a dead worker's places off the nodes this worker adopted it
        on, so that the shares grow now rather than when its places lapse
        (SHARE_TTL). Its sessions are counted first: once every call adopted
        from it is held here (or has ended), this worker says what it holds
        on each node; only then does the dead one's place go. A node that is
        not up here keeps the place until it lapses."""
        deadline = time.monotonic() + SHARE_TTL
        while self._running and any(job_id in self._adopting for job_id in adopted):
            if time.monotonic() > deadline:
                return
            gevent.sleep(0.05)
        for state in self.nodes:
            if not (self._running and state.up):
                continue
            try:
                self._renew_share(state)
                self.queue.leave_node(state.node.label, dead)
            except QueueUnavailable as exc:
                log.warning("node %s: dead worker %s's place left to lapse: %s", state.node.label, dead, exc)
                continue
            log.info("node %s: dead worker %s's place given up (%d session(s) held here)",
                     state.node.label, dead, state.pacer.live)

    def _adopt(self, job_id: str, epoch: int) -> None:
        try:
            record = self.queue.record(job_id)
            if not record or record.get("status") in FINAL or job_id in self.calls:
                return
            # The policy is checked in _dial: a call already up is followed
            # whatever it says, nothing is placed again unless it allows it.
            request = loads_request(record["request"], self.config, job_id=job_id, check_policy=False)
            self._dial(request, "", epoch=epoch)
        except JobTakenOver as exc:
            log.warning("%s while this worker's heartbeat had lapsed; no longer followed here", exc)
        except (QueueUnavailable, ValidationError, KeyError) as exc:
            log.warning("job %s: could not adopt: %s", job_id, exc)
        except Exception:
            log.exception("job %s: adopt failed", job_id)
        finally:
            self._adopting.discard(job_id)

    def _cancel_listener(self) -> None:
        while self._running:
            pubsub = self.queue.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.queue.keys.cancel)
                while self._running:
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        call = self.calls.get(str(message["data"]))
                        if call is not None:
                            call.cancel_seen = True
                            call.inbox.put(_CANCEL)
            except Exception as exc:  # redis errors: reconnect after a pause
                log.warning("worker %s: cancel channel lost (%s); resubscribing", self.consumer, exc)
                gevent.sleep(1)
            finally:
                try:
                    pubsub.close()
                except Exception:
                    log.debug("pubsub close failed", exc_info=True)

    # ------------------------------------------------------------ one job

    def _run_entry(self, entry_id: str, fields: dict[str, str],
                   release_claim: Callable[[], None] = _no_slot, epoch: int = 0) -> None:
        """One stream entry, taken while the lease held in ``epoch``."""
        job_id = ""
        parked = False
        self._entries.add(entry_id)
        try:
            try:
                raw = fields.get(JOB_FIELD)
                if raw is None:
                    raise ValidationError("job", "entry has no 'job' field")
                # The policy is checked in _dial, on every job.
                request = loads_request(raw, self.config, check_policy=False)
            except ValidationError as exc:
                reason = "invalid job: %s: %s" % (exc.field, exc.reason)
                job_id = _job_id_of(fields.get(JOB_FIELD) or "")
                # A job that names its id gets a record saying why it failed
                # (its producer looks it up by that id).
                if job_id and self.queue.record_unreadable(job_id, fields.get(JOB_FIELD) or "", reason):
                    log.warning("job %s: entry %s dead-lettered: %s", job_id, entry_id, exc)
                else:
                    log.warning("entry %s: dead-lettered: %s", entry_id, exc)
                self.queue.dead_letter(entry_id, fields, reason, job_id=job_id)
                return
            job_id = request.id
            parked = self._dial(request, entry_id, release_claim, epoch=epoch)
        except JobTakenOver as exc:
            log.warning("%s while this worker's heartbeat had lapsed; no longer followed here", exc)
        except QueueUnavailable as exc:
            log.warning("job %s: Redis unavailable (%s); left for another attempt", job_id or entry_id, exc)
        except Exception:
            log.exception("job %s: unexpected error", job_id or entry_id)
        finally:
            if not parked:  # else the call's follower lets go of the entry (_let_go)
                self._entries.discard(entry_id)
            release_claim()

    def _dial(self, request: CallRequest, entry_id: str, release_claim: Callable[[], None] = _no_slot, *,
              epoch: int = 0) -> bool:
        """Place (or go on following) one job until its call ends. ``epoch``:
        the lease epoch in which the job (``entry_id``, or the call) was
        taken. Raises ``JobTakenOver`` once it is known that another worker
        took the job over meanwhile. True when the call was parked instead,
        waiting for its next inbox item (``_park``): ``_follow_on`` follows
        it from there."""
        job_id = request.id
        if job_id in self.calls:
            # This worker already follows the call (adopted from a dead worker
            # along with this entry): the entry has nothing left to do.
            if entry_id:
                self.queue.ack(entry_id)
            return False
        held = self.config.bridge == "engine" and dialstring.can_hold(request)
        first, second = self._cost(request, request.dial_first), self._cost(request, request.second)
        call = Call(request, entry_id, cost=first + second, held=held, first_cost=first, release_claim=release_claim,
                    epoch=epoch)
        self.calls[job_id] = call  # before any I/O: one follower per job
        parked = False
        try:
            self._confirm(call)
            # A job still queued moves to "dialing" as its record is read (one
            # round trip), unless its target call must be found first, or this
            # worker's policy refuses what the entry asks to dial: whoever
            # queued it (the API, enqueue(), a bare XADD, a retry, a requeue,
            # with whatever settings), the worker checks it again here.
            refusal = self._refusal(request)
            bg_uuid = self._job_uuid()
            dialing = (self._dialing_fields(call, bg_uuid)
                       if refusal is None and request.target_call_id is None else None)
            record = self.queue.claim(request, dialing, worker=self.consumer)
            if record.get("status") in FINAL:
                log.info("job %s: already %s; acknowledged", job_id, record.get("status"))
                if entry_id:
                    self.queue.ack(entry_id)
                self.queue.unfollow(self.consumer, job_id)
                return False
            if refusal is not None and record.get("originated") != "1":
                self._refuse(call, refusal)
                return False
            call.state.cancel_requested = record.get("cancel_requested") == "1"
            call.throttled = int(record.get("throttled") or 0)
            if "claimed" in record:
                self._originate(call, int(record["claimed"]), claimed=bg_uuid)
            elif record.get("originated") == "1":
                self._resume(call, record)
            else:
                self._originate(call, int(record.get("attempts", "0")) + 1)
            if call.node is not None or call.reconciling:
                parked = not self._follow(call)
            if call.retried and not parked:
                self.queue.unfollow(self.consumer, job_id)
        finally:
            if not parked:
                self._let_go(call)
        return parked

    def _follow_on(self, call: Call) -> None:
        """Follow a parked call whose inbox has an item (the greenlet
        ``_park`` left, started by the item), until it parks again or ends."""
        job_id = call.request.id
        parked = False
        try:
            parked = not self._follow(call)
            if call.retried and not parked:
                self.queue.unfollow(self.consumer, job_id)
        except JobTakenOver as exc:
            log.warning("%s while this worker's heartbeat had lapsed; no longer followed here", exc)
        except QueueUnavailable as exc:
            log.warning("job %s: Redis unavailable (%s); left for another attempt", job_id, exc)
        except Exception:
            log.exception("job %s: unexpected error", job_id)
        finally:
            if not parked:
                self._let_go(call)

    def _park(self, call: Call) -> None:
        """The call waits for its next inbox item with no greenlet: the
        current one (about to end) gives its place in the pool to an
        unstarted one, which that item starts (``_follow_on``)."""
        if call.job is not None and call.job.ready():
            call.job = None  # its result is in the inbox, or was applied
        # No originate of the call waits to be written: the claim loop's slot goes back.
        call.release_claim()
        call.release_claim = _no_slot
        follower = Follower(self._follow_on, call)
        self.pool.hand_over(gevent.getcurrent(), follower)
        call.inbox.park(follower)

    def _let_go(self, call: Call) -> None:
        """The worker no longer follows the call (it ended, was placed
        again later, or is left to another worker): let go of it."""
        job_id = call.request.id
        if call.sent_to is not None and call.state.final and call.settled:
            self._forget_markers(call, call.sent_to)
        if self.calls.get(job_id) is call:
            del self.calls[job_id]
        for bg_uuid in call.bg_uuids:
            self._bg.pop(bg_uuid, None)
        self._release(call)
        if call.entry_id:
            self._entries.discard(call.entry_id)
        call.release_claim()
        if call.foreign:
            for state in self.nodes:
                state.link.remove_filter(_JOB_HEADER, job_id)

    def _confirm(self, call: Call) -> None:
        """Return once this worker may act for ``call`` (write its record,
        acknowledge its entry, place it): its lease holds and the job is its
        own in the lease's epoch. While the lease does not hold (a renewal
        late or failing: Redis out of reach, the process paused) it waits;
        in a new epoch it asks Redis whether the job is still its own.
        Raises ``JobTakenOver`` when another worker took it over."""
        waited = False
        while True:
            lease = self._lease
            if lease.holds(time.monotonic()):
                if call.epoch == lease.epoch:
                    return
                epoch = lease.epoch
                entry = call.entry_id if not call.settled else ""
                if not self.queue.owns(self.consumer, self._token, call.request.id, entry):
                    raise JobTakenOver(call.request.id)
                if lease.epoch == epoch:
                    call.epoch = epoch
                continue
            if not self._alive:
                raise QueueUnavailable("job %s: this worker's heartbeat is no longer renewed" % call.request.id)
            if not waited:
                waited = True
                log.info("job %s: waiting for this worker's heartbeat to be renewed", call.request.id)
            self._renewed.wait(timeout=0.5)

    def _still_owns(self, call: Call) -> bool:
        """``_confirm`` as a yes or no; no when Redis cannot say."""
        try:
            self._confirm(call)
        except (JobTakenOver, QueueUnavailable) as exc:
            log.warning("job %s: not acted on: %s", call.request.id, exc)
            return False
        return True

    def _lease_guard(self, call: Call) -> Callable[[], None]:
        """The check made last before a command that starts a call leg is
        written (``EslConnection.send`` calls it with nothing that yields
        between the two): the lease holds, in the epoch in which the job was
        last known to be this worker's. Else ``LeaseLapsed``, and nothing is
        written. If the process is stopped between this check and the
        socket write, the write happens when it resumes, lease or not: the
        one window fencing leaves open."""
        def guard() -> None:
            lease = self._lease
            if not lease.holds(time.monotonic()) or call.epoch != lease.epoch:
                raise LeaseLapsed("job %s: this worker's lease has lapsed" % call.request.id)
        return guard

    def _refusal(self, request: CallRequest) -> ValidationError | None:
        """What this worker's toll-fraud policy says of the request's
        destinations: None when it may dial them."""
        try:
            check_policy(request, self.config)
        except ValidationError as exc:
            return exc
        return None

    def _refuse(self, call: Call, refusal: ValidationError) -> None:
        """End a job the policy refuses: failed (CALL_REJECTED), its entry
        (or, without one, the job) dead-lettered with the reason."""
        request = call.request
        why = "%s: %s" % (refusal.field, refusal.reason)
        self._confirm(call)
        log.warning("job %s: refused: %s", request.id, why)
        self.queue.transition(request.id, "failed", {"hangup_cause": "CALL_REJECTED", "error": why},
                              worker=self.consumer)
        if call.entry_id and not call.settled:
            self.queue.dead_letter(call.entry_id, {JOB_FIELD: request.dumps()}, "invalid job: " + why, request.id)
        else:
            self.queue.dead_letter_job(request.id, request.dumps(), "invalid job: " + why)
        call.settled = True
        # The transition queued the "failed" delivery with the change.
        self.webhooks.wake()

    def _ack(self, call: Call) -> None:
        """The originate's outcome is known: the job's entry may go."""
        if not call.settled:
            self._confirm(call)
            if call.entry_id:
                self.queue.ack(call.entry_id)
            call.settled = True

    def _hold(self, call: Call, node: NodeState) -> None:
        """Reserve the call's sessions on ``node`` (giving back those held
        on another node)."""
        if call.node is not node:
            self._release(call)
            node.pacer.start(time.monotonic(), call.cost)
            call.node = node
        if call.foreign:
            self._adopting.discard(call.request.id)

    def _release(self, call: Call) -> None:
        if call.node is not None:
            call.node.pacer.release(call.cost)
            call.node = None
            self._capacity.set()

    def _cost(self, request: CallRequest, name: str) -> int:
        """Sessions party ``name``'s legs may hold at once: every destination
        rung all at once, the dearest one rung in turn."""
        party = request.party(name)
        costs = [session_cost(dialstring.endpoint(d, self.config)) for d in party.destinations]
        return sum(costs) if party.mode == "simultaneous" else max(costs)

    def _candidates(self, request: CallRequest) -> list[NodeState] | None:
        """The nodes this job may run on, or None when its target call is on
        none of them."""
        if request.node is not None:
            return [s for s in self.nodes if request.node in (s.node.label, s.node.name)]
        if request.target_call_id is not None:
            node = self._find_channel(request.target_call_id)
            return None if node is None else [node]
        return self.nodes

    def _acquire_node(self, cost: int, nodes: list[NodeState] | None = None,
                      sessions: int | None = None) -> NodeState | None:
        """Wait until one of ``nodes`` (default: all) may start ``cost``
        sessions and hold ``sessions`` (default ``cost``); reserve them."""
        with self._admission:
            while self._running:
                now = time.monotonic()
                best: NodeState | None = None
                wait = 1.0
                for state in nodes if nodes is not None else self.nodes:
                    if not state.up or state.connecting:
                        continue
                    if state.link.unanswered_for(now) > STALL_HOLD:
                        wait = min(wait, 0.05)
                        continue
                    delay = state.pacer.delay(now, cost, sessions)
                    if delay is None:
                        continue
                    if delay == 0:
                        if best is None or state.pacer.headroom(now) > best.pacer.headroom(now):
                            best = state
                    else:
                        wait = min(wait, delay)
                if best is not None:
                    best.pacer.start(now, cost, sessions)
                    return best
                self._capacity.clear()
                self._capacity.wait(timeout=wait)
            return None

    def _event_filters(self) -> list[tuple[str, str]]:
        """What this worker's event sockets pass: the channels it placed
        (they carry its name), the BACKGROUND_JOBs of its own bgapi
        commands, and (added while they last) the calls it took over.
        Other workers' calls and the switch's other traffic never reach it."""
        return [(_WORKER_HEADER, self.consumer), ("Job-UUID", "/^%s-/" % self._job_tag)]

    def _job_uuid(self) -> str:
        """A new bgapi Job-UUID: a uuid4 whose first group is this worker's tag."""
        return self._job_tag + str(uuid.uuid4())[8:]

    def _dialing_fields(self, call: Call, bg_uuid: str) -> dict[str, str]:
        """What the record says of an attempt about to be placed ("pending":
        see ``_originate``), its number aside."""
        request = call.request
        fields = {"originated": "1", "attempt_state": "pending", "bgapi_job_uuid": bg_uuid,
                  "worker": self.consumer}
        # The first leg's uuid is the job id (origination_uuid) unless the
        # switch replaces it; the events say so when it does.
        fields[_party_field(request, "a_uuid")] = request.id
        return fields

    def _originate(self, call: Call, attempt: int, claimed: str = "") -> None:
        """Place attempt number ``attempt``. ``claimed``: the record already
        moved to dialing for it (``JobQueue.claim``), with this bgapi uuid."""
        request = call.request
        job_id = request.id
        # A claimed job passed the policy in the same step (``_dial``); any
        # other attempt (placed again after a crash, or with no claim) is
        # checked here, before anything is dialed.
        if not claimed and (refusal := self._refusal(request)) is not None:
            self._refuse(call, refusal)
            return
        call.attempt = attempt
        call.channel_seen = False
        candidates = self._candidates(request)
        if candidates is None:
            log.info("job %s: target call %s is on no node", job_id, request.target_call_id)
            self._confirm(call)
            self.queue.transition(job_id, "failed", {"hangup_cause": "TARGET_CALL_NOT_FOUND",
                                                     "error": "target_call_id is not up on any node"})
            self._ack(call)
            return
        # The attempt is recorded before the command leaves ("pending") and
        # again once the switch has it ("sent", with the node): whoever picks
        # the job up after a crash knows whether a call may exist, and checks
        # first. It is recorded before the pacer's turn is taken, so that the
        # command leaves at the moment the pacer chose, not a Redis round
        # trip later (which would bunch originates up at the switch).
        call.state.a_uuid = job_id
        self._confirm(call)
        if claimed:
            bg_uuid = claimed
        else:
            # Placed again (taken over, or never run by the switch): two
            # workers may both have taken the job over (its stream entry and
            # its dead worker's calls go separate ways); one places the attempt.
            if not self.queue.take_attempt(job_id, attempt, self.consumer):
                log.info("job %s: attempt %d is placed by another worker, or the call is over; left alone", job_id, attempt)
                call.reconciling = False
                self._ack(call)
                return
            bg_uuid = self._job_uuid()
            fields = {"attempts": str(attempt), **self._dialing_fields(call, bg_uuid)}
            if call.throttled:
                fields["throttled"] = str(call.throttled)
            self.queue.transition(job_id, "dialing", fields, keep_fields=True, worker=self.consumer)
        if request.callback_url:
            self.webhooks.wake()
        # A held call starts only its first leg now, but holds both legs' sessions.
        node = self._acquire_node(call.first_cost if call.held else call.cost, candidates, sessions=call.cost)
        if node is None:
            log.info("job %s: worker stopping before dialing; left for the next worker", job_id)
            return
        call.node = node
        if call.foreign:
            self._adopting.discard(job_id)
        if call.state.cancel_requested or call.cancel_seen:
            # Cancelled before it was dialed (while waiting for the pacer).
            call.state.cancel_requested = True
            self._confirm(call)
            self.queue.transition(job_id, "cancelled", {"hangup_cause": "ORIGINATOR_CANCEL"})
            self._ack(call)
            self._release(call)
            return
        log.debug("job %s: originate on %s (attempt %d)", job_id, node.node.label, attempt)
        # Built for the node: a recording goes to its recordings directory.
        command = dialstring.originate_command(request, node.config, attempt, hold=call.held, worker=self.consumer)
        sent = {"attempt_state": "sent", "node": node.node.label}
        recording = dialstring.recording_path(request, node.config)
        if recording:
            sent["recording"] = recording
        self._bg[bg_uuid] = call
        call.bg_uuids.append(bg_uuid)
        try:
            with node.sending:
                job = node.link.bgapi(command, job_uuid=bg_uuid, guard=self._lease_guard(call))
        except EslNotSent as exc:
            # Nothing reached the switch: place the same attempt again. Held
            # back by the lease (LeaseLapsed), another worker may be adopting
            # the job: only once the lease holds again and the job is still
            # this worker's.
            self._bg.pop(bg_uuid, None)
            log.warning("job %s: originate not sent (%s); placing it again", job_id, exc)
            self._release(call)
            if isinstance(exc, LeaseLapsed):
                self._confirm(call)
            else:
                gevent.sleep(0.2)
            if self._running:
                # The same attempt, already recorded as this worker's.
                self._originate(call, attempt, claimed=self._job_uuid())
            return
        except EslCommandError as exc:
            # The switch refused the command (-ERR): it did not run it.
            self._bg.pop(bg_uuid, None)
            self._release(call)
            call.refusals += 1
            log.warning("job %s: switch refused the originate (%s)", job_id, exc.reply)
            if call.refusals >= 3 or not self._running:
                # The error goes with the failure, in one write: nobody sees "failed" without it.
                self._store(call, {**call.state.on_originate_failed("DESTINATION_OUT_OF_ORDER"),
                                   "error": "the switch refused the originate: %s" % exc.reply})
                self._ack(call)
                return
            gevent.sleep(0.5 * call.refusals)
            self._originate(call, attempt, claimed=self._job_uuid())
            return
        except EslError as exc:
            # Written, but the reply was lost: the switch may have it. Its
            # attempt markers say whether it ran (_reconcile); the same
            # attempt is never placed again.
            call.sent = True
            call.sent_to = node
            call.release_claim()
            self._confirm(call)
            self.queue.transition(job_id, fields=sent)
            call.inbox.put(OriginateResult(False, "", exc, attempt))
            return
        self._confirm(call)
        self.queue.annotate(job_id, sent)
        call.sent = True
        call.sent_to = node
        call.release_claim()
        # The BACKGROUND_JOB comes to the inbox like the channel events (which
        # are applied while the switch rings); the silence loop gives up on
        # it after this long.
        call.result_due = time.monotonic() + _result_wait(request)
        call.job = job  # the link keeps pending jobs only while someone holds them
        job.add_done_callback(lambda done, call=call, attempt=attempt: call.inbox.put(_outcome(done, attempt)))

    def _settle(self, call: Call, result: OriginateResult) -> None:
        job_id = call.request.id
        if call.settled or (result.attempt and result.attempt != call.attempt):
            return  # a second copy of the result (after a reconnect), too late, or an earlier attempt's
        if result.lost is not None:
            if call.lost:
                return
            call.lost = True
            call.reconciling = True
            call.lost_at = time.monotonic()
            call.result_due = 0.0  # reconciling from here on
            log.warning("job %s: originate result lost (%s); reconciling", job_id, result.lost)
            # The BACKGROUND_JOB may still come on the new connection, or the
            # switch may not have run the originate yet: look again shortly.
            gevent.spawn_later(1.0, call.inbox.put, _RECONCILE)
            return
        call.reconciling = False
        if result.ok:
            log.debug("job %s: originate ok uuid=%s", job_id, result.text)
            # The answering leg; not the job id when the switch replaced a
            # duplicate uuid or another simultaneous destination won.
            self._store(call, call.state.on_originate_ok(result.text))
            if call.held:
                self._start_connect(call)
        else:
            log.debug("job %s: originate failed: %s", job_id, result.text)
            cause = _cause(result.text)
            if cause == THROTTLE_CAUSE and self._throttled(call):
                return
            self._store(call, call.state.on_originate_failed(cause), ack=True)
        self._ack(call)

    def _throttled(self, call: Call) -> bool:
        """The originate failed with THROTTLE_CAUSE. If the switch created
        no channel for it (none of the job's channel events came, up to
        THROTTLE_SETTLE after the result), its sps throttle or session limit
        refused it: slow the node down, read its limits again, and place the
        call again as the next attempt (nothing rang). True when it did so;
        False for a leg that was created and failed (a real
        DESTINATION_OUT_OF_ORDER), which ends the call as usual."""
        node = call.node
        if node is None or call.cancel_seen or call.state.cancel_requested or not self._running:
            return False
        for item in self._apply_events(call, THROTTLE_SETTLE, lambda: call.channel_seen):
            call.inbox.put(item)
        if call.channel_seen or call.cancel_seen:
            return False
        job_id = call.request.id
        self._slow_down(node)
        call.throttled += 1
        log.info("job %s: attempt %d refused by %s's throttle, no channel created; placing it again",
                 job_id, call.attempt, node.node.label)
        self._release(call)
        call.sent = False
        call.state = CallState(cancel_requested=call.state.cancel_requested)
        self._originate(call, call.attempt + 1)
        return True

    def _slow_down(self, node: NodeState) -> None:
        """The node's switch refused a session start (its throttle or session
        limit): start fewer sessions there for THROTTLE_HOLD seconds and read
        its limits again (at most every LIMITS_MIN_GAP seconds)."""
        now = time.monotonic()
        before = node.pacer.rate
        node.pacer.slow_down(now, THROTTLE_HOLD)
        if node.pacer.rate < before:
            log.warning("node %s: the switch refused a session start (throttle or session limit); %d starts/s "
                        "for %.0fs", node.node.label, node.pacer.rate, THROTTLE_HOLD)
        if now - node.limits_asked >= LIMITS_MIN_GAP:
            node.limits_asked = now
            gevent.spawn(self._read_limits, node)

    def _start_connect(self, call: Call, dump: dict[str, Any] | None = None) -> None:
        """Connect the held call's second party, once. With ``dump`` (the
        first leg as ``uuid_dump`` showed it) the originate's result was not
        seen: connect only once the switch shows the leg parked (the
        originate has handed it to ``park``)."""
        if call.connecting or not call.held:
            return
        call.connecting = True
        if dump is None:
            gevent.spawn(self._connect_held, call)
        else:
            gevent.spawn(self._await_park, call, dump)

    def _dump(self, call: Call) -> dict[str, Any] | None:
        """The first leg's channel as ``uuid_dump`` shows it, or None."""
        target = call.state.a_uuid or call.request.id
        try:
            dump = json.loads(call.node.link.api("uuid_dump %s json" % target))  # type: ignore[union-attr]
        except (EslError, ValueError) as exc:
            log.warning("job %s: could not read the channel: %s", call.request.id, exc)
            return None
        return dump if isinstance(dump, dict) else None

    def _await_park(self, call: Call, dump: dict[str, Any] | None) -> None:
        """``_connect_held`` once ``uuid_dump`` shows the first leg parked."""
        # The first party may still be ringing: up to its ring timeout.
        deadline = time.monotonic() + dialstring.ring_timeout(call.request.party(call.request.dial_first)) + 10
        while time.monotonic() < deadline and not call.state.final and call.node is not None:
            application = (dump or {}).get("variable_current_application")
            if application == "park":
                self._connect_held(call)
                return
            if application:
                return  # already past the park: connected by someone else
            gevent.sleep(0.5)
            dump = self._dump(call)
        if not call.state.final:
            log.warning("job %s: the first party never showed up parked; not connecting", call.request.id)

    def _connect_held(self, call: Call) -> None:
        """The first party answered and waits parked: give its leg the
        second party's dial string, then, in its turn on the node's pacer
        (before any new originate there), start the second party's leg by
        sending the channel to the connect extension. If either step fails,
        the first party is hung up (``_drop_held``)."""
        node = call.node
        if node is None:
            return
        # The dial string first, before the pacer's turn (it starts no
        # session), so that the transfer leaves the moment the turn comes.
        # api, not bgapi: it must be set before the transfer runs, and bgapi
        # commands run in threads of their own.
        setvar = dialstring.bridge_setvar_command(call.state.a_uuid, call.request, node.config, call.attempt,
                                                  worker=self.consumer)

        def set_bridge() -> None:
            reply = node.link.api(setvar)  # type: ignore[union-attr]
            if not reply.startswith("+OK"):
                raise EslCommandError("uuid_setvar", reply.strip())

        error = self._send_held(call, node, set_bridge, again=True)
        if error is not None:
            self._drop_held(call, node, "uuid_setvar", error)
            return
        refused = 0
        while True:
            if not self._pace_second(call, node):
                return
            command = dialstring.transfer_command(call.state.a_uuid)
            sent: list[BackgroundJob] = []
            call.connect_wait = gevent.event.Event()
            error = self._send_held(call, node, lambda: sent.append(
                node.link.bgapi(command, job_uuid=self._job_uuid(), guard=self._lease_guard(call))))  # type: ignore[union-attr]
            if isinstance(error, LeaseLapsed):
                return  # another worker took the call over
            if error is None:
                try:
                    ok, text = sent[-1].result(self.config.esl_timeout)
                except EslError as exc:
                    # The switch has the transfer: the leg's events say whether it ran.
                    log.warning("job %s: the transfer's result was not seen: %s", call.request.id, exc)
                    return
                if ok:
                    if not self._connect_refused(call, node):
                        return
                    refused += 1
                    if refused > CONNECT_REFUSALS:
                        error = EslCommandError("bridge", "-ERR the switch refused the second party's session "
                                                          "%d times" % refused)
                        break
                    self._slow_down(node)
                    log.info("job %s: the second party's session refused by %s's throttle, no channel created; "
                             "connecting it again", call.request.id, node.node.label)
                    clear = dialstring.connect_refused_clear_command(call.state.a_uuid)
                    error = self._send_held(call, node, lambda: self._api_ok(node, clear, "uuid_setvar"), again=True)
                    if error is not None:
                        break
                    continue
                error = EslCommandError("uuid_transfer", "-ERR " + text if text else "-ERR")
            elif not isinstance(error, (EslCommandError, EslNotSent)):
                # Written and unanswered: the switch may be running it.
                log.warning("job %s: the transfer may not have reached the switch: %s", call.request.id, error)
                return
            break
        self._drop_held(call, node, "uuid_transfer" if refused <= CONNECT_REFUSALS else "bridge", error)

    @staticmethod
    def _api_ok(node: NodeState, command: str, name: str) -> None:
        reply = node.link.api(command)  # type: ignore[union-attr]
        if not reply.startswith("+OK"):
            raise EslCommandError(name, reply.strip())

    def _pace_second(self, call: Call, node: NodeState) -> bool:
        """Wait for the second party's turn on the node's pacer (before any
        new originate there) and take it; False when the call no longer
        needs it."""
        second = max(0, call.cost - call.first_cost)
        node.connecting += 1
        try:
            while True:
                if call.state.final or call.state.cancel_requested or call.node is not node:
                    return False
                now = time.monotonic()
                delay = node.pacer.delay(now, second, sessions=0)
                if delay == 0:
                    node.pacer.start(now, second, sessions=0)
                    return True
                gevent.sleep(delay if delay is not None else 0.05)
        finally:
            node.connecting -= 1
            self._capacity.set()

    def _connect_refused(self, call: Call, node: NodeState) -> bool:
        """After a transfer to the connect extension: whether the switch
        refused the second party's session (its throttle or session limit,
        no channel created) and the first party waits in park again with
        CONNECT_REFUSED_VAR set. Any event of the second party, the bridge
        or the call's end says no at once; without one within CONNECT_CHECK
        seconds the first leg is looked at (uuid_dump)."""
        wait = call.connect_wait
        try:
            if wait is not None and wait.wait(CONNECT_CHECK):
                return False
            deadline = time.monotonic() + CONNECT_LOOK_FOR
            bridging = 0
            while not call.state.final and call.node is node and time.monotonic() < deadline:
                dump = self._dump(call)
                if dump is None or (wait is not None and wait.is_set()):
                    return False
                application = dump.get("variable_current_application")
                if application == "park" and dump.get("variable_" + dialstring.CONNECT_REFUSED_VAR) == "true":
                    return True
                if application == "bridge":
                    # Ringing without a word yet; looked at once more in case
                    # the bridge was just being refused.
                    bridging += 1
                    if bridging > 1:
                        return False
                gevent.sleep(CONNECT_LOOK)
            return False
        finally:
            call.connect_wait = None

    def _send_held(self, call: Call, node: NodeState, send: Callable[[], Any], *,
                   again: bool = False) -> EslError | None:
        """One command of ``_connect_held``, sent again (up to 5 tries, a
        second apart) while the connection is being made again, and with
        ``again`` (a command that may run twice) also after its reply was
        lost. None once sent, else the error that stopped it."""
        tries = 0
        while True:
            tries += 1
            try:
                with node.sending:
                    send()
                return None
            except LeaseLapsed as exc:
                # Not written. Sent once the lease holds again, if the call
                # is still this worker's.
                if not self._still_owns(call):
                    return exc
                tries -= 1
            except EslCommandError as exc:
                return exc
            except EslError as exc:
                if tries == 5 or call.state.final or not (again or isinstance(exc, EslNotSent)):
                    return exc
                gevent.sleep(1.0)

    def _drop_held(self, call: Call, node: NodeState, command: str, error: EslError) -> None:
        """The second party of a held call cannot be connected (``command``
        failed with ``error``): write why on the record, then hang up the
        first party with CONNECT_FAILED_CAUSE rather than leave it waiting
        in park until its park_timeout. Its hangup event ends the call."""
        job_id = call.request.id
        if call.state.final or call.state.cancel_requested or not self._still_owns(call):
            return
        reply = error.reply if isinstance(error, EslCommandError) else str(error)
        why = "the second party could not be connected: %s: %s" % (command, reply)
        log.warning("job %s: %s; hanging up the first party", job_id, why)
        try:
            self.queue.transition(job_id, fields={"error": why})
        except QueueUnavailable as exc:
            log.warning("job %s: error not recorded: %s", job_id, exc)
        kill = "uuid_kill %s %s" % (uuid.UUID(call.state.a_uuid), CONNECT_FAILED_CAUSE)

        def hang_up() -> None:
            reply = node.link.api(kill)  # type: ignore[union-attr]
            if not reply.startswith("+OK"):
                raise EslCommandError("uuid_kill", reply.strip())

        failed = self._send_held(call, node, hang_up)
        if failed is not None:
            log.warning("job %s: the first party waits in park for up to %ds: %s", job_id, dialstring.PARK_TIMEOUT,
                        failed)

    def _resume(self, call: Call, record: dict[str, str]) -> None:
        """A previous worker placed this job and died (or stopped): follow the
        call if a switch still has it; never place the same attempt again."""
        job_id = call.request.id
        self._confirm(call)
        call.attempt = int(record.get("attempts", "1") or 1)
        call.state.status = record.get("status", "dialing")
        call.state.a_uuid = record.get(_party_field(call.request, "a_uuid"), "")
        call.state.answered = "answered_at" in record
        call.state.bridged = "bridged_at" in record
        call.state.originate_ok = True
        call.sent = record.get("attempt_state") == "sent"
        # Its legs carry another worker's name: pass their events by job id,
        # before looking for them, so that none is missed from then on.
        call.foreign = True
        for state in self.nodes:
            state.link.add_filter(_JOB_HEADER, job_id)
        node = self._find_channel(call.state.a_uuid or job_id)
        if node is not None:
            log.info("job %s: taken over; channel alive on %s, following", job_id, node.node.label)
            self._hold(call, node)
            self.queue.follow(self.consumer, job_id)
            self.queue.transition(job_id, fields={"node": node.node.label, "worker": self.consumer})
            self._ack(call)
            self._catch_up(call)
            return
        # Ended, never run, or up under another uuid: the attempt's markers
        # say which, on the node it was sent to (any node if that is not known).
        if call.sent:
            call.sent_to = next((s for s in self.nodes if s.node.label == record.get("node")), None)
        call.lost = call.reconciling = True
        call.lost_at = time.monotonic()
        self._reconcile(call)

    def _catch_up(self, call: Call) -> None:
        """What happened while nobody followed the call: read the first
        party's channel off the switch (answered? bridged?)."""
        target = call.state.a_uuid or call.request.id
        dump = self._dump(call)
        if dump is None:
            return
        events = []
        if dump.get("Answer-State") == "answered" or dump.get("Caller-Channel-Answered-Time", "0") not in ("0", ""):
            events.append("CHANNEL_ANSWER")
        bridged = dump.get("variable_bridge_uuid") or dump.get("variable_signal_bond") or dump.get("Other-Leg-Unique-ID")
        if bridged:
            events.append("CHANNEL_BRIDGE")
        for name in events:
            self._store(call, call.state.on_event("a", name, target))
        if call.held and not bridged:
            # Answered (or about to be) and parked while nobody followed.
            call.state.a_uuid = target
            self._start_connect(call, dump)

    def _lost_channel(self, call: Call, why: str = "the call ended while no worker was following it") -> None:
        """No switch has the call's channel and its markers cannot be read
        (the switch keeps none, or cannot be reached). If the switch had the
        originate, the call has ended unseen: close it as UNKNOWN with
        ``why`` (its CDR on the switch has the rest) and never place it
        again. If the originate never left, place it now as the next attempt."""
        job_id = call.request.id
        call.reconciling = False
        if call.sent or call.redials >= 3:
            log.info("job %s: no channel on any node; outcome not observed", job_id)
            call.state.originate_ok = False
            self._store(call, {**call.state.on_originate_failed("UNKNOWN"), "error": why})
            self._ack(call)
            return
        log.info("job %s: attempt %d never reached a switch; placing it again", job_id, call.attempt)
        self._release(call)
        call.redials += 1
        call.state = CallState(cancel_requested=call.state.cancel_requested)
        self._originate(call, call.attempt + 1)

    def _find_channel(self, channel_uuid: str) -> NodeState | None:
        for state in self.nodes:
            if not state.link.wait_up(self.config.esl_timeout):
                continue
            try:
                if state.link.api("uuid_exists %s" % channel_uuid).strip() == "true":
                    return state
            except EslError as exc:
                log.warning("uuid_exists %s on %s failed: %s", channel_uuid, state.node.label, exc)
        return None

    def _reconcile(self, call: Call) -> None:
        """The originate's result was lost (the connection died after it was
        written, or the worker that wrote it): ask the switch what became
        of the attempt, through its markers (markers.py). Follow a call that
        is up; record the outcome of one that ended, or that its switch's
        stop cut short; place again, as the next attempt, one the switch
        never ran. Each call looks once and, until it knows, is looked at
        again later (a _RECONCILE in its inbox)."""
        if call.settled:
            call.reconciling = False
            return
        if call.state.final:
            # Its channel events followed the call to its end: the switch
            # ran the originate, and the record has the outcome.
            log.info("job %s: result lost, call seen to its end", call.request.id)
            call.reconciling = False
            self._ack(call)
            return
        job_id = call.request.id
        nodes = [call.sent_to] if call.sent_to is not None else [call.node] if call.node is not None else self.nodes
        try:
            resolution, where = self._look(call, nodes)
        except MarkersUnavailable:
            self._reconcile_without_markers(call)
            return
        except EslError as exc:
            call.looks += 1
            if time.monotonic() - call.lost_at < RECONCILE_PATIENCE:
                log.info("job %s: switch not reachable to reconcile (%s); asking again", job_id, exc)
                gevent.spawn_later(min(2.0 * call.looks, 5.0), call.inbox.put, _RECONCILE)
                return
            self._lost_channel(call, "the switch the originate was sent to could not be asked what became of it "
                                     "within %.0fs" % RECONCILE_PATIENCE)
            return
        verdict = resolution.verdict
        if verdict is Verdict.NEVER_RAN:
            now = time.monotonic()
            if not call.absent_since:
                call.absent_since = now
            if now - call.absent_since < NEVER_RAN_SETTLE:
                gevent.spawn_later(NEVER_RAN_SETTLE - (now - call.absent_since), call.inbox.put, _RECONCILE)
                return
            self._place_again(call)
            return
        assert where is not None and resolution.leg is not None
        call.reconciling = False
        call.sent_to = where
        leg = resolution.leg.uuid or call.state.a_uuid or job_id
        call.state.originate_ok = True
        if verdict is Verdict.RUNNING:
            log.info("job %s: channel found on %s after losing the result", job_id, where.node.label)
            self._hold(call, where)
            if leg != call.state.a_uuid:
                call.state.a_uuid = leg
                self._store(call, {_party_field(call.request, "a_uuid"): leg})
            if call.foreign:
                self.queue.follow(self.consumer, job_id)
                self.queue.transition(job_id, fields={"node": where.node.label, "worker": self.consumer})
            self._ack(call)
            self._catch_up(call)
            return
        if verdict is Verdict.ENDED:
            self._end_from_marker(call, resolution)
        else:
            self._end_switch_died(call, resolution)
        self._ack(call)

    def _look(self, call: Call, nodes: Sequence[NodeState]) -> tuple[Resolution, NodeState | None]:
        """What ``nodes`` say of the call's current attempt: the first
        verdict other than NEVER_RAN and its node, else NEVER_RAN. Raises
        EslError when a node cannot be asked (the verdict would not be
        sure) and MarkersUnavailable when one keeps no markers."""
        unreachable: EslError | None = None
        for state in nodes:
            if not state.link.wait_up(self.config.esl_timeout):
                unreachable = EslConnectionError("%s: not connected" % state.node.label)
                continue
            try:
                resolution = self._attempt_on(call, state)
            except MarkersUnavailable:
                if state.node.label not in self._markers_refused:
                    self._markers_refused.add(state.node.label)
                    log.warning("node %s: keeps no attempt markers (no mod_db, or db not in the ESL user's "
                                "esl-allowed-api): an originate whose result is lost ends UNKNOWN", state.node.label)
                raise
            except EslError as exc:
                unreachable = exc
                continue
            if resolution.verdict is not Verdict.NEVER_RAN:
                return resolution, state
        if unreachable is not None:
            raise unreachable
        return Resolution(Verdict.NEVER_RAN), None

    def _attempt_on(self, call: Call, state: NodeState) -> Resolution:
        """Read the current attempt's markers on ``state``, look for the
        legs marked up, and resolve. EslError: the node could not be asked;
        MarkersUnavailable: it keeps no markers."""
        request = call.request

        def read(leg: int) -> dialstring.Marker | None:
            try:
                reply = state.link.api(dialstring.marker_select_command(request.id, call.attempt, leg))
                return dialstring.parse_marker(reply)
            except (EslCommandError, ValueError) as exc:
                raise MarkersUnavailable(str(exc)) from exc

        markers = [read(leg) for leg in range(1, dialstring.marker_legs(request) + 1)]
        alive: set[str] = set()
        for leg_uuid in legs_to_find(markers):
            if state.link.api("uuid_exists %s" % leg_uuid).strip() == "true":
                alive.add(leg_uuid)
        for i, marker in enumerate(markers):
            if marker is not None and not marker.ended and marker.uuid not in alive:
                # Its end is written while its channel still exists: read
                # again now that it is gone.
                markers[i] = read(i + 1)
        return resolve(markers, alive)

    def _end_from_marker(self, call: Call, resolution: Resolution) -> None:
        """The attempt ended while no worker followed it: its marker has
        the first party's hangup cause, whether it answered and was
        bridged, and the second party's cause."""
        marker = resolution.leg
        assert marker is not None
        state = call.state
        leg = marker.uuid or state.a_uuid or call.request.id
        log.info("job %s: attempt %d ended unseen; outcome from the switch's marker: %s", call.request.id,
                 call.attempt, marker.cause)
        fields: dict[str, str] = {}
        if leg != state.a_uuid:
            state.a_uuid = fields[_party_field(call.request, "a_uuid")] = leg
        if marker.answered and not state.answered:
            fields.update(state.on_event("a", "CHANNEL_ANSWER", leg))
        if marker.bridged and not state.bridged:
            fields.update(state.on_event("a", "CHANNEL_BRIDGE", leg))
        if fields:
            self._store(call, fields)
        self._store(call, state.on_event("a", "CHANNEL_HANGUP_COMPLETE", leg, marker.cause or "UNKNOWN",
                                         marker.bridge_cause), ack=True)

    def _end_switch_died(self, call: Call, resolution: Resolution) -> None:
        """A leg of the attempt was up and is gone without its end marker:
        its switch stopped (killed, crashed) while the call was up."""
        marker = resolution.leg
        assert marker is not None
        state = call.state
        leg = marker.uuid or state.a_uuid or call.request.id
        log.warning("job %s: the switch stopped while the call was up", call.request.id)
        if leg != state.a_uuid:
            state.a_uuid = leg
            self._store(call, {_party_field(call.request, "a_uuid"): leg})
        state.originate_ok = True
        self._store(call, {**state.on_event("a", "CHANNEL_HANGUP_COMPLETE", leg, SWITCH_DIED_CAUSE),
                           "error": "the switch stopped while the call was up"}, ack=True)

    def _place_again(self, call: Call) -> None:
        """The switch never ran the attempt (no channel, no marker): place
        the job again as the next attempt."""
        job_id = call.request.id
        call.reconciling = False
        if call.never_ran >= MAX_PLACED_AGAIN:
            log.warning("job %s: placed %d times, never run by the switch; giving up", job_id, call.attempt)
            self._store(call, {**call.state.on_originate_failed(CONNECT_FAILED_CAUSE),
                               "error": "placed %d times; the switch never ran it" % call.attempt}, ack=True)
            self._ack(call)
            return
        log.info("job %s: the switch never ran attempt %d (no marker); placing it again", job_id, call.attempt)
        self._release(call)
        # A late result of that attempt is not the next one's.
        for bg_uuid in call.bg_uuids:
            self._bg.pop(bg_uuid, None)
        call.never_ran += 1
        call.lost = call.sent = False
        call.looks = 0
        call.absent_since = 0.0
        call.sent_to = None
        call.state = CallState(cancel_requested=call.state.cancel_requested)
        self._originate(call, call.attempt + 1)

    def _reconcile_without_markers(self, call: Call) -> None:
        """A switch without markers: follow the call if a switch has its
        channel; after a few looks, close it as UNKNOWN (never place the
        attempt again)."""
        node = self._find_channel(call.state.a_uuid or call.request.id)
        if node is not None:
            log.info("job %s: channel found on %s after losing the result", call.request.id, node.node.label)
            call.reconciling = False
            self._hold(call, node)
            call.state.originate_ok = True
            self._catch_up(call)
            self._ack(call)
            return
        call.looks += 1
        if call.looks < 4:
            gevent.spawn_later(2.0 * call.looks, call.inbox.put, _RECONCILE)
            return
        self._lost_channel(call)

    def _forget_markers(self, call: Call, state: NodeState) -> None:
        """The attempt is over and recorded: its markers may go."""
        queue = self._forget.get(id(state))
        if queue is not None and state.node.label not in self._markers_refused:
            for leg in range(1, dialstring.marker_legs(call.request) + 1):
                queue.put(dialstring.marker_delete_command(call.request.id, call.attempt, leg))

    def _forget_loop(self, state: NodeState) -> None:
        """Drop the markers of calls that are over, one command at a time
        on the node's connection. One whose command cannot be sent (the node
        down, the command failed) stays on the switch."""
        queue = self._forget[id(state)]
        while self._running:
            try:
                command = queue.get(timeout=1.0)
            except gevent.queue.Empty:
                continue
            if not state.link.wait_up(self.config.esl_timeout):
                continue  # dropped: the marker stays on the switch
            try:
                state.link.api(command)
            except EslError as exc:
                log.debug("node %s: %s failed: %s", state.node.label, command, exc)
            except Exception:
                log.exception("node %s: %s failed", state.node.label, command)

    def _silence_loop(self) -> None:
        """One timer for every call followed: a call that heard nothing for
        SILENCE_CHECK seconds is checked on its switch; one whose originate
        result is overdue stops waiting for it (and reconciles)."""
        while self._running:
            gevent.sleep(SILENCE_CHECK / 4)
            now = time.monotonic()
            for call in list(self.calls.values()):
                if call.result_due and now > call.result_due and not call.settled:
                    call.result_due = 0.0
                    call.inbox.put(OriginateResult(False, "", EslTimeout(
                        "job %s: no BACKGROUND_JOB in time" % call.request.id)))
                if now - call.heard >= SILENCE_CHECK:
                    call.heard = now
                    call.inbox.put(_RECHECK)

    def _follow(self, call: Call) -> bool:
        """Apply what comes to the call's inbox until the call is over
        (True), or until the inbox is empty: then the call is parked
        (``_park``) and this returns False."""
        job_id = call.request.id
        while not (call.state.final and call.settled):
            try:
                item = call.inbox.get_nowait()
            except gevent.queue.Empty:
                self._park(call)
                return False
            call.heard = time.monotonic()
            if isinstance(item, OriginateResult):
                self._settle(call, item)
            elif item == _RECONCILE:
                self._reconcile(call)
            elif item == _CANCEL:
                self._hang_up(call)
            elif item == _RECHECK:
                self._recheck(call)
            else:
                self._apply(call, item)
            if call.node is None and not call.state.final and not call.reconciling:
                # Placed again, and the worker stopped before its turn came
                # (the entry is left for the next worker), or cancelled then.
                return True
        # The B leg's own hangup usually follows the A leg's by milliseconds.
        if call.state.b_uuid and not call.state.b_cause:
            self._apply_events(call, 2.0, lambda: bool(call.state.b_cause))
        if not call.retried:  # else _store said so, with the next attempt's time
            log.info("job %s: %s cause=%s", job_id, call.state.status, call.hangup_cause)
        return True

    def _apply_events(self, call: Call, seconds: float, done: Callable[[], bool]) -> list[Any]:
        """Apply the call's channel events as they come, for up to
        ``seconds`` or until ``done()``; returns whatever else came to its
        inbox meanwhile, in order."""
        deadline = time.monotonic() + seconds
        other: list[Any] = []
        while not done():
            try:
                item = call.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except gevent.queue.Empty:
                break
            if isinstance(item, Event):
                self._apply(call, item)
            else:
                other.append(item)
        return other

    def _apply(self, call: Call, event: Event) -> None:
        headers = event.headers
        call.channel_seen = True
        role = "a" if headers.get("variable_" + dialstring.ROLE_VAR, "first") == "first" else "b"
        if call.connect_wait is not None and (role == "b" or event.name in ("CHANNEL_BRIDGE", "CHANNEL_HANGUP")):
            call.connect_wait.set()
        if role == "a" and event.name == "CHANNEL_HANGUP_COMPLETE" and headers.get("Unique-ID") == call.state.a_uuid:
            # The first party's CDR says whether it was answered and bridged,
            # even if those events were missed while a connection was down.
            if headers.get("Caller-Channel-Answered-Time", "0") not in ("0", "") and not call.state.answered:
                self._store(call, call.state.on_event("a", "CHANNEL_ANSWER", call.state.a_uuid))
            if headers.get("Caller-Channel-Bridged-Time", "0") not in ("0", "") and not call.state.bridged:
                self._store(call, call.state.on_event("a", "CHANNEL_BRIDGE", call.state.a_uuid))
        fields = call.state.on_event(
            role,
            event.name,
            headers.get("Unique-ID", ""),
            headers.get("Hangup-Cause", ""),
            headers.get("variable_last_bridge_hangup_cause") or headers.get("variable_bridge_hangup_cause") or "",
        )
        if event.name == "CHANNEL_BRIDGE" and role == "a":
            fields.update(call.state.on_bridge(headers.get("Bridge-B-Unique-ID") or headers.get("Other-Leg-Unique-ID")
                                               or ""))
        if not call.state.b_uuid:
            fields.update(self._unanswered_b(call, role, event, fields.get("status") in FINAL))
        if fields:
            self._store(call, fields)

    def _unanswered_b(self, call: Call, role: str, event: Event, ending: bool) -> dict[str, str]:
        """While none of the second party's legs has answered (CallState
        names only a leg that answered): note each of its legs that ends;
        the last one, with its cause, is the second party's leg on the
        record, written when the call ends (``ending``), or at once for a
        leg that ends after the call."""
        if role == "b" and event.name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
            leg, cause = event.headers.get("Unique-ID", ""), event.headers.get("Hangup-Cause", "")
            if not (leg and cause) or leg == call.b_unanswered[0]:
                return {}
            call.b_unanswered = (leg, cause)
            ending = call.state.final
        leg, cause = call.b_unanswered
        return {"b_uuid": leg, "b_hangup_cause": cause} if ending and leg else {}

    def _store(self, call: Call, fields: dict[str, str], *, ack: bool = False) -> None:
        """Write the state machine's fields, its roles turned into the parties'
        names (a_uuid is party a's leg even when b was rung first)."""
        self._confirm(call)
        status = fields.pop("status", "")
        if call.request.dial_first != "a":
            fields = {_party_field(call.request, k): v for k, v in fields.items()}
            for key in ("ended_by", "failed_party"):
                if fields.get(key) in ("a", "b"):
                    fields[key] = "b" if fields[key] == "a" else "a"  # a role, named for the party
        cause = fields.get("hangup_cause", "")
        # Attempts the switch's throttle refused rang nothing: they do not count.
        rung = call.attempt - call.throttled - call.never_ran
        if status == "failed" and not call.state.cancel_requested and call.request.retry.retries(cause, rung):
            due = time.time() + call.request.retry.delay(rung)
            fields = {k: v for k, v in fields.items() if k not in ("hangup_cause", "failed_party")}
            self.queue.transition(call.request.id, fields=fields)
            if self.queue.schedule_retry(call.request.id, due, cause):
                call.retried = True
                if self.calls.get(call.request.id) is call:
                    del self.calls[call.request.id]  # the next attempt is a new follower
                log.info("job %s: attempt %d failed (%s); next in %.0fs", call.request.id, call.attempt, cause,
                         due - time.time())
                return
        entry = call.entry_id if ack and not call.settled else ""
        self.queue.transition(call.request.id, status, fields, worker=self.consumer, ack=entry)
        call.hangup_cause = cause or call.hangup_cause
        if entry:
            call.settled = True
        if status == "failed" and call.attempt > 1 and call.request.retry.attempts > 1:
            reason = "failed after %d attempts: %s" % (call.attempt, cause)
            self.queue.dead_letter_job(call.request.id, call.request.dumps(), reason)
        if status:
            log.debug("job %s: %s", call.request.id, status)
            if call.request.callback_url:
                self.webhooks.wake()

    def _hang_up(self, call: Call) -> None:
        if not call.state.cancel_requested:
            call.state.cancel_requested = True
            gevent.spawn(self._hangup_until_gone, call)

    def _hangup_until_gone(self, call: Call) -> None:
        """Hang up every channel of the job on its node (all simultaneous
        destinations and the second party's legs), repeating while the call
        is not over: a channel the originate has not created yet would miss
        a single request, and hupall answers +OK whether or not it matched."""
        job_id = call.request.id
        command = "hupall ORIGINATOR_CANCEL %s %s" % (dialstring.JOB_VAR, job_id)
        for _ in range(40):
            if call.state.final or call.node is None:
                return
            try:
                call.node.link.api(command)
            except EslError as exc:
                log.warning("job %s: hangup request failed: %s", job_id, exc)
            gevent.sleep(0.25)
        log.warning("job %s: still up after repeated hangup requests", job_id)

    def _recheck(self, call: Call) -> None:
        if call.node is None or call.state.final or call.reconciling:
            return
        target = call.state.a_uuid or call.request.id
        try:
            alive = call.node.link.api("uuid_exists %s" % target).strip() == "true"
        except EslConnectionError:
            return  # the link is down; it will say when it is back
        if alive:
            self._catch_up(call)  # events may have been missed while the link was down
            return
        # Gone without a hangup event: its marker says how it ended (or
        # that its switch stopped while it was up).
        try:
            resolution: Resolution | None = self._attempt_on(call, call.node)
        except EslConnectionError:
            return
        except (EslError, MarkersUnavailable):
            resolution = None
        if resolution is not None and resolution.verdict is Verdict.RUNNING:
            assert resolution.leg is not None
            if resolution.leg.uuid != call.state.a_uuid:
                call.state.a_uuid = resolution.leg.uuid
                self._store(call, {_party_field(call.request, "a_uuid"): resolution.leg.uuid})
            self._catch_up(call)
            return
        if resolution is not None and resolution.verdict is Verdict.ENDED:
            self._end_from_marker(call, resolution)
            return
        if resolution is not None and resolution.verdict is Verdict.DIED:
            self._end_switch_died(call, resolution)
            return
        log.warning("job %s: channel gone without a hangup event", call.request.id)
        call.state.a_cause = "UNKNOWN"
        self._store(call, {**call.state.on_originate_failed("UNKNOWN"),
                           "error": "the call ended while its events were not seen, and the switch kept no "
                                    "marker of its end"})

    # ------------------------------------------------------------ events

    def _on_event(self, state: NodeState, event: Event) -> None:
        if event.name == "BACKGROUND_JOB":
            call = self._bg.get(event.headers.get("Job-UUID", ""))
            if call is not None and call.lost and not call.settled:
                ok, text = job_result(event.body)
                call.inbox.put(OriginateResult(ok, text, attempt=call.attempt))
            return
        job_id = event.headers.get("variable_" + dialstring.JOB_VAR)
        if not job_id:
            return
        if event.headers.get("variable_loopback_leg") == "B":
            return  # the inbound half of a loopback pair; its -a twin speaks for the leg
        call = self.calls.get(job_id)
        if call is not None and (call.node is None or call.node is state):
            call.inbox.put(event)

    def _on_node_up(self, state: NodeState) -> None:
        if self.config.recordings_dir is None:
            self._read_recordings_dir(state)
        self._read_limits(state)
        log.info("node %s: up", state.node.label)
        self._share_wake.set()
        self._capacity.set()
        self._claim_room.set()
        for call in list(self.calls.values()):
            if call.node is state:
                call.inbox.put(_RECHECK)

    def _read_recordings_dir(self, state: NodeState) -> None:
        """Ask a node that has just connected for its recordings_dir (a
        source install keeps it under its prefix), for the recordings of the
        calls placed there. A node that will not say (global_getvar not
        allowed, or no usable path) keeps what it had, at first the
        packages' directory, and the log says so."""
        label = state.node.label
        try:
            reply = state.link.api("global_getvar recordings_dir").strip()
        except EslCommandError as exc:
            reply = exc.reply
        except EslError as exc:
            log.warning("node %s: recordings_dir not read: %s", label, exc)
            return  # this connection is failing; the next one asks again
        try:
            directory = check_recordings_dir(reply)
        except ConfigError:
            log.warning("node %s: the switch gave no usable recordings_dir (%r); recordings of its calls are named "
                        "under %s: set ESLENGINE_RECORDINGS_DIR, or allow global_getvar", label, reply[:200],
                        state.config.recordings_dir)
        else:
            if directory != state.config.recordings_dir:
                state.config = replace(self.config, recordings_dir=directory)
            log.info("node %s: recordings go to %s", label, directory)
        state.ready = True


def _job_id_of(raw: str) -> str:
    """The id a job document names, if it is one (a UUID), else ''."""
    try:
        document = json.loads(raw)
        return parse_id(document.get("id")) if isinstance(document, dict) and document.get("id") else ""
    except (ValueError, ValidationError):
        return ""


def _result_wait(request: CallRequest) -> float:
    """How long a sent originate's BACKGROUND_JOB may take: the switch rings
    every destination (failover, retries) before it answers."""
    return request.timeout * 6 + 30.0


def _outcome(job: BackgroundJob, attempt: int = 0) -> OriginateResult:
    """A resolved BackgroundJob's result (of attempt ``attempt``)."""
    try:
        ok, text = job.result(None)
    except EslError as exc:
        return OriginateResult(False, "", exc, attempt)
    return OriginateResult(ok, text, attempt=attempt)


def _party_field(request: CallRequest, key: str) -> str:
    """A role field (``a_*`` = first party, ``b_*`` = second) named for the party."""
    if request.dial_first == "a" or key[:2] not in ("a_", "b_"):
        return key
    return ("b_" if key.startswith("a_") else "a_") + key[2:]


def _cause(text: str) -> str:
    """A cause name out of a ``-ERR`` result; usage and other text becomes
    ``ORIGINATE_USAGE`` / the first word."""
    text = text.strip()
    if text.startswith("-USAGE"):
        return "ORIGINATE_USAGE"
    word = text.split()[0] if text else "UNKNOWN"
    return word if word.replace("_", "").isalnum() else "UNKNOWN"


def run(config: Config, queue: JobQueue, *, stop_signals: Sequence[int] = ()) -> None:
    """Run a worker until one of ``stop_signals`` arrives (then drain)."""
    worker = Worker(config, queue)
    worker.start()
    for signum in stop_signals:
        gevent.signal_handler(signum, lambda: gevent.spawn(worker.stop))
    worker.stopped.wait()

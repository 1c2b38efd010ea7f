"""The nodes a worker places calls on: each one's connection, pacer and
limits, and the loops that keep its share of them.

A worker paces each node by the lower of the URL's limits and the switch's
own (``fsctl sps``, ``fsctl max_sessions``, read when it connects and every
``Timings.limits_period`` after), shared with the other workers pacing the
same node (``pacing.node_share``, places kept in Redis by ``share_loop``).
``acquire`` is the one way a call takes a node's turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

import gevent
import gevent.event
import gevent.lock

from .. import metrics
from ..config import PACKAGE_RECORDINGS_DIR, Config, Node, check_recordings_dir
from ..errors import ConfigError, EslCommandError, EslError, QueueUnavailable
from ..pacing import Pacer, node_share
from ..protocol import fsctl_limit
from ..store import JobQueue
from .phase import Phase
from .timings import Timings

log = logging.getLogger(__name__)

# Originates a worker may have written to one node and not yet had the
# command reply for. FreeSWITCH answers bgapi commands one at a time per
# connection; thousands written at once would wait past the command deadline.
MAX_UNANSWERED = 64


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


class Nodes(Sequence[NodeState]):
    """The worker's nodes, in the configured order, with what paces them."""

    def __init__(self, config: Config, queue: JobQueue, consumer: str, timings: Timings, phase: Phase, *,
                 on_share: Callable[[], None]) -> None:
        """``on_share`` is called whenever a node's share may have grown
        (the claim loop may take more)."""
        self.config = config
        self.queue = queue
        self.consumer = consumer
        self.timings = timings
        self.phase = phase
        self._on_share = on_share
        # No share of any node until this worker has its place among the
        # workers pacing it (``share_loop``).
        node_config = replace(config, recordings_dir=config.recordings_dir or PACKAGE_RECORDINGS_DIR)
        self._states = [NodeState(n, Pacer(n.sps, n.max_sessions, window=timings.pacing_window, rate_share=0,
                                           session_share=0),
                                  node_config, ready=config.recordings_dir is not None)
                        for n in config.nodes]
        # Set when a pacer may have room: wakes the greenlet in ``acquire``.
        self.capacity = gevent.event.Event()
        # One greenlet at a time waits for the pacers' next turn; the others
        # queue on this lock instead of all waking at every turn.
        self._admission = gevent.lock.Semaphore()
        # Bulk-lane jobs queue here first, so that at most one of them waits
        # on ``_admission`` ahead of an interactive job.
        self._bulk_admission = gevent.lock.Semaphore()
        # Interactive jobs in acquire; bulk ones wait while there are any.
        # Bulk jobs in acquire: while there are any, interactive ones may
        # start ahead of the even schedule.
        self._interactive_waiting = 0
        self._bulk_waiting = 0
        self._no_interactive = gevent.event.Event()
        self._no_interactive.set()
        self._share_wake = gevent.event.Event()

    @overload
    def __getitem__(self, index: int) -> NodeState: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[NodeState]: ...

    def __getitem__(self, index: int | slice) -> NodeState | Sequence[NodeState]:
        return self._states[index]

    def __len__(self) -> int:
        return len(self._states)

    def __iter__(self) -> Iterator[NodeState]:
        return iter(self._states)

    def any_up(self) -> bool:
        return any(s.up for s in self._states)

    def wake(self) -> None:
        """A pacer may have room (sessions given back, a turn passed up)."""
        self.capacity.set()

    def starts_within(self, seconds: float) -> int:
        """Session starts the nodes that are up may make in ``seconds``, one
        more a node: an upper bound of the calls they may start (a call
        costs one session or more). A node this worker has no share of (none
        yet, or none while it waits to join others there: ``renew_share``)
        starts none."""
        return sum(int(s.pacer.rate * seconds / s.pacer.window) + 1
                   for s in self._states if s.up and s.pacer.rate > 0)

    def on_up(self, state: NodeState) -> None:
        """``state``'s connection is (again) made: learn what the switch
        says of itself before it takes calls, and wake whoever waits for a node."""
        if self.config.recordings_dir is None:
            self.read_recordings_dir(state)
        self.read_limits(state)
        log.info("node %s: up", state.node.label)
        self._share_wake.set()
        self.capacity.set()
        self._on_share()

    def share_loop(self) -> None:
        """Keep this worker's place among the workers pacing each node that
        is up, and each pacer to this worker's share; also while it drains
        (a held call's second party still takes its turn)."""
        while self.phase.alive:
            self._share_wake.clear()
            for state in self._states:
                if state.up:
                    try:
                        self.renew_share(state)
                    except QueueUnavailable as exc:
                        log.warning("node %s: share not renewed: %s", state.node.label, exc)
                    except Exception:
                        log.exception("node %s: share loop error", state.node.label)
            self._share_wake.wait(timeout=self.timings.share_beat)

    def renew_share(self, state: NodeState) -> None:
        pacer, node = state.pacer, state.node
        asked = time.monotonic()
        added, said = self.queue.pace_node(node.label, self.consumer, self.timings.share_ttl, pacer.live,
                                           pacer.ceiling)
        now = time.monotonic()
        others = [value for name, value in said.items() if name != self.consumer]
        # Joining others, or coming back after this worker's place lapsed
        # while it shared the node (Redis lost the place, or could not be
        # reached): the others may still be on larger shares.
        if added and (others or state.sharers):
            state.join_until = now + self.timings.join_wait
            log.info("node %s: %d other worker(s) pace it; starting calls there in %.1fs",
                     node.label, len(others), self.timings.join_wait)
        if added or len(others) != state.sharers:
            log.info("node %s: paced by %d worker(s)", node.label, len(others) + 1)
        state.sharers = len(others)
        if now < state.join_until or not state.limits_answered:
            # Joining others, or the switch's own limits not asked yet.
            pacer.set_share(0, 0, until=asked + self.timings.share_lease)
            return
        rate, sessions = node_share(state.sps, state.max_sessions, len(others) + 1, others)
        if rate == 0 and not state.no_share:
            log.warning("node %s: %d workers share %d sessions/s; this one has no share of it",
                        node.label, len(others) + 1, state.sps)
        state.no_share = rate == 0
        pacer.set_share(rate, sessions, until=asked + self.timings.share_lease)
        self.capacity.set()
        self._on_share()

    def limits_loop(self) -> None:
        """Read each node's own limits again every ``Timings.limits_period``
        seconds: an operator may change them live (``fsctl sps N``)."""
        while self.phase.running:
            gevent.sleep(self.timings.limits_period)
            for state in self._states:
                if state.up and time.monotonic() - state.limits_asked >= self.timings.limits_period / 2:
                    try:
                        self.read_limits(state)
                    except Exception:
                        log.exception("node %s: limits loop error", state.node.label)

    def read_limits(self, state: NodeState) -> None:
        """Ask the node for its own limits (``fsctl sps``, ``fsctl
        max_sessions``) and pace it by the lower of those and the URL's,
        through the same share computation as the URL's (``renew_share``).
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

    def slow_down(self, node: NodeState) -> None:
        """The node's switch refused a session start (its throttle or session
        limit): start fewer sessions there for ``Timings.throttle_hold`` seconds
        and read its limits again (at most every ``Timings.limits_min_gap``
        seconds)."""
        metrics.THROTTLE_REFUSALS.labels(node.node.label).inc()
        now = time.monotonic()
        before = node.pacer.rate
        node.pacer.slow_down(now, self.timings.throttle_hold)
        if node.pacer.rate < before:
            log.warning("node %s: the switch refused a session start (throttle or session limit); %d starts/s "
                        "for %.0fs", node.node.label, node.pacer.rate, self.timings.throttle_hold)
        if now - node.limits_asked >= self.timings.limits_min_gap:
            node.limits_asked = now
            gevent.spawn(self.read_limits, node)

    def leave(self) -> None:
        """Give up this worker's place on the nodes where it holds nothing."""
        for state in self._states:
            if state.pacer.live == 0:
                try:
                    self.queue.leave_node(state.node.label, self.consumer)
                except QueueUnavailable as exc:
                    log.warning("node %s: place not given up: %s", state.node.label, exc)

    def acquire(self, cost: int, nodes: Sequence[NodeState] | None = None,
                sessions: int | None = None, *, bulk: bool = False) -> NodeState | None:
        """Wait until one of ``nodes`` (default: all) may start ``cost``
        sessions and hold ``sessions`` (default ``cost``); reserve them.

        A ``bulk`` (bulk-lane) job waits while any interactive job waits
        (one that comes while it waits for its turn takes the turn), and
        starts only where ``bulk_reserve`` sessions stay free after it
        (``Config.interactive_reserve``)."""
        asked = time.monotonic()
        if bulk:
            self._bulk_waiting += 1
            try:
                with self._bulk_admission:
                    while self.phase.running:
                        self._no_interactive.wait()
                        node = self._acquire(cost, nodes, sessions, self.config.interactive_reserve, asked)
                        if node is not _GIVEN_WAY:
                            return node
                return None
            finally:
                self._bulk_waiting -= 1
        self._interactive_waiting += 1
        self._no_interactive.clear()
        self.capacity.set()  # a bulk job waiting for its turn gives way
        try:
            return self._acquire(cost, nodes, sessions, 0, asked)
        finally:
            self._interactive_waiting -= 1
            if not self._interactive_waiting:
                self._no_interactive.set()

    def _acquire(self, cost: int, nodes: Sequence[NodeState] | None, sessions: int | None,
                 reserve: int, asked: float) -> NodeState | None:
        """``acquire`` in turn with the others; a bulk job (``reserve``)
        returns ``_GIVEN_WAY`` when an interactive job comes while it waits.
        ``asked``: when the job asked for its turn (the pacing delay)."""
        with self._admission:
            while self.phase.running:
                if reserve and self._interactive_waiting:
                    return _GIVEN_WAY
                now = time.monotonic()
                best: NodeState | None = None
                wait = 1.0
                for state in nodes if nodes is not None else self._states:
                    if not state.up or state.connecting:
                        continue
                    if state.link.unanswered_for(now) > self.timings.stall_hold:
                        wait = min(wait, 0.05)
                        continue
                    held = cost if sessions is None else sessions
                    pacer = state.pacer
                    # A bulk job leaves room for interactive ones (sessions,
                    # and starts in the window); while bulk jobs wait, an
                    # interactive one may use that room ahead of the even
                    # schedule. With no bulk job, the schedule is as ever.
                    starts = bulk_reserve(self.config.interactive_reserve, pacer.rate)
                    if reserve:
                        delay = pacer.delay(now, cost, held + bulk_reserve(reserve, pacer.ceiling), keep=starts)
                    else:
                        delay = pacer.delay(now, cost, sessions, ahead=starts if self._bulk_waiting else 0)
                    if delay is None:
                        continue
                    if delay == 0:
                        if best is None or state.pacer.headroom(now) > best.pacer.headroom(now):
                            best = state
                    else:
                        wait = min(wait, delay)
                if best is not None:
                    best.pacer.start(now, cost, sessions)
                    metrics.observe_pacing(best.node.label, now - asked)
                    return best
                self.capacity.clear()
                self.capacity.wait(timeout=wait)
            return None

    def find_channel(self, channel_uuid: str) -> NodeState | None:
        """The node whose switch has channel ``channel_uuid`` up, if any."""
        for state in self._states:
            if not state.link.wait_up(self.config.esl_timeout):
                continue
            try:
                if state.link.api("uuid_exists %s" % channel_uuid).strip() == "true":
                    return state
            except EslError as exc:
                log.warning("uuid_exists %s on %s failed: %s", channel_uuid, state.node.label, exc)
        return None

    def read_recordings_dir(self, state: NodeState) -> None:
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


# What _acquire returns to a bulk job that gave way to an interactive one.
_GIVEN_WAY: Any = object()


def bulk_reserve(reserve: int, limit: int) -> int:
    """Of a node's ``limit`` (its live sessions, or its session starts a
    window), what bulk-lane jobs leave free for interactive ones:
    ``reserve``, at most a quarter of the limit (a small node still dials
    its bulk jobs)."""
    return min(reserve, limit // 4)

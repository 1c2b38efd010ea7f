"""The worker: claim jobs from Redis, originate them, follow their calls.

One gevent pool; one greenlet per call for the call's whole life:

    claim → validate → pick a node (pacing) → mark dialing → bgapi originate
          → BACKGROUND_JOB result → ack → follow channel events → final status

Channel events arrive on each node's event-socket connection and are routed by
their ``eslengine_job_id`` variable into the owning call's inbox, so handlers
stay short and each call's state changes in one place. The job's stream entry
is acknowledged once the originate's outcome is known; until then a worker
that dies leaves it to be taken over by another.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.event
import gevent.pool
import gevent.queue

from . import dialstring
from .calls import FINAL, CallRequest, CallState, loads_request
from .config import Config, Node
from .errors import EslConnectionError, EslError, QueueUnavailable, ValidationError
from .esl import NodeLink
from .pacing import Pacer, session_cost
from .protocol import Event
from .queue import JOB_FIELD, JobQueue
from .webhooks import Webhooks

log = logging.getLogger(__name__)

_CANCEL = "cancel"
_RECHECK = "recheck"
# How long a call may go without any event before the worker asks the switch
# whether it still exists.
SILENCE_CHECK = 60.0


@dataclass
class NodeState:
    node: Node
    pacer: Pacer
    link: Any = None  # NodeLink

    @property
    def up(self) -> bool:
        return bool(self.link is not None and self.link.up)


@dataclass
class Call:
    request: CallRequest
    entry_id: str
    state: CallState = field(default_factory=CallState)
    inbox: gevent.queue.Queue = field(default_factory=gevent.queue.Queue)
    node: NodeState | None = None
    # True once the originate's outcome is known and the entry acknowledged.
    settled: bool = False


@dataclass(frozen=True)
class OriginateResult:
    """The BACKGROUND_JOB of a call's originate (or why it never came)."""

    ok: bool
    text: str
    lost: BaseException | None = None


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
    ) -> None:
        self.config = config
        self.queue = queue
        self.consumer = consumer or "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:6])
        self.pool = gevent.pool.Pool(config.concurrency)
        self.nodes = [NodeState(n, Pacer(n.sps, n.max_sessions)) for n in config.nodes]
        self.calls: dict[str, Call] = {}
        self._link_factory = link_factory
        self._running = False
        self._greenlets: list[gevent.Greenlet] = []
        self._capacity = gevent.event.Event()
        self.stopped = gevent.event.Event()
        self.webhooks = Webhooks(queue, config)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._running = True
        for state in self.nodes:
            state.link = self._link_factory(
                state.node,
                timeout=self.config.esl_timeout,
                on_event=lambda event, s=state: self._on_event(s, event),
                on_up=lambda link, s=state: self._on_node_up(s),
                max_delay=self.config.reconnect_max_delay,
            )
            state.link.start()
        self._greenlets = [
            gevent.spawn(self._claim_loop),
            gevent.spawn(self._reclaim_loop),
            gevent.spawn(self._cancel_listener),
        ]
        log.info("worker %s: started, %d node(s), pool %d", self.consumer, len(self.nodes), self.config.concurrency)

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
        gevent.killall(self._greenlets, timeout=5)
        for state in self.nodes:
            if state.link is not None:
                state.link.stop()
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
                for entry_id, fields in self.queue.read(self.consumer, min(free, 200), 1000):
                    self.pool.spawn(self._run_entry, entry_id, fields)
                backoff = 0.1
            except QueueUnavailable as exc:
                log.warning("worker %s: Redis unavailable (%s); retrying in %.1fs", self.consumer, exc, backoff)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            except Exception:
                log.exception("worker %s: claim loop error", self.consumer)
                gevent.sleep(1)

    def _reclaim_loop(self) -> None:
        interval = max(1.0, min(30.0, self.config.claim_idle_ms / 4000))
        while self._running:
            gevent.sleep(interval)
            try:
                if not any(s.up for s in self.nodes) or self.pool.free_count() <= 0:
                    continue
                for entry_id, fields in self.queue.claim_stale(self.consumer, self.config.claim_idle_ms):
                    if not self._running:
                        break
                    log.info("worker %s: took over stale entry %s", self.consumer, entry_id)
                    self.pool.spawn(self._run_entry, entry_id, fields)
            except QueueUnavailable as exc:
                log.warning("worker %s: reclaim skipped: %s", self.consumer, exc)
            except Exception:
                log.exception("worker %s: reclaim loop error", self.consumer)

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

    def _run_entry(self, entry_id: str, fields: dict[str, str]) -> None:
        job_id = ""
        try:
            try:
                raw = fields.get(JOB_FIELD)
                if raw is None:
                    raise ValidationError("job", "entry has no 'job' field")
                request = loads_request(raw, self.config)
            except ValidationError as exc:
                log.warning("entry %s: dead-lettered: %s", entry_id, exc)
                self.queue.dead_letter(entry_id, fields, "invalid job: %s: %s" % (exc.field, exc.reason))
                return
            job_id = request.id
            if job_id in self.calls:
                return  # this worker already follows it
            self._dial(request, entry_id)
        except QueueUnavailable as exc:
            log.warning("job %s: Redis unavailable (%s); left for another attempt", job_id or entry_id, exc)
        except Exception:
            log.exception("job %s: unexpected error", job_id or entry_id)

    def _dial(self, request: CallRequest, entry_id: str) -> None:
        job_id = request.id
        record = self.queue.record_for_job(request)
        if record.get("status") in FINAL:
            log.info("job %s: already %s; acknowledged", job_id, record.get("status"))
            self.queue.ack(entry_id)
            return
        call = Call(request, entry_id)
        call.state.cancel_requested = record.get("cancel_requested") == "1"
        self.calls[job_id] = call
        try:
            if record.get("originated") == "1":
                self._resume(call, record)
            else:
                self._originate(call, attempts=int(record.get("attempts", "0")) + 1)
            if call.node is not None:
                self._follow(call)
        finally:
            self.calls.pop(job_id, None)
            if call.node is not None:
                call.node.pacer.release(self._cost(request))
                self._capacity.set()

    def _cost(self, request: CallRequest) -> int:
        """Sessions the call may hold at once: every destination of a party
        rung all at once, the dearest one of a party rung in turn."""
        total = 0
        for party in (request.a, request.b):
            costs = [session_cost(dialstring.endpoint(d, self.config)) for d in party.destinations]
            total += sum(costs) if party.mode == "simultaneous" else max(costs)
        return total

    def _candidates(self, request: CallRequest) -> list[NodeState] | None:
        """The nodes this job may run on, or None when its target call is on
        none of them."""
        if request.node is not None:
            return [s for s in self.nodes if request.node in (s.node.label, s.node.name)]
        if request.target_call_id is not None:
            node = self._find_channel(request.target_call_id)
            return None if node is None else [node]
        return self.nodes

    def _acquire_node(self, cost: int, nodes: list[NodeState] | None = None) -> NodeState | None:
        """Wait until one of ``nodes`` (default: all) may take ``cost`` more
        sessions; reserve them."""
        while self._running:
            now = time.monotonic()
            best: NodeState | None = None
            wait = 1.0
            for state in nodes if nodes is not None else self.nodes:
                if not state.up:
                    continue
                delay = state.pacer.delay(now, cost)
                if delay is None:
                    continue
                if delay == 0:
                    if best is None or state.pacer.headroom(now) > best.pacer.headroom(now):
                        best = state
                else:
                    wait = min(wait, delay)
            if best is not None:
                best.pacer.start(now, cost)
                return best
            self._capacity.clear()
            self._capacity.wait(timeout=wait)
        return None

    def _originate(self, call: Call, attempts: int) -> None:
        request = call.request
        job_id = request.id
        command = dialstring.originate_command(request, self.config)
        candidates = self._candidates(request)
        if candidates is None:
            log.info("job %s: target call %s is on no node", job_id, request.target_call_id)
            self.queue.transition(job_id, "failed", {"hangup_cause": "TARGET_CALL_NOT_FOUND",
                                                     "error": "target_call_id is not up on any node"})
            self.queue.ack(call.entry_id)
            return
        node = self._acquire_node(self._cost(request), candidates)
        if node is None:
            log.info("job %s: worker stopping before dialing; left queued", job_id)
            return
        call.node = node
        if call.state.cancel_requested:
            self.queue.transition(job_id, "cancelled", {"hangup_cause": "ORIGINATOR_CANCEL"})
            self.queue.ack(call.entry_id)
            call.node.pacer.release(self._cost(request))
            call.node = None
            return
        bg_uuid = str(uuid.uuid4())
        # The attempt record is written before the command leaves: whoever
        # picks this job up again knows a call may exist and checks first.
        fields = {"node": node.node.label, "attempts": str(attempts), "originated": "1", "bgapi_job_uuid": bg_uuid}
        recording = dialstring.recording_path(request, self.config)
        if recording:
            fields["recording"] = recording
        self.queue.transition(job_id, "dialing", fields)
        self.webhooks.notify(request, "dialing")
        log.info("job %s: originate on %s (attempt %d)", job_id, node.node.label, attempts)
        try:
            job = node.link.bgapi(command, job_uuid=bg_uuid)
        except EslError as exc:
            call.inbox.put(OriginateResult(False, "", exc))
            return
        gevent.spawn(self._await_result, call, job)

    def _await_result(self, call: Call, job: Any) -> None:
        """Wait for the BACKGROUND_JOB off the call's own greenlet, so channel
        events (ringing, early hangups) are applied while the switch rings."""
        try:
            ok, text = job.result(timeout=call.request.timeout + 30)
            call.inbox.put(OriginateResult(ok, text))
        except EslError as exc:
            call.inbox.put(OriginateResult(False, "", exc))

    def _settle(self, call: Call, result: OriginateResult) -> None:
        job_id = call.request.id
        if result.lost is not None:
            log.warning("job %s: originate result lost (%s); reconciling", job_id, result.lost)
            self._reconcile(call)
        elif result.ok:
            log.info("job %s: originate ok uuid=%s", job_id, result.text)
            # The answering leg; not the job id when the switch replaced a
            # duplicate uuid or another simultaneous destination won.
            self._store(call, call.state.on_originate_ok(result.text))
        else:
            log.info("job %s: originate failed: %s", job_id, result.text)
            self._store(call, call.state.on_originate_failed(_cause(result.text)))
        if not call.settled:
            self.queue.ack(call.entry_id)
            call.settled = True

    def _resume(self, call: Call, record: dict[str, str]) -> None:
        """A previous worker sent this job's originate and died: follow the
        call if a switch still has it, never dial it again."""
        job_id = call.request.id
        call.state.status = record.get("status", "dialing")
        call.state.a_uuid = record.get(_party_field(call.request, "a_uuid"), "")
        call.state.answered = "answered_at" in record
        call.state.bridged = "bridged_at" in record
        call.state.originate_ok = True
        node = self._find_channel(call.state.a_uuid or job_id)
        if node is not None:
            log.info("job %s: taken over; channel alive on %s, following", job_id, node.node.label)
            node.pacer.start(time.monotonic(), self._cost(call.request))
            call.node = node
            self.queue.transition(job_id, fields={"node": node.node.label})
            self.queue.ack(call.entry_id)
            call.settled = True
            return
        log.info("job %s: taken over; no channel on any node, closing it", job_id)
        self._store(call, call.state.on_originate_failed("UNKNOWN"))
        self.queue.transition(job_id, fields={"error": "worker lost the call; no channel found"})
        self.queue.ack(call.entry_id)
        call.settled = True

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
        """The connection died between sending the originate and its result."""
        job_id = call.request.id
        node = self._find_channel(call.state.a_uuid or job_id)
        if node is not None:
            if node is not call.node and call.node is not None:
                call.node.pacer.release(self._cost(call.request))
                node.pacer.start(time.monotonic(), self._cost(call.request))
            call.node = node
            return
        self._store(call, call.state.on_originate_failed("UNKNOWN"))
        self.queue.transition(job_id, fields={"error": "event socket lost before the originate's result"})

    def _follow(self, call: Call) -> None:
        job_id = call.request.id
        while not (call.state.final and call.settled):
            try:
                item = call.inbox.get(timeout=SILENCE_CHECK)
            except gevent.queue.Empty:
                item = _RECHECK
            if isinstance(item, OriginateResult):
                self._settle(call, item)
            elif item == _CANCEL:
                self._hang_up(call)
            elif item == _RECHECK:
                self._recheck(call)
            else:
                self._apply(call, item)
        # The B leg's own hangup usually follows the A leg's by milliseconds.
        if call.state.b_uuid and not call.state.b_cause:
            deadline = time.monotonic() + 2.0
            while not call.state.b_cause and time.monotonic() < deadline:
                try:
                    item = call.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
                except gevent.queue.Empty:
                    break
                if isinstance(item, Event):
                    self._apply(call, item)
        log.info("job %s: %s cause=%s", job_id, call.state.status, call.state.a_cause or call.state.b_cause)

    def _apply(self, call: Call, event: Event) -> None:
        headers = event.headers
        role = "a" if headers.get("variable_" + dialstring.ROLE_VAR, "first") == "first" else "b"
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
        if fields:
            self._store(call, fields)

    def _store(self, call: Call, fields: dict[str, str]) -> None:
        """Write the state machine's fields, its roles turned into the parties'
        names (a_uuid is party a's leg even when b was rung first)."""
        status = fields.pop("status", "")
        if call.request.dial_first != "a":
            fields = {_party_field(call.request, k): v for k, v in fields.items()}
        self.queue.transition(call.request.id, status, fields)
        if status:
            log.info("job %s: %s", call.request.id, status)
            if call.request.callback_url:
                self.webhooks.notify(call.request, status)

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
        if call.node is None:
            return
        target = call.state.a_uuid or call.request.id
        try:
            alive = call.node.link.api("uuid_exists %s" % target).strip() == "true"
        except EslConnectionError:
            return  # the link is down; it will say when it is back
        if not alive:
            log.warning("job %s: channel gone without a hangup event", call.request.id)
            self._store(call, call.state.on_originate_failed(call.state.a_cause or "UNKNOWN"))

    # ------------------------------------------------------------ events

    def _on_event(self, state: NodeState, event: Event) -> None:
        job_id = event.headers.get("variable_" + dialstring.JOB_VAR)
        if not job_id:
            return
        if event.headers.get("variable_loopback_leg") == "B":
            return  # the inbound half of a loopback pair; its -a twin speaks for the leg
        call = self.calls.get(job_id)
        if call is not None and (call.node is None or call.node is state):
            call.inbox.put(event)

    def _on_node_up(self, state: NodeState) -> None:
        log.info("node %s: up", state.node.label)
        self._capacity.set()
        for call in list(self.calls.values()):
            if call.node is state:
                call.inbox.put(_RECHECK)


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

"""A call's life in the worker, from its stream entry to its final status.

    claim → validate → pick a node (pacing) → mark dialing → bgapi originate
          → BACKGROUND_JOB result → ack → follow channel events → final status

Each call is followed by one greenlet at a time, and by none while it waits
for its next inbox item (``_park``; see ``eslengine.inbox``). Its channel
events, its originate's result and the worker's own messages come to its
inbox (``call.py``) and are applied in order, so that each call's state
changes in one place.

``CallLife`` is one part of the ``Worker`` class, which it shares with
``Connecting`` (connect.py: held calls) and ``Recovering`` (recovery.py:
after a lost result or a silent call): the three act on the same ``Call``
through the same few steps (``_store``, ``_ack``, ``_hold``, ``_originate``)
and are kept as one class in three modules rather than objects that would
pass the call and each other back and forth. What has a narrow interface is
a collaborator instead: the nodes (``Nodes``), the heartbeat and lease
(``Registry``), adoption, claiming, the retry pump, the cancel channel and
the switches' attempt markers (``SwitchMarkers``).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gevent
import gevent.queue

from .. import dialstring, metrics
from ..calls import CallRequest, check_policy, loads_request
from ..config import Config
from ..errors import (
    EslCommandError,
    EslError,
    EslNotSent,
    EslTimeout,
    JobTakenOver,
    LeaseLapsed,
    QueueUnavailable,
    ValidationError,
)
from ..inbox import CallPool, Follower
from ..pacing import session_cost
from ..protocol import Event
from ..status import FINAL, CallState
from ..store import JOB_FIELD, JobQueue
from ..webhooks import Webhooks
from .call import (
    JOB_HEADER,
    RECHECK,
    RECONCILE,
    Call,
    Cancel,
    OriginateResult,
    Recheck,
    Reconcile,
    cause_of,
    job_id_of,
    no_slot,
    outcome,
    party_field,
)
from .nodes import Nodes, NodeState
from .phase import Phase
from .timings import Timings

if TYPE_CHECKING:
    from .attempt_markers import SwitchMarkers
    from .campaigns import CampaignGate
    from .claiming import Claims
    from .registry import Adoption, Registry

log = logging.getLogger(__name__)

# FreeSWITCH's answer when its sps throttle or session limit refuses a new
# session: the endpoint gets no session (switch_core_session_request_uuid,
# "Throttle Error!" / "Over Session Limit!") and the originate fails with
# this cause before any channel exists.
THROTTLE_CAUSE = "DESTINATION_OUT_OF_ORDER"


class CallLife:
    """Places and follows each call (the ``Worker``'s part for one call;
    see the module docstring for how it is split)."""

    config: Config
    queue: JobQueue
    consumer: str
    timings: Timings
    phase: Phase
    pool: CallPool
    webhooks: Webhooks
    nodes: Nodes
    registry: Registry
    adoption: Adoption
    claims: Claims
    gate: CampaignGate
    markers: SwitchMarkers
    # The calls this worker follows, by job id.
    calls: dict[str, Call]
    # bgapi Job-UUID -> call, so a BACKGROUND_JOB that arrives on another
    # connection (after a reconnect) still reaches its call.
    _bg: dict[str, Call]
    # Every bgapi Job-UUID this worker sends starts with this tag.
    _job_tag: str

    if TYPE_CHECKING:
        # The other parts of the Worker: connect.py and recovery.py.
        def _start_connect(self, call: Call, dump: dict[str, Any] | None = None) -> None: ...

        def _resume(self, call: Call, record: dict[str, str]) -> None: ...

        def _reconcile(self, call: Call) -> None: ...

        def _recheck(self, call: Call) -> None: ...

    def _run_entry(self, entry_id: str, fields: dict[str, str],
                   release_claim: Callable[[], None] = no_slot, epoch: int = 0) -> None:
        """One stream entry, taken while the lease held in ``epoch``."""
        job_id = ""
        parked = False
        self.claims.in_hand.add(entry_id)
        try:
            try:
                raw = fields.get(JOB_FIELD)
                if raw is None:
                    raise ValidationError("job", "entry has no 'job' field")
                # The policy is checked in _dial, on every job.
                request = loads_request(raw, self.config, check_policy=False)
            except ValidationError as exc:
                reason = "invalid job: %s: %s" % (exc.field, exc.reason)
                job_id = job_id_of(fields.get(JOB_FIELD) or "")
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
            log.warning("job %s: Redis unavailable (%s); taken up again when it answers", job_id or entry_id, exc)
            if job_id:
                gevent.spawn(self._recover_when_redis_answers, job_id)
        except Exception:
            log.exception("job %s: unexpected error", job_id or entry_id)
        finally:
            if not parked:  # else the call's follower lets go of the entry (_let_go)
                self.claims.in_hand.discard(entry_id)
            release_claim()

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
        except QueueUnavailable as exc:
            log.warning("job %s: could not adopt: %s; trying again when Redis answers", job_id, exc)
            gevent.spawn(self._recover_when_redis_answers, job_id)
        except (ValidationError, KeyError) as exc:
            log.warning("job %s: could not adopt: %s", job_id, exc)
        except Exception:
            log.exception("job %s: adopt failed", job_id)
        finally:
            self.adoption.held(job_id)

    def _recover_when_redis_answers(self, job_id: str) -> None:
        """A write for ``job_id`` failed while Redis was unavailable (a
        restart, a Sentinel or Cluster failover) and its follower let go of
        it, the call perhaps still up or its end unrecorded. Once Redis
        answers again, the job is taken up as a dead worker's would be
        (``_adopt``): the claim script says whether it was placed, and
        recovery asks the switch what became of a placed call, so it is
        neither left half-recorded nor placed twice."""
        while self.phase.running:
            gevent.sleep(self.timings.outage_retry)
            try:
                self.queue.record(job_id)
            except QueueUnavailable:
                continue
            self.pool.spawn(self._adopt, job_id, self.registry.lease.epoch)
            return

    def _dial(self, request: CallRequest, entry_id: str, release_claim: Callable[[], None] = no_slot, *,
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
            self.registry.confirm(call)
            # A job still queued moves to "dialing" as its record is read (one
            # round trip), unless its target call must be found first, or this
            # worker's policy refuses what the entry asks to dial: whoever
            # queued it (the API, enqueue(), a bare XADD, a retry, a requeue,
            # with whatever settings), the worker checks it again here.
            # A paused or cancelled campaign's job still queued is not dialed.
            stop = self.gate.stopped(request) if entry_id else None
            if stop is not None:
                ended = self.queue.request_cancel(job_id, stop, queued_only=True)
                if ended == "cancelled" or ended.startswith("final:"):
                    log.info("job %s: its campaign is stopped (%s); not dialed", job_id, stop)
                    self.queue.ack(entry_id)
                    return False
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
            log.warning("job %s: Redis unavailable (%s); taken up again when it answers", job_id, exc)
            gevent.spawn(self._recover_when_redis_answers, job_id)
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
        call.release_claim = no_slot
        follower = Follower(self._follow_on, call)
        self.pool.hand_over(gevent.getcurrent(), follower)
        call.inbox.park(follower)

    def _let_go(self, call: Call) -> None:
        """The worker no longer follows the call (it ended, was placed
        again later, or is left to another worker): let go of it."""
        job_id = call.request.id
        if call.sent_to is not None and call.state.final and call.settled:
            self.markers.forget(call, call.sent_to)
        if self.calls.get(job_id) is call:
            del self.calls[job_id]
        for bg_uuid in call.bg_uuids:
            self._bg.pop(bg_uuid, None)
        self._release(call)
        if call.entry_id:
            self.claims.in_hand.discard(call.entry_id)
        call.release_claim()
        if call.foreign:
            for state in self.nodes:
                state.link.remove_filter(JOB_HEADER, job_id)

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
        self.registry.confirm(call)
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
            self.registry.confirm(call)
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
            self.adoption.held(call.request.id)

    def _release(self, call: Call) -> None:
        if call.node is not None:
            call.node.pacer.release(call.cost)
            call.node = None
            self.nodes.wake()

    def _cost(self, request: CallRequest, name: str) -> int:
        """Sessions party ``name``'s legs may hold at once: every destination
        rung all at once, the dearest one rung in turn."""
        party = request.party(name)
        costs = [session_cost(dialstring.endpoint(d, self.config)) for d in party.destinations]
        return sum(costs) if party.mode == "simultaneous" else max(costs)

    def _candidates(self, request: CallRequest) -> Sequence[NodeState] | None:
        """The nodes this job may run on, or None when its target call is on
        none of them."""
        if request.node is not None:
            return [s for s in self.nodes if request.node in (s.node.label, s.node.name)]
        if request.target_call_id is not None:
            node = self.nodes.find_channel(request.target_call_id)
            return None if node is None else [node]
        return self.nodes

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
        fields[party_field(request, "a_uuid")] = request.id
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
            self.registry.confirm(call)
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
        self.registry.confirm(call)
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
        node = self.nodes.acquire(call.first_cost if call.held else call.cost, candidates, sessions=call.cost)
        if node is None:
            log.info("job %s: worker stopping before dialing; left for the next worker", job_id)
            return
        call.node = node
        if call.foreign:
            self.adoption.held(job_id)
        stop = self.gate.stopped(request)
        if call.state.cancel_requested or call.cancel_seen or stop is not None:
            # Cancelled before it was dialed (while waiting for the pacer),
            # or its campaign was paused or cancelled meanwhile.
            call.state.cancel_requested = True
            self.registry.confirm(call)
            self.queue.transition(job_id, "cancelled", {"hangup_cause": stop or "ORIGINATOR_CANCEL"})
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
                job = node.link.bgapi(command, job_uuid=bg_uuid, guard=self.registry.guard(call))
        except EslNotSent as exc:
            # Nothing reached the switch: place the same attempt again. Held
            # back by the lease (LeaseLapsed), another worker may be adopting
            # the job: only once the lease holds again and the job is still
            # this worker's.
            self._bg.pop(bg_uuid, None)
            log.warning("job %s: originate not sent (%s); placing it again", job_id, exc)
            self._release(call)
            if isinstance(exc, LeaseLapsed):
                self.registry.confirm(call)
            else:
                gevent.sleep(0.2)
            if self.phase.running:
                # The same attempt, already recorded as this worker's.
                self._originate(call, attempt, claimed=self._job_uuid())
            return
        except EslCommandError as exc:
            # The switch refused the command (-ERR): it did not run it.
            self._bg.pop(bg_uuid, None)
            self._release(call)
            call.refusals += 1
            metrics.count_originate(node, "refused")
            log.warning("job %s: switch refused the originate (%s)", job_id, exc.reply)
            if call.refusals >= 3 or not self.phase.running:
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
            self.registry.confirm(call)
            self.queue.transition(job_id, fields=sent)
            call.inbox.put(OriginateResult(False, "", exc, attempt))
            return
        self.registry.confirm(call)
        self.queue.annotate(job_id, sent)
        call.sent = True
        call.sent_to = node
        call.release_claim()
        # The BACKGROUND_JOB comes to the inbox like the channel events (which
        # are applied while the switch rings); the silence loop gives up on
        # it after this long.
        call.result_due = time.monotonic() + self.timings.result_wait(request.timeout)
        call.job = job  # the link keeps pending jobs only while someone holds them
        job.add_done_callback(lambda done, call=call, attempt=attempt: call.inbox.put(outcome(done, attempt)))

    def _settle(self, call: Call, result: OriginateResult) -> None:
        job_id = call.request.id
        if call.settled or (result.attempt and result.attempt != call.attempt):
            return  # a second copy of the result (after a reconnect), too late, or an earlier attempt's
        if result.lost is not None:
            if call.lost:
                return
            call.lost = True
            metrics.count_originate(call.sent_to, "lost")
            call.reconciling = True
            call.lost_at = time.monotonic()
            call.result_due = 0.0  # reconciling from here on
            log.warning("job %s: originate result lost (%s); reconciling", job_id, result.lost)
            # The BACKGROUND_JOB may still come on the new connection, or the
            # switch may not have run the originate yet: look again shortly.
            gevent.spawn_later(1.0, call.inbox.put, RECONCILE)
            return
        call.reconciling = False
        metrics.count_originate(call.sent_to, "ok" if result.ok else "failed")
        if result.ok:
            log.debug("job %s: originate ok uuid=%s", job_id, result.text)
            # The answering leg; not the job id when the switch replaced a
            # duplicate uuid or another simultaneous destination won.
            self._store(call, call.state.on_originate_ok(result.text))
            if call.held:
                self._start_connect(call)
        else:
            log.debug("job %s: originate failed: %s", job_id, result.text)
            cause = cause_of(result.text)
            if cause == THROTTLE_CAUSE and self._throttled(call):
                return
            self._store(call, call.state.on_originate_failed(cause), ack=True)
        self._ack(call)

    def _throttled(self, call: Call) -> bool:
        """The originate failed with THROTTLE_CAUSE. If the switch created
        no channel for it (none of the job's channel events came, up to
        ``Timings.throttle_settle`` after the result), its sps throttle or
        session limit refused it: slow the node down, read its limits again, and place the
        call again as the next attempt (nothing rang). True when it did so;
        False for a leg that was created and failed (a real
        DESTINATION_OUT_OF_ORDER), which ends the call as usual."""
        node = call.node
        if node is None or call.cancel_seen or call.state.cancel_requested or not self.phase.running:
            return False
        for item in self._apply_events(call, self.timings.throttle_settle, lambda: call.channel_seen):
            call.inbox.put(item)
        if call.channel_seen or call.cancel_seen:
            return False
        job_id = call.request.id
        self.nodes.slow_down(node)
        if call.throttled >= self.timings.max_throttled:
            why = "the switch's throttle refused this call %d times; not placed again" % (call.throttled + 1)
            log.warning("job %s: %s", job_id, why)
            try:
                self.queue.transition(job_id, fields={"error": why})
            except QueueUnavailable as exc:
                log.warning("job %s: error not recorded: %s", job_id, exc)
            return False
        call.throttled += 1
        log.info("job %s: attempt %d refused by %s's throttle, no channel created; placing it again",
                 job_id, call.attempt, node.node.label)
        self._release(call)
        call.sent = False
        call.state = CallState(cancel_requested=call.state.cancel_requested)
        self._originate(call, call.attempt + 1)
        return True

    def _silence_loop(self) -> None:
        """One timer for every call followed: a call that heard nothing for
        ``Timings.silence_check`` seconds is checked on its switch; one whose
        originate result is overdue stops waiting for it (and reconciles)."""
        while self.phase.running:
            gevent.sleep(self.timings.silence_check / 4)
            now = time.monotonic()
            for call in list(self.calls.values()):
                if call.result_due and now > call.result_due and not call.settled:
                    call.result_due = 0.0
                    call.inbox.put(OriginateResult(False, "", EslTimeout(
                        "job %s: no BACKGROUND_JOB in time" % call.request.id)))
                if now - call.heard >= self.timings.silence_check:
                    call.heard = now
                    call.inbox.put(RECHECK)

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
            match item:
                case Event():
                    self._apply(call, item)
                case OriginateResult():
                    self._settle(call, item)
                case Reconcile():
                    self._reconcile(call)
                case Cancel():
                    self._hang_up(call)
                case Recheck():
                    self._recheck(call)
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
        self.registry.confirm(call)
        status = fields.pop("status", "")
        if call.request.dial_first != "a":
            fields = {party_field(call.request, k): v for k, v in fields.items()}
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

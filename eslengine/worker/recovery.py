"""Recovery: what became of a call whose originate result was lost (the
connection died after the command was written, or the worker that wrote it
died), or that went silent.

The switch is asked: the first leg's channel (``uuid_exists``,
``uuid_dump``) and the attempt's markers (``SwitchMarkers``,
``eslengine.markers``). A call that is up is followed; one that ended is
recorded from its marker; one the switch never ran is placed again as the
next attempt; one nobody can say anything of ends UNKNOWN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import gevent

from ..calls import CallState
from ..errors import EslConnectionError, EslError
from ..markers import NEVER_RAN_SETTLE, SWITCH_DIED_CAUSE, Resolution, Verdict
from .attempt_markers import MarkersUnavailable
from .call import JOB_HEADER, RECONCILE, Call, party_field
from .connect import CONNECT_FAILED_CAUSE, Connecting
from .nodes import NodeState

log = logging.getLogger(__name__)


class Recovering(Connecting):
    """The ``Worker``'s part for calls whose result was lost or that went
    silent (see ``life.py``)."""

    def _resume(self, call: Call, record: dict[str, str]) -> None:
        """A previous worker placed this job and died (or stopped): follow the
        call if a switch still has it; never place the same attempt again."""
        job_id = call.request.id
        self.registry.confirm(call)
        call.attempt = int(record.get("attempts", "1") or 1)
        call.state.status = record.get("status", "dialing")
        call.state.a_uuid = record.get(party_field(call.request, "a_uuid"), "")
        call.state.answered = "answered_at" in record
        call.state.bridged = "bridged_at" in record
        call.state.originate_ok = True
        call.sent = record.get("attempt_state") == "sent"
        # Its legs carry another worker's name: pass their events by job id,
        # before looking for them, so that none is missed from then on.
        call.foreign = True
        for state in self.nodes:
            state.link.add_filter(JOB_HEADER, job_id)
        node = self.nodes.find_channel(call.state.a_uuid or job_id)
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

    def _reconcile(self, call: Call) -> None:
        """The originate's result was lost (the connection died after it was
        written, or the worker that wrote it): ask the switch what became
        of the attempt, through its markers (markers.py). Follow a call that
        is up; record the outcome of one that ended, or that its switch's
        stop cut short; place again, as the next attempt, one the switch
        never ran. Each call looks once and, until it knows, is looked at
        again later (a ``Reconcile`` in its inbox)."""
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
            if time.monotonic() - call.lost_at < self.timings.reconcile_patience:
                log.info("job %s: switch not reachable to reconcile (%s); asking again", job_id, exc)
                gevent.spawn_later(min(2.0 * call.looks, 5.0), call.inbox.put, RECONCILE)
                return
            self._lost_channel(call, "the switch the originate was sent to could not be asked what became of it "
                                     "within %.0fs" % self.timings.reconcile_patience)
            return
        verdict = resolution.verdict
        if verdict is Verdict.NEVER_RAN:
            now = time.monotonic()
            if not call.absent_since:
                call.absent_since = now
            if now - call.absent_since < NEVER_RAN_SETTLE:
                gevent.spawn_later(NEVER_RAN_SETTLE - (now - call.absent_since), call.inbox.put, RECONCILE)
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
                self._store(call, {party_field(call.request, "a_uuid"): leg})
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
                resolution = self.markers.attempt_on(call, state)
            except MarkersUnavailable:
                self.markers.refused(state)
                raise
            except EslError as exc:
                unreachable = exc
                continue
            if resolution.verdict is not Verdict.NEVER_RAN:
                return resolution, state
        if unreachable is not None:
            raise unreachable
        return Resolution(Verdict.NEVER_RAN), None

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
            state.a_uuid = fields[party_field(call.request, "a_uuid")] = leg
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
            self._store(call, {party_field(call.request, "a_uuid"): leg})
        state.originate_ok = True
        self._store(call, {**state.on_event("a", "CHANNEL_HANGUP_COMPLETE", leg, SWITCH_DIED_CAUSE),
                           "error": "the switch stopped while the call was up"}, ack=True)

    def _place_again(self, call: Call) -> None:
        """The switch never ran the attempt (no channel, no marker): place
        the job again as the next attempt."""
        job_id = call.request.id
        call.reconciling = False
        if call.never_ran >= self.timings.max_placed_again:
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
        node = self.nodes.find_channel(call.state.a_uuid or call.request.id)
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
            gevent.spawn_later(2.0 * call.looks, call.inbox.put, RECONCILE)
            return
        self._lost_channel(call)

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
            resolution: Resolution | None = self.markers.attempt_on(call, call.node)
        except EslConnectionError:
            return
        except (EslError, MarkersUnavailable):
            resolution = None
        if resolution is not None and resolution.verdict is Verdict.RUNNING:
            assert resolution.leg is not None
            if resolution.leg.uuid != call.state.a_uuid:
                call.state.a_uuid = resolution.leg.uuid
                self._store(call, {party_field(call.request, "a_uuid"): resolution.leg.uuid})
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

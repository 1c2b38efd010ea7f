"""Held calls: the first party answers and waits in park; the worker then
starts the second party's leg, in its turn on the node's pacer.

    first leg answers → park → uuid_setvar (the second party's dial string)
          → pacer's turn → uuid_transfer to the connect extension → bridge

The switch's throttle may refuse the second party's session: the connect
extension parks the first party again with CONNECT_REFUSED_VAR set, and
the worker sends it there again (``Timings.connect_refusals`` times at
most). A second party that cannot be connected has the first party hung up
with CONNECT_FAILED_CAUSE rather than left waiting in park.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event

from .. import dialstring
from ..errors import EslCommandError, EslError, EslNotSent, LeaseLapsed, QueueUnavailable
from ..esl import BackgroundJob
from .call import Call
from .life import CallLife
from .nodes import NodeState

log = logging.getLogger(__name__)

# How a first party that answered ends when the engine cannot start its
# second party's leg (a command refused or failed, or the switch out of
# reach): Q.850 27, the destination cannot be reached because its interface
# is not working. The same cause as an originate the switch refuses.
CONNECT_FAILED_CAUSE = "DESTINATION_OUT_OF_ORDER"


class Connecting(CallLife):
    """The ``Worker``'s part for held calls (see ``life.py``)."""

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
            reply = node.link.api(setvar)
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

            def transfer(sent: list[BackgroundJob] = sent, command: str = command) -> None:
                sent.append(node.link.bgapi(command, job_uuid=self._job_uuid(),
                                            guard=self.registry.guard(call)))

            error = self._send_held(call, node, transfer)
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
                    if refused > self.timings.connect_refusals:
                        error = EslCommandError("bridge", "-ERR the switch refused the second party's session "
                                                          "%d times" % refused)
                        break
                    self.nodes.slow_down(node)
                    log.info("job %s: the second party's session refused by %s's throttle, no channel created; "
                             "connecting it again", call.request.id, node.node.label)
                    clear = dialstring.connect_refused_clear_command(call.state.a_uuid)
                    error = self._send_held(call, node, functools.partial(self._api_ok, node, clear, "uuid_setvar"),
                                            again=True)
                    if error is not None:
                        break
                    continue
                error = EslCommandError("uuid_transfer", "-ERR " + text if text else "-ERR")
            elif not isinstance(error, (EslCommandError, EslNotSent)):
                # Written and unanswered: the switch may be running it.
                log.warning("job %s: the transfer may not have reached the switch: %s", call.request.id, error)
                return
            break
        self._drop_held(call, node, "uuid_transfer" if refused <= self.timings.connect_refusals else "bridge",
                        error)

    @staticmethod
    def _api_ok(node: NodeState, command: str, name: str) -> None:
        reply = node.link.api(command)
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
            self.nodes.wake()

    def _connect_refused(self, call: Call, node: NodeState) -> bool:
        """After a transfer to the connect extension: whether the switch
        refused the second party's session (its throttle or session limit,
        no channel created) and the first party waits in park again with
        CONNECT_REFUSED_VAR set. Any event of the second party, the bridge
        or the call's end says no at once; without one within
        ``Timings.connect_check`` seconds the first leg is looked at
        (uuid_dump)."""
        wait = call.connect_wait
        try:
            if wait is not None and wait.wait(self.timings.connect_check):
                return False
            deadline = time.monotonic() + self.timings.connect_look_for
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
                gevent.sleep(self.timings.connect_look)
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
                if not self.registry.still_owns(call):
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
        if call.state.final or call.state.cancel_requested or not self.registry.still_owns(call):
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
            reply = node.link.api(kill)
            if not reply.startswith("+OK"):
                raise EslCommandError("uuid_kill", reply.strip())

        failed = self._send_held(call, node, hang_up)
        if failed is not None:
            log.warning("job %s: the first party waits in park for up to %ds: %s", job_id, dialstring.PARK_TIMEOUT,
                        failed)

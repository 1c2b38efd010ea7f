"""The attempt markers a switch keeps for the engine (see
``eslengine.markers``): read for one call's attempt on one node, and
dropped once the call is over and recorded."""

from __future__ import annotations

import logging

import gevent.queue

from .. import dialstring
from ..config import Config
from ..errors import EslCommandError, EslError
from ..markers import Resolution, legs_to_find, resolve
from .call import Call
from .nodes import Nodes, NodeState
from .phase import Phase

log = logging.getLogger(__name__)


class MarkersUnavailable(Exception):
    """The switch keeps no attempt markers for the engine: no mod_db, or
    the ESL user may not run ``db``."""


class SwitchMarkers:
    """Reads and drops attempt markers on the worker's nodes, and knows
    which nodes keep none."""

    def __init__(self, config: Config, nodes: Nodes, phase: Phase) -> None:
        self.config = config
        self.phase = phase
        # Attempt markers to drop, per node (see ``forget_loop``).
        self._forget: dict[int, gevent.queue.Queue] = {id(s): gevent.queue.Queue() for s in nodes}
        self._refused: set[str] = set()  # nodes logged as keeping no markers

    def refused(self, state: NodeState) -> None:
        """``state`` keeps no markers (``attempt_on`` raised
        MarkersUnavailable): say so once, and drop none there."""
        if state.node.label not in self._refused:
            self._refused.add(state.node.label)
            log.warning("node %s: keeps no attempt markers (no mod_db, or db not in the ESL user's "
                        "esl-allowed-api): an originate whose result is lost ends UNKNOWN", state.node.label)

    def attempt_on(self, call: Call, state: NodeState) -> Resolution:
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

    def forget(self, call: Call, state: NodeState) -> None:
        """The attempt is over and recorded: its markers may go."""
        queue = self._forget.get(id(state))
        if queue is not None and state.node.label not in self._refused:
            for leg in range(1, dialstring.marker_legs(call.request) + 1):
                queue.put(dialstring.marker_delete_command(call.request.id, call.attempt, leg))

    def forget_loop(self, state: NodeState) -> None:
        """Drop the markers of calls that are over, one command at a time
        on the node's connection. One whose command cannot be sent (the node
        down, the command failed) stays on the switch."""
        queue = self._forget[id(state)]
        while self.phase.running:
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

"""A call's status and the state machine that its channels' events drive.

``STATUSES`` in order; a call only moves forward (``can_move``) and never
out of a final one (``FINAL``). ``CallState`` is what the engine knows of one
call, fed by events and originate results; it returns the record fields to
store. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("queued", "dialing", "ringing", "answered", "bridged", "completed", "failed", "cancelled",
            "skipped_dnc")
# ``skipped_dnc``: a number the call would ring was on a do-not-call list
# when the worker was about to originate it (``dnc.py``); nothing was dialed.
FINAL = frozenset({"completed", "failed", "cancelled", "skipped_dnc"})
_RANK = {s: i for i, s in enumerate(STATUSES)}


def can_move(current: str, new: str) -> bool:
    """Whether a call in status ``current`` may move to ``new``: forward
    only, never out of a final status."""
    if current in FINAL or new not in _RANK:
        return False
    if new in FINAL:
        return True
    return _RANK[new] > _RANK[current]


@dataclass(slots=True)
class CallState:
    """What the engine knows of one call, fed by its channels' events.

    Roles, not party names: ``"a"`` is the party rung first, ``"b"`` the one
    connected when it answers. A party may have several legs (failover,
    simultaneous ringing, retries): the leg that answers is the party's leg.
    Before the first party answers, only the originate's result (the
    BACKGROUND_JOB) can end the call, because a hangup may be one attempt of
    several. ``on_event`` returns the fields to store when something changed
    (``status`` among them when the status moves), or ``{}``.
    """

    status: str = "dialing"
    a_uuid: str = ""
    b_uuid: str = ""
    a_cause: str = ""
    b_cause: str = ""
    b_last_cause: str = ""
    first_hangup_cause: str = ""
    answered: bool = False
    bridged: bool = False
    originate_ok: bool = False
    cancel_requested: bool = False
    # Who ended it: the role whose leg hung up first once bridged; before
    # that, whether the first party hung up while a leg of the second was
    # still up (it left) or after the second party's legs had all failed
    # (``b_legs``: the second party's legs seen and not yet hung up).
    hung_up_first: str = ""
    b_legs: set[str] | None = None  # made on the first one (a set per call costs 216 bytes)
    b_seen: bool = False
    a_left: bool | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def _move(self, new: str, fields: dict[str, str]) -> dict[str, str]:
        if can_move(self.status, new):
            self.status = new
            fields["status"] = new
        return fields

    def on_event(self, role: str, name: str, uuid_: str, cause: str = "", bridge_cause: str = "") -> dict[str, str]:
        """Apply one channel event of a leg of the first (``"a"``) or second
        (``"b"``) party. ``bridge_cause`` is what the first party's hangup
        reports about a failed bridge (``last_bridge_hangup_cause``)."""
        fields: dict[str, str] = {}
        if role == "b" and uuid_:
            self.b_seen = True
            if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
                if self.b_legs:
                    self.b_legs.discard(uuid_)
            elif self.b_legs is None:
                self.b_legs = {uuid_}  # ringing (progress), answered or bridged
            else:
                self.b_legs.add(uuid_)
        if role == "b" and name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
            if uuid_ == self.b_uuid:
                if not self.b_cause:
                    self.b_cause = fields["b_hangup_cause"] = cause
                    if self.bridged and not self.first_hangup_cause and name == "CHANNEL_HANGUP":
                        self.first_hangup_cause = cause
                        self.hung_up_first = self.hung_up_first or "b"
            elif cause:
                self.b_last_cause = cause
            return fields
        if self.final:
            return fields
        if role == "a":
            if name == "CHANNEL_CREATE" and not self.a_uuid:
                self.a_uuid = fields["a_uuid"] = uuid_
            elif name in ("CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA"):
                return self._move("ringing", fields)
            elif name == "CHANNEL_ANSWER":
                if not self.answered:
                    self.answered = True
                    if uuid_ and uuid_ != self.a_uuid:
                        self.a_uuid = fields["a_uuid"] = uuid_
                return self._move("answered", fields)
            elif name == "CHANNEL_BRIDGE":
                self.bridged = True
                return self._move("bridged", fields)
            elif name == "CHANNEL_HANGUP" and uuid_ == self.a_uuid and (self.answered or self.originate_ok):
                if self.bridged and not self.first_hangup_cause:
                    self.first_hangup_cause = cause
                    self.hung_up_first = self.hung_up_first or "a"
                if self.a_left is None:
                    self.a_left = bool(self.b_legs) or not self.b_seen
            elif name == "CHANNEL_HANGUP_COMPLETE" and uuid_ == self.a_uuid and (self.answered or self.originate_ok):
                self.a_cause = fields["a_hangup_cause"] = cause
                if bridge_cause and not self.b_cause and not self.bridged:
                    self.b_last_cause = self.b_last_cause or bridge_cause
                return self._finish(fields)
            elif name == "CHANNEL_HANGUP_COMPLETE":
                self.a_cause = cause  # one attempt of several; the result decides
        elif role == "b":
            if name == "CHANNEL_ANSWER" and not self.b_uuid:
                self.b_uuid = fields["b_uuid"] = uuid_
            elif name == "CHANNEL_BRIDGE":
                self.bridged = True
                return self._move("bridged", fields)
        return fields

    def on_bridge(self, b_uuid: str) -> dict[str, str]:
        """CHANNEL_BRIDGE on the first party's leg names the second party's leg."""
        fields: dict[str, str] = {}
        if b_uuid and not self.b_uuid:
            self.b_uuid = fields["b_uuid"] = b_uuid
        return fields

    def on_originate_ok(self, uuid_: str) -> dict[str, str]:
        """The BACKGROUND_JOB said ``+OK <uuid>``: that leg is the first party's."""
        self.originate_ok = True
        fields: dict[str, str] = {}
        if uuid_ and uuid_ != self.a_uuid:
            self.a_uuid = fields["a_uuid"] = uuid_
        return fields

    def on_originate_failed(self, cause: str) -> dict[str, str]:
        """The BACKGROUND_JOB said ``-ERR <cause>``: the first party never came up."""
        if self.final:
            return {}
        self.a_cause = cause or self.a_cause
        return self._finish({"a_hangup_cause": self.a_cause})

    def _finish(self, fields: dict[str, str]) -> dict[str, str]:
        status, cause = self.final_status()
        fields["hangup_cause"] = cause
        if status == "completed":
            fields["ended_by"] = "api" if self.cancel_requested else (self.hung_up_first or "a")
        elif status == "failed":
            fields["failed_party"] = self.failed_party()
        return self._move(status, fields)

    def failed_party(self) -> str:
        """The role of the party whose leg ended a call that never connected:
        the first party when it did not answer, or hung up while the second
        was still ringing (or before it was rung); else the second."""
        if not self.answered:
            return "a"
        return "a" if self.a_left else "b"

    def final_status(self) -> tuple[str, str]:
        """(status, hangup_cause) once the first party is gone. A call that
        connected ends ``completed`` whoever hung it up, a cancel included;
        ``cancelled`` is for one cancelled before it connected."""
        if self.cancel_requested and not self.bridged:
            return "cancelled", self.a_cause or "ORIGINATOR_CANCEL"
        if self.bridged:
            return "completed", self.first_hangup_cause or self.a_cause or self.b_cause or "NORMAL_CLEARING"
        if self.answered:
            # The first party answered but the second never did: its cause matters.
            return "failed", _unanswered(self.b_cause or self.b_last_cause or self.a_cause or "NORMAL_CLEARING")
        return "failed", _unanswered(self.a_cause or "UNKNOWN")


def _unanswered(cause: str) -> str:
    """A destination's own ring time (leg_timeout) ends it with
    ALLOTTED_TIMEOUT; before an answer that means nobody answered."""
    return "NO_ANSWER" if cause == "ALLOTTED_TIMEOUT" else cause

"""One call as the worker follows it, and what comes to its inbox.

A call's inbox (``eslengine.inbox.Inbox``) takes, in the order they come:
the channel events of its legs (``protocol.Event``), its originate's result
(``OriginateResult``), and the worker's own messages: ``Cancel``,
``Recheck``, ``Reconcile``. The follower dispatches on their type.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import gevent.event

from .. import dialstring
from ..calls import CallRequest, CallState, parse_id
from ..errors import EslError, ValidationError
from ..esl import BackgroundJob
from ..inbox import Inbox

if TYPE_CHECKING:
    from .nodes import NodeState

# The event headers that name the worker that placed a channel, and its job.
WORKER_HEADER = "variable_" + dialstring.WORKER_VAR
JOB_HEADER = "variable_" + dialstring.JOB_VAR


def no_slot() -> None:
    """``release_claim`` of a job the claim loop did not count."""


@dataclass(frozen=True)
class Cancel:
    """The API asked for the call to be cancelled: hang it up."""


@dataclass(frozen=True)
class Recheck:
    """The call was silent too long, or its node's connection came back:
    ask the switch whether it is still up, and what it did unseen."""


@dataclass(frozen=True)
class Reconcile:
    """The originate's result was lost: ask the switch what became of the
    attempt (its markers) once more."""


# The messages carry nothing: one instance of each serves every call.
CANCEL = Cancel()
RECHECK = Recheck()
RECONCILE = Reconcile()


@dataclass(slots=True)
class Call:
    request: CallRequest
    entry_id: str
    # The account it was placed for (its do-not-call list), and whether it
    # came through the bulk lane (it waits behind interactive calls).
    account: str = ""
    bulk: bool = False
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
    # Sessions the call may hold at once (see CallLife._cost); reserved on
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
    # The bgapi Job-UUIDs of its originates (keys of CallLife._bg).
    bg_uuids: list[str] = field(default_factory=list)
    # time.monotonic() of the last inbox item (CallLife._silence_loop), and
    # when the sent originate's result is overdue (0: not waiting for one).
    heard: float = field(default_factory=time.monotonic)
    result_due: float = 0.0
    job: BackgroundJob | None = None  # the sent originate's, held while awaited
    # Gives back the claim loop's slot (see Claims.slot) once the
    # originate was written or the job ended; idempotent.
    release_claim: Callable[[], None] = no_slot
    # Placed by another worker: the event sockets pass its events by job id.
    foreign: bool = False
    # The lease epoch in which this worker last knew the job to be its own
    # (``Registry.confirm``).
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


def outcome(job: BackgroundJob, attempt: int = 0) -> OriginateResult:
    """A resolved BackgroundJob's result (of attempt ``attempt``)."""
    try:
        ok, text = job.result(None)
    except EslError as exc:
        return OriginateResult(False, "", exc, attempt)
    return OriginateResult(ok, text, attempt=attempt)


def party_field(request: CallRequest, key: str) -> str:
    """A role field (``a_*`` = first party, ``b_*`` = second) named for the party."""
    if request.dial_first == "a" or key[:2] not in ("a_", "b_"):
        return key
    return ("b_" if key.startswith("a_") else "a_") + key[2:]


def cause_of(text: str) -> str:
    """A cause name out of a ``-ERR`` result; usage and other text becomes
    ``ORIGINATE_USAGE`` / the first word."""
    text = text.strip()
    if text.startswith("-USAGE"):
        return "ORIGINATE_USAGE"
    word = text.split()[0] if text else "UNKNOWN"
    return word if word.replace("_", "").isalnum() else "UNKNOWN"


def job_id_of(raw: str) -> str:
    """The id a job document names, if it is one (a UUID), else ''."""
    try:
        document = json.loads(raw)
        return parse_id(document.get("id")) if isinstance(document, dict) and document.get("id") else ""
    except (ValueError, ValidationError):
        return ""

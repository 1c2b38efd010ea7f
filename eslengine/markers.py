"""What a switch's attempt markers say about an originate whose result was
not seen (the connection died after the command was written, or the worker
that wrote it died).

Each leg of an attempt's first party leaves a marker on the switch
(``dialstring.marker_variables``): ``up`` once its channel exists, ``end``
with its hangup cause once it hangs up. The markers are read back on a new
connection, the legs still marked ``up`` are looked for (``uuid_exists``),
and ``resolve`` decides. Pure: the reading is the worker's.

* **never ran**: no leg has a marker, so the switch created no channel for
  the attempt: it never got the command, or refused it before any channel
  (its throttle or session limit, an unknown endpoint). Nothing rang, and the
  job may be placed again as the next attempt, provided the command can no
  longer start a channel later. ``NEVER_RAN_SETTLE``: the markers are read
  twice, this far apart, both times on a connection made after the loss and
  answered by the switch: an originate the switch has read creates its first
  channel within that time.
* **running**: a leg marked ``up`` still exists: follow the call.
* **ended**: every marked leg has ended: the call's outcome is the marker of
  the leg that answered, or else of the last leg in dial-string order.
* **died**: a leg marked ``up`` no longer exists and never wrote its end: the
  switch stopped (was killed, crashed) while the leg was up. The call ends
  with ``SWITCH_DIED_CAUSE``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from .dialstring import Marker

# How far apart the two readings that find no marker must be (see above).
NEVER_RAN_SETTLE = 2.0
# The cause of a call whose switch stopped while one of its legs was up:
# FreeSWITCH's own name for a session lost to a crash (SWITCH_CAUSE_CRASH).
SWITCH_DIED_CAUSE = "CRASH"


class Verdict(enum.Enum):
    NEVER_RAN = "never ran"
    RUNNING = "running"
    ENDED = "ended"
    DIED = "died"


@dataclass(frozen=True)
class Resolution:
    verdict: Verdict
    # The leg the verdict is about: the live one (RUNNING), the one whose
    # end is the call's (ENDED), the one that never ended (DIED).
    leg: Marker | None = None


def legs_to_find(markers: Sequence[Marker | None]) -> list[str]:
    """The legs marked ``up``, whose channels must be looked for."""
    return [m.uuid for m in markers if m is not None and not m.ended and m.uuid]


def resolve(markers: Sequence[Marker | None], alive: Collection[str]) -> Resolution:
    """The verdict on one attempt from its legs' markers (in dial-string
    order, None for a leg with none) and the uuids of the legs found alive.
    A leg marked ``up`` that is not alive must have been read again after it
    was found gone (its end is written before its channel goes)."""
    present = [m for m in markers if m is not None]
    if not present:
        return Resolution(Verdict.NEVER_RAN)
    for marker in present:
        if not marker.ended and marker.uuid in alive:
            return Resolution(Verdict.RUNNING, marker)
    for marker in present:
        if not marker.ended:
            return Resolution(Verdict.DIED, marker)
    answered = [m for m in present if m.answered]
    return Resolution(Verdict.ENDED, (answered or present)[-1])

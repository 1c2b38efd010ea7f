"""Every event the switch fired during the session, and views of one channel.

``EventLog`` is fed by the harness's admin connection (``event json ALL``).
Tests read it with a position taken before they act (``mark()``), so a
test sees only what happened since, and wait on it with deadlines
(``wait_for``), never with fixed sleeps.

A ``Leg`` is one channel (one Unique-ID): its events in order, with the
variables it carried as last seen. The harness's far end is the "callee"
sofia profile: a call the carrier gateway sends out comes back in there as
an inbound leg with the same SIP Call-ID, which is how ``callee_legs`` finds
what the called side received for a job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .eventsocket import Event

CALLEE_PROFILE = "callee"
CARRIER_PROFILE = "carrier"

# The events that carry a channel's Unique-ID as the channel itself
# (BACKGROUND_JOB, API and friends carry none).
CHANNEL_EVENT_PREFIXES = ("CHANNEL_", "CALL_", "PLAYBACK_", "RECORD_", "DTMF")


@dataclass(frozen=True)
class Application:
    name: str
    data: str


@dataclass(frozen=True)
class Leg:
    """One channel, as its events show it."""

    uuid: str
    events: tuple[Event, ...]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.events]

    def header(self, name: str) -> str | None:
        """The header's value in the latest event that has it."""
        for event in reversed(self.events):
            value = event.get(name)
            if value is not None:
                return value
        return None

    def var(self, name: str) -> str | None:
        """Channel variable ``name`` as last seen (``variable_<name>``)."""
        return self.header("variable_" + name)

    def first(self, name: str) -> Event | None:
        return next((e for e in self.events if e.name == name), None)

    @property
    def created(self) -> bool:
        return self.first("CHANNEL_CREATE") is not None

    @property
    def answered(self) -> bool:
        return self.first("CHANNEL_ANSWER") is not None

    @property
    def ended(self) -> bool:
        return self.first("CHANNEL_HANGUP_COMPLETE") is not None

    @property
    def hangup_cause(self) -> str | None:
        event = self.first("CHANNEL_HANGUP_COMPLETE") or self.first("CHANNEL_HANGUP")
        return None if event is None else event.get("Hangup-Cause")

    @property
    def direction(self) -> str | None:
        return self.header("Call-Direction")

    @property
    def profile(self) -> str | None:
        """The sofia profile of a SIP leg (None for loopback and others)."""
        return self.var("sofia_profile_name")

    @property
    def channel_name(self) -> str | None:
        return self.header("Channel-Name")

    @property
    def caller_id_name(self) -> str | None:
        return self._created_header("Caller-Caller-ID-Name")

    @property
    def caller_id_number(self) -> str | None:
        return self._created_header("Caller-Caller-ID-Number")

    @property
    def destination_number(self) -> str | None:
        return self._created_header("Caller-Destination-Number")

    @property
    def sip_call_id(self) -> str | None:
        return self.var("sip_call_id")

    @property
    def sip_headers(self) -> dict[str, str]:
        """The X- (and P-) headers of the INVITE an inbound SIP leg received,
        by header name (``variable_sip_h_<name>``)."""
        prefix = "variable_sip_h_"
        found: dict[str, str] = {}
        for event in self.events:
            for key, value in event.headers.items():
                if key.startswith(prefix):
                    found[key[len(prefix):]] = value
        return found

    @property
    def applications(self) -> list[Application]:
        """Each application the channel ran (CHANNEL_EXECUTE), in order."""
        return [Application(e.get("Application") or "", e.get("Application-Data") or "")
                for e in self.events if e.name == "CHANNEL_EXECUTE"]

    def _created_header(self, name: str) -> str | None:
        created = self.first("CHANNEL_CREATE")
        value = created.get(name) if created is not None else None
        return value if value is not None else self.header(name)

    def __repr__(self) -> str:
        return "Leg(%s %s %s -> %s, %s)" % (
            self.uuid, self.channel_name, self.direction, self.hangup_cause, ",".join(self.names))


def is_channel_event(event: Event) -> bool:
    return bool(event.uuid) and event.name.startswith(CHANNEL_EVENT_PREFIXES)


class EventLog:
    """Events in arrival order; thread (greenlet) safe."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._cond = threading.Condition()

    def add(self, event: Event) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()

    def mark(self) -> int:
        """A position: ``since=mark`` reads only what came after it."""
        with self._cond:
            return len(self._events)

    def events(self, since: int = 0, name: str | None = None) -> list[Event]:
        with self._cond:
            found = self._events[since:]
        return [e for e in found if name is None or e.name == name]

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float, since: int = 0,
                 what: str = "an event") -> Event:
        """The first event since ``since`` that satisfies ``predicate``;
        AssertionError naming ``what`` when none comes within ``timeout``."""
        deadline = time.monotonic() + timeout
        seen = since
        with self._cond:
            while True:
                for event in self._events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self._events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no %s within %.1fs" % (what, timeout))
                self._cond.wait(left)

    def wait_until(self, condition: Callable[[], bool], timeout: float, what: str = "the condition") -> None:
        """Wait until ``condition()`` (re-checked on every event) holds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s did not hold within %.1fs" % (what, timeout))
                self._cond.wait(min(left, 0.2))

    def background_job(self, job_uuid: str, timeout: float, since: int = 0) -> str:
        """The body of the BACKGROUND_JOB for a ``bgapi`` with this Job-UUID."""
        event = self.wait_for(lambda e: e.name == "BACKGROUND_JOB" and e.get("Job-UUID") == job_uuid,
                              timeout, since, what="BACKGROUND_JOB %s" % job_uuid)
        return event.body

    def leg(self, uuid: str, since: int = 0) -> Leg:
        return Leg(uuid, tuple(e for e in self.events(since) if e.uuid == uuid and is_channel_event(e)))

    def legs(self, since: int = 0, where: Callable[[Leg], bool] | None = None) -> list[Leg]:
        """Every channel with events since ``since``, in order of first
        appearance, that ``where`` accepts."""
        by_uuid: dict[str, list[Event]] = {}
        for event in self.events(since):
            if is_channel_event(event):
                by_uuid.setdefault(event.uuid, []).append(event)
        found = [Leg(uuid, tuple(events)) for uuid, events in by_uuid.items()]
        return [leg for leg in found if where is None or where(leg)]

    def wait_ended(self, uuid: str, timeout: float, since: int = 0) -> Leg:
        """The leg once its CHANNEL_HANGUP_COMPLETE has come."""
        self.wait_for(lambda e: e.uuid == uuid and e.name == "CHANNEL_HANGUP_COMPLETE", timeout, since,
                      what="CHANNEL_HANGUP_COMPLETE of %s" % uuid)
        return self.leg(uuid, since)

    def job_legs(self, job_id: str, since: int = 0) -> list[Leg]:
        """Every channel of a job: the one whose uuid is ``job_id`` and every
        one carrying ``eslengine_job_id=<job_id>`` (loopback halves, the
        bridged carrier leg, the second party's legs)."""
        return self.legs(since, lambda leg: leg.uuid == job_id or any(
            e.variable("eslengine_job_id") == job_id for e in leg.events))

    def callee_legs(self, uuids: Iterable[str], since: int = 0) -> list[Leg]:
        """The inbound legs on the callee profile that the outbound carrier
        legs among ``uuids`` reached (same SIP Call-ID)."""
        wanted = set(uuids)
        call_ids = {leg.sip_call_id for leg in self.legs(since, lambda leg: leg.uuid in wanted)}
        call_ids.discard(None)
        return self.legs(since, lambda leg: leg.profile == CALLEE_PROFILE and leg.direction == "inbound"
                         and leg.sip_call_id in call_ids)

    def callee_legs_of_job(self, job_id: str, since: int = 0) -> list[Leg]:
        """What the called side received for a job: ``callee_legs`` of all
        of ``job_legs(job_id)``."""
        return self.callee_legs((leg.uuid for leg in self.job_legs(job_id, since)), since)

    def wait_callee_leg(self, uuids: Iterable[str] | str, timeout: float, since: int = 0,
                        ended: bool = False) -> Leg:
        """The first callee leg reached by any of ``uuids`` (or by the job
        ``uuids`` when it is a string), once it exists (and, with
        ``ended``, once it has hung up)."""
        targets = uuids if isinstance(uuids, str) else list(uuids)

        def find() -> Leg | None:
            if isinstance(targets, str):
                legs = self.callee_legs_of_job(targets, since)
            else:
                legs = self.callee_legs(targets, since)
            legs = [leg for leg in legs if leg.ended or not ended]
            return legs[0] if legs else None

        found: list[Leg] = []

        def ready() -> bool:
            leg = find()
            if leg is not None:
                found.append(leg)
            return leg is not None

        self.wait_until(ready, timeout, what="a callee leg for %s" % (uuids,))
        return found[-1]

"""FreeSWITCH event-socket simulator: the test double for the whole suite,
the benchmark target and the no-switch demo.

``FakeSwitch`` is a real TCP server (``gevent.server.StreamServer``) that
speaks FreeSWITCH's inbound ESL protocol byte for byte as recorded in the
transcripts, simulates channels per :class:`Scenario`, and enforces the
sessions-per-second and max-sessions limits the way FreeSWITCH counts them.
It never monkey-patches; callers that need blocking libraries patched do so.
"""

from .channels import Channel, OriginateRecord, SwitchStats
from .journal import OriginateJournal, read_journal
from .scenario import Outcome, Rule, Scenario
from .server import FakeSwitch, main

__all__ = ["Channel", "FakeSwitch", "OriginateJournal", "OriginateRecord", "Outcome", "Rule", "Scenario", "SwitchStats",
           "main", "read_journal"]

"""FreeSWITCH event-socket simulator: the test double for the whole suite,
the benchmark target and the no-switch demo.

``FakeSwitch`` is a real TCP server (``gevent.server.StreamServer``) that
speaks FreeSWITCH's inbound ESL protocol byte for byte as recorded in the
transcripts, simulates channels per :class:`Scenario`, and enforces the
sessions-per-second and max-sessions limits the way FreeSWITCH counts them.
It never monkey-patches; callers that need blocking libraries patched do so.

The modules, from the socket inwards:

* ``cli`` — ``eslengine fakeswitch``: options and signals;
* ``server`` — :class:`FakeSwitch`: the TCP server, event fan-out, fault injection;
* ``listener`` — one event-socket session: auth, framing, subscriptions, filters;
* ``commands`` — the ``api``/``bgapi`` commands and their reply texts;
* ``dialplan`` — what an answered channel runs: ``&app(args)`` or an extension
  (the engine's ``eslengine_connect``), ``uuid_transfer``;
* ``bridge`` — the ``bridge`` application: dial from a channel, link or fail;
* ``originate`` — ``switch_ivr_originate``: dial strings, groups, legs, timeouts;
* ``apps`` — applications and hooks: park, playback, sched_*, record_session, execute_on_*;
* ``switchboard`` — the live channels, hangup and the switch's timers;
* ``limits`` — sessions per second and max sessions;
* ``channel`` — a channel, its variables and event headers;
* ``dialparse`` — FreeSWITCH's reading of originate arguments and dial strings;
* ``scenario`` — which outcome a dialled number gets;
* ``store`` — mod_db and mod_hash;
* ``journal`` — the originate journal (``--record``).
"""

from .channel import Channel
from .cli import main
from .journal import OriginateJournal, read_journal
from .scenario import Outcome, Rule, Scenario
from .server import FakeSwitch
from .switchboard import OriginateRecord, SwitchStats

__all__ = ["Channel", "FakeSwitch", "OriginateJournal", "OriginateRecord", "Outcome", "Rule", "Scenario", "SwitchStats",
           "main", "read_journal"]

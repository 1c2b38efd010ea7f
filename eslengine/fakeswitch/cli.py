"""``eslengine fakeswitch``: the simulator on the command line, until
SIGINT/SIGTERM; SIGUSR1 drops every client connection, SIGUSR2 stalls
command replies for ``--stall-seconds``."""

from __future__ import annotations

import argparse
import logging
import signal

import gevent
import gevent.event

from .scenario import Scenario
from .server import FakeSwitch

log = logging.getLogger(__name__)


def bind_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    return host or "127.0.0.1", int(port)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a positive number, got %r" % text)
    return value


def main(argv: list[str] | None = None) -> int:
    """``eslengine fakeswitch``: run the simulator until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="eslengine fakeswitch",
                                     description="FreeSWITCH event-socket simulator")
    parser.add_argument("--bind", type=bind_address, default=("127.0.0.1", 8021), metavar="HOST:PORT",
                        help="address to listen on (default: 127.0.0.1:8021)")
    parser.add_argument("--password", default="ClueCon",
                        help="the event socket's password for auth (default: %(default)s)")
    parser.add_argument("--sps", type=int, default=30,
                        help="sessions per second the switch accepts, as FreeSWITCH counts them "
                             "(default: %(default)s)")
    parser.add_argument("--max-sessions", type=int, default=1000,
                        help="live sessions the switch accepts (default: %(default)s)")
    parser.add_argument("--ring-time", type=float, default=0.2, metavar="SECONDS",
                        help="how long a leg rings before it answers, unless the scenario says "
                             "otherwise; not scaled by --time-scale (default: %(default)s)")
    parser.add_argument("--talk-time", type=float, default=None, metavar="SECONDS",
                        help="how long an answered call lasts before it hangs up NORMAL_CLEARING; "
                             "not scaled by --time-scale (default: until hung up)")
    parser.add_argument("--scenario", default=None, metavar="FILE",
                        help="scenario JSON file: which outcome each dialled number gets "
                             "(default: numbers ending 486 busy, 408 no answer, 404 and 503 fail, "
                             "others answer)")
    parser.add_argument("--time-scale", type=_positive, default=1.0,
                        help="divide every FreeSWITCH delay (originate/leg timeouts, retry sleeps, "
                             "sched_hangup, sched_broadcast, playback) by this factor (default: %(default)s)")
    parser.add_argument("--playback-time", type=float, default=0.0, metavar="SECONDS",
                        help="seconds a playback/speak takes (before --time-scale) (default: %(default)s)")
    parser.add_argument("--record", default=None, metavar="FILE",
                        help="append one JSON line per originate received (and one per result) to FILE "
                             "(default: no journal)")
    parser.add_argument("--db-file", default=None, metavar="FILE",
                        help="keep mod_db's table (db insert/select/delete) in FILE, across restarts, "
                             "as FreeSWITCH keeps it in sqlite (default: none; the table starts empty)")
    parser.add_argument("--stall-seconds", type=_positive, default=2.0, metavar="SECONDS",
                        help="how long SIGUSR2 stalls command replies (default: %(default)s)")
    args = parser.parse_args(argv)
    scenario = Scenario.from_file(args.scenario) if args.scenario else None
    switch = FakeSwitch(args.bind, args.password, sps=args.sps, max_sessions=args.max_sessions,
                        ring_time=args.ring_time, talk_time=args.talk_time, scenario=scenario,
                        time_scale=args.time_scale, playback_time=args.playback_time,
                        record=args.record, db_file=args.db_file)
    switch.start()
    stopped = gevent.event.Event()

    def on_signal() -> None:
        def stop() -> None:
            switch.stop()
            stopped.set()
        gevent.spawn(stop)

    def on_drop() -> None:
        log.warning("fakeswitch: SIGUSR1: dropping every client connection")
        gevent.spawn(switch.drop_connections)

    def on_stall() -> None:
        log.warning("fakeswitch: SIGUSR2: stalling command replies for %.1fs", args.stall_seconds)
        gevent.spawn(switch.stall, args.stall_seconds)

    handlers = [gevent.signal_handler(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)]
    handlers.append(gevent.signal_handler(signal.SIGUSR1, on_drop))
    handlers.append(gevent.signal_handler(signal.SIGUSR2, on_stall))
    log.info("fakeswitch ready on %s:%d (sps %d, max sessions %d)",
             switch.address[0], switch.address[1], args.sps, args.max_sessions)
    try:
        while not stopped.wait(timeout=3600):
            pass
    finally:
        for handler in handlers:
            handler.cancel()
    return 0

"""The simulator as a benchmark target: ``eslengine fakeswitch`` plus a
stats port.

Run as ``python -m bench.switch --bind 127.0.0.1:PORT --stats 127.0.0.1:PORT2
[fakeswitch options]``. A client that connects to the stats port gets one
JSON document and EOF: every session start the switch saw (epoch seconds,
whether it was refused by a limit), every originate (epoch seconds, job id),
the peak of live channels, and the live count now.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
import gevent.event  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from eslengine.fakeswitch.cli import bind_address  # noqa: E402
from eslengine.fakeswitch.scenario import Scenario  # noqa: E402
from eslengine.fakeswitch.server import FakeSwitch  # noqa: E402

log = logging.getLogger(__name__)


class Recorder:
    """Wraps one FakeSwitch's session accounting and originate log."""

    def __init__(self, switch: FakeSwitch) -> None:
        self.switch = switch
        self.starts: list[float] = []
        self.refused: list[float] = []
        board = switch.board
        take = board.take_session

        def take_session() -> bool:
            ok = take()
            (self.starts if ok else self.refused).append(time.time())
            return ok

        board.take_session = take_session  # type: ignore[method-assign]

    def counts(self) -> dict[str, int]:
        stats = self.switch.board.stats
        return {"originates": len(stats.originate_log), "results": len(stats.result_log)}

    def snapshot(self) -> dict[str, Any]:
        board = self.switch.board
        return {
            "now": time.time(),
            "session_starts": self.starts,
            "session_refusals": self.refused,
            "refused_over_limit": board.stats.refused_over_limit,
            "peak_sessions": board.stats.peak_sessions,
            "live_sessions": len(board.channels),
            "originates": board.stats.originate_log,
            "results": board.stats.result_log,
        }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.switch")
    parser.add_argument("--bind", type=bind_address, required=True)
    parser.add_argument("--stats", type=bind_address, required=True)
    parser.add_argument("--password", default="ClueCon")
    parser.add_argument("--sps", type=int, default=30)
    parser.add_argument("--max-sessions", type=int, default=1000)
    parser.add_argument("--ring-time", type=float, default=0.2)
    parser.add_argument("--talk-time", type=float, default=None)
    parser.add_argument("--scenario", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scenario = Scenario.from_file(args.scenario) if args.scenario else None
    switch = FakeSwitch(args.bind, args.password, sps=args.sps, max_sessions=args.max_sessions,
                        ring_time=args.ring_time, talk_time=args.talk_time, scenario=scenario,
                        events_kept=0, originates_kept=0)
    recorder = Recorder(switch)

    def serve_stats(sock: socket.socket, _addr: Any) -> None:
        # One request line: "counts" (cheap, for polling while a benchmark
        # measures) or anything else for the whole snapshot.
        try:
            request = sock.makefile("rb").readline().strip()
            doc = recorder.counts() if request == b"counts" else recorder.snapshot()
            sock.sendall(json.dumps(doc).encode())
        finally:
            sock.close()

    stats = StreamServer(args.stats, serve_stats)
    stats.start()
    switch.start()
    stopped = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stopped.set)
    while not stopped.wait(timeout=3600):
        pass
    stats.stop(timeout=1)
    switch.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

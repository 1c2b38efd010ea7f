"""The ``eslengine`` command: one entry point per process kind.

    eslengine worker                      claim jobs, originate, follow calls
    eslengine api --bind 127.0.0.1:8080   the HTTP front-end (gunicorn + gevent)
    eslengine fakeswitch --bind ...       the FreeSWITCH event-socket simulator
    eslengine demo                        everything above on one machine, a few calls
    eslengine nodes                       the workers sharing each node, and their shares

gevent's monkey-patching happens here, first, and nowhere else; settings come
from ``ESLENGINE_*`` environment variables (see config.py). A bad setting or
argument is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config


def _patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


def _logging(level: str) -> None:
    import logging

    # No format here or in gunicorn's uses these; skipping them saves a frame
    # walk and, under gevent, a dummy Thread object per greenlet that logs.
    # The process id stays: gunicorn's error log format has %(process)d.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# The cyclic collector's young-generation threshold. A worker or API process
# allocates and frees many small containers per call (an event is a dict of
# ~150 strings, a request a dozen objects), nearly all of them freed by
# reference counting; at the default (700) the collector rescans them about
# every 700 allocations: about a tenth of a busy worker's CPU, measured
# with the freeze below. Cyclic garbage still goes within a few milliseconds
# at these rates.
GC_THRESHOLD = (20_000, 50, 50)


def tune_gc() -> None:
    """Set the collector for a long-running process, once it has loaded
    what it keeps for its lifetime: that goes to the permanent generation
    (``gc.freeze``), so full collections no longer walk it."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


# A worker gives the C heap's free memory back to the system every
# HEAP_TRIM_PERIOD seconds (glibc's malloc_trim; elsewhere nothing). Calls
# being placed in a burst free many blocks too large for Python's own
# allocator (greenlet stacks, the dicts of channel events) that glibc
# otherwise keeps: some 3 KiB of resident memory per call of the burst,
# measured with 10,000 calls. A trim of a 100 MiB heap takes about a
# millisecond.
HEAP_TRIM_PERIOD = 1.0


def trim_heap_forever(period: float = HEAP_TRIM_PERIOD) -> None:
    """Run in a greenlet: ``malloc_trim(0)`` every ``period`` seconds."""
    import ctypes

    import gevent

    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return  # not glibc
    trim.argtypes = (ctypes.c_size_t,)
    while True:
        gevent.sleep(period)
        trim(0)


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="eslengine", description="Click-to-call originate engine for FreeSWITCH.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="claim jobs from Redis and originate them")
    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--bind", default="127.0.0.1:8080")
    api.add_argument("--workers", type=int, default=1)
    api.add_argument("--dev", action="store_true", help="Flask's debug server instead of gunicorn")
    sub.add_parser("fakeswitch", help="run the FreeSWITCH event-socket simulator", add_help=False)
    dead = sub.add_parser("dead", help="list or re-queue dead-lettered jobs")
    dead_sub = dead.add_subparsers(dest="action", required=True)
    dead_sub.add_parser("list", help="one line per dead letter: entry id, job id, reason")
    requeue = dead_sub.add_parser("requeue", help="queue dead-lettered jobs again")
    requeue.add_argument("entries", nargs="*", help="entry ids from 'dead list'")
    requeue.add_argument("--all", action="store_true", help="every dead letter")
    sub.add_parser("nodes", help="the workers pacing each node in ESLENGINE_FREESWITCH, and their shares")
    demo = sub.add_parser("demo", help="run the whole system locally and place a few calls")
    demo.add_argument("--keep-going", action="store_true", help=argparse.SUPPRESS)

    if argv[:1] == ["fakeswitch"]:
        _patch()
        _logging("INFO")
        from .errors import ConfigError
        from .fakeswitch import main as fakeswitch_main

        try:
            return fakeswitch_main(argv[1:])
        except ConfigError as exc:
            print("eslengine fakeswitch: error: %s" % exc, file=sys.stderr)
            return 2
        except OSError as exc:
            print("eslengine fakeswitch: error: cannot listen: %s" % exc, file=sys.stderr)
            return 1

    args = parser.parse_args(argv)
    _patch()

    import os

    from .config import Config
    from .errors import ConfigError, QueueUnavailable

    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 2
    _logging(config.log_level)

    try:
        if args.command == "worker":
            import signal

            from .queue import JobQueue
            from .worker import run

            import gevent

            tune_gc()
            gevent.spawn(trim_heap_forever)
            run(config, JobQueue.from_config(config), stop_signals=(signal.SIGTERM, signal.SIGINT))
            return 0
        if args.command == "api":
            from .api import serve

            serve(config, args.bind, workers=args.workers, dev=args.dev)
            return 0
        if args.command == "dead":
            return _dead(config, args)
        if args.command == "nodes":
            return _nodes(config)
        if args.command == "demo":
            from .demo import run as run_demo

            return run_demo(config)
    except ConfigError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 1
    except QueueUnavailable as exc:
        print("eslengine: error: Redis unavailable: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error("unknown command")
    return 2


def _nodes(config: Config) -> int:
    """One line per node of this config, then one per worker pacing it."""
    from .pacing import node_share
    from .queue import JobQueue

    queue = JobQueue.from_config(config)
    for node in config.nodes:
        pacers = queue.node_pacers(node.label)
        starts = node_share(node.sps, node.max_sessions, len(pacers), [])[0]
        print("%s\tsps %d\tmax_sessions %d\t%d worker(s), %d session starts a second each" % (
            node.label, node.sps, node.max_sessions, len(pacers), starts))
        for worker, (held, share, lapses) in sorted(pacers.items()):
            print("  %s\tholds %d of its %d sessions\tplace lapses in %.1fs" % (worker, held, share, lapses))
    return 0


def _dead(config: object, args: object) -> int:
    from .queue import JobQueue

    queue = JobQueue.from_config(config)  # type: ignore[arg-type]
    letters = queue.dead_letters(count=100_000)
    if getattr(args, "action") == "list":
        for entry_id, fields in letters:
            print("%s\t%s\t%s\t%s" % (entry_id, fields.get("job_id", "-"), fields.get("at", "-"),
                                         fields.get("reason", "")))
        print("%d dead letter(s)" % len(letters), file=sys.stderr)
        return 0
    wanted = [e for e, _ in letters] if getattr(args, "all") else list(getattr(args, "entries"))
    if not wanted:
        print("eslengine dead requeue: error: name entry ids or --all", file=sys.stderr)
        return 2
    failed = 0
    for entry_id in wanted:
        try:
            job_id = queue.requeue_dead(entry_id)
            print("%s\trequeued\t%s" % (entry_id, job_id or "-"))
        except ValueError as exc:
            print("eslengine dead requeue: error: %s" % exc, file=sys.stderr)
            failed += 1
    return 1 if failed else 0

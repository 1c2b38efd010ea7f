"""The ``eslengine`` command: one entry point per process kind.

    eslengine worker                      claim jobs, originate, follow calls
    eslengine api --bind 127.0.0.1:8080   the HTTP front-end (gunicorn + gevent)
    eslengine fakeswitch --bind ...       the FreeSWITCH event-socket simulator
    eslengine demo                        everything above on one machine, a few calls

gevent's monkey-patching happens here, first, and nowhere else; settings come
from ``ESLENGINE_*`` environment variables (see config.py). A bad setting or
argument is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys


def _patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


def _logging(level: str) -> None:
    import logging

    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


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
    from .errors import ConfigError

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

            run(config, JobQueue.from_config(config), stop_signals=(signal.SIGTERM, signal.SIGINT))
            return 0
        if args.command == "api":
            from .api import serve

            serve(config, args.bind, workers=args.workers, dev=args.dev)
            return 0
        if args.command == "demo":
            from .demo import run as run_demo

            return run_demo(config)
    except ConfigError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error("unknown command")
    return 2

"""Serving the API: gunicorn with gevent workers, or Flask's development
server."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from ..config import Config
from ..errors import ConfigError
from ..metrics import check_multiprocess_dir, process_ended
from .app import create_app
from .auth import check_auth_config
from .context import EXTENSION

# Seconds gunicorn gives requests under way when it is told to stop
# (SIGTERM); the systemd unit waits longer (eslengine/deploy/systemd).
GRACEFUL_TIMEOUT = 30


def serve(
    config: Config,
    bind: str,
    *,
    workers: int = 1,
    dev: bool = False,
    allow_no_auth: bool = False,
    access_log: bool = False,
) -> None:
    """Serve the API on ``bind`` (``host:port``) until stopped.

    Production: gunicorn with gevent workers; each worker builds its own app
    (``POST /v1/calls`` through ``FastIntake``) and Redis client after the
    fork, and gunicorn exits the process
    (``SystemExit``) when it stops. ``dev=True``: Flask's single-process
    development server, for debugging only. A config the app refuses raises
    ``ConfigError`` here, before anything is started.
    """
    check_auth_config(config, allow_no_auth)
    check_multiprocess_dir()
    if dev:
        host, _, port = bind.rpartition(":")
        if not port.isdigit():
            raise ConfigError("bind %r: expected host:port" % bind)
        app = create_app(config, allow_no_auth=allow_no_auth)
        # The catch-all error handler answers every exception, so Werkzeug's
        # interactive debugger would never be shown; keep it off.
        app.run(host=host.strip("[]") or "127.0.0.1", port=int(port), debug=True, use_reloader=False,
                use_debugger=False)
        return
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": workers,
        "worker_class": "gevent",
        "worker_connections": 1000,
        "timeout": 30,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "loglevel": config.log_level.lower(),
        "proc_name": "eslengine-api",
        "preload_app": False,
        # With PROMETHEUS_MULTIPROC_DIR: a worker that ended leaves no live gauges.
        "child_exit": lambda _server, worker: process_ended(worker.pid),
    }
    _GunicornServer(config, options, allow_no_auth=allow_no_auth).run()


class _GunicornServer(BaseApplication):
    """gunicorn embedded: options from ``serve``, never from argv or a file."""

    def __init__(self, config: Config, options: dict[str, Any], *, allow_no_auth: bool) -> None:
        self.config = config
        self.options = options
        self.allow_no_auth = allow_no_auth
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        # Runs in each worker after the fork (preload_app is off), so every
        # worker has its own Redis connections. Under gevent the enqueues of
        # concurrent requests share pipelines (group commit); each request
        # still answers 202 only once its job is in Redis.
        from ..redisbatch import CommandBatcher
        from ..runtime import tune_gc

        app = create_app(self.config, allow_no_auth=self.allow_no_auth, fast_intake=True)
        # One batcher a shard (``store.shards``): each writes to its slot's primary.
        for queue in app.extensions[EXTENSION].shards:
            batcher = CommandBatcher(queue.redis, route_key=queue.keys.jobs)
            batcher.start()
            queue.use_batcher(batcher)
        tune_gc()
        return app

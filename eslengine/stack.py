"""The whole system on one machine, as real processes: a private
redis-server, the FreeSWITCH simulator, a worker and the API, each on a free
loopback port. Used by ``eslengine demo``, the end-to-end tests and the
benchmarks; every process it starts it stops again, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("process exited with status %s before listening on %d" % (proc.returncode, port)) from None
            if time.monotonic() > deadline:
                raise TimeoutError("nothing listening on 127.0.0.1:%d after %.0fs" % (port, timeout)) from None
            time.sleep(0.05)


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: str

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""


@dataclass
class LocalStack:
    """Start with ``start()``, stop with ``stop()`` (or use as a context manager)."""

    switch_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    api_key: str = field(default_factory=lambda: "key-" + secrets.token_hex(8))
    workers: int = 1
    start_api: bool = True
    redis_url: str = ""  # use this Redis instead of starting one
    switch_port: int = 0  # use the switch already listening here (127.0.0.1) instead of starting one
    dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="eslengine-stack-"))
    processes: dict[str, Process] = field(default_factory=dict)
    switch_password: str = field(default_factory=lambda: "pw-" + secrets.token_hex(6))

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ processes

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Process:
        running = self.processes.get(name)
        if running is not None and running.proc.poll() is None:
            # Replacing it here would leave it running after stop().
            raise ValueError("a process named %r is already running (pid %d)" % (name, running.proc.pid))
        log_path = os.path.join(self.dir, name + ".log")
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=self.dir,
            )
        process = Process(name, proc, log_path)
        self.processes[name] = process
        return process

    def start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make setup installs Debian's redis-server)")
        self.redis_port = free_port()
        proc = self.spawn("redis", [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                                    "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"])
        wait_for_port(self.redis_port, 10, proc.proc)
        self.redis_url = "redis://127.0.0.1:%d/0" % self.redis_port

    def start_switch(self) -> None:
        self.switch_port = free_port()
        proc = self.spawn("fakeswitch", [sys.executable, "-m", "eslengine", "fakeswitch", "--bind",
                                         "127.0.0.1:%d" % self.switch_port, "--password", self.switch_password,
                                         *self.switch_args])
        wait_for_port(self.switch_port, 15, proc.proc)

    @property
    def engine_env(self) -> dict[str, str]:
        return {
            "ESLENGINE_REDIS_URL": self.redis_url,
            "ESLENGINE_FREESWITCH": "esl://:%s@127.0.0.1:%d" % (self.switch_password, self.switch_port),
            "ESLENGINE_API_KEYS": self.api_key,
            "ESLENGINE_GATEWAY": "demo",
            "ESLENGINE_KEY_PREFIX": "eslengine",
            # The simulator's numbers are the fictional 555-01xx range
            # (+15551230001), which libphonenumber does not validate.
            "ESLENGINE_ALLOW_UNVALIDATED_NUMBERS": "1",
            **self.env,
        }

    def start_worker(self, name: str = "worker") -> Process:
        return self.spawn(name, [sys.executable, "-m", "eslengine", "worker"], self.engine_env)

    def start_api_server(self) -> None:
        self.api_port = free_port()
        proc = self.spawn("api", [sys.executable, "-m", "eslengine", "api", "--bind", "127.0.0.1:%d" % self.api_port],
                          self.engine_env)
        wait_for_port(self.api_port, 20, proc.proc)

    def start(self) -> None:
        try:
            if not self.redis_url:
                self.start_redis()
            if not self.switch_port:
                self.start_switch()
            for i in range(self.workers):
                self.start_worker("worker" if i == 0 else "worker%d" % i)
            if self.start_api:
                self.start_api_server()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Front to back: API, workers (they drain), switch, Redis last.
        kinds = ("api", "worker", "fakeswitch", "redis")
        order = sorted(self.processes.values(), key=lambda p: next(
            (i for i, kind in enumerate(kinds) if p.name.startswith(kind)), 0))
        for process in order:
            process.stop()
        self.processes.clear()

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------ HTTP

    @property
    def api_url(self) -> str:
        return "http://127.0.0.1:%d" % self.api_port

    def http(self, method: str, path: str, body: Any = None, *, key: str | None = None,
             timeout: float = 10.0) -> tuple[int, dict[str, Any], Mapping[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.api_url + path, data=data, method=method)
        if key != "":  # "": no Authorization header at all
            request.add_header("Authorization", "Bearer %s" % (self.api_key if key is None else key))
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}"), dict(response.headers)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                doc = json.loads(raw or b"{}")
            except ValueError:
                doc = {"raw": raw.decode("utf-8", "replace")}
            return exc.code, doc, dict(exc.headers)

"""A real FreeSWITCH for the conformance suite: found, configured, started,
watched and stopped by this process.

Where it is
    ``$ESLENGINE_FREESWITCH_PREFIX`` (default ``~/.cache/eslengine/freeswitch``)
    holds ``bin/freeswitch`` and its modules in ``lib/freeswitch/mod``. The
    suite runs only with ``ESLENGINE_CONFORMANCE=1`` (``make conformance``);
    ``disabled_reason()`` says in one line why it does not.

Its configuration
    ``tests/conformance/conf`` is rendered into a private directory (mode
    0700, removed at the end) with the values chosen at run time in
    ``vars.xml``, and the project's ``freeswitch-conf/`` files are added
    from the working tree, read at start, the way its README tells an
    operator to install them:

    * ``autoload_configs/event_socket.conf.xml``: replaces ours (we have
      none). Two textual substitutions: the listen-port (8021 there, a free
      port here, so that parallel runs and a switch the user runs never
      collide) and the password placeholder (a fresh random secret).
      listen-ip must already be 127.0.0.1.
    * ``autoload_configs/acl.conf.xml``: used whole and unchanged; our
      configuration has no acl.conf of its own, the case its comment allows.
    * ``autoload_configs/switch.conf.xml``: merged as its comment says: its
      ``<param>`` lines go into our switch.conf.xml. Their values become
      ``SwitchSettings.sps`` / ``max_sessions`` (100 and 1000 by default,
      where the shipped file says 30 and 1000): on this switch one call
      costs one more session than on a real one (the callee's inbound leg),
      and tests start calls in bursts.
    * ``directory/default/eslengine.xml``: new file; the esl-password
      placeholder becomes a fresh random secret.
    * ``dialplan/eslengine.xml``: new file; ``CHANGE_ME_carrier_gateway``
      becomes the test gateway ``selfgw``.

    A shipped file that no longer has the expected line makes ``render``
    fail, naming the file, rather than start a switch configured otherwise.

What it runs
    Two sofia profiles on 127.0.0.1 with SIP and RTP there only: "carrier"
    (gateway ``selfgw`` to the callee profile, register=false) and "callee"
    (context ``callee``: the simulator's outcome convention, see
    ``conf/dialplan/callee.xml``). The directory domain 127.0.0.1 has the
    shipped eslengine user and user 1000, whose dial-string rings the callee.
    FreeSWITCH runs in the foreground (``-nf -nc -nonat -nonatmap``) as
    this process's child and is stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .events import EventLog, Leg
from .eventsocket import Event, EventSocket, EventSocketError, Reply

PREFIX_ENV = "ESLENGINE_FREESWITCH_PREFIX"
DEFAULT_PREFIX = "~/.cache/eslengine/freeswitch"
ENABLE_ENV = "ESLENGINE_CONFORMANCE"
KEEP_ENV = "ESLENGINE_CONFORMANCE_KEEP"

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "freeswitch-conf"
TEMPLATES = Path(__file__).resolve().parent / "conf"

HOST = "127.0.0.1"
DOMAIN = "127.0.0.1"
ESL_USER = "eslengine"
GATEWAY = "selfgw"
CARRIER = "carrier"
CALLEE = "callee"

LOG_LEVELS = ("debug", "info", "notice", "warning", "err", "crit", "alert")

# freeswitch -help: the directories a private instance must not share.
DIR_OPTIONS = ("log", "db", "run", "temp", "storage", "recordings", "cache", "certs",
               "scripts", "grammar", "sounds", "htdocs")


class SwitchError(RuntimeError):
    """The switch could not be configured, started or reached."""


def prefix(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get(PREFIX_ENV) or DEFAULT_PREFIX).expanduser()


def binary(environ: dict[str, str] | None = None) -> Path:
    return prefix(environ) / "bin" / "freeswitch"


def disabled_reason(environ: dict[str, str] | None = None) -> str | None:
    """Why the conformance suite does not run here, in one line; None when it does."""
    env = os.environ if environ is None else environ
    path = binary(env)
    if env.get(ENABLE_ENV) != "1":
        return ("real-switch conformance suite off: `make conformance` (ESLENGINE_CONFORMANCE=1) "
                "runs it against %s" % path)
    if not os.access(path, os.X_OK):
        return "real-switch conformance suite skipped: no FreeSWITCH at %s (set %s)" % (path, PREFIX_ENV)
    return None


@dataclass(frozen=True)
class SwitchSettings:
    """What the test switch does; the simulator's equivalents are
    ``FakeSwitch(ring_time=..., talk_time=..., sps=..., max_sessions=...)``.

    ``ring_time``: seconds an answering callee rings (180) before it answers.
    ``talk_time``: seconds it stays up after answering, then hangs up
    NORMAL_CLEARING; None: until the caller hangs up.
    ``rtp_ports``: how many UDP ports the switch may use for media (two a
    leg: RTP and the odd one after it).
    """

    ring_time: float = 0.5
    talk_time: float | None = 2.0
    sps: int = 100
    max_sessions: int = 1000
    log_level: str = "info"
    rtp_ports: int = 200

    def __post_init__(self) -> None:
        if self.log_level not in LOG_LEVELS:
            raise ValueError("log_level must be one of %s" % (LOG_LEVELS,))

    def fakeswitch_kwargs(self) -> dict[str, Any]:
        """The simulator's arguments for the same behaviour:
        ``FakeSwitch(**settings.fakeswitch_kwargs())``."""
        return {"ring_time": self.ring_time, "talk_time": self.talk_time,
                "sps": self.sps, "max_sessions": self.max_sessions}


@dataclass(frozen=True)
class Ports:
    esl: int
    carrier_sip: int
    callee_sip: int
    rtp_start: int
    rtp_end: int


@dataclass(frozen=True)
class Secrets:
    admin_password: str
    esl_user_password: str
    user_password: str

    @classmethod
    def fresh(cls) -> Secrets:
        return cls(secrets.token_hex(24), secrets.token_hex(24), secrets.token_hex(12))


# -- ports ---------------------------------------------------------------------


def _bindable(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(taken: set[int] | None = None) -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (sofia binds both)."""
    taken = taken or set()
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in taken and _bindable(port, socket.SOCK_DGRAM):
            return port
    raise SwitchError("no free port on %s" % HOST)


def free_rtp_range(count: int = 200, taken: set[int] | None = None) -> tuple[int, int]:
    """``count`` consecutive UDP ports, all free now, below the kernel's
    ephemeral range (so clients' ports do not land in it)."""
    taken = taken or set()
    for _ in range(50):
        start = random.randrange(20000, 32000 - count, 2)
        ports = range(start, start + count)
        if not taken.intersection(ports) and all(_bindable(p, socket.SOCK_DGRAM) for p in ports):
            return start, start + count - 1
    raise SwitchError("no block of %d free UDP ports on %s" % (count, HOST))


def choose_ports(rtp_ports: int = 200) -> Ports:
    taken: set[int] = set()
    picked = []
    for _ in range(3):
        port = free_port(taken)
        taken.add(port)
        picked.append(port)
    start, end = free_rtp_range(rtp_ports, taken=taken)
    return Ports(picked[0], picked[1], picked[2], start, end)


# -- configuration -------------------------------------------------------------


def _substitute(text: str, pattern: str, replacement: str, source: str) -> str:
    """Replace the one match of ``pattern``; a shipped file that no longer
    has exactly one is an error, not a silently different switch."""
    new, count = re.subn(pattern, replacement, text)
    if count != 1:
        raise SwitchError("%s: expected exactly one match of %r, found %d" % (source, pattern, count))
    return new


def _without_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def shipped_event_socket(port: int, password: str) -> str:
    source = SHIPPED / "autoload_configs" / "event_socket.conf.xml"
    text = source.read_text(encoding="utf-8")
    if not re.search(r'<param name="listen-ip" value="127\.0\.0\.1"/>', _without_comments(text)):
        raise SwitchError("%s: listen-ip is not 127.0.0.1; the suite listens on loopback only" % source)
    text = _substitute(text, r'(<param name="listen-port" value=")8021("/>)', r"\g<1>%d\2" % port, str(source))
    return _substitute(text, r'(<param name="password" value=")[^"]*("/>)', r"\g<1>%s\2" % password, str(source))


def shipped_acl() -> str:
    return (SHIPPED / "autoload_configs" / "acl.conf.xml").read_text(encoding="utf-8")


def shipped_switch_params(sps: int, max_sessions: int) -> list[str]:
    """The ``<param>`` lines of the shipped switch.conf.xml, with our limits."""
    source = SHIPPED / "autoload_configs" / "switch.conf.xml"
    params = dict(re.findall(r'<param name="([^"]+)" value="([^"]*)"/>',
                             _without_comments(source.read_text(encoding="utf-8"))))
    for name in ("max-sessions", "sessions-per-second"):
        if name not in params:
            raise SwitchError("%s: no %s param" % (source, name))
    params["max-sessions"] = str(max_sessions)
    params["sessions-per-second"] = str(sps)
    return ['<param name="%s" value="%s"/>' % item for item in params.items()]


def shipped_directory_user(password: str) -> str:
    source = SHIPPED / "directory" / "default" / "eslengine.xml"
    return _substitute(source.read_text(encoding="utf-8"),
                       r'(<param name="esl-password" value=")[^"]*("/>)', r"\g<1>%s\2" % password, str(source))


def shipped_dialplan(gateway: str) -> str:
    source = SHIPPED / "dialplan" / "eslengine.xml"
    return _substitute(source.read_text(encoding="utf-8"),
                       r"(eslengine_gateway=)CHANGE_ME_carrier_gateway", r"\g<1>%s" % gateway, str(source))


def _milliseconds(seconds: float | None) -> str:
    return "-1" if seconds is None else str(int(round(seconds * 1000)))


def render(conf_dir: Path, settings: SwitchSettings, ports: Ports, keys: Secrets,
           gateway_proxy: str | None = None) -> None:
    """Write the whole configuration into ``conf_dir`` (which must not exist).
    ``gateway_proxy`` (host:port) is where the carrier gateway sends calls:
    by default this switch's own callee profile."""
    shutil.copytree(TEMPLATES, conf_dir)
    level = LOG_LEVELS.index(settings.log_level)
    values = {
        "carrier_sip_port": str(ports.carrier_sip),
        "callee_sip_port": str(ports.callee_sip),
        "gateway_proxy": gateway_proxy or "%s:%d" % (HOST, ports.callee_sip),
        "rtp_start_port": str(ports.rtp_start),
        "rtp_end_port": str(ports.rtp_end),
        "log_level": settings.log_level,
        "log_levels": ",".join(LOG_LEVELS[level:]),
        "ring_ms": _milliseconds(settings.ring_time),
        "talk_ms": _milliseconds(settings.talk_time),
        "user_password": keys.user_password,
    }
    vars_xml = conf_dir / "vars.xml"
    text = re.sub(r"@([a-z_]+)@", lambda m: values[m.group(1)], vars_xml.read_text(encoding="utf-8"))
    vars_xml.write_text(text, encoding="utf-8")

    configs = conf_dir / "autoload_configs"
    (configs / "event_socket.conf.xml").write_text(shipped_event_socket(ports.esl, keys.admin_password),
                                                   encoding="utf-8")
    (configs / "acl.conf.xml").write_text(shipped_acl(), encoding="utf-8")
    switch_conf = configs / "switch.conf.xml"
    merged = "\n    ".join(shipped_switch_params(settings.sps, settings.max_sessions))
    switch_conf.write_text(_substitute(switch_conf.read_text(encoding="utf-8"),
                                       r"<!-- eslengine switch\.conf params -->", merged, str(switch_conf)),
                           encoding="utf-8")
    (conf_dir / "directory" / "default" / "eslengine.xml").write_text(
        shipped_directory_user(keys.esl_user_password), encoding="utf-8")
    (conf_dir / "dialplan" / "eslengine.xml").write_text(shipped_dialplan(GATEWAY), encoding="utf-8")

    for path in conf_dir.rglob("*.xml"):
        live = _without_comments(path.read_text(encoding="utf-8"))
        if "CHANGE_ME" in live or re.search(r"@[a-z_]+@", live):
            raise SwitchError("%s still holds a placeholder" % path)


# -- the running switch --------------------------------------------------------


def _listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, local address, port) of every TCP socket in LISTEN and
    every bound UDP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path("/proc/%d/fd" % pid).iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(OSError):
            lines = Path("/proc/%d/net/%s" % (pid, proto)).read_text().splitlines()[1:]
            for line in lines:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if inode not in inodes or (proto.startswith("tcp") and state != "0A"):
                    continue
                addr_hex, port_hex = local.split(":")
                found.append((proto, _address(addr_hex), int(port_hex, 16)))
    return found


def _address(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words)


class RealSwitch:
    """One FreeSWITCH process with the configuration above.

    Attributes for tests: ``host``, ``esl_port``, ``password`` (the event
    socket's admin password), ``esl_user`` (``eslengine@127.0.0.1``) and
    ``esl_user_password`` (its ``userauth`` secret), ``gateway``,
    ``freeswitch_url`` (``ESLENGINE_FREESWITCH`` for that user),
    ``settings``, ``ports``, ``events`` (``EventLog`` of everything since
    start), ``startup_seconds``, ``log_path``.
    """

    host = HOST
    domain = DOMAIN
    gateway = GATEWAY

    def __init__(self, settings: SwitchSettings | None = None, environ: dict[str, str] | None = None,
                 gateway_proxy: str | None = None) -> None:
        self.settings = settings or SwitchSettings()
        self.gateway_proxy = gateway_proxy
        self.prefix = prefix(environ)
        self.binary = self.prefix / "bin" / "freeswitch"
        self.ports = choose_ports(self.settings.rtp_ports)
        self.keys = Secrets.fresh()
        self.workdir = Path(tempfile.mkdtemp(prefix="eslengine-freeswitch-"))
        self.conf_dir = self.workdir / "conf"
        self.log_path = self.workdir / "log" / "freeswitch.log"
        self.console_path = self.workdir / "console.out"
        self.events = EventLog()
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds = 0.0
        self._admin: EventSocket | None = None
        self._watch: EventSocket | None = None

    @property
    def esl_port(self) -> int:
        return self.ports.esl

    @property
    def password(self) -> str:
        return self.keys.admin_password

    @property
    def esl_user(self) -> str:
        return "%s@%s" % (ESL_USER, DOMAIN)

    @property
    def esl_user_password(self) -> str:
        return self.keys.esl_user_password

    @property
    def callee_address(self) -> str:
        return "%s:%d" % (HOST, self.ports.callee_sip)

    @property
    def freeswitch_url(self) -> str:
        return self.url_with_limits(self.settings.sps, self.settings.max_sessions)

    def url_with_limits(self, sps: int, max_sessions: int) -> str:
        """``ESLENGINE_FREESWITCH`` for the shipped user, saying these limits
        (which need not be the switch's own)."""
        return "esl://%s:%s@%s:%d?sps=%d&max_sessions=%d" % (
            urllib.parse.quote(self.esl_user, safe=""), self.esl_user_password, HOST, self.esl_port,
            sps, max_sessions)

    def api(self, command: str, timeout: float = 10.0) -> str:
        """``api <command>`` on the admin connection; the response body."""
        assert self._admin is not None, "the switch is not started"
        return self._admin.api(command, timeout)

    def bgapi(self, command: str, timeout: float = 30.0) -> str:
        """``bgapi <command>`` on the admin connection; waits for and
        returns its BACKGROUND_JOB body (``+OK <uuid>\\n``, ``-ERR <CAUSE>\\n``)."""
        mark = self.events.mark()
        job = self.bgapi_start(command)
        return self.events.background_job(job, timeout, since=mark)

    def bgapi_start(self, command: str) -> str:
        """``bgapi <command>`` with a fresh Job-UUID, not waiting; the Job-UUID
        (``events.background_job(job, timeout)`` reads the result)."""
        assert self._admin is not None, "the switch is not started"
        job = str(uuidlib.uuid4())
        reply = self._admin.send("bgapi " + command, headers={"Job-UUID": job})
        if not reply.ok:
            raise SwitchError("bgapi %s: %s" % (command, reply.text))
        return job

    def connect(self, *, admin: bool = False, on_event: Callable[[Event], None] | None = None) -> EventSocket:
        """A new, logged-in event socket connection: as the shipped
        least-privilege user (``userauth``), or with ``admin`` the admin
        password. The caller closes it (it is a context manager)."""
        conn = EventSocket(HOST, self.esl_port, on_event=on_event)
        conn.connect()
        reply = conn.auth(self.password) if admin else conn.userauth(self.esl_user, self.esl_user_password)
        if not reply.ok:
            conn.close()
            raise SwitchError("login failed: %s" % reply.text)
        return conn

    def open_socket(self) -> EventSocket:
        """A new connection that has only read the greeting (log in yourself)."""
        conn = EventSocket(HOST, self.esl_port)
        conn.connect()
        return conn

    def leg(self, uuid: str, since: int = 0) -> Leg:
        return self.events.leg(uuid, since)

    def log_tail(self, lines: int = 60) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def listeners(self) -> list[tuple[str, str, int]]:
        assert self.proc is not None
        return _listening_sockets(self.proc.pid)

    def hangup_all(self, timeout: float = 10.0) -> None:
        """Hang up every channel and wait until none is left."""
        self.api("hupall NORMAL_CLEARING")
        deadline = time.monotonic() + timeout
        while self.channel_count() and time.monotonic() < deadline:
            time.sleep(0.05)

    def channel_count(self) -> int:
        match = re.search(r"(\d+) session\(s\) - peak", self.api("status"))
        return int(match.group(1)) if match else -1

    # life cycle

    def start(self, timeout: float = 60.0) -> None:
        """Render the configuration, start the process and wait until it is
        ready (``_wait_ready``); on failure stop it and keep the directory."""
        if not os.access(self.binary, os.X_OK):
            raise SwitchError("no FreeSWITCH at %s" % self.binary)
        command = [str(self.binary), "-nf", "-nc", "-nonat", "-nonatmap",
                   "-base", str(self.workdir), "-conf", str(self.conf_dir),
                   "-mod", str(self.prefix / "lib" / "freeswitch" / "mod")]
        for name in DIR_OPTIONS:
            command += ["-" + name, str(self.workdir / name)]
        began = time.monotonic()
        try:
            render(self.conf_dir, self.settings, self.ports, self.keys, self.gateway_proxy)
            for name in DIR_OPTIONS:
                (self.workdir / name).mkdir(exist_ok=True)
            with open(self.console_path, "wb") as console:
                self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=console,
                                             stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
            self._wait_ready(began + timeout)
        except BaseException as exc:
            self.stop(keep=True)
            exc.add_note("configuration and logs kept in %s" % self.workdir)
            raise
        self.startup_seconds = time.monotonic() - began

    def _wait_ready(self, deadline: float) -> None:
        """ESL takes the admin password, the event connection is subscribed,
        both profiles are RUNNING, the gateway is up, and every socket the
        process listens on is bound to 127.0.0.1."""
        while True:
            self._check_alive()
            try:
                self._admin = self.connect(admin=True)
                break
            except (EventSocketError, SwitchError):
                if time.monotonic() > deadline:
                    raise SwitchError("event socket on %s:%d never took the password\n%s"
                                      % (HOST, self.esl_port, self.log_tail())) from None
                time.sleep(0.1)
        self._watch = self.connect(admin=True, on_event=self.events.add)
        reply = self._watch.send("event json ALL")
        if not reply.ok:
            raise SwitchError("event json ALL: %s" % reply.text)
        while True:
            self._check_alive()
            status = self.api("sofia status")
            gateway = self.api("sofia status gateway %s" % GATEWAY)
            if (self._profile_running(status, CARRIER) and self._profile_running(status, CALLEE)
                    and re.search(r"^State\s+NOREG", gateway, re.M) and re.search(r"^Status\s+UP", gateway, re.M)
                    and "is ready" in self.api("status")):
                break
            if time.monotonic() > deadline:
                raise SwitchError("sofia never came up:\n%s\n%s\n%s" % (status, gateway, self.log_tail()))
            time.sleep(0.1)
        exposed = [item for item in self.listeners() if item[1] != HOST]
        if exposed:
            raise SwitchError("listening beyond %s: %s" % (HOST, exposed))

    @staticmethod
    def _profile_running(status: str, name: str) -> bool:
        return re.search(r"^\s*%s\s+profile\s+\S+\s+RUNNING" % re.escape(name), status, re.M) is not None

    def _check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise SwitchError("freeswitch exited with %s during start-up\n%s\n%s" % (
                self.proc.returncode, self.console_path.read_text(errors="replace")[-3000:], self.log_tail()))

    def stop(self, keep: bool = False) -> None:
        """Stop the process by its PID (SIGTERM; SIGKILL after 20 s) and
        remove the private directory, unless ``keep`` or
        ESLENGINE_CONFORMANCE_KEEP=1 (to read the log afterwards)."""
        for conn in (self._watch, self._admin):
            if conn is not None:
                conn.close()
        self._watch = self._admin = None
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if not keep and os.environ.get(KEEP_ENV) != "1":
            shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def running_switch(settings: SwitchSettings | None = None, gateway_proxy: str | None = None) -> Iterator[RealSwitch]:
    switch = RealSwitch(settings, gateway_proxy=gateway_proxy)
    switch.start()
    try:
        yield switch
    finally:
        switch.stop()


__all__ = ["Event", "EventLog", "EventSocket", "Leg", "RealSwitch", "Reply", "SwitchError", "SwitchSettings",
           "disabled_reason", "running_switch"]

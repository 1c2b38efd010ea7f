"""Redis high availability for the tests: a primary, a replica and three
Sentinels (``SentinelSet``), and a three-primary Redis Cluster
(``RedisCluster``), all ``redis-server`` processes on free loopback ports.

Every process has its own temporary directory (the Sentinels and the cluster
nodes rewrite their configuration there), is stopped by its PID and the
directory removed by ``stop()``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from eslengine.stack import free_port

SERVICE = "mymaster"
SLOTS = 16384


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except (redis.RedisError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not within %.0fs" % (what, timeout))
        time.sleep(0.05)


class ServerProcess:
    """One ``redis-server`` (``--sentinel`` with ``config``) on a free port
    bound to 127.0.0.1, answering PING when the constructor returns."""

    def __init__(self, *options: str, config: str = "", sentinel: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run `make setup`, which installs it")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="eslengine-redisha-")
        argv = [binary]
        if sentinel:
            path = os.path.join(self.dir, "sentinel.conf")
            with open(path, "w") as f:
                f.write(config)
            argv += [path, "--sentinel"]
        else:
            # A replica that must sync in full (after a failover, one that was
            # ahead of the promoted one) starts at once, not 5 s later, when
            # more replicas might have asked.
            argv += ["--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
        argv += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--daemonize", "no",
                 "--loglevel", "warning", "--logfile", os.path.join(self.dir, "log"), *options]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL)
        try:
            _wait(lambda: self.proc.poll() is not None or self.client().ping(), 10, "redis-server on %d" % self.port)
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server on port %d exited: %s" % (self.port, self.log()[-2000:]))
        except BaseException:
            self.stop()
            raise

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=2,
                           socket_connect_timeout=1, **options)

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Stop it dead (SIGKILL), as a crashed host would."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _stop_all(processes: Sequence[ServerProcess]) -> None:
    for process in processes:
        process.stop()


def replica_of(primary: ServerProcess) -> ServerProcess:
    return ServerProcess("--replicaof", "127.0.0.1", str(primary.port))


def replicas_up(primary: ServerProcess, replicas: Sequence[ServerProcess]) -> bool:
    if int(primary.client().info("replication").get("connected_slaves", 0)) != len(replicas):
        return False
    return all(r.client().info("replication").get("master_link_status") == "up" for r in replicas)


def wait_replicas_up(primary: ServerProcess, replicas: Sequence[ServerProcess], timeout: float = 20) -> None:
    _wait(lambda: replicas_up(primary, replicas), timeout, "replicas of %d in sync" % primary.port)


class SentinelSet:
    """A primary, ``replicas`` replicas and three Sentinels watching them as
    ``SERVICE`` (quorum 2), which fail over ``down_after_ms`` after the
    primary stops answering."""

    def __init__(self, *, replicas: int = 1, down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.down_after_ms = down_after_ms
        self.servers: list[ServerProcess] = []
        self.sentinels: list[ServerProcess] = []
        try:
            primary = ServerProcess()
            self.servers.append(primary)
            self.servers += [replica_of(primary) for _ in range(replicas)]
            config = ("sentinel monitor %s 127.0.0.1 %d 2\n"
                      "sentinel down-after-milliseconds %s %d\n"
                      "sentinel failover-timeout %s %d\n"
                      "sentinel parallel-syncs %s 1\n"
                      % (SERVICE, primary.port, SERVICE, down_after_ms, SERVICE, failover_timeout_ms, SERVICE))
            for _ in range(3):
                self.sentinels.append(ServerProcess(config=config, sentinel=True))
            _wait(self._ready, 30, "sentinels and replica ready")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return "redis+sentinel://%s/%s/0" % (",".join("127.0.0.1:%d" % s.port for s in self.sentinels), SERVICE)

    def _ready(self) -> bool:
        if not replicas_up(self.servers[0], self.servers[1:]):
            return False
        for sentinel in self.sentinels:
            state = sentinel.client().sentinel_master(SERVICE)
            if int(state.get("num-other-sentinels", 0)) < 2 or int(state.get("num-slaves", 0)) < len(self.servers) - 1:
                return False
        return True

    def primary_port(self) -> int:
        """The port of the primary the Sentinels name now."""
        host, port = self.sentinels[0].client().sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def primary(self) -> ServerProcess:
        port = self.primary_port()
        return next(s for s in self.servers if s.port == port)

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """The new primary's port, once every Sentinel names one other than
        ``old_port`` and it answers as a primary."""
        def moved() -> int | None:
            ports = {int(s.client().sentinel_get_master_addr_by_name(SERVICE)[1]) for s in self.sentinels}
            if len(ports) != 1 or old_port in ports:
                return None
            port = ports.pop()
            server = next(s for s in self.servers if s.port == port)
            return port if server.client().info("replication").get("role") == "master" else None
        return int(_wait(moved, timeout, "failover away from %d" % old_port))

    def stop(self) -> None:
        _stop_all(self.sentinels + self.servers)


def wait_replica_online(server: ServerProcess, timeout: float = 30.0) -> None:
    """Until ``server`` (a new primary) has a replica in sync with it: what a
    write waiting for one replica (``ESLENGINE_REDIS_WAIT_REPLICAS=1``) needs."""
    def online() -> bool:
        info = server.client().info("replication")
        return any(isinstance(v, dict) and v.get("state") == "online" for k, v in info.items()
                   if k.startswith("slave"))
    _wait(online, timeout, "a replica in sync with %d" % server.port)


class RedisCluster:
    """``primaries`` primaries sharing the 16384 slots evenly, each with
    ``replicas`` replicas (which take over ``--cluster-node-timeout`` after
    their primary stops answering)."""

    def __init__(self, primaries: int = 3, *, replicas: int = 0, node_timeout_ms: int = 2000) -> None:
        self.nodes: list[ServerProcess] = []
        self.primaries: list[ServerProcess] = []
        bus_ports: list[int] = []
        try:
            for _ in range(primaries * (1 + replicas)):
                # The bus port is given: the default (port + 10000) may be taken or past 65535.
                bus_ports.append(free_port())
                self.nodes.append(ServerProcess(
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(node_timeout_ms), "--cluster-port", str(bus_ports[-1]),
                    # A replica takes over however long it was cut off from its primary.
                    "--cluster-replica-validity-factor", "0"))
            self.primaries = self.nodes[:primaries]
            share = SLOTS // primaries
            for i, node in enumerate(self.primaries):
                last = SLOTS - 1 if i == primaries - 1 else (i + 1) * share - 1
                node.client().execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
            first = self.nodes[0].client()
            for node, bus_port in zip(self.nodes[1:], bus_ports[1:]):
                first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)
            _wait(self._ready, 30, "cluster state ok")
            for i, replica in enumerate(self.nodes[primaries:]):
                primary = self.primaries[i % primaries]
                primary_id = primary.client().execute_command("CLUSTER", "MYID")
                # The replica must know the primary's id first (gossip).
                _wait(lambda r=replica, p=primary_id: r.client().execute_command("CLUSTER", "REPLICATE", p),
                      20, "replica of %d" % primary.port)
            for i, primary in enumerate(self.primaries):
                wait_replicas_up(primary, self.nodes[primaries + i::primaries])
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return "redis+cluster://%s" % ",".join("127.0.0.1:%d" % n.port for n in self.primaries)

    def _info(self, node: ServerProcess) -> dict[str, str]:
        info = node.client().execute_command("CLUSTER", "INFO")
        if isinstance(info, dict):
            return {k: str(v) for k, v in info.items()}
        return dict(line.split(":", 1) for line in info.splitlines() if ":" in line)

    def _ready(self) -> bool:
        for node in self.nodes:
            if not node.alive:
                continue
            info = self._info(node)
            if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(self.nodes):
                return False
        return True

    def primary_of(self, key: str) -> ServerProcess:
        """The node that owns ``key``'s slot now."""
        client = next(n for n in self.nodes if n.alive).client()
        slot = client.execute_command("CLUSTER", "KEYSLOT", key)
        for start, end, owner, *_ in client.execute_command("CLUSTER", "SLOTS"):
            if int(start) <= int(slot) <= int(end):
                return next(n for n in self.nodes if n.port == int(owner[1]))
        raise RuntimeError("slot %s is not covered" % slot)

    def wait_failover(self, key: str, old: ServerProcess, timeout: float = 30.0) -> ServerProcess:
        """The node that owns ``key``'s slot once one other than ``old`` does
        and every live node says the cluster is ok."""
        def moved() -> ServerProcess | None:
            owner = self.primary_of(key)
            if owner is old:
                return None
            if any(self._info(n).get("cluster_state") != "ok" for n in self.nodes if n.alive):
                return None
            return owner
        return _wait(moved, timeout, "failover of %s away from %d" % (key, old.port))  # type: ignore[no-any-return]

    def stop(self) -> None:
        _stop_all(self.nodes)

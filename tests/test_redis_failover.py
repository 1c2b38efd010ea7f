"""Redis failover: the API and a worker run as processes on
``redis+sentinel://`` (a primary watched by three Sentinels) or
``redis+cluster://`` (three primaries), a client posts calls at a steady
rate, and the primary holding the engine's keys is killed (SIGKILL)
half-way. Intake answers 503 with Retry-After while a replica takes over,
and 202 again after; every call it accepted reaches a final status and is
dialed once; nothing is restarted.

Each primary has two replicas and the engine waits for one of them to hold
each accepted job and each claim (``ESLENGINE_REDIS_WAIT_REPLICAS=1``):
replication is asynchronous, and without the wait a job accepted a moment
before the kill could be missing from the replica that takes over."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import gevent
import pytest

from eslengine.fakeswitch import FakeSwitch
from eslengine.stack import LocalStack
from eslengine.store import Keys
from tests.redisha import RedisCluster, SentinelSet, ServerProcess, wait_replica_online

pytestmark = pytest.mark.e2e

FINAL = ("completed", "failed", "cancelled")
DOWN_AFTER_MS = 1000
# What the Sentinels' failover is allowed on top of noticing the primary is
# down, and what the engine's clients may take after that to find the new
# primary (a command's retry, a connection timeout, the worker's back-off).
MARGIN = 4.0


@dataclass
class Post:
    at: float
    code: int
    id: str = ""
    retry_after: str | None = None
    error: str = ""


@dataclass
class Client:
    """Posts a call every ``interval`` seconds until stopped; keeps every answer."""

    stack: LocalStack
    interval: float = 0.05
    posts: list[Post] = field(default_factory=list)
    running: bool = True

    def run(self) -> None:
        n = 0
        while self.running:
            n += 1
            started = time.monotonic()
            try:
                code, doc, headers = self.stack.http(
                    "POST", "/v1/calls", {"a": "+1555123%04d" % (n % 10000), "b": "user/1000"}, timeout=15)
            except OSError as exc:  # the API itself must answer; recorded, then asserted on
                self.posts.append(Post(started, 0, error=repr(exc)))
            else:
                self.posts.append(Post(started, code, doc.get("id", ""), headers.get("Retry-After"),
                                       "" if code == 202 else str(doc)))
            gevent.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def accepted(self, since: float = 0.0) -> list[Post]:
        return [p for p in self.posts if p.code == 202 and p.at >= since]


class Sentinels:
    """A primary, two replicas and three Sentinels."""

    def __init__(self) -> None:
        self.set = SentinelSet(replicas=2, down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=3000)
        self.url = self.set.url

    def kill_primary(self, prefix: str) -> ServerProcess:
        primary = self.set.primary()
        primary.kill()
        return primary

    def wait_failover(self, prefix: str, old: ServerProcess) -> None:
        port = self.set.wait_failover(old.port, timeout=30)
        wait_replica_online(next(s for s in self.set.servers if s.port == port))

    def stop(self) -> None:
        self.set.stop()


class Cluster:
    """Three primaries with two replicas each."""

    def __init__(self) -> None:
        self.cluster = RedisCluster(3, replicas=2, node_timeout_ms=DOWN_AFTER_MS)
        self.url = self.cluster.url

    def kill_primary(self, prefix: str) -> ServerProcess:
        primary = self.cluster.primary_of(Keys(prefix).jobs)
        primary.kill()
        return primary

    def wait_failover(self, prefix: str, old: ServerProcess) -> None:
        wait_replica_online(self.cluster.wait_failover(Keys(prefix).jobs, old, timeout=30))

    def stop(self) -> None:
        self.cluster.stop()


@pytest.fixture(params=["sentinel", "cluster"])
def redis_ha(request: pytest.FixtureRequest) -> Iterator[Sentinels | Cluster]:
    ha = Sentinels() if request.param == "sentinel" else Cluster()
    yield ha
    ha.stop()


@pytest.fixture
def switch() -> Iterator[FakeSwitch]:
    sw = FakeSwitch(("127.0.0.1", 0), "pw-sentinel", ring_time=0.05, talk_time=0.3)
    sw.start()
    yield sw
    sw.stop()


@pytest.fixture
def stack(redis_ha: Sentinels | Cluster, switch: FakeSwitch) -> Iterator[LocalStack]:
    s = LocalStack(redis_url=redis_ha.url, switch_port=switch.address[1], switch_password="pw-sentinel", env={
        "ESLENGINE_KEY_PREFIX": "ha-%s" % uuid.uuid4().hex[:6],
        "ESLENGINE_FREESWITCH": "esl://:pw-sentinel@127.0.0.1:%d?sps=1000" % switch.address[1],
        "ESLENGINE_REDIS_WAIT_REPLICAS": "1",
    })
    s.start()
    yield s
    s.stop()
    s.cleanup()


def log_lines(stack: LocalStack, *words: str) -> str:
    """The last lines of the stack's logs with any of ``words`` (or a traceback) in them."""
    lines: list[str] = []
    for process in stack.processes.values():
        with open(process.log_path, errors="replace") as f:
            lines += ["%s: %s" % (process.name, line) for line in f
                      if "Traceback" in line or any(word in line for word in words)]
    return "".join(lines[-30:])


def wait_final(stack: LocalStack, job_id: str, deadline: float) -> dict[str, object]:
    while True:
        code, doc, _ = stack.http("GET", "/v1/calls/%s" % job_id)
        if code == 200 and doc["status"] in FINAL:
            return doc
        if time.monotonic() > deadline:
            raise AssertionError("call %s: %s %s\n%s" % (job_id, code, doc.get("status", doc),
                                                         log_lines(stack, job_id)))
        time.sleep(0.05)


def test_killing_the_primary_costs_a_bounded_503_window_and_no_accepted_call(
        redis_ha: Sentinels | Cluster, switch: FakeSwitch, stack: LocalStack) -> None:
    prefix = stack.engine_env["ESLENGINE_KEY_PREFIX"]
    client = Client(stack)
    poster = gevent.spawn(client.run)
    try:
        # Steady state first: calls are accepted and placed.
        deadline = time.monotonic() + 20
        while len(client.accepted()) < 20 or not switch.board.originates:
            assert time.monotonic() < deadline and not poster.dead, client.posts[-5:]
            gevent.sleep(0.05)

        old = redis_ha.kill_primary(prefix)
        killed_at = time.monotonic()
        # The failover is over when a replica has taken over and another is in
        # sync with it: every accepted job waits for one replica to hold it.
        redis_ha.wait_failover(prefix, old)
        promoted_at = time.monotonic()

        # Intake accepts again without anything being restarted, and keeps on.
        deadline = promoted_at + MARGIN + 10
        while len(client.accepted(since=promoted_at + MARGIN)) < 20:
            assert time.monotonic() < deadline, (client.posts[-2:], log_lines(stack, "unavailable", "Error"))
            gevent.sleep(0.05)
    finally:
        client.running = False
        poster.join(timeout=20)

    refused = [p for p in client.posts if p.code != 202]
    # Every answer that is not 202 is a 503 that says when to come back.
    assert all(p.code == 503 and p.retry_after is not None and int(p.retry_after) > 0 for p in refused), [
        (p.code, p.retry_after, p.error) for p in refused if p.code != 503 or not p.retry_after][:5]
    # Only while the primary was away (a request may have started a moment before the kill).
    assert all(killed_at - 1.0 <= p.at <= promoted_at + MARGIN for p in refused), [
        round(p.at - killed_at, 2) for p in refused]

    # Every accepted call, before, during and after the failover, ends, and was dialed once.
    accepted = client.accepted()
    deadline = time.monotonic() + 60
    docs = {p.id: wait_final(stack, p.id, deadline) for p in accepted}
    assert len(docs) == len(accepted)
    dialed = {job_id: len(switch.originates_with("eslengine_job_id", job_id)) for job_id in docs}
    assert sorted({n for n in dialed.values()}) == [1], {k: n for k, n in dialed.items() if n != 1}
    # Calls placed after the failover went through to the end.
    after = [docs[p.id] for p in client.accepted(since=promoted_at + MARGIN)]
    odd = [d for d in after if d["status"] != "completed"]
    assert after and not odd, ([(d["id"], d["status"], d.get("hangup_cause"), d.get("error")) for d in odd],
                               log_lines(stack, *[str(d["id"]) for d in odd]))
    # Nothing was restarted: the API and the worker are the processes started at first.
    assert all(p.proc.poll() is None for p in stack.processes.values())
    print("failover: %.2fs from kill to promotion; %d accepted, %d refused (503) over %.2fs" % (
        promoted_at - killed_at, len(accepted), len(refused),
        (max(p.at for p in refused) - min(p.at for p in refused)) if refused else 0.0))

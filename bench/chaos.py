"""Chaos run: thousands of jobs while workers and switch nodes are killed and
connections dropped; then every accepted job is accounted for.

    python -m bench.chaos [--jobs N] [--seconds S] [--quick] [--seed N]

Processes, all on 127.0.0.1 and all stopped by PID at the end (also on
Ctrl-C or an error): a private redis-server, two simulator nodes
(``eslengine fakeswitch --record FILE``), ``--workers`` workers whose
``ESLENGINE_FREESWITCH`` lists both nodes. Jobs go in with
``eslengine.enqueue``, paced over ``--seconds``; about a fifth of them dial a
number that is busy, never answers or fails temporarily.

Faults, on a seeded schedule printed as it runs:

``kill-worker``  SIGKILL a worker, start a new one
``pause-worker`` SIGSTOP a worker for longer than the heartbeat's lifetime
                 (the others adopt its calls and jobs), then SIGCONT it: it
                 must place, acknowledge and record nothing they took
``kill-node``    SIGKILL a simulator node, restart it on the same port after a pause
``drop-node``    SIGUSR1 a node: it drops every event-socket connection
``stall-node``   SIGUSR2 a node: it stalls command replies for ``--stall`` seconds
``drop-redis``   CLIENT KILL every Redis connection but the harness's own

Then no more faults; the run waits (at most ``--drain`` seconds) until every
job has a final status and counts, from the call records in Redis and the
simulators' journals (what each switch received, per job id and attempt):

accepted    jobs ``enqueue`` accepted
originated  distinct jobs some switch received an originate for
completed / failed (by hangup cause) / cancelled: final statuses in Redis
lost        accepted jobs with no final status after the wait, or with a final
            status although no switch ever received their originate (unless
            the record says the engine never sent one: no ``originated``
            flag, a cause or error recorded)
twice       jobs for which the switches received the same
            (job id, ``eslengine_attempt``) more than once (without the
            variable, any job originated more than once), or a new attempt
            while an earlier attempt's call was still up on a switch (its
            end: a failed result, the A leg's hangup, or the SIGKILL of the
            process holding it)

unknown     jobs that ended failed with hangup cause UNKNOWN (the engine could
            not find out what became of the call)
crash       jobs that ended with hangup cause CRASH (their switch node was
            killed while the call was up)

With ``--campaign N`` (default 300, ``--quick`` 100) a campaign of N
contacts runs through the same faults: its dispatcher lives in the workers
(one at a time, under a lease), so killing or pausing a worker kills or
pauses it too. About a tenth of its contacts are busy and retried once.
Each of its calls (every attempt of every contact) joins the accounting
above, and per contact:

campaign lost   contacts not done after the wait (the campaign never finished)
campaign twice  contacts connected more than once, or with an attempt
                originated twice (see twice above)

Each node keeps mod_db's table in a file (``--db-file``), as FreeSWITCH
keeps it in sqlite: a node killed and restarted still has the attempt
markers its calls wrote.

The last line is ``chaos: accepted=N originated=N completed=N failed=N
lost=N twice=N unknown=N crash=N contacts=N contacts_lost=N contacts_twice=N``;
the exit status is 1 when lost, twice, contacts_lost or contacts_twice is
not 0. Every
process's log and the journals stay in the run directory when the run fails
(or with ``--keep``).
"""

from __future__ import annotations

import argparse
import collections
import heapq
import json
import os
import random
import secrets
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

import eslengine
from eslengine.campaign.model import Contact, attempt_id, new_nonce, parse_campaign
from eslengine.config import Config
from eslengine.errors import JobExists, QueueUnavailable
from eslengine.fakeswitch.journal import read_journal
from eslengine.stack import LocalStack, Process, free_port, wait_for_port
from eslengine.status import FINAL
from eslengine.store import Keys
from eslengine.store.campaigns import CampaignStore
from eslengine.worker import Timings

FAULTS = ("kill-worker", "pause-worker", "kill-node", "drop-node", "stall-node", "drop-redis")
HARNESS_CLIENT = "eslengine-chaos-harness"
# Endings the simulator's built-in scenario fails: busy, no answer, temporary failure.
FAILING = (("a", "486"), ("a", "408"), ("a", "503"), ("b", "486"), ("b", "503"))


@dataclass
class Node:
    name: str
    port: int
    journal: str
    db_file: str = ""  # mod_db's table, kept across a kill and restart as FreeSWITCH keeps its sqlite file
    process: Process | None = None
    down_until: float = 0.0

    @property
    def up(self) -> bool:
        return self.process is not None and self.process.proc.poll() is None


@dataclass
class Chaos:
    jobs: int
    seconds: float
    seed: int
    workers: int = 3
    drain: float = 90.0
    stall: float = 2.0
    claim_idle_ms: int = 5000
    fault_every: float = 5.0
    keep: bool = False
    campaign: int = 0
    campaign_id: str = ""
    nonce: str = ""
    stack: LocalStack = field(default_factory=lambda: LocalStack(start_api=False, workers=0))
    nodes: list[Node] = field(default_factory=list)
    workers_up: dict[str, Process] = field(default_factory=dict)
    spawned: list[Process] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    faults_done: collections.Counter[str] = field(default_factory=collections.Counter)
    killed: dict[int, float] = field(default_factory=dict)  # simulator pid -> epoch seconds of its SIGKILL
    paused: set[int] = field(default_factory=set)  # pids of workers stopped by pause-worker, until their SIGCONT
    t0: float = 0.0
    _worker_seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _errors: list[BaseException] = field(default_factory=list)

    # ------------------------------------------------------------ output

    def say(self, text: str) -> None:
        print("[%7.2fs] %s" % (time.monotonic() - self.t0, text), flush=True)

    # ------------------------------------------------------------ processes

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        process = self.stack.spawn(name, argv, env)
        self.spawned.append(process)
        return process

    def start_node(self, node: Node) -> None:
        node.process = self.spawn(node.name, [
            sys.executable, "-m", "eslengine", "fakeswitch", "--bind", "127.0.0.1:%d" % node.port,
            "--password", self.stack.switch_password, "--sps", "1000", "--max-sessions", "20000",
            "--ring-time", "0.2", "--talk-time", "1.0", "--time-scale", "5",
            "--stall-seconds", str(self.stall), "--record", node.journal, "--db-file", node.db_file,
        ])
        wait_for_port(node.port, 20, node.process.proc)

    @property
    def engine_env(self) -> dict[str, str]:
        nodes = ",".join("esl://:%s@127.0.0.1:%d?sps=300&max_sessions=5000&name=%s"
                         % (self.stack.switch_password, n.port, n.name) for n in self.nodes)
        return {
            "ESLENGINE_REDIS_URL": self.stack.redis_url,
            "ESLENGINE_FREESWITCH": nodes,
            "ESLENGINE_API_KEYS": self.stack.api_key,
            "ESLENGINE_GATEWAY": "chaos",
            "ESLENGINE_ALLOW_UNVALIDATED_NUMBERS": "1",  # the fictional +1555 numbers
            "ESLENGINE_KEY_PREFIX": "eslengine",
            "ESLENGINE_CLAIM_IDLE_MS": str(self.claim_idle_ms),
            "ESLENGINE_RECONNECT_MAX_DELAY": "1",
            "ESLENGINE_CONCURRENCY": "500",
            "ESLENGINE_LOG_LEVEL": "INFO",
        }

    def start_worker(self) -> Process:
        self._worker_seq += 1
        name = "worker%d" % self._worker_seq
        process = self.spawn(name, [sys.executable, "-m", "eslengine", "worker"], self.engine_env)
        self.workers_up[name] = process
        return process

    def start(self) -> None:
        self.stack.start_redis()
        self.nodes = [Node("fs%d" % i, free_port(), os.path.join(self.stack.dir, "fs%d.received.jsonl" % i),
                           os.path.join(self.stack.dir, "fs%d.db.jsonl" % i))
                      for i in (1, 2)]
        for node in self.nodes:
            self.start_node(node)
        for _ in range(self.workers):
            self.start_worker()
        deadline = time.monotonic() + 30
        for process in list(self.workers_up.values()):
            while process.log().count("event socket connected") < len(self.nodes):
                if process.proc.poll() is not None:
                    raise RuntimeError("%s exited: %s" % (process.name, process.log()[-2000:]))
                if time.monotonic() > deadline:
                    raise TimeoutError("%s did not connect to both nodes: %s" % (process.name, process.log()[-2000:]))
                time.sleep(0.05)

    def stop(self, groups: tuple[int, ...] = (0, 1, 2)) -> None:
        """Every process ever started, by PID: workers (0), nodes (1), then
        Redis (2)."""
        def rank(p: Process) -> int:
            return 0 if p.name.startswith("worker") else 2 if p.name == "redis" else 1

        live = [p for p in self.spawned if p.proc.poll() is None]
        live += [p for p in self.stack.processes.values() if p not in live and p.proc.poll() is None]
        for group in groups:
            members = [p for p in live if rank(p) == group]
            for p in members:
                if group == 0:
                    p.proc.send_signal(signal.SIGCONT)  # a paused worker would not see the SIGTERM
                p.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for p in members:
                try:
                    p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except Exception:
                    p.kill()

    # ------------------------------------------------------------ jobs

    def job(self, rng: random.Random, i: int) -> dict[str, Any]:
        a = "+1555%03d%04d" % (i // 10000 % 1000, i % 10000)
        b = "+1555%03d%04d" % (500 + i // 10000 % 500, i % 10000)
        if rng.random() < 0.2:
            party, ending = rng.choice(FAILING)
            if party == "a":
                a = a[:-3] + ending
            else:
                b = b[:-3] + ending
        else:
            # never end in a failing suffix by accident
            a, b = (n[:-3] + "1" + n[-2:] if n[-3:] in ("486", "408", "503", "404") else n for n in (a, b))
        return {"id": str(uuid.uuid4()), "a": a, "b": b, "timeout": 5, "variables": {"chaos": str(i)}}

    def submit(self, client: redis.Redis, rng: random.Random) -> None:
        interval = self.seconds / max(1, self.jobs)
        # The workers' settings, not this shell's: the same policy and prefix.
        config = Config.from_env(self.engine_env)
        start = time.monotonic()
        for i in range(self.jobs):
            if self._stop.wait(max(0.0, start + i * interval - time.monotonic())):
                return
            doc = self.job(rng, i)
            deadline = time.monotonic() + 10
            while True:
                try:
                    eslengine.enqueue(client, doc, config=config)
                    self.accepted.append(doc["id"])
                    break
                except JobExists:
                    # an earlier try went through and its reply was lost
                    self.accepted.append(doc["id"])
                    break
                except QueueUnavailable as exc:
                    if time.monotonic() > deadline:
                        self.refused.append((doc["id"], str(exc)))
                        break
                    time.sleep(0.05)

    # ------------------------------------------------------------ the campaign

    def start_campaign(self, client: redis.Redis, rng: random.Random) -> None:
        config = Config.from_env(self.engine_env)
        store = CampaignStore(client, Keys("eslengine"))
        campaign = parse_campaign({
            "name": "chaos", "call": {"b": "+15558880001", "timeout": 5},
            "pacing": {"cps": max(1.0, round(self.campaign / (self.seconds * 0.6), 2)), "max_concurrent": 100},
            "retry": {"on": ["busy"], "delay": "10s", "max_retries": 1}}, config)
        self.campaign_id = uuid.uuid4().hex
        self.nonce = new_nonce()
        store.create(self.campaign_id, campaign, nonce=self.nonce)
        contacts = []
        for i in range(self.campaign):
            number = "+1557%07d" % i
            if rng.random() < 0.1:
                number = number[:-3] + "486"
            elif number.endswith(("486", "408", "503", "404")):
                number = number[:-3] + "100"
            contacts.append(Contact("k%d" % i, (number,)))
        for i in range(0, len(contacts), 1000):
            store.add_contacts(self.campaign_id, contacts[i:i + 1000])
        store.act(self.campaign_id, "start")
        self.say("campaign %s: %d contacts, %.2f calls/s" % (self.campaign_id, self.campaign, campaign.cps))

    def wait_campaign(self, client: redis.Redis) -> dict[str, dict[str, str]]:
        """Wait (at most ``drain`` seconds and the dispatcher's sweep) for the
        campaign to finish; its contacts, and every call it placed joins
        the jobs accounted for."""
        store = CampaignStore(client, Keys("eslengine"))
        deadline = time.monotonic() + self.drain + 40
        last = ""
        while True:
            shown = store.show(self.campaign_id) or {}
            line = "campaign %s: %s" % (shown.get("state"), shown.get("counters"))
            if line != last:
                self.say(line)
                last = line
            if shown.get("state") == "finished" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        contacts = {"k%d" % i: store.contact(self.campaign_id, "k%d" % i) for i in range(self.campaign)}
        for contact_id, found in contacts.items():
            self.accepted += [attempt_id(self.campaign_id, contact_id, n, self.nonce)
                              for n in range(1, int(found.get("tries") or 0) + 1)]
        return contacts

    # ------------------------------------------------------------ faults

    def schedule(self, rng: random.Random) -> list[tuple[float, str]]:
        """(offset, fault) pairs: every kind at least once when there is
        room, the rest drawn at random."""
        count = max(len(FAULTS), int(self.seconds / self.fault_every))
        kinds = list(FAULTS) + [rng.choice(FAULTS) for _ in range(count - len(FAULTS))]
        rng.shuffle(kinds)
        span = self.seconds * 0.9
        times = sorted(rng.uniform(1.0, span) for _ in kinds)
        return list(zip((round(t, 2) for t in times), kinds))

    def inject(self, plan: list[tuple[float, str]], rng: random.Random, client: redis.Redis) -> None:
        start = time.monotonic()
        pending: list[tuple[float, int, str, Any]] = []
        for seq, (offset, kind) in enumerate(plan):
            heapq.heappush(pending, (start + offset, seq, kind, None))
        seq = len(plan)
        while pending:
            at, _, kind, arg = heapq.heappop(pending)
            if self._stop.wait(max(0.0, at - time.monotonic())):
                return
            try:
                follow_up = self.fault(kind, arg, rng, client)
            except Exception as exc:  # a fault that could not be injected is reported, the run goes on
                self.say("fault %s failed: %s" % (kind, exc))
                continue
            if follow_up is not None:
                seq += 1
                heapq.heappush(pending, (time.monotonic() + follow_up[0], seq, follow_up[1], follow_up[2]))

    def fault(self, kind: str, arg: Any, rng: random.Random,
              client: redis.Redis) -> tuple[float, str, Any] | None:
        """Inject one fault; returns a follow-up (delay, kind, arg) or None."""
        up = [n for n in self.nodes if n.up]
        if kind == "kill-worker":
            name = rng.choice(sorted(self.workers_up))
            victim = self.workers_up.pop(name)
            victim.kill()
            fresh = self.start_worker()
            self.say("kill-worker  SIGKILL %s (pid %d); started %s (pid %d)"
                     % (name, victim.proc.pid, fresh.name, fresh.proc.pid))
        elif kind == "pause-worker":
            running = sorted(n for n, p in self.workers_up.items() if p.proc.pid not in self.paused)
            if not running:
                self.say("pause-worker skipped: every worker is paused")
                return None
            name = rng.choice(running)
            victim = self.workers_up[name]
            self.paused.add(victim.proc.pid)
            heartbeat = Timings().heartbeat_ttl  # the workers run with the default timings
            pause = round(rng.uniform(heartbeat + 2.0, heartbeat + 8.0), 2)
            victim.proc.send_signal(signal.SIGSTOP)
            self.say("pause-worker SIGSTOP %s (pid %d); SIGCONT in %.2fs" % (name, victim.proc.pid, pause))
            self.faults_done[kind] += 1
            return pause, "resume-worker", victim
        elif kind == "resume-worker":
            victim = arg
            self.paused.discard(victim.proc.pid)
            victim.proc.send_signal(signal.SIGCONT)
            self.say("resume-worker SIGCONT %s (pid %d)%s" % (victim.name, victim.proc.pid,
                                                            "" if victim.proc.poll() is None else ", already gone"))
        elif kind == "kill-node":
            if len(up) < len(self.nodes):
                return self.fault("drop-node", None, rng, client)
            node = rng.choice(up)
            assert node.process is not None
            pid = node.process.proc.pid
            node.process.kill()
            self.killed[pid] = time.time()
            pause = round(rng.uniform(0.5, 3.0), 2)
            self.say("kill-node    SIGKILL %s (pid %d); restart in %.2fs" % (node.name, pid, pause))
            self.faults_done[kind] += 1
            return pause, "restart-node", node
        elif kind == "restart-node":
            node = arg
            self.start_node(node)
            assert node.process is not None
            self.say("restart-node %s on port %d (pid %d)" % (node.name, node.port, node.process.proc.pid))
        elif kind in ("drop-node", "stall-node"):
            if not up:
                self.say("%s skipped: no node up" % kind)
                return None
            node = rng.choice(up)
            assert node.process is not None
            node.process.proc.send_signal(signal.SIGUSR1 if kind == "drop-node" else signal.SIGUSR2)
            self.say("%-12s %s %s (pid %d)" % (kind, "SIGUSR1" if kind == "drop-node" else "SIGUSR2", node.name,
                                              node.process.proc.pid))
        elif kind == "drop-redis":
            killed = 0
            for entry in client.client_list():
                if entry.get("name") != HARNESS_CLIENT and entry.get("cmd") != "client|list":
                    killed += int(client.execute_command("CLIENT", "KILL", "ID", entry["id"]))
            self.say("drop-redis   CLIENT KILL: %d engine connection(s) closed" % killed)
        else:
            raise ValueError("unknown fault %r" % kind)
        self.faults_done[kind] += 1
        return None

    # ------------------------------------------------------------ run

    def run(self) -> int:
        rng = random.Random(self.seed)
        plan = self.schedule(rng)
        print("chaos: seed=%d jobs=%d seconds=%.0f workers=%d nodes=2 claim_idle_ms=%d dir=%s"
              % (self.seed, self.jobs, self.seconds, self.workers, self.claim_idle_ms, self.stack.dir), flush=True)
        print("chaos: schedule: " + ", ".join("%.1fs %s" % p for p in plan), flush=True)
        self.t0 = time.monotonic()
        self.start()
        self.say("up: redis :%d, %s, %d workers" % (
            self.stack.redis_port, ", ".join("%s :%d" % (n.name, n.port) for n in self.nodes), len(self.workers_up)))
        client = self.client()
        if self.campaign:
            self.start_campaign(client, random.Random(rng.random()))
        threads = [
            self._thread("submit", self.submit, self.client(), random.Random(rng.random())),
            self._thread("inject", self.inject, plan, random.Random(rng.random()), client),
        ]
        for thread in threads:
            thread.join(self.seconds + 120)
        if self._errors:
            raise self._errors[0]
        self.say("submitted %d job(s) (%d refused); faults: %s" % (
            len(self.accepted), len(self.refused), dict(sorted(self.faults_done.items()))))
        for node in self.nodes:
            if not node.up:
                self.start_node(node)
                self.say("restart-node %s (left down by the schedule)" % node.name)
        contacts = self.wait_campaign(client) if self.campaign else {}
        records = self.wait_final(client)
        cdrs = [f for _, f in client.xrange(Keys("eslengine").cdr)] if self.campaign else []
        self.stop(groups=(0, 1))
        report = Report.build(self.accepted, records, {n.name: read_journal(n.journal) for n in self.nodes},
                              self.history(client), self.killed)
        report.contacts(self.campaign_id, contacts, cdrs, self.nonce)
        code = report.print(self)
        self.stop()
        if code == 0 and not self.keep:
            self.stack.cleanup()
        return code

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.stack.redis_url, decode_responses=True, socket_timeout=10,
                                    client_name=HARNESS_CLIENT)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as exc:  # re-raised by run()
                self._errors.append(exc)
                self._stop.set()

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def records(self, client: redis.Redis, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        keys = Keys("eslengine")
        out: dict[str, dict[str, str]] = {}
        ids = list(ids)
        for i in range(0, len(ids), 500):
            pipe = client.pipeline(transaction=False)
            for job_id in ids[i:i + 500]:
                pipe.hgetall(keys.call(job_id))
            out.update(zip(ids[i:i + 500], pipe.execute()))
        return out

    def history(self, client: redis.Redis) -> Callable[[str], list[str]]:
        keys = Keys("eslengine")
        return lambda job_id: list(client.lrange(keys.history(job_id), 0, -1))

    def wait_final(self, client: redis.Redis) -> dict[str, dict[str, str]]:
        deadline = time.monotonic() + self.drain
        waiting = list(self.accepted)
        records: dict[str, dict[str, str]] = {}
        last = -1
        while True:
            records.update(self.records(client, waiting))
            waiting = [j for j in waiting if records[j].get("status") not in FINAL]
            if len(waiting) != last:
                self.say("%d job(s) without a final status" % len(waiting))
                last = len(waiting)
            if not waiting or time.monotonic() > deadline:
                return records
            time.sleep(0.5)


@dataclass
class Report:
    accepted: int
    originated: int
    statuses: collections.Counter[str]
    failed_causes: collections.Counter[str]
    completed_causes: collections.Counter[str]
    lost: dict[str, str]
    twice: dict[str, list[dict[str, Any]]]
    disagree: dict[str, str]
    unobserved: dict[str, str]
    overlapping: dict[str, str]
    placed_more: int
    same_attempt: int
    strangers: set[str]
    attempts_seen: bool
    switch: dict[str, list[dict[str, Any]]]
    records: dict[str, dict[str, str]]
    history: Callable[[str], list[str]]
    contact_count: int = 0
    contacts_lost: dict[str, str] = field(default_factory=dict)
    contacts_twice: dict[str, str] = field(default_factory=dict)

    def contacts(self, campaign_id: str, contacts: dict[str, dict[str, str]], cdrs: list[dict[str, str]],
                 nonce: str = "") -> None:
        """The per-contact checks of a campaign (see the module docstring)."""
        self.contact_count = len(contacts)
        connected = collections.Counter(c.get("contact") for c in cdrs
                                        if c.get("campaign") == campaign_id and c.get("status") == "completed")
        for contact_id, found in contacts.items():
            tries = int(found.get("tries") or 0)
            if found.get("state") != "done":
                self.contacts_lost[contact_id] = "%s after %d call(s)" % (found.get("state"), tries)
            placed = [attempt_id(campaign_id, contact_id, n, nonce) for n in range(1, tries + 1)]
            if connected[contact_id] > 1:
                self.contacts_twice[contact_id] = "connected %d times" % connected[contact_id]
            elif any(j in self.twice for j in placed):
                self.contacts_twice[contact_id] = "an attempt originated twice"

    @classmethod
    def build(cls, accepted: list[str], records: dict[str, dict[str, str]],
              journals: dict[str, list[dict[str, Any]]],
              history: Callable[[str], list[str]], killed: dict[int, float]) -> Report:
        received: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        results: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        hangups: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        switch: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for node, entries in journals.items():
            for entry in entries:
                job_id = entry.get("job_id")
                if not job_id:
                    continue
                entry = {**entry, "node": node}
                switch[job_id].append(entry)
                if entry.get("kind") == "originate":
                    received[job_id].append(entry)
                elif entry.get("kind") == "result":
                    results[job_id].append(entry)
                elif entry.get("kind") == "hangup":
                    hangups[job_id].append(entry)
        statuses: collections.Counter[str] = collections.Counter()
        failed_causes: collections.Counter[str] = collections.Counter()
        completed_causes: collections.Counter[str] = collections.Counter()
        lost: dict[str, str] = {}
        disagree: dict[str, str] = {}
        unobserved: dict[str, str] = {}
        overlapping: dict[str, str] = {}
        for job_id in accepted:
            record = records.get(job_id, {})
            status = record.get("status", "")
            statuses[status or "(no record)"] += 1
            if status == "failed":
                failed_causes[record.get("hangup_cause") or "(none)"] += 1
            elif status == "completed":
                completed_causes[record.get("hangup_cause") or "(none)"] += 1
            if status not in FINAL:
                lost[job_id] = "no final status (%s)" % (status or "no record")
            elif not received.get(job_id):
                never_sent = record.get("originated") != "1" and bool(record.get("hangup_cause") or record.get("error"))
                if not never_sent:
                    lost[job_id] = "%s %s but no switch received its originate" % (status, record.get("hangup_cause", ""))
            placed = sorted(received.get(job_id, []), key=lambda e: e["t"])
            if status in FINAL and placed:
                seen = _switch_outcome(placed[-1], switch[job_id])
                if seen is not None:
                    engine = (status, record.get("hangup_cause", ""))
                    if engine[1] == "UNKNOWN" and engine[0] == "failed":
                        unobserved[job_id] = "switch %s %s, engine failed UNKNOWN" % seen
                    elif engine[0] != seen[0] or (engine[0] == "failed" and engine[1] != seen[1]):
                        disagree[job_id] = "switch %s %s, engine %s %s" % (seen + engine)
            for prev, nxt in zip(placed, placed[1:]):
                ended = _call_end(prev, switch[job_id], killed)
                if ended is None or nxt["t"] < ended:
                    overlapping[job_id] = "attempt %s placed at %.3f while attempt %s (placed %.3f) was up until %s" % (
                        nxt.get("attempt"), nxt["t"], prev.get("attempt"), prev["t"],
                        "its end unknown" if ended is None else "%.3f" % ended)
        twice: dict[str, list[dict[str, Any]]] = {}
        for job_id, entries in received.items():
            per_attempt = collections.Counter(e.get("attempt") for e in entries)
            if any(n > 1 for n in per_attempt.values()) or job_id in overlapping:
                twice[job_id] = entries
        same_attempt = sum(1 for j in twice if j not in overlapping)
        accepted_set = set(accepted)
        return cls(
            accepted=len(accepted),
            originated=sum(1 for j in received if j in accepted_set),
            statuses=statuses,
            failed_causes=failed_causes,
            completed_causes=completed_causes,
            lost=lost,
            twice=twice,
            disagree=disagree,
            unobserved=unobserved,
            overlapping=overlapping,
            same_attempt=same_attempt,
            placed_more=sum(1 for j, es in received.items() if len(es) > 1 and j in accepted_set),
            strangers={j for j in received if j not in accepted_set},
            attempts_seen=any(e.get("attempt") is not None for es in received.values() for e in es),
            switch=switch,
            records=records,
            history=history,
        )

    def print(self, chaos: Chaos) -> int:
        print()
        print("%-28s %6d" % ("accepted", self.accepted))
        print("%-28s %6d" % ("originated (switch side)", self.originated))
        for status in ("completed", "failed", "cancelled"):
            print("%-28s %6d" % (status, self.statuses.get(status, 0)))
            if status == "failed":
                for cause, n in self.failed_causes.most_common():
                    print("  %-26s %6d" % (cause, n))
        others = {s: n for s, n in self.statuses.items() if s not in FINAL}
        if others:
            print("%-28s %6d  %s" % ("not final", sum(others.values()), dict(others)))
        print("%-28s %6d" % ("lost", len(self.lost)))
        print("%-28s %6d" % ("originated twice", len(self.twice)))
        print("%-28s %6d  (%s)" % ("  same job id and attempt", self.same_attempt,
                                   "per eslengine_attempt" if self.attempts_seen
                                   else "no eslengine_attempt seen: any second originate counts"))
        print("%-28s %6d" % ("  while an earlier call was up", len(self.overlapping)))
        print("%-28s %6d" % ("originated more than once", self.placed_more))
        print("%-28s %6d" % ("outcome differs from switch", len(self.disagree)))
        print("%-28s %6d" % ("UNKNOWN, switch knew", len(self.unobserved)))
        if self.strangers:
            print("%-28s %6d" % ("originates of unknown jobs", len(self.strangers)))
        if self.contact_count:
            print("%-28s %6d" % ("campaign contacts", self.contact_count))
            print("%-28s %6d" % ("  not done (lost)", len(self.contacts_lost)))
            print("%-28s %6d" % ("  called twice", len(self.contacts_twice)))
            for contact_id, why in [*self.contacts_lost.items(), *self.contacts_twice.items()][:10]:
                print("  contact %s: %s" % (contact_id, why))
        print("%-28s %s" % ("faults", dict(sorted(chaos.faults_done.items()))))
        if chaos.refused:
            print("%-28s %6d  e.g. %s" % ("refused by enqueue", len(chaos.refused), chaos.refused[0][1]))
        for title, items in (("lost", self.lost), ("overlapping", self.overlapping),
                             ("outcome differs", self.disagree), ("unknown", self.unobserved)):
            for job_id, why in list(items.items())[:10]:
                self.detail(title, job_id, why)
        for job_id in [j for j in self.twice if j not in self.overlapping][:10]:
            self.detail("twice", job_id, "%d originates" % len(self.twice[job_id]))
        unknown = [j for j, r in self.records.items() if (r.get("status"), r.get("hangup_cause")) == ("failed", "UNKNOWN")
                   and j not in self.unobserved]
        for job_id in unknown[:10]:
            self.detail("UNKNOWN", job_id, self.records[job_id].get("error") or "")
        completed = self.statuses.get("completed", 0)
        failed = self.statuses.get("failed", 0)
        bad = bool(self.lost or self.twice or self.contacts_lost or self.contacts_twice)
        if bad or chaos.keep:
            path = os.path.join(chaos.stack.dir, "chaos-report.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump({"seed": chaos.seed, "lost": self.lost, "twice": self.twice, "disagree": self.disagree,
                       "overlapping": self.overlapping, "unobserved": self.unobserved,
                           "records": {j: self.records.get(j, {}) for j in [*self.lost, *self.twice, *self.overlapping]},
                           "switch": {j: self.switch.get(j, []) for j in [*self.lost, *self.twice, *self.overlapping]}},
                          fh, indent=1)
            print("logs, journals and chaos-report.json kept in %s" % chaos.stack.dir)
        print("chaos: accepted=%d originated=%d completed=%d failed=%d lost=%d twice=%d unknown=%d crash=%d "
              "contacts=%d contacts_lost=%d contacts_twice=%d"
              % (self.accepted, self.originated, completed, failed, len(self.lost), len(self.twice),
                 self.failed_causes.get("UNKNOWN", 0), self.failed_causes.get("CRASH", 0)
                 + self.completed_causes.get("CRASH", 0), self.contact_count, len(self.contacts_lost),
                 len(self.contacts_twice)), flush=True)
        return 1 if bad else 0

    def detail(self, title: str, job_id: str, why: str) -> None:
        record = self.records.get(job_id, {})
        print("  %s %s: %s" % (title, job_id, why))
        print("    redis: status=%s cause=%s node=%s attempts=%s originated=%s error=%s" % (
            record.get("status"), record.get("hangup_cause"), record.get("node"), record.get("attempts"),
            record.get("originated"), record.get("error")))
        try:
            print("    history: %s" % " | ".join(self.history(job_id)))
        except redis.RedisError:
            pass
        for entry in sorted(self.switch.get(job_id, []), key=lambda e: e["t"]):
            what = {"originate": "bgapi %s" % entry.get("bgapi_job_uuid"), "result": entry.get("result"),
                    "hangup": "leg %s %s answered=%s" % (entry.get("leg"), entry.get("cause"), entry.get("answered"))}
            print("    switch %s pid %s %.3f attempt %s: %-9s %s" % (
                entry["node"], entry["pid"], entry["t"], entry.get("attempt"), entry.get("kind"),
                what.get(str(entry.get("kind")), "")))


def _same_call(placed: dict[str, Any], entry: dict[str, Any]) -> bool:
    return (entry["node"], entry.get("pid"), entry.get("attempt")) == (placed["node"], placed.get("pid"),
                                                                         placed.get("attempt")) \
        and entry["t"] >= placed["t"]


def _switch_outcome(placed: dict[str, Any], entries: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(status, cause) of one originate as its switch saw it, or None when
    the switch did not see the end (its process was killed first)."""
    mine = sorted((e for e in entries if _same_call(placed, e)), key=lambda e: e["t"])
    result = next((str(e.get("result", "")) for e in mine if e.get("kind") == "result"), None)
    if result is None:
        return None
    if not result.startswith("+OK"):
        return "failed", result.split()[-1] if result.split() else ""
    a_end = next((e for e in mine if e.get("kind") == "hangup" and e.get("leg") == "a"), None)
    if a_end is None:
        return None
    b_ends = [e for e in mine if e.get("kind") == "hangup" and e.get("leg") == "b"]
    if any(e.get("answered") for e in b_ends):
        return "completed", str(a_end.get("cause"))
    return "failed", str(b_ends[-1].get("cause") if b_ends else a_end.get("cause"))


def _call_end(placed: dict[str, Any], entries: list[dict[str, Any]], killed: dict[int, float]) -> float | None:
    """When the call of one originate was over on its switch: its failed
    result, its A leg's hangup, or its process's SIGKILL; None if unknown."""
    for e in sorted((e for e in entries if _same_call(placed, e)), key=lambda e: e["t"]):
        if e.get("kind") == "result" and not str(e.get("result", "")).startswith("+OK"):
            return float(e["t"])
        if e.get("kind") == "hangup" and e.get("leg") == "a":
            return float(e["t"])
    return killed.get(int(placed.get("pid") or 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 jobs over 20 seconds")
    parser.add_argument("--jobs", type=int, default=None, help="jobs to submit (3000; --quick 300)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="seconds to submit and inject faults over (150; --quick 20)")
    parser.add_argument("--seed", type=int, default=None, help="fault schedule and job mix (random, printed)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--drain", type=float, default=None,
                        help="seconds to wait for final statuses after the last fault (90; --quick 25)")
    parser.add_argument("--fault-every", type=float, default=None, help="mean seconds between faults (5; --quick 3)")
    parser.add_argument("--claim-idle-ms", type=int, default=5000, help="ESLENGINE_CLAIM_IDLE_MS of the workers")
    parser.add_argument("--keep", action="store_true", help="keep the run directory even when the run passes")
    parser.add_argument("--campaign", type=int, default=None,
                        help="contacts of a campaign run through the faults (300; --quick 100; 0: none)")
    args = parser.parse_args(argv)
    chaos = Chaos(
        jobs=args.jobs if args.jobs is not None else (300 if args.quick else 3000),
        seconds=args.seconds if args.seconds is not None else (20.0 if args.quick else 150.0),
        seed=args.seed if args.seed is not None else secrets.randbelow(1_000_000),
        workers=args.workers,
        drain=args.drain if args.drain is not None else (25.0 if args.quick else 90.0),
        fault_every=args.fault_every if args.fault_every is not None else (3.0 if args.quick else 5.0),
        claim_idle_ms=args.claim_idle_ms,
        keep=args.keep,
        campaign=args.campaign if args.campaign is not None else (100 if args.quick else 300),
    )
    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        return chaos.run()
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping everything it started", file=sys.stderr)
        return 130
    finally:
        chaos._stop.set()
        chaos.stop()
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())

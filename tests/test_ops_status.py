"""``eslengine status``, ``nodes`` and ``calls``: what running workers,
the simulator and Redis show through them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

import gevent
import pytest

from eslengine import dnc, ops
from eslengine.calls import parse_request
from eslengine.campaign.model import Contact, parse_campaign
from eslengine.config import Node
from eslengine.errors import DoNotCall
from eslengine.store import Keys
from eslengine.store.campaigns import CampaignStore
from eslengine.worker import Timings
from tests.conftest import RedisServer, free_port
from tests.rig import Rig, wait_for

# Short heartbeats, so that a worker stopped dead is gone within a second or two.
FAST = Timings(heartbeat_ttl=1.5, lease_margin=0.5)


def cli(*args: str, rig: Rig | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    if rig is not None:
        node = rig.config.nodes[0]
        clean.update(ESLENGINE_REDIS_URL=rig.config.redis_url, ESLENGINE_KEY_PREFIX=rig.config.key_prefix,
                     ESLENGINE_FREESWITCH="esl://:s3cret@%s:%d?name=%s&sps=%d&max_sessions=%d" % (
                         node.host, node.port, node.label, node.sps, node.max_sessions))
    return subprocess.run([sys.executable, "-m", "eslengine", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=60, stdin=subprocess.DEVNULL)


def named(rig: Rig, name: str) -> Rig:
    """The rig's node under a name, with the URL's limits the tests read."""
    rig.config = replace(rig.config, nodes=(replace(rig.config.nodes[0], name=name, sps=40, max_sessions=900),))
    return rig


def document(rig: Rig) -> dict[str, Any]:
    return ops.status_document(rig.config, rig.queue)


def worker_entry(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The worker's entry; {} before it has said anything."""
    return next((w for w in doc["workers"] if w["worker"] == name), {})


def test_status_shows_a_running_worker_its_node_and_the_switchs_own_limits(redis_server: RedisServer,
                                                                          key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix, sps=25, max_sessions=300, ring_time=0.05, talk_time=30), "fs1")
    try:
        worker = rig.start_worker()
        wait_for(lambda: document(rig)["ready"])
        job_id = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job_id)["status"] == "bridged")  # type: ignore[index]
        # Each worker says what it holds on a node every second.
        doc = wait_for(lambda: (d := document(rig)) and worker_entry(d, worker.consumer)["calls"] == 1
                       and d["nodes"][0]["sessions"] == 2 and d)
        assert doc["version"] == 1 and doc["ready"] is True
        [node] = doc["nodes"]
        assert node["node"] == "fs1" and node["up"] is True
        # The URL says 40/900; the switch says 25/300; the workers pace by the lower.
        assert node["url"] == {"sps": 40, "max_sessions": 900}
        assert node["switch"] == {"sps": 25, "max_sessions": 300}
        assert (node["sps"], node["max_sessions"]) == (25, 300)
        assert node["sessions"] == 2  # the two legs of the bridged call
        [row] = node["workers"]
        assert row["worker"] == worker.consumer and row["connected"] is True and row["held"] == 2
        assert (row["switch_sps"], row["switch_max_sessions"]) == (25, 300)
        entry = worker_entry(doc, worker.consumer)
        assert entry["state"] == "running" and entry["nodes"] == {"fs1": "up"}
        assert entry["pid"] == os.getpid() and entry["pool"] == rig.config.concurrency
        assert entry["version"] and entry["started_at"] and entry["uptime"] is not None
        assert entry["seen_ago"] is not None and entry["seen_ago"] < 10
        assert doc["queue"]["waiting"] == 0 and doc["queue"]["dead_letters"] == 0

        text = cli("status", rig=rig)
        assert text.returncode == 0, text.stderr
        assert ": ready" in text.stdout.splitlines()[0]
        node_line = next(line for line in text.stdout.splitlines() if line.startswith("fs1 "))
        assert node_line.split() == ["fs1", "up", "2/300", "40/25", "900/300", "1"]
        worker_line = next(line for line in text.stdout.splitlines() if line.startswith(worker.consumer))
        assert worker_line.split()[1:2] == ["running"] and "fs1:up" in worker_line

        shown = cli("status", "--json", rig=rig)
        assert shown.returncode == 0, shown.stderr
        parsed = json.loads(shown.stdout)
        assert set(parsed) == {"version", "at", "ready", "nodes", "workers", "queue", "campaigns", "do_not_call"}
        assert parsed["nodes"][0]["switch"] == {"sps": 25, "max_sessions": 300}

        nodes = cli("nodes", rig=rig)
        assert nodes.returncode == 0, nodes.stderr
        lines = nodes.stdout.splitlines()
        assert lines[0].startswith("fs1\tsps 40\tmax_sessions 900\t1 worker(s)")
        assert lines[0].endswith("\tswitch sps 25 max_sessions 300")
        assert lines[1].startswith("  %s\tholds 2 of its 300 sessions\t" % worker.consumer)
        assert lines[1].endswith("\tconnected")
    finally:
        rig.close()


def test_a_worker_stopped_dead_shows_as_gone_and_a_drained_one_as_stopped(redis_server: RedisServer,
                                                                          key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix), "fs1")
    try:
        crashed = rig.start_worker(timings=FAST)
        drained = rig.start_worker(timings=FAST)
        wait_for(lambda: all(worker_entry(document(rig), w.consumer).get("nodes") == {"fs1": "up"}
                             for w in (crashed, drained)))
        rig.crash(crashed)
        doc = wait_for(lambda: (d := document(rig)) and worker_entry(d, crashed.consumer).get("state") == "gone" and d)
        gone = worker_entry(doc, crashed.consumer)
        # What it last said stays, its nodes down; the live one still runs.
        assert gone["nodes"] == {"fs1": "down"} and gone["uptime"] is None and gone["pid"] == os.getpid()
        assert worker_entry(doc, drained.consumer)["state"] == "running"
        # The live one adopts it, which takes it off the workers set: still shown, gone.
        workers = Keys(key_prefix).workers
        wait_for(lambda: not rig.client.sismember(workers, crashed.consumer))
        assert worker_entry(document(rig), crashed.consumer)["state"] == "gone"
        drained.stop(grace=1)
        rig.workers.remove(drained)
        doc = document(rig)
        assert worker_entry(doc, drained.consumer)["state"] == "stopped"
        assert doc["ready"] is False and doc["nodes"][0]["up"] is False
        text = cli("status", rig=rig)
        assert text.returncode == 0, text.stderr
        assert "NOT READY" in text.stdout.splitlines()[0]
        states = {line.split()[0]: line.split()[1] for line in text.stdout.splitlines()
                  if line.startswith((crashed.consumer, drained.consumer))}
        assert states == {crashed.consumer: "gone", drained.consumer: "stopped"}
        # Once its info has expired, a gone worker nobody lists any more is not shown.
        rig.client.delete(Keys(key_prefix).worker_info(crashed.consumer))
        assert [w["worker"] for w in document(rig)["workers"]] == [drained.consumer]
    finally:
        rig.close()


def test_a_stopping_worker_shows_as_draining_while_its_calls_last(redis_server: RedisServer,
                                                                  key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix, ring_time=0.05, talk_time=2.0), "fs1")
    try:
        worker = rig.start_worker(timings=FAST)
        job_id = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job_id)["status"] == "bridged")  # type: ignore[index]
        stopping = gevent.spawn(worker.stop, 20.0)
        doc = wait_for(lambda: (d := document(rig)) and worker_entry(d, worker.consumer).get("state") == "draining"
                       and d)
        assert worker_entry(doc, worker.consumer)["calls"] == 1
        assert rig.queue.get(job_id)["status"] == "bridged"  # type: ignore[index]
        stopping.join(timeout=20)
        rig.workers.remove(worker)
        assert rig.queue.get(job_id)["status"] == "completed"  # type: ignore[index]
        assert worker_entry(document(rig), worker.consumer)["state"] == "stopped"
    finally:
        rig.close()


def test_status_counts_waiting_jobs_retries_and_dead_letters(redis_server: RedisServer, key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix), "fs1")  # no worker: nothing is read off the stream
    try:
        first = rig.submit(a="+15551230001", b="+15551230002")
        rig.submit(a="+15551230003", b="+15551230004")
        rig.queue.schedule_retry(first, rig.client.time()[0] + 30, "NO_ANSWER")
        rig.queue.dead_letter_job("x", "{}", "test")
        gevent.sleep(0.05)
        queue = document(rig)["queue"]
        assert queue["waiting"] == 2 and queue["claimed"] == 0 and queue["oldest_claimed_age"] is None
        assert queue["oldest_waiting_age"] is not None and 0 < queue["oldest_waiting_age"] < 10
        assert queue["retries"] == 1 and 20 < queue["next_retry_in"] <= 30
        assert queue["dead_letters"] == 1 and queue["newest_dead_letter_age"] is not None
        doc = document(rig)
        assert doc["ready"] is False and doc["workers"] == []
        assert doc["nodes"] == [{"node": "fs1", "up": False, "sessions": 0, "sps": 40, "max_sessions": 900,
                                 "url": {"sps": 40, "max_sessions": 900}, "switch": None, "workers": []}]
    finally:
        rig.close()


def test_status_shows_each_lane_the_running_campaigns_and_do_not_call_refusals(redis_server: RedisServer,
                                                                              key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix), "fs1")  # no worker: the test claims what it needs itself
    try:
        keys, client = rig.queue.keys, rig.client
        rig.submit(a="+15551230001", b="+15551230002")
        bulk = [rig.queue.enqueue(parse_request({"a": "+1555123001%d" % i, "b": "user/1000"}, rig.config),
                                  lane="bulk") for i in range(3)]
        assert len(bulk) == 3
        rig.queue.ensure_group()
        # A worker has read the first bulk job and not yet settled it.
        client.xreadgroup("workers", "w-bulk", {keys.jobs_bulk: ">"}, count=1)

        store = CampaignStore(client, keys, record_ttl=60)
        campaign = parse_campaign({"name": "n", "call": {"b": "user/1000"}}, rig.config)
        for campaign_id, contacts, action in (("c" * 32, 4, "start"), ("d" * 32, 2, "start"),
                                              ("e" * 32, 5, None)):
            store.create(campaign_id, campaign)
            assert store.add_contacts(campaign_id, [Contact("r%d" % i, ("+1555124000%d" % i,))
                                                    for i in range(contacts)]) == []
            if action:
                store.act(campaign_id, action)
        store.act("d" * 32, "pause")  # paused: neither running nor counted
        # One contact of the running one has its call queued.
        assert store.take("c" * 32, "r0", 0, "call-1", client.time()[0], 2) == 1

        rig.queue.dnc.add("", [dnc.Entry("+15551239999")])
        for _ in range(2):
            with pytest.raises(DoNotCall):
                rig.submit(a="+15551239999", b="user/1000")
        rig.queue.dnc.count_refusal("dial", "acme")  # what the worker counts when it skips a call

        doc = document(rig)
        queue = doc["queue"]
        assert queue["lanes"]["interactive"]["waiting"] == 1 and queue["lanes"]["interactive"]["claimed"] == 0
        assert queue["lanes"]["bulk"]["waiting"] == 2 and queue["lanes"]["bulk"]["claimed"] == 1
        assert queue["lanes"]["bulk"]["oldest_claimed_age"] is not None
        assert queue["lanes"]["interactive"]["oldest_claimed_age"] is None
        # The queue's own fields are both lanes together.
        assert (queue["waiting"], queue["claimed"]) == (3, 1)
        assert queue["oldest_waiting_age"] == max(queue["lanes"][lane]["oldest_waiting_age"]
                                                  for lane in ("interactive", "bulk"))
        assert doc["campaigns"] == {"running": 1, "contacts": {"queued": 3, "retrying": 0, "waiting_window": 0,
                                                               "dialing": 1}}
        assert doc["do_not_call"] == {"refused": {"api": 2, "dial": 1}}

        text = cli("status", rig=rig)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        bulk_line = next(line for line in lines if line.startswith("bulk ")).split()
        assert (bulk_line[:2], bulk_line[3], len(bulk_line)) == (["bulk", "2"], "1", 5)
        interactive_line = next(line for line in lines if line.startswith("interactive ")).split()
        assert (interactive_line[:2], interactive_line[3:]) == (["interactive", "1"], ["0", "-"])
        assert next(line for line in lines if line.startswith("contacts ")).split() == ["contacts", "1", "3", "0",
                                                                                        "0", "1"]
        assert next(line for line in lines if line.startswith("refused ")).split() == ["refused", "2", "1"]
    finally:
        rig.close()


def test_status_with_redis_out_of_reach_is_one_line_and_exit_status_1() -> None:
    port = free_port()  # nothing listens there
    for args in (("status",), ("status", "--json"), ("calls", "list"), ("calls", "show", "x"), ("nodes",)):
        proc = cli(*args, env={"ESLENGINE_REDIS_URL": "redis://127.0.0.1:%d/0" % port})
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 1 and proc.stdout == "", (args, proc.stdout, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("eslengine: error: Redis unavailable: "), (args, proc.stderr)


# ------------------------------------------------------------------ calls


def test_calls_list_and_show_print_what_the_worker_recorded(redis_server: RedisServer, key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix, ring_time=0.05, talk_time=0.1), "fs1")
    try:
        worker = rig.start_worker()
        done = rig.submit(a="+15551230001", b="+15551230486")  # b is busy
        rig.final(done)
        live = rig.submit(a="+15551230408", b="+15551230012", variables={"campaign": "spring"})  # never answers
        wait_for(lambda: rig.queue.get(live)["status"] == "ringing")  # type: ignore[index]
        listed = cli("calls", "list", "--json", rig=rig)
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)["calls"]
        assert [r["id"] for r in rows] == [live, done]
        assert rows[1]["status"] == "failed" and rows[1]["hangup_cause"] == "USER_BUSY"
        assert rows[1]["node"] == "fs1" and rows[1]["worker"] == worker.consumer and rows[1]["attempts"] == 1

        failed = cli("calls", "list", "--status", "failed", rig=rig)
        lines = failed.stdout.splitlines()
        assert failed.returncode == 0 and lines[0].split()[:2] == ["ID", "STATUS"]
        assert [line.split()[:2] for line in lines[1:]] == [[done, "failed"]]
        assert "USER_BUSY" in lines[1] and worker.consumer in lines[1] and failed.stderr.strip() == "1 call(s)"

        shown = cli("calls", "show", done, rig=rig)
        assert shown.returncode == 0, shown.stderr
        fields = dict(line.split(None, 1) for line in shown.stdout.split("history")[0].splitlines())
        assert fields["id"] == done and fields["status"] == "failed" and fields["node"] == "fs1"
        assert fields["worker"] == worker.consumer and fields["hangup_cause"] == "USER_BUSY"
        assert fields["failed_party"] == "b" and fields["b"] == "+15551230486"
        history = shown.stdout.split("history\n")[1].splitlines()
        assert [line.split()[1] for line in history] == ["queued", "dialing", "ringing", "answered", "failed"]
        assert history[0].split()[2] == "+0.000s"

        as_json = json.loads(cli("calls", "show", done, "--json", rig=rig).stdout)
        assert as_json["worker"] == worker.consumer and as_json["history"][-1]["status"] == "failed"

        # --live: calls not ended, from the index and from the workers' live sets.
        rig.client.zrem(Keys(key_prefix).index(), live)  # as if it had left the part of the index read
        only_live = json.loads(cli("calls", "list", "--live", "--json", rig=rig).stdout)["calls"]
        assert [(r["id"], r["variables"]) for r in only_live] == [(live, {"campaign": "spring"})]
    finally:
        rig.close()


def test_calls_commands_refuse_bad_arguments_in_one_line(redis_server: RedisServer, key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix), "fs1")
    try:
        for args, needle in ((("calls", "list", "--status", "ringing,lost"), "--status: one or more of"),
                             (("calls", "list", "--limit", "0"), "--limit: a whole number from 1 to 1000"),
                             (("calls", "list", "--limit", "x"), "--limit"),
                             (("calls", "list", "--live", "--status", "failed"), "--live: no call in failed")):
            proc = cli(*args, rig=rig)
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, proc.stderr)
        missing = cli("calls", "show", "no-such-call", rig=rig)
        assert missing.returncode == 1 and missing.stderr.strip() == "eslengine calls show: error: no call no-such-call"
    finally:
        rig.close()


def test_nodes_only_workers_name_are_shown_after_the_configured_ones(redis_server: RedisServer,
                                                                    key_prefix: str) -> None:
    rig = named(Rig(redis_server, key_prefix), "fs1")
    try:
        worker = rig.start_worker()
        wait_for(lambda: document(rig)["ready"])
        other = replace(rig.config, nodes=(Node("127.0.0.1", 1, "pw", name="fs0"),))
        doc = ops.status_document(other, rig.queue)
        assert [(n["node"], n["up"]) for n in doc["nodes"]] == [("fs0", False), ("fs1", True)]
        # fs1's URL limits are the worker's own, not the reader's (it has none for fs1).
        assert doc["nodes"][1]["url"] == {"sps": 40, "max_sessions": 900}
        assert worker_entry(doc, worker.consumer)["nodes"] == {"fs1": "up"}
    finally:
        rig.close()

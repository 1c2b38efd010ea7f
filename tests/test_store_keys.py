"""Key names (eslengine.store.keys): one hash slot a prefix, every script
call site's keys in it."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import redis
from redis.crc import key_slot

from eslengine.accounts import AccountStore
from eslengine.apikeys import KeyStore
from eslengine.campaign.model import Contact, parse_campaign
from eslengine.clicktocall import ClickToCallLog
from eslengine.config import Config
from eslengine.store import JobQueue, Keys, lua
from eslengine.store.campaigns import CampaignStore
from eslengine.store.executor import Executor
from tests.conftest import RedisServer, call_request, free_port


def _slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("prefix", ["eslengine", "t1-2", "a:b", "x y"])
def test_every_key_of_a_prefix_is_in_one_slot(prefix: str) -> None:
    keys = Keys(prefix)
    names = [keys.jobs, keys.dead, keys.cancel, keys.retry, keys.workers, keys.webhooks, keys.accounts, keys.apikeys,
             keys.workers_seen, keys.call("c"), keys.history("c"), keys.placing("c", 2), keys.index(), keys.index("key_1"),
             keys.idempotency("", "d"), keys.webhook("c"), keys.heartbeat("w"), keys.live("w"), keys.adopter("w"),
             keys.worker_info("w"), keys.node_workers("fs1"), keys.node_held("fs1"), keys.account_items("a", "users"),
             keys.c2c_calls("a", "i"), keys.c2c_limit("a", "i", "rate:1"), keys.c2c_refusals("a", "i"),
             keys.widget_destination("+15551230001", 1), keys.apikey("d"), keys.apikey_rate("k", 1), keys.cdr,
             keys.campaigns, keys.active_campaigns, keys.dispatcher, keys.campaign("c"), keys.contact("c", "r1"),
             keys.campaign_pending("c"), keys.campaign_waiting("c"), keys.campaign_dialing("c")]
    assert all(name.startswith("{%s}:" % prefix) for name in names)
    assert {_slot(name) for name in names} == {_slot("{%s}" % prefix)}


def test_the_default_stream_is_the_documented_one() -> None:
    assert Keys().jobs == "{eslengine}:jobs" and Keys().call("x") == "{eslengine}:call:x"


@pytest.fixture
def script_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str]]]:
    """Every script the store runs in the test, with its KEYS."""
    seen: list[tuple[str, list[str]]] = []
    run = Executor.script

    def script(self: Executor, name: str, keys: list[str], args: list[str]) -> object:
        seen.append((name, list(keys)))
        return run(self, name, keys, args)

    monkeypatch.setattr(Executor, "script", script)
    return seen


def _run_every_script(queue: JobQueue, client: redis.Redis, prefix: str) -> None:
    """Each script of the store once, through the methods that run it."""
    queue.ensure_group()
    placed = call_request()
    queue.enqueue(placed, owner="key_1", account="acc", idempotency=("digest", "request"))  # enqueue
    bare = call_request()
    client.xadd(queue.keys.jobs, {"job": bare.dumps()})
    (entry_id, _), (bare_entry, _) = queue.read("w1", 10, 10)
    queue.claim(bare, {"originated": "1"}, worker="w1")  # claim
    queue.transition(placed.id, "dialing", worker="w1", ack=entry_id)  # transition
    queue.annotate(placed.id, {"attempt_state": "sent"})
    queue.request_cancel(bare.id)  # cancel
    queue.record_unreadable("not-a-call", "{", "invalid job")  # unreadable
    assert queue.schedule_retry(placed.id, time.time() - 1, "USER_BUSY")  # retry
    assert queue.move_due_retries(time.time()) == 1  # due
    queue.transition(placed.id, "failed")
    queue.dead_letter_job(placed.id, placed.dumps(), "failed after 3 attempts")
    (dead_id, _), = queue.dead_letters()
    queue.requeue_dead(dead_id)  # requeue
    queue.beat("w1", 60, "token")  # beat
    queue.owns("w1", "token", placed.id, bare_entry)  # owns
    queue.pace_node("fs1", "w1", 5.0, 0, 10)  # share
    queue.take_attempt(placed.id, 5, "w1")  # take_attempt
    queue.enqueue(call_request())
    queue.read("gone-reader", 10, 10)
    assert queue.claim_stale("w1", min_idle_ms=0)  # claim_stale
    client.sadd(queue.keys.workers, "dead")
    client.sadd(queue.keys.live("dead"), placed.id, bare.id)
    assert queue.adopt("dead", "w1") is not None  # adopt
    queue.claim_webhooks(10, 5.0)  # claim_webhooks
    queue.webhook_done(placed.id, "%s.1" % placed.id, 5.0)  # webhook_done
    queue.webhook_later(placed.id, "%s.1" % placed.id, "item", 1.0)  # webhook_later
    ClickToCallLog(client, prefix, record_ttl=60).take(
        "acc", "c2c", [("rate:1", 5, 60, 1.0), ("ip:x:1", 5, 3600, 1.0)])  # connect_limits
    campaigns = CampaignStore(client, queue.keys, record_ttl=60)
    campaign = parse_campaign({"name": "n", "call": {"b": "user/1000"}, "notify_url": "https://example.com/r"},
                              Config(webhook_allow=("https://example\\.com/.*",)))
    campaigns.create("c" * 32, campaign)
    campaigns.add_contacts("c" * 32, [Contact("r1", ("+15551230001",)), Contact("r2", ("+15551230002",)),
                                      Contact("r3", ("+15551230003",))])  # campaign_add
    campaigns.act("c" * 32, "start")  # campaign_state
    was = campaigns.raw("c" * 32)["doc"]
    assert campaigns.patch("c" * 32, was, {**json.loads(was), "name": "m"}) == "ok"  # campaign_patch
    assert campaigns.take("c" * 32, "r1", 0, "call-1", time.time(), 10) == 1  # campaign_take
    assert campaigns.wait("c" * 32, "r2", time.time() + 60)  # campaign_wait
    assert campaigns.outcome("c" * 32, "r1", "call-1", "finish", outcome="connected") == 1  # campaign_outcome
    assert campaigns.drop("c" * 32, ["r2", "r3"], "cancelled") == 2  # campaign_drop
    assert campaigns.lease("token", 5.0) == 2  # campaign_lease
    assert campaigns.begin_delete("c" * 32)[1]  # campaign_delete


def test_every_script_call_site_passes_keys_of_one_slot(queue: JobQueue, redis_client: redis.Redis, key_prefix: str,
                                                        script_calls: list[tuple[str, list[str]]]) -> None:
    _run_every_script(queue, redis_client, key_prefix)
    assert {name for name, _ in script_calls} == set(lua.names())
    tag = "{%s}:" % key_prefix
    for name, keys in script_calls:
        assert len({_slot(key) for key in keys}) == 1, (name, keys)
        # (A webhook sender an earlier test left running may run scripts on
        # its own prefix meanwhile: one slot too, but not this test's.)
        if any(key.startswith(tag) for key in keys):
            assert all(key.startswith(tag) for key in keys), (name, keys)


def test_every_script_runs_on_a_redis_cluster(key_prefix: str, script_calls: list[tuple[str, list[str]]],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # A cluster node refuses a script whose KEYS span slots and, when the
    # script has a shebang line (Redis 7; eslengine's have none, to run on
    # Redis 6 too), one that touches a key of another slot than its KEYS'.
    # One node holding every slot is enough to tell.
    source = lua.source
    monkeypatch.setattr(lua, "source", lambda name: "#!lua\n" + source(name))
    server = RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-port", str(free_port()))
    try:
        client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5)
        if int(client.info("server")["redis_version"].split(".")[0]) < 7:
            pytest.skip("script shebang lines need Redis 7")
        client.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
        deadline = time.monotonic() + 10
        while "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the cluster node did not take its slots"
            time.sleep(0.02)
        _run_every_script(JobQueue(client, Keys(key_prefix), record_ttl=60), client, key_prefix)
        assert {name for name, _ in script_calls} == set(lua.names())
        client.close()
    finally:
        server.stop()


def test_accounts_keys_and_connects_are_kept_under_the_prefixs_tag(redis_client: redis.Redis,
                                                                    key_prefix: str) -> None:
    accounts = AccountStore(redis_client, key_prefix)
    account = accounts.create_account({"name": "Acme"})
    accounts.add(account["id"], "users", {"name": "Ann", "endpoint": "user/1000"}, "now")
    keys = KeyStore(redis_client, key_prefix)
    key, _ = keys.create("site", account=account["id"])
    keys.take_call(dataclasses.replace(key, rate_per_minute=5), time.time())
    ClickToCallLog(redis_client, key_prefix, record_ttl=60).add(account["id"], "c2c", "call-1")
    written = sorted(redis_client.scan_iter(match="*%s*" % key_prefix))
    assert len(written) >= 5
    assert all(name.startswith("{%s}:" % key_prefix) for name in written), written
    assert accounts.delete_account(account["id"])
    assert not [name for name in redis_client.scan_iter(match="*%s*:account:*" % key_prefix)]


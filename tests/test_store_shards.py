"""Shards (eslengine.store.shards): which shard a call is in, the keys of
each shard, and a ShardedQueue of three shards on one redis-server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from eslengine.calls import parse_id
from eslengine.errors import IdempotencyKeyUsed
from eslengine.opsview import CampaignsSeen, LaneSeen, QueueSeen, Snapshot, WorkerSeen
from eslengine.store import JobQueue, Keys, ShardedQueue, lua, shards
from tests.conftest import call_request
from tests.test_store_keys import _run_every_script, script_calls  # noqa: F401  (a fixture)


def _slot(key: str) -> int:
    return key_slot(key.encode())


# ---------------------------------------------------------------- pure routing


@pytest.mark.parametrize("call_id", ["0b6c3f2e-1d7a-4f7e-9d6b-3c1a2b4d5e6f", "", "x", "\u00e9t\u00e9"])
def test_one_shard_is_always_shard_0(call_id: str) -> None:
    assert shards.shard_of(call_id, 1) == 0
    assert shards.lookup_order(call_id, 1) == (0,)


def test_a_calls_shard_is_its_ids_crc32_modulo_the_shards() -> None:
    # zlib.crc32(b"a") == 0xE8B7BE43 == 3904355907
    assert [shards.shard_of("a", n) for n in (2, 3, 5, 7)] == [1, 0, 2, 4]


def test_ids_spread_over_every_shard_about_evenly() -> None:
    ids = [str(uuid.UUID(int=n * 7919 + 1, version=4)) for n in range(3000)]
    counts = [0, 0, 0]
    for call_id in ids:
        counts[shards.shard_of(call_id, 3)] += 1
    assert min(counts) > 850, counts


def test_a_call_is_looked_for_in_its_own_shard_then_in_shard_0() -> None:
    own = shards.shard_of("a", 5)
    assert shards.lookup_order("a", 5) == (own, 0)
    zero = next(i for i in map(str, range(100)) if shards.shard_of(i, 3) == 0)
    assert shards.lookup_order(zero, 3) == (0,)


def test_an_idempotency_keys_id_is_a_uuid_the_same_for_the_same_owner_and_key() -> None:
    first = shards.idempotent_id("key_1", "d1")
    assert parse_id(first) == first
    assert shards.idempotent_id("key_1", "d1") == first
    assert len({first, shards.idempotent_id("key_2", "d1"), shards.idempotent_id("key_1", "d2"),
                shards.idempotent_id("", "d1")}) == 4
    # Not fooled by a separator inside the parts.
    assert shards.idempotent_id("a\nb", "c") != shards.idempotent_id("a", "b\nc")


def test_ids_are_grouped_by_shard_keeping_their_positions() -> None:
    ids = ["a", "b", "c", "d", "a"]
    groups = shards.by_shard(ids, 3)
    assert sorted(p for positions in groups.values() for p in positions) == [0, 1, 2, 3, 4]
    for shard, positions in groups.items():
        assert all(shards.shard_of(ids[p], 3) == shard for p in positions)


@pytest.mark.parametrize("listings, count, expected", [
    ([[(5, "a", 1), (3, "a", 2)], [(4, "b", 3), (3, "b", 4)]], 10, [(5, "a", 1), (4, "b", 3), (3, "b", 4),
                                                                     (3, "a", 2)]),
    ([[(5, "a", 1), (3, "a", 2)], [(4, "b", 3)]], 2, [(5, "a", 1), (4, "b", 3)]),
    ([[], [(1, "x", 0)], []], 5, [(1, "x", 0)]),
    ([[], []], 5, []),
])
def test_listings_merge_newest_first_ties_by_descending_id(listings: list[list[tuple[int, str, int]]], count: int,
                                                         expected: list[tuple[int, str, int]]) -> None:
    assert shards.merge_newest_first(listings, count) == expected


@pytest.mark.parametrize("text, expected", [
    ("1700000000000-0", (0, "1700000000000-0")),
    ("2/1700000000000-1", (2, "1700000000000-1")),
    ("0/5-0", (0, "5-0")),
])
def test_a_qualified_entry_id_names_its_shard(text: str, expected: tuple[int, str]) -> None:
    assert shards.parse_entry(text, 3) == expected
    shard, entry = expected
    if "/" in text and shard:
        assert shards.qualify_entry(shard, entry) == text
    assert shards.qualify_entry(0, entry) == entry


@pytest.mark.parametrize("text", ["3/1-0", "-1/1-0", "x/1-0", "/1-0", "\u0661/1-0"])
def test_an_entry_of_a_shard_that_does_not_exist_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        shards.parse_entry(text, 3)


# ---------------------------------------------------------------- keys


def _per_shard_names(keys: Keys) -> list[str]:
    return [keys.jobs, keys.dead, keys.cancel, keys.retry, keys.workers, keys.webhooks, keys.workers_seen,
            keys.call("c"), keys.history("c"), keys.placing("c", 2), keys.index(), keys.index("key_1"),
            keys.idempotency("", "d"), keys.webhook("c"), keys.heartbeat("w"), keys.live("w"), keys.adopter("w"),
            keys.worker_info("w"), keys.cdr, keys.jobs_bulk, keys.stream("bulk"), keys.stream("interactive")]


def _base_names(keys: Keys) -> list[str]:
    return [keys.accounts, keys.apikeys, keys.node_workers("fs1"), keys.node_held("fs1"),
            keys.account_items("a", "users"), keys.account_pattern("a"), keys.c2c_calls("a", "i"),
            keys.c2c_limit("a", "i", "rate:1"), keys.c2c_refusals("a", "i"), keys.widget_destination("+1555", 1),
            keys.apikey("d"), keys.apikey_rate("k", 1), keys.campaigns, keys.active_campaigns, keys.dispatcher,
            keys.campaign("c"), keys.contact("c", "r1"), keys.campaign_pending("c"), keys.campaign_waiting("c"),
            keys.campaign_dialing("c"), keys.campaign_pattern("c"), keys.campaign_contacts("c"),
            keys.deleting_campaigns, keys.dnc(), keys.dnc("a"), keys.dnc_refused]


def test_shard_0s_keys_are_todays() -> None:
    assert _per_shard_names(Keys("p", 0)) == _per_shard_names(Keys("p"))
    assert Keys("p", 0).jobs == "{p}:jobs" and Keys("p", 0).call("x") == "{p}:call:x"


@pytest.mark.parametrize("prefix", ["eslengine", "a.b", "t1-2"])
def test_each_shards_own_keys_are_in_a_slot_of_their_own(prefix: str) -> None:
    slots = []
    for shard in range(4):
        names = _per_shard_names(Keys(prefix, shard))
        tag = "{%s}:" % prefix if shard == 0 else "{%s#%d}:" % (prefix, shard)
        assert all(name.startswith(tag) for name in names), names
        assert len({_slot(name) for name in names}) == 1
        slots.append(_slot(names[0]))
    assert len(set(slots)) == 4


def test_accounts_campaigns_and_node_pacing_stay_in_the_base_shard() -> None:
    assert _base_names(Keys("p", 2)) == _base_names(Keys("p", 0))
    assert all(name.startswith("{p}:") for name in _base_names(Keys("p", 2)))


def test_no_shards_tag_is_another_prefixs() -> None:
    # '#' may not be in a prefix (ESLENGINE_KEY_PREFIX), '.' may.
    assert Keys("p", 1).tag == "{p#1}" != Keys("p.1").tag


# ---------------------------------------------------------------- three shards on one server


@pytest.fixture
def sharded(redis_client: redis.Redis, key_prefix: str) -> ShardedQueue:
    return ShardedQueue(redis_client, Keys(key_prefix), shards=3, record_ttl=60)


def _id_in(shard: int, n: int = 3) -> str:
    while True:
        call_id = str(uuid.uuid4())
        if shards.shard_of(call_id, n) == shard:
            return call_id


def test_a_queued_call_goes_to_its_shard_and_is_read_from_there(sharded: ShardedQueue,
                                                               redis_client: redis.Redis) -> None:
    for shard in range(3):
        request = call_request(id=_id_in(shard))
        sharded.enqueue(request, owner="key_1")
        keys = sharded.of_shard(shard).keys
        assert redis_client.exists(keys.call(request.id))
        assert [f["job"] for _, f in redis_client.xrange(keys.jobs)][-1] == request.dumps()
        assert sharded.call_key(request.id) == keys.call(request.id)
        got = sharded.get(request.id)
        assert got is not None and got["status"] == "queued"
        assert sharded.holders([request.id, str(uuid.uuid4())]) == [("key_1", ""), None]
        assert sharded.request_cancel(request.id) == "cancelled"
        assert sharded.record(request.id)["status"] == "cancelled"
    assert redis_client.xlen(Keys(sharded.keys.prefix, 0).jobs) == 1


def test_a_job_pushed_into_shard_0s_stream_is_found_there_whatever_its_id(sharded: ShardedQueue) -> None:
    request = call_request(id=_id_in(2))
    base = sharded.of_shard(0)
    base.enqueue(request)  # what a bare XADD and the campaign dispatcher do
    assert sharded.read_call(request.id) is not None
    assert sharded.holders([request.id]) == [("", "")]
    assert sharded.request_cancel(request.id) == "cancelled"
    assert base.record(request.id)["status"] == "cancelled"


def test_the_listing_merges_every_shard_and_its_cursor_pages_through_them(sharded: ShardedQueue) -> None:
    placed = set()
    for n in range(30):
        request = call_request(id=_id_in(n % 3))
        sharded.enqueue(request, owner="key_1")
        placed.add(request.id)
    everything = sharded.list_calls("key_1", count=100)
    assert {call_id for _, call_id, _ in everything} == placed
    assert everything == sorted(everything, key=lambda item: (item[0], item[1]), reverse=True)
    pages: list[tuple[int, str, dict[str, str]]] = []
    after = None
    while True:
        page = sharded.list_calls("key_1", after=after, count=7)
        pages += page
        if len(page) < 7:
            break
        after = (page[-1][0], page[-1][1])
    assert [c for _, c, _ in pages] == [c for _, c, _ in everything]


def test_a_repeated_idempotency_key_is_found_in_whichever_shard_holds_it(sharded: ShardedQueue) -> None:
    first = call_request(id=_id_in(1))
    sharded.enqueue(first, owner="key_1", idempotency=("k", "r1"))
    assert sharded.idempotency_used("key_1", "k") == (first.id, "r1")
    with pytest.raises(IdempotencyKeyUsed) as raised:
        sharded.enqueue(call_request(id=_id_in(2)), owner="key_1", idempotency=("k", "r1"))
    assert raised.value.job_id == first.id


def test_dead_letters_of_every_shard_are_listed_and_requeued_by_their_qualified_id(sharded: ShardedQueue,
                                                                                   redis_client: redis.Redis) -> None:
    for shard in range(3):
        request = call_request(id=_id_in(shard))
        queue = sharded.of_shard(shard)
        queue.enqueue(request)
        queue.transition(request.id, "failed")
        queue.dead_letter_job(request.id, request.dumps(), "failed")
    letters = sharded.dead_letters()
    assert len(letters) == 3
    assert sorted(entry.split("/")[0] for entry, _ in letters if "/" in entry) == ["1", "2"]
    for entry, fields in letters:
        assert sharded.requeue_dead(entry) == fields["job_id"]
    assert sharded.dead_letters() == []
    for shard in range(3):
        assert redis_client.xlen(sharded.of_shard(shard).keys.jobs) == 2


def test_every_script_of_every_shard_passes_keys_of_one_slot(sharded: ShardedQueue, redis_client: redis.Redis,
                                                              key_prefix: str,
                                                              script_calls: list[tuple[str, list[str]]]) -> None:  # noqa: F811
    for shard in range(3):
        script_calls.clear()
        queue = sharded.of_shard(shard)
        # The campaign the run makes is the base shard's whatever the shard: made anew each round.
        for key in redis_client.scan_iter(match="{%s}:campaign*" % key_prefix):
            redis_client.delete(key)
        _run_every_script(queue, redis_client, key_prefix)
        assert {name for name, _ in script_calls} == set(lua.names())
        own, base = "%s:" % queue.keys.tag, "%s:" % queue.keys.base
        for name, keys in script_calls:
            assert len({_slot(key) for key in keys}) == 1, (name, keys)
            mine = [key for key in keys if key.startswith((own, base))]
            if mine:
                assert all(key.startswith(own) for key in mine) or all(key.startswith(base) for key in mine)
        # The calls' scripts ran in this shard's slot.
        assert any(name == "enqueue" and keys[0].startswith(own) for name, keys in script_calls)
        # Every shard is one JobQueue of its own.
        assert isinstance(queue, JobQueue) and not isinstance(queue, ShardedQueue)


def _snapshot(now: float, workers: tuple[str, ...], queue: tuple[Any, ...]) -> Snapshot:
    return Snapshot(now=now, workers=tuple(WorkerSeen(w, True, {}, 0.0, 0, 0) for w in workers),
                    pacers={"fs1": {"w1": (1, 10, 2.0)}}, queue=QueueSeen(*queue))


def test_status_snapshots_of_every_shard_merge_into_one() -> None:
    one = _snapshot(10.0, ("w1",), (2, 1000, 1, 900, 0, None, 1, 500))
    two = _snapshot(10.5, ("w1.s1",), (3, 800, 0, None, 2, 55.0, 0, None))
    three = _snapshot(10.2, ("w1.s2",), (0, None, 4, 950, 1, 40.0, 2, 700))
    merged = shards.merge_snapshots([one, two, three])
    assert merged.now == 10.5
    assert [w.name for w in merged.workers] == ["w1", "w1.s1", "w1.s2"]
    assert merged.queue == QueueSeen(waiting=5, oldest_waiting_ms=800, claimed=5, oldest_claimed_ms=900, retries=3,
                                     next_retry=40.0, dead_letters=3, newest_dead_ms=700)
    assert merged.pacers == {"fs1": {"w1": (1, 10, 2.0)}}
    assert shards.merge_snapshots([one]) is one


def _laned(interactive: tuple[Any, ...], bulk: tuple[Any, ...], refused: int) -> Snapshot:
    lanes = {"interactive": LaneSeen(*interactive), "bulk": LaneSeen(*bulk)}
    total = (interactive[0] + bulk[0], None, interactive[2] + bulk[2], None)
    return Snapshot(now=1.0, workers=(), pacers={}, queue=QueueSeen(*total, 0, None, 0, None, lanes=lanes),
                    campaigns=CampaignsSeen(running=refused, contacts={"queued": 10 * refused}),
                    dnc_refused={"api": refused, "dial": 2 * refused})


def test_each_lane_is_summed_over_the_shards_and_campaigns_and_refusals_are_read_once() -> None:
    # Each shard's overview reads the base shard's campaigns and refusal
    # counts too: the merge takes them once, from shard 0.
    merged = shards.merge_snapshots([_laned((2, 900, 1, 800), (5, 700, 0, None), 1),
                                     _laned((1, 950, 0, None), (3, 600, 2, 650), 1),
                                     _laned((0, None, 4, 750), (0, None, 0, None), 1)])
    assert merged.queue.lanes == {"interactive": LaneSeen(3, 900, 5, 750), "bulk": LaneSeen(8, 600, 2, 650)}
    assert (merged.queue.waiting, merged.queue.oldest_waiting_ms) == (11, 600)
    assert (merged.queue.claimed, merged.queue.oldest_claimed_ms) == (7, 650)
    assert merged.campaigns == CampaignsSeen(running=1, contacts={"queued": 10})
    assert merged.dnc_refused == {"api": 1, "dial": 2}


def test_only_shard_0_reads_the_do_not_call_lists_through_its_batcher(sharded: ShardedQueue,
                                                                     redis_client: redis.Redis) -> None:
    from eslengine import dnc
    from eslengine.errors import DoNotCall
    from eslengine.redisbatch import CommandBatcher

    batchers = [CommandBatcher(redis_client, route_key=queue.keys.jobs) for queue in sharded.shards]
    try:
        for queue, batcher in zip(sharded.shards, batchers):
            batcher.start()
            queue.use_batcher(batcher)
        # A shard's batcher writes to its own slot's primary: the lists (the
        # base shard's) are read there by shard 0's store only.
        assert sharded.of_shard(0).dnc.run.batcher is batchers[0]
        assert [sharded.of_shard(n).dnc.run.batcher for n in (1, 2)] == [None, None]
        sharded.dnc.add("", [dnc.Entry("+15551239001")])
        for shard in range(3):
            request = call_request(id=_id_in(shard), b="+15551239001")
            with pytest.raises(DoNotCall):
                sharded.enqueue(request)
            assert sharded.of_shard(shard).dnc.refused("", dnc.checked_numbers(request), 0.0) is not None
        assert sharded.dnc.refusals() == {"api": 3, "dial": 0}
    finally:
        for batcher in batchers:
            batcher.stop()

"""Deleting a campaign of many contacts without blocking Redis.

A private redis-server holds one cancelled campaign of N contacts (100,000;
10,000 with ``--quick``). While ``CampaignStore.delete`` walks the
campaign's contact index a batch at a time, another connection sends PING
after PING and times each: the longest answer is the longest Redis was
held by the delete. Target: under 50 ms. For reference, the same contacts
deleted by one DEL of every key (what a delete without batches would
send), timed the same way.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import gevent
import redis

from eslengine.campaign.model import Contact, parse_campaign
from eslengine.config import Config
from eslengine.store.campaigns import BATCH, CampaignStore
from eslengine.store.keys import Keys

from .harness import BenchStack, Result, percentile

TARGET_MS = 50.0
CID = "b" * 32


def _fill(store: CampaignStore, n: int) -> None:
    campaign = parse_campaign({"name": "bench", "call": {"b": "user/1000"}}, Config(allow_unvalidated_numbers=True))
    store.create(CID, campaign)
    for start in range(0, n, BATCH):
        store.add_contacts(CID, [Contact("k%d" % i, ("+1555%07d" % i,), {"first": "Ann"})
                                 for i in range(start, min(n, start + BATCH))])
    store.act(CID, "cancel")


def _pings(url: str, out: list[float], stop: list[bool]) -> None:
    client = redis.Redis.from_url(url, socket_timeout=60)
    while not stop[0]:
        t0 = time.perf_counter()
        client.ping()
        out.append((time.perf_counter() - t0) * 1000)
        gevent.sleep(0)
    client.close()


def _timed(url: str, work: Callable[[], object]) -> tuple[float, list[float]]:
    pings: list[float] = []
    stop = [False]
    pinger = gevent.spawn(_pings, url, pings, stop)
    gevent.sleep(0.05)
    t0 = time.perf_counter()
    work()
    took = time.perf_counter() - t0
    stop[0] = True
    pinger.join(timeout=30)
    return took, pings


def run(quick: bool) -> list[Result]:
    n = 10_000 if quick else 100_000
    stack = BenchStack(start_api=False, workers=0)
    stack.start_redis()
    try:
        client = stack.client()
        keys = Keys()
        store = CampaignStore(client, keys)
        _fill(store, n)
        assert store.begin_delete(CID)[1]
        took, pings = _timed(stack.redis_url, lambda: store.delete(CID))
        left = len(client.keys(keys.campaign(CID) + ":*"))
        # The reference: the same contacts again, gone in one DEL.
        _fill(store, n)
        every = client.keys(keys.campaign(CID) + ":contact:*")
        one_took, one_pings = _timed(stack.redis_url, lambda: client.delete(*every))
        client.close()
    finally:
        stack.stop()
        stack.cleanup()
    worst = max(pings)
    print("  delete %d contacts: %.2fs, %d pings, longest %.1f ms, p99 %.1f ms, keys left %d; one DEL: longest "
          "ping %.1f ms" % (n, took, len(pings), worst, percentile(pings, 99), left, max(one_pings)),
          file=sys.stderr)
    return [
        Result("campaign delete: longest Redis stall (%d contacts)" % n, round(worst, 1), "ms",
               "< %g" % TARGET_MS, worst < TARGET_MS and left == 0,
               "%d PINGs answered while deleting; keys left %d" % (len(pings), left)),
        Result("campaign delete: contacts deleted a second", round(n / took), "contacts/s", "", None,
               "%d contacts in %.2fs, %d a step" % (n, took, BATCH)),
        Result("campaign delete by one DEL: longest Redis stall (reference)", round(max(one_pings), 1), "ms", "",
               None, "what a delete without batches would hold Redis for"),
    ]

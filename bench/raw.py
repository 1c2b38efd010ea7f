"""The raw baseline for engine throughput: the least a program can do to
turn stream entries into originates.

``python -m bench.raw --redis URL --switch PASSWORD@HOST:PORT --count K``
reads ``{eslengine}:jobs`` through the consumer group, builds each originate
with the engine's own pure functions, in the form the worker sends by
default (so the switch receives the same bytes), sends it as ``bgapi`` over
a plain ``greenswitch.esl.InboundESL`` from a pool of greenlets, and
acknowledges each batch in one pipeline. It sets the worker's kind of event
filters (its own name on the channels, a tag on its Job-UUIDs) and
subscribes to the worker's events (in the plain format: greenswitch reads no
other) and drops them, so the switch does the same work for both. No
records, no pacing, no following calls. Exits after K replies or
``--deadline`` seconds.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
import greenswitch.esl  # noqa: E402
import redis  # noqa: E402

from eslengine import dialstring  # noqa: E402
from eslengine.calls import loads_request  # noqa: E402
from eslengine.config import Config  # noqa: E402
from eslengine.worker import WORKER_EVENTS  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.raw")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--switch", required=True, help="PASSWORD@HOST:PORT")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=2000)
    parser.add_argument("--deadline", type=float, default=300.0)
    args = parser.parse_args()
    password, _, hostport = args.switch.rpartition("@")
    host, _, port = hostport.rpartition(":")
    config = Config(gateway="demo", allow_unvalidated_numbers=True)  # the fictional +1555 numbers
    client = redis.Redis.from_url(args.redis, decode_responses=True, socket_timeout=10)
    try:
        client.xgroup_create("{eslengine}:jobs", "workers", id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    conn = greenswitch.esl.InboundESL(host, int(port), password, timeout=10)
    with gevent.Timeout(10):
        conn.connect()
    # The worker's filters and events (greenswitch reads only the plain format).
    name, tag = "raw-%s" % uuid.uuid4().hex[:6], uuid.uuid4().hex[:8]
    conn.send("filter variable_%s %s" % (dialstring.WORKER_VAR, name))
    conn.send("filter Job-UUID /^%s-/" % tag)
    conn.send("event plain " + " ".join(WORKER_EVENTS))
    pool = gevent.pool.Pool(args.concurrency)
    sent = 0
    deadline = time.monotonic() + args.deadline

    def originate(raw: str) -> None:
        nonlocal sent
        request = loads_request(raw, config)
        # The form the worker sends with the default ESLENGINE_BRIDGE=engine.
        hold = config.bridge == "engine" and dialstring.can_hold(request)
        command = dialstring.originate_command(request, config, hold=hold, worker=name)
        conn.send("bgapi %s\nJob-UUID: %s%s" % (command, tag, str(uuid.uuid4())[8:]))
        sent += 1

    while sent < args.count and time.monotonic() < deadline:
        pool.wait_available(timeout=1)
        free = pool.free_count()
        if free <= 0:
            continue
        reply = client.xreadgroup("workers", "raw", {"{eslengine}:jobs": ">"}, count=min(free, 200), block=200)
        entries = [(i, f) for _, batch in reply or [] for i, f in batch]
        if not entries:
            continue
        batch = [pool.spawn(originate, f["job"]) for _, f in entries]
        ids = [i for i, _ in entries]

        def ack(greenlets: list[gevent.Greenlet] = batch, ids: list[str] = ids) -> None:
            gevent.joinall(greenlets, timeout=30)
            pipe = client.pipeline(transaction=False)
            pipe.xack("{eslengine}:jobs", "workers", *ids)
            pipe.xdel("{eslengine}:jobs", *ids)
            pipe.execute()

        gevent.spawn(ack)
    pool.join(timeout=30)
    print("raw: %d originates sent" % sent, file=sys.stderr)
    return 0 if sent >= args.count else 1


if __name__ == "__main__":
    raise SystemExit(main())

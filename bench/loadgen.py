"""A gevent HTTP/1.1 load generator over loopback keep-alive connections.

``python -m bench.loadgen URL --key KEY --duration S (--connections N | --rate R)``
prints one JSON document on stdout. Closed loop (``--connections``): N
connections each send the next request when the last one was answered.
Open loop (``--rate``): requests start at fixed times, R per second, on
whichever connection is idle (a new one is opened when none is, up to
``--max-connections``); each request carries its own job ``id`` and the
result lists ``[id, status, epoch of the response]`` for every request.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.queue  # noqa: E402


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, raw: bytes) -> int:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            self.buf += data
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            rest += data
        self.buf = rest[length:]
        return status


def build(host: str, path: str, key: str, job_id: str) -> bytes:
    body = json.dumps({"id": job_id, "a": "+15551230486", "b": "+15551230002"}).encode()
    return (("POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\n\r\n") % (path, host, key, len(body))).encode() + body


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("url")
    parser.add_argument("--key", default="")
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--connections", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--max-connections", type=int, default=500)
    args = parser.parse_args()
    url = urlsplit(args.url)
    host, port, path = url.hostname or "127.0.0.1", url.port or 80, url.path
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    responses: list[tuple[str, int, float]] = []
    errors = 0
    end = time.monotonic() + args.duration

    def one(conn: Connection) -> None:
        job_id = str(uuid.uuid4())
        t0 = time.monotonic()
        status = conn.request(build(host, path, args.key, job_id))
        latencies.append(time.monotonic() - t0)
        statuses[status] = statuses.get(status, 0) + 1
        if args.rate:
            responses.append((job_id, status, time.time()))

    started = time.monotonic()
    if args.connections:
        def loop() -> None:
            nonlocal errors
            conn = Connection(host, port)
            while time.monotonic() < end:
                try:
                    one(conn)
                except (OSError, ConnectionError):
                    errors += 1
                    conn = Connection(host, port)
        gevent.joinall([gevent.spawn(loop) for _ in range(args.connections)], timeout=args.duration + 30)
    else:
        idle: gevent.queue.Queue = gevent.queue.Queue()
        opened = 0
        workers = []

        def fire() -> None:
            nonlocal errors, opened
            try:
                conn = idle.get_nowait()
            except gevent.queue.Empty:
                if opened >= args.max_connections:
                    conn = idle.get(timeout=10)
                else:
                    opened += 1
                    conn = Connection(host, port)
            try:
                one(conn)
                idle.put(conn)
            except (OSError, ConnectionError):
                errors += 1

        n = int(args.rate * args.duration)
        for i in range(n):
            delay = started + i / args.rate - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            workers.append(gevent.spawn(fire))
        gevent.joinall(workers, timeout=30)
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    json.dump({"requests": len(latencies), "elapsed": elapsed, "rps": len(latencies) / min(elapsed, args.duration)
               if args.connections else len(latencies) / elapsed,
               "accepted": statuses.get(202, 0), "statuses": statuses, "errors": errors,
               "p50_ms": pct(0.50) * 1000, "p99_ms": pct(0.99) * 1000, "responses": responses}, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

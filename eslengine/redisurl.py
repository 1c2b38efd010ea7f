"""What ``ESLENGINE_REDIS_URL`` names: one Redis, a Sentinel-watched primary,
or a Redis Cluster (pure; ``store.connect`` builds the client from it).

``redis://`` ``rediss://`` ``unix://``
    one server, as redis-py's ``from_url`` reads it (its own query options).
``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db]``
    the primary that the Sentinels at those addresses (port 26379 unless
    given) name for ``service``; the password is the primary's. A
    ``sentinel_password`` query option is the Sentinels' own.
``redis+cluster://[[user]:password@]host[:port][,host[:port]...]``
    a Redis Cluster reached through any of those nodes (port 6379 unless
    given); a cluster has database 0 only.

The ``rediss+sentinel`` and ``rediss+cluster`` forms speak TLS to the
servers. Host lists are written the way redis-py's own Sentinel and
Cluster examples list startup nodes: comma-separated, IPv6 in brackets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, unquote

Kind = Literal["single", "sentinel", "cluster"]

SINGLE_SCHEMES = ("redis", "rediss", "unix")
DEFAULT_PORTS = {"sentinel": 26379, "cluster": 6379}
# Query options of the Sentinel and Cluster forms (the single-server form
# passes its own to redis-py, which knows them).
OPTIONS: dict[Kind, tuple[str, ...]] = {"single": (), "sentinel": ("sentinel_password",), "cluster": ()}


class RedisUrlError(ValueError):
    """The URL cannot be understood; the message says why, with no password in it."""


@dataclass(frozen=True)
class RedisTarget:
    kind: Kind
    url: str = ""  # the single-server URL, as given
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_password: str | None = None


def _host(word: str, default_port: int) -> tuple[str, int]:
    if word.startswith("["):
        host, bracket, rest = word[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise RedisUrlError("bad address %r" % word)
        port_text = rest[1:]
    else:
        host, _, port_text = word.partition(":")
        if ":" in port_text:
            raise RedisUrlError("bad address %r (write an IPv6 address in brackets)" % word)
    if not host:
        raise RedisUrlError("an address has no host")
    if port_text == "" and word.endswith(":"):
        raise RedisUrlError("bad port in %r" % word)
    if port_text == "":
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError("bad port in %r" % word)
    return host, int(port_text)


def parse_redis_url(url: str) -> RedisTarget:
    """The target ``url`` names, or ``RedisUrlError`` saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise RedisUrlError("not a URL")
    if scheme in SINGLE_SCHEMES:
        return RedisTarget("single", url=url)
    base, plus, mode = scheme.partition("+")
    if not plus or base not in ("redis", "rediss") or mode not in ("sentinel", "cluster"):
        raise RedisUrlError("the scheme must be redis://, rediss://, unix://, redis+sentinel:// or "
                            "redis+cluster://, not %s://" % scheme)
    kind: Kind = "sentinel" if mode == "sentinel" else "cluster"
    rest, _, query = rest.partition("?")
    rest, _, _fragment = rest.partition("#")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if not colon:  # redis://secret@host: redis-py reads a lone user information as the password
            username, password = None, unquote(user) or None
    words = hostlist.split(",")
    if any(not w.strip() for w in words):
        raise RedisUrlError("no host (write host:port[,host:port...])" if hostlist.strip() == ""
                            else "an empty entry in the host list")
    hosts = tuple(_host(w.strip(), DEFAULT_PORTS[kind]) for w in words)
    segments = [s for s in path.split("/")] if path else []
    while segments and segments[-1] == "":
        segments.pop()
    service, db = "", 0
    if kind == "sentinel":
        if not segments or not segments[0]:
            raise RedisUrlError("no service name (redis+sentinel://host:port/<service>)")
        service = unquote(segments[0])
        db_segments = segments[1:]
    else:
        db_segments = segments
    if len(db_segments) > 1:
        raise RedisUrlError("the path has more than %s" % ("/<service>/<db>" if kind == "sentinel" else "/<db>"))
    if db_segments:
        if not db_segments[0].isdigit():
            raise RedisUrlError("the database %r is not a number" % db_segments[0])
        db = int(db_segments[0])
    if kind == "cluster" and db != 0:
        raise RedisUrlError("a Redis Cluster has database 0 only")
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in OPTIONS[kind]:
            raise RedisUrlError("unknown option %r (known: %s)" % (name, ", ".join(OPTIONS[kind]) or "none"))
        options[name] = value
    return RedisTarget(kind, hosts=hosts, service=service, db=db, username=username, password=password,
                       tls=base == "rediss", sentinel_password=options.get("sentinel_password") or None)

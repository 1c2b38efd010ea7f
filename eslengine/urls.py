"""Which URLs the engine lets a call use: audio URLs the switch fetches and
webhook targets the worker POSTs to.

Pure: parsing and comparison only. Resolving a host name is the caller's:
``webhooks.py`` resolves a callback URL's host when it delivers, checks every
address with ``address_allowed`` and connects to one of those it checked.

* Audio URLs (``ESLENGINE_MEDIA_URL_PREFIXES``) are compared by their parsed
  parts, never as text: the scheme, host and port must be the prefix's, and
  the path must lie under the prefix's path by whole segments, with no
  ``.`` or ``..`` segment (percent-encoded or not). ``https://media.example.com``
  allows ``https://media.example.com/a.wav``, not
  ``https://media.example.com.attacker.net/a.wav``.
* Webhook targets must fully match one of the operator's regexes
  (``ESLENGINE_WEBHOOK_ALLOW``). Where a regex writes its host out plainly
  (``https://hooks\\.example\\.com/.*``, or with the dots left unescaped), the
  URL's parsed host must also be exactly that host: a dot there is a dot,
  so ``hooks.example.com`` cannot let ``hooksXexample.com`` through. A regex
  whose host is itself a pattern (``https://[a-z]+\\.example\\.com/.*``) is
  only matched; ``unchecked_hosts`` names those, for a warning at start-up.
* The addresses a webhook host resolves to must be public (``is_global``,
  not multicast or reserved: not loopback, private, link-local, shared or
  documentation space) unless a network of ``ESLENGINE_WEBHOOK_ALLOW_NETWORKS``
  holds them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Origin:
    """A URL's scheme, host (lower case) and port (the scheme's default when
    it names none)."""

    scheme: str
    host: str
    port: int


def _split(url: str) -> tuple[Origin, SplitResult] | None:
    """``url``'s origin and parts; None for anything but a plain http(s) URL
    with a host (no user info, a valid port)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return Origin(parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme]), parts


def origin(url: str) -> Origin | None:
    split = _split(url)
    return split[0] if split else None


@dataclass(frozen=True)
class MediaPrefix:
    origin: Origin  # host "" and port 0: any host (an entry of only a scheme)
    path: str  # "/" for a whole host


def parse_media_prefix(prefix: str) -> MediaPrefix:
    """An entry of ``ESLENGINE_MEDIA_URL_PREFIXES``: an http(s) URL of a host,
    optionally with a path (no query or fragment), or only a scheme
    (``https://``: any host). ValueError for anything else."""
    prefix = prefix.strip()
    if prefix in ("http://", "https://"):
        return MediaPrefix(Origin(prefix[:-3], "", 0), "/")
    split = _split(prefix)
    if split is None or split[1].query or split[1].fragment:
        raise ValueError("%r is not an http(s) URL of a host and an optional path" % prefix)
    return MediaPrefix(split[0], split[1].path or "/")


@functools.lru_cache(maxsize=64)
def _media_prefixes(prefixes: tuple[str, ...]) -> tuple[MediaPrefix, ...]:
    """The entries that parse (Config.from_env refuses the others; a Config
    built in code may hold some, which then allow nothing)."""
    out = []
    for prefix in prefixes:
        try:
            out.append(parse_media_prefix(prefix))
        except ValueError:
            continue
    return tuple(out)


def media_url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` lies under one of ``prefixes`` (see the module docstring)."""
    split = _split(url)
    if split is None:
        return False
    url_origin, parts = split
    path = parts.path or "/"
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return False
    for prefix in _media_prefixes(tuple(prefixes)):
        if not prefix.origin.host and prefix.origin.scheme == url_origin.scheme:
            return True
        if prefix.origin != url_origin:
            continue
        if prefix.path.endswith("/"):
            if path.startswith(prefix.path):
                return True
        elif path == prefix.path or path.startswith(prefix.path + "/"):
            return True
    return False


# ---------------------------------------------------------------- webhooks

_SCHEME = re.compile(r"\^?(?:https?|https\??|https\[s\]\?)://")
_HOST_CHAR = re.compile(r"[A-Za-z0-9-]")
_QUANTIFIERS = "*+?{"


def _top_level_alternation(pattern: str) -> bool:
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


@functools.lru_cache(maxsize=256)
def literal_host(pattern: str) -> str | None:
    """The host a webhook regex names plainly, lower case: its scheme is
    written out (``https://``, ``https?://``) and its host is letters,
    digits, ``-`` and dots (escaped or not, never quantified) up to a ``:``,
    a ``/`` (or a group that starts with one) or the end. None when the host is itself a pattern, or the regex
    has a top-level alternative."""
    scheme = _SCHEME.match(pattern)
    if scheme is None or _top_level_alternation(pattern):
        return None
    i, host = scheme.end(), []
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("\\.", i):
            host.append(".")
            i += 2
        elif ch == "." or _HOST_CHAR.fullmatch(ch):
            host.append(ch)
            i += 1
        else:
            break
        if i < len(pattern) and pattern[i] in _QUANTIFIERS:
            return None
    rest = pattern[i:]
    if not host or not (rest in ("", "$", "/?", "/?$")
                        or rest.startswith((":", "/", "\\/", "(/", "(:", "(?:/", "(?::", "(\\/", "(?:\\/"))):
        return None
    return "".join(host).lower()


def webhook_url_allowed(url: str, patterns: Sequence[str]) -> bool:
    """Whether ``url`` fully matches one of ``patterns`` and, where that
    pattern names its host plainly (``literal_host``), has exactly that host."""
    url_origin = origin(url)
    if url_origin is None:
        return False
    for pattern in patterns:
        if re.fullmatch(pattern, url):
            host = literal_host(pattern)
            if host is None or host == url_origin.host:
                return True
    return False


def unchecked_hosts(patterns: Sequence[str]) -> list[str]:
    """The patterns whose host is only matched as a regex, not compared."""
    return [p for p in patterns if literal_host(p) is None]


# ---------------------------------------------------------------- addresses


def parse_networks(text: str) -> tuple[str, ...]:
    """Comma-separated networks (``10.0.0.0/8``, ``127.0.0.1``, ``fd00::/8``),
    each returned in canonical form; ValueError for one that is not."""
    out = []
    for word in (w.strip() for w in text.split(",")):
        if word:
            out.append(str(ipaddress.ip_network(word, strict=False)))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _networks(networks: tuple[str, ...]) -> tuple[_IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def _embedded_v4(ip: _IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(address: str, networks: Sequence[str] = ()) -> bool:
    """Whether a webhook may connect to ``address``: it is inside one of
    ``networks``, or it is public (global, not multicast or reserved). An
    address that embeds an IPv4 address (IPv4-mapped, NAT64 ``64:ff9b::/96``,
    6to4) is judged by the IPv4 address, which is where it leads."""
    try:
        ip: _IPAddress = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    target: _IPAddress = _embedded_v4(ip) or ip
    if any(target in net for net in _networks(tuple(networks)) if net.version == target.version):
        return True
    return target.is_global and not target.is_multicast and not target.is_reserved


def ip_literal(host: str) -> bool:
    """Whether a URL's host is an IP address rather than a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True

"""API keys: who is calling, what they may do, and whose calls they see.

Two kinds of key:

- **Operator keys** (``ESLENGINE_API_KEYS``): the deployment's own. Every
  scope, every call (also calls queued from Python or a bare ``XADD``), and
  ids taken as given.
- **Client keys**, made with ``eslengine keys create`` and kept in Redis as
  a SHA-256 digest of the token (the token itself is shown once, when it is
  made). Each has a name, scopes, optional limits (calls a minute) and a
  caller-ID allow-list, and may carry its own webhook secret. A client key
  sees only the calls it placed: any other id is "no call with this id".
- A client key may belong to an **account** (``accounts``): it then sees
  every call of its account (and no other) and, with the ``manage`` scope,
  changes what the account holds. It may not have the ``admin`` scope.

A call id a client key chooses names the call within that key's own
namespace: the engine stores the call (and the switch sees its first leg)
under ``scoped_id(key, id)``, a UUID derived from the key and the id, so that
choosing an id that another key's call already has is not an error, and
nothing tells one key which ids another key uses.

The decisions are plain functions (``scoped_id``, ``caller_id_allowed``,
``rate_window``); ``KeyStore`` holds the Redis side.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from .calls import CallRequest
from .errors import ConfigError, ValidationError
from .store import Keys, redis_errors

# What a key may do. ``admin`` sees and cancels every call, whoever placed
# it, and manages every account; ``manage`` changes what its own account
# holds (users, devices, groups, media, click-to-call resources, keys).
SCOPES = ("place", "read", "cancel", "manage", "admin")
DEFAULT_SCOPES = ("place", "read", "cancel")
ACCOUNT_SCOPES = ("place", "read", "cancel", "manage")
TOKEN_PREFIX = "esk_"
# Client keys looked up in Redis are remembered this long by each API
# process: a revoked key stops working within this time.
CACHE_SECONDS = 5.0
# The namespace of scoped call ids (a fixed, random UUID).
_ID_NAMESPACE = uuid.UUID("7c4b1e0e-5f0a-4d65-9a43-2b8e1f6d3c90")
_CALLER_ID = re.compile(r"\+?[0-9]{1,20}\*?")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.:@-]{0,63}")


@dataclass(frozen=True)
class ApiKey:
    """One key, without its token."""

    id: str
    name: str = ""
    scopes: frozenset[str] = frozenset(DEFAULT_SCOPES)
    # Caller-ID numbers calls placed with this key may present: exact
    # numbers, or prefixes ending in '*'. Empty: any number policy allows.
    caller_ids: tuple[str, ...] = ()
    # Calls a minute this key may place (0: no limit of its own).
    rate_per_minute: int = 0
    webhook_secret: str = field(default="", repr=False)
    created_at: str = ""
    operator: bool = False
    # The account the key belongs to ('' for none).
    account: str = ""

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def sees_all(self) -> bool:
        return self.operator or ("admin" in self.scopes and not self.account)

    def sees_account(self, account: str) -> bool:
        """Whether the key sees (and, with its scopes, changes) ``account``."""
        return self.sees_all or (bool(self.account) and self.account == account)

    def to_public(self) -> dict[str, object]:
        """The key as ``eslengine keys list`` shows it (no secret)."""
        return {"id": self.id, "name": self.name, "scopes": sorted(self.scopes), "caller_ids": list(self.caller_ids),
                "rate_per_minute": self.rate_per_minute, "webhook_secret": bool(self.webhook_secret),
                "created_at": self.created_at, "account": self.account or None}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def operator_key(token: str) -> ApiKey:
    """The operator key a token of ``ESLENGINE_API_KEYS`` stands for."""
    return ApiKey(id="op-" + token_digest(token)[:10], name="operator", scopes=frozenset(SCOPES), operator=True)


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ''."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" else ""


def operator_token(token: str, keys: Iterable[str]) -> bool:
    """Whether ``token`` is one of the operator ``keys``; every key is
    compared, in constant time each."""
    if not token:
        return False
    given = token.encode("utf-8", "surrogatepass")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given, key.encode("utf-8", "surrogatepass"))
    return found


def scoped_id(key: ApiKey, chosen: str) -> str:
    """Where a call whose id ``chosen`` was chosen by ``key`` is stored (and
    the first leg's uuid on the switch). Operator keys' ids are their own."""
    if key.operator:
        return chosen
    return str(uuid.uuid5(_ID_NAMESPACE, "%s/%s" % (key.id, chosen)))


def caller_id_allowed(key: ApiKey, number: str) -> bool:
    """Whether calls placed with ``key`` may present caller-ID ``number``."""
    if not key.caller_ids:
        return True
    for allowed in key.caller_ids:
        if allowed.endswith("*"):
            if number.startswith(allowed[:-1]):
                return True
        elif number == allowed:
            return True
    return False


def apply_caller_ids(key: ApiKey, request: CallRequest) -> CallRequest:
    """``request`` as ``key``'s caller-ID allow-list lets it be placed: every
    number it presents is on the list, and with no number of its own it
    presents the list's first number (not the other party's, which the
    second party would otherwise see). ``ValidationError`` naming the field
    when a number is not allowed."""
    if not key.caller_ids:
        return request
    for name, number in (("caller_id_number", request.caller_id_number),
                         ("a.caller_id_number", request.a.caller_id_number),
                         ("b.caller_id_number", request.b.caller_id_number)):
        if number is not None and not caller_id_allowed(key, number):
            raise ValidationError(name, "not a caller ID this key may present (allowed: %s)"
                                  % ", ".join(key.caller_ids))
    for name in ("a", "b"):
        if request.party(name).show_other_number:
            raise ValidationError("%s.show_other_number" % name,
                                  "this key presents only the caller IDs on its allow-list")
    if request.caller_id_number is not None:
        return request
    exact = [n for n in key.caller_ids if not n.endswith("*")]
    if not exact:
        raise ValidationError("caller_id_number", "required with this key (allowed: %s)" % ", ".join(key.caller_ids))
    return dataclasses.replace(request, caller_id_number=exact[0])


def rate_window(now: float) -> tuple[int, float]:
    """The minute ``now`` falls in, and the seconds until the next one."""
    minute = int(now // 60)
    return minute, (minute + 1) * 60 - now


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if not scopes or unknown:
        raise ConfigError("scopes: %s; choose from %s" % (
            "unknown scope %s" % ", ".join(sorted(unknown)) if unknown else "none given", ", ".join(SCOPES)))
    return scopes


def parse_caller_ids(values: Iterable[str]) -> tuple[str, ...]:
    out = []
    for value in values:
        value = value.strip()
        if not _CALLER_ID.fullmatch(value):
            raise ConfigError("caller ID %r: digits with an optional leading '+' and trailing '*'" % value)
        out.append(value)
    return tuple(out)


def _from_hash(data: Mapping[str, str]) -> ApiKey:
    return ApiKey(
        id=data["id"],
        name=data.get("name", ""),
        scopes=frozenset(s for s in data.get("scopes", "").split(",") if s),
        caller_ids=tuple(s for s in data.get("caller_ids", "").split(",") if s),
        rate_per_minute=int(data.get("rate_per_minute") or 0),
        webhook_secret=data.get("webhook_secret", ""),
        created_at=data.get("created_at", ""),
        account=data.get("account", ""),
    )


class KeyStore:
    """Client keys in Redis under ``prefix`` (``Keys.apikey``, ``Keys.apikeys``,
    ``Keys.apikey_rate``)."""

    def __init__(self, client: redis.Redis, prefix: str, *, clock: object = time.monotonic) -> None:
        self.redis: Any = client  # replies are str (decode_responses); see store.executor
        self.prefix = prefix
        self.keys = Keys(prefix)
        self._key = self.keys.apikey
        self._index = self.keys.apikeys
        self._clock = clock
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: Iterable[str] = DEFAULT_SCOPES, *, caller_ids: Iterable[str] = (),
               rate_per_minute: int = 0, webhook_secret: str = "", now: str = "",
               account: str = "") -> tuple[ApiKey, str]:
        """Make a key (of ``account``, if given); returns it and its token
        (which is not kept)."""
        if not _NAME.fullmatch(name):
            raise ConfigError("name %r: 1 to 64 letters, digits, spaces or _ . : @ -" % name)
        scopes = frozenset(scopes)
        if not scopes or not scopes <= set(SCOPES):
            raise ConfigError("scopes: choose from %s" % ", ".join(SCOPES))
        if rate_per_minute < 0:
            raise ConfigError("rate: must be 0 or more")
        if account and "admin" in scopes:
            raise ConfigError("scopes: an account's key may not have the admin scope (it would see every call)")
        key = ApiKey(id="key_" + secrets.token_hex(6), name=name, scopes=scopes,
                     caller_ids=parse_caller_ids(caller_ids), rate_per_minute=rate_per_minute,
                     webhook_secret=webhook_secret, created_at=now, account=account)
        token = new_token()
        digest = token_digest(token)
        fields = {"id": key.id, "name": key.name, "scopes": ",".join(sorted(key.scopes)),
                  "caller_ids": ",".join(key.caller_ids), "rate_per_minute": str(key.rate_per_minute),
                  "webhook_secret": key.webhook_secret, "created_at": key.created_at}
        if account:
            fields["account"] = account
        with redis_errors("create key"):
            pipe = self.redis.pipeline()
            pipe.hset(self._key(digest), mapping=fields)
            pipe.hset(self._index, key.id, digest)
            pipe.execute()
        return key, token

    def by_token(self, token: str) -> ApiKey | None:
        """The client key of ``token``, or None (looked up at most every
        CACHE_SECONDS per token)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        digest = token_digest(token)
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        with redis_errors("read key"):
            data = self.redis.hgetall(self._key(digest))
        key = _from_hash(_text(data)) if data else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, key)
        return key

    def get(self, key_id: str) -> ApiKey | None:
        with redis_errors("read key"):
            digest = self.redis.hget(self._index, key_id)
            data = self.redis.hgetall(self._key(_text1(digest))) if digest else {}
        return _from_hash(_text(data)) if data else None

    def list(self, account: str | None = None) -> list[ApiKey]:
        """Every key, or ``account``'s ('' for keys of no account)."""
        with redis_errors("list keys"):
            digests = self.redis.hgetall(self._index)
            pipe = self.redis.pipeline(transaction=False)
            for digest in digests.values():
                pipe.hgetall(self._key(_text1(digest)))
            found = pipe.execute()
        keys = (_from_hash(_text(d)) for d in found if d)
        return sorted((k for k in keys if account is None or k.account == account), key=lambda k: (k.created_at, k.id))

    def revoke(self, key_id: str) -> bool:
        with redis_errors("revoke key"):
            digest = self.redis.hget(self._index, key_id)
            if not digest:
                return False
            pipe = self.redis.pipeline()
            pipe.delete(self._key(_text1(digest)))
            pipe.hdel(self._index, key_id)
            pipe.execute()
        return True

    def take_call(self, key: ApiKey, now: float) -> float:
        """Count one call against ``key``'s rate: 0.0 when it may be
        placed, else the seconds until it may (the call is not counted)."""
        if not key.rate_per_minute:
            return 0.0
        minute, left = rate_window(now)
        counter = self.keys.apikey_rate(key.id, minute)
        with redis_errors("count calls"):
            pipe = self.redis.pipeline()
            pipe.incr(counter)
            pipe.expire(counter, 120)
            count = pipe.execute()[0]
            if count > key.rate_per_minute:
                self.redis.decr(counter)
                return left
        return 0.0


def _text(data: Mapping[object, object]) -> dict[str, str]:
    return {_text1(k): _text1(v) for k, v in data.items()}


def _text1(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

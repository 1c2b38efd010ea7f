"""Accounts and what they own: users, devices, groups of endpoints, media,
and saved click-to-call resources (``clicktocall``). API keys belong to an
account too (``apikeys.ApiKey.account``).

    account ─┬─ users    a person: a FreeSWITCH endpoint and/or a follow-me number
             ├─ devices  one FreeSWITCH endpoint, optionally owned by a user
             ├─ groups   users, devices and endpoints, rung all at once or one by one
             ├─ media    announcements and ring tones the switch can play, by id
             └─ clicktocall  saved click-to-call resources (clicktocall.py)

An endpoint is anything the native API dials (``destinations.py``): a
directory user ``user/<ext>[@<domain>]`` on an allowed domain, a SIP URI on
an allowed domain, or a phone number; it passes the same policy. Nothing
here builds a dial string: ringing a user, a device or a group becomes a
list of destinations and a mode (``simultaneous`` or ``sequential``) of a
native request's party, which ``calls.parse_request`` validates again.

Groups are expanded here rather than dialed as FreeSWITCH's ``group/<name>``:
a directory group lives in the switch's own XML directory, which the engine
neither writes nor reads, while a group of this account names the account's
own users, devices and numbers.

The model and its validation are plain functions on JSON documents
(``parse_item``, ``merge_patch``, ``resolve_extension``, ``referrers``);
``AccountStore`` holds the Redis side.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from . import calls
from .config import Config
from .destinations import parse_destination
from .errors import ValidationError
from .store import Keys, redis_errors

KINDS = ("users", "devices", "groups", "media", "clicktocall")
# Items of one kind an account may hold (each kind is one Redis hash, read whole).
MAX_ITEMS = 1000
MAX_NAME = 128
MAX_MEMBERS = 20
STRATEGIES = ("simultaneous", "sequential")
# What an extension or a group member may name, besides an endpoint.
REFERENCE_KINDS = {"user": "users", "device": "devices", "group": "groups"}


def new_id() -> str:
    """An id of an account or an item: 32 hex digits (Kazoo's shape)."""
    return uuid.uuid4().hex


def valid_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


# ---------------------------------------------------------------- fields


def check_object(name: str, value: object, known: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(name or "body", "must be an object")
    known = frozenset(known)
    for key in value:
        if key not in known:
            where = "%s.%s" % (name, key) if name else key
            raise ValidationError(where[:60] if isinstance(key, str) and key else name or "body",
                                  "unknown field (known: %s)" % ", ".join(sorted(known)))
    return value


def parse_name(name: str, value: object, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise ValidationError(name, "required: 1 to %d characters" % MAX_NAME)
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME:
        raise ValidationError(name, "must be 1 to %d characters" % MAX_NAME)
    if not value.isprintable() or value != value.strip():
        raise ValidationError(name, "printable characters only, no blanks at either end")
    return value


def parse_endpoint(name: str, value: object, config: Config) -> str:
    """An endpoint as the native API dials it (E.164 for a phone number)."""
    return str(parse_destination(name, value, config))


def parse_number(name: str, value: object, config: Config) -> str:
    """A phone number (E.164), as a follow-me number must be."""
    destination = parse_destination(name, value, config)
    if destination.kind != "e164":
        raise ValidationError(name, "must be a phone number (E.164, e.g. +15551230001)")
    return destination.number


def parse_reference(name: str, value: object, config: Config) -> str:
    """``user:<id>``, ``device:<id>``, ``group:<id>`` or an endpoint."""
    if not isinstance(value, str) or not value:
        raise ValidationError(name, "required: user:<id>, device:<id>, group:<id> or an endpoint "
                                    "(+15551230001, user/1000, sip:alice@example.com)")
    kind, sep, item_id = value.partition(":")
    if sep and kind in REFERENCE_KINDS:
        if not valid_id(item_id):
            raise ValidationError(name, "%s:<id>: the id is 32 hex digits" % kind)
        return value
    return parse_endpoint(name, value, config)


# ---------------------------------------------------------------- items


def parse_user(data: Mapping[str, Any], config: Config) -> dict[str, Any]:
    spec = check_object("", data, ("name", "endpoint", "follow_me", "ring"))
    out: dict[str, Any] = {"name": parse_name("name", spec.get("name"))}
    if spec.get("endpoint") is not None:
        out["endpoint"] = parse_endpoint("endpoint", spec["endpoint"], config)
    if spec.get("follow_me") is not None:
        out["follow_me"] = parse_number("follow_me", spec["follow_me"], config)
    out["ring"] = _choice("ring", spec.get("ring"), STRATEGIES, "simultaneous")
    return out


def parse_device(data: Mapping[str, Any], config: Config) -> dict[str, Any]:
    spec = check_object("", data, ("name", "endpoint", "owner"))
    out: dict[str, Any] = {"name": parse_name("name", spec.get("name")),
                           "endpoint": parse_endpoint("endpoint", spec.get("endpoint"), config)}
    owner = spec.get("owner")
    if owner is not None:
        if not isinstance(owner, str) or not valid_id(owner):
            raise ValidationError("owner", "a user's id (32 hex digits)")
        out["owner"] = owner
    return out


def parse_group(data: Mapping[str, Any], config: Config) -> dict[str, Any]:
    spec = check_object("", data, ("name", "members", "strategy"))
    members = spec.get("members")
    if not isinstance(members, list) or not members:
        raise ValidationError("members", "a list of 1 to %d of {\"user\": id}, {\"device\": id} or "
                                         "{\"endpoint\": ...}" % MAX_MEMBERS)
    if len(members) > MAX_MEMBERS:
        raise ValidationError("members", "at most %d members" % MAX_MEMBERS)
    out_members = []
    for i, member in enumerate(members):
        name = "members.%d" % i
        item = check_object(name, member, ("user", "device", "endpoint"))
        if len(item) != 1:
            raise ValidationError(name, "give exactly one of user, device or endpoint")
        (kind, value), = item.items()
        if kind == "endpoint":
            out_members.append({"endpoint": parse_endpoint("%s.endpoint" % name, value, config)})
        else:
            if not isinstance(value, str) or not valid_id(value):
                raise ValidationError("%s.%s" % (name, kind), "a %s's id (32 hex digits)" % kind)
            out_members.append({kind: value})
    return {"name": parse_name("name", spec.get("name")), "members": out_members,
            "strategy": _choice("strategy", spec.get("strategy"), STRATEGIES, "simultaneous")}


def parse_media(data: Mapping[str, Any], config: Config) -> dict[str, Any]:
    """A sound the switch can play: ``file`` (under its sound directory),
    ``url`` (under an allowed prefix) or ``say`` (text to speech, where the
    switch has it), exactly as the native request's media fields take them."""
    spec = check_object("", data, ("name", "file", "url", "say", "language", "voice"))
    source = {k: v for k, v in spec.items() if k != "name"}
    try:
        media = calls.parse_media("source", source, config)
    except ValidationError as exc:
        raise ValidationError(exc.field.partition(".")[2] or "file", exc.reason) from None
    if media is None:
        raise ValidationError("file", "give exactly one of file, url or say")
    return {"name": parse_name("name", spec.get("name")), **_media_json(media)}


def _media_json(media: calls.Media) -> dict[str, str]:
    out = media.to_json()
    assert isinstance(out, dict)
    return out


def _choice(name: str, value: object, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(name, "must be one of %s" % ", ".join(choices))
    return value


def merge_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: a null removes a field, an object merges
    into an object, anything else replaces."""
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_patch(out[key], value)
        else:
            out[key] = value
    return out


# ---------------------------------------------------------------- what an account holds


@dataclass(frozen=True)
class Directory:
    """An account's items, read at once (``AccountStore.directory``): each
    kind's items by id, without their ids."""

    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    media: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    clicktocall: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def items(self, kind: str) -> Mapping[str, Mapping[str, Any]]:
        return getattr(self, kind)


def check_references(kind: str, document: Mapping[str, Any], directory: Directory) -> None:
    """Every id ``document`` names is an item of the account
    (``ValidationError`` naming the field otherwise)."""
    if kind == "devices" and document.get("owner") and document["owner"] not in directory.users:
        raise ValidationError("owner", "no user with this id in this account")
    if kind == "groups":
        for i, member in enumerate(document["members"]):
            for ref_kind in ("user", "device"):
                if ref_kind in member and member[ref_kind] not in directory.items(REFERENCE_KINDS[ref_kind]):
                    raise ValidationError("members.%d.%s" % (i, ref_kind), "no %s with this id in this account"
                                          % ref_kind)


def user_destinations(user_id: str, directory: Directory, *, devices: bool = True,
                      follow_me: bool = True) -> list[str]:
    """What ringing a user rings, in order: the user's own endpoint, the
    endpoints of the devices it owns, then its follow-me number."""
    user = directory.users[user_id]
    out = [user["endpoint"]] if user.get("endpoint") and devices else []
    if devices:
        out += [d["endpoint"] for _, d in sorted(directory.devices.items()) if d.get("owner") == user_id]
    if follow_me and user.get("follow_me"):
        out.append(user["follow_me"])
    return _unique(out)


def resolve_extension(name: str, reference: str, directory: Directory) -> tuple[list[str], str]:
    """The destinations and the mode (``simultaneous``/``sequential``) a
    reference rings: a user (``user_destinations``, in the user's ``ring``
    mode), a device, a group (its members in turn expanded, in the group's
    strategy) or an endpoint. ``ValidationError`` naming ``name`` for an id
    the account does not hold or a target with nothing to ring."""
    kind, sep, item_id = reference.partition(":")
    if not sep or kind not in REFERENCE_KINDS:
        return [reference], "sequential"
    items = directory.items(REFERENCE_KINDS[kind])
    if item_id not in items:
        raise ValidationError(name, "no %s %s in this account" % (kind, item_id))
    item = items[item_id]
    if kind == "device":
        return [item["endpoint"]], "sequential"
    if kind == "user":
        found = user_destinations(item_id, directory)
        mode = item.get("ring", "simultaneous")
    else:
        found = []
        for member in item["members"]:
            if "endpoint" in member:
                found.append(member["endpoint"])
            elif "device" in member and member["device"] in directory.devices:
                found.append(directory.devices[member["device"]]["endpoint"])
            elif "user" in member and member["user"] in directory.users:
                found += user_destinations(member["user"], directory)
        mode = item.get("strategy", "simultaneous")
        found = _unique(found)
    if not found:
        raise ValidationError(name, "%s %s has no endpoint to ring" % (kind, item_id))
    return found, mode


def _unique(values: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value, None)
    return list(seen)


def referrers(kind: str, item_id: str, directory: Directory) -> list[str]:
    """What in the account names item ``item_id`` of ``kind`` (``groups/<id>``,
    ``clicktocall/<id>`` ...): such an item may not be deleted."""
    out = []
    singular = {v: k for k, v in REFERENCE_KINDS.items()}.get(kind)
    if kind == "users":
        out += ["devices/%s" % i for i, d in sorted(directory.devices.items()) if d.get("owner") == item_id]
    if singular is not None:
        out += ["groups/%s" % i for i, g in sorted(directory.groups.items())
                if any(m.get(singular) == item_id for m in g["members"])]
        out += ["clicktocall/%s" % i for i, c in sorted(directory.clicktocall.items())
                if c.get("extension") == "%s:%s" % (singular, item_id)]
    if kind == "media":
        out += ["clicktocall/%s" % i for i, c in sorted(directory.clicktocall.items())
                if item_id in (c.get("ringback"), c.get("announcement"),
                               (c.get("music_on_hold") or {}).get("media_id"))]
    return out


def parse_item(kind: str, data: Mapping[str, Any], directory: Directory, config: Config) -> dict[str, Any]:
    """An item of ``kind`` as stored, from a client's document: its fields
    (``parse_user`` ...), the ids it names (``check_references``) and, for a
    click-to-call resource, the native request it makes
    (``clicktocall.check_resource``). ``ValidationError`` naming the field."""
    from . import clicktocall

    parsers = {"users": parse_user, "devices": parse_device, "groups": parse_group, "media": parse_media,
               "clicktocall": clicktocall.parse_resource}
    document = parsers[kind](data, config)
    check_references(kind, document, directory)
    if kind == "clicktocall":
        clicktocall.check_resource(document, directory, config)
    return document


def parse_account(data: Mapping[str, Any]) -> dict[str, Any]:
    spec = check_object("", data, ("name",))
    return {"name": parse_name("name", spec.get("name"))}


# ---------------------------------------------------------------- Redis


class AccountStore:
    """Accounts and their items in Redis under ``prefix`` (``Keys.accounts``,
    ``Keys.account_items``, and ``Keys.c2c_calls`` for clicktocall.py)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.redis: Any = client  # replies are str (decode_responses); see store.executor
        self.prefix = prefix
        self.keys = Keys(prefix)
        self._accounts = self.keys.accounts
        self._kind = self.keys.account_items

    def create_account(self, document: Mapping[str, Any]) -> dict[str, Any]:
        account_id = new_id()
        stored = {"id": account_id, **document}
        with redis_errors("create account"):
            self.redis.hset(self._accounts, account_id, json.dumps(stored))
        return stored

    def account(self, account_id: str) -> dict[str, Any] | None:
        if not valid_id(account_id):
            return None
        with redis_errors("read account"):
            raw = self.redis.hget(self._accounts, account_id)
        return _loads(raw) if raw else None

    def accounts(self) -> list[dict[str, Any]]:
        with redis_errors("list accounts"):
            raw = self.redis.hgetall(self._accounts)
        return sorted((_loads(v) for v in raw.values()), key=lambda a: (a.get("created_at", ""), a["id"]))

    def save_account(self, document: Mapping[str, Any]) -> None:
        with redis_errors("update account"):
            self.redis.hset(self._accounts, document["id"], json.dumps(dict(document)))

    def delete_account(self, account_id: str) -> bool:
        """The account and everything it holds (its calls' records stay,
        until they expire)."""
        with redis_errors("delete account"):
            if not self.redis.hdel(self._accounts, account_id):
                return False
            keys = list(self.redis.scan_iter(match=self.keys.account_pattern(account_id), count=500))
            for start in range(0, len(keys), 500):
                self.redis.delete(*keys[start:start + 500])
        return True

    def directory(self, account_id: str) -> Directory:
        with redis_errors("read account"):
            pipe = self.redis.pipeline(transaction=False)
            for kind in KINDS:
                pipe.hgetall(self._kind(account_id, kind))
            found = pipe.execute()
        return Directory(**{kind: {k: _loads(v) for k, v in raw.items()} for kind, raw in zip(KINDS, found)})

    def items(self, account_id: str, kind: str) -> list[dict[str, Any]]:
        with redis_errors("list %s" % kind):
            raw = self.redis.hgetall(self._kind(account_id, kind))
        return sorted((dict(_loads(v), id=k) for k, v in raw.items()), key=lambda d: (d.get("created_at", ""), d["id"]))

    def item(self, account_id: str, kind: str, item_id: str) -> dict[str, Any] | None:
        if not valid_id(item_id):
            return None
        with redis_errors("read %s" % kind):
            raw = self.redis.hget(self._kind(account_id, kind), item_id)
        return dict(_loads(raw), id=item_id) if raw else None

    def count(self, account_id: str, kind: str) -> int:
        with redis_errors("count %s" % kind):
            return int(self.redis.hlen(self._kind(account_id, kind)))

    def add(self, account_id: str, kind: str, document: Mapping[str, Any], now: str) -> dict[str, Any]:
        """Store a new item; returns it with its id and times."""
        stored = {"id": new_id(), **document, "created_at": now, "updated_at": now}
        self.save(account_id, kind, stored["id"], stored)
        return stored

    def save(self, account_id: str, kind: str, item_id: str, document: Mapping[str, Any]) -> None:
        stored = {k: v for k, v in document.items() if k != "id"}
        with redis_errors("store %s" % kind):
            self.redis.hset(self._kind(account_id, kind), item_id, json.dumps(stored))

    def delete(self, account_id: str, kind: str, item_id: str) -> bool:
        with redis_errors("delete %s" % kind):
            return bool(self.redis.hdel(self._kind(account_id, kind), item_id))

    def all_items(self, account_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for kind in KINDS:
            for item in self.items(account_id, kind):
                yield kind, item


def _loads(raw: object) -> dict[str, Any]:
    value = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    assert isinstance(value, dict)
    return value

"""Sarv's click-to-call (``/v2/clickToCall/para``) in eslengine's terms.

Sarv rings ``from`` and, when it answers, ``to``. Each side is one or more
numbers, one or more agents, or one group (``fromType``/``toType``), rung
one by one or all at once (``fromStrategy``/``toStrategy``). Here:

    user_id        an account (its id)
    token          an API key of that account (``apikeys``)
    from, to       party a (rung first), party b
      number       a phone number, read in the region of ESLENGINE_DEFAULT_REGION
                   when it has no country code
      agent        a user of the account: what ringing the user rings
                   (``accounts.user_destinations``)
      group        a group of the account: its members, expanded
    *Strategy      ONE_BY_ONE -> mode sequential, TO_ALL -> simultaneous
                   (default: ONE_BY_ONE; a lone agent: the user's own ``ring``;
                   a group: the group's own ``strategy``)
    *RingTime      the party's ``timeout`` (5 to 50 s; default 30)
    *RetryCount    the party's ``retries`` (0 to 3)
    fromCLI, toCLI the caller ID each party sees (``a/b.caller_id_number``)
    timeLimit      talk seconds: ``max_duration`` when ``timeLimitHangup``
                   (default true); without hangup it only times the alerts
    timeLimtAlert  (Sarv's spelling; ``timeLimitAlert`` too) seconds of talk
                   after which both hear an alert: ``warnings`` ``after``
    alertAudio     the alerts' sound: one media item for all, or one each
                   (a media item's id or its name); default a beep
    ringTone       what ``from`` hears while ``to`` rings: ``ringback``

Refused, with the parameter's own error code (the README says why): agent
login filters other than ``na`` (the engine knows no agent states), sticky
agents, ``queueTimeout`` (no queue), ``AGENT_CLI`` (users have no CLI of
their own), a ``mode`` other than ``Live``, and any parameter Sarv does not
have.

``parse_request`` reads the query string into a ``ClickToCall`` and
``native_request`` resolves it against the account into the native
request's document. Every refusal is a ``Refused`` carrying Sarv's numeric
code (a string, as Sarv sends it) and a message naming the parameter.

Pure: plain functions on mappings; the HTTP side is ``http/sarv_v2.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import calls
from .accounts import Directory, resolve_extension, user_destinations, valid_id
from .config import Config
from .destinations import parse_destination
from .errors import ValidationError

PATH = "/v2/clickToCall/para"
TYPES = ("number", "agent", "group")
STRATEGIES = {"ONE_BY_ONE": "sequential", "TO_ALL": "simultaneous"}
DEFAULT_RING = 30
MAX_RING = 50
MAX_RETRY = 3
MAX_LENGTH = 50
# Parameters whose values may be longer than MAX_LENGTH (lists, credentials).
_LONG = frozenset({"from", "to", "token", "alertAudio", "timeLimtAlert", "timeLimitAlert"})
SIDE_PARAMETERS = ("Type", "Strategy", "RingTime", "RetryCount", "WebLogin", "CallLogin", "CLI")
PARAMETERS = (
    "user_id", "token", "from", "to", *("%s%s" % (s, p) for s in ("from", "to") for p in SIDE_PARAMETERS),
    "timeLimit", "timeLimitHangup", "timeLimtAlert", "timeLimitAlert", "alertAudio", "ringTone",
    "sticky", "stickyTimeType", "stickyTimeValue", "stickyAgentBusy", "queueTimeout", "mode",
)
AGENT_CLI = "AGENT_CLI"
_NUMBER = re.compile(r"\+?[0-9]{3,15}")
_CLI = re.compile(r"\+?[0-9]{1,20}")

# Sarv's error codes, per side.
SIDE_CODES = {
    "from": {"type_empty": "1502", "type": "1503", "missing": "1506", "number": "1508", "duplicate_number": "1510",
             "agent": "1512", "duplicate_agent": "1514", "groups": "1516", "group": "1518", "strategy": "1522",
             "ring": "1524", "ring_negative": "1525", "retry": "1528", "retry_negative": "1529",
             "retry_max": "1548", "ring_max": "1550", "count": "1552", "cli": "1554", "WebLogin": "1564",
             "CallLogin": "1565", "unavailable": "1578", "agent_cli": "1582"},
    "to": {"type_empty": "1504", "type": "1505", "missing": "1507", "number": "1509", "duplicate_number": "1511",
           "agent": "1513", "duplicate_agent": "1515", "groups": "1517", "group": "1519", "strategy": "1523",
           "ring": "1526", "ring_negative": "1527", "retry": "1530", "retry_negative": "1531",
           "retry_max": "1549", "ring_max": "1551", "count": "1553", "cli": "1555", "WebLogin": "1566",
           "CallLogin": "1567", "unavailable": "1579", "agent_cli": "1583"},
}
NO_USER_ID, BAD_USER_ID, NO_TOKEN, BAD_TOKEN, CONNECTION = "1002", "1013", "1014", "1020", "1501"
SAME_VALUE, BOTH_EMPTY = "1520", "1521"
LIMIT_EMPTY, LIMIT_NEGATIVE, LIMIT_INVALID = "1532", "1533", "1534"
RING_TONE, FORMAT, ALERT, ALERT_AUDIO, ALERT_AFTER_LIMIT = "1535", "1539", "1545", "1546", "1547"
STICKY_SETTINGS, QUEUE_TIMEOUT, QUEUE_WITHOUT_GROUP, TOO_LONG = "1561", "1563", "1568", "1569"
AUTH_CODES = frozenset({NO_USER_ID, BAD_USER_ID, NO_TOKEN, BAD_TOKEN})


class Refused(Exception):
    """A request Sarv's API would refuse: its ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Side:
    """``from`` or ``to`` as the request gives it."""

    name: str  # "from" | "to"
    type: str  # one of TYPES
    values: tuple[str, ...]  # E.164 numbers, user ids or one group id
    strategy: str | None  # a native mode, or None for the default
    ring_time: int
    retries: int
    cli: str | None

    def code(self, what: str) -> str:
        return SIDE_CODES[self.name][what]


@dataclass(frozen=True)
class ClickToCall:
    user_id: str
    token: str
    a: Side
    b: Side
    time_limit: int | None = None
    hangup: bool = True
    alerts: tuple[int, ...] = ()
    alert_audio: tuple[str, ...] = ()
    ring_tone: str | None = None


def parameters(args: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The request's parameters: each known once, no other (``Refused``
    1539, naming it)."""
    out: dict[str, str] = {}
    for name, value in args:
        if name not in PARAMETERS:
            shown = repr(name[:40]) if name.isprintable() else "(unprintable)"
            raise Refused(FORMAT, "Invalid format: unknown parameter %s" % shown)
        if name in out:
            raise Refused(FORMAT, "Invalid format: %s given more than once" % name)
        if name not in _LONG and len(value) > MAX_LENGTH:
            raise Refused(TOO_LONG, "Value length exceed 50 characters: %s" % name)
        out[name] = value
    if "timeLimtAlert" in out and "timeLimitAlert" in out:
        raise Refused(ALERT, "timeLimitAlert invalid: give timeLimtAlert or timeLimitAlert, not both")
    return out


def credentials(params: Mapping[str, str]) -> tuple[str, str]:
    """(user_id, token); ``Refused`` 1002 or 1014 when one is missing."""
    user_id, token = params.get("user_id", ""), params.get("token", "")
    if not user_id:
        raise Refused(NO_USER_ID, "UserId not provided")
    if not token:
        raise Refused(NO_TOKEN, "Token not found")
    if not valid_id(user_id):
        raise Refused(BAD_USER_ID, "Invalid user id")
    return user_id, token


def _count(params: Mapping[str, str], name: str, default: int, high: int, codes: tuple[str, str, str],
           low: int = 0) -> int:
    """A whole number of ``low`` to ``high``: codes (invalid, negative, over the maximum)."""
    text = params.get(name)
    if text is None:
        return default
    invalid, negative, over = codes
    if text.startswith("-") and text[1:].isdigit() and text[1:].isascii():
        raise Refused(negative, "negative value not allowed for %s" % name)
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        raise Refused(invalid, "%s value invalid: a whole number of seconds" % name)
    value = int(text)
    if value > high:
        raise Refused(over, "crossed maximum limit of %s (%d)" % (name, high))
    if value < low:
        raise Refused(invalid, "%s value invalid: at least %d" % (name, low))
    return value


def _side(params: Mapping[str, str], name: str, config: Config) -> Side:
    codes = SIDE_CODES[name]
    raw_type = params.get(name + "Type")
    if raw_type == "":
        raise Refused(codes["type_empty"], "%sType empty" % name)
    kind = (raw_type or "number").lower()
    if kind not in TYPES:
        raise Refused(codes["type"], "%sType Invalid: number, agent or group" % name)
    raw = params.get(name, "")
    values = [v.strip() for v in raw.split(",")]
    if kind == "group" and len(values) > 1:
        raise Refused(codes["groups"], "Multiple Group Ids found in %s parameter" % name)
    if len(values) > config.max_destinations:
        raise Refused(codes["count"], "crossed maximum limit of %s parameter (%d values)"
                      % (name, config.max_destinations))
    parsed: list[str] = []
    for value in values:
        if kind == "number":
            if not _NUMBER.fullmatch(value):
                raise Refused(codes["number"], "invalid mobile number in %s parameter" % name)
            try:
                number = str(parse_destination(name, value, config))
            except ValidationError as exc:
                raise Refused(codes["number"], "invalid mobile number in %s parameter: %s" % (name, exc.reason)) \
                    from None
            if number in parsed:
                raise Refused(codes["duplicate_number"], "Duplicate Mobile Number exists in %s parameter" % name)
            parsed.append(number)
        elif kind == "agent":
            if not valid_id(value):
                raise Refused(codes["agent"], "Invalid Agent Id in %s parameter" % name)
            if value in parsed:
                raise Refused(codes["duplicate_agent"], "Duplicate Agent Id Exists in %s parameter" % name)
            parsed.append(value)
        else:
            if not valid_id(value):
                raise Refused(codes["group"], "Invalid Group Id in %s parameter" % name)
            parsed.append(value)
    raw_strategy = params.get(name + "Strategy")
    strategy = None
    if raw_strategy is not None:
        if raw_strategy.upper() not in STRATEGIES:
            raise Refused(codes["strategy"], "%sStrategy invalid: ONE_BY_ONE or TO_ALL" % name)
        strategy = STRATEGIES[raw_strategy.upper()]
    ring_time = _count(params, name + "RingTime", DEFAULT_RING, MAX_RING,
                       (codes["ring"], codes["ring_negative"], codes["ring_max"]), low=calls.MIN_RING_TIMEOUT)
    retries = _count(params, name + "RetryCount", 0, MAX_RETRY,
                     (codes["retry"], codes["retry_negative"], codes["retry_max"]))
    for login in ("WebLogin", "CallLogin"):
        login_value = params.get(name + login)
        if login_value is not None and login_value.lower() != "na":
            raise Refused(codes[login], "invalid %s%s value: only na (no filter); the engine does not know "
                          "agents' login states" % (name, login))
    cli = params.get(name + "CLI")
    if cli == AGENT_CLI:
        raise Refused(codes["agent_cli"], "%s-AGENT_CLI not found: agents have no CLI of their own here; give "
                      "the number" % name.capitalize())
    if cli is not None and not _CLI.fullmatch(cli):
        raise Refused(codes["cli"], "invalid CLI in %sCLI" % name)
    return Side(name, kind, tuple(parsed), strategy, ring_time, retries, cli or None)


def _seconds_list(text: str, name: str, code: str) -> tuple[int, ...]:
    items = [v.strip() for v in text.split(",")]
    if not all(v.isascii() and v.isdigit() and len(v) <= 6 and int(v) > 0 for v in items):
        raise Refused(code, "%s invalid: comma separated whole seconds" % name)
    values = tuple(int(v) for v in items)
    if len(set(values)) != len(values):
        raise Refused(code, "%s invalid: a time given twice" % name)
    return values


def parse_request(params: Mapping[str, str], config: Config) -> ClickToCall:
    """The request of ``parameters``' answer; ``Refused`` with Sarv's code."""
    user_id, token = credentials(params)
    if not params.get("from") and not params.get("to"):
        raise Refused(BOTH_EMPTY, "from and to are empty")
    for name in ("from", "to"):
        if not params.get(name):
            raise Refused(SIDE_CODES[name]["missing"], "%s parameter not found" % name)
    a, b = _side(params, "from", config), _side(params, "to", config)
    limit_text = params.get("timeLimit")
    time_limit = None
    if limit_text is not None:
        if limit_text == "":
            raise Refused(LIMIT_EMPTY, "timeLimit empty")
        time_limit = _count(params, "timeLimit", 0, config.max_call_duration,
                            (LIMIT_INVALID, LIMIT_NEGATIVE, LIMIT_INVALID)) or None
        if time_limit is not None and time_limit < calls.MIN_DURATION:
            raise Refused(LIMIT_INVALID, "timeLimit value invalid: at least %d seconds" % calls.MIN_DURATION)
    hangup_text = params.get("timeLimitHangup", "true").lower()
    if hangup_text not in ("true", "false"):
        raise Refused(FORMAT, "Invalid format: timeLimitHangup is true or false")
    alert_text = params.get("timeLimtAlert", params.get("timeLimitAlert"))
    alerts: tuple[int, ...] = ()
    if alert_text is not None:
        alerts = _seconds_list(alert_text, "timeLimitAlert", ALERT)
        if time_limit is None:
            raise Refused(ALERT, "timeLimitAlert invalid: it needs timeLimit")
        if len(alerts) > calls.MAX_WARNINGS:
            raise Refused(ALERT, "timeLimitAlert invalid: at most %d alerts" % calls.MAX_WARNINGS)
        if max(alerts) >= time_limit:
            raise Refused(ALERT_AFTER_LIMIT, "timeLimitAlert must be less than from timeLimit")
    audio: tuple[str, ...] = ()
    if params.get("alertAudio") is not None:
        audio = tuple(v.strip() for v in params["alertAudio"].split(","))
        if not alerts:
            raise Refused(ALERT_AUDIO, "alertAudio invalid announcement id: it needs timeLimtAlert")
        if len(audio) not in (1, len(alerts)) or not all(audio):
            raise Refused(ALERT_AUDIO, "alertAudio invalid announcement id: one for every alert, or one for all")
    _refuse_unsupported(params, (a, b))
    return ClickToCall(user_id=user_id, token=token, a=a, b=b, time_limit=time_limit, hangup=hangup_text == "true",
                       alerts=alerts, alert_audio=audio, ring_tone=params.get("ringTone") or None)


def _refuse_unsupported(params: Mapping[str, str], sides: tuple[Side, Side]) -> None:
    sticky = params.get("sticky")
    if sticky is not None and sticky.lower() != "no":
        raise Refused(FORMAT, "Invalid format: sticky agents are not supported (the engine does not record which "
                      "agent of several answered a call); sticky=no only")
    for name in ("stickyTimeType", "stickyTimeValue", "stickyAgentBusy"):
        if name in params:
            raise Refused(STICKY_SETTINGS, "sticky parameter must be set for %s (sticky agents are not "
                          "supported)" % name)
    if "queueTimeout" in params:
        if not any(s.type == "group" for s in sides):
            raise Refused(QUEUE_WITHOUT_GROUP, "queueTimeout will only work if out of toType and fromType "
                          "at-least one have group as value")
        raise Refused(QUEUE_TIMEOUT, "invalid value of queueTimeout: groups are rung, not queued, here")
    mode = params.get("mode")
    if mode is not None and mode.lower() != "live":
        raise Refused(FORMAT, "Invalid format: mode is Live (a test mode that places no call is not supported)")


def _media(ref: str, directory: Directory, code: str, name: str) -> dict[str, str]:
    """A media item of the account by id or by its (unique) name, as a
    native sound (a file or a URL)."""
    found = directory.media.get(ref)
    if found is None:
        named = [m for m in directory.media.values() if m.get("name") == ref]
        found = named[0] if len(named) == 1 else None
    if found is None:
        raise Refused(code, "%s invalid announcement id: no media item %s in this account"
                      % (name, ref if ref.isprintable() else "(unprintable)"))
    sound = {k: v for k, v in found.items() if k in ("file", "url")}
    if not sound:
        raise Refused(code, "%s invalid announcement id: %s is text to speech; a file or a URL plays here"
                      % (name, ref))
    return sound


def _party(side: Side, directory: Directory) -> dict[str, Any]:
    codes = SIDE_CODES[side.name]
    mode = side.strategy or "sequential"
    if side.type == "number":
        destinations = list(side.values)
    elif side.type == "agent":
        destinations = []
        for agent in side.values:
            if agent not in directory.users:
                raise Refused(codes["agent"], "Invalid Agent Id in %s parameter" % side.name)
            found = user_destinations(agent, directory)
            if not found:
                raise Refused(codes["unavailable"], "%s-Agent is not available: the user has nothing to ring"
                              % side.name.capitalize())
            destinations += [d for d in found if d not in destinations]
        if len(side.values) == 1 and side.strategy is None:
            mode = directory.users[side.values[0]].get("ring", "simultaneous")
    else:
        group = side.values[0]
        if group not in directory.groups:
            raise Refused(codes["group"], "Invalid Group Id in %s parameter" % side.name)
        try:
            destinations, group_mode = resolve_extension(side.name, "group:" + group, directory)
        except ValidationError as exc:
            raise Refused(codes["unavailable"], "%s-Agent is not available: %s" % (side.name.capitalize(),
                                                                                   exc.reason)) from None
        mode = side.strategy or group_mode
    party: dict[str, Any] = {"to": destinations, "mode": mode, "timeout": side.ring_time}
    if side.retries:
        party["retries"] = side.retries
    if side.cli:
        party["caller_id_number"] = side.cli
    return party


def native_request(request: ClickToCall, directory: Directory, config: Config) -> dict[str, Any]:
    """The native request document (the body of ``POST /v1/calls``) of
    ``request`` for the account of ``directory``."""
    a, b = _party(request.a, directory), _party(request.b, directory)
    if set(a["to"]) & set(b["to"]):
        raise Refused(SAME_VALUE, "Same value exists in from and to parameters")
    for party, side in ((a, request.a), (b, request.b)):
        if len(party["to"]) > config.max_destinations:
            raise Refused(side.code("count"), "crossed maximum limit of %s parameter: %d to ring, at most %d"
                          % (side.name, len(party["to"]), config.max_destinations))
    document: dict[str, Any] = {"a": a, "b": b, "dial_first": "a"}
    if request.time_limit and request.hangup:
        document["max_duration"] = request.time_limit
    if request.alerts:
        sounds = [_media(ref, directory, ALERT_AUDIO, "alertAudio") for ref in request.alert_audio]
        document["warnings"] = [{"after": at, **({"sound": sounds[i if len(sounds) > 1 else 0]} if sounds else {})}
                                for i, at in enumerate(request.alerts)]
    if request.ring_tone:
        document["ringback"] = _media(request.ring_tone, directory, RING_TONE, "ringTone")
    return document


# Which of a side's codes a native refusal of a party's field maps to.
_PARTY_FIELDS = (("timeout", "ring", "RingTime"), ("retries", "retry", "RetryCount"),
                 ("caller_id_number", "cli", "CLI"))


def refusal(exc: ValidationError, request: ClickToCall) -> Refused:
    """A native refusal of the translated request as Sarv's code for the
    parameter it comes from."""
    field = exc.field
    for party, side in (("a", request.a), ("b", request.b)):
        if field == party or field.startswith(party + ".to"):
            if side.type == "number":
                return Refused(side.code("number"), "invalid mobile number in %s parameter: %s"
                               % (side.name, exc.reason))
            return Refused(side.code("unavailable"), "%s-Agent is not available: %s"
                           % (side.name.capitalize(), exc.reason))
        for suffix, what, name in _PARTY_FIELDS:
            if field == "%s.%s" % (party, suffix):
                return Refused(side.code(what), "%s%s value invalid: %s" % (side.name, name, exc.reason))
    if field == "caller_id_number":
        return Refused(request.b.code("cli"), "invalid CLI in toCLI: %s" % exc.reason)
    if field == "max_duration":
        return Refused(LIMIT_INVALID, "timeLimit value invalid: %s" % exc.reason)
    if field.startswith("warnings"):
        if ".sound" in field:
            return Refused(ALERT_AUDIO, "alertAudio invalid announcement id: %s" % exc.reason)
        return Refused(ALERT, "timeLimitAlert invalid: %s" % exc.reason)
    if field.startswith("ringback"):
        return Refused(RING_TONE, "ringTone invalid announcement id: %s" % exc.reason)
    return Refused(FORMAT, "Invalid format: %s: %s" % (field, exc.reason))


def placed(callid: str) -> dict[str, str]:
    """Sarv's reply to a call placed; ``callid`` is the call's id."""
    return {"callid": callid, "status": "success", "code": "200"}


def error_reply(code: str, message: str) -> dict[str, str]:
    return {"message": message, "status": "error", "code": code}

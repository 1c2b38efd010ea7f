"""TeleCMI's click-to-call (``/v2/webrtc/click2call``) in eslengine's terms.

TeleCMI rings a user of an app first (its softphones, or its mobile number)
and, when the user answers, the number ``to``. Here:

    user_id       a user of an account: ``<user id>`` (the account is the
                  secret's), or ``<user id>_<account id>`` (TeleCMI's
                  ``<extension>_<app id>`` shape; needed with a key of no account)
    secret        an API key of the account (``apikeys``: kept as a SHA-256 digest)
    webrtc        ring the user's own endpoint and the devices it owns
    followme      ring the user's follow-me number
    to            party b: a number with its country code (``919200000000``)
    callerid      what ``to`` sees: ``b.caller_id_number``
    extra_params  ``metadata``: kept with the call, in its status and webhooks

    party a       the user's destinations (as chosen above), in the user's
                  ``ring`` mode; its phone shows the number it is connected to
    dial_first    a

The request comes as a query string (``query_request``: ``extra_params[name]=``
brackets, or ``extra_params=<JSON object>``) or a JSON body, and
``parse_request`` reads either into a ``Click2Call``. Every refusal is a
``Refused`` carrying TeleCMI's status code and message, which names the
parameter: 400 for a missing or malformed parameter (TeleCMI's "user_id
parameter missing", "secret parameter missing", "Enable webrtc or followme"),
404 "invalid user_id", 407 "invalid app secret".

Pure: plain functions on mappings; the HTTP side is ``http/telecmi_v2.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .accounts import Directory, user_destinations, valid_id
from .errors import ValidationError

PATH = "/v2/webrtc/click2call"
PARAMETERS = ("user_id", "secret", "to", "extra_params", "webrtc", "followme", "callerid")
INITIATED = "Call initiated"
MAX_TEXT = 200
# A number with its country code, as TeleCMI writes them (919200000000);
# E.164 has at most 15 digits.
_NUMBER = re.compile(r"\+?([0-9]{6,15})")
_BRACKET = re.compile(r"extra_params\[([^\[\]]{1,64})\]")


class Refused(Exception):
    """A request TeleCMI's API would refuse: ``status`` (its HTTP status and
    ``code``) and ``msg``."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg


@dataclass(frozen=True)
class Click2Call:
    user_id: str
    secret: str
    to: str  # E.164
    webrtc: bool = True
    followme: bool = False
    callerid: str | None = None  # E.164
    extra_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def user(self) -> str:
        """The user's id."""
        return self.user_id.partition("_")[0]

    @property
    def account(self) -> str:
        """The account the user_id names ('' when it names none)."""
        return self.user_id.partition("_")[2]


def query_request(args: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """A query string's pairs as the JSON body they stand for: each
    ``extra_params[name]=value`` becomes ``extra_params.name``, and
    ``extra_params=<JSON object>`` is read as JSON. A parameter given twice,
    or one TeleCMI does not have, is ``Refused`` (400)."""
    out: dict[str, Any] = {}
    bracketed: dict[str, str] = {}
    for name, value in args:
        match = _BRACKET.fullmatch(name)
        if match:
            key = match.group(1)
            if key in bracketed:
                raise Refused(400, "extra_params[%s] given more than once" % key)
            bracketed[key] = value
            continue
        if name not in PARAMETERS:
            raise Refused(400, "unknown parameter %s (known: %s)" % (_shown(name), ", ".join(PARAMETERS)))
        if name in out:
            raise Refused(400, "%s given more than once" % name)
        out[name] = value
    if bracketed:
        if "extra_params" in out:
            raise Refused(400, "extra_params given both as a whole and as extra_params[name]")
        out["extra_params"] = bracketed
    elif isinstance(out.get("extra_params"), str):
        try:
            out["extra_params"] = orjson.loads(out["extra_params"])
        except orjson.JSONDecodeError:
            raise Refused(400, "extra_params: a JSON object, or extra_params[name]=value pairs") from None
    return out


def _shown(name: str) -> str:
    return repr(name[:40]) if name.isprintable() else "(unprintable)"


def _text(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT or not value.isprintable():
        raise Refused(400, "%s: a string of at most %d printable characters" % (name, MAX_TEXT))
    return value


def _bool(name: str, value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise Refused(400, "%s: true or false" % name)


def _number(name: str, value: object) -> str | None:
    """A number with its country code, as a JSON number or a string of
    digits (a leading + allowed), in E.164."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = str(value)
    match = _NUMBER.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise Refused(400, "%s: a number with its country code, 6 to 15 digits (919200000000)" % name)
    return "+" + match.group(1)


def parse_request(data: object) -> Click2Call:
    """A TeleCMI request (a JSON body, or ``query_request``'s document);
    ``Refused`` naming the parameter."""
    if not isinstance(data, Mapping):
        raise Refused(400, "the body must be a JSON object")
    for name in data:
        if name not in PARAMETERS:
            raise Refused(400, "unknown parameter %s (known: %s)" % (_shown(str(name)), ", ".join(PARAMETERS)))
    user_id = _text("user_id", data.get("user_id"))
    if user_id is None:
        raise Refused(400, "user_id parameter missing")
    secret = _text("secret", data.get("secret"))
    if secret is None:
        raise Refused(400, "secret parameter missing")
    webrtc = _bool("webrtc", data.get("webrtc"), True)
    followme = _bool("followme", data.get("followme"), False)
    if not webrtc and not followme:
        raise Refused(400, "Enable webrtc or followme")
    to = _number("to", data.get("to"))
    if to is None:
        raise Refused(400, "to parameter missing")
    extra = data.get("extra_params")
    if extra is not None and not isinstance(extra, Mapping):
        raise Refused(400, "extra_params: a JSON object")
    return Click2Call(user_id=user_id, secret=secret, to=to, webrtc=webrtc, followme=followme,
                      callerid=_number("callerid", data.get("callerid")), extra_params=dict(extra or {}))


def account_of(request: Click2Call, key_account: str, sees_all: bool) -> str:
    """The account whose user ``request`` names, for a key of
    ``key_account`` (or one that ``sees_all``); ``Refused`` 404 when the
    user_id cannot name a user this key may ring."""
    if not valid_id(request.user) or (request.account and not valid_id(request.account)):
        raise Refused(404, "invalid user_id")
    if sees_all and not key_account:
        if not request.account:
            raise Refused(404, "invalid user_id: with this secret, name the account too (<user id>_<account id>)")
        return request.account
    if request.account and request.account != key_account:
        raise Refused(404, "invalid user_id")
    return key_account


def native_request(request: Click2Call, directory: Directory, *, show_to_number: bool = True) -> dict[str, Any]:
    """The native request document (the body of ``POST /v1/calls``) of
    ``request`` for a user of ``directory``. ``show_to_number``: the user's
    phone shows the number it is connected to (off for a key that presents
    only the caller IDs of its allow-list)."""
    if request.user not in directory.users:
        raise Refused(404, "invalid user_id")
    user = directory.users[request.user]
    destinations = user_destinations(request.user, directory, devices=request.webrtc, follow_me=request.followme)
    if not destinations:
        wanted = " or ".join(w for w, on in (("a registered device (webrtc)", request.webrtc),
                                              ("a follow-me number (followme)", request.followme)) if on)
        raise Refused(400, "the user has no %s to ring" % wanted)
    a: dict[str, Any] = {"to": destinations, "mode": user.get("ring", "simultaneous")}
    if show_to_number:
        a["show_other_number"] = True
    b: dict[str, Any] = {"to": request.to}
    if request.callerid:
        b["caller_id_number"] = request.callerid
    document: dict[str, Any] = {"a": a, "b": b, "dial_first": "a"}
    if request.extra_params:
        document["metadata"] = dict(request.extra_params)
    return document


# Which parameter a native request's field comes from.
_FIELDS = (("a", "user_id"), ("b.caller_id_number", "callerid"), ("b", "to"), ("caller_id_number", "callerid"),
           ("metadata", "extra_params"))


def refusal(exc: ValidationError) -> Refused:
    """A native refusal of the translated request, as TeleCMI's 400 naming
    the parameter it comes from."""
    for prefix, name in _FIELDS:
        if exc.field == prefix or exc.field.startswith(prefix + "."):
            return Refused(400, "%s: %s" % (name, exc.reason))
    return Refused(400, "%s: %s" % (exc.field, exc.reason))


def initiated(request_id: str) -> dict[str, Any]:
    """TeleCMI's reply to a call placed; ``request_id`` is the call's id."""
    return {"code": 200, "msg": INITIATED, "request_id": request_id}


def error_reply(status: int, msg: str) -> dict[str, Any]:
    return {"code": status, "msg": msg}

"""Infobip's click-to-call (``POST /voice/ctc/1/send``) in eslengine's terms.

Infobip rings ``destinationA``, plays it a message (text to speech or an
audio file) and, when that is done, connects it to ``destinationB``. Each
entry of ``messages`` is one such call; here each becomes one native job:

    destinationA      party a, rung first (``dial_first`` a)
    destinationB      party b, rung when a has heard the message
    from              what a is shown: ``a.caller_id_number``
    fromB             what b is shown: ``b.caller_id_number``; without it,
    anonymization       true: b is shown ``from`` too; false (default): b is
                        shown destinationA (``b.show_other_number``)
    text + language   ``announcement`` ``{"say", "language"}`` (language en
                      when not given, as Infobip's)
    audioFileUrl      ``announcement`` ``{"url"}``
    maxDuration       ``max_duration`` (seconds of the connected call)
    warningTime       ``warnings`` ``[{"before_end": warningTime}]`` (a beep)
    retry             ``retry``: ``maxCount`` retries (more than 4 is 4, as
                      Infobip documents) after ``retry_delays`` (Infobip's
                      ladder from minPeriod, capped at maxPeriod)
    notifyUrl         ``callback_url`` with ``callback_format`` infobip+json
    notifyContentType   or infobip+xml: one delivery report, at the end
    bulkId, messageId ``metadata``: carried to the record and the report

Refused (the README says why): ``record`` true (the recording is a file on
the switch's host; the engine has no URL to give for it), and every field
Infobip's click-to-call does not have.

Credentials: ``Authorization: App <token>`` (an API key's token) or
``Basic base64(<account id>:<token>)``; ``credentials`` reads either. Every
refusal is a ``Refused`` carrying the HTTP status, Infobip's ``messageId``
and a text naming the field (``messages[0].destinationA``).

Pure: plain functions on mappings; the HTTP side is ``http/infobip_ctc.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree

from .errors import ValidationError
from .status import FINAL

PATH = "/voice/ctc/1/send"
MESSAGE_FIELDS = (
    "messageId", "from", "fromB", "destinationA", "destinationB", "text", "language", "audioFileUrl", "record",
    "anonymization", "notifyUrl", "notifyContentType", "maxDuration", "warningTime", "retry",
)
RETRY_FIELDS = ("minPeriod", "maxPeriod", "maxCount")
CONTENT_TYPES = {"application/json": "infobip+json", "application/xml": "infobip+xml"}
# Infobip's retry ladder, in minutes: 1, 2, 5, 10, 20, 30 min, 1, 2, 4, 8, 16, 24 h.
LADDER = (1, 2, 5, 10, 20, 30, 60, 120, 240, 480, 960, 1440)
MAX_RETRIES = 4
MAX_MESSAGES = 100
MAX_ID = 200
DEFAULT_LANGUAGE = "en"
_NUMBER = re.compile(r"\+?([0-9]{6,15})")

# Infobip's reply status of an accepted message.
PENDING_ACCEPTED = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED",
                    "description": "Message accepted, pending for delivery."}
DELIVERED = {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET",
             "description": "Message delivered to handset"}
UNDELIVERABLE = {"groupId": 2, "groupName": "UNDELIVERABLE", "id": 9, "name": "UNDELIVERABLE_NOT_DELIVERED",
                 "description": "Message sent not delivered"}

# HTTP status -> Infobip's serviceException messageId.
MESSAGE_IDS = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
               405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
               429: "TOO_MANY_REQUESTS", 503: "SERVICE_UNAVAILABLE"}


class Refused(Exception):
    """A request Infobip's API would refuse: the HTTP ``status``, the
    ``text`` and, for invalid input, the ``field`` at fault."""

    def __init__(self, status: int, text: str, field: str = "") -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.field = field


def _invalid(field: str, reason: str) -> Refused:
    return Refused(400, "%s: %s" % (field, reason), field)


def error_reply(status: int, text: str, field: str = "") -> dict[str, Any]:
    """Infobip's error body: ``requestError.serviceException`` with its
    ``messageId`` and ``text``; ``validationErrors`` names the field."""
    exception: dict[str, Any] = {"messageId": MESSAGE_IDS.get(status, "GENERAL_ERROR"), "text": text}
    if field:
        exception["validationErrors"] = {field: [text.partition(": ")[2] or text]}
    return {"requestError": {"serviceException": exception}}


# ------------------------------------------------------------ credentials


@dataclass(frozen=True)
class Credentials:
    token: str
    account: str = ""  # the account a Basic user names ('' for App)


def credentials(header: str | None) -> Credentials:
    """The ``Authorization`` header's credentials: ``App <token>``, or
    ``Basic base64(<account id>:<token>)`` (missing base64 padding is
    allowed: Infobip's own examples drop some). ``Refused`` 401 otherwise."""
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "app" and value and value.isprintable() and len(value) <= MAX_ID:
        return Credentials(value)
    if scheme.lower() == "basic" and value and len(value) <= 4 * MAX_ID:
        try:
            decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise Refused(401, "Invalid login details: the Basic credentials are not base64 of user:password") \
                from None
        user, colon, password = decoded.partition(":")
        if colon and user and password and decoded.isprintable():
            return Credentials(password, user)
        raise Refused(401, "Invalid login details: Basic needs <account id>:<API key>")
    raise Refused(401, "Invalid login details: send Authorization: App <API key> or Basic <account id:API key>")


# ------------------------------------------------------------ the request


@dataclass(frozen=True)
class Message:
    """One click-to-call of the request, checked."""

    index: int
    destination_a: str  # E.164
    destination_b: str  # E.164
    message_id: str | None = None
    from_a: str | None = None  # E.164
    from_b: str | None = None  # E.164
    text: str | None = None
    language: str | None = None
    audio_url: str | None = None
    anonymization: bool = False
    notify_url: str | None = None
    notify_format: str = "infobip+json"
    max_duration: int | None = None
    warning_time: int | None = None
    retries: int = 0
    retry_delays: tuple[int, ...] = ()  # seconds

    @property
    def field(self) -> str:
        return "messages[%d]" % self.index


@dataclass(frozen=True)
class Send:
    bulk_id: str | None
    messages: tuple[Message, ...]


def _id(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID or not value.isprintable():
        raise _invalid(field, "a string of 1 to %d printable characters" % MAX_ID)
    return value


def _number(field: str, value: object) -> str | None:
    """A number in international format (41793026727; a leading + and a
    JSON number are allowed), as E.164."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        value = str(value)
    match = _NUMBER.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(field, "a number in international format, 6 to 15 digits (41793026727)")
    return "+" + match.group(1)


def _bool(field: str, value: object) -> bool:
    """true or false (Infobip documents ``record`` as a string: "true" too)."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid(field, "true or false")


def _whole(field: str, value: object, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(field, "a whole number")
    if not low <= value <= 10**9:
        raise _invalid(field, "at least %d" % low)
    return value


def _string(field: str, value: object, limit: int = 2000) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _invalid(field, "a string of 1 to %d characters" % limit)
    return value


def retry_delays(min_period: int, max_period: int, count: int) -> tuple[int, ...]:
    """The waits (seconds) before each of ``count`` retries: ``min_period``
    minutes, then each step of Infobip's ladder above it, at most
    ``max_period``, which repeats once reached; every wait ``min_period``
    when the two are equal."""
    minutes = [min_period] + [step for step in LADDER if min_period < step < max_period] + [max_period]
    out = [minutes[min(i, len(minutes) - 1)] for i in range(count)]
    return tuple(60 * m for m in out)


def _retry(field: str, value: object) -> tuple[int, tuple[int, ...]]:
    if value is None:
        return 0, ()
    if not isinstance(value, Mapping):
        raise _invalid(field, "an object with minPeriod, maxPeriod and maxCount")
    for name in value:
        if name not in RETRY_FIELDS:
            raise _invalid("%s.%s" % (field, _shown(name)), "unknown field (known: %s)" % ", ".join(RETRY_FIELDS))
    low = _whole(field + ".minPeriod", value.get("minPeriod"), 1)
    high = _whole(field + ".maxPeriod", value.get("maxPeriod"), 1)
    if low is None or high is None:
        raise _invalid(field + (".minPeriod" if low is None else ".maxPeriod"), "required with retry (minutes)")
    if high < low:
        raise _invalid(field + ".maxPeriod", "at least minPeriod")
    if high > LADDER[-1]:
        raise _invalid(field + ".maxPeriod", "at most %d minutes (24 hours)" % LADDER[-1])
    count = _whole(field + ".maxCount", value.get("maxCount"), 0)
    # Infobip: "Maximum value of the maxCount is 4. Higher value, if entered will be set to 4."
    count = MAX_RETRIES if count is None else min(count, MAX_RETRIES)
    return count, retry_delays(low, high, count)


def _shown(name: object) -> str:
    text = str(name)
    return text[:40] if text.isprintable() else "(unprintable)"


def _message(index: int, data: object) -> Message:
    field = "messages[%d]" % index
    if not isinstance(data, Mapping):
        raise _invalid(field, "an object")
    for name in data:
        if name not in MESSAGE_FIELDS:
            raise _invalid("%s.%s" % (field, _shown(name)), "unknown field")

    def f(name: str) -> str:
        return "%s.%s" % (field, name)

    destination_a = _number(f("destinationA"), data.get("destinationA"))
    if destination_a is None:
        raise _invalid(f("destinationA"), "required")
    destination_b = _number(f("destinationB"), data.get("destinationB"))
    if destination_b is None:
        raise _invalid(f("destinationB"), "required")
    text = _string(f("text"), data.get("text"))
    language = _string(f("language"), data.get("language"), 10)
    audio = _string(f("audioFileUrl"), data.get("audioFileUrl"), 500)
    if text is not None and audio is not None:
        raise _invalid(f("audioFileUrl"), "give text or audioFileUrl, not both")
    if language is not None and text is None:
        raise _invalid(f("language"), "goes with text")
    if _bool(f("record"), data.get("record")):
        raise _invalid(f("record"), "recording is not available: the engine records to a file on the switch's "
                       "host and has no URL to give for it in the delivery report")
    from_a = _number(f("from"), data.get("from"))
    from_b = _number(f("fromB"), data.get("fromB"))
    anonymization = _bool(f("anonymization"), data.get("anonymization"))
    if anonymization and from_b is None and from_a is None:
        raise _invalid(f("anonymization"), "needs from (the number both destinations are shown)")
    notify_url = _string(f("notifyUrl"), data.get("notifyUrl"), 500)
    content_type = data.get("notifyContentType")
    notify_format = "infobip+json"
    if content_type is not None:
        if not isinstance(content_type, str) or content_type.lower() not in CONTENT_TYPES:
            raise _invalid(f("notifyContentType"), "application/json or application/xml")
        if notify_url is None:
            raise _invalid(f("notifyContentType"), "goes with notifyUrl")
        notify_format = CONTENT_TYPES[content_type.lower()]
    max_duration = _whole(f("maxDuration"), data.get("maxDuration"), 1)
    warning = _whole(f("warningTime"), data.get("warningTime"), 1)
    if warning is not None and max_duration is None:
        raise _invalid(f("warningTime"), "needs maxDuration")
    retries, delays = _retry(f("retry"), data.get("retry"))
    return Message(index=index, destination_a=destination_a, destination_b=destination_b,
                   message_id=_id(f("messageId"), data.get("messageId")), from_a=from_a, from_b=from_b, text=text,
                   language=language, audio_url=audio, anonymization=anonymization, notify_url=notify_url,
                   notify_format=notify_format, max_duration=max_duration, warning_time=warning, retries=retries,
                   retry_delays=delays)


def parse_request(data: object) -> Send:
    """The request body; ``Refused`` (400) naming the field."""
    if not isinstance(data, Mapping):
        raise _invalid("body", "a JSON object with bulkId and messages")
    for name in data:
        if name not in ("bulkId", "messages"):
            raise _invalid(_shown(name), "unknown field (known: bulkId, messages)")
    bulk_id = _id("bulkId", data.get("bulkId"))
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages", "a list of 1 to %d messages" % MAX_MESSAGES)
    if len(raw) > MAX_MESSAGES:
        raise _invalid("messages", "at most %d messages a request" % MAX_MESSAGES)
    messages = tuple(_message(i, m) for i, m in enumerate(raw))
    seen: set[str] = set()
    for message in messages:
        if message.message_id is not None:
            if message.message_id in seen:
                raise _invalid(message.field + ".messageId", "given to two messages")
            seen.add(message.message_id)
    return Send(bulk_id, messages)


def native_request(message: Message, bulk_id: str | None) -> dict[str, Any]:
    """The native request document (the body of ``POST /v1/calls``) of one
    message."""
    a: dict[str, Any] = {"to": message.destination_a}
    if message.from_a:
        a["caller_id_number"] = message.from_a
    b: dict[str, Any] = {"to": message.destination_b}
    if message.from_b:
        b["caller_id_number"] = message.from_b
    elif message.anonymization:
        b["caller_id_number"] = message.from_a
    else:
        b["show_other_number"] = True
    document: dict[str, Any] = {"a": a, "b": b, "dial_first": "a"}
    if message.text is not None:
        document["announcement"] = {"say": message.text, "language": message.language or DEFAULT_LANGUAGE}
    elif message.audio_url is not None:
        document["announcement"] = {"url": message.audio_url}
    if message.max_duration is not None:
        document["max_duration"] = message.max_duration
    if message.warning_time is not None:
        document["warnings"] = [{"before_end": message.warning_time}]
    if message.retries:
        document["retry"] = {"attempts": message.retries + 1, "delays": list(message.retry_delays)}
    if message.notify_url is not None:
        document["callback_url"] = message.notify_url
        document["callback_format"] = message.notify_format
    metadata = {"messageId": message.message_id} if message.message_id is not None else {}
    if bulk_id is not None:
        metadata["bulkId"] = bulk_id
    if metadata:
        document["metadata"] = metadata
    return document


# Which message field a native field comes from (the first prefix that fits).
_FIELDS = (
    ("a.caller_id_number", "from"), ("b.caller_id_number", "fromB"), ("b.show_other_number", "anonymization"),
    ("caller_id_number", "from"), ("a", "destinationA"), ("b", "destinationB"),
    ("announcement.say", "text"), ("announcement.language", "language"), ("announcement.url", "audioFileUrl"),
    ("announcement", "text"), ("max_duration", "maxDuration"), ("warnings", "warningTime"),
    ("retry.attempts", "retry.maxCount"), ("retry", "retry.maxPeriod"), ("callback_url", "notifyUrl"),
    ("callback_format", "notifyContentType"), ("metadata", "messageId"),
)


def refusal(exc: ValidationError, message: Message) -> Refused:
    """A native refusal of a message's translation, as Infobip's 400 naming
    the message's field it comes from."""
    name = exc.field
    for prefix, field in _FIELDS:
        if name == prefix or name.startswith(prefix + "."):
            if field == "fromB" and not message.from_b:
                field = "anonymization" if message.anonymization else "from"
            return _invalid("%s.%s" % (message.field, field), exc.reason)
    return _invalid("%s.%s" % (message.field, name), exc.reason)


def accepted(send: Send, message_ids: Sequence[str]) -> dict[str, Any]:
    """Infobip's reply: every message ``PENDING_ACCEPTED``; ``message_ids``
    are the messages' ids (the call's id where the message named none)."""
    out: dict[str, Any] = {}
    if send.bulk_id is not None:
        out["bulkId"] = send.bulk_id
    out["messages"] = [{"to": m.destination_a[1:], "status": dict(PENDING_ACCEPTED), "messageId": message_id}
                       for m, message_id in zip(send.messages, message_ids)]
    return out


# ------------------------------------------------------------ delivery reports

# A FreeSWITCH hangup cause -> the SIP status FreeSWITCH answers it with
# (sofia's hangup_cause_to_sip), which Infobip's voice error ids are built on
# (5000 + the SIP status).
_SIP = {
    "UNALLOCATED_NUMBER": 404, "NO_ROUTE_TRANSIT_NET": 404, "NO_ROUTE_DESTINATION": 404,
    "USER_NOT_REGISTERED": 404, "INVALID_NUMBER_FORMAT": 484, "CALL_REJECTED": 603, "OUTGOING_CALL_BARRED": 403,
    "INCOMING_CALL_BARRED": 403, "USER_BUSY": 486, "NO_USER_RESPONSE": 408, "NO_ANSWER": 480,
    "SUBSCRIBER_ABSENT": 480, "NORMAL_TEMPORARY_FAILURE": 503, "SWITCH_CONGESTION": 503, "GATEWAY_DOWN": 503,
    "NORMAL_CIRCUIT_CONGESTION": 503, "DESTINATION_OUT_OF_ORDER": 502, "NETWORK_OUT_OF_ORDER": 502,
    "RECOVERY_ON_TIMER_EXPIRE": 504, "ORIGINATOR_CANCEL": 487, "INCOMPATIBLE_DESTINATION": 488,
    "MEDIA_TIMEOUT": 408, "CALL_AWARDED_DELIVERED": 500, "UNKNOWN": 500,
}
# Infobip's named voice errors: id -> (name, description, group id, group name, permanent).
_ERRORS = {
    5000: ("VOICE_ANSWERED", "Call answered by human", 0, "OK", True),
    5002: ("EC_VOICE_USER_BUSY", "The end user is currently busy and can not receive the Voice call.", 1,
           "HANDSET_ERRORS", False),
    5003: ("EC_VOICE_NO_ANSWER", "The end user received a call but did not answer it.", 1, "HANDSET_ERRORS",
           False),
    5403: ("EC_VOICE_ERROR_FORBIDDEN", "Received request was rejected.", 2, "USER_ERRORS", True),
    5404: ("EC_VOICE_ERROR_DESTINATION_NOT_FOUND", "The server has definitive information that the user does not "
           "exist at the domain specified in the Request-URI.", 2, "USER_ERRORS", True),
    5408: ("EC_VOICE_ERROR_REQUEST_TIMEOUT", "There was no coverage for a specific destination number or the end "
           "user could not be found in time during the call.", 1, "HANDSET_ERRORS", False),
    5480: ("EC_VOICE_ERROR_TEMPORARILY_NOT_AVAILABLE", "Destination address is currently not available.", 1,
           "HANDSET_ERRORS", False),
    5500: ("EC_VOICE_INTERNAL_SERVER_ERROR", "The server could not fulfill the request due to some unexpected "
           "condition.", 3, "OPERATOR_ERRORS", False),
    5503: ("EC_VOICE_SERVICE_UNAVAILABLE", "The service failed to complete the request.", 3, "OPERATOR_ERRORS",
           False),
}


def voice_error(status: str, cause: str) -> dict[str, Any]:
    """Infobip's ``error`` of a call that ended ``status`` with hangup
    ``cause``: VOICE_ANSWERED for a connected call; else the cause's SIP
    status as Infobip's id (busy 5002 and no answer 5003 have ids of
    their own), EC_UNKNOWN_ERROR naming the cause where Infobip names none."""
    if status == "completed":
        error_id = 5000
    elif cause == "USER_BUSY":
        error_id = 5002
    elif cause in ("NO_ANSWER", "ALLOTTED_TIMEOUT"):
        error_id = 5003
    else:
        error_id = 5000 + _SIP.get(cause, 500)
    if error_id in _ERRORS:
        name, description, group, group_name, permanent = _ERRORS[error_id]
    elif error_id < 5500:
        name, description, group, group_name, permanent = (
            "EC_UNKNOWN_ERROR", "Hangup cause %s" % cause, 2, "USER_ERRORS", True)
    else:
        name, description, group, group_name, permanent = (
            "EC_UNKNOWN_ERROR", "Hangup cause %s" % (cause or "UNKNOWN"), 3, "OPERATOR_ERRORS", True)
    return {"groupId": group, "groupName": group_name, "id": error_id, "name": name, "description": description,
            "permanent": permanent}


def _time(value: object) -> str | None:
    """An ISO 8601 time as Infobip writes it: yyyy-MM-dd'T'HH:mm:ss.SSS+0000."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03d+0000" % (moment.microsecond // 1000)


def report_result(call: Mapping[str, Any]) -> dict[str, Any] | None:
    """Infobip's delivery report entry of a call (``GET /v1/calls/<id>``'s
    document) once it is final; None before."""
    status = call.get("status")
    if status not in FINAL:
        return None
    request = call.get("request") or {}
    metadata = request.get("metadata") or {}
    stamps = call.get("timestamps") or {}
    party_a = request.get("a")
    to = party_a.get("to") if isinstance(party_a, Mapping) else party_a
    caller = party_a.get("caller_id_number") if isinstance(party_a, Mapping) else None
    talk = (call.get("durations") or {}).get("talk_seconds", 0)
    result: dict[str, Any] = {}
    if metadata.get("bulkId") is not None:
        result["bulkId"] = metadata["bulkId"]
    result["messageId"] = metadata.get("messageId", call.get("id"))
    result["to"] = str(to or "").lstrip("+")
    if caller:
        result["from"] = str(caller).lstrip("+")
    times = {"sentAt": _time(stamps.get("created")), "doneAt": _time(stamps.get("ended") or stamps.get(status)),
             "startTime": _time(stamps.get("dialing")), "answerTime": _time(stamps.get("answered")),
             "endTime": _time(stamps.get("ended"))}
    result.update({k: v for k, v in times.items() if v is not None})
    result["duration"] = int(round(float(talk)))
    result["status"] = dict(DELIVERED if status == "completed" else UNDELIVERABLE)
    result["error"] = voice_error(str(status), str(call.get("hangup_cause") or ""))
    return result


def report(call: Mapping[str, Any], fmt: str) -> tuple[bytes, str] | None:
    """The delivery report body of a final call and its content type:
    ``{"results": [...]}`` for infobip+json, ``<reportResponse><results>
    <result>…`` for infobip+xml; None while the call is not final (Infobip
    reports a message once, at its end)."""
    result = report_result(call)
    if result is None:
        return None
    if fmt == "infobip+xml":
        root = ElementTree.Element("reportResponse")
        _xml(ElementTree.SubElement(ElementTree.SubElement(root, "results"), "result"), result)
        return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True), "application/xml"
    return json.dumps({"results": [result]}, separators=(",", ":")).encode(), "application/json"


def _xml(parent: ElementTree.Element, values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        child = ElementTree.SubElement(parent, name)
        if isinstance(value, Mapping):
            _xml(child, value)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        else:
            child.text = str(value)

"""The OpenAPI 3.0 document of the native API, built from the same limits
and constants (``calls``, the ``Config``) that validate requests."""

from __future__ import annotations

from typing import Any

from .. import calls, status
from ..config import Config
from .openapi_accounts import add_accounts, originate_failed, wait_parameters
from .openapi_campaigns import add_campaigns
from .openapi_dnc import add_dnc
from .responses import MAX_BODY

_DESTINATION_PATTERN = (
    r"^(\+[1-9][0-9]{6,14}|\+?[0-9 ().\-/\u00a0]{1,40}|user/[A-Za-z0-9_.-]{1,64}(@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*)?"
    r"|sips?:[A-Za-z0-9_.+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*(:[0-9]{1,5})?)$"
)
_CALLER_ID_NUMBER_PATTERN = r"^\+?[0-9]{1,20}$"
_VARIABLE_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
# What dialstring.check_value refuses, as far as a regex can say it: the
# delimiters, C0/C1 controls, line/paragraph separators and the runs '${',
# '$$', ':_:' and '^^'. Other invisible characters (Unicode Cf, Cn, Co, Cs)
# are refused too.
_TEXT_PATTERN = r"^(?!.*(?:\$\{|\$\$|:_:|\^\^))[^{}\[\]<>()|\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
_TEXT_RULE = (
    "No control or invisible characters (Unicode Cc, Cf, Cn, Co, Cs, Zl, Zp), "
    "none of { } [ ] < > ( ) |, and none of '${', '$$', ':_:', '^^'."
)
# A caller ID name is also a SIP display name: no '"' or backslash either.
_NAME_PATTERN = r'^(?!.*(?:\$\{|\$\$|:_:|\^\^))[^{}\[\]<>()|"\\\x00-\x1f\x7f-\x9f\u2028\u2029]*$'
_NAME_RULE = _TEXT_RULE[:-1] + ", and no '\"' or backslash."


def openapi_document(config: Config) -> dict[str, Any]:
    """The OpenAPI 3.0 description of the API as ``config`` sets it up
    (limits, and whether a bearer key is required)."""
    auth = bool(config.api_keys)

    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref("Error")}}}
        if headers:
            out["headers"] = headers
        return out

    def secured(responses: dict[str, Any]) -> dict[str, Any]:
        if auth:
            responses["401"] = error(
                "Missing or wrong API key.",
                {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Bearer"]}}},
            )
            responses["403"] = error("The key lacks the scope this needs (place, read or cancel).")
        responses["503"] = error(
            "Redis cannot be reached; retry.", {"Retry-After": {"schema": {"type": "string"}}}
        )
        return responses

    id_parameter = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The call's id (a UUID). Anything else, and a call another client key placed, is "
                       "answered 404.",
        "schema": {"type": "string"},
    }
    destination_note = ""
    if config.allow_patterns or config.blocked_prefixes:
        destination_note = " This deployment also refuses E.164 numbers outside its allowed ranges (422)."
    destination = {
        "type": "string",
        "maxLength": 128,
        "pattern": _DESTINATION_PATTERN,
        "description": "An E.164 number (+15551230001) or a FreeSWITCH directory user "
        "(user/1000, user/1000@example.com)." + destination_note,
    }
    text = {"type": "string", "minLength": 1, "pattern": _TEXT_PATTERN}
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "eslengine",
            "version": _version(),
            "description": "Click-to-call through FreeSWITCH: ring leg A, and when it answers, "
            "connect it to leg B. Calls are queued and placed by workers; poll "
            "GET /v1/calls/{id} for the outcome.",
        },
        "paths": {
            "/v1/calls": {
                "post": {
                    "operationId": "placeCall",
                    "summary": "Queue a click-to-call.",
                    "parameters": [{
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Retry-safe placing: the same key (per API key, kept as long as call "
                                       "records) with the same body answers the first call's 202 again "
                                       "(Idempotent-Replayed: true) and places nothing; with another body, 422.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                                   "pattern": "^[\\x20-\\x7e]+$"},
                    }, *wait_parameters()],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("CallRequest")}},
                    },
                    "responses": secured(
                        {
                            "202": {
                                "description": "The job is in the queue.",
                                "headers": {
                                    "Location": {
                                        "description": "/v1/calls/{id}",
                                        "schema": {"type": "string"},
                                    }
                                },
                                "content": {"application/json": {"schema": ref("Accepted")}},
                            },
                            "400": error("The body is not a JSON object (or not application/json), or the "
                                         "Idempotency-Key header or wait is malformed."),
                            "409": error("This key already placed a call with the given id."),
                            "413": error("The body is larger than %d bytes." % MAX_BODY),
                            "422": error("A field is invalid; 'field' names it. A number the call would "
                                         "ring is on a do-not-call list: error and reason do_not_call, "
                                         "field, number and list (global or account)."),
                            "429": error("The key placed as many calls this minute as it may.",
                                         {"Retry-After": {"schema": {"type": "string"}}}),
                            "502": originate_failed(error),
                        }
                    ),
                },
                "get": {
                    "operationId": "listCalls",
                    "summary": "The calls the key may see, newest first, a page at a time.",
                    "parameters": [
                        {"name": "status", "in": "query", "required": False,
                         "description": "Comma-separated statuses: %s." % ", ".join(status.STATUSES),
                         "schema": {"type": "string"}},
                        {"name": "since", "in": "query", "required": False,
                         "description": "Created at or after (ISO 8601).", "schema": {"type": "string"}},
                        {"name": "until", "in": "query", "required": False,
                         "description": "Created at or before (ISO 8601).", "schema": {"type": "string"}},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
                        {"name": "cursor", "in": "query", "required": False,
                         "description": "next_cursor of the page before.", "schema": {"type": "string"}},
                    ],
                    "responses": secured(
                        {
                            "200": {
                                "description": "A page of calls; next_cursor continues it (null at the end). "
                                               "variables.<name>=<value> in the query keeps calls with that "
                                               "variable.",
                                "content": {"application/json": {"schema": ref("CallList")}},
                            },
                            "422": error("A query parameter is invalid; 'field' names it."),
                        }
                    ),
                },
            },
            "/v1/calls/{id}": {
                "parameters": [id_parameter],
                "get": {
                    "operationId": "getCall",
                    "summary": "A call's status and outcome.",
                    "responses": secured(
                        {
                            "200": {
                                "description": "The call.",
                                "content": {"application/json": {"schema": ref("Call")}},
                            },
                            "404": error("No call with this id."),
                        }
                    ),
                },
                "delete": {
                    "operationId": "cancelCall",
                    "summary": "Cancel a call: at once while queued, else a worker hangs it up.",
                    "responses": secured(
                        {
                            "200": {
                                "description": "It was still queued; it is cancelled and will not be dialed.",
                                "content": {"application/json": {"schema": ref("Cancelled")}},
                            },
                            "202": {
                                "description": "It is being dialed or is up; a worker will hang it up.",
                                "content": {"application/json": {"schema": ref("CancelRequested")}},
                            },
                            "404": error("No call with this id."),
                            "409": error("The call has already ended; 'status' says how."),
                        }
                    ),
                },
            },
            "/v1/calls/{id}/events": {
                "parameters": [id_parameter],
                "get": {
                    "operationId": "callEvents",
                    "summary": "A call's status changes as Server-Sent Events, ending with the final one.",
                    "description": (
                        "text/event-stream: one `status` event a change, in order (`id:` its place in the "
                        "call's history; `data:` JSON with `status` and `at`, and on the newest change also "
                        "`call`, the document GET /v1/calls/{id} answers). The stream ends after `completed`, "
                        "`failed` or `cancelled`. Send `Last-Event-ID` when reconnecting to get only later "
                        "changes. A `gone` event: the record expired."),
                    "parameters": [{"name": "Last-Event-ID", "in": "header", "required": False,
                                    "schema": {"type": "string", "pattern": "^[0-9]{1,5}$"}}],
                    "responses": secured(
                        {
                            "200": {
                                "description": "The stream of status changes.",
                                "content": {"text/event-stream": {"schema": {"type": "string"}}},
                            },
                            "404": error("No call with this id."),
                        }
                    ),
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "Whether this API process can reach Redis.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Healthy.",
                            "content": {"application/json": {"schema": ref("Health")}},
                        },
                        "503": {
                            "description": "Redis cannot be reached.",
                            "headers": {"Retry-After": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": ref("Health")}},
                        },
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "Whether calls can be placed: Redis answers and a worker is connected to a node.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Ready; each node up or down.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        "503": {
                            "description": "Redis cannot be reached, or no worker is connected to any node.",
                            "headers": {"Retry-After": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Destination": destination,
                "Party": {
                    "description": "One destination, a list (rung in turn, or all at once with mode "
                    "simultaneous), or an object with per-party options.",
                    "oneOf": [
                        ref("Destination"),
                        {"type": "array", "minItems": 1, "maxItems": config.max_destinations,
                         "items": ref("Destination")},
                        {
                            "type": "object",
                            "required": ["to"],
                            "additionalProperties": False,
                            "properties": {
                                "to": {"oneOf": [ref("Destination"), {"type": "array", "minItems": 1,
                                                                      "maxItems": config.max_destinations,
                                                                      "items": ref("Destination")}]},
                                "mode": {"type": "string", "enum": list(calls.MODES), "default": "sequential"},
                                "timeout": {"type": "integer", "minimum": calls.MIN_RING_TIMEOUT,
                                            "maximum": config.max_ring_timeout,
                                            "description": "Seconds each destination rings."},
                                "retries": {"type": "integer", "minimum": 0, "maximum": config.max_retries},
                                "ignore_early_media": {"type": "boolean", "default": True},
                                "auto_answer": {"type": "boolean", "default": False,
                                                "description": "Ask SIP phones to answer by themselves."},
                                "caller_id_number": {"type": "string", "maxLength": 21,
                                                     "pattern": _CALLER_ID_NUMBER_PATTERN},
                                "caller_id_name": dict(text, maxLength=calls.MAX_NAME, pattern=_NAME_PATTERN),
                                "anonymous": {"type": "boolean", "default": False},
                                "show_other_number": {"type": "boolean", "default": False,
                                                      "description": "Show this party the other party's number."},
                                "presence_id": {"type": "string", "maxLength": 200},
                                "sip_headers": {"type": "object", "maxProperties": calls.MAX_SIP_HEADERS,
                                                "description": "X- headers only.",
                                                "additionalProperties": {"type": "string",
                                                                         "maxLength": calls.MAX_VALUE}},
                            },
                        },
                    ],
                },
                "Media": {
                    "oneOf": [
                        {"type": "string", "enum": ["ring", "us-ring", "uk-ring", "moh", "beep"]},
                        {"type": "object", "additionalProperties": False, "properties": {
                            "file": {"type": "string", "maxLength": 200},
                            "url": {"type": "string", "maxLength": 500},
                            "say": {"type": "string", "maxLength": calls.MAX_SAY},
                            "language": {"type": "string"},
                            "voice": {"type": "string"}}},
                    ],
                },
                "CallRequest": {
                    "type": "object",
                    "required": ["a", "b"],
                    "additionalProperties": False,
                    "properties": {
                        "a": dict(ref("Party"), description="Party A (rung first unless dial_first is b)."),
                        "b": dict(ref("Party"), description="Party B (connected once the first party answers)."),
                        "dial_first": {"type": "string", "enum": list(calls.PARTY_NAMES), "default": "a",
                                       "description": "Which party rings first."},
                        "number_filter": {
                            "description": "Applied to every number before validation: 'digits' keeps digits "
                            "(read as E.164 after a leading '+', else as a national number of 'region'), "
                            "{'regex': ...} keeps the first capture group of the leftmost "
                            "match (RE2 syntax: no back references or lookaround; at most %d characters)."
                            % calls.MAX_FILTER_PATTERN,
                            "oneOf": [{"type": "string", "enum": ["digits"]},
                                      {"type": "object", "additionalProperties": False, "required": ["regex"],
                                       "properties": {"regex": {"type": "string",
                                                                "maxLength": calls.MAX_FILTER_PATTERN}}}],
                        },
                        "region": {"type": "string", "pattern": "^[A-Za-z]{2}$",
                                   "description": "Where numbers written without a country code are (ISO 3166, "
                                   "e.g. US): '(212) 555-0123' is then dialed as +12125550123. Default: "
                                   "ESLENGINE_DEFAULT_REGION (none: such numbers are refused)."},
                        "ringback": dict(ref("Media"), description="What the first party hears while the second "
                                         "rings: ring, us-ring, uk-ring, moh (music on hold), or {file}/{url}."),
                        "music_on_hold": dict(ref("Media"), description="What a party hears while the other holds "
                                              "the call (FreeSWITCH's hold_music on every leg): moh (the switch's "
                                              "own), or {file}/{url}. Needs media: process."),
                        "announcement": dict(ref("Media"), description="Played to the first party when it answers, "
                                             "before the second is rung: {file}, {url} or {say, language, voice} "
                                             "(text to speech where the switch has a TTS module)."),
                        "max_duration": {"type": "integer", "minimum": calls.MIN_DURATION,
                                         "maximum": config.max_call_duration, "nullable": True,
                                         "description": "Seconds the connected call may last; then it is hung up "
                                         "(ALLOTTED_TIMEOUT)."},
                        "warnings": {
                            "type": "array", "maxItems": calls.MAX_WARNINGS, "nullable": True,
                            "description": "Sounds played to both parties at given seconds before the end "
                            "(needs max_duration) or after they were connected.",
                            "items": {"type": "object", "additionalProperties": False, "properties": {
                                "before_end": {"type": "integer", "minimum": 1},
                                "after": {"type": "integer", "minimum": 1},
                                "sound": ref("Media")}},
                        },
                        "record": {
                            "description": "Record the connected call; the file's path is in the call's "
                            "'recording'.",
                            "oneOf": [{"type": "boolean"},
                                      {"type": "object", "additionalProperties": False, "properties": {
                                          "format": {"type": "string", "enum": list(calls.RECORD_FORMATS)},
                                          "stereo": {"type": "boolean"}}}],
                        },
                        "media": {"type": "string", "enum": list(calls.MEDIA), "default": "process",
                                  "description": "bypass/proxy keep media off the switch (no recording, "
                                  "announcement, warnings or ringback then)."},
                        "node": {"type": "string", "nullable": True,
                                 "description": "Place the call on this FreeSWITCH node (its configured name)."},
                        "target_call_id": {"type": "string", "format": "uuid", "nullable": True,
                                           "description": "Place the call on the node holding this channel."},
                        "retry": {
                            "type": "object", "additionalProperties": False, "nullable": True,
                            "description": "Place the whole call again when it fails for one of the reasons in "
                            "'on' (busy: USER_BUSY; no_answer: NO_ANSWER and the like; temporary: network and "
                            "switch trouble). Invalid numbers and refused calls are never retried.",
                            "properties": {
                                "attempts": {"type": "integer", "minimum": 1, "maximum": config.max_attempts,
                                             "default": config.default_attempts},
                                "backoff": {"type": "integer", "minimum": calls.MIN_BACKOFF,
                                            "maximum": calls.MAX_BACKOFF, "default": config.default_retry_backoff,
                                            "description": "Seconds before the second attempt; doubles after "
                                            "each."},
                                "delays": {"type": "array", "minItems": 1,
                                           "maxItems": max(1, config.max_attempts - 1),
                                           "items": {"type": "integer", "minimum": calls.MIN_BACKOFF,
                                                     "maximum": calls.MAX_RETRY_DELAY},
                                           "description": "Seconds before each retry, in order (the last "
                                           "repeats); instead of backoff."},
                                "on": {"type": "array", "items": {"type": "string",
                                                                  "enum": sorted(calls.RETRY_GROUPS)}},
                            },
                        },
                        "lane": {"type": "string", "enum": list(calls.LANES), "default": "interactive",
                                 "description": "Where the call waits: interactive calls (a person waiting "
                                 "for the phone to ring) are always dialed before bulk ones (campaigns, "
                                 "imports), which take only the room interactive calls leave. Its retries "
                                 "keep its lane."},
                        "metadata": {"type": "object", "nullable": True,
                                     "description": "Your own JSON object (at most %d bytes encoded, nested at "
                                     "most %d deep), kept with the call: in its status and every webhook "
                                     "(under request), never sent to the switch."
                                     % (calls.MAX_METADATA, calls.MAX_METADATA_DEPTH)},
                        "callback_url": {"type": "string", "maxLength": 500, "nullable": True,
                                         "description": "Webhook: receives the call's document on every status "
                                         "change, signed (X-Eslengine-Signature: t=<unix time>,v1=<HMAC of "
                                         "'<t>.<body>'>) and retried until delivered. Only URLs the operator "
                                         "allows, on public addresses unless the operator allows others."},
                        "callback_format": {"type": "string", "enum": list(calls.CALLBACK_FORMATS),
                                            "default": "eslengine",
                                            "description": "The webhook body: the engine's own document, or "
                                            "Infobip's delivery report (JSON or XML), sent once, at the end. "
                                            "Needs callback_url."},
                        "caller_id_number": {
                            "type": "string",
                            "nullable": True,
                            "maxLength": 21,
                            "pattern": _CALLER_ID_NUMBER_PATTERN,
                            "description": "Caller id number shown to both legs.",
                        },
                        "caller_id_name": dict(
                            text,
                            nullable=True,
                            maxLength=calls.MAX_NAME,
                            pattern=_NAME_PATTERN,
                            description="Caller id name shown to both legs. " + _NAME_RULE,
                        ),
                        "timeout": {
                            "type": "integer",
                            "nullable": True,
                            "minimum": calls.MIN_RING_TIMEOUT,
                            "maximum": config.max_ring_timeout,
                            "default": config.default_ring_timeout,
                            "description": "Seconds to ring each leg.",
                        },
                        "variables": {
                            "type": "object",
                            "nullable": True,
                            "maxProperties": config.max_variables,
                            "description": "Custom channel variables, set on both legs as eslengine_var_<name>. "
                            "Names match %s. String values: at most %d characters; %s"
                            % (_VARIABLE_NAME_PATTERN, calls.MAX_VALUE, _TEXT_RULE),
                            "additionalProperties": {
                                "anyOf": [
                                    {"type": "string", "maxLength": calls.MAX_VALUE, "pattern": _TEXT_PATTERN},
                                    {"type": "number"},
                                    {"type": "boolean"},
                                ]
                            },
                        },
                        "id": {
                            "type": "string",
                            "format": "uuid",
                            "nullable": True,
                            "description": "Your own id for the call (a UUID); one is made when absent. "
                            "It becomes the A leg's channel UUID.",
                        },
                    },
                },
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status", "a", "b"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": list(status.STATUSES),
                                   "description": "queued; with wait=originate, the status once the first "
                                                  "party's channel exists (or at the deadline)."},
                        "a": {"type": "array", "items": {"type": "string"},
                              "description": "The first party's destinations as they will be dialed (numbers in "
                                             "E.164, however they were written)."},
                        "b": {"type": "array", "items": {"type": "string"},
                              "description": "The second party's, likewise."},
                    },
                },
                "CallList": {
                    "type": "object",
                    "required": ["calls", "next_cursor"],
                    "properties": {
                        "calls": {"type": "array", "items": {
                            "type": "object",
                            "required": ["id", "status"],
                            "properties": {
                                "id": {"type": "string", "format": "uuid"},
                                "status": {"type": "string", "enum": list(status.STATUSES)},
                                "a": {}, "b": {},
                                "variables": {"type": "object"},
                                "created_at": {"type": "string", "nullable": True},
                                "updated_at": {"type": "string", "nullable": True},
                                "ended_at": {"type": "string"},
                                "hangup_cause": {"type": "string"},
                                "ended_by": {"type": "string"},
                                "failed_party": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        }},
                        "next_cursor": {"type": "string", "nullable": True},
                    },
                },
                "Cancelled": {
                    "type": "object",
                    "required": ["id", "status"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": ["cancelled"]},
                    },
                },
                "CancelRequested": {
                    "type": "object",
                    "required": ["id", "status", "cancel"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": [s for s in status.STATUSES if s not in status.FINAL]},
                        "cancel": {"type": "string", "enum": ["requested"]},
                    },
                },
                "Call": {
                    "type": "object",
                    "required": [
                        "id", "status", "a", "b", "caller_id_number", "caller_id_name", "timeout",
                        "variables", "attempts", "timestamps", "durations", "history",
                    ],
                    "properties": {
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": list(status.STATUSES)},
                        "a": ref("Party"),
                        "b": ref("Party"),
                        "request": {"type": "object", "description": "The accepted request, normalised."},
                        "recording": {"type": "string"},
                        "caller_id_number": {"type": "string", "nullable": True},
                        "caller_id_name": {"type": "string", "nullable": True},
                        "timeout": {"type": "integer", "nullable": True},
                        "variables": {"type": "object", "additionalProperties": {"type": "string"}},
                        "key": {"type": "string", "description": "The client API key that placed it."},
                        "account": {"type": "string", "description": "The account it was placed for."},
                        "a_uuid": {"type": "string", "description": "The first leg's uuid on the switch (for a "
                                   "client key's own id, not that id: see the README's 'API keys')."},
                        "b_uuid": {"type": "string"},
                        "node": {"type": "string"},
                        "hangup_cause": {"type": "string"},
                        "a_hangup_cause": {"type": "string"},
                        "b_hangup_cause": {"type": "string"},
                        "ended_by": {"type": "string", "enum": ["a", "b", "api"],
                                     "description": "A completed call: the party that hung up first, or api "
                                                    "(DELETE)."},
                        "failed_party": {"type": "string", "enum": ["a", "b"],
                                         "description": "A failed call: the party whose leg ended it (not "
                                                        "reached, or hung up before the other answered)."},
                        "error": {"type": "string"},
                        "attempts": {"type": "integer", "minimum": 0},
                        "timestamps": {
                            "type": "object",
                            "description": "ISO 8601 UTC times by event: created, queued, dialing, ringing, "
                            "answered, bridged, completed, failed, cancelled, ended, updated.",
                            "additionalProperties": {"type": "string"},
                        },
                        "durations": {
                            "type": "object",
                            "description": "ring_seconds, talk_seconds when known.",
                            "additionalProperties": {"type": "number"},
                        },
                        "history": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["status", "at"],
                                "properties": {
                                    "status": {"type": "string", "enum": list(status.STATUSES)},
                                    "at": {"type": "string"},
                                },
                            },
                        },
                    },
                },
                "Health": {
                    "type": "object",
                    "required": ["status", "redis"],
                    "additionalProperties": False,
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "unavailable"]},
                        "redis": {"type": "string", "enum": ["ok", "unavailable"]},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "error": {
                            "type": "string",
                            "description": "bad_request, invalid, conflict, unauthorized, unavailable, "
                            "not_found, method_not_allowed, request_entity_too_large ...",
                        },
                        "reason": {"type": "string"},
                        "field": {
                            "type": "string",
                            "description": "The offending field, dotted (variables.campaign); 'body' for the body.",
                        },
                        "id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": list(status.FINAL)},
                        "hangup_cause": {"type": "string", "description": "Why a call failed (wait=originate)."},
                    },
                },
            },
        },
    }
    add_accounts(document, config, error, secured)
    add_campaigns(document, error, secured)
    add_dnc(document, error, secured)
    if auth:
        document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"bearer": []}]
    return document


def _version() -> str:
    from .. import __version__

    return __version__


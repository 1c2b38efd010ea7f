"""The OpenAPI document of the Sarv surface (``sarv_v2``), built from
``sarv``'s own constants."""

from __future__ import annotations

from typing import Any

from .. import calls, sarv
from ..config import Config
from . import openapi
from .openapi_telecmi import openapi_path

DOCUMENT = "/v1/openapi/sarv.json"
_DESCRIPTIONS = {
    "user_id": "The account's id.",
    "token": "An API key of the account with the place scope (its token).",
    "from": "Rung first: numbers, agents (user ids) or one group id, comma separated.",
    "to": "Rung when 'from' answers: numbers, agents (user ids) or one group id, comma separated.",
    "Type": "number (default), agent or group.",
    "Strategy": "ONE_BY_ONE (default) or TO_ALL; a lone agent rings as the user is set to, a group as the "
                "group is, unless given.",
    "RingTime": "Ring seconds, %d to %d (default %d)." % (calls.MIN_RING_TIMEOUT, sarv.MAX_RING, sarv.DEFAULT_RING),
    "RetryCount": "Retries, 0 to %d." % sarv.MAX_RETRY,
    "WebLogin": "Only na (the engine knows no agent login states).",
    "CallLogin": "Only na (the engine knows no agent login states).",
    "CLI": "The caller ID this side sees (digits, an optional leading +). AGENT_CLI is refused.",
    "timeLimit": "Talk seconds (0: unlimited; else at least %d)." % calls.MIN_DURATION,
    "timeLimitHangup": "true (default): hang up at timeLimit; false: timeLimit only times the alerts.",
    "timeLimtAlert": "Comma separated seconds of talk after which both hear the alert (at most %d, each below "
                     "timeLimit)." % calls.MAX_WARNINGS,
    "timeLimitAlert": "timeLimtAlert, spelt right.",
    "alertAudio": "Media items (id or name) of the alerts: one for all, or one each. Default: a beep.",
    "ringTone": "A media item (id or name) 'from' hears while 'to' rings.",
    "sticky": "Only no (sticky agents are not supported).",
    "stickyTimeType": "Refused (sticky agents are not supported).",
    "stickyTimeValue": "Refused (sticky agents are not supported).",
    "stickyAgentBusy": "Refused (sticky agents are not supported).",
    "queueTimeout": "Refused (groups are rung, not queued).",
    "mode": "Only Live.",
}


def _description(name: str) -> str:
    for side in ("from", "to"):
        if name.startswith(side) and name[len(side):] in sarv.SIDE_PARAMETERS:
            return "%s: %s" % (side, _DESCRIPTIONS[name[len(side):]])
    return _DESCRIPTIONS[name]


def openapi_document(config: Config) -> dict[str, Any]:
    """Sarv's clickToCall/para as eslengine serves it."""
    parameters = [{"name": name, "in": "query", "required": name in ("user_id", "token", "from", "to"),
                   "description": _description(name), "schema": {"type": "string"}}
                  for name in sarv.PARAMETERS]

    def reply(description: str) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    responses = {
        "200": {"description": "The call is queued; callid is its id.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Placed"}}}},
        "400": reply("A parameter is refused; code is Sarv's (1502 to 1585) and message names it."),
        "401": reply("1002 UserId not provided, 1013 Invalid user id, 1014 Token not found, 1020 Invalid token."),
        "403": reply("code 403: the token lacks the place scope."),
        "429": reply("code 429: the token placed as many calls this minute as it may."),
        "503": reply("1501 Connection Issue: Redis cannot be reached; retry."),
    }
    operations = {
        method: {"operationId": "sarvClickToCall" + method.capitalize(), "summary": "Place a call.",
                 "parameters": parameters, "responses": responses}
        for method in ("get", "post")
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "eslengine: Sarv clickToCall", "version": openapi._version(),
                 "description": "Sarv's click-to-call API on eslengine: ring 'from', then connect 'to'."},
        "paths": {DOCUMENT: openapi_path("sarvOpenApi"), sarv.PATH: operations},
        "components": {"schemas": {
            "Placed": {"type": "object", "required": ["callid", "status", "code"], "additionalProperties": False,
                       "properties": {"callid": {"type": "string", "format": "uuid"},
                                      "status": {"type": "string", "enum": ["success"]},
                                      "code": {"type": "string", "enum": ["200"]}}},
            "Error": {"type": "object", "required": ["message", "status", "code"], "additionalProperties": False,
                      "properties": {"message": {"type": "string"}, "status": {"type": "string", "enum": ["error"]},
                                     "code": {"type": "string", "pattern": "^[0-9]{3,4}$"}}},
        }},
    }

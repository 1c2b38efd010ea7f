"""The OpenAPI document of the TeleCMI surface (``telecmi_v2``), built from
``telecmi``'s own constants."""

from __future__ import annotations

from typing import Any

from .. import calls, telecmi
from ..config import Config
from . import openapi

DOCUMENT = "/v1/openapi/telecmi.json"
_NUMBER = {"anyOf": [{"type": "integer", "minimum": 100000, "maximum": 999999999999999},
                     {"type": "string", "pattern": "^\\+?[0-9]{6,15}$"}]}
_BOOL = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}


def _parameters() -> dict[str, dict[str, Any]]:
    text = {"type": "string", "minLength": 1, "maxLength": telecmi.MAX_TEXT}
    return {
        "user_id": {"description": "The user to ring first: <user id> (of the secret's account) or "
                                   "<user id>_<account id>.", "schema": text},
        "secret": {"description": "An API key of the account with the place scope (its token).", "schema": text},
        "to": {"description": "The number to connect the user to, with its country code (919200000000).",
               "schema": _NUMBER},
        "extra_params": {"description": "Your own values, kept with the call (its metadata: in GET "
                                        "/v1/calls/{request_id} and every webhook). At most %d bytes as JSON."
                                        % calls.MAX_METADATA, "schema": {"type": "object"}},
        "webrtc": {"description": "Ring the user's own endpoint and its devices.", "schema": _BOOL},
        "followme": {"description": "Ring the user's follow-me number.", "schema": _BOOL},
        "callerid": {"description": "The caller ID the number 'to' sees, with its country code.",
                     "schema": _NUMBER},
    }


def openapi_document(config: Config) -> dict[str, Any]:
    """TeleCMI's click2call as eslengine serves it."""
    params = _parameters()
    query = []
    for name, spec in params.items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in ("user_id", "secret", "to"),
                                     **spec}
        if name == "extra_params":
            parameter.update(style="deepObject", explode=True,
                             schema={"type": "object", "additionalProperties": {"type": "string"}})
        elif "anyOf" in spec["schema"]:
            parameter["schema"] = {"type": "string"}
        query.append(parameter)

    def reply(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reply"}}}}

    responses = {
        "200": {"description": "Call initiated; request_id is the call's id.",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Initiated"}}}},
        "400": reply("A parameter is missing or malformed (msg names it), or neither webrtc nor followme."),
        "403": reply("The secret's key lacks the place scope."),
        "404": reply("invalid user_id"),
        "407": reply("invalid app secret"),
        "429": reply("The secret's key placed as many calls this minute as it may."),
        "503": reply("Redis cannot be reached; retry."),
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "eslengine: TeleCMI click2call", "version": openapi._version(),
                 "description": "TeleCMI's click-to-call API on eslengine: ring the user, then connect 'to'."},
        "paths": {
            DOCUMENT: openapi_path("telecmiOpenApi"),
            telecmi.PATH: {
                "get": {"operationId": "telecmiClick2CallGet", "summary": "Place a call (query string).",
                        "parameters": query, "responses": responses},
                "post": {"operationId": "telecmiClick2CallPost", "summary": "Place a call (JSON body).",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/Click2Call"}}}},
                         "responses": {**responses, "413": reply("The body is too large.")}},
            },
        },
        "components": {"schemas": {
            "Click2Call": {"type": "object", "additionalProperties": False, "required": ["user_id", "secret", "to"],
                           "properties": {name: {**spec["schema"], "description": spec["description"]}
                                          for name, spec in params.items()}},
            "Reply": {"type": "object", "required": ["code", "msg"], "additionalProperties": False,
                      "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}}},
            "Initiated": {"type": "object", "required": ["code", "msg", "request_id"], "additionalProperties": False,
                          "properties": {"code": {"type": "integer", "enum": [200]},
                                         "msg": {"type": "string", "enum": [telecmi.INITIATED]},
                                         "request_id": {"type": "string", "format": "uuid"}}},
        }},
    }


def openapi_path(operation_id: str) -> dict[str, Any]:
    """The path item of a surface's own OpenAPI document."""
    return {"get": {"operationId": operation_id, "summary": "This OpenAPI document.", "responses": {
        "200": {"description": "The document.", "content": {"application/json": {"schema": {"type": "object"}}}}}}}

"""The OpenAPI document of the Infobip surface (``infobip_ctc``), built from
``infobip``'s own constants."""

from __future__ import annotations

from typing import Any

from .. import calls, infobip
from ..config import Config
from . import openapi
from .openapi_telecmi import openapi_path

DOCUMENT = "/v1/openapi/infobip.json"
_NUMBER = {"type": "string", "pattern": "^\\+?[0-9]{6,15}$",
           "description": "International format, digits only (41793026727)."}
_BOOL = {"anyOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]}
_ID = {"type": "string", "minLength": 1, "maxLength": infobip.MAX_ID}


def _message() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "messageId": {**_ID, "description": "Your id of the call: in the reply and the delivery report (else the "
                      "call's id)."},
        "from": {**_NUMBER, "description": "What destinationA is shown."},
        "fromB": {**_NUMBER, "description": "What destinationB is shown (anonymization does not apply then)."},
        "destinationA": {**_NUMBER, "description": "Rung first; hears the message."},
        "destinationB": {**_NUMBER, "description": "Rung once destinationA has heard the message."},
        "text": {"type": "string", "minLength": 1, "maxLength": calls.MAX_SAY,
                 "description": "Spoken to destinationA (text to speech) before destinationB is rung."},
        "language": {"type": "string", "minLength": 2, "maxLength": 10,
                     "description": "The text's language (default %s)." % infobip.DEFAULT_LANGUAGE},
        "audioFileUrl": {"type": "string", "maxLength": 500,
                         "description": "An audio file played to destinationA instead of text; only from the "
                         "locations the operator allows."},
        "record": {**_BOOL, "description": "false only: recordings have no URL to report here."},
        "anonymization": {**_BOOL, "description": "Without fromB: true shows destinationB 'from', false "
                          "(default) destinationA's number."},
        "notifyUrl": {"type": "string", "maxLength": 500,
                      "description": "Receives the delivery report once the call is over, signed "
                      "(X-Eslengine-Signature) and retried."},
        "notifyContentType": {"type": "string", "enum": list(infobip.CONTENT_TYPES)},
        "maxDuration": {"type": "integer", "minimum": calls.MIN_DURATION,
                        "description": "Seconds the connected call may last."},
        "warningTime": {"type": "integer", "minimum": 1,
                        "description": "Seconds before maxDuration ends at which both hear a beep."},
        "retry": {"type": "object", "additionalProperties": False, "required": ["minPeriod", "maxPeriod"],
                  "properties": {
                      "minPeriod": {"type": "integer", "minimum": 1, "maximum": infobip.LADDER[-1]},
                      "maxPeriod": {"type": "integer", "minimum": 1, "maximum": infobip.LADDER[-1]},
                      "maxCount": {"type": "integer", "minimum": 0,
                                   "description": "Retries; more than %d is %d." % (infobip.MAX_RETRIES,
                                                                                    infobip.MAX_RETRIES)}}},
    }
    return {"type": "object", "additionalProperties": False, "required": ["destinationA", "destinationB"],
            "properties": properties}


def openapi_document(config: Config) -> dict[str, Any]:
    """Infobip's click-to-call as eslengine serves it."""
    status = {"type": "object", "required": ["groupId", "groupName", "id", "name", "description"],
              "properties": {"groupId": {"type": "integer"}, "groupName": {"type": "string"},
                             "id": {"type": "integer"}, "name": {"type": "string"},
                             "description": {"type": "string"}}}

    def error(description: str) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RequestError"}}}}

    return {
        "openapi": "3.0.3",
        "info": {"title": "eslengine: Infobip click-to-call", "version": openapi._version(),
                 "description": "Infobip's click-to-call API on eslengine: ring destinationA, play it the "
                 "message, then connect destinationB. One call per message."},
        "security": [{"app": []}, {"basic": []}],
        "paths": {
            DOCUMENT: {"get": {**openapi_path("infobipOpenApi")["get"], "security": []}},
            infobip.PATH: {"post": {
                "operationId": "infobipClickToCallSend", "summary": "Place one call per message.",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Send"}}}},
                "responses": {
                    "200": {"description": "Every message accepted (PENDING_ACCEPTED).",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Reply"}}}},
                    "400": error("A field is invalid (text and validationErrors name it); no call is placed."),
                    "401": error("No credentials, or wrong ones."),
                    "403": error("The key lacks the place scope."),
                    "413": error("The body is too large."),
                    "429": error("The key placed as many calls this minute as it may."),
                    "503": error("Redis cannot be reached; retry."),
                }}},
        },
        "components": {
            "securitySchemes": {
                "app": {"type": "apiKey", "in": "header", "name": "Authorization",
                        "description": "App <API key>"},
                "basic": {"type": "http", "scheme": "basic",
                          "description": "<account id>:<API key>"}},
            "schemas": {
                "Send": {"type": "object", "additionalProperties": False, "required": ["messages"],
                         "properties": {"bulkId": _ID, "messages": {
                             "type": "array", "minItems": 1, "maxItems": infobip.MAX_MESSAGES,
                             "items": {"$ref": "#/components/schemas/Message"}}}},
                "Message": _message(),
                "Reply": {"type": "object", "required": ["messages"], "additionalProperties": False,
                          "properties": {"bulkId": {"type": "string"}, "messages": {"type": "array", "items": {
                              "type": "object", "required": ["to", "status", "messageId"],
                              "additionalProperties": False,
                              "properties": {"to": {"type": "string"}, "status": status,
                                             "messageId": {"type": "string"}}}}}},
                "RequestError": {"type": "object", "required": ["requestError"], "properties": {
                    "requestError": {"type": "object", "required": ["serviceException"], "properties": {
                        "serviceException": {"type": "object", "required": ["messageId", "text"], "properties": {
                            "messageId": {"type": "string"}, "text": {"type": "string"},
                            "validationErrors": {"type": "object", "additionalProperties": {
                                "type": "array", "items": {"type": "string"}}}}}}}}},
            },
        },
    }

"""The OpenAPI 3.0 description of the Kazoo crossbar facade (a document of
its own, served at ``/v2/kazoo/openapi.json``), built from the model's own
constants (``translate``, ``clicktocall``, ``crossbar``)."""

from __future__ import annotations

from typing import Any

from ... import accounts, calls, clicktocall
from ...config import Config
from . import crossbar, translate

_ID = {"type": "string", "description": "32 hex digits."}


def openapi_document(config: Config) -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def answer(description: str, schema: str, **headers: str) -> dict[str, Any]:
        out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref(schema)}}}
        if headers:
            out["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                              for name, text in headers.items()}
        return out

    def errors(*codes: int) -> dict[str, Any]:
        words = {400: "Validation error (data names the field) or malformed JSON.",
                 401: "No token, or not a valid one (invalid_credentials).",
                 403: "The token lacks the scope, or is not of this account.",
                 404: "No such account, resource, user or device (bad_identifier).",
                 405: "The method is not allowed here (invalid_method).",
                 413: "The body is too large.",
                 429: "Throttled (too_many_requests); Retry-After says when to retry.",
                 502: "Blocking quickcall: the originate failed before the first leg rang; data.error_message "
                      "is the hangup cause (Kazoo documents 500 for this: 502 says the call failed, not this "
                      "service).",
                 503: "The datastore (Redis) cannot be reached; retry."}
        out = {str(code): answer(words[code], "Error") for code in codes}
        if "429" in out:
            out["429"]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        if "503" in out:
            out["503"]["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        return out

    common = (400, 401, 403, 404, 503)
    account = {"name": "account", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "The account's id."}
    item = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The clicktocall's id."}
    body = {"required": True, "content": {"application/json": {"schema": ref("ClickToCallRequest")}}}
    optional_body = {"required": False, "content": {"application/json": {"schema": ref("ClickToCallRequest")}}}
    connect_query = [
        {"name": "contact", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 128},
         "description": "The number (or SIP address) to connect (GET)."},
        {"name": "blocking", "in": "query", "required": False, "schema": {"type": "string", "enum": ["true", "false"]},
         "description": "true: answer once the first party's channel exists, or the call failed (200 with "
                        "the history entry)."},
    ]
    quickcall_query = [
        {"name": "auto_answer", "in": "query", "required": False, "schema": {"type": "string",
                                                                            "enum": ["true", "false"]}},
        {"name": "cid-name", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 64}},
        {"name": "cid-number", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 21}},
        {"name": "ignore-early-media", "in": "query", "required": False,
         "schema": {"type": "string", "enum": ["true", "false"]}},
        {"name": "media", "in": "query", "required": False, "schema": {"type": "string",
                                                                      "enum": ["bypass", "process"]}},
        {"name": "number_filter", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "true (default: remove spaces and ,.-()), false, or an RE2 regex whose first capture "
                        "group is the number."},
        {"name": "target_call_id", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "A call's id (UUID): place the quickcall on the node holding that channel."},
        {"name": "timeout", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": calls.MIN_RING_TIMEOUT, "maximum": config.max_ring_timeout}},
    ]
    quickcall_params = [
        account,
        {"name": "kind", "in": "path", "required": True, "schema": {"type": "string", "enum": ["users", "devices"]}},
        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
         "description": "The user's or device's id."},
        {"name": "number", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1,
                                                                     "maxLength": translate.MAX_NUMBER}},
    ]
    paths: dict[str, Any] = {
        "/v2/accounts/{account}/clicktocall": {
            "parameters": [account],
            "get": {"operationId": "kazooListClickToCall", "summary": "List the account's clicktocall resources.",
                    "responses": {"200": answer("The resources (id, name, extension).", "ListEnvelope"),
                                  **errors(*common)}},
            "put": {"operationId": "kazooCreateClickToCall", "summary": "Create a clicktocall resource.",
                    "requestBody": body,
                    "responses": {"201": answer("Created.", "ClickToCallEnvelope"), **errors(*common, 413)}},
        },
        "/v2/accounts/{account}/clicktocall/{id}": {
            "parameters": [account, item],
            "get": {"operationId": "kazooGetClickToCall", "summary": "Fetch one.",
                    "responses": {"200": answer("The resource.", "ClickToCallEnvelope"), **errors(*common)}},
            "post": {"operationId": "kazooChangeClickToCall", "summary": "Replace it.", "requestBody": body,
                     "responses": {"200": answer("Changed.", "ClickToCallEnvelope"), **errors(*common, 413)}},
            "patch": {"operationId": "kazooPatchClickToCall", "summary": "Merge fields into it (null removes one).",
                      "requestBody": optional_body,
                      "responses": {"200": answer("Changed.", "ClickToCallEnvelope"), **errors(*common, 413)}},
            "delete": {"operationId": "kazooDeleteClickToCall", "summary": "Delete it.",
                       "responses": {"200": answer("Deleted; data is the resource as it was.",
                                                   "ClickToCallEnvelope"), **errors(*common)}},
        },
        "/v2/accounts/{account}/clicktocall/{id}/history": {
            "parameters": [account, item],
            "get": {"operationId": "kazooClickToCallHistory", "summary": "Its connects, newest first.",
                    "parameters": [
                        {"name": "page_size", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "start_key", "in": "query", "required": False, "schema": {"type": "string"},
                         "description": "next_start_key of the page before."}],
                    "responses": {"200": answer("The connects.", "HistoryEnvelope"), **errors(*common)}},
        },
        "/v2/accounts/{account}/clicktocall/{id}/connect": {
            "parameters": [account, item],
            "get": {"operationId": "kazooConnectGet", "summary": "Connect the contact given in the query string.",
                    "parameters": connect_query,
                    "responses": {"200": answer("blocking=true: the connect's outcome.", "HistoryEntryEnvelope"),
                                  "202": answer("Queued; data describes the call.", "OriginateEnvelope"),
                                  **errors(*common, 405, 429)}},
            "post": {"operationId": "kazooConnectPost", "summary": "Connect the contact given in the body.",
                     "parameters": connect_query[1:],
                     "requestBody": {"required": False, "content": {"application/json": {
                         "schema": ref("ConnectRequest")}}},
                     "responses": {"200": answer("blocking: the connect's outcome.", "HistoryEntryEnvelope"),
                                   "202": answer("Queued; data describes the call.", "OriginateEnvelope"),
                                   **errors(*common, 413, 429)}},
        },
        "/v2/accounts/{account}/{kind}/{id}/quickcall/{number}": {
            "parameters": quickcall_params,
            "get": {"operationId": "kazooQuickcallGet",
                    "summary": "Ring the user or device, then the number (non-blocking).",
                    "parameters": quickcall_query,
                    "responses": {"202": answer("Queued; data describes the call.", "OriginateEnvelope"),
                                  **errors(*common, 429)}},
            "post": {"operationId": "kazooQuickcallPost",
                     "summary": "Ring the user or device, then the number; answer once its first leg rings.",
                     "parameters": quickcall_query,
                     "requestBody": {"required": False, "content": {"application/json": {
                         "schema": ref("QuickcallRequest")}}},
                     "responses": {"202": answer("The first leg's channel exists (or the wait ended).",
                                                 "OriginateEnvelope"), **errors(*common, 413, 429, 502)}},
        },
    }
    envelope = {
        "auth_token": {"type": "string"}, "node": {"type": "string"}, "request_id": {"type": "string"},
        "timestamp": {"type": "string"}, "version": {"type": "string", "enum": [crossbar.VERSION]},
        "revision": {"type": "string"},
    }

    def success(data: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"type": "object", "required": ["data", "status", "request_id", "version", "timestamp", "node"],
                "properties": {**envelope, "status": {"type": "string", "enum": ["success"]}, "data": data,
                               **extra}}

    resource_properties: dict[str, Any] = {
        "name": {"type": "string", "minLength": 1, "maxLength": accounts.MAX_NAME},
        "extension": {"type": "string", "maxLength": 128,
                      "description": "A short extension (1-6 digits: the directory user), user:<id>, "
                                     "device:<id>, group:<id>, an E.164 number, user/<ext> or a SIP URI."},
        "auth_required": {"type": "boolean"},
        "allow_get_connect": {"type": "boolean"},
        "per_ip_per_hour": {"type": "integer", "minimum": 1, "maximum": clicktocall.MAX_PUBLIC_LIMIT},
        "per_contact_per_hour": {"type": "integer", "minimum": 1, "maximum": clicktocall.MAX_PUBLIC_LIMIT},
        "bypass_media": {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false"]}]},
        "caller_id_number": {"type": "string"}, "caller_id_name": {"type": "string"},
        "outbound_callee_id_number": {"type": "string"}, "outbound_callee_id_name": {"type": "string"},
        "custom_application_vars": {"type": "object", "additionalProperties": {"type": "string"}},
        "custom_sip_headers": {"type": "object"},
        "dial_first": {"type": "string", "enum": list(clicktocall.DIAL_FIRST)},
        "media": {"type": "object", "properties": {"ignore_early_media": {"type": "boolean"}},
                  "additionalProperties": False},
        "music_on_hold": {"type": "object", "properties": {"media_id": {"type": "string"}},
                          "additionalProperties": False,
                          "description": "media_id: a media item of the account (a file or URL), or moh: what "
                                         "each party hears while the other holds it (hold_music)."},
        "presence_id": {"type": "string"},
        "ringback": {"type": "string"}, "announcement": {"type": "string"},
        "throttle": {"type": "integer", "minimum": 0, "maximum": clicktocall.MAX_THROTTLE},
        "timeout": {"type": "integer", "minimum": calls.MIN_RING_TIMEOUT, "maximum": config.max_ring_timeout},
        "whitelist": {"type": "array", "maxItems": clicktocall.MAX_WHITELIST,
                      "items": {"type": "string", "minLength": 1, "maxLength": clicktocall.MAX_PATTERN}},
    }
    schemas: dict[str, Any] = {
        "ClickToCall": {"type": "object", "required": ["name", "extension"],
                        "properties": {**resource_properties, "id": _ID}, "additionalProperties": False},
        "ClickToCallRequest": {"type": "object", "required": ["data"],
                               "properties": {"data": ref("ClickToCall")}, "additionalProperties": False},
        "ConnectRequest": {"type": "object", "properties": {"data": {
            "type": "object", "properties": {
                "contact": {"type": "string", "maxLength": 128}, "blocking": {"type": "boolean"},
                "custom_application_vars": {"type": "object", "additionalProperties": {"type": "string"}}},
            "additionalProperties": False}}, "additionalProperties": False},
        "QuickcallRequest": {"type": "object", "properties": {"data": {
            "type": "object", "properties": {
                "auto_answer": {"type": "boolean"}, "cid-name": {"type": "string"}, "cid-number": {"type": "string"},
                "ignore-early-media": {"type": "boolean"}, "media": {"type": "string", "enum": ["bypass", "process"]},
                "number_filter": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
                "target_call_id": {"type": "string"}, "timeout": {"type": "integer"},
                "custom_application_vars": {"type": "object", "additionalProperties": {"type": "string"}}},
            "additionalProperties": False}}, "additionalProperties": False},
        "ClickToCallEnvelope": success({"type": "object", "required": ["id", "name", "extension"]}),
        "ListEnvelope": success({"type": "array", "items": {
            "type": "object", "required": ["id", "name", "extension"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "extension": {"type": "string"}}}},
            page_size={"type": "integer"}),
        "HistoryEntry": {"type": "object", "required": ["call_id", "contact", "timestamp", "result"],
                         "properties": {"id": {"type": "string"}, "call_id": {"type": "string"},
                                        "contact": {"type": "string"},
                                        "timestamp": {"type": "integer", "description": "Gregorian seconds."},
                                        "result": {"type": "string", "enum": ["success", "error", "pending"]},
                                        "cause": {"type": "string"}, "status": {"type": "string"}}},
        "HistoryEnvelope": success({"type": "array", "items": ref("HistoryEntry")}, page_size={"type": "integer"},
                                   start_key={"type": "string"}, next_start_key={"type": "string"}),
        "HistoryEntryEnvelope": success(ref("HistoryEntry")),
        "OriginateEnvelope": success({"type": "object", "required": ["call_id", "endpoints", "application_data"],
                                      "properties": {"call_id": {"type": "string", "format": "uuid"}}}),
        "Error": {"type": "object", "required": ["status", "error", "message", "data", "request_id"],
                  "properties": {**envelope, "status": {"type": "string", "enum": ["error"]},
                                 "error": {"type": "string", "pattern": "^[0-9]{3}$"},
                                 "message": {"type": "string"}, "data": {}}},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "eslengine: Kazoo crossbar facade", "version": crossbar.VERSION,
                 "description": "Kazoo's clicktocall and quickcall APIs on eslengine: the crossbar envelope, "
                                "X-Auth-Token, Kazoo's error shapes. The resources are eslengine's own "
                                "(/v1/accounts/{account}/clicktocall shows the same ones)."},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}}},
        "security": [{"token": []}],
    }

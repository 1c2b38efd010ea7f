"""The accounts section of the native API's OpenAPI document (paths and
schemas of ``accounts_v1``), built from the model's own constants
(``accounts``, ``clicktocall``, ``apikeys``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .. import accounts, apikeys, calls, clicktocall, status, widget
from ..config import Config
from . import blocking

Responses = dict[str, Any]
_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "32 hex digits."}
_NAME = {"type": "string", "minLength": 1, "maxLength": accounts.MAX_NAME}
_REFERENCE = {"type": "string", "maxLength": 128,
              "description": "user:<id>, device:<id>, group:<id> (of this account) or an endpoint: an E.164 "
                             "number, user/<ext>[@<domain>] or a SIP URI, as the native API dials them."}


def wait_parameters() -> list[dict[str, Any]]:
    """``?wait=originate`` and ``wait_timeout`` (POST /v1/calls and connect)."""
    return [
        {"name": "wait", "in": "query", "required": False,
         "description": "originate: answer once the first party's channel exists (202 with its status), or "
                        "the call failed before (502 with the hangup cause); at the deadline, 202 with the "
                        "status it has (queued or dialing).",
         "schema": {"type": "string", "enum": ["originate"]}},
        {"name": "wait_timeout", "in": "query", "required": False,
         "description": "The deadline of wait=originate, in seconds.",
         "schema": {"type": "integer", "minimum": 1, "maximum": blocking.MAX_WAIT,
                    "default": blocking.DEFAULT_WAIT}},
    ]


def originate_failed(error: Callable[..., Responses]) -> Responses:
    return error("wait=originate: the call failed before its first party's channel existed; hangup_cause "
                 "says why.")


def add_accounts(document: dict[str, Any], config: Config, error: Callable[..., Responses],
                 secured: Callable[[Responses], Responses]) -> None:
    """Add the accounts paths and schemas to ``document``."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": ref(name)}}}

    def ok(code: str, description: str, schema: str | None = None, **headers: str) -> Responses:
        out: dict[str, Any] = {"description": description}
        if schema is not None:
            out["content"] = {"application/json": {"schema": ref(schema)}}
        if headers:
            out["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                              for name, text in headers.items()}
        return {code: out}

    missing = error("No such account (or one this key does not see), or no such item.")
    invalid = {"400": error("The body is not a JSON object (or not application/json)."),
               "413": error("The body is too large."),
               "422": error("A field is invalid; 'field' names it.")}
    account = {"name": "account", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "The account's id."}
    item = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "The item's id."}
    paths: dict[str, Any] = {
        "/v1/accounts": {
            "post": {"operationId": "createAccount", "summary": "Make an account (operator and admin keys).",
                     "requestBody": body("AccountNew"),
                     "responses": secured({**ok("201", "Made.", "Account", Location="/v1/accounts/{id}"),
                                           **invalid})},
            "get": {"operationId": "listAccounts", "summary": "The accounts this key sees.",
                    "responses": secured(ok("200", "The accounts.", "AccountList"))},
        },
        "/v1/accounts/{account}": {
            "parameters": [account],
            "get": {"operationId": "getAccount", "summary": "An account.",
                    "responses": secured({**ok("200", "The account.", "Account"), "404": missing})},
            "patch": {"operationId": "patchAccount", "summary": "Rename an account.",
                      "requestBody": body("AccountPatch"),
                      "responses": secured({**ok("200", "Changed.", "Account"), "404": missing, **invalid})},
            "delete": {"operationId": "deleteAccount",
                       "summary": "Delete an account, everything it holds and its keys (operator and admin "
                                  "keys); its calls' records stay until they expire.",
                       "responses": secured({**ok("204", "Deleted."), "404": missing})},
        },
        "/v1/accounts/{account}/keys": {
            "parameters": [account],
            "post": {"operationId": "createAccountKey",
                     "summary": "Make a key of the account; its token is in this answer only.",
                     "requestBody": body("KeyNew"),
                     "responses": secured({**ok("201", "Made.", "Key"), "404": missing, **invalid})},
            "get": {"operationId": "listAccountKeys", "summary": "The account's keys (never their tokens).",
                    "responses": secured({**ok("200", "The keys.", "KeyList"), "404": missing})},
        },
        "/v1/accounts/{account}/keys/{id}": {
            "parameters": [account, item],
            "delete": {"operationId": "revokeAccountKey", "summary": "Revoke a key of the account.",
                       "responses": secured({**ok("204", "Revoked."), "404": missing})},
        },
    }
    titles = {"users": "User", "devices": "Device", "groups": "Group", "media": "Media", "clicktocall": "ClickToCall"}
    for kind, title in titles.items():
        paths["/v1/accounts/{account}/%s" % kind] = {
            "parameters": [account],
            "get": {"operationId": "list%s" % title, "summary": "The account's %s." % kind,
                    "responses": secured({**ok("200", "The items.", "%sList" % title), "404": missing})},
            "post": {"operationId": "create%s" % title, "summary": "Add to the account's %s." % kind,
                     "requestBody": body("%sNew" % title),
                     "responses": secured({**ok("201", "Made.", "%sItem" % title, Location="The item's path."),
                                           "404": missing,
                                           "409": error("The account holds as many of these as it may."),
                                           **invalid})},
        }
        change = {"requestBody": body("%sNew" % title),
                  "responses": secured({**ok("200", "Changed.", "%sItem" % title), "404": missing, **invalid})}
        paths["/v1/accounts/{account}/%s/{id}" % kind] = {
            "parameters": [account, item],
            "get": {"operationId": "get%s" % title, "summary": "One of the account's %s." % kind,
                    "responses": secured({**ok("200", "The item.", "%sItem" % title), "404": missing})},
            "put": {"operationId": "replace%s" % title, "summary": "Replace it.", **copy.deepcopy(change)},
            "post": {"operationId": "change%s" % title, "summary": "Replace it (as PUT).", **copy.deepcopy(change)},
            "patch": {"operationId": "patch%s" % title, "summary": "Change some fields (JSON merge patch: null "
                                                                     "removes a field).",
                      "requestBody": body("%sPatch" % title),
                      "responses": secured({**ok("200", "Changed.", "%sItem" % title), "404": missing, **invalid})},
            "delete": {"operationId": "delete%s" % title, "summary": "Delete it.",
                       "responses": secured({**ok("204", "Deleted."), "404": missing,
                                             "409": error("Something of the account names it; 'reason' says "
                                                          "what.")})},
        }
    connect_responses = {
        **ok("202", "The call is queued (with wait=originate: its first party's channel exists, or the "
                    "deadline passed).", "Connected", Location="/v1/calls/{id}"),
        "400": error("The body is not a JSON object, or wait is malformed."),
        "401": error("No key (or a wrong one), and the resource needs one or does not exist.",
                     {"WWW-Authenticate": {"schema": {"type": "string", "enum": ["Bearer"]}}}),
        "403": error("The key lacks the place scope."),
        "404": missing,
        "413": error("The body is too large."),
        "422": error("The contact (or the saved call) is refused; 'field' names it."),
        "429": error("Throttled (per resource), or over the per-address or per-contact limit of a connect "
                     "without a key.", {"Retry-After": {"schema": {"type": "string"}}}),
        "502": originate_failed(error),
        "503": error("Redis cannot be reached; retry.", {"Retry-After": {"schema": {"type": "string"}}}),
    }
    connect_get = copy.deepcopy(connect_responses)
    connect_get["405"] = error("A connect without a key is POST only, unless the resource allows GET.")
    del connect_get["413"]
    connect_get["400"] = error("wait is malformed.")
    paths["/v1/accounts/{account}/clicktocall/{id}/connect"] = {
        "parameters": [account, item],
        "post": {"operationId": "connectClickToCall", "summary": "Place the saved call to a contact.",
                 "security": [], "parameters": wait_parameters(), "requestBody": body("ConnectRequest"),
                 "responses": connect_responses},
        "get": {"operationId": "connectClickToCallByGet",
                "summary": "Place the saved call to ?contact= (with a key; without one only where the resource "
                           "allows it).",
                "security": [],
                "parameters": [{"name": "contact", "in": "query", "required": True, "schema": {"type": "string"}},
                               *wait_parameters()],
                "responses": connect_get},
    }
    paths["/v1/accounts/{account}/clicktocall/{id}/history"] = {
        "parameters": [account, item],
        "get": {"operationId": "clickToCallHistory", "summary": "The resource's connects, newest first.",
                "parameters": [
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}},
                    {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": secured({**ok("200", "A page of connects.", "ConnectHistory"), "404": missing,
                                      "422": error("A query parameter is invalid; 'field' names it.")})},
    }
    paths["/v1/accounts/{account}/clicktocall/{id}/widget/refusals"] = {
        "parameters": [account, item],
        "get": {"operationId": "widgetRefusals",
                "summary": "How often each of the widget's abuse controls refused a call.",
                "responses": secured({"200": {"description": "Counts by reason.", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["refusals"], "properties": {"refusals": {
                        "type": "object", "properties": {r: {"type": "integer"} for r in widget.REFUSALS}}}}}}},
                    "404": missing})},
    }
    document["paths"].update(paths)
    document["components"]["schemas"].update(_schemas(config))


def _schemas(config: Config) -> dict[str, Any]:
    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    stamped = {"id": _ID, "created_at": {"type": "string"}, "updated_at": {"type": "string"}}
    endpoint = {"type": "string", "maxLength": 128, "description": str(_REFERENCE["description"]).split(": ", 1)[-1]}
    media_source = {"file": {"type": "string", "maxLength": 200}, "url": {"type": "string", "maxLength": 500},
                    "say": {"type": "string", "maxLength": calls.MAX_SAY}, "language": {"type": "string"},
                    "voice": {"type": "string"}}
    new: dict[str, dict[str, Any]] = {
        "User": {"required": ["name"], "properties": {
            "name": _NAME, "endpoint": endpoint,
            "follow_me": {"type": "string", "maxLength": 128, "description": "A phone number, rung after the "
                          "user's endpoint and devices."},
            "ring": {"type": "string", "enum": list(accounts.STRATEGIES), "default": "simultaneous",
                     "description": "How the user's endpoint, devices and follow-me number ring."}}},
        "Device": {"required": ["name", "endpoint"], "properties": {
            "name": _NAME, "endpoint": endpoint, "owner": dict(_ID, description="A user of the account.")}},
        "Group": {"required": ["name", "members"], "properties": {
            "name": _NAME,
            "members": {"type": "array", "minItems": 1, "maxItems": accounts.MAX_MEMBERS, "items": {
                "type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False,
                "properties": {"user": _ID, "device": _ID, "endpoint": endpoint}}},
            "strategy": {"type": "string", "enum": list(accounts.STRATEGIES), "default": "simultaneous"}}},
        "Media": {"required": ["name"], "properties": {"name": _NAME, **media_source},
                  "description": "Exactly one of file, url or say, as the native request's media fields."},
        "ClickToCall": {"required": ["name", "extension"], "properties": {
            "name": _NAME, "extension": _REFERENCE,
            "whitelist": {"type": "array", "maxItems": clicktocall.MAX_WHITELIST,
                          "items": {"type": "string", "minLength": 1, "maxLength": clicktocall.MAX_PATTERN},
                          "description": "RE2 regexes; the contact, as dialed, must match one (anywhere)."},
            "throttle": {"type": "integer", "minimum": 0, "maximum": clicktocall.MAX_THROTTLE,
                         "description": "Connects a minute (0: no limit)."},
            "max_concurrent": {"type": "integer", "minimum": 1, "maximum": clicktocall.MAX_CONCURRENT,
                               "description": "Calls of this resource up at once; more connects answer 429."},
            "auth_required": {"type": "boolean", "default": True},
            "allow_get_connect": {"type": "boolean", "default": False,
                                  "description": "Connects without a key by GET too."},
            "per_ip_per_hour": {"type": "integer", "minimum": 1, "maximum": clicktocall.MAX_PUBLIC_LIMIT,
                                "default": clicktocall.PUBLIC_PER_IP},
            "per_contact_per_hour": {"type": "integer", "minimum": 1, "maximum": clicktocall.MAX_PUBLIC_LIMIT,
                                     "default": clicktocall.PUBLIC_PER_CONTACT},
            "dial_first": {"type": "string", "enum": list(clicktocall.DIAL_FIRST), "default": "extension"},
            "caller_id_number": {"type": "string", "description": "What the contact's phone shows."},
            "caller_id_name": {"type": "string"},
            "outbound_callee_id_number": {"type": "string", "description": "What the extension's phone shows "
                                          "(default: the contact's number)."},
            "outbound_callee_id_name": {"type": "string", "description": "Default: the resource's name."},
            "custom_application_vars": {"type": "object", "maxProperties": config.max_variables,
                                        "additionalProperties": {"type": "string"}},
            "custom_sip_headers": {"type": "object", "maxProperties": calls.MAX_SIP_HEADERS,
                                   "description": "X- headers on the extension's INVITEs."},
            "ringback": {"type": "string", "description": "%s, or a media id of the account."
                         % ", ".join(calls.RINGBACK_TONES)},
            "announcement": dict(_ID, description="A media id, played to the first party when it answers."),
            "music_on_hold": {"type": "object", "additionalProperties": False,
                              "properties": {"media_id": {"type": "string", "maxLength": 64}},
                              "description": "What a party waiting for the other hears: media_id moh, or a "
                                             "media id of the account."},
            "widget": {"type": "object", "additionalProperties": False, "required": ["origins"],
                       "description": "The embeddable \"call me\" widget (auth_required must be false): "
                                      "GET /v1/widget/{account}/{id}/widget.js.",
                       "properties": {
                           "origins": {"type": "array", "minItems": 1, "maxItems": widget.MAX_ORIGINS,
                                       "items": {"type": "string", "maxLength": 200}},
                           "region": {"type": "string", "pattern": "^[A-Za-z]{2}$"},
                           "language": {"type": "string", "enum": list(widget.LANGUAGES)},
                           "texts": {"type": "object", "additionalProperties": False,
                                     "properties": {name: {"type": "string", "minLength": 1,
                                                           "maxLength": widget.MAX_TEXT}
                                                    for name in widget.TEXTS["en"]}},
                           "hours": {"type": "object", "required": ["timezone"],
                                     "properties": {"timezone": {"type": "string"},
                                                    "days": {"type": "array", "items": {"type": "string"}},
                                                    "hours": {"type": "string"},
                                                    "holidays": {"type": "array", "items": {"type": "string"}}}},
                           "per_network_per_hour": {"type": "integer", "minimum": 1,
                                                    "maximum": widget.MAX_NETWORK_PER_HOUR},
                           "challenge": {"type": "string", "enum": list(widget.CHALLENGES)},
                           "pow_bits": {"type": "integer", "minimum": widget.POW_BITS[0],
                                        "maximum": widget.POW_BITS[1]}}},
            "presence_id": {"type": "string"},
            "bypass_media": {"type": "boolean", "default": False},
            "media": {"type": "object", "additionalProperties": False,
                      "properties": {"ignore_early_media": {"type": "boolean", "default": True}}},
            "timeout": {"type": "integer", "minimum": calls.MIN_RING_TIMEOUT, "maximum": config.max_ring_timeout}}},
    }
    out: dict[str, Any] = {}
    for title, spec in new.items():
        out["%sNew" % title] = {"type": "object", "additionalProperties": False, **spec}
        patch = {"type": "object", "additionalProperties": False,
                 "properties": {k: dict(v, nullable=True) if "$ref" not in v else v
                                for k, v in spec["properties"].items()}}
        out["%sPatch" % title] = patch
        out["%sItem" % title] = {"type": "object", "required": ["id", *spec["required"]],
                                 "properties": {**spec["properties"], **stamped}}
        out["%sList" % title] = {"type": "object", "required": ["items"], "additionalProperties": False,
                                 "properties": {"items": {"type": "array", "items": ref("%sItem" % title)}}}
    out["AccountNew"] = {"type": "object", "required": ["name"], "additionalProperties": False,
                         "properties": {"name": _NAME}}
    out["AccountPatch"] = {"type": "object", "additionalProperties": False,
                           "properties": {"name": dict(_NAME, nullable=True)}}
    out["Account"] = {"type": "object", "required": ["id", "name"], "properties": {"name": _NAME, **stamped}}
    out["AccountList"] = {"type": "object", "required": ["accounts"], "additionalProperties": False,
                          "properties": {"accounts": {"type": "array", "items": ref("Account")}}}
    out["KeyNew"] = {"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "scopes": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(apikeys.ACCOUNT_SCOPES)},
                   "default": list(apikeys.ACCOUNT_SCOPES),
                   "description": "At most the scopes of the key making it (operator and admin keys: any)."},
        "caller_ids": {"type": "array", "items": {"type": "string"}},
        "rate_per_minute": {"type": "integer", "minimum": 0, "maximum": 100_000}}}
    key_properties = {"id": {"type": "string"}, "name": {"type": "string"},
                      "scopes": {"type": "array", "items": {"type": "string"}},
                      "caller_ids": {"type": "array", "items": {"type": "string"}},
                      "rate_per_minute": {"type": "integer"}, "webhook_secret": {"type": "boolean"},
                      "created_at": {"type": "string"}, "account": {"type": "string", "nullable": True}}
    out["Key"] = {"type": "object", "required": ["id", "name", "scopes", "token"],
                  "properties": {**key_properties, "token": {"type": "string",
                                                             "description": "Shown this once; Bearer <token>."}}}
    out["KeyList"] = {"type": "object", "required": ["keys"], "properties": {"keys": {"type": "array", "items": {
        "type": "object", "required": ["id", "name", "scopes"], "additionalProperties": False,
        "properties": key_properties}}}}
    out["ConnectRequest"] = {"type": "object", "required": ["contact"], "additionalProperties": False,
                             "properties": {"contact": {"type": "string", "maxLength": clicktocall.MAX_CONTACT,
                                                        "description": "The number (or SIP URI) to connect."}}}
    out["Connected"] = {"type": "object", "required": ["id", "status", "clicktocall", "contact", "a", "b"],
                        "additionalProperties": False, "properties": {
                            "id": {"type": "string", "format": "uuid"},
                            "status": {"type": "string", "enum": list(status.STATUSES)},
                            "clicktocall": _ID, "contact": {"type": "string"},
                            "a": {"type": "array", "items": {"type": "string"},
                                  "description": "The extension's destinations."},
                            "b": {"type": "array", "items": {"type": "string"},
                                  "description": "The contact, as dialed."}}}
    out["ConnectHistory"] = {"type": "object", "required": ["connects", "next_cursor"], "properties": {
        "connects": {"type": "array", "items": {
            "type": "object", "required": ["id", "status", "contact", "extension", "timestamps"], "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": list(status.STATUSES)},
                "contact": {"type": "string"}, "extension": {"type": "string"},
                "hangup_cause": {"type": "string"}, "a_hangup_cause": {"type": "string"},
                "b_hangup_cause": {"type": "string"}, "key": {"type": "string"},
                "timestamps": {"type": "object", "additionalProperties": {"type": "string"},
                               "description": "created, dialing, ringing, answered, bridged, ended."}}}},
        "next_cursor": {"type": "string", "nullable": True}}}
    return out

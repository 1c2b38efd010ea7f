"""The campaigns section of the native API's OpenAPI document (paths and
schemas of ``campaigns_v1``), from the model's own constants
(``campaign.model``, ``store.campaigns``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import calls
from ..campaign import model
from ..store.campaigns import COUNTERS, OUTCOMES
from .campaigns_v1 import MAX_ERRORS

Responses = dict[str, Any]


def add_campaigns(document: dict[str, Any], error: Callable[..., Responses],
                  secured: Callable[[Responses], Responses]) -> None:
    """Add the campaigns paths and schemas to ``document``."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def campaign_answer(code: str, description: str) -> Responses:
        return {code: {"description": description, "content": {"application/json": {"schema": ref("Campaign")}}}}

    campaign_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
                   "description": "The campaign's id (32 hex digits); one of another client key's is answered 404."}
    missing = {"404": error("No such campaign (or contact), or one of another key's.")}
    upload = {"200": {"description": "The contacts read: how many rows, added, refused, and each refused row's "
                                     "error (the first %d)." % MAX_ERRORS,
                      "content": {"application/json": {"schema": ref("Upload")}}}}
    paths = {
        "/v1/campaigns": {
            "post": {
                "operationId": "createCampaign",
                "summary": "Create a campaign (state created), with contacts inline if given.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("CampaignRequest")}}},
                "responses": secured({
                    "201": {"description": "Created; upload says which inline contacts were added.",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": ref("Campaign")}}},
                    "400": error("The body is not a JSON document."),
                    "413": error("The body is too large."),
                    "422": error("A field is not valid; field names it."),
                }),
            },
            "get": {
                "operationId": "listCampaigns",
                "summary": "The campaigns this key sees, newest first, with their counters.",
                "responses": secured({"200": {"description": "The campaigns.", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["campaigns"],
                               "properties": {"campaigns": {"type": "array", "items": ref("Campaign")}}}}}}}),
            },
        },
        "/v1/campaigns/{id}": {
            "get": {
                "operationId": "getCampaign",
                "summary": "A campaign: its document, state and live counters.",
                "parameters": [campaign_id],
                "responses": secured({**campaign_answer("200", "The campaign."), **missing}),
            },
        },
        "/v1/campaigns/{id}/contacts": {
            "post": {
                "operationId": "addContacts",
                "summary": "Add contacts: a CSV (header row: number, number2..., id, caller_id, any other column "
                           "a variable), read a row at a time, or a JSON list (at most %d)."
                           % model.MAX_INLINE_CONTACTS,
                "parameters": [campaign_id],
                "requestBody": {"required": True, "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"oneOf": [
                        {"type": "array", "items": ref("Contact"), "maxItems": model.MAX_INLINE_CONTACTS},
                        {"type": "object", "required": ["contacts"], "properties": {"contacts": {
                            "type": "array", "items": ref("Contact"), "maxItems": model.MAX_INLINE_CONTACTS}}},
                    ]}},
                }},
                "responses": secured({
                    **upload, **missing,
                    "400": error("The body is not JSON, or the CSV is not UTF-8 (upload: what was added before)."),
                    "409": error("The campaign is finished or cancelled: it takes no contacts."),
                    "413": error("The body is too large."),
                    "415": error("Neither text/csv nor application/json."),
                    "422": error("The CSV's header names no number column, or the JSON is no list of contacts."),
                }),
            },
        },
        "/v1/campaigns/{id}/contacts/{contact}": {
            "get": {
                "operationId": "getContact",
                "summary": "One contact: its numbers, variables, state, tries, retries, outcome.",
                "parameters": [campaign_id, {"name": "contact", "in": "path", "required": True,
                                             "schema": {"type": "string"}}],
                "responses": secured({"200": {"description": "The contact.", "content": {
                    "application/json": {"schema": {"type": "object"}}}}, **missing}),
            },
        },
    }
    for action, (sources, target) in model.ACTIONS.items():
        paths["/v1/campaigns/{id}/%s" % action] = {"post": {
            "operationId": "%sCampaign" % action,
            "summary": "From %s to %s." % (" or ".join(sorted(sources)), target),
            "parameters": [campaign_id],
            "responses": secured({**campaign_answer("200", "The campaign, now %s." % target), **missing,
                                  "409": error("Not in a state this moves from; state says which it is in.")}),
        }}
    document["paths"].update(paths)
    counters = {name: {"type": "integer", "minimum": 0} for name in (*COUNTERS, *OUTCOMES)}
    document["components"]["schemas"].update({
        "CampaignRequest": {
            "type": "object",
            "required": ["name", "call"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "call": {"type": "object", "description": "What POST /v1/calls takes but id, metadata, retry and "
                                                          "target_call_id; the contact's party without its to."},
                "contact_party": {"type": "string", "enum": list(calls.PARTY_NAMES), "default": "a"},
                "pacing": {"type": "object", "properties": {
                    "cps": {"type": "number", "description": "Calls started a second, at most."},
                    "max_concurrent": {"type": "integer", "description": "Calls under way at once, at most."}}},
                "calling_window": {"type": "object", "description": "days, hours (HH:MM-HH:MM), holidays "
                                                                    "(YYYY-MM-DD), zone (for numbers "
                                                                    "libphonenumber cannot place)."},
                "retry": {"type": "object", "description": "on, preset | delays | delay, max_retries, validity."},
                "valid_until": {"type": "string", "description": "ISO 8601 with offset."},
                "notify_url": {"type": "string"},
                "notify_format": {"type": "string", "enum": list(model.NOTIFY_FORMATS), "default": "json"},
                "contacts": {"type": "array", "items": ref("Contact"), "maxItems": model.MAX_INLINE_CONTACTS},
            },
        },
        "Contact": {
            "type": "object",
            "description": "number or numbers; id (default r<row>), variables, caller_id optional. A contact that "
                           "is not valid is refused on its own (upload.errors), not the request.",
        },
        "Campaign": {
            "type": "object",
            "required": ["id", "name", "state", "contacts", "calls", "counters"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "state": {"type": "string", "enum": list(model.STATES)},
                "contacts": {"type": "integer"},
                "calls": {"type": "integer"},
                "counters": {"type": "object", "properties": counters},
                "failed_by_cause": {"type": "object", "additionalProperties": {"type": "integer"}},
                "waiting_until": {"type": "string", "nullable": True},
                "campaign": {"type": "object"},
                "upload": ref("Upload"),
            },
        },
        "Upload": {
            "type": "object",
            "required": ["rows", "added", "refused", "errors"],
            "properties": {
                "rows": {"type": "integer"}, "added": {"type": "integer"}, "refused": {"type": "integer"},
                "errors": {"type": "array", "items": {"type": "object", "properties": {
                    "row": {"type": "integer"}, "field": {"type": "string"}, "reason": {"type": "string"}}}},
                "errors_truncated": {"type": "boolean"},
            },
        },
    })


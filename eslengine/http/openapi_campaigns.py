"""The campaigns section of the native API's OpenAPI document (paths and
schemas of ``campaigns_v1``), from the model's own constants
(``campaign.model``, ``store.campaigns``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import calls
from ..campaign import model
from ..store.campaigns import COUNTERS, OUTCOMES
from .campaign_listing import CONTACT_STATES, MAX_LIMIT
from .campaigns_v1 import MAX_ERRORS

Responses = dict[str, Any]


def add_campaigns(document: dict[str, Any], error: Callable[..., Responses],
                  secured: Callable[[Responses], Responses]) -> None:
    """Add the campaigns paths and schemas to ``document``."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def campaign_answer(code: str, description: str) -> Responses:
        return {code: {"description": description, "content": {"application/json": {"schema": ref("Campaign")}}}}

    def state_param(states: tuple[str, ...]) -> dict[str, Any]:
        return {"name": "state", "in": "query", "required": False, "schema": {"type": "string"},
                "description": "Only these, comma-separated: %s." % ", ".join(states)}

    def listed(name: str, item: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "required": [name, "next_cursor"],
                "properties": {name: {"type": "array", "items": item},
                               "next_cursor": {"type": "string", "nullable": True}}}

    page_params = [
        {"name": "limit", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
        {"name": "cursor", "in": "query", "required": False, "schema": {"type": "string"},
         "description": "next_cursor of the page before."},
    ]
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
                "summary": "The campaigns this key sees, newest first, with their counters (without their "
                           "documents), a page at a time.",
                "parameters": [state_param(model.STATES), *page_params],
                "responses": secured({
                    "200": {"description": "A page of campaigns; next_cursor continues it (null at the end). A page "
                                           "reads at most 1,000 campaigns, so a narrow filter may give a short "
                                           "page with a cursor.",
                            "content": {"application/json": {"schema": listed("campaigns", ref("Campaign"))}}},
                    "400": error("A query parameter is not valid; field names it."),
                }),
            },
        },
        "/v1/campaigns/{id}": {
            "get": {
                "operationId": "getCampaign",
                "summary": "A campaign: its document, state and live counters.",
                "parameters": [campaign_id],
                "responses": secured({**campaign_answer("200", "The campaign."), **missing}),
            },
            "patch": {
                "operationId": "changeCampaign",
                "summary": "Change the pacing (cps, max_concurrent: either) or the calling window (replaced whole; "
                           "null: none) of a created, running or paused campaign; the dispatcher uses them from "
                           "its next round.",
                "parameters": [campaign_id],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "minProperties": 1, "properties": {
                        "pacing": {"type": "object", "additionalProperties": False, "properties": {
                            "cps": {"type": "number"}, "max_concurrent": {"type": "integer"}}},
                        "calling_window": {"type": "object", "nullable": True}}}}}},
                "responses": secured({
                    **campaign_answer("200", "The campaign, changed."), **missing,
                    "400": error("The body is not a JSON document."),
                    "409": error("The campaign is finished or cancelled (state says which), or changed meanwhile."),
                    "413": error("The body is too large."),
                    "422": error("A field is not valid, or not one that can be changed; field names it."),
                }),
            },
            "delete": {
                "operationId": "deleteCampaign",
                "summary": "Delete a created, finished or cancelled campaign (or a paused one with no call under "
                           "way) and every key of it, its contacts a batch at a time. Its calls still queued end "
                           "cancelled; its delivery reports not yet sent are dropped.",
                "parameters": [campaign_id],
                "responses": secured({
                    "200": {"description": "Deleted.", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["id", "deleted", "was", "contacts"], "properties": {
                            "id": {"type": "string"}, "deleted": {"type": "boolean"},
                            "was": {"type": "string", "enum": list(model.STATES)},
                            "contacts": {"type": "integer", "minimum": 0}}}}}},
                    **missing,
                    "409": error("Running, or paused with calls under way; state says which."),
                }),
            },
        },
        "/v1/campaigns/{id}/contacts": {
            "get": {
                "operationId": "listContacts",
                "summary": "The campaign's contacts in the order they were added, a page at a time, each with its "
                           "state, attempts, last call and cause, outcome and when it is called next.",
                "parameters": [campaign_id, state_param(CONTACT_STATES), *page_params],
                "responses": secured({
                    "200": {"description": "A page of contacts; next_cursor continues it (null at the end). A page "
                                           "reads at most 1,000 contacts.",
                            "content": {"application/json": {"schema": listed("contacts", ref("ContactState"))}}},
                    "400": error("A query parameter is not valid; field names it."),
                    **missing,
                }),
            },
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
    nullable_text = {"type": "string", "nullable": True}
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
        "ContactState": {
            "type": "object",
            "required": ["id", "numbers", "state", "attempts", "retries", "next_due"],
            "properties": {
                "id": {"type": "string"},
                "numbers": {"type": "array", "items": {"type": "string"}},
                "state": {"type": "string", "enum": list(COUNTERS)},
                "attempts": {"type": "integer", "minimum": 0, "description": "Calls placed for it."},
                "retries": {"type": "integer", "minimum": 0},
                "call": {"type": "string", "description": "Its call under way (dialing)."},
                "last_call": nullable_text,
                "last_cause": {**nullable_text, "description": "The hangup cause of its last call."},
                "outcome": {"type": "string", "nullable": True, "enum": [*OUTCOMES, None]},
                "cause": nullable_text,
                "next_due": {**nullable_text, "description": "When it may be called next, if later than now; "
                                                            "null: as soon as the pace allows, or never again."},
                "finished_at": {"type": "string"},
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


"""The do-not-call section of the native API's OpenAPI document (paths and
schemas of ``dnc_v1``), built from its own constants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import dnc
from . import dnc_v1

Responses = dict[str, Any]


def add_dnc(document: dict[str, Any], error: Callable[..., Responses],
            secured: Callable[[Responses], Responses]) -> None:
    """Add the do-not-call paths and schemas to ``document``."""

    def ref(name: str) -> dict[str, str]:
        return {"$ref": "#/components/schemas/%s" % name}

    def ok(code: str, description: str, schema: str | None = None) -> Responses:
        out: dict[str, Any] = {"description": description}
        if schema is not None:
            out["content"] = {"application/json": {"schema": ref(schema)}}
        return {code: out}

    invalid = {"400": error("The body is not JSON (or not application/json)."),
               "413": error("The body is too large."),
               "422": error("A field is invalid; 'field' names it (numbers[3], numbers[3].expires_at ...).")}
    missing = error("No such account (or one this key does not see).")
    number = {"name": "number", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "A phone number, as people write it; read in ?region= (or the default region) "
                             "without a country code."}
    region = {"name": "region", "in": "query", "required": False, "schema": {"type": "string"},
              "description": "Where numbers without a country code are (ISO 3166, such as US)."}
    account = {"name": "account", "in": "path", "required": True, "schema": {"type": "string"},
               "description": "The account's id."}

    def operations(prefix: str, whose: str, scoped: bool) -> dict[str, Any]:
        name = "Account" if scoped else "Global"
        extra = {"404": missing} if scoped else {}
        base: dict[str, Any] = {
            "get": {"operationId": "list%sDnc" % name, "summary": "A page of %s." % whose,
                    "parameters": [
                        {"name": "cursor", "in": "query", "required": False,
                         "schema": {"type": "string"}, "description": "The last page's next_cursor."},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": dnc_v1.PAGE_MAX,
                                    "default": dnc_v1.PAGE_DEFAULT}}],
                    "responses": secured({**ok("200", "The page.", "DncPage"), **extra,
                                          "422": error("cursor or limit is invalid.")})},
            "post": {"operationId": "add%sDnc" % name,
                     "summary": "Put numbers on %s: a JSON list (a bad item refuses the request), or a bulk "
                                "import (text/csv or text/plain: one number a line, or rows "
                                "number,reason,expires; bad lines are reported, good ones kept)." % whose,
                     "parameters": [region],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": ref("DncAdd")},
                         "text/csv": {"schema": {"type": "string"}},
                         "text/plain": {"schema": {"type": "string"}}}},
                     "responses": secured({**ok("201", "Added (some numbers were new).", "DncAdded"),
                                           **ok("200", "Added nothing new; or, for a bulk import, what it "
                                                       "did.", "DncImported"), **extra, **invalid})},
            "delete": {"operationId": "remove%sDnc" % name, "summary": "Take numbers off %s." % whose,
                       "requestBody": {"required": True,
                                       "content": {"application/json": {"schema": ref("DncNumbers")}}},
                       "responses": secured({**ok("200", "{\"removed\": n}"), **extra, **invalid})},
        }
        one: dict[str, Any] = {
            "parameters": [number],
            "get": {"operationId": "check%sDnc" % name,
                    "summary": "Whether a number is on %s%s." % (whose, ", or on the global one" if scoped else ""),
                    "responses": secured({**ok("200", "The entries blocking it (none: do_not_call false).",
                                               "DncCheck"), **extra, "422": error("Not a phone number.")})},
            "delete": {"operationId": "remove%sDncNumber" % name, "summary": "Take one number off %s." % whose,
                       "responses": secured({**ok("204", "Taken off."), "404": error("Not on the list."),
                                             "422": error("Not a phone number.")})},
        }
        if scoped:
            base["parameters"] = [account]
            one["parameters"] = [account, number]
        return {prefix: base, prefix + "/{number}": one}

    document["paths"].update(operations("/v1/dnc", "the global do-not-call list (operator and admin keys)", False))
    document["paths"].update(operations("/v1/accounts/{account}/dnc", "the account's do-not-call list", True))
    entry = {"type": "object", "properties": {
        "number": {"type": "string", "description": "E.164."},
        "reason": {"type": "string", "maxLength": dnc.MAX_REASON},
        "added_at": {"type": "string", "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time",
                       "description": "When it stops blocking; absent: never."}}}
    document["components"]["schemas"].update({
        "DncEntry": entry,
        "DncAdd": {"oneOf": [
            {"type": "array", "items": ref("DncItem"), "minItems": 1, "maxItems": dnc_v1.MAX_JSON_NUMBERS},
            {"type": "object", "additionalProperties": False, "required": ["numbers"], "properties": {
                "numbers": {"type": "array", "items": ref("DncItem"), "minItems": 1,
                            "maxItems": dnc_v1.MAX_JSON_NUMBERS},
                "region": {"type": "string"}}}]},
        "DncItem": {"oneOf": [
            {"type": "string", "description": "A phone number."},
            {"type": "object", "additionalProperties": False, "required": ["number"], "properties": {
                "number": {"type": "string"}, "reason": {"type": "string", "maxLength": dnc.MAX_REASON},
                "expires_at": {"description": "ISO 8601 (UTC unless it names an offset) or epoch seconds, in "
                                              "the future.", "oneOf": [{"type": "string"}, {"type": "number"}]}}}]},
        "DncNumbers": {"oneOf": [
            {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": dnc_v1.MAX_JSON_NUMBERS},
            {"type": "object", "required": ["numbers"], "properties": {
                "numbers": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                            "maxItems": dnc_v1.MAX_JSON_NUMBERS},
                "region": {"type": "string"}}}]},
        "DncAdded": {"type": "object", "properties": {
            "written": {"type": "integer"}, "added": {"type": "integer", "description": "Numbers not on it before."},
            "entries": {"type": "array", "items": ref("DncEntry")}}},
        "DncImported": {"type": "object", "properties": {
            "lines": {"type": "integer"}, "written": {"type": "integer"}, "added": {"type": "integer"},
            "refused": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "line": {"type": "integer", "description": "Counted from 1."}, "reason": {"type": "string"}}}},
            "errors_truncated": {"type": "boolean", "description": "More lines were refused than listed."}}},
        "DncPage": {"type": "object", "properties": {
            "list": {"type": "string", "enum": [dnc.GLOBAL, dnc.ACCOUNT]}, "size": {"type": "integer"},
            "entries": {"type": "array", "items": ref("DncEntry")},
            "next_cursor": {"type": "string", "nullable": True},
            "refused": {"type": "object", "description": "Calls refused for a number on it: at intake (api) and "
                                                         "at dial time (dial).",
                        "properties": {"api": {"type": "integer"}, "dial": {"type": "integer"}}}}},
        "DncCheck": {"type": "object", "properties": {
            "number": {"type": "string"}, "do_not_call": {"type": "boolean"},
            "entries": {"type": "array", "items": {"allOf": [ref("DncEntry"), {"type": "object", "properties": {
                "list": {"type": "string", "enum": [dnc.GLOBAL, dnc.ACCOUNT]}}}]}}}},
    })

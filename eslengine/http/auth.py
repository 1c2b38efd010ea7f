"""Who is calling, for every surface: an operator key of the config
(``ESLENGINE_API_KEYS``), a client key in Redis (``apikeys``), or, on an API
started with no keys at all (a local demo), anyone.

A surface's blueprint calls ``protect(blueprint, open_endpoints)``; its
routes then find the caller's key in ``flask.g.key`` and ``require`` the
scope they need."""

from __future__ import annotations

from collections.abc import Collection

from flask import Blueprint, Response, g, request

from .. import apikeys
from ..config import Config
from ..errors import ConfigError
from . import context
from .responses import Forbidden, error

# Who calls when the API runs with no keys at all (a local demo).
ANONYMOUS = apikeys.ApiKey(id="", name="anonymous", scopes=frozenset(apikeys.SCOPES), operator=True)


def check_auth_config(config: Config, allow_no_auth: bool) -> None:
    if not config.api_keys and not allow_no_auth:
        raise ConfigError("no API keys configured (ESLENGINE_API_KEYS); refusing to serve an open API")


def authorized(header: str | None, keys: frozenset[str]) -> bool:
    """Whether an ``Authorization`` header carries one of the operator
    ``keys`` as a bearer token. Every key is compared, in constant time each."""
    return apikeys.operator_token(apikeys.bearer_token(header), keys)


def principal(header: str | None) -> apikeys.ApiKey | None:
    """The key an ``Authorization`` header names: an operator key of the
    config, a client key in Redis, or None."""
    config = context.config()
    token = apikeys.bearer_token(header)
    if not token:
        return None if config.api_keys else ANONYMOUS
    if apikeys.operator_token(token, config.api_keys):
        return apikeys.operator_key(token)
    key = context.key_store().by_token(token)
    if key is None and not config.api_keys:
        return ANONYMOUS
    return key


def protect(blueprint: Blueprint, open_endpoints: Collection[str] = ()) -> None:
    """Every route of ``blueprint`` but ``open_endpoints`` needs a key."""

    def authenticate() -> Response | None:
        if request.endpoint in open_endpoints:
            return None
        key = principal(request.headers.get("Authorization"))
        if key is None:
            response = error(401, "unauthorized", "a valid 'Authorization: Bearer <key>' header is required")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        g.key = key
        return None

    blueprint.before_request(authenticate)


def caller() -> apikeys.ApiKey:
    """The key of the request being answered (after ``protect``)."""
    return g.key


def require(scope: str, what: str) -> apikeys.ApiKey:
    """The caller's key; ``Forbidden`` (403) when it lacks ``scope``."""
    key = caller()
    if not key.may(scope):
        raise Forbidden("this key may not %s (it lacks the scope %r)" % (what, scope))
    return key

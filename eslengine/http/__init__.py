"""The HTTP front-end: validate a click-to-call request, queue it, answer 202.

One concept a module:

``app``          ``create_app``: the Flask app, its surfaces and error answers
``context``      what the app carries (config, job queue, key store)
``auth``         who is calling: operator and client keys, scopes (every surface)
``responses``    JSON answers, request bodies, the errors every surface shares
``calls_v1``     the native API: ``/v1/calls``, ``/healthz``, ``/v1/openapi.json``
``fast_intake``  ``POST /v1/calls`` as plain WSGI in front of Flask (the hot path)
``metrics``      ``GET /metrics``, and every request counted by route and status
``openapi``      the OpenAPI 3.0 document of the native API
``present``      a stored call record as the API shows it
``serve``        gunicorn (gevent workers) or Flask's development server

The API never talks to FreeSWITCH.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported when first asked for: ``present`` (a pure module the worker's
# webhook deliveries use too) is then imported without Flask.
_EXPORTS = {"MAX_BODY": "responses", "authorized": "auth", "create_app": "app", "openapi_document": "openapi",
            "serve": "serve"}

__all__ = ["MAX_BODY", "authorized", "create_app", "openapi_document", "serve"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module("." + _EXPORTS[name], __name__), name)
        globals()[name] = value  # over the submodule of the same name (``serve``) importing set
        return value
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

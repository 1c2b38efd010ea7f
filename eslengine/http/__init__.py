"""The HTTP front-end: validate a click-to-call request, queue it, answer 202.

One concept a module:

``app``          ``create_app``: the Flask app, its surfaces and error answers
``context``      what the app carries (config, job queue, key store)
``auth``         who is calling: operator and client keys, scopes (every surface)
``responses``    JSON answers, request bodies, the errors every surface shares
``calls_v1``     the native API: ``/v1/calls``, ``/healthz``, ``/v1/openapi.json``
``fast_intake``  ``POST /v1/calls`` as plain WSGI in front of Flask (the hot path)
``openapi``      the OpenAPI 3.0 document of the native API
``serve``        gunicorn (gevent workers) or Flask's development server

The API never talks to FreeSWITCH.
"""

from __future__ import annotations

from .app import create_app
from .auth import authorized
from .openapi import openapi_document
from .responses import MAX_BODY
from .serve import serve

__all__ = ["MAX_BODY", "authorized", "create_app", "openapi_document", "serve"]

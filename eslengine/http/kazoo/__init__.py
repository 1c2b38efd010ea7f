"""The Kazoo crossbar facade: Kazoo's ``clicktocall`` and ``quickcall``
APIs (``/v2/accounts/<account>/...``) on eslengine's own accounts, resources
and calls.

``crossbar``   the envelope of requests and replies, errors included (pure)
``translate``  Kazoo documents to native ones and back (pure)
``routes``     the blueprint: auth, storage and the queue at the edges
``openapi``    its OpenAPI description (``/v2/kazoo/openapi.json``)
"""

from __future__ import annotations

from .routes import bp, http_error

__all__ = ["bp", "http_error"]

"""What the app carries, read from the request's app: the ``Config``
(``app.config``), the ``JobQueue`` and the client ``KeyStore``
(``app.extensions``)."""

from __future__ import annotations

from flask import current_app

from ..apikeys import KeyStore
from ..config import Config
from ..queue import JobQueue

EXTENSION = "eslengine"
KEYS_EXTENSION = "eslengine.keys"
CONFIG_KEY = "ESLENGINE_CONFIG"


def config() -> Config:
    return current_app.config[CONFIG_KEY]  # type: ignore[no-any-return]


def queue() -> JobQueue:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def key_store() -> KeyStore:
    return current_app.extensions[KEYS_EXTENSION]  # type: ignore[no-any-return]

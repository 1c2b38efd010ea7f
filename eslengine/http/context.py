"""What the app carries, read from the request's app: the ``Config``
(``app.config``), the ``JobQueue``, the client ``KeyStore``, the
``AccountStore``, the ``ClickToCallLog`` and the ``CampaignStore``
(``app.extensions``)."""

from __future__ import annotations

from flask import current_app

from ..accounts import AccountStore
from ..apikeys import KeyStore
from ..clicktocall import ClickToCallLog
from ..config import Config
from ..store import JobQueue
from ..store.campaigns import CampaignStore

EXTENSION = "eslengine"
KEYS_EXTENSION = "eslengine.keys"
ACCOUNTS_EXTENSION = "eslengine.accounts"
CLICKTOCALL_EXTENSION = "eslengine.clicktocall"
CAMPAIGNS_EXTENSION = "eslengine.campaigns"
CONFIG_KEY = "ESLENGINE_CONFIG"


def config() -> Config:
    return current_app.config[CONFIG_KEY]


def queue() -> JobQueue:
    return current_app.extensions[EXTENSION]


def key_store() -> KeyStore:
    return current_app.extensions[KEYS_EXTENSION]


def account_store() -> AccountStore:
    return current_app.extensions[ACCOUNTS_EXTENSION]


def clicktocall_log() -> ClickToCallLog:
    return current_app.extensions[CLICKTOCALL_EXTENSION]


def campaign_store() -> CampaignStore:
    return current_app.extensions[CAMPAIGNS_EXTENSION]

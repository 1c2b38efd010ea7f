"""``create_app``: the Flask app of the API, with its surfaces (blueprints)
and the JSON error answers they share."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from ..accounts import AccountStore
from ..apikeys import KeyStore
from ..clicktocall import ClickToCallLog
from ..config import Config
from ..store import JobQueue
from ..store.campaigns import CampaignStore
from . import accounts_v1, blocking, calls_v1, campaigns_v1, dnc_v1, infobip_ctc, kazoo, metrics, sarv_v2, telecmi_v2, widget
from .auth import check_auth_config
from .context import (
    ACCOUNTS_EXTENSION,
    CAMPAIGNS_EXTENSION,
    CLICKTOCALL_EXTENSION,
    CONFIG_KEY,
    EXTENSION,
    KEYS_EXTENSION,
)
from .fast_intake import FastIntake
from .responses import MAX_BODY, http_exception, register_errors


def create_app(config: Config, queue: JobQueue | None = None, *, allow_no_auth: bool = False,
               fast_intake: bool = False, max_wait: float = blocking.MAX_WAIT) -> Flask:
    """The API for ``config``. ``queue`` defaults to one built from the config
    (its Redis client connects on first use).

    Raises ``ConfigError`` when ``config.api_keys`` is empty, unless
    ``allow_no_auth`` is true: then every route is open to anyone who can
    reach it, which is for a local demo on 127.0.0.1 only.

    ``fast_intake``: serve ``POST /v1/calls`` through ``FastIntake`` in front
    of Flask (``serve`` does). Leave it off for an app you add request hooks
    or extensions to: the fast path does not run them.

    ``max_wait``: the longest a blocking start (``?wait=originate``) waits,
    whatever the request asks.
    """
    check_auth_config(config, allow_no_auth)
    app = Flask(__name__)
    app.config.from_mapping({"MAX_CONTENT_LENGTH": MAX_BODY, CONFIG_KEY: config, calls_v1.WAIT_LIMIT: max_wait})
    jobs = queue if queue is not None else JobQueue.from_config(config)
    app.extensions[EXTENSION] = jobs
    app.extensions[KEYS_EXTENSION] = KeyStore(jobs.redis, config.key_prefix)
    app.extensions[ACCOUNTS_EXTENSION] = AccountStore(jobs.redis, config.key_prefix)
    app.extensions[CLICKTOCALL_EXTENSION] = ClickToCallLog(jobs.redis, config.key_prefix, record_ttl=jobs.record_ttl)
    app.extensions[CAMPAIGNS_EXTENSION] = CampaignStore(jobs.redis, jobs.keys, record_ttl=jobs.record_ttl)
    register_errors(app)
    app.register_error_handler(HTTPException, _unrouted)
    app.register_blueprint(telecmi_v2.bp)
    app.register_blueprint(sarv_v2.bp)
    app.register_blueprint(infobip_ctc.bp)
    app.register_blueprint(calls_v1.bp)
    app.register_blueprint(accounts_v1.bp)
    app.register_blueprint(campaigns_v1.bp)
    app.register_blueprint(dnc_v1.bp)
    app.register_blueprint(kazoo.bp)
    app.register_blueprint(widget.bp)
    if fast_intake:
        app.wsgi_app = FastIntake(app.wsgi_app, config, jobs)  # type: ignore[method-assign]
    metrics.install(app, jobs)  # GET /metrics; every request counted, the fast path's too
    return app


def _unrouted(exc: HTTPException) -> WerkzeugResponse:
    """An error no blueprint answered: a path no route takes. Under
    /v2/accounts (Kazoo's crossbar) that includes a path with a newline in it,
    which its catch-all route does not take either (URL converters stop at
    one): crossbar's envelope there, the native JSON elsewhere."""
    if request.path == "/v2/accounts" or request.path.startswith("/v2/accounts/"):
        return kazoo.http_error(exc)
    return http_exception(exc)


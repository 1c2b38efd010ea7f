"""The bare Flask endpoint the API's intake is compared with: it only
answers 202. Served by gunicorn with one gevent worker, like the API, and
with the same collector settings as every eslengine process."""

from __future__ import annotations

from flask import Flask

from eslengine.runtime import tune_gc

app = Flask(__name__)


@app.post("/v1/calls")
def accept() -> tuple[str, int]:
    return "", 202


tune_gc()  # gunicorn imports this module in the worker, after the fork

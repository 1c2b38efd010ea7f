"""The bare Flask endpoint the API's intake is compared with: it only
answers 202. Served by gunicorn with one gevent worker, like the API."""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.post("/v1/calls")
def accept() -> tuple[str, int]:
    return "", 202

"""A small "call me back" site on eslengine's API: the kind of page an
integrator puts behind a website's "call me" button.

    ESLENGINE_URL=http://127.0.0.1:8080 ESLENGINE_KEY=<a client key> \\
    SALES=user/1000 REGION=US flask --app examples/callback_site/app.py run

A visitor types a number the way people do ("(212) 555-0123"); the site
asks eslengine to ring the visitor first and connect them to SALES, shows
what eslengine says is wrong with the number when it refuses it, and then the
call's progress in words. The API key stays on the server: the page polls
this site, which asks eslengine.

Use a client key (``eslengine keys create --name site --scopes place,read``)
with a caller-ID list and a rate, not an operator key.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from typing import Any

from flask import Flask, abort, jsonify, redirect, render_template_string, request, url_for

FINAL = ("completed", "failed", "cancelled")
# What a visitor reads for each status; failures by the first party's cause.
WORDS = {
    "queued": "Calling you in a moment…",
    "dialing": "Calling you…",
    "ringing": "Your phone is ringing…",
    "answered": "Connecting you to our team…",
    "bridged": "Connected.",
    "completed": "Thanks for calling.",
    "cancelled": "The call was cancelled.",
}
FAILED = {
    "USER_BUSY": "Your line was busy. Try again in a minute.",
    "NO_ANSWER": "You did not answer. Try again when you are free.",
    "UNALLOCATED_NUMBER": "That number does not seem to exist.",
}

PAGE = """<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Call me back</title>
<main>
  <h1>Call me back</h1>
  {% if call_id %}
    <p id="status" role="status" aria-live="polite">{{ words }}</p>
    <script>
      async function follow() {
        const answer = await fetch("{{ url_for('status', call_id=call_id) }}");
        const call = await answer.json();
        document.getElementById("status").textContent = call.words;
        if (!call.final) setTimeout(follow, 1000);
      }
      setTimeout(follow, 1000);
    </script>
  {% else %}
    <form method="post" action="{{ url_for('call_me') }}">
      <label for="number">Your phone number</label>
      <input id="number" name="number" type="tel" autocomplete="tel" value="{{ number }}" required
             {% if problem %}aria-invalid="true" aria-describedby="problem"{% endif %}>
      <input type="hidden" name="token" value="{{ token }}">
      {% if problem %}<p id="problem" role="alert">{{ problem }}</p>{% endif %}
      <button>Call me</button>
    </form>
  {% endif %}
</main>
</html>"""


def create_app(base: str | None = None, key: str | None = None, sales: str | None = None,
               region: str | None = None) -> Flask:
    app = Flask(__name__)
    base = (base or os.environ.get("ESLENGINE_URL", "http://127.0.0.1:8080")).rstrip("/")
    key = key or os.environ["ESLENGINE_KEY"]
    sales = sales or os.environ.get("SALES", "user/1000")
    region = region or os.environ.get("REGION", "US")

    def api(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    @app.get("/")
    def form() -> str:
        return render_template_string(PAGE, token=secrets.token_urlsafe(16), number="", problem="", call_id="")

    @app.post("/call-me")
    def call_me() -> Any:
        number = request.form.get("number", "")
        token = request.form.get("token") or secrets.token_urlsafe(16)
        # The form's token as the Idempotency-Key: a double click or a
        # resubmitted form rings the visitor once.
        code, answer = api("POST", "/v1/calls", {"a": number, "b": sales, "region": region,
                                                 "variables": {"source": "callback-site"}},
                           {"Idempotency-Key": "site-" + token})
        if code == 202:
            return redirect(url_for("progress", call_id=answer["id"]), 303)
        if code == 422 and answer.get("field") in ("a", "a.to"):
            problem = "We cannot call that number: %s." % answer["reason"]
        elif code == 429:
            problem = "We are taking many calls right now; try again in a minute."
        else:
            app.logger.warning("eslengine answered %d: %s", code, answer)
            problem = "Calls cannot be placed right now; try again later."
        return render_template_string(PAGE, token=token, number=number, problem=problem, call_id=""), 400

    @app.get("/calls/<call_id>")
    def progress(call_id: str) -> str:
        return render_template_string(PAGE, call_id=call_id, words=WORDS["queued"], token="", number="", problem="")

    @app.get("/calls/<call_id>/status")
    def status(call_id: str) -> Any:
        code, call = api("GET", "/v1/calls/" + call_id)
        if code != 200:
            abort(404)
        words = WORDS.get(call["status"], "")
        if call["status"] == "failed":
            words = FAILED.get(call.get("a_hangup_cause") or call.get("hangup_cause", ""),
                               "We could not reach you. Try again later.")
        return jsonify({"status": call["status"], "final": call["status"] in FINAL, "words": words})

    return app


if __name__ == "__main__":
    create_app().run(host="127.0.0.1", port=5000)

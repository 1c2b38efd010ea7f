"""``eslengine demo``: the whole system on this machine with no FreeSWITCH.

Starts a private Redis, the FreeSWITCH simulator, a worker and the API (each
a real process on a free loopback port), places a handful of click-to-calls
through HTTP and one pushed straight into Redis, prints every status change
as it happens, then stops everything it started. Exit status 0 when every
call ended the way the simulator's rules say it must.

``eslengine demo --widget`` instead serves a sample page with the "call me"
widget (on 127.0.0.1, another origin than the API's) and prints its URL:
open it, type a number (...486 is busy, ...408 never answers, anything
else connects) and watch the status. Ctrl-C stops everything.
"""

from __future__ import annotations

import http.server
import json
import secrets
import signal
import socketserver
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .config import Config
from .stack import LocalStack
from .store import JOB_FIELD, Keys, connect

# The simulator's rules (see fakeswitch): ...486 is busy, ...408 never
# answers, anything else answers after the ring time and talks for the
# talk time.
RING_TIME = "1.0"
TALK_TIME = "3.0"


@dataclass
class DemoCall:
    label: str
    body: dict[str, Any]
    expect: tuple[str, str]
    via: str = "http"
    cancel: bool = False
    id: str = ""
    seen: int = 0
    doc: dict[str, Any] = field(default_factory=dict)


def _calls() -> list[DemoCall]:
    return [
        DemoCall("connects", {"a": "+15551230001", "b": "+15551230002", "caller_id_number": "+15557770000",
                              "caller_id_name": "Acme Support", "variables": {"campaign": "demo"}},
                 ("completed", "NORMAL_CLEARING")),
        DemoCall("b busy", {"a": "+15551230011", "b": "+15551230486"}, ("failed", "USER_BUSY")),
        DemoCall("no answer", {"a": "+15551230408", "b": "+15551230012", "timeout": 5}, ("failed", "NO_ANSWER")),
        DemoCall("cancelled", {"a": "+15551230021", "b": "+15551230022"}, ("cancelled", "ORIGINATOR_CANCEL"),
                 cancel=True),
        DemoCall("via redis", {"id": str(uuid.uuid4()), "a": "user/1000", "b": "+15551230031"},
                 ("completed", "NORMAL_CLEARING"), via="redis"),
    ]


def run(config: Config, *, out: Any = None, deadline: float = 60.0) -> int:
    out = out or sys.stdout

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    stack = LocalStack(switch_args=["--ring-time", RING_TIME, "--talk-time", TALK_TIME],
                       env={"ESLENGINE_LOG_LEVEL": "INFO"})
    say("eslengine demo: starting a private Redis, the FreeSWITCH simulator, a worker and the API ...")
    stack.start()
    try:
        say("  redis      %s" % stack.redis_url)
        say("  switch     esl://127.0.0.1:%d (simulated)" % stack.switch_port)
        say("  api        %s  (Authorization: Bearer %s)" % (stack.api_url, stack.api_key))
        say("  logs       %s" % stack.dir)
        return _place_calls(stack, say, deadline)
    finally:
        say("stopping everything the demo started ...")
        stack.stop()
        stack.cleanup()


def _place_calls(stack: LocalStack, say: Any, deadline: float) -> int:
    calls = _calls()
    start = time.monotonic()
    wall_start = time.time()
    client = connect(stack.redis_url)
    for call in calls:
        if call.via == "http":
            status, doc, headers = stack.http("POST", "/v1/calls", call.body)
            if status != 202:
                say("POST /v1/calls for %r answered %d: %s" % (call.label, status, doc))
                return 1
            call.id = doc["id"]
            say("POST /v1/calls  %-10s a=%s b=%s -> 202 %s  Location: %s"
                % (call.label, call.body["a"], call.body["b"], doc["status"], headers.get("Location")))
        else:
            call.id = call.body["id"]
            client.xadd(Keys().jobs, {JOB_FIELD: json.dumps(call.body)})
            say("XADD %s %-10s a=%s b=%s id=%s" % (Keys().jobs, call.label, call.body["a"], call.body["b"], call.id))

    cancelled = False
    while time.monotonic() - start < deadline:
        pending = 0
        for call in calls:
            status, doc, _ = stack.http("GET", "/v1/calls/%s" % call.id)
            if status == 404:
                pending += 1
                continue
            call.doc = doc
            for step in doc.get("history", [])[call.seen:]:
                cause = doc.get("hangup_cause", "") if step["status"] in ("completed", "failed", "cancelled") else ""
                at = datetime.fromisoformat(step["at"].replace("Z", "+00:00")).timestamp() - wall_start
                say("[%6.2fs] %-10s %-10s %s" % (at, call.label, step["status"], cause))
            call.seen = len(doc.get("history", []))
            if call.cancel and not cancelled and doc.get("status") in ("ringing", "answered", "bridged"):
                code, reply, _ = stack.http("DELETE", "/v1/calls/%s" % call.id)
                say("DELETE /v1/calls/%s -> %d %s" % (call.id[:8], code, reply.get("status")))
                cancelled = True
            if doc.get("status") not in ("completed", "failed", "cancelled"):
                pending += 1
        if not pending:
            break
        time.sleep(0.1)

    say("")
    say("%-10s %-10s %-22s %s" % ("call", "status", "hangup cause", "as expected"))
    ok = True
    for call in calls:
        got = (call.doc.get("status", "?"), call.doc.get("hangup_cause", ""))
        match = got == call.expect
        ok &= match
        say("%-10s %-10s %-22s %s" % (call.label, got[0], got[1], "yes" if match else "NO (expected %s %s)" % call.expect))
    say("demo %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


# ------------------------------------------------------------------ the widget


class PageServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Serves one page (``page_handler``) on a loopback port."""

    daemon_threads = True


def page_handler(html: bytes) -> type[http.server.BaseHTTPRequestHandler]:
    """A request handler that answers every GET with ``html``."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


WIDGET_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Example shop: call me</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto">
<h1>Example shop</h1>
<p>Leave your number and Sales calls you back at once. (A simulated switch:
numbers ending 486 are busy, 408 never answer, anything else connects.)</p>
<div data-eslengine-widget></div>
<script src="%(api)s/v1/widget/%(account)s/%(c2c)s/widget.js" async></script>
</body>
</html>
"""


def run_widget(config: Config, *, out: Any = None, stop_after: float | None = None) -> int:
    """Serve a sample page with the widget until Ctrl-C (or ``stop_after``
    seconds) and print its URL."""
    out = out or sys.stdout
    from .stack import free_port

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    page_port = free_port()
    stack = LocalStack(switch_args=["--ring-time", RING_TIME, "--talk-time", "20"],
                       env={"ESLENGINE_LOG_LEVEL": "INFO", "ESLENGINE_WIDGET_SECRET": secrets.token_hex(24),
                            "ESLENGINE_DEFAULT_REGION": "US"})
    say("eslengine demo --widget: starting a private Redis, the FreeSWITCH simulator, a worker and the API ...")
    stack.start()
    server = None
    try:
        ids: list[str] = []
        for path, body in (("/v1/accounts", {"name": "Example shop"}),
                           ("/v1/accounts/{0}/users", {"name": "Sales desk", "endpoint": "user/1000"}),
                           ("/v1/accounts/{0}/clicktocall", {
                               "name": "Sales", "extension": "user:{1}", "auth_required": False, "timeout": 20,
                               "widget": {"origins": ["http://127.0.0.1:%d" % page_port], "region": "US"}})):
            filled = json.loads(json.dumps(body).replace("{1}", ids[1] if len(ids) > 1 else ""))
            code, doc, _ = stack.http("POST", path.format(*ids), filled)
            if code != 201:
                say("POST %s answered %d: %s" % (path, code, doc))
                return 1
            ids.append(str(doc["id"]))
        html = (WIDGET_PAGE % {"api": stack.api_url, "account": ids[0], "c2c": ids[2]}).encode()
        server = PageServer(("127.0.0.1", page_port), page_handler(html))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        say("  api        %s  (Authorization: Bearer %s)" % (stack.api_url, stack.api_key))
        say("  logs       %s" % stack.dir)
        say("")
        say("Open the sample page: http://127.0.0.1:%d/" % page_port)
        say("(calls: %s/v1/calls; widget refusals: %s/v1/accounts/%s/clicktocall/%s/widget/refusals)"
            % (stack.api_url, stack.api_url, ids[0], ids[2]))
        say("Ctrl-C stops everything the demo started.")
        deadline = None if stop_after is None else time.monotonic() + stop_after

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)  # a service manager's stop, like Ctrl-C
        try:
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        say("stopping everything the demo started ...")
        if server is not None:
            server.shutdown()
            server.server_close()
        stack.stop()
        stack.cleanup()

"""``eslengine campaign ...``: campaigns from the command line, over the
HTTP API (``--url``, default ``ESLENGINE_URL`` or http://127.0.0.1:8080;
``--key``, default ``ESLENGINE_KEY``).

    create FILE.json        a campaign (contacts inline optional); prints its id
    upload ID FILE.csv      stream a CSV of contacts, a progress bar on stderr
    start|pause|resume|cancel ID
    show ID                 the campaign and its counters, as JSON
    list [--state S]        one line per campaign (every page)
    contacts ID [--state S] one line per contact: state, attempts, outcome or last cause, next call
    change ID [--cps N] [--max-concurrent N] [--window JSON|none]
                            new pacing or calling window, also while it runs
    delete ID               delete it and all it holds
    watch ID                the counters, redrawn until it is over or Ctrl-C

``progress_line``, ``counter_lines``, ``contact_line`` and ``change_body``
are pure; the rest is I/O.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any
from urllib.parse import quote, urlsplit

DEFAULT_URL = "http://127.0.0.1:8080"
BAR = 30
# Seconds between two redraws of the progress bar.
REDRAW = 0.1


class CommandError(Exception):
    """What the command says on its one line before it exits 1."""


def progress_line(sent: int, total: int, rows: int, elapsed: float, width: int = BAR) -> str:
    """``[#####.....]  50%  1.2/2.4 MB  10,000 rows  3,300 rows/s``."""
    share = min(1.0, sent / total) if total else 0.0
    filled = int(round(share * width))
    rate = rows / elapsed if elapsed > 0 else 0.0
    return "[%s%s] %3d%%  %.1f/%.1f MB  %s rows  %s rows/s" % (
        "#" * filled, "." * (width - filled), int(share * 100), sent / 1e6, total / 1e6, format(rows, ","),
        format(int(rate), ","))


def counter_lines(campaign: Mapping[str, Any]) -> list[str]:
    """A campaign's counters as ``watch`` draws them."""
    c = campaign.get("counters", {})
    total = int(campaign.get("contacts") or 0)
    done = int(c.get("done") or 0)
    lines = ["campaign %s  %s  %s" % (campaign.get("id", ""), campaign.get("name", ""), campaign.get("state", "")),
             "contacts %s  done %s (%d%%)  calls %s" % (
                 format(total, ","), format(done, ","), 100 * done // total if total else 0,
                 format(int(campaign.get("calls") or 0), ",")),
             "queued %s  dialing %s  retrying %s  waiting for window %s%s" % (
                 c.get("queued", 0), c.get("dialing", 0), c.get("retrying", 0), c.get("waiting_window", 0),
                 " (until %s)" % campaign["waiting_until"] if campaign.get("waiting_until") else ""),
             "connected %s  failed %s  cancelled %s  expired %s  skipped (do not call) %s" % (
                 c.get("connected", 0), c.get("failed", 0), c.get("cancelled", 0), c.get("expired", 0),
                 c.get("skipped_dnc", 0))]
    causes = campaign.get("failed_by_cause") or {}
    if causes:
        lines.append("failed by cause: " + ", ".join("%s %s" % (k, v) for k, v in sorted(causes.items())))
    return lines


def contact_line(contact: Mapping[str, Any]) -> str:
    """A contact as ``contacts`` lists it: id, state, attempts, its outcome
    and cause (or its last call's cause), when it is called next."""
    state = str(contact.get("state") or "")
    if state == "done":
        what = "%s %s" % (contact.get("outcome") or "", contact.get("cause") or "")
    else:
        what = "last %s" % contact["last_cause"] if contact.get("last_cause") else ""
    due = "next %s" % contact["next_due"] if contact.get("next_due") else ""
    return "  ".join(part for part in ("%-20s %-14s %d attempt(s)" % (
        contact.get("id", ""), state, int(contact.get("attempts") or 0)), what.strip(), due) if part)


def change_body(cps: float | None, max_concurrent: int | None, window: str | None) -> dict[str, Any]:
    """The ``PATCH`` body of ``change``; ``CommandError`` when it changes nothing
    or the window is not a JSON object (or ``none``)."""
    body: dict[str, Any] = {}
    pacing = {k: v for k, v in (("cps", cps), ("max_concurrent", max_concurrent)) if v is not None}
    if pacing:
        body["pacing"] = pacing
    if window is not None:
        if window.strip().lower() == "none":
            body["calling_window"] = None
        else:
            try:
                body["calling_window"] = json.loads(window)
            except ValueError:
                raise CommandError("--window must be a JSON object (days, hours, holidays, zone) or none") from None
    if not body:
        raise CommandError("nothing to change: give --cps, --max-concurrent or --window")
    return body


def over(campaign: Mapping[str, Any]) -> bool:
    """Whether a campaign has nothing left to do."""
    state = campaign.get("state")
    counters = campaign.get("counters", {})
    return state == "finished" or (state == "cancelled" and counters.get("done") == campaign.get("contacts"))


class Api:
    """The HTTP API at ``url`` with bearer ``key``."""

    def __init__(self, url: str, key: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError("--url must be an http(s) URL, got %r" % url)
        self.parts = parts
        self.key = key
        self.timeout = timeout

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
        return cls(self.parts.hostname or "", self.parts.port, timeout=self.timeout)

    def call(self, method: str, path: str, body: bytes | IO[bytes] | None = None,
             content_type: str = "application/json", length: int | None = None) -> Any:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = "Bearer " + self.key
        if body is not None:
            headers["Content-Type"] = content_type
            if length is not None:
                headers["Content-Length"] = str(length)
        connection = self._connection()
        try:
            connection.request(method, self.parts.path.rstrip("/") + path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except OSError as exc:
            raise CommandError("cannot reach %s: %s" % (self.parts.netloc, exc)) from exc
        finally:
            connection.close()
        return answer(response.status, response.reason, raw)

    def pages(self, path: str, name: str) -> Iterator[dict[str, Any]]:
        """Every item of a paged listing (``path`` has a query already),
        following ``next_cursor`` page by page."""
        cursor = None
        while True:
            document = self.call("GET", path + ("&cursor=" + cursor if cursor else ""))
            yield from document[name]
            cursor = document.get("next_cursor")
            if not cursor:
                return


def answer(status: int, reason: str, raw: bytes) -> Any:
    """An API answer's JSON document, or ``CommandError`` for a 4xx or 5xx."""
    try:
        document = json.loads(raw) if raw else {}
    except ValueError:
        document = {"reason": raw[:200].decode("utf-8", "replace")}
    if status >= 400:
        said = document.get("reason") if isinstance(document, dict) else None
        field = document.get("field") if isinstance(document, dict) else None
        raise CommandError("HTTP %d: %s%s" % (status, said or reason, " (field %s)" % field if field else ""))
    return document


class Progress:
    """A file read for an upload that draws the progress bar as it goes."""

    def __init__(self, file: IO[bytes], total: int, out: IO[str], clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.file = file
        self.total = total
        self.out = out
        self.clock = clock
        self.sent = 0
        self.rows = 0
        self.started = clock()
        self._drawn = 0.0

    def read(self, size: int = -1) -> bytes:
        block = self.file.read(size if size and size > 0 else 64 * 1024)
        self.sent += len(block)
        self.rows += block.count(b"\n")
        now = self.clock()
        if now - self._drawn >= REDRAW or not block:
            self._drawn = now
            self.draw()
        return block

    def draw(self) -> None:
        self.out.write("\r" + progress_line(self.sent, self.total, max(0, self.rows - 1), self.clock() - self.started))
        self.out.flush()


def _load(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        raise CommandError("cannot read %s: %s" % (path, exc.strerror)) from exc


def run(args: Any, out: IO[str] = sys.stdout, err: IO[str] = sys.stderr,
        sleep: Callable[[float], None] = time.sleep, api: Api | None = None) -> int:
    """Run one ``eslengine campaign`` command; 0, or 1 with one line on ``err``."""
    try:
        return _run(args, out, err, sleep, api)
    except CommandError as exc:
        err.write("eslengine campaign: error: %s\n" % exc)
        return 1


def _run(args: Any, out: IO[str], err: IO[str], sleep: Callable[[float], None], api: Api | None) -> int:
    if api is None:
        key = args.key if args.key is not None else os.environ.get("ESLENGINE_KEY", "")
        api = Api(args.url or os.environ.get("ESLENGINE_URL") or DEFAULT_URL, key)
    action = args.action
    if action == "create":
        body = _load(args.file)
        made = api.call("POST", "/v1/campaigns", body)
        out.write("%s\n" % made["id"])
        upload = made.get("upload") or {}
        if upload.get("refused"):
            _errors(upload, err)
        return 0
    if action == "upload":
        try:
            file = open(args.file, "rb")
        except OSError as exc:
            raise CommandError("cannot read %s: %s" % (args.file, exc.strerror)) from exc
        with file:
            total = os.fstat(file.fileno()).st_size
            progress = Progress(file, total, err)
            result = api.call("POST", "/v1/campaigns/%s/contacts" % args.id, progress,  # type: ignore[arg-type]
                              content_type="text/csv", length=total)
            progress.draw()
        err.write("\n")
        out.write("rows %s  added %s  refused %s\n" % (format(result["rows"], ","), format(result["added"], ","),
                                                     format(result["refused"], ",")))
        _errors(result, err)
        return 0
    if action in ("start", "pause", "resume", "cancel"):
        shown = api.call("POST", "/v1/campaigns/%s/%s" % (args.id, action), b"{}")
        out.write("%s %s\n" % (shown["id"], shown["state"]))
        return 0
    if action == "show":
        out.write(json.dumps(api.call("GET", "/v1/campaigns/%s" % args.id), indent=2) + "\n")
        return 0
    if action == "list":
        state = getattr(args, "state", None)
        for c in api.pages("/v1/campaigns?limit=1000" + ("&state=" + quote(state) if state else ""), "campaigns"):
            out.write("%s  %-9s  %s/%s done  %s\n" % (c["id"], c["state"], c["counters"]["done"], c["contacts"],
                                                      c["name"]))
        return 0
    if action == "contacts":
        path = "/v1/campaigns/%s/contacts?limit=1000" % quote(args.id)
        for contact in api.pages(path + ("&state=" + quote(args.state) if args.state else ""), "contacts"):
            out.write(contact_line(contact) + "\n")
        return 0
    if action == "change":
        change = change_body(args.cps, args.max_concurrent, args.window)
        shown = api.call("PATCH", "/v1/campaigns/%s" % quote(args.id), json.dumps(change).encode())
        document = shown.get("campaign") or {}
        out.write("%s %s  pacing %s  window %s\n" % (shown["id"], shown["state"],
                                                     json.dumps(document.get("pacing")),
                                                     json.dumps(document.get("calling_window"))))
        return 0
    if action == "delete":
        deleted = api.call("DELETE", "/v1/campaigns/%s" % quote(args.id))
        out.write("%s deleted (was %s, %s contact(s))\n" % (deleted["id"], deleted["was"],
                                                           format(deleted["contacts"], ",")))
        return 0
    if action == "watch":
        drawn = 0
        while True:
            shown = api.call("GET", "/v1/campaigns/%s" % args.id)
            lines = counter_lines(shown)
            if drawn and out.isatty():
                out.write("\x1b[%dA\x1b[J" % drawn)
            out.write("\n".join(lines) + "\n")
            out.flush()
            drawn = len(lines)
            if over(shown):
                return 0
            sleep(args.interval)
    raise CommandError("unknown action %r" % action)


def _errors(result: Mapping[str, Any], err: IO[str], most: int = 10) -> None:
    errors = result.get("errors") or []
    for e in errors[:most]:
        err.write("row %s: %s: %s\n" % (e["row"], e["field"], e["reason"]))
    left = int(result.get("refused") or 0) - min(most, len(errors))
    if left > 0:
        err.write("... and %s more refused row(s)\n" % format(left, ","))

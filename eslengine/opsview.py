"""The operator's view: what ``eslengine status`` and ``eslengine calls``
show, as JSON documents and as text tables. Pure: the store reads Redis
into a ``Snapshot`` (``store.overview``) and the command line prints what
this module makes of it.

``status_document`` is the stable ``eslengine status --json`` shape
(``STATUS_VERSION`` changes only when a field changes meaning or goes):

    {"version": 1, "at": "<Redis's time, ISO 8601>", "ready": true,
     "nodes": [{"node", "up", "sessions", "sps", "max_sessions",
                "url": {"sps", "max_sessions"} | null,
                "switch": {"sps", "max_sessions"} | null,
                "workers": [{"worker", "connected", "held", "share",
                             "switch_sps", "switch_max_sessions"}]}],
     "workers": [{"worker", "state", "seen_ago", "host", "pid", "version",
                  "started_at", "uptime", "pool", "calls", "claimed",
                  "nodes": {"<node>": "up" | "down"}}],
     "queue": {"waiting", "oldest_waiting_age", "claimed",
               "oldest_claimed_age", "retries", "next_retry_in",
               "dead_letters", "newest_dead_letter_age",
               "lanes": {"interactive" | "bulk": {"waiting", "oldest_waiting_age",
                                                  "claimed", "oldest_claimed_age"}}},
     "campaigns": {"running", "contacts": {"queued", "retrying",
                                           "waiting_window", "dialing"}},
     "do_not_call": {"refused": {"api", "dial"}}}

``queue``'s ``waiting``, ``claimed`` and their ages are both lanes'
together (the oldest of either); ``queue.lanes`` has each lane's own.
``campaigns.contacts`` are the contacts of the running campaigns by
state (``queued``: to be called; ``retrying``: waiting for their next
attempt; ``waiting_window``: outside their calling window; ``dialing``:
a call queued or under way). ``do_not_call.refused`` counts the calls
refused for a do-not-call number since the prefix was first used, at
intake (``api``) and at dial time (``dial``).

Times are seconds (one decimal), null where there is nothing to time.
A worker's ``state`` is ``running``, ``draining`` (stopping: no new jobs,
its calls followed to their end), ``stopped`` (it stopped and said so) or
``gone`` (its heartbeat lapsed without a word: its calls and jobs go to
another worker). A node is ``up`` when a live worker is connected to it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .config import Node

STATUS_VERSION = 1
# Worker states, as ``status_document`` names them.
RUNNING, DRAINING, STOPPED, GONE = "running", "draining", "stopped", "gone"


@dataclass(frozen=True)
class WorkerSeen:
    """A worker as Redis holds it."""

    name: str
    alive: bool  # its heartbeat is there
    info: Mapping[str, str]  # its info hash ({} once that expired)
    seen_ago: float | None  # seconds since it last renewed its info
    live: int  # calls in its live set: the calls it follows
    claimed: int | None  # job entries it holds unacknowledged (None: it never read one)


# The lanes, in the order the status shows them (``calls.LANES``).
LANES = ("interactive", "bulk")
# The states of a contact not done yet, as ``campaigns.contacts`` names them.
CONTACT_STATES = ("queued", "retrying", "waiting_window", "dialing")
# What a reader takes of a campaign's hash for ``running_contacts``.
CAMPAIGN_FIELDS = ("state", *("c:" + state for state in CONTACT_STATES))
# Where a do-not-call refusal happens: at intake, at dial time.
REFUSED_WHERE = ("api", "dial")


@dataclass(frozen=True)
class LaneSeen:
    """One lane's job stream."""

    waiting: int  # job entries no worker has read yet
    oldest_waiting_ms: int | None  # the oldest one's time (ms since the epoch)
    claimed: int  # read by a worker, not yet acknowledged
    oldest_claimed_ms: int | None


@dataclass(frozen=True)
class QueueSeen:
    waiting: int  # job entries no worker has read yet, in either lane
    oldest_waiting_ms: int | None  # the oldest one's time (ms since the epoch)
    claimed: int  # read by a worker, not yet acknowledged
    oldest_claimed_ms: int | None
    retries: int  # calls waiting for their next attempt
    next_retry: float | None  # when the first is due (epoch seconds)
    dead_letters: int
    newest_dead_ms: int | None
    lanes: Mapping[str, LaneSeen] = field(default_factory=dict)  # lane -> its own figures


@dataclass(frozen=True)
class CampaignsSeen:
    running: int = 0
    # state (``CONTACT_STATES``) -> contacts of the running campaigns in it
    contacts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    now: float  # Redis's time (epoch seconds)
    workers: tuple[WorkerSeen, ...]
    # node -> worker -> (sessions held, session share, seconds until its place lapses)
    pacers: Mapping[str, Mapping[str, tuple[int, int, float]]]
    queue: QueueSeen
    campaigns: CampaignsSeen = CampaignsSeen()
    dnc_refused: Mapping[str, int] = field(default_factory=dict)  # where (``REFUSED_WHERE``) -> calls


def lanes_together(lanes: Iterable[LaneSeen]) -> LaneSeen:
    """Several lanes as one: their counts added, the oldest entry of any."""
    lanes = list(lanes)

    def oldest(times: Iterable[int | None]) -> int | None:
        return min((t for t in times if t is not None), default=None)

    return LaneSeen(waiting=sum(lane.waiting for lane in lanes),
                    oldest_waiting_ms=oldest(lane.oldest_waiting_ms for lane in lanes),
                    claimed=sum(lane.claimed for lane in lanes),
                    oldest_claimed_ms=oldest(lane.oldest_claimed_ms for lane in lanes))


def running_contacts(campaigns: Iterable[Mapping[str, str | None]]) -> CampaignsSeen:
    """The running campaigns among ``campaigns`` (each its hash's ``state``
    and ``c:<state>`` counters, None where missing) and their contacts
    not done, by state; a counter that is no number counts 0."""
    running = 0
    contacts = dict.fromkeys(CONTACT_STATES, 0)
    for campaign in campaigns:
        if campaign.get("state") != "running":
            continue
        running += 1
        for state in CONTACT_STATES:
            contacts[state] += max(0, _signed(campaign.get("c:" + state)))
    return CampaignsSeen(running=running, contacts=contacts)


def refusal_counts(counts: Mapping[str, str]) -> dict[str, int]:
    """Do-not-call refusals by where, from ``Keys.dnc_refused``'s fields
    (the per-account ones left out)."""
    return {where: max(0, _signed(counts.get(where))) for where in REFUSED_WHERE}


def info_nodes(info: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The ``nodes`` field of a worker's info hash: node -> what the worker
    says of it (``worker_info``); {} when missing or unreadable."""
    try:
        nodes = json.loads(info.get("nodes") or "{}")
    except ValueError:
        return {}
    if not isinstance(nodes, dict):
        return {}
    return {str(k): v for k, v in nodes.items() if isinstance(v, dict)}


def worker_info(*, version: str, host: str, pid: int, started_at: str, state: str, pool: int,
                nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The fields a worker publishes of itself (``Overview.publish``).
    ``nodes``: node -> {"up", "sps", "max_sessions" (its URL's),
    "switch_sps", "switch_max_sessions" (what the switch said; None: not
    read), "held", "share" (sessions), "rate" (starts a second)}."""
    return {"version": version, "host": host, "pid": str(pid), "started_at": started_at, "state": state,
            "pool": str(pool), "nodes": json.dumps(nodes, sort_keys=True, separators=(",", ":"))}


def iso(moment: float) -> str:
    """Epoch seconds as the records write times (UTC, milliseconds, Z)."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() else None


def _signed(text: str | None) -> int:
    """An integer Redis counter (``HINCRBY`` may take one below 0); 0 for none."""
    if not text:
        return 0
    body = text[1:] if text[0] == "-" else text
    return int(text) if body.isascii() and body.isdigit() else 0


def _tenths(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 1)


def _since_ms(now: float, millis: int | None) -> float | None:
    return None if millis is None else _tenths(max(0.0, now - millis / 1000))


def age(seconds: float | None) -> str:
    """A duration as a table shows it: ``-`` for none, ``4.2s`` under ten
    seconds, then ``42s``, ``3m12s``, ``5h07m``, ``2d03h``."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + age(-seconds)
    if seconds < 10:
        return "%.1fs" % seconds
    whole = int(seconds)
    if whole < 60:
        return "%ds" % whole
    if whole < 3600:
        return "%dm%02ds" % divmod(whole, 60)
    if whole < 86400:
        return "%dh%02dm" % (whole // 3600, whole % 3600 // 60)
    return "%dd%02dh" % (whole // 86400, whole % 86400 // 3600)


def worker_state(worker: WorkerSeen) -> str:
    said = worker.info.get("state")
    if worker.alive:
        return DRAINING if said == DRAINING else RUNNING
    return STOPPED if said == STOPPED else GONE


def _worker_entry(worker: WorkerSeen, now: float) -> dict[str, Any]:
    info = worker.info
    started = _epoch(info.get("started_at"))
    state = worker_state(worker)
    nodes = info_nodes(info)
    return {
        "worker": worker.name,
        "state": state,
        "seen_ago": _tenths(worker.seen_ago),
        "host": info.get("host") or None,
        "pid": _int(info.get("pid")),
        "version": info.get("version") or None,
        "started_at": info.get("started_at") or None,
        "uptime": _tenths(max(0.0, now - started)) if started is not None and state != GONE else None,
        "pool": _int(info.get("pool")),
        "calls": worker.live,
        "claimed": worker.claimed or 0,
        "nodes": {label: "up" if said.get("up") and worker.alive else "down" for label, said in sorted(nodes.items())},
    }


def _limit(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _node_entry(label: str, configured: Node | None, pacers: Mapping[str, tuple[int, int, float]],
                said: Mapping[str, Mapping[str, Any]], alive: Mapping[str, bool]) -> dict[str, Any]:
    """``said``: worker -> what that live worker says of this node;
    ``alive``: each worker of the workers set -> whether its heartbeat is there.
    A worker pacing the node is connected when it is alive and says so; a
    live worker that says nothing of itself (an older version) is taken to
    be connected while it keeps its place there."""
    rows = []
    for name in sorted(set(pacers) | set(said)):
        view = said.get(name, {})
        held, share, _ = pacers.get(name, (_limit(view.get("held")) or 0, _limit(view.get("share")) or 0, 0.0))
        connected = bool(view["up"]) if "up" in view else None if alive.get(name) else False
        rows.append({"worker": name, "connected": connected, "held": held,
                     "share": share, "switch_sps": _limit(view.get("switch_sps")),
                     "switch_max_sessions": _limit(view.get("switch_max_sessions"))})
    switch = next(({"sps": r["switch_sps"], "max_sessions": r["switch_max_sessions"]} for r in rows
                   if r["switch_sps"] is not None and r["switch_max_sessions"] is not None), None)
    url: dict[str, int] | None = None
    for view in said.values():
        sps, sessions = _limit(view.get("sps")), _limit(view.get("max_sessions"))
        if sps is not None and sessions is not None:
            url = {"sps": sps, "max_sessions": sessions}
            break
    if url is None and configured is not None:
        url = {"sps": configured.sps, "max_sessions": configured.max_sessions}
    up = any(r["connected"] is not False for r in rows)
    limits = [x for x in (url, switch) if x is not None]
    return {
        "node": label,
        "up": up,
        "sessions": sum(held for held, _, _ in pacers.values()),
        "sps": min(x["sps"] for x in limits) if limits else None,
        "max_sessions": min(x["max_sessions"] for x in limits) if limits else None,
        "url": url,
        "switch": switch,
        "workers": rows,
    }


def status_document(snapshot: Snapshot, configured: Sequence[Node] = ()) -> dict[str, Any]:
    """The ``eslengine status --json`` document (see the module's docstring).
    ``configured``: the nodes of the reader's ``ESLENGINE_FREESWITCH``,
    shown first and in that order, with their URL's limits where no worker
    says its own; nodes only workers name follow."""
    now = snapshot.now
    by_label = {node.label: node for node in configured}
    said: dict[str, dict[str, Mapping[str, Any]]] = {}
    for worker in snapshot.workers:
        if worker.alive:
            for label, view in info_nodes(worker.info).items():
                said.setdefault(label, {})[worker.name] = view
    labels = list(dict.fromkeys([*by_label, *sorted(set(snapshot.pacers) | set(said))]))
    alive = {worker.name: worker.alive for worker in snapshot.workers}
    nodes = [_node_entry(label, by_label.get(label), snapshot.pacers.get(label, {}), said.get(label, {}), alive)
             for label in labels]
    queue = snapshot.queue
    campaigns = snapshot.campaigns
    return {
        "version": STATUS_VERSION,
        "at": iso(now),
        "ready": any(node["up"] for node in nodes),
        "nodes": nodes,
        "workers": [_worker_entry(worker, now) for worker in snapshot.workers],
        "queue": {
            "waiting": queue.waiting,
            "oldest_waiting_age": _since_ms(now, queue.oldest_waiting_ms),
            "claimed": queue.claimed,
            "oldest_claimed_age": _since_ms(now, queue.oldest_claimed_ms),
            "retries": queue.retries,
            "next_retry_in": _tenths(queue.next_retry - now) if queue.next_retry is not None else None,
            "dead_letters": queue.dead_letters,
            "newest_dead_letter_age": _since_ms(now, queue.newest_dead_ms),
            "lanes": {lane: _lane_entry(queue.lanes.get(lane), now) for lane in LANES},
        },
        "campaigns": {"running": campaigns.running,
                      "contacts": {state: campaigns.contacts.get(state, 0) for state in CONTACT_STATES}},
        "do_not_call": {"refused": {where: snapshot.dnc_refused.get(where, 0) for where in REFUSED_WHERE}},
    }


def _lane_entry(lane: LaneSeen | None, now: float) -> dict[str, Any]:
    lane = lane or LaneSeen(0, None, 0, None)
    return {"waiting": lane.waiting, "oldest_waiting_age": _since_ms(now, lane.oldest_waiting_ms),
            "claimed": lane.claimed, "oldest_claimed_age": _since_ms(now, lane.oldest_claimed_ms)}


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Left-aligned columns two spaces apart; None shows as ``-``."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def _pair(first: int | None, second: int | None) -> str:
    return "%s/%s" % ("-" if first is None else first, "-" if second is None else second)


def status_text(document: Mapping[str, Any]) -> str:
    """``eslengine status`` as tables, from its JSON document."""
    lines = ["eslengine at %s: %s" % (document["at"], "ready" if document["ready"] else
                                      "NOT READY (no worker connected to any node)"), ""]
    lines += table(
        ("NODE", "STATE", "SESSIONS", "SPS URL/SWITCH", "MAX SESSIONS URL/SWITCH", "WORKERS"),
        ((n["node"], "up" if n["up"] else "down", _pair(n["sessions"], n["max_sessions"]),
          _pair((n["url"] or {}).get("sps"), (n["switch"] or {}).get("sps")),
          _pair((n["url"] or {}).get("max_sessions"), (n["switch"] or {}).get("max_sessions")),
          sum(1 for w in n["workers"] if w["connected"] is not False))
         for n in document["nodes"]))
    lines.append("")
    lines += table(
        ("WORKER", "STATE", "SEEN", "UPTIME", "CALLS", "CLAIMED", "POOL", "VERSION", "NODES"),
        ((w["worker"], w["state"], age(w["seen_ago"]) + " ago" if w["seen_ago"] is not None else "-",
          age(w["uptime"]), w["calls"], w["claimed"], w["pool"], w["version"],
          " ".join("%s:%s" % item for item in w["nodes"].items()) or "-")
         for w in document["workers"]))
    queue = document["queue"]
    next_retry = queue["next_retry_in"]
    lines += ["", *table(("QUEUE", "COUNT", "AGE"), (
        ("waiting", queue["waiting"], "oldest " + age(queue["oldest_waiting_age"])),
        ("claimed", queue["claimed"], "oldest " + age(queue["oldest_claimed_age"])),
        ("retries", queue["retries"], "next " + ("-" if next_retry is None else "due" if next_retry <= 0
                                                 else "in " + age(next_retry))),
        ("dead letters", queue["dead_letters"], "newest " + age(queue["newest_dead_letter_age"])),
    ))]
    lines += ["", *table(("LANE", "WAITING", "OLDEST WAITING", "CLAIMED", "OLDEST CLAIMED"), (
        (lane, shown["waiting"], age(shown["oldest_waiting_age"]), shown["claimed"], age(shown["oldest_claimed_age"]))
        for lane, shown in queue["lanes"].items()))]
    campaigns = document["campaigns"]
    contacts = campaigns["contacts"]
    lines += ["", *table(("CAMPAIGNS", "RUNNING", "QUEUED", "RETRYING", "WAITING WINDOW", "DIALING"), [(
        "contacts", campaigns["running"], contacts["queued"], contacts["retrying"], contacts["waiting_window"],
        contacts["dialing"])])]
    refused = document["do_not_call"]["refused"]
    lines += ["", *table(("DO-NOT-CALL", "AT INTAKE", "AT DIAL TIME"), [("refused", refused["api"], refused["dial"])])]
    return "\n".join(lines)


# ------------------------------------------------------------------ calls


def _parties(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "-" if value in (None, "") else str(value)


def call_row(record: Mapping[str, str], summary: Mapping[str, Any]) -> dict[str, Any]:
    """A call as ``eslengine calls list --json`` shows it: the API
    listing's summary (``http.listing.summary``), and where it runs. Its
    ``id`` is the one it is stored under (what ``calls show`` takes); the
    id a client key gave it, where that differs, is ``client_id``."""
    return {**summary, **_ids(record), "node": record.get("node") or None, "worker": record.get("worker") or None,
            "attempts": _int(record.get("attempts")) or 0}


def _ids(record: Mapping[str, str]) -> dict[str, str]:
    ids = {"id": record.get("id", "")}
    if record.get("client_id") and record.get("client_id") != record.get("id"):
        ids["client_id"] = record["client_id"]
    return ids


def calls_text(rows: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(table(
        ("ID", "STATUS", "CREATED", "A", "B", "CAUSE", "NODE", "WORKER"),
        ((r["id"], r["status"], r.get("created_at"), _parties(r.get("a")), _parties(r.get("b")),
          r.get("hangup_cause"), r.get("node"), r.get("worker")) for r in rows)))


def call_document(record: Mapping[str, str], presented: Mapping[str, Any]) -> dict[str, Any]:
    """``eslengine calls show --json``: the call as ``GET /v1/calls/<id>``
    shows it (``http.present``), with the worker following it, and its ids
    as ``call_row`` gives them."""
    return {**presented, **_ids(record), "worker": record.get("worker") or None, "node": record.get("node") or None}


_SHOWN = ("node", "worker", "attempts", "hangup_cause", "a_hangup_cause", "b_hangup_cause", "ended_by",
          "failed_party", "error", "a_uuid", "b_uuid", "key", "account", "recording")


def call_text(document: Mapping[str, Any]) -> str:
    """``eslengine calls show``: the record's fields, then its history with
    each change's time and its offset from the first."""
    fields: list[tuple[str, Any]] = [("id", document.get("id"))]
    if document.get("client_id"):
        fields.append(("client_id", document["client_id"]))
    fields += [("status", document.get("status")),
                                     ("a", _parties(document.get("a"))), ("b", _parties(document.get("b")))]
    fields += [(name, document[name]) for name in _SHOWN if document.get(name) not in (None, "")]
    if document.get("caller_id_number") or document.get("caller_id_name"):
        fields.append(("caller_id", " ".join(str(part) for part in (document.get("caller_id_name"),
                                                                    document.get("caller_id_number")) if part)))
    if document.get("variables"):
        fields.append(("variables", json.dumps(document["variables"], sort_keys=True)))
    durations = document.get("durations") or {}
    if durations:
        fields.append(("durations", ", ".join("%s %.3fs" % (k.replace("_seconds", ""), v)
                                              for k, v in sorted(durations.items()))))
    width = max(len(name) for name, _ in fields)
    lines = ["%s  %s" % (name.ljust(width), value) for name, value in fields]
    history = document.get("history") or []
    first = _epoch(history[0]["at"]) if history else None
    lines.append("history")
    for change in history:
        at = _epoch(change["at"])
        offset = "+%.3fs" % (at - first) if at is not None and first is not None else ""
        lines.append("  %s  %-10s %s" % (change["at"], change["status"], offset))
    return "\n".join(lines).rstrip()

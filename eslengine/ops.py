"""The operator's commands: ``eslengine status``, ``eslengine calls
list|show``, ``eslengine nodes`` and ``eslengine deploy list|print``.

Redis is read through the store (``JobQueue.overview``, the call index and
records the API's listing reads); what is printed is made by ``opsview``.
A bad argument raises ``ConfigError`` (one line, exit status 2); Redis out
of reach raises ``QueueUnavailable`` (one line, exit status 1): ``cli.main``
prints both.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from . import opsview
from .errors import ConfigError, ValidationError

if TYPE_CHECKING:
    import argparse

    from .config import Config
    from .store import JobQueue

# Every command this module runs (``cli.main`` hands them here).
COMMANDS = ("status", "calls", "deploy")
# ``calls list --limit``: the default and the most.
CALLS_LIMIT = 20
MAX_CALLS_LIMIT = 1000
# Calls of the index ``calls list`` reads at most, however few match.
CALLS_SCAN = 10_000
# The deployment files ``eslengine deploy`` writes out, under eslengine/deploy/.
DEPLOY_FILES = ("systemd/eslengine-api.service", "systemd/eslengine-worker@.service", "eslengine.env")


def add_parsers(sub: Any) -> None:
    status = sub.add_parser("status", help="nodes, workers, lanes, retries, dead letters and campaigns at a glance",
                            description="Nodes (up or down, live sessions against limits: the URL's and the "
                                        "switch's own), workers (state, calls followed, jobs claimed), the queue's "
                                        "depth and age in each lane, retries pending, dead letters, the running "
                                        "campaigns' contacts and the do-not-call refusals. Exit status 1 when Redis "
                                        "cannot be reached.")
    status.add_argument("--json", action="store_true",
                        help="one JSON document (its shape is stable: README \"Running in production\")")
    calls = sub.add_parser("calls", help="live and recent calls: list, show")
    action = calls.add_subparsers(dest="action", required=True)
    listing = action.add_parser("list", help="one line per call, newest first")
    listing.add_argument("--status", default="", metavar="S[,S...]",
                         help="only calls in these statuses (queued, dialing, ringing, answered, bridged, "
                              "completed, failed, cancelled)")
    listing.add_argument("--live", action="store_true", help="only calls not yet ended (also older ones a worker "
                                                             "still follows)")
    listing.add_argument("--limit", default=str(CALLS_LIMIT), metavar="N",
                         help="at most N calls (1 to %d, default %d)" % (MAX_CALLS_LIMIT, CALLS_LIMIT))
    listing.add_argument("--account", default="", metavar="ID", help="only the calls of this account")
    listing.add_argument("--json", action="store_true", help='{"calls": [...]} instead of a table')
    show = action.add_parser("show", help="one call: its fields, causes, node, worker and history")
    show.add_argument("id", help="the call's id")
    show.add_argument("--json", action="store_true", help="the call as GET /v1/calls/<id> shows it, with its worker")
    deploy = sub.add_parser("deploy", help="systemd units and a sample environment file: list, print")
    deploy_action = deploy.add_subparsers(dest="action", required=True)
    deploy_action.add_parser("list", help="the files eslengine ships for a deployment")
    printed = deploy_action.add_parser("print", help="print one of them (redirect it where it goes)")
    printed.add_argument("file", help="one of 'eslengine deploy list' (its name alone will do)")


def run(config: Config, args: argparse.Namespace) -> int:
    if args.command == "status":
        return status(config, json_out=args.json)
    if args.command == "calls":
        return calls(config, args)
    return deploy(args)


# ------------------------------------------------------------------ status and nodes


def _queue(config: Config) -> JobQueue:
    from .store import JobQueue

    return JobQueue.from_config(config)


def status_document(config: Config, queue: JobQueue | None = None) -> dict[str, Any]:
    queue = queue or _queue(config)
    from .store.shards import merge_snapshots

    labels = [node.label for node in config.nodes]
    snapshot = merge_snapshots([shard.overview.read(labels) for shard in queue.shards])
    return opsview.status_document(snapshot, config.nodes)


def status(config: Config, *, json_out: bool = False) -> int:
    document = status_document(config)
    if json_out:
        print(json.dumps(document, sort_keys=True))
    else:
        print(opsview.status_text(document))
    return 0


def nodes(config: Config) -> int:
    """``eslengine nodes``: one line per node (configured ones first), its
    URL's limits and the switch's own as the workers read them, then one
    line per worker pacing it."""
    from .pacing import node_share

    queue = _queue(config)
    document = status_document(config, queue)
    for node in document["nodes"]:
        pacers = queue.node_pacers(node["node"])
        url, switch = node["url"] or {}, node["switch"]
        starts = node_share(node["sps"] or 1, node["max_sessions"] or 0, len(pacers), [])[0]
        said = ("switch sps %d max_sessions %d" % (switch["sps"], switch["max_sessions"]) if switch
                else "switch limits not read")
        print("%s\tsps %s\tmax_sessions %s\t%d worker(s), %d session starts a second each\t%s" % (
            node["node"], url.get("sps", "-"), url.get("max_sessions", "-"), len(pacers), starts, said))
        connected = {w["worker"]: w["connected"] for w in node["workers"]}
        for worker, (held, share, lapses) in sorted(pacers.items()):
            state = {True: "connected", False: "not connected", None: "-"}[connected.get(worker)]
            print("  %s\tholds %d of its %d sessions\tplace lapses in %.1fs\t%s" % (worker, held, share, lapses,
                                                                                    state))
    return 0


# ------------------------------------------------------------------ calls


def _limit(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_CALLS_LIMIT:
        raise ConfigError("--limit: a whole number from 1 to %d" % MAX_CALLS_LIMIT)
    return int(text)


def _statuses(text: str, live: bool) -> frozenset[str]:
    from .http.listing import parse_query
    from .status import FINAL, STATUSES

    wanted = frozenset(STATUSES)
    if text:
        try:
            wanted = parse_query({"status": text}).statuses
        except ValidationError as exc:
            raise ConfigError("--status: %s" % exc.reason) from None
    if live:
        wanted -= FINAL
        if not wanted:
            raise ConfigError("--live: no call in %s is live" % text)
    return wanted


def _followed(queue: JobQueue) -> dict[str, JobQueue]:
    """The ids of the calls the workers of every shard follow (their live
    sets), each with the shard's queue its record is in."""
    from .store import redis_errors

    followed: dict[str, JobQueue] = {}
    for shard in queue.shards:
        keys = shard.keys
        with redis_errors("read live calls"):
            names = sorted(shard.redis.smembers(keys.workers))
            pipe = shard.redis.pipeline(transaction=False)
            for name in names:
                pipe.smembers(keys.live(name))
            for members in pipe.execute():
                followed.update(dict.fromkeys(members, shard))
    return dict(sorted(followed.items()))


def _records(queue: JobQueue, job_ids: Mapping[str, JobQueue]) -> list[tuple[str, dict[str, str]]]:
    """The records of ``job_ids``, each read in the shard it is mapped to."""
    from .store import redis_errors

    with redis_errors("read calls"):
        pipe = queue.redis.pipeline(transaction=False)
        for job_id, shard in job_ids.items():
            pipe.hgetall(shard.keys.call(job_id))
        return [(job_id, record) for job_id, record in zip(job_ids, pipe.execute()) if record]


def list_calls(queue: JobQueue, *, statuses: frozenset[str], limit: int, account: str = "",
               live: bool = False) -> list[dict[str, Any]]:
    """Up to ``limit`` calls in ``statuses``, newest first: the index's
    (every call's, or ``account``'s), read ``CALLS_SCAN`` at most; with
    ``live``, also the calls the workers follow, however old."""
    from .http.listing import summary
    from .store import account_index

    owner = account_index(account) if account else ""
    found: dict[str, dict[str, str]] = {}
    after = None
    scanned = 0
    while len(found) < limit and scanned < CALLS_SCAN:
        batch = queue.list_calls(owner, after=after, count=200)
        for score, job_id, record in batch:
            scanned += 1
            after = (score, job_id)
            if record and record.get("status") in statuses:
                found[job_id] = record
                if len(found) == limit:
                    break
        if len(batch) < 200:
            break
    if live:
        followed = {i: shard for i, shard in _followed(queue).items() if i not in found}
        for job_id, record in _records(queue, followed):
            if record.get("status") in statuses and (not account or record.get("account") == account):
                found[job_id] = record
    newest = sorted(found.values(), key=lambda r: (r.get("created_at", ""), r.get("id", "")), reverse=True)
    return [opsview.call_row(record, summary(record)) for record in newest[:limit]]


def calls(config: Config, args: argparse.Namespace) -> int:
    queue = _queue(config)
    if args.action == "list":
        rows = list_calls(queue, statuses=_statuses(args.status, args.live), limit=_limit(args.limit),
                          account=args.account, live=args.live)
        if args.json:
            print(json.dumps({"calls": rows}, sort_keys=True))
        else:
            print(opsview.calls_text(rows))
            print("%d call(s)" % len(rows), file=sys.stderr)
        return 0
    from .http.present import present

    found = queue.read_call(args.id)
    if found is None:
        print("eslengine calls show: error: no call %s" % args.id, file=sys.stderr)
        return 1
    document = opsview.call_document(found[0], present(*found))
    print(json.dumps(document, sort_keys=True) if args.json else opsview.call_text(document))
    return 0


# ------------------------------------------------------------------ deploy


def deploy_text(name: str) -> str:
    """The text of one of ``DEPLOY_FILES``, named in full or by its last part."""
    matches = [f for f in DEPLOY_FILES if name in (f, f.rsplit("/", 1)[-1])]
    if not matches:
        raise ConfigError("deploy print: no file %s (one of %s)" % (name, ", ".join(DEPLOY_FILES)))
    return resources.files("eslengine").joinpath("deploy", *matches[0].split("/")).read_text(encoding="utf-8")


def deploy(args: argparse.Namespace) -> int:
    if args.action == "list":
        for name in DEPLOY_FILES:
            print(name)
        return 0
    sys.stdout.write(deploy_text(args.file))
    return 0

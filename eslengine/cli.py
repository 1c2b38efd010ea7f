"""The ``eslengine`` command: one entry point per process kind.

    eslengine worker                      claim jobs, originate, follow calls
    eslengine api --bind 127.0.0.1:8080   the HTTP front-end (gunicorn + gevent)
    eslengine fakeswitch --bind ...       the FreeSWITCH event-socket simulator
    eslengine demo                        everything above on one machine, a few calls
    eslengine nodes                       the workers sharing each node, and their shares
    eslengine status [--json]             nodes, workers, queue, retries, dead letters
    eslengine calls list|show             live and recent calls, one call's history
    eslengine deploy list|print           systemd units and a sample environment file
    eslengine keys create|list|revoke     client API keys (scopes, caller IDs, limits)
    eslengine accounts ...                accounts, their keys, users, devices, groups,
                                          media and click-to-call resources
    eslengine campaign ...                campaigns over the HTTP API: create, upload a CSV,
                                          start, pause, resume, cancel, show, list, watch
    eslengine dnc add|import|remove|check|list   do-not-call lists (cli_dnc.py)

gevent's monkey-patching happens here, first, and nowhere else; settings come
from ``ESLENGINE_*`` environment variables (see config.py). A bad setting or
argument is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import cli_dnc, ops, runtime

if TYPE_CHECKING:
    import argparse

    from .config import Config


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, 79)


_SETTINGS = """settings (environment variables; README "Configuration" lists them all):
  ESLENGINE_REDIS_URL       Redis (default redis://127.0.0.1:6379/0)
  ESLENGINE_KEY_PREFIX      prefix of every Redis key, {<prefix>}:... (default eslengine)
  ESLENGINE_FREESWITCH      nodes: esl://:password@host:port?sps=30&max_sessions=1000[,...]
  ESLENGINE_API_KEYS        operator bearer keys, comma-separated (the API refuses to start without)
  ESLENGINE_ROUTE_TEMPLATE  endpoint of E.164 numbers (default sofia/gateway/{gateway}/{number})
  ESLENGINE_COUNTRIES, ESLENGINE_ALLOW, ESLENGINE_BLOCKED_PREFIXES, ESLENGINE_DEFAULT_REGION
                            who may be called, and how national numbers are read
  ESLENGINE_WEBHOOK_ALLOW, ESLENGINE_WEBHOOK_SECRET
                            webhook targets, and their signing secret
  ESLENGINE_LOG_LEVEL       DEBUG, INFO (default), WARNING
  ESLENGINE_LOG_FORMAT      text (default) or json: one JSON object a line
Every process that queues or dials jobs (API, worker, eslengine.enqueue) must
have the same policy settings: the worker checks every job again with its own."""


def main(argv: list[str] | None = None) -> int:
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="eslengine", description="Click-to-call originate engine for FreeSWITCH.",
                                     epilog=_SETTINGS, formatter_class=raw)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="claim jobs from Redis and originate them", formatter_class=raw,
                   description=_wrap("Claim jobs from Redis, originate them on the FreeSWITCH nodes of "
                               "ESLENGINE_FREESWITCH, follow each call to its end and record it. Run as many as "
                               "you like (each on any machine); SIGTERM drains: no new jobs, live calls followed "
                               "to their end for up to 30 s, the rest handed over."),
                   epilog=_SETTINGS)
    api = sub.add_parser("api", help="serve the HTTP API", formatter_class=raw,
                         description=_wrap("Serve the HTTP API (POST /v1/calls and the rest; /v1/openapi.json describes "
                                     "it) with gunicorn and gevent workers. It validates, queues in Redis and "
                                     "answers 202; it never talks to FreeSWITCH."),
                         epilog=_SETTINGS)
    api.add_argument("--bind", default="127.0.0.1:8080", metavar="HOST:PORT",
                     help="where to listen (default 127.0.0.1:8080; [::1]:8080 for IPv6)")
    api.add_argument("--workers", type=int, default=1, metavar="N",
                     help="gunicorn worker processes, each with its own Redis connections (default 1)")
    api.add_argument("--dev", action="store_true", help="Flask's debug server instead of gunicorn")
    sub.add_parser("fakeswitch", help="run the FreeSWITCH event-socket simulator", add_help=False)
    dead = sub.add_parser("dead", help="list or re-queue dead-lettered jobs")
    dead_sub = dead.add_subparsers(dest="action", required=True)
    dead_sub.add_parser("list", help="one line per dead letter: entry id, job id, reason")
    requeue = dead_sub.add_parser("requeue", help="queue dead-lettered jobs again")
    requeue.add_argument("entries", nargs="*", help="entry ids from 'dead list'")
    requeue.add_argument("--all", action="store_true", help="every dead letter")
    sub.add_parser("nodes", help="the workers pacing each node in ESLENGINE_FREESWITCH, and their shares")
    ops.add_parsers(sub)
    keys = sub.add_parser("keys", help="client API keys: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="make a key; prints its id and its token (shown only this once)")
    create.add_argument("--name", required=True, help="what the key is for (letters, digits, spaces, _ . : @ -)")
    create.add_argument("--scopes", default="place,read,cancel",
                        help="comma-separated, of place, read, cancel, admin (default: place,read,cancel); "
                             "admin sees and cancels every call")
    create.add_argument("--caller-id", action="append", default=[], metavar="NUMBER",
                        help="a caller-ID number calls of this key may present (repeat; a trailing * allows a "
                             "prefix); with none, any the number policy allows")
    create.add_argument("--rate", type=int, default=0, metavar="N", help="calls a minute (default 0: no limit)")
    create.add_argument("--webhook-secret", default="",
                        help="signs this key's webhook deliveries instead of ESLENGINE_WEBHOOK_SECRET")
    keys_sub.add_parser("list", help="one line per key: id, name, scopes, caller IDs, rate (never tokens)")
    revoke = keys_sub.add_parser("revoke", help="delete keys by id; API processes stop taking them within 5 s")
    revoke.add_argument("ids", nargs="+", help="key ids from 'keys list'")
    _account_parsers(sub)
    _campaign_parsers(sub)
    cli_dnc.add_parsers(sub)
    demo = sub.add_parser("demo", help="run the whole system locally and place a few calls")
    demo.add_argument("--keep-going", action="store_true", help=argparse.SUPPRESS)
    demo.add_argument("--widget", action="store_true",
                      help="serve a sample page with the \"call me\" widget instead, print its URL, run until Ctrl-C")
    demo.add_argument("--stop-after", type=float, default=None, help=argparse.SUPPRESS)

    if argv[:1] == ["fakeswitch"]:
        runtime.patch()
        runtime.setup_logging("INFO")
        from .errors import ConfigError
        from .fakeswitch import main as fakeswitch_main

        try:
            return fakeswitch_main(argv[1:])
        except ConfigError as exc:
            print("eslengine fakeswitch: error: %s" % exc, file=sys.stderr)
            return 2
        except OSError as exc:
            print("eslengine fakeswitch: error: cannot listen: %s" % exc, file=sys.stderr)
            return 1

    args = parser.parse_args(argv)
    runtime.patch()
    if args.command == "deploy":
        from .errors import ConfigError

        try:
            return ops.deploy(args)
        except ConfigError as exc:
            print("eslengine: error: %s" % exc, file=sys.stderr)
            return 2

    import logging
    import os

    from .config import Config
    from .errors import ConfigError, QueueUnavailable

    try:
        config = Config.from_env(os.environ)
    except ConfigError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 2
    runtime.setup_logging(config.log_level, config.log_format)
    from .config import unknown_settings

    for warning in unknown_settings(os.environ):
        logging.getLogger("eslengine").warning("%s", warning)

    try:
        if args.command == "worker":
            import signal

            import gevent

            from .store import JobQueue
            from .worker import run

            runtime.tune_gc()
            gevent.spawn(runtime.trim_heap_forever)
            run(config, JobQueue.from_config(config), stop_signals=(signal.SIGTERM, signal.SIGINT))
            return 0
        if args.command == "api":
            from .http.serve import serve

            serve(config, args.bind, workers=args.workers, dev=args.dev)
            return 0
        if args.command == "dead":
            return _dead(config, args)
        if args.command == "nodes":
            return ops.nodes(config)
        if args.command in ops.COMMANDS:
            return ops.run(config, args)
        if args.command == "keys":
            return _keys(config, args)
        if args.command == "accounts":
            return _accounts(config, args)
        if args.command == "campaign":
            from .campaign import commands

            return commands.run(args)
        if args.command == "dnc":
            return cli_dnc.run(config, args)
        if args.command == "demo":
            from .demo import run as run_demo
            from .demo import run_widget

            if args.widget:
                return run_widget(config, stop_after=args.stop_after)
            return run_demo(config)
    except ConfigError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print("eslengine: error: %s" % exc, file=sys.stderr)
        return 1
    except QueueUnavailable as exc:
        print("eslengine: error: Redis unavailable: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error("unknown command")
    return 2


def _keys(config: Config, args: argparse.Namespace) -> int:
    from .apikeys import KeyStore, parse_scopes
    from .errors import ConfigError
    from .store import connect, now_iso

    store = KeyStore(connect(config.redis_url), config.key_prefix)
    action = args.action
    if action == "create":
        rate = args.rate
        if rate < 0:
            raise ConfigError("--rate: must be 0 or more")
        key, token = store.create(args.name, parse_scopes(args.scopes),
                                  caller_ids=args.caller_id, rate_per_minute=rate,
                                  webhook_secret=args.webhook_secret, now=now_iso())
        print("%s\t%s" % (key.id, token))
        print("key %s made; its token is shown only this once" % key.id, file=sys.stderr)
        return 0
    if action == "list":
        found = store.list()
        for key in found:
            print("%s\t%s\t%s\t%s\t%s\t%s" % (
                key.id, key.name, ",".join(sorted(key.scopes)), ",".join(key.caller_ids) or "-",
                "%d/min" % key.rate_per_minute if key.rate_per_minute else "-", key.created_at or "-"))
        print("%d key(s)" % len(found), file=sys.stderr)
        return 0
    missing = [key_id for key_id in args.ids if not store.revoke(key_id)]
    for key_id in missing:
        print("eslengine keys revoke: error: no key %s" % key_id, file=sys.stderr)
    return 1 if missing else 0


def _dead(config: Config, args: argparse.Namespace) -> int:
    from .store import JobQueue

    queue = JobQueue.from_config(config)
    letters = queue.dead_letters(count=100_000)
    if args.action == "list":
        for entry_id, fields in letters:
            print("%s\t%s\t%s\t%s" % (entry_id, fields.get("job_id") or "-", fields.get("at", "-"),
                                         fields.get("reason", "")))
        print("%d dead letter(s)" % len(letters), file=sys.stderr)
        return 0
    wanted = [e for e, _ in letters] if args.all else list(args.entries)
    if not wanted:
        print("eslengine dead requeue: error: name entry ids or --all", file=sys.stderr)
        return 2
    failed = 0
    for entry_id in wanted:
        try:
            job_id = queue.requeue_dead(entry_id)
            print("%s\trequeued\t%s" % (entry_id, job_id or "-"))
        except ValueError as exc:
            print("eslengine dead requeue: error: %s" % exc, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


_KINDS = ("users", "devices", "groups", "media", "clicktocall")


def _campaign_parsers(sub: Any) -> None:
    campaign = sub.add_parser(
        "campaign", help="campaigns over the HTTP API: create, upload, start, pause, resume, cancel, show, list, "
                         "contacts, change, delete, watch",
        description=_wrap("Campaigns through the HTTP API at --url (default: ESLENGINE_URL, else "
                          "http://127.0.0.1:8080) with the key --key (default: ESLENGINE_KEY)."))
    campaign.add_argument("--url", default=None, help="the API's base URL")
    campaign.add_argument("--key", default=None, help="a key with the place and read scopes")
    action = campaign.add_subparsers(dest="action", required=True)
    create = action.add_parser("create", help="create a campaign from a JSON file (- for stdin); prints its id")
    create.add_argument("file")
    upload = action.add_parser("upload", help="add the contacts of a CSV file (header row: number, id, caller_id, "
                                              "variables); a progress bar on stderr")
    upload.add_argument("id")
    upload.add_argument("file")
    for name, what in (("start", "start dialing"), ("pause", "stop new calls (calls up go on)"),
                       ("resume", "dial again"), ("cancel", "stop for good: contacts not called end cancelled"),
                       ("show", "the campaign and its counters as JSON")):
        action.add_parser(name, help=what).add_argument("id")
    listing = action.add_parser("list", help="one line per campaign: id, state, done/contacts, name")
    listing.add_argument("--state", default=None, help="only these states, comma-separated (running,paused)")
    contacts = action.add_parser("contacts", help="one line per contact: id, state, attempts, outcome or last cause, "
                                                  "next call")
    contacts.add_argument("id")
    contacts.add_argument("--state", default=None, help="only these states or outcomes, comma-separated "
                                                        "(queued, waiting_window, dialing, retrying, done, connected, "
                                                        "failed, cancelled, expired, skipped_dnc)")
    change = action.add_parser("change", help="new pacing or calling window, also while it runs")
    change.add_argument("id")
    change.add_argument("--cps", type=float, default=None, help="calls started a second, at most")
    change.add_argument("--max-concurrent", type=int, default=None, help="calls under way at once, at most")
    change.add_argument("--window", default=None, help="the calling window as JSON ({\"days\": \"mon-fri\", "
                                                       "\"hours\": \"09:00-20:00\"}), or none")
    action.add_parser("delete", help="delete a created, finished or cancelled campaign and all it holds"
                      ).add_argument("id")
    watch = action.add_parser("watch", help="the counters, redrawn until the campaign is over or Ctrl-C")
    watch.add_argument("id")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between redraws (default 1)")


def _account_parsers(sub: Any) -> None:
    accounts = sub.add_parser(
        "accounts", help="accounts and what they hold: keys, users, devices, groups, media, click-to-call",
        description=_wrap("Accounts, as the API's /v1/accounts manages them. An item (user, device, group, media, "
                          "click-to-call resource) is given as the JSON document the API takes and checked the "
                          "same way; README \"Accounts and saved click-to-call\" describes each."))
    action = accounts.add_subparsers(dest="action", required=True)
    create = action.add_parser("create", help="make an account; prints its id")
    create.add_argument("--name", required=True, help="what the account is called (1 to 128 characters)")
    action.add_parser("list", help="one line per account: id, name, created")
    delete = action.add_parser("delete", help="delete an account, everything it holds, and revoke its keys")
    delete.add_argument("account", help="the account's id")
    key = action.add_parser("key", help="make a key of an account; prints its id and token (shown this once)")
    key.add_argument("account", help="the account's id")
    key.add_argument("--name", required=True, help="what the key is for")
    key.add_argument("--scopes", default="place,read,cancel,manage",
                     help="comma-separated, of place, read, cancel, manage (default: all four); manage changes "
                          "what the account holds")
    key.add_argument("--caller-id", action="append", default=[], metavar="NUMBER",
                     help="a caller-ID number calls of this key may present (repeat; a trailing * allows a prefix)")
    key.add_argument("--rate", type=int, default=0, metavar="N", help="calls a minute (default 0: no limit)")
    keys = action.add_parser("keys", help="one line per key of an account (never tokens)")
    keys.add_argument("account", help="the account's id")
    add = action.add_parser("add", help="add an item to an account; prints its id")
    add.add_argument("account", help="the account's id")
    add.add_argument("kind", choices=_KINDS, help="what to add")
    add.add_argument("document", help='the item as JSON, e.g. \'{"name": "Ann", "endpoint": "user/1000"}\'')
    replace = action.add_parser("set", help="replace an item of an account")
    replace.add_argument("account", help="the account's id")
    replace.add_argument("kind", choices=_KINDS, help="what the item is")
    replace.add_argument("id", help="the item's id")
    replace.add_argument("document", help="the whole item as JSON")
    items = action.add_parser("items", help="one JSON line per item of a kind")
    items.add_argument("account", help="the account's id")
    items.add_argument("kind", choices=_KINDS, help="which items")
    remove = action.add_parser("remove", help="delete an item (refused while something of the account names it)")
    remove.add_argument("account", help="the account's id")
    remove.add_argument("kind", choices=_KINDS, help="what the item is")
    remove.add_argument("id", help="the item's id")


def _accounts(config: Config, args: Any) -> int:
    import json

    from .accounts import AccountStore, parse_account, parse_item, referrers
    from .apikeys import KeyStore, parse_scopes
    from .errors import ConfigError, ValidationError
    from .store import connect, now_iso

    client = connect(config.redis_url)
    store = AccountStore(client, config.key_prefix)
    keys = KeyStore(client, config.key_prefix)
    action = args.action

    def fail(message: str) -> int:
        print("eslengine accounts %s: error: %s" % (action, message), file=sys.stderr)
        return 1

    try:
        if action == "create":
            stored = store.create_account({**parse_account({"name": args.name}), "created_at": now_iso()})
            print(stored["id"])
            return 0
        if action == "list":
            found = store.accounts()
            for account in found:
                print("%s\t%s\t%s" % (account["id"], account["name"], account.get("created_at", "-")))
            print("%d account(s)" % len(found), file=sys.stderr)
            return 0
        if store.account(args.account) is None:
            return fail("no account %s" % args.account)
        if action == "delete":
            revoked = [k.id for k in keys.list(args.account) if keys.revoke(k.id)]
            store.delete_account(args.account)
            print("account %s deleted, %d key(s) revoked" % (args.account, len(revoked)), file=sys.stderr)
            return 0
        if action == "key":
            if args.rate < 0:
                raise ConfigError("--rate: must be 0 or more")
            key, token = keys.create(args.name, parse_scopes(args.scopes), caller_ids=args.caller_id,
                                     rate_per_minute=args.rate, now=now_iso(), account=args.account)
            print("%s\t%s" % (key.id, token))
            print("key %s made; its token is shown only this once" % key.id, file=sys.stderr)
            return 0
        if action == "keys":
            for key in keys.list(args.account):
                print("%s\t%s\t%s\t%s" % (key.id, key.name, ",".join(sorted(key.scopes)), key.created_at or "-"))
            return 0
        if action == "items":
            for item in store.items(args.account, args.kind):
                print(json.dumps(item, sort_keys=True))
            return 0
        if action == "remove":
            if store.item(args.account, args.kind, args.id) is None:
                return fail("no %s item %s" % (args.kind, args.id))
            named_by = referrers(args.kind, args.id, store.directory(args.account))
            if named_by:
                return fail("named by %s; change or delete those first" % ", ".join(named_by))
            store.delete(args.account, args.kind, args.id)
            return 0
        try:
            data = json.loads(args.document)
        except ValueError as exc:
            return fail("the document is not JSON: %s" % exc)
        if not isinstance(data, dict):
            return fail("the document must be a JSON object")
        current = store.item(args.account, args.kind, args.id) if action == "set" else None
        if action == "set" and current is None:
            return fail("no %s item %s" % (args.kind, args.id))
        document = parse_item(args.kind, data, store.directory(args.account), config)
        if current is None:
            print(store.add(args.account, args.kind, document, now_iso())["id"])
        else:
            store.save(args.account, args.kind, args.id, {**document, "created_at": current.get("created_at", ""),
                                                          "updated_at": now_iso()})
        return 0
    except ValidationError as exc:
        fail("%s: %s" % (exc.field, exc.reason))
        return 2

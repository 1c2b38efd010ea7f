"""``eslengine dnc``: the do-not-call lists from the command line.

    eslengine dnc add NUMBER... [--reason R] [--expires T]   put numbers on a list
    eslengine dnc import FILE|-                              a bulk file, one number a line (or CSV)
    eslengine dnc remove NUMBER...                           take numbers off
    eslengine dnc check NUMBER                               is it on a list, and why
    eslengine dnc list                                       every entry, one a line

Each works on the global list, or with ``--account A`` on that account's
(``check`` then answers for both, as the account's calls are checked
against both). Numbers without a country code are read in ``--region``
(default ``ESLENGINE_DEFAULT_REGION``). An import reads its file as it goes
and shows its progress on stderr.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, BinaryIO

# Lines between two progress lines when stderr is not a terminal.
PROGRESS_EVERY = 100_000

if TYPE_CHECKING:
    from .config import Config
    from .store.dnc import ImportResult


def add_parsers(sub: Any) -> None:
    """The ``dnc`` command's parser, under the main parser's ``sub``."""
    dnc = sub.add_parser("dnc", help="do-not-call lists: add, import, remove, check, list",
                         description="The global do-not-call list, or with --account an account's. No call is "
                                     "placed to a number on either: the API refuses it (422 do_not_call) and the "
                                     "worker skips a job whose number was listed after it was queued "
                                     "(status skipped_dnc).")
    action = dnc.add_subparsers(dest="action", required=True)

    def command(name: str, text: str) -> Any:
        parser = action.add_parser(name, help=text)
        parser.add_argument("--account", default="", metavar="A", help="an account's list (default: the global one)")
        parser.add_argument("--region", default=None, metavar="CC",
                            help="where numbers without a country code are (ISO 3166, such as US; default "
                                 "ESLENGINE_DEFAULT_REGION)")
        return parser

    add = command("add", "put numbers on the list")
    add.add_argument("numbers", nargs="+", metavar="NUMBER")
    add.add_argument("--reason", default="", help="why (kept with each number)")
    add.add_argument("--expires", default="", metavar="TIME",
                     help="when they stop blocking: 2027-01-31, 2027-01-31T12:00:00Z or epoch seconds")
    imported = command("import", "put a file's numbers on the list: one a line, or CSV rows number,reason,expires")
    imported.add_argument("file", metavar="FILE", help="the file, or - for standard input")
    remove = command("remove", "take numbers off the list")
    remove.add_argument("numbers", nargs="+", metavar="NUMBER")
    check = command("check", "whether a number is on the list (with --account: on the account's or the global one)")
    check.add_argument("number", metavar="NUMBER")
    command("list", "every entry: number, reason, expiry (tab-separated)")


def run(config: Config, args: Any) -> int:
    """Carry out ``args`` (parsed by ``add_parsers``); the exit status."""
    from . import dnc
    from .accounts import AccountStore
    from .errors import ValidationError
    from .store import JobQueue

    queue = JobQueue.from_config(config)
    store = queue.dnc
    account = args.account

    def fail(message: str, status: int = 1) -> int:
        print("eslengine dnc %s: error: %s" % (args.action, message), file=sys.stderr)
        return status

    try:
        region = dnc.parse_region(args.region, config.default_region)
        if account and AccountStore(queue.redis, config.key_prefix).account(account) is None:
            return fail("no account %s" % account)
        now = time.time()
        if args.action == "add":
            expires = dnc.parse_expiry("--expires", args.expires, now)
            reason = dnc.parse_reason("--reason", args.reason)
            entries = [dnc.Entry(dnc.normalise("number", n, region), reason, expires, now) for n in args.numbers]
            added = store.add(account, entries)
            print("%d number(s) on the list, %d new" % (len(entries), added), file=sys.stderr)
            return 0
        if args.action == "remove":
            numbers = [dnc.normalise("number", n, region) for n in args.numbers]
            print("%d number(s) taken off" % store.remove(account, numbers), file=sys.stderr)
            return 0
        if args.action == "check":
            number = dnc.normalise("number", args.number, region)
            found = store.lookup(account, number, now)
            for name, entry in found:
                print("%s\tdo_not_call\t%s\t%s\t%s" % (number, name, entry.reason or "-",
                                                       dnc.iso(entry.expires) if entry.expires else "never"))
            if not found:
                print("%s\tnot listed" % number)
            return 0
        if args.action == "list":
            cursor, count = 0, 0
            while True:
                entries, cursor = store.page(account, cursor, 1000, now)
                for entry in entries:
                    print("%s\t%s\t%s" % (entry.number, entry.reason or "-",
                                          dnc.iso(entry.expires) if entry.expires else "never"))
                count += len(entries)
                if not cursor:
                    break
            print("%d number(s)" % count, file=sys.stderr)
            return 0
        return _import(store, account, args.file, region)
    except ValidationError as exc:
        return fail("%s: %s" % (exc.field, exc.reason), 2)


def _import(store: Any, account: str, path: str, region: str) -> int:
    try:
        source: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        print("eslengine dnc import: error: %s" % exc, file=sys.stderr)
        return 1
    interactive = sys.stderr.isatty()
    shown = 0

    def progress(result: ImportResult) -> None:
        # On a terminal, one line rewritten at every batch; else a line
        # every PROGRESS_EVERY lines read.
        nonlocal shown
        if interactive:
            print("\r" + _summary(result), end="", file=sys.stderr, flush=True)
        elif result.lines - shown >= PROGRESS_EVERY:
            shown = result.lines
            print(_summary(result), file=sys.stderr, flush=True)

    with source:
        result = store.import_lines(account, source, region, progress=progress)
    print(("\r" if interactive else "") + _summary(result) + ": done", file=sys.stderr)
    for line, reason in result.errors:
        print("line %d: %s" % (line, reason), file=sys.stderr)
    if result.refused > len(result.errors):
        print("... and %d more refused lines" % (result.refused - len(result.errors)), file=sys.stderr)
    return 0


def _summary(result: ImportResult) -> str:
    return "%d lines read, %d written (%d new), %d refused" % (result.lines, result.written, result.added,
                                                             result.refused)

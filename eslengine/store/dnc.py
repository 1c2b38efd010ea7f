"""Do-not-call lists in Redis: the global one and one per account
(``Keys.dnc``), each a HASH of number -> entry JSON (``dnc.Entry``).

A call's numbers are checked against both lists in one pipeline (an
``HMGET`` each: ``refused``). A bulk import reads its lines as they come
and writes them ``BATCH`` at a time, so a file of any size costs the
memory of one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import dnc, metrics
from ..errors import ValidationError
from .connection import redis_errors
from .executor import Executor
from .keys import Keys

# Entries written a pipeline during a bulk import.
BATCH = 1000
# Per-line errors an import reports in full; the rest are only counted.
MAX_REPORTED_ERRORS = 1000


@dataclass(slots=True)
class ImportResult:
    """What a bulk import did: entries written (``added`` new ones, the rest
    replaced an entry for the same number), lines read, and the lines
    refused (line number, reason), the first ``MAX_REPORTED_ERRORS`` of
    ``refused`` of them."""

    lines: int = 0
    written: int = 0
    added: int = 0
    refused: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"lines": self.lines, "written": self.written, "added": self.added, "refused": self.refused,
                "errors": [{"line": n, "reason": r} for n, r in self.errors],
                "errors_truncated": self.refused > len(self.errors)}


class DncStore:
    """The do-not-call lists under one prefix."""

    def __init__(self, keys: Keys, run: Executor) -> None:
        self.keys = keys
        self.run = run
        self.redis: Any = run.redis

    def add(self, account: str, entries: Sequence[dnc.Entry]) -> int:
        """Put ``entries`` on ``account``'s list (the global one for "");
        returns how many numbers were not on it before."""
        if not entries:
            return 0
        with redis_errors("do-not-call add"):
            pipe = self.redis.pipeline(transaction=False)
            for start in range(0, len(entries), BATCH):
                chunk = entries[start:start + BATCH]
                pipe.hset(self.keys.dnc(account), mapping={e.number: e.dumps() for e in chunk})
            return sum(int(n) for n in pipe.execute())

    def import_lines(self, account: str, lines: Iterable[str | bytes], region: str, *,
                     now: Callable[[], float] = time.time,
                     progress: Callable[[ImportResult], None] | None = None) -> ImportResult:
        """Read a bulk file line by line (``dnc.parse_line``) and put its
        entries on the list, ``BATCH`` a pipeline. A bad line is reported
        (its number counted from 1, and why) and the good ones are kept.
        ``progress`` is called after each batch."""
        result = ImportResult()
        batch: dict[str, str] = {}
        stamp = now()
        for result.lines, raw in enumerate(lines, 1):
            try:
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            except UnicodeDecodeError:
                self._refuse(result, result.lines, "not UTF-8")
                continue
            try:
                entry = dnc.parse_line(text, region, stamp, first=result.lines == 1)
            except ValidationError as exc:
                self._refuse(result, result.lines, "%s: %s" % (exc.field, exc.reason))
                continue
            if entry is not None:
                batch[entry.number] = entry.dumps()
                if len(batch) >= BATCH:
                    self._write(account, batch, result)
                    stamp = now()
                    if progress is not None:
                        progress(result)
        if batch:
            self._write(account, batch, result)
        if progress is not None:
            progress(result)
        return result

    @staticmethod
    def _refuse(result: ImportResult, line: int, reason: str) -> None:
        result.refused += 1
        if len(result.errors) < MAX_REPORTED_ERRORS:
            result.errors.append((line, reason))

    def _write(self, account: str, batch: dict[str, str], result: ImportResult) -> None:
        with redis_errors("do-not-call import"):
            result.added += int(self.redis.hset(self.keys.dnc(account), mapping=batch))
        result.written += len(batch)
        batch.clear()

    def remove(self, account: str, numbers: Sequence[str]) -> int:
        """Take ``numbers`` off the list; returns how many were on it."""
        if not numbers:
            return 0
        with redis_errors("do-not-call remove"):
            return int(self.redis.hdel(self.keys.dnc(account), *numbers))

    def lookup(self, account: str, number: str, now: float) -> list[tuple[str, dnc.Entry]]:
        """The active entries for ``number``: on the global list and, with
        an ``account``, on the account's; (list name, entry) each."""
        names = [dnc.GLOBAL] + ([dnc.ACCOUNT] if account else [])
        with redis_errors("do-not-call check"):
            pipe = self.redis.pipeline(transaction=False)
            pipe.hget(self.keys.dnc(), number)
            if account:
                pipe.hget(self.keys.dnc(account), number)
            values = pipe.execute()
        out = []
        for name, value in zip(names, values):
            if value is not None and (entry := dnc.loads(number, value)).active(now):
                out.append((name, entry))
        return out

    def refused(self, account: str, numbers: Sequence[tuple[str, str]], now: float) -> dnc.Hit | None:
        """The first of a call's ``numbers`` ((field, number) each:
        ``dnc.checked_numbers``) on the global list or ``account``'s; one
        round trip (through the batcher when the store has one)."""
        if not numbers:
            return None
        plain = [n for _, n in numbers]
        commands: list[tuple[Any, ...]] = [("HMGET", self.keys.dnc(), *plain)]
        names = [dnc.GLOBAL]
        if account:
            commands.append(("HMGET", self.keys.dnc(account), *plain))
            names.append(dnc.ACCOUNT)
        with redis_errors("do-not-call check"):
            replies = self._read(commands)
        return dnc.first_hit(numbers, list(zip(names, replies)), now)

    def refused_later(self, account: str, numbers: Sequence[tuple[str, str]]) -> Callable[[float], dnc.Hit | None]:
        """``refused``, asked now and answered when the returned function is
        called (with the time to judge expiries by): through the batcher,
        the lists are read while the caller does something else (a worker
        waits for its pacer's turn). Without a batcher they are read at
        once."""
        if not numbers:
            return lambda now: None
        plain = [n for _, n in numbers]
        commands: list[tuple[Any, ...]] = [("HMGET", self.keys.dnc(), *plain)]
        names = [dnc.GLOBAL]
        if account:
            commands.append(("HMGET", self.keys.dnc(account), *plain))
            names.append(dnc.ACCOUNT)
        batcher = self.run.batcher
        if batcher is None:
            with redis_errors("do-not-call check"):
                replies = self._read(commands)
            return lambda now: dnc.first_hit(numbers, list(zip(names, replies)), now)
        waiters = [batcher.submit(*command) for command in commands]

        def answer(now: float) -> dnc.Hit | None:
            with redis_errors("do-not-call check"):
                found = [batcher.wait(waiter) for waiter in waiters]
            return dnc.first_hit(numbers, list(zip(names, found)), now)

        return answer

    def _read(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        if self.run.batcher is not None:
            return self.run.commands(*commands)
        pipe = self.redis.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute()

    def count_refusal(self, where: str, account: str) -> None:
        """One more call refused ``where`` (``"api"`` or ``"dial"``): counted
        in this process's metrics, then in Redis."""
        metrics.count_dnc_refusal(where)
        with redis_errors("do-not-call count"):
            self.run.commands(("HINCRBY", self.keys.dnc_refused, where, 1),
                              *([("HINCRBY", self.keys.dnc_refused, "%s:%s" % (where, account), 1)]
                                if account else []))

    def refusals(self, account: str = "") -> dict[str, int]:
        """Calls refused for a do-not-call number, by where (``api``,
        ``dial``): every call's, or ``account``'s."""
        with redis_errors("do-not-call counts"):
            counts = self.redis.hgetall(self.keys.dnc_refused)
        out = {}
        for where in ("api", "dial"):
            out[where] = int(counts.get("%s:%s" % (where, account) if account else where, 0))
        return out

    def page(self, account: str, cursor: int, count: int, now: float) -> tuple[list[dnc.Entry], int]:
        """One page of the list (``HSCAN``: every entry present from the
        first page to the last is listed once, in no particular order) and
        the cursor of the next page (0 after the last). Expired entries are
        left out (and left in Redis: deleting one here could delete the
        same number added again meanwhile; ``remove`` takes them off)."""
        with redis_errors("do-not-call list"):
            cursor, found = self.redis.hscan(self.keys.dnc(account), cursor, count=count)
        entries = [dnc.loads(number, value) for number, value in found.items()]
        return sorted((e for e in entries if e.active(now)), key=lambda e: e.number), int(cursor)

    def size(self, account: str) -> int:
        with redis_errors("do-not-call size"):
            return int(self.redis.hlen(self.keys.dnc(account)))

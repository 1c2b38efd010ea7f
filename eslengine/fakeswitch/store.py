"""The ``db`` and ``hash`` API commands: mod_db's table and mod_hash's.

mod_db (``mod_db.c``, ``db_api_function``) keeps ``realm/key -> value`` in a
sqlite file (``call_limit``, under the switch's db directory) that outlives
the process: a switch killed and started again still has every row it
wrote. ``DbStore`` keeps the rows in memory and, given a ``path``
(``eslengine fakeswitch --db-file``), appends each change to that file as one
JSON line, flushed before the command answers, and replays the file when it
starts, as the sqlite file would be read. mod_hash (``hash_api_function``)
keeps its table in memory only: it is empty after a restart.

Replies are FreeSWITCH's: ``db insert`` / ``db delete`` answer ``+OK``
without a line feed, ``db select`` the value (at most 255 bytes, sqlite2str's
buffer) or nothing, anything else ``!err!``; ``hash`` answers ``+OK\\n``,
the value, or ``-ERR ...\\n``. Arguments are split like
``switch_separate_string(cmd, '/', argv, 4)``: the last keeps the rest.
"""

from __future__ import annotations

import json
import os
from typing import IO

from .dialparse import separate_string

DB_ERROR = "!err!"
HASH_USAGE = "-ERR Usage: hash insert|insert_ifempty|select|delete|delete_ifmatch/realm/key[/value]\n"
_SELECT_BUFFER = 255


class DbStore:
    """mod_db's ``db_data`` table."""

    def __init__(self, path: str | None = None) -> None:
        self.rows: dict[tuple[str, str], str] = {}
        self.path = path
        self._file: IO[str] | None = None
        if path is not None:
            if os.path.exists(path):
                self._replay(path)
            self._file = open(path, "a", encoding="utf-8")

    def _replay(self, path: str) -> None:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    op, realm, key, value = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a kill: the write never completed
                if op == "insert":
                    self.rows[(realm, key)] = value
                else:
                    self.rows.pop((realm, key), None)

    def _log(self, op: str, realm: str, key: str, value: str = "") -> None:
        if self._file is not None:
            self._file.write(json.dumps([op, realm, key, value]) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def insert(self, realm: str, key: str, value: str) -> None:
        self.rows[(realm, key)] = value
        self._log("insert", realm, key, value)

    def delete(self, realm: str, key: str) -> None:
        if self.rows.pop((realm, key), None) is not None:
            self._log("delete", realm, key)

    def select(self, realm: str, key: str) -> str | None:
        return self.rows.get((realm, key))

    def api(self, arg: str) -> str:
        """The body of ``api db <arg>``."""
        argv = separate_string(arg, "/", 4) if arg else []
        if not argv or not argv[0]:
            return DB_ERROR
        op = argv[0].lower()
        if op == "insert" and len(argv) >= 4:
            self.insert(argv[1], argv[2], argv[3])
            return "+OK"
        if op == "delete" and len(argv) >= 2:
            self.delete(argv[1], argv[2] if len(argv) > 2 else "(NULL)")
            return "+OK"
        if op == "select" and len(argv) >= 3:
            return (self.select(argv[1], argv[2]) or "")[:_SELECT_BUFFER]
        if op == "exists" and len(argv) >= 3:
            return "false" if not self.select(argv[1], argv[2]) else "true"
        if op == "count" and len(argv) < 3:
            if len(argv) < 2:
                return str(len({realm for realm, _ in self.rows}))
            return str(sum(1 for realm, _ in self.rows if realm == argv[1]))
        if op == "list" and len(argv) < 3:
            if len(argv) < 2:
                names = list(dict.fromkeys(realm for realm, _ in self.rows))
            else:
                names = list(dict.fromkeys(key for realm, key in self.rows if realm == argv[1]))
            return ",".join(names)
        return DB_ERROR


class HashStore:
    """mod_hash's ``db_hash``: in memory, gone with the process."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    def api(self, arg: str) -> str:
        """The body of ``api hash <arg>``."""
        argv = separate_string(arg, "/", 4) if arg else []
        if len(argv) < 3 or not argv[0]:
            return HASH_USAGE
        op, key = argv[0].lower(), "%s_%s" % (argv[1], argv[2])
        if op == "insert" and len(argv) >= 4:
            self.rows[key] = argv[3]
            return "+OK\n"
        if op == "insert_ifempty" and len(argv) >= 4:
            if key in self.rows:
                return "-ERR key already exists\n"
            self.rows[key] = argv[3]
            return "+OK\n"
        if op == "delete":
            if self.rows.pop(key, None) is None:
                return "-ERR Not found\n"
            return "+OK\n"
        if op == "delete_ifmatch" and len(argv) >= 4:
            if key not in self.rows:
                return "-ERR Not found\n"
            if self.rows[key] != argv[3]:
                return "-ERR Doesn't match\n"
            del self.rows[key]
            return "+OK\n"
        if op == "select":
            return self.rows.get(key, "")
        return HASH_USAGE

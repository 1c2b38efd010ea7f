"""The Lua scripts of the store, read once from ``scripts/*.lua``.

A script's first line may name what it uses (``-- uses: statuses
queue_webhook``): each name is prepended to it, in order, before it is
registered. ``statuses`` is written here from ``status.STATUSES`` and
``status.FINAL``, the one place the order of statuses is kept:

``RANK``         status -> rank; the final statuses share the top rank
``FINAL_RANK``   that rank
``LIVE_TIMES``   the ``<status>_at`` fields of the statuses after the first and
                 before the final ones
``FINAL_TIMES``  the ``<status>_at`` fields of the final statuses

Any other name is the file ``scripts/_<name>.lua`` (shared functions).
Every key a script reads or writes is passed in KEYS and named ``KEYS[...]``
where it is used (``tests/test_store_lua.py`` checks it).
"""

from __future__ import annotations

import functools
from importlib import resources

import redis
from redis.commands.core import Script

from .. import status

USES = "-- uses:"

# The scripts the hot path runs, which share a CommandBatcher's pipelines
# when the store has one (``Executor.use_batcher``).
BATCHED = ("transition", "claim", "enqueue")


def _statuses() -> str:
    top = len(status.STATUSES)
    ranks = ", ".join('["%s"] = %d' % (s, top if s in status.FINAL else i) for i, s in enumerate(status.STATUSES))
    live = [s for s in status.STATUSES[1:] if s not in status.FINAL]
    final = [s for s in status.STATUSES if s in status.FINAL]
    return ("local RANK = {%s}\nlocal FINAL_RANK = %d\nlocal LIVE_TIMES = {%s}\nlocal FINAL_TIMES = {%s}\n"
            % (ranks, top, ", ".join("'%s_at'" % s for s in live), ", ".join("'%s_at'" % s for s in final)))


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("scripts", name + ".lua").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def source(name: str) -> str:
    """The whole source of script ``name``, with what it uses prepended."""
    body = _read(name)
    first = body.split("\n", 1)[0]
    parts = []
    if first.startswith(USES):
        for used in first[len(USES):].split():
            parts.append(_statuses() if used == "statuses" else _read("_" + used))
    return "".join(parts) + body


def names() -> list[str]:
    """Every script's name (the shared files, ``_*.lua``, are not scripts)."""
    files = resources.files(__package__).joinpath("scripts").iterdir()
    return sorted(f.name[:-4] for f in files if f.name.endswith(".lua") and not f.name.startswith("_"))


class Scripts:
    """Every script registered with one client (``register_script``: sent by
    its SHA-1, loaded again by redis-py after a ``NOSCRIPT``)."""

    def __init__(self, client: redis.Redis) -> None:
        self.by_name: dict[str, Script] = {name: client.register_script(source(name)) for name in names()}

    def __getitem__(self, name: str) -> Script:
        return self.by_name[name]

"""The Lua scripts (eslengine.store.lua, eslengine/store/scripts/*.lua)."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import redis

from eslengine import status as statuses
from eslengine.store import lua

SCRIPTS = lua.names()

# redis.call('<COMMAND>', <first argument>: the key, for every command these scripts use but TIME.
_CALL = re.compile(r"redis\.call\(\s*'(\w+)'\s*(?:,\s*([^,)]+))?")


def test_every_script_file_is_loaded_and_shipped() -> None:
    files = sorted(f.name for f in resources.files("eslengine.store").joinpath("scripts").iterdir())
    assert [f for f in files if not f.startswith("_")] == [name + ".lua" for name in SCRIPTS]
    assert {"transition", "claim", "enqueue", "adopt", "claim_stale", "due", "connect_limits"} <= set(SCRIPTS)
    assert set(lua.BATCHED) <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_script_builds_a_key_name(name: str) -> None:
    # Every key a script reads or writes is one of KEYS, named as such where
    # it is used: a key built from ARGV (a prefix and an id) would be
    # invisible to Redis Cluster's routing.
    source = re.sub(r"--[^\n]*", "", lua.source(name))  # comments out
    found = _CALL.findall(source)
    assert found, name
    for command, first in found:
        if command == "TIME":
            continue
        assert re.fullmatch(r"KEYS\[[\w +\-*/()]+\]", first.strip()), (name, command, first)
        assert "ARGV" not in first, (name, command, first)
    assert "KEYS" not in re.sub(r"KEYS\[[^\]]+\]|#KEYS", "", source), name  # KEYS only indexed or counted


def test_scripts_take_the_order_of_statuses_from_calls() -> None:
    prelude = lua.source("transition")
    top = len(statuses.STATUSES)
    for i, status in enumerate(statuses.STATUSES):
        assert '["%s"] = %d' % (status, top if status in statuses.FINAL else i) in prelude
    for name in SCRIPTS:
        body = lua.source(name)
        # No script spells the final statuses out as a set of its own.
        assert not re.search(r"== '(%s)' or" % "|".join(sorted(statuses.FINAL)), body), name
    retry = lua.source("retry")
    assert "LIVE_TIMES = {'dialing_at', 'ringing_at', 'answered_at', 'bridged_at'}" in retry
    assert "FINAL_TIMES = {%s}" % ", ".join("'%s_at'" % s for s in statuses.STATUSES if s in statuses.FINAL) in retry


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_compiles(redis_client: redis.Redis, name: str) -> None:
    assert redis_client.script_load(lua.source(name))

"""``eslengine dnc``: the do-not-call lists from the command line, against
the suite's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eslengine.accounts import AccountStore
from eslengine.store import JobQueue, Keys, connect, now_iso
from tests.conftest import RedisServer


@pytest.fixture
def env(redis_server: RedisServer, key_prefix: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    return {**clean, "ESLENGINE_REDIS_URL": redis_server.url, "ESLENGINE_KEY_PREFIX": key_prefix,
            "ESLENGINE_DEFAULT_REGION": "US"}


def dnc(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if stdin is not None:
        return subprocess.run([sys.executable, "-m", "eslengine", "dnc", *args], capture_output=True, text=True,
                               env=env, timeout=60, input=stdin)
    return subprocess.run([sys.executable, "-m", "eslengine", "dnc", *args], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_add_check_list_and_remove(env: dict[str, str]) -> None:
    added = dnc(env, "add", "(555) 123-0001", "+1 555 123 0002", "--reason", "opted out", "--expires", "2999-01-01")
    assert added.returncode == 0, added.stderr
    assert "2 number(s) on the list, 2 new" in added.stderr
    check = dnc(env, "check", "5551230001")
    assert check.stdout == "+15551230001\tdo_not_call\tglobal\topted out\t2999-01-01T00:00:00Z\n"
    assert dnc(env, "check", "+15551230009").stdout == "+15551230009\tnot listed\n"
    listed = dnc(env, "list")
    assert listed.stdout.splitlines() == ["+15551230001\topted out\t2999-01-01T00:00:00Z",
                                          "+15551230002\topted out\t2999-01-01T00:00:00Z"]
    assert dnc(env, "remove", "+15551230001").stderr.strip() == "1 number(s) taken off"
    assert dnc(env, "list").stdout.splitlines() == ["+15551230002\topted out\t2999-01-01T00:00:00Z"]


def test_an_import_reads_a_file_reports_progress_and_bad_lines(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    lines = ["number,reason"] + ["+1555%07d,import" % i for i in range(2500)] + ["junk", ""]
    path.write_text("\n".join(lines))
    proc = dnc(env, "import", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "2502 lines read, 2500 written (2500 new), 1 refused: done" in proc.stderr
    assert "line 2502: number: " in proc.stderr
    from_stdin = dnc(env, "import", "-", stdin="+15559999999\n")
    assert "1 written (1 new)" in from_stdin.stderr
    assert dnc(env, "check", "+15550002499").stdout.startswith("+15550002499\tdo_not_call")
    client = connect(env["ESLENGINE_REDIS_URL"])
    assert JobQueue(client, Keys(env["ESLENGINE_KEY_PREFIX"])).dnc.size("") == 2501


def test_an_accounts_list(env: dict[str, str]) -> None:
    client = connect(env["ESLENGINE_REDIS_URL"])
    account = AccountStore(client, env["ESLENGINE_KEY_PREFIX"]).create_account({"name": "acme",
                                                                               "created_at": now_iso()})["id"]
    assert dnc(env, "add", "+15551230001", "--account", account).returncode == 0
    assert dnc(env, "add", "+15551230002").returncode == 0
    assert dnc(env, "list", "--account", account).stdout.splitlines() == ["+15551230001\t-\tnever"]
    both = dnc(env, "check", "+15551230002", "--account", account)
    assert both.stdout == "+15551230002\tdo_not_call\tglobal\t-\tnever\n"


@pytest.mark.parametrize(("args", "status", "needle"), [
    (["add", "hello"], 2, "number: must be a phone number"),
    (["add", "5551230001", "--region", "XX"], 2, "region: must be a region code"),
    (["add", "+15551230001", "--expires", "yesterday"], 2, "--expires: an ISO 8601 time"),
    (["add", "+15551230001", "--expires", "2001-01-01"], 2, "--expires: must be in the future"),
    (["check", "+15551230001", "--account", "nobody"], 1, "no account nobody"),
    (["import", "/nonexistent/list.csv"], 1, "No such file"),
])
def test_bad_input_is_one_line_and_a_non_zero_exit(env: dict[str, str], args: list[str], status: int,
                                                   needle: str) -> None:
    proc = dnc(env, *args)
    assert proc.returncode == status, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("eslengine dnc"), proc.stderr


@pytest.mark.parametrize("command", [["dnc"], ["dnc", "add"], ["dnc", "import"]])
def test_the_dnc_command_explains_itself(command: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "eslengine", *command, "--help"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: eslengine dnc")

"""The deployment files eslengine ships: systemd units and a sample
environment file (``eslengine deploy``), checked against the code they run."""

from __future__ import annotations

import configparser
import fnmatch
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from eslengine import ops
from eslengine.config import SETTINGS, Config, unknown_settings
from eslengine.errors import ConfigError
from eslengine.http.serve import GRACEFUL_TIMEOUT
from eslengine.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
UNITS = [f for f in ops.DEPLOY_FILES if f.endswith(".service")]
ENV_FILE = "eslengine.env"


def shipped(name: str) -> str:
    return resources.files("eslengine").joinpath("deploy", *name.split("/")).read_text(encoding="utf-8")


def unit(name: str) -> dict[str, list[str]]:
    """A unit's [Service] (and other) keys: name -> every value it is given."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in shipped(name).splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault("%s.%s" % (section, key.strip()), []).append(value.strip())
    return found


def one(values: dict[str, list[str]], key: str) -> str:
    assert len(values.get(key, [])) == 1, (key, values.get(key))
    return values[key][0]


def env_file(text: str) -> dict[str, str]:
    """The assignments of an EnvironmentFile, read as systemd reads the
    forms the sample uses: NAME=value, NAME='literal value', comments."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), line
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        else:
            assert "\\" not in value and '"' not in value, "write %s in single quotes" % name
        out[name] = value
    return out


@pytest.mark.parametrize("name", UNITS)
def test_every_unit_stops_gracefully_restarts_on_failure_and_is_hardened(name: str) -> None:
    values = unit(name)
    assert one(values, "Service.EnvironmentFile") == "/etc/eslengine/eslengine.env"
    assert one(values, "Service.KillSignal") == "SIGTERM" and one(values, "Service.KillMode") == "mixed"
    assert one(values, "Service.Restart") == "on-failure"
    assert one(values, "Service.User") == "eslengine" and one(values, "Service.Group") == "eslengine"
    for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                       ("ProtectHome", "yes"), ("CapabilityBoundingSet", "")):
        assert one(values, "Service." + key) == value, key
    # Longer than the process takes to stop on its own: the API's graceful
    # timeout, the worker's drain grace with its loops' stopping after it.
    grace = GRACEFUL_TIMEOUT + 10 if "api" in name else inspect.signature(Worker.stop).parameters["grace"].default + 30
    assert int(one(values, "Service.TimeoutStopSec")) >= grace


@pytest.mark.parametrize("name", UNITS)
def test_every_units_command_is_an_eslengine_subcommand_with_the_options_it_gives(name: str) -> None:
    argv = shlex.split(one(unit(name), "Service.ExecStart"))
    assert argv[0] == "/opt/eslengine/bin/eslengine" and len(argv) > 1
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    proc = subprocess.run([sys.executable, "-m", "eslengine", argv[1], "--help"], capture_output=True, text=True,
                          env=clean, timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: eslengine %s" % argv[1]), proc.stderr
    options = [a.partition("=")[0] for a in argv[2:] if a.startswith("-")]
    for option in options:
        assert re.search(r"(^|[\s,])%s\b" % re.escape(option), proc.stdout), (option, proc.stdout)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    # verify wants each command to exist: the units run this checkout's eslengine.
    command = shutil.which("eslengine", path=str(Path(sys.executable).parent)) or "/bin/true"
    for name in UNITS:
        text = shipped(name).replace("/opt/eslengine/bin/eslengine", command)
        (tmp_path / name.rsplit("/", 1)[-1]).write_text(text, encoding="utf-8")
    targets = [str(tmp_path / "eslengine-api.service"), str(tmp_path / "eslengine-worker@1.service")]
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *targets], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "" and proc.stdout.strip() == "", proc.stderr


def test_the_sample_environment_names_only_settings_the_engine_reads() -> None:
    text = shipped(ENV_FILE)
    named = re.findall(r"^#?\s*(ESLENGINE_[A-Z0-9_]+)=", text, re.M)  # commented examples too
    assert named and set(named) <= {"ESLENGINE_" + s for s in SETTINGS}, sorted(set(named) - set(SETTINGS))
    settings = env_file(text)
    assert unknown_settings(settings) == []
    # As shipped it cannot run: the placeholders must be replaced first.
    with pytest.raises(ConfigError, match="CHANGE_ME"):
        Config.from_env(settings)
    edited = {**settings, "ESLENGINE_FREESWITCH": settings["ESLENGINE_FREESWITCH"].replace("CHANGE_ME", "pw"),
              "ESLENGINE_API_KEYS": "k" * 64}
    config = Config.from_env(edited)
    assert [n.label for n in config.nodes] == ["fs1", "fs2"] and config.log_format == "json"
    assert Config.from_env({**edited, "ESLENGINE_API_KEYS": settings["ESLENGINE_API_KEYS"]}).api_keys == frozenset()


def test_the_commented_examples_are_settings_that_parse() -> None:
    examples = {}
    for line in shipped(ENV_FILE).splitlines():
        if re.match(r"#ESLENGINE_[A-Z0-9_]+=", line) and not line.startswith("#ESLENGINE_REDIS_URL="):
            examples.update(env_file(line[1:]))
    assert "ESLENGINE_ALLOW" in examples and "ESLENGINE_WEBHOOK_ALLOW" in examples
    config = Config.from_env({k: v for k, v in examples.items() if v})
    assert config.allow_patterns and config.webhook_allow


def test_the_deployment_files_are_package_data() -> None:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in parser["options.package_data"]["eslengine"].split(",")]
    for name in ops.DEPLOY_FILES:
        assert any(fnmatch.fnmatch("deploy/" + name, p) for p in patterns), name
        assert (ROOT / "eslengine" / "deploy" / name).is_file()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    return subprocess.run([sys.executable, "-m", "eslengine", *args], capture_output=True, text=True, env=clean,
                          timeout=30, stdin=subprocess.DEVNULL)


def test_deploy_list_and_print_write_the_shipped_files_out() -> None:
    listed = run("deploy", "list")
    assert listed.returncode == 0 and listed.stdout.splitlines() == list(ops.DEPLOY_FILES)
    for name in ops.DEPLOY_FILES:
        for asked in (name, name.rsplit("/", 1)[-1]):
            printed = run("deploy", "print", asked)
            assert printed.returncode == 0 and printed.stdout == shipped(name), asked


def test_deploy_print_of_an_unknown_file_is_one_line_and_exit_status_2() -> None:
    proc = run("deploy", "print", "eslengine.service")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "eslengine: error: deploy print: no file eslengine.service (one of %s)" % ", ".join(ops.DEPLOY_FILES)]


def test_deploy_needs_no_valid_settings() -> None:
    proc = subprocess.run([sys.executable, "-m", "eslengine", "deploy", "list"], capture_output=True, text=True,
                          env={**os.environ, "ESLENGINE_CONCURRENCY": "lots"}, timeout=30)
    assert proc.returncode == 0, proc.stderr

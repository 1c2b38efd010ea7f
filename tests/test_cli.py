"""The command line: bad settings are one readable line and a non-zero exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from eslengine.config import Config, Node
from eslengine.errors import ConfigError
from eslengine.stack import free_port, wait_for_port
from tests.conftest import RedisServer


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    return subprocess.run([sys.executable, "-m", "eslengine", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize(("args", "env", "needle"), [
    (["worker"], {"ESLENGINE_FREESWITCH": "http://127.0.0.1:8021"}, "scheme must be esl://"),
    (["worker"], {"ESLENGINE_FREESWITCH": "esl://:CHANGE_ME@127.0.0.1:8021"}, "CHANGE_ME"),
    (["worker"], {"ESLENGINE_CONCURRENCY": "lots"}, "ESLENGINE_CONCURRENCY must be a whole number"),
    (["worker"], {"ESLENGINE_ALLOW": "+1("}, "bad regex"),
    (["api", "--bind", "127.0.0.1:0"], {}, "API_KEYS"),
    (["fakeswitch", "--scenario", "/nonexistent.json"], {}, "scenario"),
])
def test_bad_settings_are_one_line_and_exit_non_zero(args: list[str], env: dict[str, str], needle: str) -> None:
    proc = run(*args, env=env)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("eslengine"), proc.stderr


def test_fakeswitch_port_in_use_is_one_line() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = run("fakeswitch", "--bind", "127.0.0.1:%d" % port)
    assert proc.returncode == 1
    assert "cannot listen" in proc.stderr.strip().splitlines()[-1]


def test_unknown_command_is_usage_error() -> None:
    proc = run("frobnicate")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_the_api_logs_gunicorns_lines_without_logging_errors(redis_server: RedisServer) -> None:
    """gunicorn's error log format has %(process)d: each of its lines is
    written, none is a "--- Logging error ---" traceback."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    env = {**clean, "ESLENGINE_REDIS_URL": redis_server.url, "ESLENGINE_API_KEYS": "k",
           "ESLENGINE_KEY_PREFIX": "cli-%d" % port}
    proc = subprocess.Popen([sys.executable, "-m", "eslengine", "api", "--bind", "127.0.0.1:%d" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        wait_for_port(port, 30, proc)  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "Logging error" not in out + err, (out + err)[-3000:]
    assert "[%d] [INFO] Listening at: http://127.0.0.1:%d" % (proc.pid, port) in err, err[-3000:]


def test_config_from_env_reads_every_setting() -> None:
    config = Config.from_env({
        "ESLENGINE_REDIS_URL": "redis://127.0.0.1:6390/2",
        "ESLENGINE_FREESWITCH": "esl://:a@10.0.0.1:8021?sps=60&name=fs1, esl://eslengine%40example.com:b@10.0.0.2",
        "ESLENGINE_API_KEYS": "k1, k2",
        "ESLENGINE_ROUTE_TEMPLATE": "loopback/{number}/eslengine",
        "ESLENGINE_BLOCKED_PREFIXES": "+1900,+44",
        "ESLENGINE_ALLOW": r"\+1[0-9]{10};\+33[0-9]{9}",
        "ESLENGINE_MAX_RING_TIMEOUT": "90",
        "ESLENGINE_ESL_TIMEOUT": "2.5",
        "ESLENGINE_BRIDGE": " Switch ",
        "ESLENGINE_MEDIA_URL_PREFIXES": "https://media.example.com/sounds/, http://10.0.0.5:8080",
        "ESLENGINE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1, 10.1.2.3/16, fd00::/8",
        "ESLENGINE_WEBHOOK_CONCURRENCY": "5",
        "ESLENGINE_WEBHOOK_MAX_AGE": "3600",
        "UNRELATED": "x",
    })
    assert config.redis_url.endswith("/2")
    assert config.nodes == (Node("10.0.0.1", 8021, "a", name="fs1", sps=60),
                            Node("10.0.0.2", 8021, "b", user="eslengine@example.com"))
    assert config.api_keys == frozenset({"k1", "k2"})
    assert config.blocked_prefixes == ("+1900", "+44")
    assert len(config.allow_patterns) == 2
    assert (config.max_ring_timeout, config.esl_timeout) == (90, 2.5)
    assert config.bridge == "switch" and Config().bridge == "engine"
    assert not config.allow_unvalidated_numbers
    assert config.user_domains == () and config.user_domain == ""
    listed = Config.from_env({"ESLENGINE_USER_DOMAIN": "pbx.example.com, Branch.example.com"})
    assert listed.user_domains == ("pbx.example.com", "branch.example.com")
    assert listed.user_domain == "pbx.example.com"  # the domain of user/<ext> with none
    assert Config.from_env({"ESLENGINE_ALLOW_UNVALIDATED_NUMBERS": "1"}).allow_unvalidated_numbers
    assert not Config.from_env({"ESLENGINE_ALLOW_UNVALIDATED_NUMBERS": "0"}).allow_unvalidated_numbers
    assert config.media_url_prefixes == ("https://media.example.com/sounds/", "http://10.0.0.5:8080")
    assert config.webhook_allow_networks == ("127.0.0.1/32", "10.1.0.0/16", "fd00::/8")
    assert (config.webhook_concurrency, config.webhook_max_age) == (5, 3600)
    assert Config.from_env({}) == Config()


@pytest.mark.parametrize("env", [
    {"ESLENGINE_REDIS_URL": "http://x"},
    {"ESLENGINE_KEY_PREFIX": "a b"},
    {"ESLENGINE_ROUTE_TEMPLATE": "sofia/gateway/gw"},
    {"ESLENGINE_DEFAULT_RING_TIMEOUT": "200"},
    {"ESLENGINE_ESL_TIMEOUT": "-1"},
    {"ESLENGINE_FREESWITCH": "esl://:x@host:notaport"},
    {"ESLENGINE_FREESWITCH": "esl://:x@host?speed=1"},
    {"ESLENGINE_BRIDGE": "both"},
    {"ESLENGINE_ALLOW_UNVALIDATED_NUMBERS": "sometimes"},
    {"ESLENGINE_USER_DOMAIN": "pbx.example.com,bad domain"},
    {"ESLENGINE_MEDIA_URL_PREFIXES": "media.example.com/sounds"},
    {"ESLENGINE_MEDIA_URL_PREFIXES": "ftp://media.example.com/"},
    {"ESLENGINE_MEDIA_URL_PREFIXES": "https://user@media.example.com/"},
    {"ESLENGINE_WEBHOOK_ALLOW_NETWORKS": "private"},
    {"ESLENGINE_WEBHOOK_ALLOW_NETWORKS": "10.0.0.0/33"},
])
def test_bad_config_values(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(env)


@pytest.mark.parametrize(("env", "shown"), [
    ({"ESLENGINE_FREESWITCH": "esl://admin:s3cret-pw@10.0.0.1:notaport"}, "esl://admin:***@10.0.0.1:notaport"),
    ({"ESLENGINE_FREESWITCH": "esl://:s3cret-pw@10.0.0.1:8021?speed=1"}, "esl://:***@10.0.0.1:8021?speed=1"),
    ({"ESLENGINE_FREESWITCH": "tcp://:s3cret-pw@10.0.0.1:8021"}, "tcp://:***@10.0.0.1:8021"),
    ({"ESLENGINE_FREESWITCH": "esl://:s3cret-pw@:8021"}, "esl://:***@:8021"),
    ({"ESLENGINE_FREESWITCH": "esl://:s3cret%40pw@fs1:8021,esl://x:s3cret-pw@fs2:1?sps=0"},
     "esl://x:***@fs2:1?sps=0"),
    ({"ESLENGINE_REDIS_URL": "http://user:s3cret-pw@10.0.0.1:6379/0"}, "http://user:***@10.0.0.1:6379/0"),
])
def test_configuration_errors_never_show_a_password(env: dict[str, str], shown: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env(env)
    assert "s3cret" not in str(info.value) and shown in str(info.value), str(info.value)


def test_the_command_line_shows_no_password_and_neither_does_a_config() -> None:
    proc = run("nodes", env={"ESLENGINE_FREESWITCH": "esl://admin:s3cret-pw@10.0.0.1:99999"})
    assert proc.returncode == 2
    assert "s3cret" not in proc.stderr and "esl://admin:***@10.0.0.1:99999" in proc.stderr, proc.stderr
    config = Config.from_env({"ESLENGINE_FREESWITCH": "esl://admin:s3cret-pw@10.0.0.1:8021",
                              "ESLENGINE_REDIS_URL": "redis://:s3cret-redis@10.0.0.2:6379/0",
                              "ESLENGINE_API_KEYS": "s3cret-key", "ESLENGINE_WEBHOOK_SECRET": "s3cret-hmac"})
    assert "s3cret" not in repr(config) and "s3cret" not in repr(config.nodes[0]), repr(config)
    assert "redis://:***@10.0.0.2:6379/0" in repr(config)


def test_tune_gc_freezes_what_is_loaded_and_raises_the_young_threshold() -> None:
    # In a child process: freezing is for the whole interpreter's lifetime.
    code = ("import gc; from eslengine.runtime import GC_THRESHOLD, tune_gc; "
            "before = gc.get_freeze_count(); tune_gc(); "
            "assert gc.get_threshold() == GC_THRESHOLD, gc.get_threshold(); "
            "assert gc.get_freeze_count() > before; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("command", [[], ["worker"], ["api"], ["fakeswitch"], ["keys", "create"], ["dead"], ["nodes"],
                                     ["demo"], ["accounts"], ["accounts", "key"], ["accounts", "add"]])
def test_every_command_explains_itself_and_its_options(command: list[str]) -> None:
    proc = run(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("usage: eslengine")
    # Every option has words of its own, not just its name.
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("--") and "  " not in stripped:
            following = text.splitlines()[text.splitlines().index(line) + 1].strip()
            assert following and not following.startswith("-"), "option without help: %r" % stripped
    if command in ([], ["worker"], ["api"]):
        assert "ESLENGINE_FREESWITCH" in text and "ESLENGINE_REDIS_URL" in text
    if command == ["api"]:
        assert "default 127.0.0.1:8080" in text

"""The shipped FreeSWITCH configuration agrees with what the engine does."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from eslengine.worker import ESL_API_COMMANDS, WORKER_EVENT_FORMAT, WORKER_EVENTS

CONF = Path(__file__).resolve().parent.parent / "freeswitch-conf"
DIRECTORY_USER = CONF / "directory" / "default" / "eslengine.xml"


def user_params() -> dict[str, str]:
    root = ET.parse(DIRECTORY_USER).getroot()
    return {p.get("name", ""): p.get("value", "") for p in root.iter("param")}


def test_the_esl_user_may_send_exactly_the_api_commands_the_engine_sends() -> None:
    value = user_params()["esl-allowed-api"]
    # A space anywhere makes FreeSWITCH split at spaces instead of commas.
    assert " " not in value
    allowed = value.split(",")
    assert len(allowed) == len(set(allowed))
    assert set(allowed) == set(ESL_API_COMMANDS)


def test_the_esl_user_may_subscribe_to_exactly_the_workers_events_in_its_format() -> None:
    value = user_params()["esl-allowed-events"]
    assert " " not in value
    allowed = value.split(",")
    assert len(allowed) == len(set(allowed))
    assert set(allowed) == set(WORKER_EVENTS)
    assert "`event %s ...`" % WORKER_EVENT_FORMAT in DIRECTORY_USER.read_text(encoding="utf-8")


def test_the_userauth_reply_fits_mod_event_socket_s_buffer() -> None:
    # parse_command writes "+OK accepted" and the three lists into a
    # 512-byte reply (snprintf: 511 characters and the NUL); a longer one
    # is cut off.
    params = user_params()
    reply = "~Reply-Text: +OK accepted\nAllowed-Events: %s\nAllowed-API: %s\nAllowed-LOG: %s\n\n" % (
        params["esl-allowed-events"], params["esl-allowed-api"], params["esl-allowed-log"])
    assert len(reply.encode()) < 512


def readme_block(heading: str) -> str:
    """The first ``sh`` code block after ``heading`` in freeswitch-conf/README.md."""
    text = (CONF / "README.md").read_text(encoding="utf-8")
    found = re.search(r"```sh\n(.*?)```", text[text.index(heading):], re.S)
    assert found is not None, heading
    return found.group(1).strip()


def install(conf: Path) -> None:
    """Every shipped file where README's table puts it: $CONF/<its path here>."""
    for source in CONF.rglob("*.xml"):
        target = conf / source.relative_to(CONF)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


# What README's "What to change" has the operator replace: each password's
# whole value by `openssl rand -hex 24`, the gateway placeholder by a name.
REPLACEMENTS = [
    ("autoload_configs/event_socket.conf.xml", r'(<param name="password" value=")[^"]*(")'),
    ("directory/default/eslengine.xml", r'(<param name="esl-password" value=")[^"]*(")'),
    ("dialplan/eslengine.xml", r'(data="eslengine_gateway=)[^"]*(")'),
]


def test_readme_s_placeholder_check_finds_each_placeholder_until_it_is_replaced(tmp_path: Path) -> None:
    command = readme_block("**Nothing is left to change.**")
    conf = tmp_path / "freeswitch"
    install(conf)

    def check() -> list[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CONF": str(conf)}
        proc = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=30)
        assert not proc.stderr, proc.stderr
        return proc.stdout.splitlines()

    # One line for each placeholder, and nothing else.
    assert sorted(line.split(":", 1)[0] for line in check()) == sorted(str(conf / f) for f, _ in REPLACEMENTS)
    for name, pattern in REPLACEMENTS:
        path = conf / name
        value = "carrier" if "gateway" in pattern else secrets.token_hex(24)
        text, count = re.subn(pattern, r"\g<1>%s\2" % value, path.read_text(encoding="utf-8"))
        assert count == 1, name
        path.write_text(text, encoding="utf-8")
    assert check() == []


def test_the_global_variables_the_readmes_read_exist_on_a_real_switch() -> None:
    # `api global_getvar` with no name, as a real FreeSWITCH answered it
    # (a source install under /usr/freeswitch).
    entries = json.loads((Path(__file__).resolve().parent / "data" / "transcripts" / "02_api_basic.json")
                         .read_text(encoding="utf-8"))["entries"]
    dump = next(e["data"] for e in entries if "\nhostname=" in e.get("data", ""))
    known = set(re.findall(r"^([a-z_0-9]+)=", dump, re.M))
    assert {"conf_dir", "sound_prefix", "recordings_dir"} <= known
    for readme in (CONF / "README.md", CONF.parent / "README.md"):
        named = set(re.findall(r"global_getvar ([a-z_0-9]+)", readme.read_text(encoding="utf-8")))
        assert named <= known, (readme, named - known)

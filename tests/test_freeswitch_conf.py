"""The shipped FreeSWITCH configuration agrees with what the engine does."""

from __future__ import annotations

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

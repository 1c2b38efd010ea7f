"""Attempt markers: the hooks the dial string gives the first party, what a
``db select`` reply parses to, and the verdict on a maybe-sent originate."""

from __future__ import annotations

import uuid

import pytest

from eslengine import dialstring, escaping
from eslengine.calls import parse_request
from eslengine.config import Config
from eslengine.dialstring import Marker, marker_key, marker_variables, parse_marker
from eslengine.fakeswitch.dialparse import parse_originate
from eslengine.fakeswitch.originate import originate_variables
from eslengine.fakeswitch.store import DbStore, HashStore
from eslengine.markers import Resolution, Verdict, legs_to_find, resolve

JOB = "4ea0f292-b1a8-4718-9817-41928e96cb01"
LEG1 = "11111111-1111-4111-8111-111111111111"
LEG2 = "22222222-2222-4222-8222-222222222222"
CONFIG = Config(allow_unvalidated_numbers=True)


def test_marker_hooks_write_the_attempt_and_leg_under_one_key() -> None:
    assert marker_key(JOB, 3, 2) == JOB + "_3_2"
    assert marker_variables(JOB, 3, 2) == [
        ("api_on_originate", "db insert/eslengine/%s_3_2/up;${uuid}" % JOB),
        ("api_hangup_hook", "db insert/eslengine/%s_3_2/end;${hangup_cause};${answer_epoch};${bridge_epoch};"
                            "${last_bridge_hangup_cause};${uuid}" % JOB),
    ]
    assert dialstring.marker_select_command(JOB, 3, 2) == "db select/eslengine/%s_3_2" % JOB
    assert dialstring.marker_delete_command(JOB, 3) == "db delete/eslengine/%s_3_1" % JOB
    with pytest.raises(ValueError):
        marker_key("not-a-uuid", 1)


@pytest.mark.parametrize("first", [["+15551230001"], ["+15551230001", "+15551230003", "+15551230004"]])
@pytest.mark.parametrize("mode", ["sequential", "simultaneous"])
def test_every_leg_of_the_first_party_carries_its_own_marker_hooks(first: list[str], mode: str) -> None:
    request = parse_request({"a": {"to": first, "mode": mode}, "b": "+15551230002"}, CONFIG)
    command = dialstring.originate_command(request, CONFIG, 4, worker="w1")
    parsed = parse_originate(command[len("originate "):])
    legs = [leg for group in parsed.dial.groups for leg in group]
    assert len(legs) == len(first) == dialstring.marker_legs(request)
    for i, leg in enumerate(legs):
        hooks = dict(marker_variables(request.id, 4, i + 1))
        assert {k: leg.variables.get(k) for k in hooks} == hooks
        # FreeSWITCH keeps a ${...} value only with origination_nested_vars.
        assert leg.variables["origination_nested_vars"] == "true"
    # The second party's legs leave none.
    bridge = dialstring.dial_string(request, "b", CONFIG, dialstring.VAR_ROUNDS, attempt=4)
    assert "api_" not in bridge and "nested" not in bridge


def test_a_client_cannot_set_or_unlock_a_hook() -> None:
    names = ["api_on_originate", "api_hangup_hook", "api_reporting_hook", "session_in_hangup_hook",
             "origination_nested_vars", "execute_on_answer", "api_on_answer"]
    request = parse_request({
        "a": {"to": "+15551230001", "sip_headers": {"X-Api-On-Answer": "db insert/x/y/z"}},
        "b": "+15551230002",
        "variables": {name: "db delete/eslengine/%s_1_1" % JOB for name in names},
    }, CONFIG)
    command = dialstring.originate_command(request, CONFIG, 1)
    variables = originate_variables(parse_originate(command[len("originate "):]))
    engine = dict(marker_variables(request.id, 1))
    for name, value in variables.items():
        if name.lower().startswith(dialstring.HOOK_NAMES):
            assert engine.get(name, "true" if name == "origination_nested_vars" else None) == value, name
    assert all(variables["eslengine_var_" + name].startswith("db delete/") for name in names)


def test_a_client_value_cannot_hold_what_expansion_reads() -> None:
    from eslengine.errors import ValidationError
    for value in ("${hangup_cause}", "$\\{x}", "a}b", "{x"):
        with pytest.raises(ValidationError):
            escaping.check_value("variables.x", value)


@pytest.mark.parametrize(("reply", "marker"), [
    ("", None),
    ("\n", None),
    ("-ERR no reply\n", None),
    ("up;" + LEG1, Marker(False, LEG1)),
    ("end;NORMAL_CLEARING;1700000000;1700000001;NORMAL_CLEARING;" + LEG1,
     Marker(True, LEG1, "NORMAL_CLEARING", True, True, "NORMAL_CLEARING")),
    ("end;USER_BUSY;0;0;;" + LEG1, Marker(True, LEG1, "USER_BUSY")),
    ("end;NORMAL_CLEARING;1700000000;0;NO_ANSWER;" + LEG1,
     Marker(True, LEG1, "NORMAL_CLEARING", True, False, "NO_ANSWER")),
    # an unexpanded or odd field reads as unknown, not as a cause
    ("end;${hangup_cause};;;x y;" + LEG1, Marker(True, LEG1)),
    ("up;", Marker(False, "")),
])
def test_parse_marker(reply: str, marker: Marker | None) -> None:
    assert parse_marker(reply) == marker


@pytest.mark.parametrize("reply", ["-ERR db Command not found!\n", "!err!", "up", "end;A;0", "bogus;" + LEG1])
def test_parse_marker_refuses_what_no_marker_looks_like(reply: str) -> None:
    with pytest.raises(ValueError):
        parse_marker(reply)


UP1, UP2 = Marker(False, LEG1), Marker(False, LEG2)
BUSY1 = Marker(True, LEG1, "USER_BUSY")
DONE2 = Marker(True, LEG2, "NORMAL_CLEARING", True, True, "NORMAL_CLEARING")
LOST2 = Marker(True, LEG2, "LOSE_RACE")


@pytest.mark.parametrize(("markers", "alive", "expected"), [
    ([None], set(), Resolution(Verdict.NEVER_RAN)),
    ([None, None], set(), Resolution(Verdict.NEVER_RAN)),
    ([UP1], {LEG1}, Resolution(Verdict.RUNNING, UP1)),
    ([UP1], set(), Resolution(Verdict.DIED, UP1)),
    ([BUSY1], set(), Resolution(Verdict.ENDED, BUSY1)),
    # failover: the first leg was busy, the second is ringing / has ended / was cut short
    ([BUSY1, UP2], {LEG2}, Resolution(Verdict.RUNNING, UP2)),
    ([BUSY1, DONE2], set(), Resolution(Verdict.ENDED, DONE2)),
    ([BUSY1, UP2], set(), Resolution(Verdict.DIED, UP2)),
    ([BUSY1, None], set(), Resolution(Verdict.ENDED, BUSY1)),
    # simultaneous: a loser's end does not end the call while the winner is up
    ([UP1, LOST2], {LEG1}, Resolution(Verdict.RUNNING, UP1)),
    # the leg that answered speaks for the call, whatever its place
    ([DONE2, BUSY1], set(), Resolution(Verdict.ENDED, DONE2)),
])
def test_resolve(markers: list[Marker | None], alive: set[str], expected: Resolution) -> None:
    assert resolve(markers, alive) == expected


def test_legs_to_find_are_the_legs_marked_up() -> None:
    assert legs_to_find([None, UP1, BUSY1, UP2, Marker(False, "")]) == [LEG1, LEG2]


def test_db_store_answers_as_mod_db_and_outlives_a_restart(tmp_path: object) -> None:
    path = str(tmp_path) + "/db.jsonl"  # type: ignore[operator]
    store = DbStore(path)
    key = "%s_1_1" % uuid.uuid4()
    assert store.api("select/eslengine/" + key) == ""
    assert store.api("exists/eslengine/" + key) == "false"
    assert store.api("insert/eslengine/%s/up;%s" % (key, LEG1)) == "+OK"
    assert store.api("insert/eslengine/other/a/b") == "+OK"  # the value keeps the rest, slashes too
    assert store.api("select/eslengine/other") == "a/b"
    assert store.api("count/eslengine") == "2"
    assert store.api("list/eslengine") == "%s,other" % key
    assert store.api("insert/eslengine/x") == "!err!"
    assert store.api("") == "!err!" and store.api("bogus/a/b") == "!err!"
    assert store.api("delete/eslengine/other") == "+OK"
    store.close()  # (a SIGKILL leaves the same file: every change is flushed as it answers)
    again = DbStore(path)
    assert again.api("select/eslengine/" + key) == "up;" + LEG1
    assert again.api("select/eslengine/other") == ""
    assert again.api("select/eslengine/" + key + "/ignored") == "up;" + LEG1
    again.close()


def test_hash_store_answers_as_mod_hash() -> None:
    store = HashStore()
    assert store.api("insert/r/k/v") == "+OK\n"
    assert store.api("select/r/k") == "v"
    assert store.api("insert_ifempty/r/k/w") == "-ERR key already exists\n"
    assert store.api("delete_ifmatch/r/k/w") == "-ERR Doesn't match\n"
    assert store.api("delete/r/k") == "+OK\n"
    assert store.api("delete/r/k") == "-ERR Not found\n"
    assert store.api("select/r") .startswith("-ERR Usage: hash ")

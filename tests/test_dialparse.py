"""eslengine.fakeswitch.dialparse against FreeSWITCH's C code and the recorded transcripts.

Test ids name the FreeSWITCH function or transcript row each case pins down.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eslengine.fakeswitch.dialparse import (
    ORIGINATE_SYNTAX,
    ApiExpansion,
    DialString,
    DialStringError,
    Leg,
    UsageError,
    app_data_refused,
    atoi,
    cleanup_separated_string,
    expand_variables,
    find_end_paren,
    has_escaped_data,
    parse_dial_string,
    parse_enterprise,
    parse_originate,
    parse_variable_block,
    separate_string,
    separate_string_string,
    split_arguments,
    string_var_check,
    switch_true,
    unescape_char,
)

TRANSCRIPTS = Path(__file__).resolve().parent / "data" / "transcripts"


def getvar(leg: Leg, name: str) -> str:
    """What ``api uuid_getvar`` answers for a variable set only by the dial string."""
    return leg.variables.get(name, "_undef_")


def only_leg(dial: DialString) -> Leg:
    assert len(dial.groups) == 1 and len(dial.groups[0]) == 1
    return dial.groups[0][0]


# --- switch_utils.c: the blank splitter (separate_string_blank_delim + cleanup) ---------------

@pytest.mark.parametrize(
    ("text", "arraylen", "expected"),
    [
        pytest.param("a b", 10, ["a", "b"], id="blank_delim-one-space"),
        pytest.param("  a   b  ", 10, ["a", "b"], id="blank_delim-runs-of-spaces-are-one-separator"),
        pytest.param("", 10, [], id="blank_delim-empty-no-token"),
        pytest.param("   ", 10, [""], id="blank_delim-only-spaces-one-empty-token"),
        pytest.param("'a b' c", 10, ["a b", "c"], id="blank_delim-single-quotes-group-and-vanish"),
        pytest.param('"a b" c', 10, ['"a', 'b"', "c"], id="blank_delim-double-quotes-are-not-quotes"),
        pytest.param("a'b c", 10, ["a'b c"], id="blank_delim-lone-quote-swallows-rest-and-stays"),
        pytest.param("a\\ b c", 10, ["a\\ b", "c"], id="blank_delim-backslash-space-joins-and-stays"),
        pytest.param("a\\sb", 10, ["a b"], id="cleanup-backslash-s-is-space"),
        pytest.param("a\\\\b", 10, ["a\\b"], id="cleanup-double-backslash-collapses"),
        pytest.param("a\\,b", 10, ["a\\,b"], id="cleanup-blank-keeps-backslash-comma"),
        pytest.param("'it\\'s ok' x", 10, ["it's ok", "x"], id="cleanup-escaped-quote-inside-quotes"),
        pytest.param("a b c d", 2, ["a", "b c d"], id="blank_delim-last-slot-keeps-rest"),
        pytest.param("^^,a b,c", 10, ["a b", "c"], id="separate_string-caret-caret-switches-delimiter"),
    ],
)
def test_split_arguments(text: str, arraylen: int, expected: list[str]) -> None:
    assert split_arguments(text, arraylen) == expected


def test_split_arguments_trailing_backslash_reads_past_end() -> None:
    # FIND_DELIM skips the character after '\', which is the terminating NUL.
    with pytest.raises(DialStringError) as info:
        split_arguments("a b\\")
    assert info.value.cause is None


# --- switch_utils.c: separate_string_char_delim, cleanup_separated_string, unescape_char -------

@pytest.mark.parametrize(
    ("text", "delim", "arraylen", "expected"),
    [
        pytest.param("a,b,,c", ",", 10, ["a", "b", "", "c"], id="char_delim-empty-token-kept"),
        pytest.param("a,'b,c',d", ",", 10, ["a", "b,c", "d"], id="char_delim-paired-quotes-protect"),
        pytest.param("a,'b,c", ",", 10, ["a", "'b", "c"], id="char_delim-unpaired-quote-is-literal"),
        pytest.param("a\\,b,c", ",", 10, ["a,b", "c"], id="char_delim-escaped-delimiter"),
        pytest.param("a=b=c", "=", 2, ["a", "b=c"], id="char_delim-arraylen-2-splits-at-first"),
        pytest.param("a=", "=", 2, ["a"], id="char_delim-nothing-after-delim-no-second-token"),
        pytest.param("=b", "=", 2, ["", "b"], id="char_delim-empty-name"),
        pytest.param("^^:a:b,c", ",", 10, ["a", "b,c"], id="separate_string-caret-caret-colon"),
        pytest.param("^^:", ",", 10, ["^^:"], id="separate_string-caret-caret-needs-a-char-after"),
        pytest.param(" a , b ", ",", 10, ["a", "b"], id="cleanup-trims-spaces"),
    ],
)
def test_separate_string(text: str, delim: str, arraylen: int, expected: list[str]) -> None:
    assert separate_string(text, delim, arraylen) == expected


@pytest.mark.parametrize(
    ("text", "delim", "expected"),
    [
        pytest.param("'a,b'", ",", "a,b", id="quotes-removed"),
        pytest.param("a\\,b", ",", "a,b", id="escaped-delim"),
        pytest.param("a\\,b", None, "a\\,b", id="blank-delim-0-keeps-escaped-comma"),
        pytest.param("it's", ",", "it's", id="lone-quote-literal"),
        pytest.param("  x  ", None, "x", id="outer-spaces"),
        pytest.param("' x '", None, " x ", id="quoted-spaces-kept"),
        pytest.param("a\\qb", None, "a\\qb", id="unknown-escape-kept"),
        pytest.param('a\\"b', None, 'a"b', id="escaped-double-quote"),
        pytest.param("a\\tb\\nc\\rd", ",", "a\tb\nc\rd", id="unescape_char-t-n-r"),
        pytest.param("a\\", None, "a\\", id="backslash-at-end-kept"),
    ],
)
def test_cleanup_separated_string(text: str, delim: str | None, expected: str) -> None:
    assert cleanup_separated_string(text, delim) == expected


def test_unescape_char() -> None:
    assert [unescape_char(c) for c in "nrtsx,"] == ["\n", "\r", "\t", " ", "x", ","]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("{a{b}c}d", 6, id="nesting-counted"),
        pytest.param("  {x}", 4, id="leading-spaces-skipped"),
        pytest.param("{x", None, id="unclosed"),
        pytest.param("x{}", None, id="must-start-with-open"),
        pytest.param("{'}'}", 2, id="quotes-ignored"),
    ],
)
def test_find_end_paren(text: str, expected: int | None) -> None:
    assert find_end_paren(text, "{", "}") == expected


def test_separate_string_string() -> None:
    assert separate_string_string("a:_:b:_:c", ":_:", 2) == ["a", "b:_:c"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("YES", True), ("t", True), ("1", True), ("-2", True), ("0", False),
     ("false", False), ("1x", False), (None, False)],
)
def test_switch_true(value: str | None, expected: bool) -> None:
    assert switch_true(value) is expected


@pytest.mark.parametrize(("text", "expected"), [("42", 42), (" -7x", -7), ("abc", 0), ("", 0), ("+3", 3)])
def test_atoi(text: str, expected: int) -> None:
    assert atoi(text) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("${x}", True), ("$\\{x}", True), ("$x{", False), ("100%+1", False), ("$", False)],
)
def test_string_var_check(value: str, expected: bool) -> None:
    assert string_var_check(value) is expected


# --- switch_event.c: switch_event_create_brackets ----------------------------------------------

@pytest.mark.parametrize(
    ("text", "variables", "rest"),
    [
        pytest.param("{a=1,b=2}rest", {"a": "1", "b": "2"}, "rest", id="plain"),
        pytest.param("{^^;a=1,2;b=3}x", {"a": "1,2", "b": "3"}, "x", id="caret-caret-separator"),
        pytest.param("{a=b=c}x", {"a": "b=c"}, "x", id="split-at-first-equals"),
        pytest.param("{novalue,a=1}x", {"a": "1"}, "x", id="no-equals-dropped"),
        pytest.param("{a=,b=1}x", {"b": "1"}, "x", id="empty-value-dropped"),
        pytest.param("{a=1,A=2}x", {"A": "2"}, "x", id="names-ignore-case-later-wins"),
        pytest.param("{a={b}}x", {"a": "{b}"}, "x", id="nested-braces-balanced"),
        pytest.param("{a=1} {b=2}x", {"a": "1"}, " {b=2}x", id="one-block-per-call"),
    ],
)
def test_parse_variable_block(text: str, variables: dict[str, str], rest: str) -> None:
    assert parse_variable_block(text) == (variables, rest)


def test_parse_variable_block_unclosed_is_parse_error() -> None:
    with pytest.raises(DialStringError) as info:
        parse_variable_block("{a=1")
    assert info.value.cause == "DESTINATION_OUT_OF_ORDER"


# --- switch_ivr_originate.c: dial strings -------------------------------------------------------

def endpoints(dial: DialString) -> list[list[str]]:
    return [[leg.endpoint for leg in group] for group in dial.groups]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("loopback/1000/default", [["loopback/1000/default"]], id="single"),
        pytest.param("a/1,b/2|c/3", [["a/1", "b/2"], ["c/3"]], id="pipe-failover-comma-simultaneous"),
        pytest.param("a/1||c/3", [["a/1"], [], ["c/3"]], id="empty-group"),
        pytest.param("  {x=1}  a/1", [["a/1"]], id="spaces-around-global-block"),
        pytest.param("[x=1] a/1, [y=2]b/2", [["a/1", "b/2"]], id="per-leg-blocks-spaces-stripped"),
        pytest.param("a/x\\,y,b/2", [["a/x,y", "b/2"]], id="escaped-comma-in-endpoint"),
        pytest.param("a/x\\|y", [["a/x|y"]], id="escaped-pipe-in-endpoint"),
        pytest.param("{a=1}{b=2}x/1", [["x/1"]], id="two-global-blocks"),
        pytest.param("sofia/gateway/gw1/15551230001", [["sofia/gateway/gw1/15551230001"]], id="gateway"),
    ],
)
def test_dial_string_endpoints(text: str, expected: list[list[str]]) -> None:
    assert endpoints(parse_dial_string(text)) == expected


def test_dial_string_per_leg_and_global_variables() -> None:
    dial = parse_dial_string("{g=1}[a=2]x/1,[a=3,g=4]y/2|z/3")
    x, y = dial.groups[0]
    (z,) = dial.groups[1]
    assert dial.global_variables == {"g": "1"}
    assert x.leg_variables == {"a": "2"} and x.variables == {"a": "2", "g": "1"}
    assert y.leg_variables == {"a": "3", "g": "4"} and y.variables == {"a": "3", "g": "1"}
    assert z.leg_variables == {} and z.variables == {"g": "1"}


@pytest.mark.parametrize(
    ("text", "leg_variables"),
    [
        pytest.param("[v=a,b]x/1", {"v": "a"}, id="unescaped-comma-in-brackets-separates"),
        pytest.param("[v=a\\,b]x/1", {"v": "a,b"}, id="escaped-comma-in-brackets"),
        pytest.param("[^^:v=a,b:w=c]x/1", {"v": "a,b", "w": "c"}, id="caret-caret-in-brackets"),
        pytest.param("[a=1][b=2]x/1", {"a": "1", "b": "2"}, id="two-leg-blocks"),
    ],
)
def test_dial_string_leg_blocks(text: str, leg_variables: dict[str, str]) -> None:
    leg = only_leg(parse_dial_string(text))
    assert (leg.endpoint, leg.leg_variables) == ("x/1", leg_variables)


def test_pipe_split_ignores_brackets() -> None:
    # switch_separate_string(loop_data, '|', ...) knows quotes and escapes, not [].
    with pytest.raises(DialStringError) as info:
        parse_dial_string("[v=a|b]x/1")
    assert info.value.cause == "DESTINATION_OUT_OF_ORDER"


def test_ultra_global_then_global_last_wins() -> None:
    dial = parse_dial_string("<a=1,b=1>{a=2}x/1")
    assert dial.global_variables == {"a": "2", "b": "1"}


def test_dollar_brace_refused_unless_nested_vars() -> None:
    leg = only_leg(parse_dial_string("{v=${x},w=1}x/1"))
    assert leg.variables == {"w": "1"}
    leg = only_leg(parse_dial_string("{origination_nested_vars=TRUE,v=${x}}x/1"))
    assert leg.variables["v"] == "${x}"


def test_backslash_before_closing_brace_swallows_later_legs() -> None:
    # A value ending in '\' (what a blank-split '\\' becomes) leaves '\' just before the
    # NUL written over '}': the comma tokenizer steps over it and cuts the rest at ','.
    dial = parse_dial_string("{v=a\\}loopback/1000,loopback/1001")
    assert endpoints(dial) == [["loopback/1000"]]
    assert dial.global_variables == {"v": "a\\"}


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        pytest.param("{a=1}", "DESTINATION_OUT_OF_ORDER", id="no-origination-url"),
        pytest.param("", "DESTINATION_OUT_OF_ORDER", id="empty"),
        pytest.param("{a=1", "DESTINATION_OUT_OF_ORDER", id="parse-error-brace"),
        pytest.param("[a=1x/1", "DESTINATION_OUT_OF_ORDER", id="parse-error-bracket"),
        pytest.param("a/1:_:b/2", None, id="enterprise-not-modelled"),
    ],
)
def test_dial_string_errors(text: str, cause: str | None) -> None:
    with pytest.raises(DialStringError) as info:
        parse_dial_string(text)
    assert info.value.cause == cause


# --- mod_commands.c: originate_function ---------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "fields"),
    [
        pytest.param("x/1 &park()", {"app": "park", "app_args": "", "exten": None}, id="app-empty-args"),
        pytest.param("x/1 &park", {"app": "park", "app_args": None}, id="app-without-parens"),
        pytest.param("x/1 &set(a=(b))", {"app": "set", "app_args": "a=(b"}, id="app-strchr-first-close-paren"),
        pytest.param("x/1 &", {"app": None, "exten": "&"}, id="lone-ampersand-is-an-extension"),
        pytest.param("x/1 park()", {"app": None, "exten": "park()"}, id="app-without-ampersand-is-extension"),
        pytest.param("x/1 'park", {"app": None, "exten": "'park"}, id="last-token-lone-quote-literal"),
        pytest.param(
            "x/1 1001 XML default",
            {"exten": "1001", "dialplan": "XML", "context": "default", "timeout": None},
            id="transfer-form",
        ),
        pytest.param(
            "x/1 1001 undef UNDEF 'Click Me' 123 30",
            {"exten": "1001", "dialplan": None, "context": None, "cid_name": "Click Me", "cid_num": "123",
             "timeout": 30},
            id="undef-and-all-seven",
        ),
        pytest.param("x/1 1001 a b c d abc", {"timeout": 0}, id="timeout-atoi"),
        pytest.param(" \t x/1 &park()\r ", {"app": "park"}, id="switch_strip_whitespace"),
        pytest.param("x/1 '&bridge({a=b c}y/2)'", {"app": "bridge", "app_args": "{a=b c}y/2"}, id="quoted-app"),
    ],
)
def test_parse_originate_fields(args: str, fields: dict[str, object]) -> None:
    originate = parse_originate(args)
    assert {name: getattr(originate, name) for name in fields} == fields


@pytest.mark.parametrize(
    "args",
    [
        pytest.param("", id="empty"),
        pytest.param(" \r", id="whitespace"),
        pytest.param("x/1", id="one-arg"),
        pytest.param("a b c d e f g h", id="eight-args"),
        pytest.param("x/1' &park()", id="unbalanced-quote-swallows-rest"),
    ],
)
def test_parse_originate_usage(args: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_originate(args)
    assert str(info.value) == f"-USAGE: {ORIGINATE_SYNTAX}"


def test_parse_originate_undef_aleg_is_no_url() -> None:
    with pytest.raises(DialStringError) as info:
        parse_originate("undef &park()")
    assert info.value.cause == "DESTINATION_OUT_OF_ORDER"


def test_parse_originate_undef_exten_is_an_assert() -> None:
    with pytest.raises(DialStringError) as info:
        parse_originate("x/1 undef")
    assert info.value.cause is None


def test_parse_originate_refuses_line_feed() -> None:
    with pytest.raises(ValueError):
        parse_originate("x/1 &park()\n\napi echo hi")


def test_bridge_args_parse_as_dial_string() -> None:
    originate = parse_originate(
        "{origination_uuid=u1,eslengine_leg=a}sofia/gateway/gw1/15551230001 "
        "&bridge({eslengine_leg=b,v=a\\,b,n=hello\\sworld}user/1001@example.com)"
    )
    assert originate.dial.legs[0].variables == {"origination_uuid": "u1", "eslengine_leg": "a"}
    assert originate.app == "bridge" and originate.app_args is not None
    b_leg = only_leg(parse_dial_string(originate.app_args))
    assert b_leg.endpoint == "user/1001@example.com"
    assert b_leg.variables == {"eslengine_leg": "b", "v": "a,b", "n": "hello world"}


# --- transcript 07: channel-variable syntax (README table, one row per case) ------------------

U = "00000000-0000-0000-0000-000000000000"
LOOP = "loopback/1000/default &park()"

ROWS_07 = [
    ("single-quoted value with space", f"{{origination_uuid={U},v_space='hello world'}}{LOOP}", {"v_space": "hello world"}),
    ("unquoted value with space", f"{{origination_uuid={U},v_space=hello world}}{LOOP}", DialStringError),
    ("double-quoted value with space", f'{{origination_uuid={U},v_space="hello world"}}{LOOP}', DialStringError),
    ("unquoted caller id name with spaces",
     f"{{origination_uuid={U},origination_caller_id_name=Click To Call}}{LOOP}", DialStringError),
    ("escaped comma a\\,b", f"{{origination_uuid={U},v_comma=a\\,b,v_after=z}}{LOOP}", {"v_comma": "a,b", "v_after": "z"}),
    ("unescaped comma a,b", f"{{origination_uuid={U},v_comma=a,b,v_after=z}}{LOOP}",
     {"v_comma": "a", "b": "_undef_", "v_after": "z"}),
    ("^^: delimiter", f"{{^^:origination_uuid={U}:v_list=a,b,c:v_after=z}}{LOOP}", {"v_list": "a,b,c", "v_after": "z"}),
    ("single quote inside value", f"{{origination_uuid={U},v_sq=it's,v_after=z}}{LOOP}", UsageError),
    ("backslash-escaped quote inside quoted value", f"{{origination_uuid={U},v_sq='it\\'s ok',v_after=z}}{LOOP}",
     {"v_sq": "it's ok", "v_after": "z"}),
    ("single-quoted value with comma", f"{{origination_uuid={U},v_comma='a,b',v_after=z}}{LOOP}",
     {"v_comma": "a", "v_after": "z"}),
    ("backslash-escaped space (no quotes)", f"{{origination_uuid={U},v_space=hello\\ world}}{LOOP}",
     {"v_space": "hello\\ world"}),
    ("= inside value", f"{{origination_uuid={U},v_eq=a=b,v_after=z}}{LOOP}", {"v_eq": "a=b", "v_after": "z"}),
    ("{x=1}{y=2} two brace blocks", f"{{origination_uuid={U},x=1}}{{y=2}}{LOOP}", {"x": "1", "y": "2"}),
    ("[x=1] per-leg block", f"[origination_uuid={U},x=1]{LOOP}", {"x": "1"}),
    ("{x=0}[x=1] global vs per-leg precedence", f"{{origination_uuid={U},x=0}}[x=1]{LOOP}", {"x": "0"}),
    ("{local_var_clobber=true,x=0}[x=1]", f"{{local_var_clobber=true,origination_uuid={U},x=0}}[x=1]{LOOP}", {"x": "1"}),
    ("<x=1> enterprise block", f"<origination_uuid={U},x=1>{LOOP}", {"x": "1"}),
    ("${expr(6*7)} inside a value (API expansion)", f"{{origination_uuid={U},v_exp=${{expr(6*7)}}}}{LOOP}",
     {"v_exp": "_undef_"}),
    ("${hostname} (channel/global variable reference) inside value",
     f"{{origination_uuid={U},v_glob=${{hostname}}}}{LOOP}", {"v_glob": "_undef_"}),
    ("non-ASCII value", f"{{origination_uuid={U},v_utf8='Zoë Ünïcode'}}{LOOP}", {"v_utf8": "Zoë Ünïcode"}),
    ("percent and plus in value", f"{{origination_uuid={U},v_pct=100%+1}}{LOOP}", {"v_pct": "100%+1"}),
]


@pytest.mark.parametrize(("case", "args", "expected"), [pytest.param(*row, id=f"07:{row[0]}") for row in ROWS_07])
def test_transcript_07_table(case: str, args: str, expected: object) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected) as info:
            parse_originate(args)
        if expected is DialStringError:
            assert info.value.cause == "DESTINATION_OUT_OF_ORDER"  # type: ignore[attr-defined]
        return
    assert isinstance(expected, dict)
    originate = parse_originate(args)
    leg = only_leg(originate.dial)
    assert (leg.endpoint, originate.app, originate.app_args) == ("loopback/1000/default", "park", "")
    assert getvar(leg, "origination_uuid") == U
    assert {name: getvar(leg, name) for name in expected} == expected


# --- transcript 08: dial-string injection (README table, one row per case) ---------------------

def injected(number: str) -> str:
    return f"{{origination_uuid={U},ignore_early_media=true}}loopback/{number}/default &park()"


def test_08_log_injection_replaces_park() -> None:
    o = parse_originate(injected("1000 &log(INFO injected)"))
    assert endpoints(o.dial) == [["loopback/1000"]]
    assert (o.app, o.app_args, o.dialplan, o.context) == ("log", "INFO", "injected)/default", "&park()")


def test_08_set_injection() -> None:
    o = parse_originate(injected("1000 &set(injected=yes)"))
    assert (o.app, o.app_args) == ("set", "injected=yes")


def test_08_hangup_injection() -> None:
    o = parse_originate(injected("1000 &hangup(CALL_REJECTED)"))
    assert (o.app, o.app_args) == ("hangup", "CALL_REJECTED")


def test_08_closing_brace_lands_in_endpoint() -> None:
    o = parse_originate(injected("1000}"))
    assert endpoints(o.dial) == [["loopback/1000}/default"]]


def test_08_comma_rings_simultaneously_with_same_globals() -> None:
    o = parse_originate(injected("1000,loopback/1486"))
    assert endpoints(o.dial) == [["loopback/1000", "loopback/1486/default"]]
    # Both legs carry the {} variables; FreeSWITCH gives U to the first channel created only
    # because a uuid can be in use once (a runtime rule, not a parsing one).
    assert [getvar(leg, "origination_uuid") for leg in o.dial.legs] == [U, U]


def test_08_pipe_is_failover_with_same_globals() -> None:
    o = parse_originate(injected("1486|loopback/1000"))
    assert endpoints(o.dial) == [["loopback/1486"], ["loopback/1000/default"]]
    assert [getvar(leg, "origination_uuid") for leg in o.dial.legs] == [U, U]


def test_08_arguments_shift() -> None:
    o = parse_originate(injected("1000/default &park() 1001 XML"))
    assert endpoints(o.dial) == [["loopback/1000/default"]]
    assert (o.app, o.app_args, o.dialplan, o.context, o.cid_name) == ("park", "", "1001", "XML/default", "&park()")


def test_08_dollar_brace_not_expanded_in_endpoint() -> None:
    o = parse_originate(injected("${expr(6*7)}"))
    assert endpoints(o.dial) == [["loopback/${expr(6*7)}/default"]]


def test_08_unbalanced_quote_is_usage() -> None:
    with pytest.raises(UsageError):
        parse_originate(injected("1000'"))


def test_08_blank_line_ends_the_frame() -> None:
    line = "bgapi originate " + injected("1000/default &park()\n\napi echo INJECTED-ESL-COMMAND")
    first_frame, second_frame = line.split("\n\n", 1)
    o = parse_originate(first_frame.removeprefix("bgapi originate "))
    assert endpoints(o.dial) == [["loopback/1000/default"]] and o.app == "park"
    assert second_frame == "api echo INJECTED-ESL-COMMAND/default &park()"
    with pytest.raises(ValueError):
        parse_originate(line.removeprefix("bgapi originate "))


# --- the recordings themselves: every originate in 07/08 replayed through the parser ------------

def recorded_cases(name: str) -> list[dict[str, object]]:
    """Per CASE note: the bgapi originate arguments, the BACKGROUND_JOB body and the
    uuid_getvar answers that followed."""
    path = TRANSCRIPTS / name
    entries = json.loads(path.read_text(encoding="utf-8"))["entries"]
    cases: list[dict[str, object]] = []
    jobs: dict[str, str] = {}
    pending_getvar: tuple[str, str] | None = None
    for entry in entries:
        if str(entry.get("note", "")).startswith("CASE:"):
            cases.append({"case": entry["note"], "getvar": {}})
            continue
        data = entry.get("data")
        if data is None or not cases:
            continue
        current = cases[-1]
        if entry["dir"] == "C" and data.startswith("bgapi originate "):
            first = data.split("\n\n", 1)[0]
            command = first.split("\n", 1)[0]
            current["args"] = command.removeprefix("bgapi originate ")
            job = re.search(r"^Job-UUID: (\S+)$", first, re.M)
            current["job"] = job.group(1) if job else None
        elif entry["dir"] == "C" and data.startswith("api uuid_getvar "):
            _, _, uuid, var = data.split("\n", 1)[0].split(" ")
            pending_getvar = (uuid, var)
        elif entry["dir"] == "S" and pending_getvar and data.startswith("Content-Type: api/response"):
            current["getvar"][pending_getvar] = data.split("\n\n", 1)[1]  # type: ignore[index]
            pending_getvar = None
        elif entry["dir"] == "S" and "Event-Name: BACKGROUND_JOB" in data:
            job = re.search(r"^Job-UUID: (\S+)$", data, re.M)
            if job:
                jobs[job.group(1)] = data.rsplit("\n\n", 1)[1]
    for case in cases:
        case["result"] = jobs.get(str(case.get("job")))
    return [case for case in cases if "args" in case]


def test_transcript_07_replayed() -> None:
    cases = recorded_cases("07_var_quoting.json")
    assert len(cases) == len(ROWS_07)
    for case in cases:
        args = str(case["args"])
        result = str(case["result"])
        try:
            originate = parse_originate(args)
        except UsageError as exc:
            assert result == f"{exc}\n", case["case"]
            continue
        except DialStringError as exc:
            assert result == f"-ERR {exc.cause}\n", case["case"]
            continue
        leg = only_leg(originate.dial)
        assert result == f"+OK {getvar(leg, 'origination_uuid')}\n", case["case"]
        getvars = case["getvar"]
        assert isinstance(getvars, dict) and getvars, case["case"]
        for (uuid, var), answer in getvars.items():
            assert uuid == getvar(leg, "origination_uuid")
            assert getvar(leg, var) == answer, (case["case"], var)


def test_transcript_08_replayed() -> None:
    cases = recorded_cases("08_dialstring_injection.json")
    assert len(cases) == 10
    for case in cases:
        args = str(case["args"])
        result = str(case["result"])
        if result.startswith("-USAGE"):
            with pytest.raises(UsageError):
                parse_originate(args)
            continue
        originate = parse_originate(args)
        assert originate.app is not None, case["case"]
        if case["job"] is not None and result.startswith("+OK "):
            assert result == f"+OK {getvar(originate.dial.legs[0], 'origination_uuid')}\n", case["case"]


# --- properties ---------------------------------------------------------------------------------

plain_words = st.text(alphabet=st.characters(blacklist_characters="'\\ \0\n", blacklist_categories=("Cs",)), min_size=1)


@given(st.lists(plain_words, min_size=1, max_size=12), st.integers(min_value=1, max_value=4))
def test_property_blank_split_of_plain_words(words: list[str], gap: int) -> None:
    text = (" " * gap).join(words)
    if text.startswith("^^") and len(text) > 3:
        return
    assert split_arguments(text, 1000) == [word.strip(" ") for word in words]


@given(st.text(alphabet=st.characters(blacklist_characters="'\\\0\n", blacklist_categories=("Cs",))))
def test_property_single_quotes_keep_a_value_whole(value: str) -> None:
    assert split_arguments(f"x '{value}' y") == ["x", value, "y"]


@given(st.text(alphabet=st.characters(blacklist_characters="'\\\0", blacklist_categories=("Cs",))))
def test_property_cleanup_without_quotes_or_escapes_trims_spaces(text: str) -> None:
    assert cleanup_separated_string(text, ",") == text.strip(" ")


@given(st.text(alphabet=st.sampled_from(list("ab ',\\{}[]|=^:")), max_size=40))
def test_property_parsers_fail_only_as_freeswitch_does(text: str) -> None:
    for parse in (split_arguments, parse_dial_string, parse_originate):
        try:
            parse(text)  # type: ignore[operator]
        except UsageError:
            assert parse is parse_originate
        except DialStringError as exc:
            assert exc.cause in (None, "DESTINATION_OUT_OF_ORDER")


# --- the in-place buffer: stepping over NULs, reads past the end, name order --------------------
# Pinned from the character-at-a-time implementation, so that faster scanning cannot drift;
# each follows from the C code's pointer walk.

PAST_END = "FreeSWITCH would read past the end of its buffer (undefined behaviour)"


@pytest.mark.parametrize(
    ("call", "args"),
    [
        pytest.param(separate_string, ("a\\", ",", 10), id="char_delim-backslash-steps-over-final-nul"),
        pytest.param(split_arguments, ("'a b\\",), id="blank_delim-backslash-in-quotes-steps-over-final-nul"),
        pytest.param(parse_dial_string, ("{^^}a=1\\",), id="create_brackets-separator-0-backslash-steps-over-final-nul"),
        pytest.param(parse_variable_block, ("{a=1} ",), id="strchr_strict-returns-the-nul"),
        pytest.param(find_end_paren, ("", "\0", "}"), id="find_end_paren-open-nul"),
    ],
)
def test_reads_past_the_end(call: object, args: tuple[object, ...]) -> None:
    with pytest.raises(DialStringError) as info:
        call(*args)  # type: ignore[operator]
    assert str(info.value) == PAST_END and info.value.cause is None


@pytest.mark.parametrize(
    ("text", "variables", "rest"),
    [
        pytest.param("{^^ a=1 b=2\\}c=3 d", {"a": "1", "b": "2\\"}, "c=3", id="blank-splitter-steps-over-closing-nul"),
        pytest.param("{^^ a=1 'b=2}x", {"a": "1", "'b": "2"}, "x", id="blank-splitter-lone-quote"),
        pytest.param("{a=1}  {b=2}", {"a": "1"}, "  {b=2}", id="second-block-left-for-next-call"),
        pytest.param("{a=1}{{b=2}}x", {"a": "1"}, "{{b=2}}x", id="nested-second-block"),
        pytest.param("{A=1,b=2,a=\\'\\'}x", {"b": "2"}, "x", id="empty-value-deletes-any-case"),
        pytest.param("{a=1,b=2,A=3}x", {"b": "2", "A": "3"}, "x", id="later-spelling-replaces-and-moves-last"),
    ],
)
def test_parse_variable_block_buffer_cases(text: str, variables: dict[str, str], rest: str) -> None:
    got, got_rest = parse_variable_block(text)
    assert (list(got.items()), got_rest) == (list(variables.items()), rest)


def test_find_end_paren_close_nul_is_the_terminator() -> None:
    assert find_end_paren("{ab", "{", "\0") == 3
    assert find_end_paren("{a}", "{", "}}") is None


def test_leg_variables_names_without_case_in_order() -> None:
    (leg,) = parse_dial_string("{a=1,A=2}[a=3]x/1").legs
    assert list(leg.variables.items()) == [("A", "2")]
    (leg,) = parse_dial_string("{local_var_clobber=TRUE,a=1,A=2}[a=3]x/1").legs
    assert list(leg.variables.items()) == [("local_var_clobber", "TRUE"), ("a", "3")]


# -- switch_channel_expand_variables ------------------------------------------

_CHANNEL = {"a": "1", "bs": "x\\\\y", "q": "it\\'s", "nested": "<${a}>", "plain": "a\\,b"}


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("no escapes, no variables", "no escapes, no variables"),
        ("a\\,b", "a\\,b"),                      # nothing triggers expansion: text unchanged
        ("\\$ alone", "\\$ alone"),              # \$ is not "escaped data" by itself
        ("\\\\ and \\$", "\\ and $"),            # ... but is read once something else triggers
        ("it\\'s", "its"),                      # \' vanishes, both characters
        ("it\\\\'s", "it\\'s"),
        ("US$$5 \\\\", "US$5 \\"),              # $$ is one $
        ("${a}${missing}-${a}", "1-1"),
        ("[${bs}]", "[x\\y]"),                  # an inserted value is read again
        ("[${q}]", "[its]"),
        ("[${nested}]", "[<1>]"),
        ("[${plain}]", "[a\\,b]"),              # a value with no escaped data stays
        ("$${a}", ""),                          # a global variable: none set here
        ("x$", "x$"),
        ("a\\sb ${a}", "a\\sb 1"),              # \s is not one of expansion's escapes
    ],
)
def test_expand_variables(text: str, expanded: str) -> None:
    assert expand_variables(text, _CHANNEL.get) == expanded


def test_expand_variables_api_calls_are_reported() -> None:
    with pytest.raises(ApiExpansion) as info:
        expand_variables("${system rm -rf /}", _CHANNEL.get)
    assert (info.value.api, info.value.api_args) == ("system", "rm -rf /")


def test_has_escaped_data() -> None:
    assert [has_escaped_data(t) for t in ("a\\\\b", "a\\sb", "a\\'b", "a\\nb", "a\\tb", "a\\,b", "a\\$b", "a\\")] == [
        True, True, True, True, True, False, False, False]


def test_app_data_with_an_escaped_quote_is_refused() -> None:
    assert app_data_refused("x\\'y") and not app_data_refused("x'y") and not app_data_refused(None)
    orig = parse_originate("{a=1}loopback/1000 &bridge(loopback/x\\\\'y)")
    assert orig.app == "bridge" and orig.app_refused


# -- the enterprise split ---------------------------------------------------------

def test_enterprise_split_happens_before_any_escape_is_read() -> None:
    parts = parse_enterprise("<g=1>{x=a\\:_:b,y=2}sofia/gateway/gw/1:_:{z=3}loopback/2")
    assert len(parts) == 3
    assert parts[0].error == "DESTINATION_OUT_OF_ORDER"   # "{x=a\" never closes
    assert [leg.endpoint for leg in parts[1].legs] == ["b", "y=2}sofia/gateway/gw/1"]
    assert parts[2].legs[0].endpoint == "loopback/2"
    assert parts[2].legs[0].variables == {"g": "1", "ignore_early_media": "true", "z": "3"}
    assert len(parse_enterprise("{x=a}loopback/1")) == 1
    assert len(parse_originate("{x=a:_:b}loopback/1 &park()").parts) == 2

"""The originate string is the security boundary.

Hostile values go through the real validation and the real builder, and the
result is parsed back the way FreeSWITCH parses it (fakeswitch.dialparse, a
step-for-step re-implementation of switch_separate_string,
switch_event_create_brackets, originate_function and switch_ivr_originate).
Either validation refuses the value, or the command holds exactly the
intended endpoints, application and variables, byte for byte.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eslengine import dialstring
from eslengine.calls import CallRequest, parse_request
from eslengine.config import Config
from eslengine.errors import ValidationError
from eslengine.fakeswitch.dialparse import parse_dial_string, parse_originate
from eslengine.protocol import encode_command

CONFIGS = [
    Config(),
    Config(route_template="loopback/{number}/eslengine"),
    Config(route_template="sofia/external/{e164}@carrier.example.com", user_domain="example.com"),
]

# Everything FreeSWITCH's parsers give a meaning to, plus control and
# invisible characters, mixed into ordinary text.
SPECIALS = list("{}[]<>()|,;:=&^$'\"\\ \t\r\n/@%!*") + ["${", "^^:", "\\,", "\\'", "\\s", "\u2028", "\x00", "\x7f"]
hostile = st.lists(
    st.one_of(st.sampled_from(SPECIALS), st.text(min_size=1, max_size=6)), max_size=12
).map("".join)


def parsed(command: str) -> tuple[Any, Any]:
    assert command.startswith("originate ")
    encode_command("bgapi " + command)  # no CR/LF: one ESL frame
    orig = parse_originate(command[len("originate "):])
    assert orig.app == "bridge"
    assert orig.exten is None and orig.cid_name is None and orig.cid_num is None
    assert orig.app_args is not None
    return orig, parse_dial_string(orig.app_args)


def assert_exact(request: CallRequest, config: Config) -> None:
    orig, bridge = parsed(dialstring.originate_command(request, config))
    # Exactly one A leg, with exactly the intended variables.
    assert len(orig.dial.groups) == 1 and len(orig.dial.groups[0]) == 1
    a_leg = orig.dial.groups[0][0]
    assert a_leg.endpoint == dialstring.endpoint(request.a, config)
    assert a_leg.variables == dict(dialstring.leg_variables(request, "a"))
    # Exactly one B leg inside the bridge.
    assert len(bridge.groups) == 1 and len(bridge.groups[0]) == 1
    b_leg = bridge.groups[0][0]
    assert b_leg.endpoint == dialstring.endpoint(request.b, config)
    assert b_leg.variables == dict(dialstring.leg_variables(request, "b"))
    assert b_leg.variables[dialstring.JOB_VAR] == request.id
    assert a_leg.variables["origination_uuid"] == request.id


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=hostile,
    number=hostile,
    var_name=hostile,
    var_value=hostile,
    a=st.one_of(hostile, st.just("+15551230001")),
    b=st.one_of(hostile, st.just("user/1000")),
    config_index=st.integers(0, len(CONFIGS) - 1),
)
@example(name="Click To Call, O'Brien", number="+15551234567", var_name="campaign", var_value="a,b}c",
         a="+15551230001", b="user/1000", config_index=1)
@example(name=" lead", number="1", var_name="v", var_value="trail \\", a="+15551230001", b="user/1000",
         config_index=0)
@example(name="x", number="1", var_name="v", var_value="1000 &log(INFO injected)", a="+15551230001",
         b="user/1000", config_index=0)
def test_hostile_values_are_refused_or_arrive_exactly(
    name: str, number: str, var_name: str, var_value: str, a: str, b: str, config_index: int
) -> None:
    config = CONFIGS[config_index]
    body = {"a": a, "b": b, "caller_id_name": name, "caller_id_number": number, "variables": {var_name: var_value}}
    try:
        request = parse_request(body, config)
    except ValidationError as exc:
        assert exc.field in {"a", "b", "caller_id_name", "caller_id_number", "variables"} or exc.field.startswith(
            "variables.")
        return
    assert_exact(request, config)


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"),
                                            exclude_characters="{}[]<>()|"), max_size=40).filter(lambda v: "${" not in v))
def test_every_printable_value_round_trips(value: str) -> None:
    """Nothing printable outside the refused delimiters is refused or altered."""
    request = parse_request({"a": "+15551230001", "b": "+15551230002", "caller_id_name": value or None,
                             "variables": {"v": value}}, CONFIGS[0])
    assert_exact(request, CONFIGS[0])


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("c42", "c42"),
        ("Click To Call", "Click\\sTo\\sCall"),
        ("a,b", "a\\\\,b"),
        ("it's", "it\\\\\\\\\\\\\\'s"),
    ],
)
def test_encoding_table(value: str, encoded: str) -> None:
    assert dialstring.encode_value(value) == encoded


@pytest.mark.parametrize("value", ["a{b", "a}b", "a[b", "a]b", "a<b", "a>b", "a(b", "a)b", "a|b", "a\nb", "a\rb",
                                   "${x}", "a\x00b", "a\u2028b", "a\u200bb"])
def test_values_no_escape_can_carry_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        dialstring.check_value("f", value)


def test_variable_names_are_checked_by_the_builder_too() -> None:
    with pytest.raises(ValueError):
        dialstring.variable_block([("bad=name", "x")])


def test_endpoints() -> None:
    request = parse_request({"a": "+15551230001", "b": "user/1000"}, Config())
    assert dialstring.endpoint(request.a, Config(gateway="gw1")) == "sofia/gateway/gw1/15551230001"
    assert dialstring.endpoint(request.b, Config()) == "user/1000"
    assert dialstring.endpoint(request.b, Config(user_domain="example.com")) == "user/1000@example.com"
    config = Config(route_template="sofia/external/{e164}@carrier")
    assert dialstring.endpoint(request.a, config) == "sofia/external/+15551230001@carrier"
    with pytest.raises(ValueError):
        dialstring.endpoint(request.a, Config(gateway="gw 1"))


def test_custom_variables_come_back_from_event_headers() -> None:
    headers = {"variable_eslengine_var_campaign": "c42", "variable_other": "x", "Unique-ID": "u"}
    assert dialstring.custom_variables(headers) == {"campaign": "c42"}

"""The originate string is the security boundary.

Hostile values go through the real validation and the real builder, and the
result is parsed back the way FreeSWITCH parses it, stage by stage, on every
path the engine uses (fakeswitch.dialparse, a step-for-step re-implementation
of switch_separate_string, switch_event_create_brackets, originate_function,
switch_ivr_originate with its enterprise ``:_:`` split, uuid_setvar's
argument split, switch_channel_expand_variables and the application-data
check of switch_caller_extension_add_application).
Either validation refuses the value, or the command holds exactly the
intended endpoints, application or extension, and variables, byte for byte —
for every option a job can carry, in both forms the builder emits.
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
from eslengine.fakeswitch.dialparse import expand_variables, parse_enterprise, parse_originate, separate_string
from eslengine.protocol import encode_command

# The suite dials the fictional 555-01xx range (+1 555 123 0001), which libphonenumber
# does not validate: configs that dial it allow unvalidated numbers.
CONFIGS = [
    Config(sip_domains=(r"pbx\.example\.com",), tts_engine="flite", tts_voice="kal",
           media_url_prefixes=("https://media.example.com/",), allow_unvalidated_numbers=True),
    Config(route_template="loopback/{number}/eslengine", sip_domains=(r".*",), tts_engine="flite",
           media_url_prefixes=("https://",), allow_unvalidated_numbers=True),
    Config(route_template="sofia/external/{e164}@carrier.example.com", user_domains=("example.com",),
           allow_unvalidated_numbers=True),
]

# Everything FreeSWITCH's parsers give a meaning to, plus control and
# invisible characters, mixed into ordinary text.
SPECIALS = list("{}[]<>()|,;:=&^$'\"\\ \t\r\n/@%!*") + ["${", "^^:", "\\,", "\\'", "\\s", "\u2028", "\x00", "\x7f"]
hostile = st.lists(
    st.one_of(st.sampled_from(SPECIALS), st.text(min_size=1, max_size=6)), max_size=12
).map("".join)
printable = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"),
                                          exclude_characters="{}[]<>()|"), min_size=1, max_size=20).filter(
    lambda v: "${" not in v)


@st.composite
def mostly(draw: st.DrawFn, good: Any, bad: Any = hostile) -> Any:
    """Three times in four what validation accepts (so the builder is
    exercised with it), else something hostile."""
    return draw(good if draw(st.integers(0, 3)) else bad)


text = mostly(printable)


def expected_groups(request: CallRequest, name: str, config: Config,
                    extra: tuple[tuple[str, str], ...] = ()) -> list[list[tuple[str, dict[str, str]]]]:
    """What a party's dial string must parse to: failover groups of
    simultaneous legs, each (endpoint, variables). Only the first leg of
    several carries origination_uuid."""
    party = request.party(name)
    base = dict(dialstring.party_variables(request, name, config, worker=WORKER))
    base.update(extra)
    several = len(party.destinations) > 1
    own_uuid = base.pop("origination_uuid", None) if several else None
    legs = []
    for i, dest in enumerate(party.destinations):
        variables = dict(base)
        if several:
            variables["leg_timeout"] = str(party.timeout)
        if own_uuid is not None and i == 0:
            variables["origination_uuid"] = own_uuid
        if name == request.dial_first:
            # The party rung first leaves the attempt markers, one a leg.
            variables[dialstring.NESTED_VARS] = "true"
            variables.update(dialstring.marker_variables(request.id, 1, i + 1))
        legs.append((dialstring.endpoint(dest, config), variables))
    return [[leg] for leg in legs] if party.mode == "sequential" else [legs]


def groups_of(dial: Any) -> list[list[tuple[str, dict[str, str]]]]:
    return [[(leg.endpoint, dict(leg.variables)) for leg in group] for group in dial.groups]


def one_dial_string(text: str) -> Any:
    """``text`` as switch_ivr_originate reads it: exactly one part (no
    enterprise ``:_:`` split)."""
    parts = parse_enterprise(text)
    assert len(parts) == 1, "the dial string splits into %d enterprise parts" % len(parts)
    return parts[0]


def assert_exact(request: CallRequest, config: Config) -> None:
    """Both forms of the originate (the switch or the engine starts the
    second leg) carry every value exactly."""
    for hold in (False, True) if dialstring.can_hold(request) else (False,):
        _assert_exact(request, config, hold)


# Every character a worker's name may have (worker._CONSUMER).
WORKER = "host-1.example_9:w@x+y"

_EXTRA_VARS = (dialstring.BRIDGE_VAR, "eslengine_announce", "eslengine_say", "eslengine_tts_engine",
               "eslengine_tts_voice", "park_timeout", dialstring.PARK_TIMEOUT_VAR)
# The connect extension's actions (freeswitch-conf/dialplan/eslengine.xml)
# and what the engine puts in &bridge(...): read through ${...}.
BRIDGE_DATA = "${%s}" % dialstring.BRIDGE_VAR


def _assert_runs(variables: dict[str, str]) -> None:
    """The execute_on_* hooks of a leg run as their builder wrote them (the
    switch expands an application's data before it runs)."""
    for name, value in variables.items():
        if name.startswith("execute_on_"):
            assert expand_variables(value, variables.get) == value


def _assert_exact(request: CallRequest, config: Config, hold: bool) -> None:
    command = dialstring.originate_command(request, config, hold=hold, worker=WORKER)
    assert command.startswith("originate ")
    encode_command("bgapi " + command)  # no CR/LF: one ESL frame
    orig = parse_originate(command[len("originate "):])
    assert len(orig.parts) == 1 and not orig.app_refused
    first, second = request.dial_first, request.second
    assert orig.cid_name is None and orig.cid_num is None
    if hold:
        assert (orig.app, orig.app_args, orig.exten) == ("park", "", None)
    elif dialstring.uses_dialplan(request):
        assert (orig.app, orig.exten, orig.dialplan, orig.context) == (None, "eslengine_connect", "XML", "eslengine")
    else:
        assert (orig.app, orig.app_args, orig.exten) == ("bridge", BRIDGE_DATA, None)
    extra = tuple((k, v) for k, v in orig.dial.global_variables.items() if k in _EXTRA_VARS)
    # The first leg's channel, as the connect extension or &bridge reads it.
    channel = dict(orig.dial.groups[0][0].variables)
    expected_extra = {dialstring.BRIDGE_VAR} if not hold else set()
    media = request.announcement
    if media is not None and media.kind == "say":
        expected_extra |= {"eslengine_say", "eslengine_tts_engine", "eslengine_tts_voice"}
        assert expand_variables("${eslengine_say}", channel.get) == media.value
    elif media is not None:
        expected_extra.add("eslengine_announce")
        assert expand_variables("${eslengine_announce}", channel.get) == dialstring.playable(media)
    if hold:
        expected_extra |= {"park_timeout", dialstring.PARK_TIMEOUT_VAR}
        assert dict(extra)["park_timeout"] == dict(extra)[dialstring.PARK_TIMEOUT_VAR] == str(dialstring.PARK_TIMEOUT)
        # The second dial string comes at connect time, as uuid_setvar reads it.
        setvar = dialstring.bridge_setvar_command(request.id, request, config, worker=WORKER)
        encode_command("api " + setvar)
        assert setvar.startswith("uuid_setvar ")
        words = separate_string(setvar[len("uuid_setvar "):], " ", 3)
        assert words[:2] == [request.id, dialstring.BRIDGE_VAR] and len(words) == 3
        channel[dialstring.BRIDGE_VAR] = words[2]
    assert {k for k, _ in extra} == expected_extra
    assert groups_of(orig.dial) == expected_groups(request, first, config, extra)
    bridge = one_dial_string(expand_variables(BRIDGE_DATA, channel.get))
    assert groups_of(bridge) == expected_groups(request, second, config)
    for leg in (*orig.dial.legs, *bridge.legs):
        _assert_runs(dict(leg.variables))
    assert orig.dial.groups[0][0].variables["origination_uuid"] == request.id
    assert orig.dial.groups[0][0].variables[dialstring.WORKER_VAR] == WORKER


def test_held_form_and_transfer_command() -> None:
    request = parse_request({"a": "+15551230001", "b": "user/1000"}, CONFIGS[0])
    command = dialstring.originate_command(request, CONFIGS[0], hold=True)
    assert command.endswith(" &park()") and "eslengine_bridge" not in command
    _assert_exact(request, CONFIGS[0], True)
    upper = request.id.upper()
    assert dialstring.transfer_command(upper) == "uuid_transfer %s eslengine_connect XML eslengine" % request.id
    for bad in ("", "not-a-uuid", request.id + " &park()", request.id + "\nexit"):
        with pytest.raises(ValueError):
            dialstring.transfer_command(bad)
    bypass = parse_request({"a": "+15551230001", "b": "user/1000", "media": "bypass"}, CONFIGS[0])
    assert not dialstring.can_hold(bypass)
    with pytest.raises(ValueError):
        dialstring.originate_command(bypass, CONFIGS[0], hold=True)


@st.composite
def party_docs(draw: st.DrawFn) -> Any:
    to = draw(mostly(st.sampled_from(["+15551230001", "user/1000", "sip:alice@pbx.example.com", "+15551230003"]),
                     st.one_of(st.sampled_from(["+1 (555) 123-0002", "+1555 &park()"]), hostile)))
    if draw(st.booleans()):
        return to
    doc: dict[str, Any] = {"to": draw(st.one_of(st.just(to), st.lists(st.sampled_from(
        ["+15551230001", "+15551230002", "user/1001", "sip:bob@pbx.example.com"]), min_size=1, max_size=3)))}
    for key, strategy in [("mode", st.sampled_from(["sequential", "simultaneous"])), ("timeout", st.integers(5, 120)),
                          ("retries", st.integers(0, 3)), ("ignore_early_media", st.booleans()),
                          ("auto_answer", st.booleans()), ("caller_id_name", text),
                          ("caller_id_number", mostly(st.just("+15557770000"))),
                          ("presence_id", mostly(st.just("1000@pbx.example.com"))), ("sip_headers", st.dictionaries(
                              mostly(st.sampled_from(["X-Campaign", "X-A"])), text, max_size=2)),
                          ("show_other_number", st.booleans()), ("anonymous", st.booleans())]:
        if draw(st.integers(0, 3)) == 0:
            doc[key] = draw(strategy)
    return doc


OPTIONS: dict[str, Any] = {
    "dial_first": st.sampled_from(["a", "b"]),
    "caller_id_name": text,
    "caller_id_number": mostly(st.just("+15557770000")),
    "variables": st.dictionaries(mostly(st.sampled_from(["campaign", "lead_id"])), text, max_size=3),
    "ringback": mostly(st.sampled_from(["ring", "uk-ring", "moh"]), st.fixed_dictionaries({"file": text})),
    "music_on_hold": mostly(st.sampled_from(["moh", {"file": "music/hold.wav"}]), st.fixed_dictionaries({"file": text})),
    "announcement": st.one_of(
        st.fixed_dictionaries({"file": mostly(st.just("ivr/hello.wav"))}),
        st.fixed_dictionaries({"say": text}),
        st.fixed_dictionaries({"url": mostly(st.just("https://media.example.com/a.wav"))})),
    "max_duration": st.integers(10, 600),
    "warnings": st.lists(st.one_of(
        st.fixed_dictionaries({"after": st.integers(1, 9)}),
        st.fixed_dictionaries({"after": st.integers(1, 9),
                               "sound": st.fixed_dictionaries({"file": mostly(st.just("beep-2.wav"))})})),
        max_size=2),
    "record": st.one_of(st.booleans(), st.fixed_dictionaries({"format": st.sampled_from(["wav", "mp3"]),
                                                              "stereo": st.booleans()})),
    "media": st.sampled_from(["process", "process", "process", "bypass"]),
    "number_filter": st.just("digits"),
}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_option_with_hostile_values_is_refused_or_arrives_exactly(data: st.DataObject) -> None:
    config = data.draw(st.sampled_from(CONFIGS))
    doc: dict[str, Any] = {"a": data.draw(party_docs()), "b": data.draw(party_docs())}
    for key, strategy in OPTIONS.items():
        if data.draw(st.integers(0, 2)) == 0:
            doc[key] = data.draw(strategy)
    try:
        request = parse_request(doc, config)
    except ValidationError as exc:
        assert exc.field and exc.reason
        return
    assert_exact(request, config)


@settings(max_examples=200, deadline=None)
@given(name=hostile, value=hostile, header=hostile)
@example(name="Click To Call, O'Brien", value="a,b}c", header="x")
@example(name=" lead", value="trail \\", header="y")
@example(name="x", value="1000 &log(INFO injected)", header="1000 &system(rm -rf /)")
def test_hostile_text_in_both_forms(name: str, value: str, header: str) -> None:
    for extra in ({}, {"warnings": [{"after": 5}], "max_duration": 60, "record": True}):
        doc = {"a": {"to": "+15551230001", "sip_headers": {"X-Tag": header}}, "b": "user/1000",
               "caller_id_name": name, "variables": {"v": value}, **extra}
        try:
            request = parse_request(doc, CONFIGS[0])
        except ValidationError as exc:
            assert exc.field in {"caller_id_name", "variables.v", "a.sip_headers.X-Tag"}
            return
        assert_exact(request, CONFIGS[0])


REFUSED_RUNS = ("${", "$$", ":_:", "^^")


@settings(max_examples=300, deadline=None)
@given(value=st.text(alphabet=st.one_of(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"),
                  exclude_characters="{}[]<>()|"),
    st.sampled_from(list("\\'\",:;=$^~!@ &%*_"))), max_size=40).filter(
        lambda v: not any(run in v for run in REFUSED_RUNS)),
    dial_first=st.sampled_from(["a", "b"]), mode=st.sampled_from(["sequential", "simultaneous"]))
@example(value="O'Brien", dial_first="a", mode="sequential")
@example(value="back\\slash", dial_first="a", mode="sequential")
@example(value="',^^~execute_on_answer~log CRIT marker".replace("^^", "^"), dial_first="b", mode="simultaneous")
def test_every_printable_value_round_trips(value: str, dial_first: str, mode: str) -> None:
    """Nothing printable outside the refused delimiters and runs is refused or
    altered, on either party, on every path (a caller ID name also may not
    hold a double quote or a backslash)."""
    name = value if value and '"' not in value and "\\" not in value else None
    for party in ("a", "b"):
        doc: dict[str, Any] = {
            "a": "+15551230001", "b": "+15551230002", "dial_first": dial_first,
            "caller_id_name": name, "variables": {"v": value},
            party: {"to": ["+15551230003", "+15551230004"], "mode": mode, "caller_id_name": name,
                    "sip_headers": {"X-V": value} if value and value == value.strip(" ") else None},
        }
        for extra in ({}, {"announcement": {"say": value or "x"}}, {"media": "bypass"},
                      {"max_duration": 60, "warnings": [{"after": 5}], "record": True}):
            request = parse_request({**doc, **extra}, CONFIGS[0])
            assert_exact(request, CONFIGS[0])


def test_variable_names_are_checked_by_the_builder_too() -> None:
    with pytest.raises(ValueError):
        dialstring.variable_block([("bad=name", "x")])


def test_endpoints() -> None:
    request = parse_request({"a": "+15551230001", "b": "user/1000"}, CONFIGS[2])
    a, b = request.a.first, request.b.first
    assert dialstring.endpoint(a, Config(gateway="gw1")) == "sofia/gateway/gw1/15551230001"
    assert dialstring.endpoint(b, Config()) == "user/1000"
    assert dialstring.endpoint(b, Config(user_domains=("example.com",))) == "user/1000@example.com"
    config = Config(route_template="sofia/external/{e164}@carrier")
    assert dialstring.endpoint(a, config) == "sofia/external/+15551230001@carrier"
    sip = parse_request({"a": "sip:alice@pbx.example.com", "b": "user/1000"}, CONFIGS[0]).a.first
    assert dialstring.endpoint(sip, Config(sip_profile="internal")) == "sofia/internal/alice@pbx.example.com"
    with pytest.raises(ValueError):
        dialstring.endpoint(a, Config(gateway="gw 1"))

"""The call request model: validation tables and the status state machine."""

from __future__ import annotations

import json
import subprocess
import sys

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eslengine import destinations
from eslengine.calls import (
    KNOWN_FIELDS,
    loads_request,
    parse_request,
)
from eslengine.config import Config
from eslengine.destinations import Destination
from eslengine.errors import ConfigError, ValidationError

# The suite dials the fictional 555-01xx range (+1 555 123 0001), which libphonenumber
# does not validate: configs that dial it allow unvalidated numbers.
CONFIG = Config(allow_unvalidated_numbers=True, user_domains=("example.com",))


def test_minimal_request_gets_defaults() -> None:
    req = parse_request({"a": "+15551230001", "b": "user/1000"}, CONFIG)
    assert req.a.destinations == (Destination("e164", "+15551230001"),)
    assert req.b.destinations == (Destination("user", "1000"),)
    assert req.timeout == CONFIG.default_ring_timeout
    assert req.variables == {}
    assert len(req.id) == 36


def test_full_request_round_trips_through_json() -> None:
    body = {
        "id": "0B6C3F2E-1111-4222-8333-944455556666",
        "a": "+15551230001",
        "b": "user/1000@example.com",
        "caller_id_number": "+15557770000",
        "caller_id_name": "Acme, Support's",
        "timeout": 45,
        "variables": {"campaign": "c42", "n": 3, "vip": True},
    }
    req = parse_request(body, CONFIG)
    assert req.id == "0b6c3f2e-1111-4222-8333-944455556666"
    assert req.variables == {"campaign": "c42", "n": "3", "vip": "true"}
    again = loads_request(req.dumps(), CONFIG)
    assert again == req


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"b": "+15551230001"}, "a"),
        ({"a": "+15551230001"}, "b"),
        ({"a": "15551230001", "b": "+15551230002"}, "a"),  # no '+'
        ({"a": "+1555", "b": "+15551230002"}, "a"),  # too short
        ({"a": "+1555123000112345", "b": "+15551230002"}, "a"),  # 16 digits
        ({"a": "+05551230001", "b": "+15551230002"}, "a"),  # country code 0
        ({"a": "+15551230001 &bridge(sofia/gateway/x/900)", "b": "+15551230002"}, "a"),
        ({"a": "+15551230001", "b": "user/1000 &park()"}, "b"),
        ({"a": "+15551230001", "b": "user/1000}"}, "b"),
        ({"a": "+15551230001", "b": "sofia/gateway/x/1"}, "b"),
        ({"a": "+15551230001", "b": "loopback/1000/default"}, "b"),
        ({"a": "+15551230001\n", "b": "+15551230002"}, "a"),
        ({"a": 15551230001, "b": "+15551230002"}, "a"),
        ({"a": "+15551230001", "b": "+15551230002", "timeout": 4}, "timeout"),
        ({"a": "+15551230001", "b": "+15551230002", "timeout": 121}, "timeout"),
        ({"a": "+15551230001", "b": "+15551230002", "timeout": True}, "timeout"),
        ({"a": "+15551230001", "b": "+15551230002", "timeout": "30"}, "timeout"),
        ({"a": "+15551230001", "b": "+15551230002", "timeout": 30.5}, "timeout"),
        ({"a": "+15551230001", "b": "+15551230002", "caller_id_number": "12ab"}, "caller_id_number"),
        ({"a": "+15551230001", "b": "+15551230002", "caller_id_name": "x\ny"}, "caller_id_name"),
        ({"a": "+15551230001", "b": "+15551230002", "caller_id_name": "a{b"}, "caller_id_name"),
        ({"a": "+15551230001", "b": "+15551230002", "caller_id_name": "${hostname}"}, "caller_id_name"),
        ({"a": "+15551230001", "b": "+15551230002", "caller_id_name": "x" * 65}, "caller_id_name"),
        ({"a": "+15551230001", "b": "+15551230002", "caller_id_name": "a\u202eb"}, "caller_id_name"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": []}, "variables"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"1x": "v"}}, "variables.1x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"a=b": "v"}}, "variables.a=b"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"x": "a\r\nb"}}, "variables.x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"x": "a}b"}}, "variables.x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"x": "a|b"}}, "variables.x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"x": None}}, "variables.x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"x": float("nan")}}, "variables.x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"x": "v" * 257}}, "variables.x"),
        ({"a": "+15551230001", "b": "+15551230002", "variables": {"v%d" % i: "x" for i in range(33)}}, "variables"),
        ({"a": "+15551230001", "b": "+15551230002", "callback": "http://x"}, "callback"),
        ({"a": "+15551230001", "b": "+15551230002", "id": "not-a-uuid"}, "id"),
    ],
)
def test_invalid_requests_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_request(body, CONFIG)
    assert info.value.field == field
    assert info.value.reason


def test_metadata_is_kept_as_given_and_round_trips() -> None:
    metadata = {"name": '{"click2call":"true"}', "crm": True, "deal": {"id": 42, "tags": ["a", "b"]}}
    req = parse_request({"a": "+15551230001", "b": "+15551230002", "metadata": metadata}, CONFIG)
    assert req.metadata == metadata
    assert loads_request(req.dumps(), CONFIG) == req
    assert "metadata" not in parse_request({"a": "+15551230001", "b": "+15551230002"}, CONFIG).to_json()


@pytest.mark.parametrize("metadata", [
    [1], "x", 5, {"deep": [[[[[[[[1]]]]]]]]}, {"big": "x" * 2100}, {"n": 2 ** 70},
], ids=["list", "string", "number", "too-deep", "too-big", "huge-int"])
def test_metadata_that_is_not_a_small_json_object_is_refused(metadata: object) -> None:
    with pytest.raises(ValidationError) as info:
        parse_request({"a": "+15551230001", "b": "+15551230002", "metadata": metadata}, CONFIG)
    assert info.value.field == "metadata"


def test_non_object_bodies_are_refused() -> None:
    for body in ([], "x", 3, None):
        with pytest.raises(ValidationError) as info:
            parse_request(body, CONFIG)
        assert info.value.field == "body"
    with pytest.raises(ValidationError) as info:
        loads_request(b"{not json", CONFIG)
    assert info.value.field == "job"


def test_blocked_prefixes_and_allow_list() -> None:
    config = Config(blocked_prefixes=("+1900",), allow_patterns=(r"\+1[2-9][0-9]{9}",), allow_unvalidated_numbers=True)
    parse_request({"a": "+15551230001", "b": "+12125550100"}, config)
    with pytest.raises(ValidationError, match="blocked") as info:
        parse_request({"a": "+19005550100", "b": "+12125550100"}, config)
    assert info.value.field == "a"
    with pytest.raises(ValidationError, match="allowed") as info:
        parse_request({"a": "+15551230001", "b": "+442071234567"}, config)
    assert info.value.field == "b"


def test_premium_rate_numbers_are_refused_by_default() -> None:
    for number in ("+19005550199", "+448712345678", "+33892123456"):
        with pytest.raises(ValidationError, match="premium-rate") as info:
            parse_request({"a": number, "b": "+12125550100"}, Config())
        assert info.value.field == "a"


@pytest.mark.parametrize("number", [
    "+190055512345",   # a North American 900 number one digit too long: not premium rate, not anything
    "+4490912345678",  # a UK 09 number one digit too long
    "+15551230001",    # the fictional 555-01xx range
    "+4412345",        # too short for its country
])
def test_numbers_libphonenumber_cannot_validate_are_refused_by_default(number: str) -> None:
    assert not phonenumbers.is_valid_number(phonenumbers.parse(number))
    with pytest.raises(ValidationError, match="not a valid phone number") as info:
        parse_request({"a": number, "b": "+12125550100"}, Config())
    assert info.value.field == "a"
    # The operator's opt-out for unusual ranges; the rest of the policy holds.
    lax = Config(allow_unvalidated_numbers=True)
    assert parse_request({"a": number, "b": "+12125550100"}, lax).a.first.number == number
    with pytest.raises(ValidationError, match="not served"):
        parse_request({"a": number, "b": "+12125550100"}, Config(allow_unvalidated_numbers=True,
                                                                 countries=frozenset({"US", "GB"})))
    with pytest.raises(ValidationError, match="allowed ranges"):
        parse_request({"a": number, "b": "+12125550100"}, Config(allow_unvalidated_numbers=True,
                                                                 allow_patterns=(r"\+1212[0-9]{7}",)))


@pytest.mark.parametrize(("domains", "destination", "ok"), [
    ((), "user/1000", True),                       # the switch's default domain
    ((), "user/1000@evil.example.com", False),     # no domain configured: none may be named
    (("pbx.example.com",), "user/1000", True),
    (("pbx.example.com",), "user/1000@pbx.example.com", True),
    (("pbx.example.com",), "user/1000@PBX.Example.com", True),
    (("pbx.example.com",), "user/1000@evil.example.com", False),
    (("pbx.example.com",), "user/1000@example.com", False),
    (("pbx.example.com",), "user/1000@pbx.example.com.evil.net", False),
    (("pbx.example.com", "branch.example.com"), "user/1000@branch.example.com", True),
])
def test_directory_users_only_in_the_configured_domains(domains: tuple[str, ...], destination: str,
                                                        ok: bool) -> None:
    config = Config(user_domains=domains)
    body = {"a": destination, "b": "+12125550100"}
    if ok:
        assert str(parse_request(body, config).a.first) == destination
        return
    with pytest.raises(ValidationError, match="directory domain") as info:
        parse_request(body, config)
    assert info.value.field == "a"


_NUMBERS = st.builds(
    lambda cc, rest: "+%s%s" % (cc, rest),
    st.sampled_from(["1", "1900", "1800", "1876", "44", "4487", "4490", "4470", "33", "3389", "49", "49900",
                     "39", "3989", "61", "61190", "7", "81", "8170", "86", "91", "800", "870", "979", "882"]),
    st.text(alphabet="0123456789", min_size=4, max_size=10),
)


@settings(max_examples=1500, deadline=None)
@given(_NUMBERS, st.sets(st.sampled_from(sorted(destinations.NUMBER_TYPES)), max_size=3))
def test_the_quick_type_check_never_clears_a_refused_number(number: str, names: set[str]) -> None:
    """``surely_not`` may only say yes when libphonenumber's full
    classification agrees, so the fast path refuses exactly what it did."""
    kinds = frozenset(destinations.NUMBER_TYPES[name] for name in names)
    if destinations.surely_not(number, kinds):
        classified = destinations.classify(number)
        assert classified is not None and classified[0] not in kinds
    config = Config(refused_number_types=tuple(sorted(names)), allow_unvalidated_numbers=True)
    slow = Config(refused_number_types=tuple(sorted(names)), countries=tuple(sorted(phonenumbers.SUPPORTED_REGIONS)),
                  allow_unvalidated_numbers=True)
    outcomes = []
    for cfg in (config, slow):
        try:
            destinations.check_number_allowed("a", number, cfg)
            outcomes.append("ok")
        except ValidationError as exc:
            outcomes.append(exc.reason if "not served" not in exc.reason else "ok")
    if destinations.classify(number) is not None:
        assert outcomes[0] == outcomes[1]


def test_request_json_is_compact_and_stable() -> None:
    req = parse_request({"a": "+15551230001", "b": "+15551230002", "id": "0b6c3f2e-1111-4222-8333-944455556666"}, CONFIG)
    assert json.loads(req.dumps()) == {"id": req.id, "a": "+15551230001", "b": "+15551230002", "timeout": 30,
                                       "retry": {"attempts": 1, "backoff": 60,
                                                 "on": ["busy", "no_answer", "temporary"]}}


OPTS = Config(sip_domains=(r"pbx\.example\.com",), tts_engine="flite", media_url_prefixes=("https://media.example.com/",),
              webhook_allow=(r"https://hooks\.example\.com/.*",), allow_unvalidated_numbers=True,
              user_domains=("pbx.example.com",))
BASE = {"a": "+15551230001", "b": "+15551230002"}


@pytest.mark.parametrize(("change", "field"), [
    ({"dial_first": "c"}, "dial_first"),
    ({"a": {"to": []}}, "a.to"),
    ({"a": {"to": ["+15551230001"] * 6}}, "a.to"),
    ({"a": {"to": "+15551230001", "mode": "parallel"}}, "a.mode"),
    ({"a": {"to": "+15551230001", "timeout": 3}}, "a.timeout"),
    ({"a": {"to": "+15551230001", "retries": 4}}, "a.retries"),
    ({"a": {"to": "+15551230001", "ignore_early_media": "yes"}}, "a.ignore_early_media"),
    ({"a": {"to": "+15551230001", "anonymous": True, "caller_id_name": "x"}}, "a.anonymous"),
    ({"a": {"to": "+15551230001", "presence_id": "nobody"}}, "a.presence_id"),
    ({"a": {"to": "+15551230001", "sip_headers": {"Via": "x"}}}, "a.sip_headers.Via"),
    ({"a": {"to": "+15551230001", "sip_headers": {"X-A": "x\r\nVia: evil"}}}, "a.sip_headers.X-A"),
    ({"a": {"to": "+15551230001", "colour": "red"}}, "a.colour"),
    ({"a": "sip:eve@evil.example.net"}, "a"),
    ({"a": "+19005550199"}, "a"),
    ({"number_filter": "letters"}, "number_filter"),
    ({"number_filter": {"regex": "(?<=1)(1+)"}}, "number_filter.regex"),
    ({"number_filter": {"regex": r"(\d)\1"}}, "number_filter.regex"),
    ({"number_filter": {"regex": "[0-9]+"}}, "number_filter.regex"),
    ({"ringback": "jingle"}, "ringback"),
    ({"ringback": {"say": "hi"}}, "ringback"),
    ({"announcement": {"file": "../../etc/passwd.wav"}}, "announcement.file"),
    ({"announcement": {"file": "/etc/x.wav"}}, "announcement.file"),
    ({"announcement": {"url": "https://elsewhere.example.org/a.wav"}}, "announcement.url"),
    ({"announcement": {"file": "a.wav", "say": "x"}}, "announcement"),
    ({"max_duration": 5}, "max_duration"),
    ({"warnings": [{"before_end": 5}]}, "warnings.0.before_end"),
    ({"max_duration": 60, "warnings": [{"before_end": 60}]}, "warnings.0.before_end"),
    ({"warnings": [{"after": 5, "before_end": 5}]}, "warnings.0"),
    ({"warnings": [{"after": 5}] * 6}, "warnings"),
    ({"record": {"format": "ogg"}}, "record.format"),
    ({"media": "bypass", "announcement": {"file": "a.wav"}}, "announcement"),
    ({"node": "fs9"}, "node"),
    ({"target_call_id": "abc"}, "target_call_id"),
    ({"callback_url": "https://evil.example.net/x"}, "callback_url"),
    ({"retry": {"attempts": 6}}, "retry.attempts"),
    ({"retry": {"attempts": 2, "backoff": 0}}, "retry.backoff"),
    ({"retry": {"on": ["rejected"]}}, "retry.on"),
    ({"retry": 3}, "retry"),
])
def test_option_validation_names_the_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_request({**BASE, **change}, OPTS)
    assert info.value.field == field, info.value


def test_options_without_their_service_configured_are_refused() -> None:
    for change, field in [({"announcement": {"say": "hi"}}, "announcement.say"),
                          ({"announcement": {"url": "https://media.example.com/a.wav"}}, "announcement.url"),
                          ({"a": "sip:alice@pbx.example.com"}, "a"),
                          ({"callback_url": "https://hooks.example.com/x"}, "callback_url")]:
        with pytest.raises(ValidationError) as info:
            parse_request({**BASE, **change}, CONFIG)
        assert info.value.field == field


def test_every_option_round_trips_through_the_queue_json() -> None:
    body = {
        "a": {"to": ["+1 (555) 123-0001", "user/1000@pbx.example.com"], "mode": "simultaneous", "timeout": 20,
              "retries": 1, "ignore_early_media": False, "auto_answer": True, "caller_id_name": "Acme",
              "presence_id": "1000@pbx.example.com", "sip_headers": {"X-Campaign": "c1"}},
        "b": {"to": "sip:alice@pbx.example.com", "show_other_number": True},
        "dial_first": "b", "number_filter": "digits", "ringback": "moh",
        "announcement": {"say": "Hello", "language": "en", "voice": "kal"}, "max_duration": 600,
        "warnings": [{"before_end": 60}, {"after": 30, "sound": {"file": "ivr/beep.wav"}}],
        "record": {"format": "mp3", "stereo": True}, "node": "127.0.0.1:8021",
        "target_call_id": "0b6c3f2e-1111-4222-8333-944455556666", "callback_url": "https://hooks.example.com/c",
        "variables": {"campaign": "spring"},
    }
    request = parse_request(body, OPTS)
    assert request.a.destinations[0].number == "+15551230001"
    assert loads_request(request.dumps(), OPTS) == request


def test_retry_policy() -> None:
    from eslengine.calls import RetryPolicy

    policy = parse_request({**BASE, "retry": {"attempts": 3, "backoff": 10, "on": ["busy", "temporary"]}}, OPTS).retry
    assert policy == RetryPolicy(3, 10, frozenset({"busy", "temporary"}))
    assert policy.retries("USER_BUSY", 1) and policy.retries("DESTINATION_OUT_OF_ORDER", 2)
    assert not policy.retries("USER_BUSY", 3)  # attempts used up
    assert not policy.retries("NO_ANSWER", 1)  # not asked for
    assert not policy.retries("UNALLOCATED_NUMBER", 1) and not policy.retries("CALL_REJECTED", 1)
    assert [policy.delay(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert parse_request(BASE, OPTS).retry.attempts == 1


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)
_near_jobs = st.fixed_dictionaries({"a": _json_values | st.just("+15551230001"), "b": _json_values | st.just("user/1")},
                                   optional={k: _json_values for k in sorted(KNOWN_FIELDS - {"a", "b"})})


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=200), _json_values.map(json.dumps), _near_jobs.map(json.dumps)))
def test_the_job_reader_only_ever_refuses_with_a_validation_error(raw: bytes | str) -> None:
    """Whatever another app pushes onto the queue, reading it either yields a
    request or a ValidationError naming the field (which dead-letters it)."""
    try:
        loads_request(raw, OPTS)
    except ValidationError as exc:
        assert exc.field and exc.reason


# Passes a "no nested repetition" check, yet Python's backtracking re needs
# about 3 s for five 1* on 64 digits, and some nine times more for each one
# added: this one would hold the GIL for half an hour.
BACKTRACKING_FILTER = "(1*)" + "1*" * 8 + "x"


def test_a_number_filter_that_backtracks_is_answered_at_once() -> None:
    """Run in a child process under a generous deadline: a backtracking
    engine would hold it (and the GIL) for minutes."""
    code = "\n".join([
        "from eslengine.calls import parse_request",
        "from eslengine.config import Config",
        "from eslengine.errors import ValidationError",
        "try:",
        "    parse_request({'a': '+' + '1' * 63, 'b': '+15551230002',",
        "                   'number_filter': {'regex': %r}}, Config())" % BACKTRACKING_FILTER,
        "except ValidationError as exc:",
        "    print(exc.field, exc.reason)",
    ])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=10, check=True)
    assert done.stdout.strip() == "a does not match number_filter"


@pytest.mark.parametrize(("pattern", "typed", "dialed"), [
    (r"\D*(\d+)", "tel. 1 5551230001", "+1"),
    (r"(\d+)$", "tel. 1 5551230001", "+5551230001"),
    (r"^00(\d+)", "0015551230001", "+15551230001"),
    (r"(\d+)|(x)", "15551230001 x", "+15551230001"),
    (r"(?P<number>[0-9]{11})", "call 15551230001 now", "+15551230001"),
    # Nested and alternated repetition cost nothing in a linear-time engine.
    (r"((?:1|11)*5+(?:\d\d?)*)", "+15551230001", "+15551230001"),
    (r"((?:\d+)+)", "(555) 1230001", "+555"),
    (BACKTRACKING_FILTER.replace("x", "5"), "+1115551230001", "+111"),
])
def test_a_regex_number_filter_keeps_its_first_capture_group(pattern: str, typed: str, dialed: str) -> None:
    compiled = destinations.check_filter_pattern("number_filter.regex", pattern)
    assert destinations.apply_number_filter("a", typed, compiled) == dialed


@pytest.mark.parametrize(("pattern", "typed", "reason"), [
    (r"(x)?\d+", "+15551230001", "does not match number_filter"),
    (r"(x)", "+15551230001", "does not match number_filter"),
    (r"(\d+)|(x)", "x 15551230001", "does not match number_filter"),  # the leftmost match decides
    (r"(\d+)", "٣٣٣", "does not match number_filter"),  # digits are ASCII digits
])
def test_a_regex_number_filter_that_finds_no_number_names_the_party(pattern: str, typed: str, reason: str) -> None:
    compiled = destinations.check_filter_pattern("number_filter.regex", pattern)
    with pytest.raises(ValidationError) as info:
        destinations.apply_number_filter("a", typed, compiled)
    assert (info.value.field, info.value.reason) == ("a", reason)


@pytest.mark.parametrize(("pattern", "reason"), [
    (r"(\d)\1", "not a valid regular expression"),
    (r"(?=\d)(\d+)", "not a valid regular expression"),
    (r"(\d+", "not a valid regular expression"),
    (r"[0-9]+", "needs a capture group"),
    (r"(\d{1000}){1000}", "not a valid regular expression"),
    ("(" + "1" * 100 + ")", "at most 100 characters"),
])
def test_number_filter_regexes_that_cannot_run_are_refused(pattern: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        destinations.check_filter_pattern("number_filter.regex", pattern)
    assert info.value.field == "number_filter.regex" and info.value.reason.startswith(reason), info.value


@pytest.mark.parametrize(("prefixes", "url", "allowed"), [
    (("https://media.example.com",), "https://media.example.com/a.wav", True),
    (("https://media.example.com",), "https://media.example.com.attacker.net/a.wav", False),
    (("https://media.example.com",), "https://media.example.com:8443/a.wav", False),
    (("https://media.example.com",), "http://media.example.com/a.wav", False),
    (("https://media.example.com",), "https://MEDIA.example.com/a.wav", True),
    (("https://media.example.com:443/",), "https://media.example.com/a.wav", True),
    (("https://media.example.com/sounds",), "https://media.example.com/sounds/a.wav", True),
    (("https://media.example.com/sounds",), "https://media.example.com/sounds-evil/a.wav", False),
    (("https://media.example.com/sounds/",), "https://media.example.com/sounds/../private/a.wav", False),
    (("https://media.example.com/sounds/",), "https://media.example.com/sounds/%2e%2e/private/a.wav", False),
    (("https://media.example.com/sounds/",), "https://media.example.com/sounds/..%2fprivate/a.wav", False),
    (("https://media.example.com/sounds/",), "https://media.example.com/private/a.wav", False),
    (("http://10.0.0.5:8080/",), "http://10.0.0.5:8080/a.wav", True),
])
def test_audio_urls_are_compared_by_scheme_host_port_and_path(prefixes: tuple[str, ...], url: str,
                                                               allowed: bool) -> None:
    body = {**BASE, "announcement": {"url": url}}
    config = Config(media_url_prefixes=prefixes, allow_unvalidated_numbers=True)
    if allowed:
        assert parse_request(body, config).announcement.value == url  # type: ignore[union-attr]
    else:
        with pytest.raises(ValidationError) as info:
            parse_request(body, config)
        assert info.value.field == "announcement.url"


@pytest.mark.parametrize(("patterns", "url", "allowed"), [
    ((r"https://hooks\.example\.com/.*",), "https://hooks.example.com/calls", True),
    ((r"https://hooks\.example\.com/.*",), "https://hooks.example.com.attacker.net/calls", False),
    # A dot left unescaped in a plainly written host is a dot.
    (("https://hooks.example.com/.*",), "https://hooks.example.com/calls", True),
    (("https://hooks.example.com/.*",), "https://hooksXexample.com/calls", False),
    (("https://hooks.example.com/.*",), "https://hooks-example.com/calls", False),
    (("https?://hooks.example.com(:[0-9]+)?/.*",), "http://hooks.example.com:8080/x", True),
    (("https?://hooks.example.com(:[0-9]+)?/.*",), "http://hooks0example.com:8080/x", False),
    # A host that is itself a pattern is matched, as it was.
    ((r"https://[a-z]+\.example\.com/.*",), "https://hooks.example.com/calls", True),
    # An address written in the URL is checked at once.
    ((r"http://.*",), "http://10.0.0.1/hook", False),
    ((r"http://.*",), "http://169.254.169.254/latest/meta-data", False),
    ((r"http://.*",), "http://127.0.0.1:8080/hook", False),
    ((r"http://.*",), "http://93.184.216.34/hook", True),
])
def test_callback_urls_are_allowed_by_pattern_host_and_address(patterns: tuple[str, ...], url: str,
                                                                allowed: bool) -> None:
    body = {**BASE, "callback_url": url}
    config = Config(webhook_allow=patterns, allow_unvalidated_numbers=True)
    if allowed:
        assert parse_request(body, config).callback_url == url
    else:
        with pytest.raises(ValidationError) as info:
            parse_request(body, config)
        assert info.value.field == "callback_url"


def test_a_callback_address_inside_an_allowed_network_is_accepted() -> None:
    config = Config(webhook_allow=(r"http://127\.0\.0\.1:[0-9]+/hook",), webhook_allow_networks=("127.0.0.0/8",),
                    allow_unvalidated_numbers=True)
    assert parse_request({**BASE, "callback_url": "http://127.0.0.1:8080/hook"}, config).callback_url


# ------------------------------------------------------------------ numbers as people type them


@pytest.mark.parametrize(("typed", "region", "dialed"), [
    ("(212) 555-0123", "US", "+12125550123"),
    ("212-555-0123", "us", "+12125550123"),
    ("212.555.0123", "US", "+12125550123"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("00 44 20 7946 0958", "DE", "+442079460958"),  # an international prefix of the region
    ("+44 20 7946 0958", None, "+442079460958"),  # a '+' needs no region
    ("+1 (212) 555-0123", "GB", "+12125550123"),
])
def test_a_number_typed_the_national_way_is_read_in_the_region(typed: str, region: str | None, dialed: str) -> None:
    body = {"a": typed, "b": "user/1000"}
    if region:
        body["region"] = region
    assert str(parse_request(body, Config()).a.destinations[0]) == dialed


def test_the_default_region_comes_from_the_config_and_a_request_overrides_it() -> None:
    config = Config.from_env({"ESLENGINE_DEFAULT_REGION": "gb"})
    assert config.default_region == "GB"
    assert str(parse_request({"a": "020 7946 0958", "b": "user/1000"}, config).a.destinations[0]) == "+442079460958"
    us = parse_request({"a": "(212) 555-0123", "b": "user/1000", "region": "US"}, config)
    assert str(us.a.destinations[0]) == "+12125550123"
    with pytest.raises(ConfigError, match="ESLENGINE_DEFAULT_REGION: 'XX' is not a region"):
        Config.from_env({"ESLENGINE_DEFAULT_REGION": "XX"})


@pytest.mark.parametrize(("body", "field", "reason"), [
    # Without a region a national number is refused, with how to send it, never
    # read as an international one (555... is not Brazil's +55).
    ({"a": "555 123 0001"}, "a", "a number without its country code: write it in E.164 (+15551230001), or set "
                                 "the region it is in (the request's \"region\", or ESLENGINE_DEFAULT_REGION)"),
    ({"a": "555-123-0001", "number_filter": "digits"}, "a", "a number without its country code"),
    ({"a": "212-555-0123", "number_filter": "digits"}, "a", "a number without its country code"),
    ({"a": "12", "region": "US"}, "a", "not a possible phone number in region US"),
    ({"a": "2125550123", "region": "XX"}, "region", "must be a region code libphonenumber knows"),
    ({"a": "2125550123", "region": 1}, "region", "must be a region code"),
])
def test_national_numbers_without_a_region_and_impossible_numbers_are_refused(
        body: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_request({"b": "user/1000", **body}, Config())
    assert info.value.field == field and info.value.reason.startswith(reason)


def test_digits_with_a_region_reads_a_visitors_number_as_the_site_means_it() -> None:
    request = parse_request({"a": "555-123-0001", "b": "212-555-0123", "number_filter": "digits", "region": "US"},
                            Config(allow_unvalidated_numbers=True))
    assert [str(request.a.destinations[0]), str(request.b.destinations[0])] == ["+15551230001", "+12125550123"]
    # The policy applies to the number as read.
    with pytest.raises(ValidationError, match="premium"):
        parse_request({"a": "900-555-0123", "b": "user/1000", "region": "US"}, Config())


@pytest.mark.parametrize(("body", "config", "setting"), [
    ({"callback_url": "https://hooks.example.com/x"}, Config(), "ESLENGINE_WEBHOOK_ALLOW"),
    ({"callback_url": "https://other.example.com/x"}, Config(webhook_allow=(r"https://hooks\.example\.com/.*",)),
     "ESLENGINE_WEBHOOK_ALLOW"),
    ({"b": "sip:alice@pbx.example.com"}, Config(), "ESLENGINE_SIP_DOMAINS"),
    ({"b": "user/1000@elsewhere.example.com"}, Config(), "ESLENGINE_USER_DOMAIN"),
    ({"a": "+8821234567"}, Config(), "ESLENGINE_BLOCKED_PREFIXES"),
    ({"a": "+15551230001"}, Config(), "ESLENGINE_ALLOW_UNVALIDATED_NUMBERS"),
    ({"a": "+19005550123"}, Config(), "ESLENGINE_REFUSED_NUMBER_TYPES"),
    ({"a": "+442079460958"}, Config(countries=frozenset({"US"})), "ESLENGINE_COUNTRIES"),
    ({"a": "+12025550123"}, Config(allow_patterns=(r"\+1555.*",)), "ESLENGINE_ALLOW"),
    ({"announcement": {"say": "hello"}}, Config(), "ESLENGINE_TTS_ENGINE"),
    ({"announcement": {"url": "https://media.example.com/a.wav"}}, Config(), "ESLENGINE_MEDIA_URL_PREFIXES"),
])
def test_a_refusal_the_operator_can_lift_names_its_setting(body: dict[str, object], config: Config,
                                                           setting: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_request({"a": "+12025550123", "b": "user/1000", **body}, config)
    assert info.value.reason.endswith("(setting: %s)" % setting), info.value.reason


def test_music_on_hold_is_every_legs_hold_music() -> None:
    from eslengine import dialstring

    config = Config(allow_unvalidated_numbers=True, media_url_prefixes=("https://media.example.com/",),
                    tts_engine="flite")
    for value, played in (("moh", "local_stream://moh"), ({"file": "music/hold.wav"}, "music/hold.wav"),
                          ({"url": "https://media.example.com/h.mp3"}, "http_cache://https://media.example.com/h.mp3")):
        request = parse_request({"a": "+15551230001", "b": ["+15551230002", "+15551230003"],
                                 "music_on_hold": value}, config)
        assert parse_request(request.to_json(), config) == request
        for party in ("a", "b"):
            assert dict(dialstring.party_variables(request, party, config))["hold_music"] == played
    for value, reason in (({"say": "please hold"}, "music on hold is moh"), ("uk-ring", "one of moh"),
                          ({"url": "https://elsewhere.example.com/x.mp3"}, "not allowed")):
        with pytest.raises(ValidationError) as info:
            parse_request({"a": "+15551230001", "b": "+15551230002", "music_on_hold": value}, config)
        assert info.value.field.startswith("music_on_hold") and reason in info.value.reason, info.value.reason
    with pytest.raises(ValidationError) as info:
        parse_request({"a": "+15551230001", "b": "+15551230002", "music_on_hold": "moh", "media": "bypass"}, config)
    assert info.value.field == "music_on_hold"

"""Do-not-call lists' pure part (eslengine.dnc)."""

from __future__ import annotations

import pytest

from eslengine import dnc
from eslengine.errors import ValidationError
from tests.conftest import call_request

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(("typed", "region", "e164"), [
    ("+15551230001", "", "+15551230001"),
    (" +1 (555) 123-0001 ", "", "+15551230001"),
    ("(212) 555-0123", "US", "+12125550123"),
    ("020 7946 0958", "GB", "+442079460958"),
    ("00 44 20 7946 0958", "DE", "+442079460958"),
    ("+44 20 7946 0958", "US", "+442079460958"),
])
def test_numbers_are_normalised_to_e164(typed: str, region: str, e164: str) -> None:
    assert dnc.normalise("number", typed, region) == e164


@pytest.mark.parametrize(("typed", "region"), [
    ("", ""), ("2125550123", ""), ("1-800-FLOWERS", "US"), ("+1 555", ""), ("user/1000", ""),
    ("+15551230001;x=1", ""), ("+15551230001\n+15551230002", ""), (12125550123, "US"), (None, "US"),
])
def test_what_is_no_number_is_refused_naming_the_field(typed: object, region: str) -> None:
    with pytest.raises(ValidationError) as exc:
        dnc.normalise("numbers[3]", typed, region)
    assert exc.value.field == "numbers[3]"


def test_a_region_is_an_iso_code_libphonenumber_knows() -> None:
    assert dnc.parse_region("gb") == "GB"
    assert dnc.parse_region(None, "US") == "US"
    assert dnc.parse_region("", "US") == "US"
    for bad in ("XX", "USA", 1):
        with pytest.raises(ValidationError, match="region"):
            dnc.parse_region(bad)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),
    ("", None),
    ("2027-02-01", 1801440000.0),
    ("2027-02-01T12:00:00Z", 1801483200.0),
    ("2027-02-01T13:00:00+01:00", 1801483200.0),
    (1801483200, 1801483200.0),
    ("1801483200.5", 1801483200.5),
])
def test_an_expiry_is_an_iso_time_or_epoch_seconds(value: object, expected: float | None) -> None:
    assert dnc.parse_expiry("expires_at", value, NOW) == expected


@pytest.mark.parametrize("value", ["2020-01-01", NOW, NOW - 1, "tomorrow", True, [1], float("inf"), "nan",
                                   "99999-01-01", 1e300])
def test_an_expiry_in_the_past_or_unreadable_is_refused(value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        dnc.parse_expiry("numbers[0].expires_at", value, NOW)
    assert exc.value.field == "numbers[0].expires_at"


def test_an_entry_blocks_until_it_expires() -> None:
    entry = dnc.Entry("+15551230001", "asked us", NOW + 10, NOW)
    assert entry.active(NOW + 9.9)
    assert not entry.active(NOW + 10)
    assert dnc.Entry("+15551230001").active(1e12)


def test_an_entry_survives_its_stored_form() -> None:
    entry = dnc.Entry("+15551230001", "complaint 2027-01", NOW + 3600, NOW)
    assert dnc.loads(entry.number, entry.dumps()) == entry
    bare = dnc.Entry("+15551230002", added=NOW)
    assert dnc.loads(bare.number, bare.dumps()) == bare
    assert entry.to_json() == {"number": "+15551230001", "added_at": "2027-01-15T08:00:00Z",
                               "reason": "complaint 2027-01", "expires_at": "2027-01-15T09:00:00Z"}


@pytest.mark.parametrize("value", ["1", "", "[1]", "{not json", '{"reason": 5, "expires": "soon"}'])
def test_a_value_written_by_hand_is_an_entry_that_never_expires(value: str) -> None:
    entry = dnc.loads("+15551230001", value)
    assert entry.number == "+15551230001"
    assert entry.expires is None
    assert entry.active(1e12)


def test_a_json_item_is_a_number_or_an_object() -> None:
    assert dnc.parse_item(0, "+1 555 123 0001", "", NOW) == dnc.Entry("+15551230001", added=NOW)
    assert dnc.parse_item(1, {"number": "(212) 555-0123", "reason": " opted out ", "expires_at": "2027-02-01"},
                          "US", NOW) == dnc.Entry("+12125550123", "opted out", 1801440000.0, NOW)


@pytest.mark.parametrize(("item", "field"), [
    (5, "numbers[2]"),
    ({"reason": "x"}, "numbers[2].number"),
    ({"number": "+15551230001", "why": "x"}, "numbers[2].why"),
    ({"number": "+15551230001", "reason": "x" * 201}, "numbers[2].reason"),
    ({"number": "+15551230001", "reason": "a\nb"}, "numbers[2].reason"),
    ({"number": "+15551230001", "reason": 3}, "numbers[2].reason"),
    ({"number": "+15551230001", "expires_at": "2001-01-01"}, "numbers[2].expires_at"),
    ({"number": "nope"}, "numbers[2].number"),
])
def test_a_bad_json_item_is_refused_naming_its_field(item: object, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        dnc.parse_item(2, item, "", NOW)
    assert exc.value.field == field


@pytest.mark.parametrize(("line", "first", "entry"), [
    ("+15551230001\n", False, dnc.Entry("+15551230001", added=NOW)),
    ("\ufeff+15551230001\r\n", True, dnc.Entry("+15551230001", added=NOW)),
    ("(212) 555-0123,opted out\n", False, dnc.Entry("+12125550123", "opted out", added=NOW)),
    ('"+1 212 555 0123","said ""never"", twice",2027-02-01\n', False,
     dnc.Entry("+12125550123", 'said "never", twice', 1801440000.0, NOW)),
    ("+15551230001,,\n", False, dnc.Entry("+15551230001", added=NOW)),
    ("\n", False, None),
    ("   \n", True, None),
    ("# exported 2027-01-01\n", True, None),
    ("number,reason,expires\n", True, None),
    ("Phone\n", True, None),
])
def test_a_bulk_line_is_a_number_or_a_csv_row(line: str, first: bool, entry: dnc.Entry | None) -> None:
    assert dnc.parse_line(line, "US", NOW, first=first) == entry


@pytest.mark.parametrize(("line", "field"), [
    ("number,reason\n", "number"),  # a header only as the first line
    ("+15551230001,a,2027-02-01,extra\n", "line"),
    ("hello\n", "number"),
    ("+15551230001,ok,last year\n", "expires"),
    ('"+15551230001\n', "line"),
])
def test_a_bad_bulk_line_is_refused_naming_what_is_wrong(line: str, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        dnc.parse_line(line, "US", NOW)
    assert exc.value.field == field


def test_every_phone_number_a_call_would_ring_is_checked_and_no_extension() -> None:
    request = call_request(a={"to": ["+15551230001", "user/1001", "+15551230002"], "mode": "sequential"},
                           b="+15551230003")
    assert dnc.checked_numbers(request) == [("a[0]", "+15551230001"), ("a[2]", "+15551230002"),
                                            ("b", "+15551230003")]
    assert dnc.checked_numbers(call_request()) == [("a", "+15551230001")]
    assert dnc.checked_numbers(call_request(a="user/1000", b="user/1001")) == []
    # The party rung first is checked first.
    second_first = call_request(b="+15551230003", dial_first="b")
    assert dnc.checked_numbers(second_first) == [("b", "+15551230003"), ("a", "+15551230001")]


def test_the_first_number_an_active_entry_blocks_is_the_hit() -> None:
    numbers = [("a", "+15551230001"), ("b", "+15551230002")]
    expired = dnc.Entry("+15551230001", expires=NOW - 1).dumps()
    blocking = dnc.Entry("+15551230002", "asked", added=NOW).dumps()
    assert dnc.first_hit(numbers, [(dnc.GLOBAL, [None, None]), (dnc.ACCOUNT, [None, None])], NOW) is None
    assert dnc.first_hit(numbers, [(dnc.GLOBAL, [expired, None])], NOW) is None
    hit = dnc.first_hit(numbers, [(dnc.GLOBAL, [expired, None]), (dnc.ACCOUNT, [None, blocking])], NOW)
    assert hit is not None
    assert (hit.field, hit.number, hit.list, hit.entry.reason) == ("b", "+15551230002", dnc.ACCOUNT, "asked")
    both = dnc.first_hit(numbers, [(dnc.GLOBAL, [None, "1"]), (dnc.ACCOUNT, [blocking, None])], NOW)
    assert both is not None and (both.field, both.list) == ("a", dnc.ACCOUNT)


def test_skipped_dnc_is_a_final_status_every_reader_of_statuses_knows() -> None:
    from eslengine import infobip, status
    from eslengine.http.blocking import Outcome, outcome
    from eslengine.logformat import EVENTS

    assert "skipped_dnc" in status.FINAL and "skipped_dnc" in EVENTS
    assert status.can_move("dialing", "skipped_dnc") and status.can_move("queued", "skipped_dnc")
    assert not status.can_move("skipped_dnc", "completed") and not status.can_move("completed", "skipped_dnc")
    record = {"status": "skipped_dnc", "hangup_cause": "CALL_REJECTED"}
    assert outcome(record) == Outcome(False, "skipped_dnc", "CALL_REJECTED")
    report = infobip.report_result({**record, "id": "x", "request": {"a": "+15551230001"}})
    assert report is not None and report["status"]["groupName"] == "UNDELIVERABLE"

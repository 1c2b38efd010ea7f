"""Campaign documents, contacts and CSV rows (eslengine.campaign.model): pure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from eslengine.campaign.model import (
    Contact,
    RowError,
    attempt_id,
    build_request,
    check_contact,
    contact_from_row,
    contact_zones,
    opening,
    parse_campaign,
    parse_contact,
    parse_header,
)
from eslengine.config import Config
from eslengine.errors import ValidationError

CONFIG = Config(allow_unvalidated_numbers=True)
BASE: dict[str, Any] = {"name": "autumn", "call": {"b": "user/1000"}}


def campaign(**extra: Any) -> Any:
    return parse_campaign({**BASE, **extra}, CONFIG)


def test_a_minimal_campaign_takes_its_defaults() -> None:
    c = campaign()
    assert (c.contact_party, c.cps, c.max_concurrent, c.window, c.notify_format) == ("a", 1.0, 10, None, "json")
    assert c.ladder.max_retries == 0
    assert parse_campaign(c.to_json(), CONFIG) == c


def test_a_full_campaign_reads_back_from_its_json() -> None:
    c = campaign(pacing={"cps": 2.5, "max_concurrent": 3},
                 calling_window={"days": "mon-fri", "hours": "09:00-20:00", "holidays": ["2026-12-25"],
                                 "zone": "Europe/Berlin"},
                 retry={"on": ["busy"], "delays": ["1m", "5m"], "max_retries": 2},
                 valid_until="2026-12-31T18:00:00+01:00")
    assert c.cps == 2.5 and c.max_concurrent == 3 and c.zone == "Europe/Berlin"
    assert c.ladder.delays == (60, 300) and c.valid_until == datetime(2026, 12, 31, 17, tzinfo=timezone.utc)
    assert parse_campaign(c.to_json(), CONFIG) == c


@pytest.mark.parametrize("extra, field", [
    ({"name": ""}, "name"),
    ({"name": 5}, "name"),
    ({"colour": "red"}, "colour"),
    ({"call": "x"}, "call"),
    ({"call": {"b": "user/1000", "id": "x"}}, "call.id"),
    ({"call": {"b": "user/1000", "metadata": {}}}, "call.metadata"),
    ({"call": {"a": "+15551230001", "b": "user/1000"}}, "call.a"),
    ({"call": {"b": "not a number"}}, "call.b"),
    ({"call": {"b": "user/1000", "timeout": 1}}, "call.timeout"),
    ({"contact_party": "c"}, "contact_party"),
    ({"pacing": {"cps": 0}}, "pacing.cps"),
    ({"pacing": {"cps": True}}, "pacing.cps"),
    ({"pacing": {"max_concurrent": 0}}, "pacing.max_concurrent"),
    ({"pacing": {"burst": 1}}, "pacing"),
    ({"calling_window": {"hours": "20:00-09:00"}}, "calling_window.hours"),
    ({"calling_window": {"zone": "Mars/Olympus"}}, "calling_window.zone"),
    ({"retry": {"preset": "nope"}}, "retry.preset"),
    ({"valid_until": "tomorrow"}, "valid_until"),
    ({"valid_until": "2026-12-31T18:00:00"}, "valid_until"),
    ({"notify_url": "ftp://x"}, "notify_url"),
    ({"notify_format": "csv"}, "notify_format"),
])
def test_a_bad_campaign_is_refused_naming_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        campaign(**extra)
    assert refused.value.field == field


def test_the_contact_fills_its_party_keeping_the_templates_options() -> None:
    c = campaign(call={"a": {"timeout": 20}, "b": "user/1000", "variables": {"team": "x"}})
    contact = Contact("r2", ("+15551230001", "+15551230002"), {"crm": "7"}, "+15550000001")
    request = build_request(c, "c" * 32, contact, 3, CONFIG)
    assert [d.number for d in request.a.destinations] == ["+15551230001", "+15551230002"]
    assert request.a.timeout == 20 and request.caller_id_number == "+15550000001"
    assert request.variables == {"team": "x", "crm": "7"}
    assert dict(request.metadata) == {"campaign": "c" * 32, "contact": "r2", "attempt": 3}
    assert request.id == attempt_id("c" * 32, "r2", 3)
    assert attempt_id("c" * 32, "r2", 3) != attempt_id("c" * 32, "r2", 4)


@pytest.mark.parametrize("contact, field", [
    (Contact("r2", ("1000 &bridge(x)",)), "number"),
    (Contact("r2", ("+15551230001",), {"bad name": "x"}), "var_bad name"),
    (Contact("r2", ("+15551230001",), {"ok": "x\ny"}), "var_ok"),
    (Contact("r2", ("+15551230001",), {}, "12ab"), "caller_id"),
])
def test_a_contact_whose_call_cannot_be_placed_is_refused_with_its_row(contact: Contact, field: str) -> None:
    with pytest.raises(RowError) as refused:
        check_contact(campaign(), contact, 7, CONFIG)
    assert (refused.value.row, refused.value.field) == (7, field)


def test_a_number_allowed_by_the_policy_comes_back_in_e164() -> None:
    checked = check_contact(campaign(), Contact("r2", ("+1 (555) 123-0001",)), 2, CONFIG)
    assert checked.numbers == ("+15551230001",)


@pytest.mark.parametrize("data, field", [
    ("x", "contact"),
    ({}, "number"),
    ({"number": "+15551230001", "numbers": ["+15551230001"]}, "numbers"),
    ({"numbers": []}, "number"),
    ({"number": "+15551230001", "id": "a b"}, "id"),
    ({"number": "+15551230001", "variables": {"x": [1]}}, "var_x"),
    ({"number": "+15551230001", "colour": 1}, "colour"),
])
def test_a_bad_json_contact_is_refused(data: object, field: str) -> None:
    with pytest.raises(RowError) as refused:
        parse_contact(data, 4)
    assert (refused.value.row, refused.value.field) == (4, field)


def test_a_json_contact_gets_its_row_as_id_unless_it_has_one() -> None:
    assert parse_contact({"number": "+15551230001"}, 4).id == "r4"
    assert parse_contact({"number": "+15551230001", "id": "crm-9"}, 4).id == "crm-9"


def test_a_csv_header_maps_numbers_id_caller_id_and_variables() -> None:
    header = parse_header(["Number", "number2", "id", "caller_id", "var_first", "city"])
    contact = contact_from_row(header, ["+15551230001", "", "c1", "+15550000001", "Ann", "Oslo"], 2)
    assert contact == Contact("c1", ("+15551230001",), {"first": "Ann", "city": "Oslo"}, "+15550000001")


@pytest.mark.parametrize("header, reason", [
    (["name", "city"], "needs a number column"),
    (["number", ""], "has no name"),
    (["number", "Number"], "appears twice"),
])
def test_a_bad_csv_header_is_refused(header: list[str], reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_header(header)
    assert refused.value.field == "header" and reason in refused.value.reason


def test_a_short_or_numberless_csv_row_is_refused_with_its_row() -> None:
    header = parse_header(["number", "city"])
    with pytest.raises(RowError) as short:
        contact_from_row(header, ["+15551230001"], 5)
    assert (short.value.row, short.value.field) == (5, "row")
    with pytest.raises(RowError) as empty:
        contact_from_row(header, ["", "Oslo"], 6)
    assert (empty.value.row, empty.value.field) == (6, "number")


def test_a_contact_reachable_in_two_countries_waits_for_both_windows() -> None:
    c = campaign(calling_window={"days": "mon-sun", "hours": "09:00-17:00"})
    # Berlin is UTC+1 in December, New York UTC-5: both open only 14:00-16:00 UTC.
    both = Contact("r2", ("+4930123456", "+12125550123"))
    assert set(contact_zones(both)) == {"Europe/Berlin", "America/New_York"}
    at_noon = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
    assert opening(c, both, at_noon) == datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc)
    assert opening(c, Contact("r3", ("+4930123456",)), at_noon) is None
    assert opening(campaign(), both, at_noon) is None  # no window: always open


def test_an_unknown_area_takes_the_campaigns_zone() -> None:
    c = campaign(calling_window={"days": "mon-sun", "hours": "09:00-17:00", "zone": "Asia/Tokyo"})
    assert contact_zones(Contact("r2", ("not-a-number",)), c.zone) == ("Asia/Tokyo",)

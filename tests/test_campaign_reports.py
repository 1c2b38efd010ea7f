"""Campaign delivery reports: one per done contact, through the webhook
outbox (signed, retried, surviving a sender's restart), as JSON or XML."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from eslengine.campaign.model import Contact, parse_campaign
from eslengine.campaign.report import report_body, report_document
from eslengine.store import JobQueue
from eslengine.store.campaigns import CampaignStore
from eslengine.webhooks import Webhooks
from tests.test_webhooks import CONFIG, Receiver, outbox_empty, sender, signed, wait_for


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.stop()


@pytest.fixture
def senders() -> Iterator[list[Webhooks]]:
    started: list[Webhooks] = []
    yield started
    for hooks in started:
        hooks.stop(grace=0)


@pytest.fixture
def store(queue: JobQueue) -> Iterator[CampaignStore]:
    yield CampaignStore(queue.redis, queue.keys, record_ttl=600)


def done_contacts(store: CampaignStore, receiver: Receiver, fmt: str = "json") -> str:
    campaign = parse_campaign({"name": "autumn", "call": {"b": "user/1000"}, "notify_url": receiver.base + "/hook",
                               "notify_format": fmt}, CONFIG)
    campaign_id = "%032x" % int(time.time() * 1e6)
    store.create(campaign_id, campaign)
    store.add_contacts(campaign_id, [Contact("c1", ("+15551230001",), {"crm": "9"}),
                                     Contact("c2", ("+15551230002",))])
    store.act(campaign_id, "start")
    assert store.take(campaign_id, "c1", 0, "call-1", time.time(), 10) == 1
    assert store.outcome(campaign_id, "c1", "call-1", "finish", outcome="connected", cause="NORMAL_CLEARING") == 1
    assert store.outcome(campaign_id, "c1", "call-1", "finish", outcome="connected") == 0  # once
    assert store.drop(campaign_id, ["c2"], "cancelled") == 1
    return campaign_id


def test_each_done_contact_gets_one_signed_report(store: CampaignStore, queue: JobQueue, receiver: Receiver,
                                                  senders: list[Webhooks]) -> None:
    campaign_id = done_contacts(store, receiver)
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 2)
    wait_for(lambda: outbox_empty(queue))
    reports = {json.loads(body)["contact"]["id"]: (json.loads(body), headers) for _, body, headers in receiver.hits}
    first, headers = reports["c1"]
    assert first["event"] == "contact.finished" and first["campaign"] == {"id": campaign_id, "name": "autumn"}
    assert (first["outcome"], first["cause"], first["attempts"], first["last_call"]) == (
        "connected", "NORMAL_CLEARING", 1, "call-1")
    assert first["contact"]["variables"] == {"crm": "9"}
    assert headers["HTTP_X_ESLENGINE_DELIVERY"] == campaign_id + ".c1"
    assert headers["HTTP_X_ESLENGINE_EVENT"] == "contact.finished"
    signed(headers, [b for _, b, _ in receiver.hits if json.loads(b)["contact"]["id"] == "c1"][0])
    assert reports["c2"][0]["outcome"] == "cancelled" and reports["c2"][0]["attempts"] == 0


def test_a_report_is_retried_until_acknowledged_across_a_sender_restart(
        store: CampaignStore, queue: JobQueue, receiver: Receiver, senders: list[Webhooks]) -> None:
    receiver.code = 503
    done_contacts(store, receiver)
    first = sender(senders, queue)
    wait_for(lambda: len(receiver.hits) >= 3)
    first.stop(grace=0)
    receiver.hits.clear()
    receiver.code = 200
    sender(senders, queue)
    wait_for(lambda: outbox_empty(queue))
    assert sorted(json.loads(b)["contact"]["id"] for _, b, _ in receiver.hits) == ["c1", "c2"]


def test_an_xml_report_holds_the_same_tree(store: CampaignStore, queue: JobQueue, receiver: Receiver,
                                           senders: list[Webhooks]) -> None:
    done_contacts(store, receiver, "xml")
    sender(senders, queue)
    wait_for(lambda: len(receiver.hits) == 2)
    trees = [ET.fromstring(body) for _, body, _ in receiver.hits]
    [c1] = [t for t in trees if t.findtext("contact/id") == "c1"]
    assert c1.tag == "report" and c1.findtext("outcome") == "connected"
    assert [n.text for n in c1.findall("contact/numbers/number")] == ["+15551230001"]
    assert c1.find("contact/variables/variable").attrib == {"name": "crm"}  # type: ignore[union-attr]


def test_report_bodies_escape_what_they_carry() -> None:
    contact = {"doc": json.dumps({"id": "c1", "numbers": ["+1"], "variables": {"n<a>me": "a&b\"<"}}),
               "outcome": "failed", "cause": "USER_BUSY", "tries": "3", "retries": "2"}
    document = report_document("c" * 32, "<x>", contact)
    body, content_type = report_body(document, "xml")
    tree = ET.fromstring(body)
    assert content_type == "application/xml" and tree.findtext("campaign/name") == "<x>"
    assert tree.find("contact/variables/variable").attrib["name"] == "n<a>me"  # type: ignore[union-attr]
    assert tree.findtext("contact/variables/variable") == "a&b\"<"
    assert json.loads(report_body(document, "json")[0]) == document

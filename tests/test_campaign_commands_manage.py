"""``eslengine campaign list|contacts|change|delete`` (eslengine.campaign.commands):
the pure lines, and each command run against the real API (Flask's test
client in place of the HTTP connection) on the suite's Redis."""

from __future__ import annotations

import io
import types
from collections.abc import Iterator
from typing import IO, Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from eslengine.campaign.commands import Api, CommandError, answer, change_body, contact_line, run
from eslengine.config import Config
from eslengine.http import create_app
from eslengine.store import JobQueue, Keys, connect

KEY = "k-cli-1"


class ClientApi(Api):
    """The commands' API over Flask's test client: everything but the socket."""

    def __init__(self, client: FlaskClient) -> None:
        super().__init__("http://127.0.0.1:1", KEY)
        self.client = client

    def call(self, method: str, path: str, body: bytes | IO[bytes] | None = None,
             content_type: str = "application/json", length: int | None = None) -> Any:
        reply = self.client.open(path, method=method, data=body, content_type=content_type,
                                 headers={"Authorization": "Bearer " + KEY})
        return answer(reply.status_code, reply.status, reply.get_data())


@pytest.fixture
def app(redis_server: Any, key_prefix: str) -> Iterator[Flask]:
    config = Config(redis_url=redis_server.url, key_prefix=key_prefix, api_keys=frozenset({KEY}),
                    allow_unvalidated_numbers=True)
    client = connect(config.redis_url)
    yield create_app(config, JobQueue(client, Keys(key_prefix)))
    client.close()


def command(app: Flask, action: str, **args: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    namespace = types.SimpleNamespace(action=action, url=None, key=None, **args)
    code = run(namespace, out, err, api=ClientApi(app.test_client()))
    return code, out.getvalue(), err.getvalue()


def make(app: Flask, contacts: int) -> str:
    client, auth = app.test_client(), {"Authorization": "Bearer " + KEY}
    reply = client.post("/v1/campaigns", json={"name": "cli", "call": {"b": "user/1000"}}, headers=auth)
    assert reply.status_code == 201
    campaign_id = str(reply.json["id"])
    for start in range(0, contacts, 1000):
        added = client.post("/v1/campaigns/%s/contacts" % campaign_id, headers=auth, json=[
            {"number": "+1555123%04d" % i, "id": "c%d" % i} for i in range(start, min(contacts, start + 1000))])
        assert added.status_code == 200 and added.json["added"] == min(1000, contacts - start)
    return campaign_id


@pytest.mark.parametrize("contact, line", [
    ({"id": "c1", "state": "queued", "attempts": 0}, "c1                   queued         0 attempt(s)"),
    ({"id": "c2", "state": "retrying", "attempts": 1, "last_cause": "USER_BUSY", "next_due": "2026-12-03T09:00:00Z"},
     "c2                   retrying       1 attempt(s)  last USER_BUSY  next 2026-12-03T09:00:00Z"),
    ({"id": "c3", "state": "done", "attempts": 3, "outcome": "failed", "cause": "NO_ANSWER"},
     "c3                   done           3 attempt(s)  failed NO_ANSWER"),
])
def test_a_contact_is_one_line(contact: dict[str, Any], line: str) -> None:
    assert contact_line(contact) == line


def test_change_builds_the_patch_body_and_refuses_one_that_changes_nothing() -> None:
    assert change_body(2.5, None, None) == {"pacing": {"cps": 2.5}}
    assert change_body(None, 7, "none") == {"pacing": {"max_concurrent": 7}, "calling_window": None}
    assert change_body(None, None, '{"hours": "09:00-17:00"}') == {"calling_window": {"hours": "09:00-17:00"}}
    with pytest.raises(CommandError, match="nothing to change"):
        change_body(None, None, None)
    with pytest.raises(CommandError, match="--window"):
        change_body(None, None, "{nope")


def test_list_contacts_change_and_delete_against_the_api(app: Flask) -> None:
    campaign_id = make(app, 1200)
    assert command(app, "list", state="created")[1] == "%s  created    0/1200 done  cli\n" % campaign_id
    assert command(app, "list", state="running") == (0, "", "")
    code, out, _ = command(app, "contacts", id=campaign_id, state=None)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1200 and lines[0].split() == ["c0", "queued", "0", "attempt(s)"]
    assert lines[-1].split()[0] == "c1199"  # past the first page of 1,000
    code, out, _ = command(app, "change", id=campaign_id, cps=3.0, max_concurrent=None, window=None)
    assert code == 0 and out == '%s created  pacing {"cps": 3.0, "max_concurrent": 10}  window null\n' % campaign_id
    assert command(app, "start", id=campaign_id)[0] == 0
    code, _, err = command(app, "delete", id=campaign_id)
    assert code == 1 and err.startswith("eslengine campaign: error: HTTP 409: a running campaign cannot be deleted")
    assert command(app, "cancel", id=campaign_id)[0] == 0
    assert command(app, "delete", id=campaign_id) == (
        0, "%s deleted (was cancelled, 1,200 contact(s))\n" % campaign_id, "")
    code, _, err = command(app, "contacts", id=campaign_id, state="failed")
    assert code == 1 and err == "eslengine campaign: error: HTTP 404: no campaign with this id\n"
    code, _, err = command(app, "contacts", id=make(app, 1), state="sleeping")
    assert code == 1 and "(field state)" in err and err.count("\n") == 1

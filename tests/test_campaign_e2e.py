"""Campaigns end to end: Redis, the simulator, two workers and the API as
separate processes, driven with ``eslengine campaign`` and over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from eslengine.stack import LocalStack
from eslengine.store import Keys
from eslengine.store.connection import connect
from tests.test_webhooks import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.code = 200
    yield r
    r.server.stop()


@pytest.fixture(scope="module")
def stack(engine_redis_url: str, receiver: Receiver) -> Iterator[LocalStack]:
    # The first party talks 1 s: long enough for the second party's paced turn
    # on a loaded machine (a shorter one hangs up first: ORIGINATOR_CANCEL).
    s = LocalStack(switch_args=["--ring-time", "0.1", "--talk-time", "1.0"], redis_url=engine_redis_url, workers=2,
                   env={"ESLENGINE_KEY_PREFIX": "camp-%s" % uuid.uuid4().hex[:6],
                        "ESLENGINE_WEBHOOK_ALLOW": r"http://127\.0\.0\.1:[0-9]+/hook",
                        "ESLENGINE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32", "ESLENGINE_WEBHOOK_SECRET": "s3"})
    s.start()
    yield s
    s.stop()
    s.cleanup()


def cli(stack: LocalStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESLENGINE_")}
    env.update(ESLENGINE_URL=stack.api_url, ESLENGINE_KEY=stack.api_key)
    return subprocess.run([sys.executable, "-m", "eslengine", "campaign", *args], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_a_campaign_made_uploaded_started_and_watched_from_the_command_line(
        stack: LocalStack, receiver: Receiver, tmp_path: Path) -> None:
    # Under the node's own limit (30 sessions/s), which both workers share.
    document = {"name": "e2e", "call": {"b": "user/1000"}, "pacing": {"cps": 15, "max_concurrent": 8},
                "retry": {"on": ["busy"], "delay": "10s", "max_retries": 0},
                "notify_url": receiver.base + "/hook", "notify_format": "json"}
    (tmp_path / "campaign.json").write_text(json.dumps(document))
    made = cli(stack, "create", str(tmp_path / "campaign.json"))
    assert made.returncode == 0, made.stderr
    campaign_id = made.stdout.strip()
    rows = ["number,id,city"] + ["+1555123%04d,c%d,Oslo" % (i, i) for i in range(60)]
    rows += ["+15551230486,busy,Oslo", "12ab,bad,Oslo"]
    (tmp_path / "contacts.csv").write_text("\n".join(rows) + "\n")
    upload = cli(stack, "upload", campaign_id, str(tmp_path / "contacts.csv"))
    assert upload.returncode == 0, upload.stderr
    assert "rows 62  added 61  refused 1" in upload.stdout
    assert "100%" in upload.stderr and "row 63: number:" in upload.stderr
    assert cli(stack, "start", campaign_id).stdout.strip() == "%s running" % campaign_id
    watched = cli(stack, "watch", campaign_id, "--interval", "0.2")
    assert watched.returncode == 0, watched.stderr
    assert "finished" in watched.stdout.splitlines()[-5]
    code, shown, _ = stack.http("GET", "/v1/campaigns/" + campaign_id)
    assert code == 200 and shown["state"] == "finished"
    assert (shown["counters"]["connected"], shown["counters"]["failed"], shown["calls"]) == (60, 1, 61), (
        shown["counters"], shown["failed_by_cause"])
    assert shown["failed_by_cause"] == {"USER_BUSY": 1}
    # One CDR per call, each call placed once although two workers run.
    client = connect(stack.redis_url)
    keys = Keys(stack.engine_env["ESLENGINE_KEY_PREFIX"])
    cdrs = [f for _, f in client.xrange(keys.cdr) if f["campaign"] == campaign_id]
    assert Counter(c["contact"] for c in cdrs) == Counter({"c%d" % i: 1 for i in range(60)} | {"busy": 1})
    assert all(json.loads(c["variables"]) == {"city": "Oslo"} for c in cdrs)
    # One delivery report per contact.
    deadline = time.monotonic() + 15
    while len({r for r in _reported(receiver, campaign_id)}) < 61:
        assert time.monotonic() < deadline, len(_reported(receiver, campaign_id))
        time.sleep(0.1)
    assert Counter(_reported(receiver, campaign_id)).most_common(1)[0][1] == 1
    client.close()


def _reported(receiver: Receiver, campaign_id: str) -> list[str]:
    out = []
    for _, body, _ in list(receiver.hits):
        report = json.loads(body)
        if report.get("campaign", {}).get("id") == campaign_id:
            out.append(report["contact"]["id"])
    return out


def test_command_line_errors_are_one_line(stack: LocalStack, tmp_path: Path) -> None:
    missing = cli(stack, "show", "0" * 32)
    assert missing.returncode == 1 and missing.stderr.strip().startswith("eslengine campaign: error: HTTP 404")
    (tmp_path / "bad.json").write_text(json.dumps({"name": "x", "call": {"b": "user/1000"}, "pacing": {"cps": 0}}))
    bad = cli(stack, "create", str(tmp_path / "bad.json"))
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        bad.stderr.strip()] and "(field pacing.cps)" in bad.stderr
    nofile = cli(stack, "upload", "0" * 32, str(tmp_path / "nope.csv"))
    assert nofile.returncode == 1 and "cannot read" in nofile.stderr

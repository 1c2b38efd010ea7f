"""Held calls: the first party parks when it answers and the worker
connects the second (eslengine/worker/connect.py)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from eslengine import dialstring
from tests.conftest import RedisServer
from tests.rig import Rig, statuses


def test_held_first_leg_is_connected_by_the_worker(rig: Rig) -> None:
    rig.start_worker()
    job_id = rig.submit(a="+15551230001", b="+15551230002", caller_id_number="+15557770000")
    doc = rig.final(job_id)
    assert doc["status"] == "completed" and doc["b_uuid"]
    record = rig.switch.originates_with("eslengine_job_id", job_id)[0]
    assert record.args.endswith("&park()") and record.variables["park_timeout"] == str(dialstring.PARK_TIMEOUT)
    # The second leg came from the connect extension, after the first answered.
    events = [(name, h.get("Unique-ID")) for name, h in rig.switch.events_for(job_id)]
    assert events.index(("CHANNEL_CREATE", doc["b_uuid"])) > events.index(("CHANNEL_ANSWER", job_id))


def test_a_first_party_whose_second_cannot_be_set_is_hung_up_at_once(redis_server: RedisServer,
                                                                      key_prefix: str) -> None:
    # The ESL user may not send uuid_setvar (an esl-allowed-api without it):
    # the first party, answered and parked, is hung up at once with a cause
    # that says the second party could not be reached, and the record says
    # why; it does not wait out its park_timeout.
    users = {"eslengine@sim": ("pw", frozenset({"originate", "uuid_transfer", "uuid_kill", "uuid_exists",
                                                 "uuid_dump", "hupall", "global_getvar"}), None)}
    rig = Rig(redis_server, key_prefix, users=users)  # no talk time: a leg stays up until hung up
    try:
        rig.start_worker(nodes=(replace(rig.config.nodes[0], user="eslengine@sim", password="pw"),))
        started = time.monotonic()
        job_id = rig.submit(a="+15551230001", b="+15551230002")
        doc = rig.final(job_id, timeout=20)
        assert time.monotonic() - started < 5
        assert (doc["status"], doc["hangup_cause"]) == ("failed", "DESTINATION_OUT_OF_ORDER"), doc
        assert "answered" in statuses(doc)
        assert doc["error"] == "the second party could not be connected: uuid_setvar: -ERR permission denied"
        assert not rig.switch.channels
    finally:
        rig.close()


def test_a_first_party_whose_transfer_fails_is_hung_up_at_once(redis_server: RedisServer, key_prefix: str) -> None:
    # The transfer is a bgapi: the switch accepts it, and its BACKGROUND_JOB
    # says -ERR.
    rig = Rig(redis_server, key_prefix)  # no talk time: a leg stays up until hung up
    api = rig.switch.api

    def refuse_transfers(cmd: str, arg: str, listener: Any) -> str:
        if cmd == "uuid_transfer":
            return "-ERR No such channel!\n"
        return api(cmd, arg, listener)

    rig.switch.api = refuse_transfers  # type: ignore[method-assign]
    try:
        rig.start_worker()
        started = time.monotonic()
        doc = rig.final(rig.submit(a="+15551230001", b="+15551230002"), timeout=20)
        assert time.monotonic() - started < 5
        assert (doc["status"], doc["hangup_cause"]) == ("failed", "DESTINATION_OUT_OF_ORDER"), doc
        assert doc["error"] == "the second party could not be connected: uuid_transfer: -ERR No such channel!"
        assert not rig.switch.channels
    finally:
        rig.close()

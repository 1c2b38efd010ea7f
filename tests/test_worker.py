"""The worker against the simulator and a real Redis, all in this process."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import gevent
import pytest
import redis

from eslengine.calls import parse_request
from eslengine.config import Config, Node
from eslengine.fakeswitch import Scenario
from eslengine.store import GROUP, JobQueue, Keys
from eslengine.worker import ESL_API_COMMANDS, Worker
from tests.conftest import RedisServer
from tests.rig import Rig, statuses, wait_for


def test_call_connects_and_completes(rig: Rig) -> None:
    rig.start_worker()
    job_id = rig.submit(a="+15551230001", b="+15551230002", caller_id_number="+15557770000",
                        caller_id_name="Acme, Support", variables={"campaign": "c 42"})
    doc = rig.final(job_id)
    assert doc["status"] == "completed" and doc["hangup_cause"] == "NORMAL_CLEARING"
    assert statuses(doc) == ["queued", "dialing", "ringing", "answered", "bridged", "completed"]
    assert doc["a_uuid"] == job_id and doc["b_uuid"] and doc["b_uuid"] != job_id
    assert doc["durations"]["talk_seconds"] > 0
    # What the switch received: one originate for this job, with our variables.
    (record,) = rig.switch.originates_with("eslengine_job_id", job_id)
    assert record.variables["origination_caller_id_name"] == "Acme, Support"
    assert record.variables["eslengine_var_campaign"] == "c 42"
    assert record.variables["origination_uuid"] == job_id
    # The stream entry is gone once the outcome is known.
    assert rig.client.xlen(rig.queue.keys.jobs) == 0


def test_b_busy_fails_with_user_busy(rig: Rig) -> None:
    rig.start_worker()
    doc = rig.final(rig.submit(a="+15551230001", b="+15551230486"))
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "USER_BUSY")
    assert "answered" in statuses(doc) and "bridged" not in statuses(doc)


@pytest.mark.parametrize(("a", "cause"), [("+15551230486", "USER_BUSY"), ("+15551230404", "UNALLOCATED_NUMBER"),
                                          ("+15551230503", "NORMAL_TEMPORARY_FAILURE")])
def test_a_leg_failures(rig: Rig, a: str, cause: str) -> None:
    rig.start_worker()
    doc = rig.final(rig.submit(a=a, b="+15551230002"))
    assert (doc["status"], doc["hangup_cause"]) == ("failed", cause)
    assert "answered" not in statuses(doc)


def test_no_answer_ends_at_originate_timeout(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix, scenario=Scenario.from_dict(
        {"rules": [{"match": "777$", "outcome": "no_answer", "after": 0.3}]}))
    try:
        rig.start_worker()
        doc = rig.final(rig.submit(a="+15551230777", b="+15551230002"))
        assert (doc["status"], doc["hangup_cause"]) == ("failed", "NO_ANSWER")
    finally:
        rig.close()


def test_cancel_live_call_hangs_it_up(redis_server: RedisServer, key_prefix: str) -> None:
    rig = Rig(redis_server, key_prefix)  # no talk time: stays up until hung up
    try:
        rig.start_worker()
        job_id = rig.submit(a="+15551230001", b="+15551230002")
        wait_for(lambda: rig.queue.get(job_id)["status"] == "bridged")  # type: ignore[index]
        assert rig.queue.request_cancel(job_id) == "cancelling:bridged"
        doc = rig.final(job_id)
        # It connected: completed (ended by the cancel), not cancelled.
        assert (doc["status"], doc["hangup_cause"], doc["ended_by"]) == ("completed", "ORIGINATOR_CANCEL", "api")
        assert doc["durations"]["talk_seconds"] >= 0 and "failed_party" not in doc
        wait_for(lambda: not rig.switch.channels)
    finally:
        rig.close()


def test_cancel_queued_call_is_never_dialed(rig: Rig) -> None:
    job_id = rig.submit(a="+15551230001", b="+15551230002")
    assert rig.queue.request_cancel(job_id) == "cancelled"
    rig.start_worker()
    follow_up = rig.submit(a="+15551230003", b="+15551230004")
    rig.final(follow_up)
    assert rig.switch.originates_with("eslengine_job_id", job_id) == []
    assert rig.queue.get(job_id)["status"] == "cancelled"  # type: ignore[index]


def test_jobs_pushed_before_any_worker_and_bare_xadd(rig: Rig) -> None:
    early = rig.submit(a="+15551230001", b="+15551230002")
    bare = "8f9b6a1e-3c1d-4e0a-9d55-2f1f1c0b7a10"
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"id": bare, "a": "user/1000", "b": "+15551230002"})})
    rig.start_worker()
    assert rig.final(early)["status"] == "completed"
    doc = rig.final(bare)
    assert doc["status"] == "completed" and doc["a"] == "user/1000"


def test_bare_xadd_job_to_a_refused_number_is_never_dialed(rig: Rig) -> None:
    premium, crashed = str(uuid.uuid4()), str(uuid.uuid4())
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"id": premium, "a": "+19005550123", "b": "user/1000"})})
    # A worker that died between creating this job's record (its policy
    # refused it) and failing it: the entry is delivered again to the next one.
    doc = {"id": crashed, "a": "user/1000", "b": "+19005550199"}
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps(doc)})
    request = parse_request(doc, rig.config, check_policy=False)
    assert "claimed" not in rig.queue.claim(request, None, worker="dead")
    good = rig.submit(a="+15551230001", b="+15551230002")
    rig.start_worker()
    assert rig.final(good)["status"] == "completed"
    for job_id in (premium, crashed):
        final = rig.final(job_id)
        assert (final["status"], final["hangup_cause"]) == ("failed", "CALL_REJECTED"), final
        assert "premium-rate numbers are not allowed" in final["error"]
    assert rig.switch.originates_with("eslengine_job_id", premium) == []
    assert rig.switch.originates_with("eslengine_job_id", crashed) == []
    assert len(wait_for(lambda: len(rig.queue.dead_letters()) == 2 and rig.queue.dead_letters())) == 2


def _refused(rig: Rig, job_id: str, reason: str) -> None:
    final = rig.final(job_id)
    assert (final["status"], final["hangup_cause"]) == ("failed", "CALL_REJECTED"), final
    assert reason in final["error"], final
    assert rig.switch.originates_with("eslengine_job_id", job_id) == []
    assert any(d.get("job_id") == job_id for _, d in wait_for(rig.queue.dead_letters))


def test_the_worker_applies_its_own_policy_to_a_job_a_producer_checked(rig: Rig) -> None:
    # Queued by a producer with laxer settings than the worker's (another
    # process's environment, or none): the worker's own settings decide.
    lax = rig.submit(a="+12025550123", b="+15551230002")
    good = rig.submit(a="+15551230001", b="+15551230002")
    rig.start_worker(blocked_prefixes=("+1202",))
    assert rig.final(good)["status"] == "completed"
    _refused(rig, lax, "+1202... is blocked")


def test_a_bare_xadd_reusing_a_checked_jobs_id_is_checked_itself(rig: Rig) -> None:
    job_id = rig.submit(a="+15551230001", b="+15551230002")
    # As a job waiting for its retry: a queued record, no stream entry. An
    # entry added with its id carries destinations of its own.
    rig.client.xtrim(rig.queue.keys.jobs, maxlen=0)
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"id": job_id, "a": "+19005550123", "b": "user/1000"})})
    rig.start_worker()
    _refused(rig, job_id, "premium-rate numbers are not allowed")
    assert not [r for r in rig.switch.originates if "19005550123" in r.args]


def test_a_bare_xadd_to_a_directory_user_of_another_domain_is_never_dialed(rig: Rig) -> None:
    job_id = str(uuid.uuid4())
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"id": job_id, "a": "user/1000@evil.example.com",
                                                              "b": "+15551230002"})})
    rig.start_worker(user_domains=("pbx.example.com",))
    _refused(rig, job_id, "directory domain evil.example.com is not allowed")


def test_an_attempt_that_never_left_is_placed_again_only_if_the_policy_allows(rig: Rig) -> None:
    # A worker claimed this job (dialing, attempt pending) and died before
    # the originate left; the worker that takes it over would place it again.
    job_id = rig.submit(a="+12025550123", b="+15551230002")
    rig.queue.ensure_group()
    rig.queue.read("dead-worker", 10, 10)
    request = parse_request({"id": job_id, "a": "+12025550123", "b": "+15551230002"}, rig.config)
    assert rig.queue.claim(request, {"originated": "1", "attempt_state": "pending"}, worker="dead-worker")["claimed"]
    rig.start_worker(claim_idle_ms=1, blocked_prefixes=("+1202",))
    _refused(rig, job_id, "+1202... is blocked")


def test_malformed_entries_are_dead_lettered_and_the_worker_goes_on(rig: Rig) -> None:
    rig.client.xadd(rig.queue.keys.jobs, {"job": "{not json"})
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"a": "+1555 &system(rm)", "b": "+15551230002"})})
    rig.client.xadd(rig.queue.keys.jobs, {"other": "x"})
    good = rig.submit(a="+15551230001", b="+15551230002")
    rig.start_worker()
    assert rig.final(good)["status"] == "completed"
    dead = wait_for(lambda: len(rig.queue.dead_letters()) == 3 and rig.queue.dead_letters())
    reasons = sorted(d["reason"] for _, d in dead)
    assert any("not valid JSON" in r for r in reasons)
    assert any("a: must be an E.164" in r for r in reasons)
    assert any("no 'job' field" in r for r in reasons)
    assert len(rig.switch.originates) == 1


def test_a_refused_job_that_names_its_id_gets_a_failed_record_saying_why(rig: Rig) -> None:
    job_id = str(uuid.uuid4())
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"id": job_id, "a": "555 123 0001", "b": "+15551230002"})})
    # An id already in use: that call's record is left as it is.
    taken = rig.submit(a="+15551230001", b="+15551230002")
    rig.client.xadd(rig.queue.keys.jobs, {"job": json.dumps({"id": taken, "a": "nope", "b": "+15551230002"})})
    rig.start_worker()
    doc = wait_for(lambda: rig.queue.get(job_id))
    assert (doc["status"], doc["hangup_cause"]) == ("failed", "CALL_REJECTED")
    assert doc["error"].startswith("invalid job: a: a number without its country code")
    assert [h["status"] for h in doc["history"]] == ["queued", "failed"]
    dead = wait_for(lambda: len(rig.queue.dead_letters()) == 2 and rig.queue.dead_letters())
    assert sorted(d["job_id"] for _, d in dead) == sorted([job_id, taken])
    assert rig.final(taken)["status"] == "completed"
    assert len(rig.switch.originates) == 1


def test_taken_over_job_with_live_channel_is_followed_not_redialed(rig: Rig) -> None:
    # A first worker originated this job, then died before acknowledging it.
    first = rig.start_worker(claim_idle_ms=60_000)
    switch_rig = rig.switch
    rig.switch.board.talk_time = None  # the call stays up
    job_id = rig.submit(a="+15551230001", b="+15551230002")
    wait_for(lambda: rig.queue.get(job_id)["status"] == "bridged")  # type: ignore[index]
    # Simulate the crash: forget the worker without letting it ack or finish,
    # and put the entry back as pending for a dead consumer.
    rig.crash(first)
    rig.client.xadd(rig.queue.keys.jobs, {"job": parse_request({"id": job_id, "a": "+15551230001", "b": "+15551230002"},
                                                                rig.config).dumps()})
    rig.queue.read("dead-worker", 10, 10)
    second = rig.start_worker(claim_idle_ms=1)
    wait_for(lambda: job_id in second.calls, timeout=10)
    assert len(switch_rig.originates_with("eslengine_job_id", job_id)) == 1
    # Hang it up on the switch: the second worker records the end.
    switch_rig.api("uuid_kill", job_id, None)
    doc = rig.final(job_id)
    assert doc["status"] == "completed"
    assert len(switch_rig.originates_with("eslengine_job_id", job_id)) == 1
    assert rig.client.xpending(rig.queue.keys.jobs, GROUP)["pending"] == 0


def test_each_worker_hears_only_of_its_own_calls(redis_server: RedisServer, key_prefix: str) -> None:
    # Two workers on one switch, each with a queue of its own (two
    # applications sharing a switch): each one's event socket carries the
    # channels it placed and the results of its own bgapi commands, none of
    # the other's.
    rig = Rig(redis_server, key_prefix, sps=100, talk_time=1.0)
    try:
        other = JobQueue(rig.client, Keys(key_prefix + "-other"), record_ttl=600)
        first, second = rig.start_worker(), rig.start_worker(key_prefix=key_prefix + "-other")
        heard: dict[str, set[str]] = {first.consumer: set(), second.consumer: set()}
        for worker in (first, second):
            def spy(state: Any, event: Any, worker: Worker = worker, handler: Any = worker._on_event) -> None:
                headers = event.headers
                heard[worker.consumer].add(headers.get("variable_eslengine_job_id") or "bgapi " + headers["Job-UUID"])
                handler(state, event)
            worker._on_event = spy  # type: ignore[method-assign]
        mine = [rig.submit(a="+1555123%04d" % i, b="+1555124%04d" % i) for i in range(8)]
        theirs = [other.enqueue(parse_request({"a": "+1555125%04d" % i, "b": "+1555126%04d" % i}, rig.config))
                  for i in range(8)]
        assert [rig.final(i)["status"] for i in mine] == ["completed"] * 8
        assert [wait_for(lambda i=i: (d := other.get(i)) and d["status"] == "completed" and d)["status"]
                for i in theirs] == ["completed"] * 8
        for worker, jobs in ((first, mine), (second, theirs)):
            calls = {h for h in heard[worker.consumer] if not h.startswith("bgapi ")}
            jobs_heard = {h[6:] for h in heard[worker.consumer] if h.startswith("bgapi ")}
            assert calls == set(jobs)
            assert len(jobs_heard) >= 8 and all(j.startswith(worker._job_tag + "-") for j in jobs_heard)
        placed = [o for o in rig.switch.board.originates if "eslengine_worker=%s" % first.consumer in o.args]
        assert len(placed) == 8
    finally:
        rig.close()


def test_worker_reconnects_after_the_switch_drops_connections(rig: Rig) -> None:
    worker = rig.start_worker()
    assert rig.final(rig.submit(a="+15551230001", b="+15551230002"))["status"] == "completed"
    rig.switch.drop_connections()
    wait_for(lambda: not worker.nodes[0].up, timeout=5)
    wait_for(lambda: worker.nodes[0].up, timeout=10)
    assert rig.final(rig.submit(a="+15551230003", b="+15551230004"))["status"] == "completed"


def test_worker_names_are_checked_and_the_default_is_always_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker's name goes into every originate and into an ESL filter line.
    config = Config(redis_url="redis://127.0.0.1:1/0", nodes=(Node("127.0.0.1", 1, "x"),))
    queue = JobQueue(redis.Redis(), Keys("t"))
    for bad in ("two words", "line\nbreak", "x" * 101, "a,b"):
        with pytest.raises(ValueError):
            Worker(config, queue, consumer=bad)
    assert Worker(config, queue, consumer="host-1.example_9:w@x+y").consumer == "host-1.example_9:w@x+y"
    monkeypatch.setattr("socket.gethostname", lambda: "Büro PC #1 " + "x" * 80)
    name = Worker(config, queue).consumer
    assert name.startswith("B-ro-PC--1-xxx") and len(name) < 100


def test_the_worker_sends_the_api_commands_it_lists_and_no_others(redis_server: RedisServer,
                                                                   key_prefix: str) -> None:
    # ESL_API_COMMANDS is what the ESL user's esl-allowed-api must allow
    # (tests/test_freeswitch_conf.py): each path that sends a command is
    # run here, and the switch notes every api and bgapi command it gets.
    rig = Rig(redis_server, key_prefix, talk_time=0.3, scenario=Scenario.from_dict(
        {"rules": [{"match": "0777$", "outcome": "answer", "talk": 60}]}))
    sent: set[str] = set()
    switch = rig.switch
    api, bgapi = switch.api, switch.bgapi
    refused: set[str] = set()  # jobs whose uuid_setvar the switch refuses

    def api_spy(cmd: str, arg: str, listener: Any) -> str:
        if listener is not None:  # not the api a bgapi runs
            sent.add(cmd)
        if cmd == "uuid_setvar" and arg.split(" ", 1)[0] in refused:
            return "-ERR No such channel!\n"
        return api(cmd, arg, listener)

    def bgapi_spy(cmd: str, arg: str, job: str) -> None:
        sent.add(cmd)
        bgapi(cmd, arg, job)

    switch.api, switch.bgapi = api_spy, bgapi_spy  # type: ignore[method-assign]
    try:
        worker = rig.start_worker()
        # A call the worker connects (its first leg held in park).
        assert rig.final(rig.submit(a="+15551230001", b="+15551230002"))["status"] == "completed"
        # A cancel.
        ringing = rig.submit(a="+15551230408", b="+15551230002", timeout=30)
        wait_for(lambda: rig.queue.get(ringing)["status"] == "ringing")  # type: ignore[index]
        rig.queue.request_cancel(ringing)
        assert rig.final(ringing)["status"] == "cancelled"
        # A live call the worker checks on after its connection comes back.
        live = rig.submit(a="+15551230777", b="+15551240777")
        wait_for(lambda: rig.queue.get(live)["status"] == "bridged")  # type: ignore[index]
        switch.drop_connections()
        wait_for(lambda: not worker.nodes[0].up, timeout=5)
        wait_for(lambda: {"uuid_exists", "uuid_dump"} <= sent, timeout=10)
        switch.board.hupall("NORMAL_CLEARING")
        assert rig.final(live)["status"] == "completed"
        # A call whose second party cannot be connected.
        refused.add(str(uuid.uuid4()))
        rig.submit(id=next(iter(refused)), a="+15551230777", b="+15551240777")
        assert rig.final(next(iter(refused)))["status"] == "failed"
        assert sent == set(ESL_API_COMMANDS)
    finally:
        rig.close()


def test_a_worker_logged_in_as_the_shipped_esl_user_places_connects_and_cancels(redis_server: RedisServer,
                                                                                 key_prefix: str) -> None:
    # The simulator's user has the esl-allowed-api and esl-allowed-events of
    # freeswitch-conf/directory/default/eslengine.xml.
    from tests.test_freeswitch_conf import user_params

    params = user_params()
    users = {"eslengine@sim": ("pw", frozenset(params["esl-allowed-api"].split(",")),
                               frozenset(params["esl-allowed-events"].split(",")))}
    rig = Rig(redis_server, key_prefix, talk_time=0.3, users=users)
    try:
        rig.start_worker(nodes=(replace(rig.config.nodes[0], user="eslengine@sim", password="pw"),))
        doc = rig.final(rig.submit(a="+15551230001", b="+15551230002"))
        assert (doc["status"], doc["hangup_cause"]) == ("completed", "NORMAL_CLEARING"), doc
        ringing = rig.submit(a="+15551230408", b="+15551230002", timeout=30)
        wait_for(lambda: rig.queue.get(ringing)["status"] == "ringing")  # type: ignore[index]
        rig.queue.request_cancel(ringing)
        assert rig.final(ringing)["status"] == "cancelled"
    finally:
        rig.close()


def test_the_log_line_of_a_finished_call_names_the_cause_its_record_has(redis_server: RedisServer, key_prefix: str,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    # max_duration: the switch hangs the second party up ALLOTTED_TIMEOUT,
    # then the first party's leg ends NORMAL_CLEARING. The record's cause is
    # the first hangup's; the worker's last line for the job says the same.
    rig = Rig(redis_server, key_prefix, time_scale=20.0)  # 10 s of max_duration last 0.5 s
    try:
        rig.start_worker()
        with caplog.at_level("INFO", logger="eslengine.worker"):
            job_id = rig.submit(a="+15551230001", b="+15551230002", max_duration=10)
            doc = rig.final(job_id)
            assert (doc["status"], doc["hangup_cause"]) == ("completed", "ALLOTTED_TIMEOUT"), doc
            line = wait_for(lambda: [r.getMessage() for r in caplog.records
                                     if r.getMessage().startswith("job %s: completed" % job_id)])
        assert line == ["job %s: completed cause=ALLOTTED_TIMEOUT" % job_id]
    finally:
        rig.close()


@pytest.mark.parametrize("bridge", ["engine", "switch"])
def test_a_busy_second_party_s_leg_and_cause_are_on_the_record(redis_server: RedisServer, key_prefix: str,
                                                                bridge: str) -> None:
    # The switch created the second party's leg and hung it up USER_BUSY:
    # the record names that leg and its cause, as it does for a leg that
    # answered.
    rig = Rig(redis_server, key_prefix, talk_time=1.0)
    try:
        rig.start_worker(bridge=bridge)
        job_id = rig.submit(a="+15551230001", b="+15551230486")
        doc = rig.final(job_id)
        assert (doc["status"], doc["hangup_cause"]) == ("failed", "USER_BUSY")
        (b_leg,) = [h["Unique-ID"] for name, h in rig.switch.events_for(job_id)
                    if name == "CHANNEL_CREATE" and h.get("variable_eslengine_role") == "second"]
        assert (doc["b_uuid"], doc["b_hangup_cause"]) == (b_leg, "USER_BUSY"), doc
        assert doc["a_uuid"] == job_id and doc["a_hangup_cause"]
    finally:
        rig.close()


def test_a_refused_job_tells_its_callback_it_failed(rig: Rig, capfd: pytest.CaptureFixture[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from gevent.pywsgi import WSGIServer

    received: list[dict[str, Any]] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        received.append(json.loads(environ["wsgi.input"].read()))
        start_response("204 No Content", [])
        return []

    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
    server.start()
    try:
        hooks = {"webhook_allow": (r"http://127\.0\.0\.1:[0-9]+/hook",), "webhook_allow_networks": ("127.0.0.1/32",)}
        rig.config = Config(**{**rig.config.__dict__, **hooks})
        job_id = rig.submit(a="+12025550123", b="+15551230002",
                            callback_url="http://127.0.0.1:%d/hook" % server.server_port)
        rig.start_worker(blocked_prefixes=("+1202",))
        _refused(rig, job_id, "+1202... is blocked")
        wait_for(lambda: any(r["event"] == "call.failed" and r["call"]["id"] == job_id for r in received))
        gevent.sleep(0.2)
        # Nothing in the worker failed on the way (a greenlet's error is
        # printed by gevent's hub or logged, not raised here).
        assert "Traceback" not in capfd.readouterr().err
        assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info]
    finally:
        server.stop()

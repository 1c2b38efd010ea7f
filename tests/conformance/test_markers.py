"""The attempt markers (dialstring.marker_variables) on the real switch and
on the simulator: the engine's originate, sent as the engine sends it,
leaves ``up;<uuid>`` in mod_db once its first leg exists and
``end;<cause>;<answer_epoch>;<bridge_epoch>;<last_bridge_hangup_cause>;<uuid>``
once it hangs up, readable and removable by the shipped least-privilege
ESL user (``db`` in its esl-allowed-api)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from eslengine import dialstring
from eslengine.calls import parse_request
from eslengine.config import Config
from eslengine.dialstring import Marker, parse_marker
from eslengine.fakeswitch import FakeSwitch

from .eventsocket import EventSocket
from .switch import RealSwitch

GATEWAY = "selfgw"
SIM_PASSWORD = "pw-markers"
CONFIG = Config(allow_unvalidated_numbers=True, gateway=GATEWAY, route_template="sofia/gateway/{gateway}/{e164}")


@pytest.fixture(scope="module")
def simulator(real_switch: RealSwitch) -> Iterator[FakeSwitch]:
    sim = FakeSwitch(("127.0.0.1", 0), SIM_PASSWORD, **real_switch.settings.fakeswitch_kwargs())
    sim.start()
    yield sim
    sim.stop()


def _poll(read: Callable[[], str], done: Callable[[str], bool], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        reply = read()
        if done(reply) or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def _shape(marker: Marker | None, job_id: str) -> dict[str, Any] | None:
    if marker is None:
        return None
    return {"ended": marker.ended, "cause": marker.cause, "answered": marker.answered, "bridged": marker.bridged,
            "bridge_cause": marker.bridge_cause, "first_leg": marker.uuid == job_id}


def _markers_of(start: Callable[[str], None], api: Callable[[str], str], a: str, b: str) -> dict[str, Any]:
    """Place one engine originate (``&bridge``, attempt 2) and read its
    marker: while the first leg is up, once the call is over, after a
    delete; and the marker of an attempt never placed."""
    request = parse_request({"a": a, "b": b}, CONFIG)
    job_id = request.id
    select = dialstring.marker_select_command(job_id, 2)
    before = api(dialstring.marker_select_command(job_id, 1))
    start(dialstring.originate_command(request, CONFIG, 2, worker="conformance"))
    up = _poll(lambda: api(select), lambda r: parse_marker(r) is not None, 10.0)
    end = _poll(lambda: api(select), lambda r: r.startswith("end;"), 20.0)
    deleted = api(dialstring.marker_delete_command(job_id, 2))
    return {"before": before, "first": _shape(parse_marker(up), job_id), "last": _shape(parse_marker(end), job_id),
            "delete": deleted, "after_delete": api(select), "never_placed": api(dialstring.marker_select_command(
                job_id, 3))}


@pytest.mark.parametrize(("a", "b"), [("+15551230001", "+15551230002"), ("+15551230486", "+15551230002"),
                                      ("+15551230001", "+15551230486")])
def test_the_originate_leaves_its_marker_as_the_engine_reads_it(real_switch: RealSwitch, simulator: FakeSwitch,
                                                                 a: str, b: str) -> None:
    with real_switch.connect() as conn:  # the shipped least-privilege user
        real = _markers_of(real_switch.bgapi_start, lambda c: conn.api(c), a, b)
    with EventSocket("127.0.0.1", simulator.address[1]) as conn:
        conn.connect()
        assert conn.auth(SIM_PASSWORD).ok
        sim = _markers_of(lambda command: simulator.board.spawn(simulator.bgapi, "originate",
                                                                command[len("originate "):], str(uuid.uuid4())),
                          lambda c: conn.api(c), a, b)
    if a.endswith("486"):
        # Busy at once: whether a reading catches the leg up is a matter of timing.
        real.pop("first"), sim.pop("first")
    if not (a.endswith("486") or b.endswith("486")):
        # A bridged call whose second party hung up: the real switch's first
        # leg has no last_bridge_hangup_cause yet when its hangup hook runs,
        # the simulator's has; the engine does not read it for a bridged call.
        for found in (real, sim):
            found["last"].pop("bridge_cause")
    assert real == sim, "%r != %r" % (real["last"], sim["last"])
    # An empty API output comes over the event socket as "-ERR no reply".
    assert real["before"] == real["after_delete"] == real["never_placed"] == "-ERR no reply\n"
    assert real["delete"] == "+OK"
    last = real["last"]
    assert last is not None and last["ended"] and last["first_leg"]
    if a.endswith("486"):
        assert (last["cause"], last["answered"], last["bridged"]) == ("USER_BUSY", False, False)
    elif b.endswith("486"):
        assert (last["answered"], last["bridged"], last["bridge_cause"]) == (True, False, "USER_BUSY")
    else:
        assert (last["cause"], last["answered"], last["bridged"]) == ("NORMAL_CLEARING", True, True)
        assert real["first"] == {"ended": False, "cause": "", "answered": False, "bridged": False,
                                 "bridge_cause": "", "first_leg": True}


def test_without_nested_vars_the_switch_refuses_the_hangup_hook(real_switch: RealSwitch) -> None:
    # Why the engine sets origination_nested_vars: FreeSWITCH drops a ${...}
    # value from an originate's variables otherwise ("Invalid data").
    request = parse_request({"a": "+15551230486", "b": "+15551230002"}, CONFIG)
    command = dialstring.originate_command(request, CONFIG, 1).replace("origination_nested_vars=true,", "")
    real_switch.bgapi(command)
    with real_switch.connect() as conn:
        reply = _poll(lambda: conn.api(dialstring.marker_select_command(request.id, 1)),
                      lambda r: r.startswith("end;"), 2.0)
    assert reply == "-ERR no reply\n"

"""Fixtures of the real-switch conformance suite.

The suite runs only with ``ESLENGINE_CONFORMANCE=1`` (``make conformance``)
and a FreeSWITCH under ``$ESLENGINE_FREESWITCH_PREFIX``; otherwise every
test in this directory is skipped from one place, so ``pytest -ra`` prints
one line saying why. Every test here carries the ``realswitch`` marker
(``-m "not realswitch"`` leaves them out).

``real_switch`` (session): one started ``switch.RealSwitch``, stopped by its
PID when the session ends. After each test that used it, every channel
still up is hung up, so calls never leak from one test into the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .switch import RealSwitch, SwitchSettings, disabled_reason

HERE = Path(__file__).resolve().parent

_started: list[RealSwitch] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "realswitch: runs against a real FreeSWITCH the suite starts (make conformance)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.realswitch)


def skip_unless_enabled() -> None:
    reason = disabled_reason()
    if reason is not None:
        pytest.skip(reason)


class _SuiteOff(pytest.File):
    """Stands for the whole directory when the suite is off: one test that
    skips, the one line ``-ra`` prints (a collection-time skip alone would
    leave pytest with no tests, exit status 5)."""

    def collect(self) -> list[pytest.Item]:
        return [_SuiteOffItem.from_parent(self, name="conformance")]


class _SuiteOffItem(pytest.Item):
    def runtest(self) -> None:
        skip_unless_enabled()

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, "real-switch conformance suite"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent == HERE and collection_path.name.startswith("test_") and disabled_reason():
        return True
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path == HERE / "conftest.py" and disabled_reason():
        return _SuiteOff.from_parent(parent, path=file_path)
    return None


@pytest.fixture(autouse=True)
def _realswitch_enabled(request: pytest.FixtureRequest) -> Iterator[None]:
    skip_unless_enabled()
    yield
    if "real_switch" in request.fixturenames and _started:
        _started[0].hangup_all()


@pytest.fixture(scope="session")
def real_switch() -> Iterator[RealSwitch]:
    skip_unless_enabled()
    switch = RealSwitch(SwitchSettings())
    switch.start()
    _started.append(switch)
    try:
        yield switch
    finally:
        switch.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.failed and _started and "real_switch" in getattr(item, "fixturenames", ()):
        report.sections.append(("freeswitch.log (last lines)", _started[0].log_tail(80)))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The switch that ran, then the scenario table: each scenario's outcome
    on the simulator and on the real switch, and what was compared ("all":
    records, legs, causes, applications, what the called side received;
    "record": the records)."""
    import sys

    for switch in _started:
        terminalreporter.write_line(
            "real switch: %s started in %.1fs (event socket 127.0.0.1:%d, SIP carrier %d / callee %d)"
            % (switch.binary, switch.startup_seconds, switch.esl_port, switch.ports.carrier_sip,
               switch.ports.callee_sip))
    module = sys.modules.get("tests.conformance.test_scenarios")
    results = getattr(module, "RESULTS", None)
    if not results:
        return
    width = max(len(r[0]) for r in results)
    terminalreporter.write_sep("-", "scenarios: simulator | FreeSWITCH")
    for name, sim, real, agreed in results:
        terminalreporter.write_line("%-*s  %-52s  %-52s  %s" % (width, name, sim, real, agreed))

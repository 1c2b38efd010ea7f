"""The "call me" widget in a real browser: headless Chromium (Debian's
chromium and chromium-driver, driven by selenium) loads a page on one
127.0.0.1 origin that embeds the widget from the API on another, with the
API, a worker and the simulator running as processes. A visitor types a
number, clicks, and reads the call's status as the simulator's outcome
convention makes it: connected, busy, no answer; the validator's words for
a number that is none; the rate-limit text once the per-address limit is
reached. `make test` installs the browser (make browser)."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eslengine.demo import PageServer, page_handler
from eslengine.stack import LocalStack, free_port
from tests.conftest import RedisServer

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):  # `make test` installs both (make browser)
    pytest.skip("no chromium/chromedriver: run `make browser` (Debian's chromium and chromium-driver)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SECRET = "widget-browser-" + "x" * 32
PER_IP = 5

STATUS = "[data-eslengine-widget] [role=status]"


@pytest.fixture(scope="module")
def site(redis_server: RedisServer) -> Iterator[dict[str, Any]]:
    page_port = free_port()
    stack = LocalStack(switch_args=["--ring-time", "0.3", "--talk-time", "3", "--time-scale", "5"],
                       redis_url=redis_server.url,
                       env={"ESLENGINE_KEY_PREFIX": "widget-%s" % uuid.uuid4().hex[:6],
                            "ESLENGINE_WIDGET_SECRET": SECRET, "ESLENGINE_DEFAULT_REGION": "US"})
    stack.start()
    server = None
    try:
        def make(path: str, body: dict[str, Any]) -> str:
            code, doc, _ = stack.http("POST", path, body)
            assert code == 201, doc
            return str(doc["id"])

        account = make("/v1/accounts", {"name": "shop"})
        user = make("/v1/accounts/%s/users" % account, {"name": "Ann", "endpoint": "user/1000"})
        c2c = make("/v1/accounts/%s/clicktocall" % account, {
            "name": "Sales", "extension": "user:" + user, "auth_required": False, "timeout": 5,
            "per_ip_per_hour": PER_IP, "per_contact_per_hour": 3,
            "widget": {"origins": ["http://127.0.0.1:%d" % page_port], "region": "US"}})
        html = ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head><body>'
                '<h1>Talk to us</h1><div data-eslengine-widget></div>'
                '<script src="%s/v1/widget/%s/%s/widget.js" async></script></body></html>'
                % (stack.api_url, account, c2c)).encode()
        server = PageServer(("127.0.0.1", page_port), page_handler(html))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield {"stack": stack, "page": "http://127.0.0.1:%d/" % page_port, "account": account, "c2c": c2c}
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        stack.stop()
        stack.cleanup()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=800,600", "--disable-background-networking", "--disable-component-update",
                "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(browser: Any, tmp_path: Path, name: str) -> None:
    """Keep what the visitor sees: in the test's directory, and in
    $WIDGET_SCREENSHOTS when set."""
    browser.save_screenshot(str(tmp_path / (name + ".png")))
    keep = os.environ.get("WIDGET_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        browser.save_screenshot(os.path.join(keep, name + ".png"))


class Visitor:
    def __init__(self, browser: Any, url: str) -> None:
        self.browser = browser
        browser.get(url)
        WebDriverWait(browser, 15).until(lambda b: self._button_text() == "Call me")

    def _button_text(self) -> str:
        found = self.browser.find_elements(By.CSS_SELECTOR, "[data-eslengine-widget] button")
        return str(found[0].text) if found else ""

    def call(self, number: str) -> None:
        field = self.browser.find_element(By.CSS_SELECTOR, "[data-eslengine-widget] input[type=tel]")
        field.clear()
        field.send_keys(number)
        self.browser.find_element(By.CSS_SELECTOR, "[data-eslengine-widget] button").click()

    def status(self) -> str:
        return str(self.browser.find_element(By.CSS_SELECTOR, STATUS).text)

    def wait_for(self, *texts: str, timeout: float = 30) -> list[str]:
        """Every status text shown until one of ``texts``; the texts seen."""
        seen: list[str] = []

        def done(_: Any) -> bool:
            text = self.status()
            if not seen or seen[-1] != text:
                seen.append(text)
            return text in texts

        try:
            WebDriverWait(self.browser, timeout, poll_frequency=0.05).until(done)
        except Exception as exc:
            raise AssertionError("status never became %r; seen %r" % (texts, seen)) from exc
        return seen


def test_the_form_is_labelled_and_keyboard_usable(site: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    Visitor(browser, site["page"])
    field = browser.find_element(By.CSS_SELECTOR, "[data-eslengine-widget] input")
    label = browser.find_element(By.CSS_SELECTOR, "[data-eslengine-widget] label")
    assert label.get_attribute("for") == field.get_attribute("id") and label.text == "Your phone number"
    assert field.get_attribute("type") == "tel" and field.get_attribute("autocomplete") == "tel"
    status = browser.find_element(By.CSS_SELECTOR, STATUS)
    assert status.get_attribute("aria-live") == "polite"
    assert field.get_attribute("aria-describedby") == status.get_attribute("id")
    screenshot(browser, tmp_path, "widget-idle")


def test_a_visitor_is_called_and_connected(site: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    visitor = Visitor(browser, site["page"])
    visitor.call("(555) 123-0101")
    before = visitor.wait_for("Connected")
    screenshot(browser, tmp_path, "widget-connected")
    visitor.wait_for("Call ended. Thank you!")
    # The extension (Sales) is rung first, then the visitor.
    assert before[-3:] == ["Connecting you to Sales\u2026", "Calling you\u2026", "Connected"], before


def test_a_busy_line_says_so(site: dict[str, Any], browser: Any, tmp_path: Path) -> None:
    visitor = Visitor(browser, site["page"])
    visitor.call("555-123-0486")
    visitor.wait_for("Line busy \u2014 try again in a minute")
    screenshot(browser, tmp_path, "widget-busy")


def test_no_answer_says_so(site: dict[str, Any], browser: Any) -> None:
    visitor = Visitor(browser, site["page"])
    visitor.call("+1 555 123 0408")
    visitor.wait_for("No answer \u2014 try again in a minute", timeout=40)


def test_a_number_that_is_none_shows_the_validators_words(site: dict[str, Any], browser: Any) -> None:
    visitor = Visitor(browser, site["page"])
    visitor.call("12")
    # The server's validation message, as the 422 says it.
    visitor.wait_for("a phone number: digits, spaces, dashes, dots, brackets and +", timeout=15)
    visitor.call("555 12")
    WebDriverWait(browser, 15).until(lambda b: "phone number" in visitor.status()
                                     and not visitor.status().startswith("a phone number"))
    field = browser.find_element(By.CSS_SELECTOR, "[data-eslengine-widget] input")
    assert field.get_attribute("aria-invalid") == "true"


def test_past_the_per_address_limit_the_visitor_is_told_to_wait(site: dict[str, Any], browser: Any) -> None:
    # The calls above used 3 of the resource's 5 an hour from 127.0.0.1 (the
    # invalid numbers never counted); two more are placed, the next is refused.
    visitor = Visitor(browser, site["page"])
    for number in ("555 123 0102", "555 123 0103"):
        visitor.call(number)
        visitor.wait_for("Call ended. Thank you!")
    visitor.call("555 123 0104")
    visitor.wait_for("Too many calls for now \u2014 try again later")
    code, doc, _ = site["stack"].http(
        "GET", "/v1/accounts/%s/clicktocall/%s/widget/refusals" % (site["account"], site["c2c"]))
    assert code == 200 and doc["refusals"]["rate_limited"] == 1 and doc["refusals"]["invalid"] == 2


def test_the_widget_demo_serves_a_page_a_visitor_can_use(browser: Any) -> None:
    import re
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "eslengine", "demo", "--widget", "--stop-after", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL)
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.match(r"Open the sample page: (http://127\.0\.0\.1:\d+/)$", line.strip())
            if match:
                url = match.group(1)
                break
        assert url is not None, "the demo printed no page URL"
        visitor = Visitor(browser, url)
        visitor.call("555 123 0199")
        visitor.wait_for("Connected")
    finally:
        proc.terminate()  # the demo stops what it started (SIGTERM ends the sleep like Ctrl-C)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

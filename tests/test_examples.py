"""The examples in examples/ against a running engine (Redis, the
simulator, a worker and the API as processes): the "call me back" site, and
the Node and PHP snippets."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from eslengine.apikeys import KeyStore
from eslengine.stack import LocalStack
from tests.conftest import RedisServer

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer) -> Iterator[LocalStack]:
    s = LocalStack(switch_args=["--ring-time", "0.2", "--talk-time", "0.5"], redis_url=redis_server.url,
                   env={"ESLENGINE_KEY_PREFIX": "ex-%s" % uuid.uuid4().hex[:6]})
    s.start()
    yield s
    s.stop()
    s.cleanup()


@pytest.fixture(scope="module")
def client_key(stack: LocalStack) -> str:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    _, token = KeyStore(client, stack.engine_env["ESLENGINE_KEY_PREFIX"]).create("site", ("place", "read"))
    client.close()
    return token


def _site(stack: LocalStack, key: str) -> Any:
    spec = importlib.util.spec_from_file_location("callback_site", EXAMPLES / "callback_site" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.create_app(base=stack.api_url, key=key, sales="+15551230002", region="US").test_client()


def _follow(site: Any, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        answer = site.get(path + "/status").get_json()
        if answer["final"] or time.monotonic() > deadline:
            return answer  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_the_callback_site_rings_a_visitor_typed_number_and_shows_progress(stack: LocalStack,
                                                                          client_key: str) -> None:
    site = _site(stack, client_key)
    form = site.get("/").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    placed = site.post("/call-me", data={"number": "(555) 123-0001", "token": token})
    assert placed.status_code == 303
    path = placed.headers["Location"]
    # The same form sent again (a double click) rings once: the same call.
    assert site.post("/call-me", data={"number": "(555) 123-0001", "token": token}).headers["Location"] == path
    assert 'role="status"' in site.get(path).get_data(as_text=True)
    assert _follow(site, path) == {"status": "completed", "final": True, "words": "Thanks for calling."}


def test_the_callback_site_explains_a_refused_number_and_a_busy_line(stack: LocalStack, client_key: str) -> None:
    site = _site(stack, client_key)
    refused = site.post("/call-me", data={"number": "555", "token": "t-short"})
    assert refused.status_code == 400
    assert "We cannot call that number: not a possible phone number in region US." in refused.get_data(as_text=True)
    busy = site.post("/call-me", data={"number": "555-123-0486", "token": "t-busy"})
    assert _follow(site, busy.headers["Location"])["words"] == "Your line was busy. Try again in a minute."


@pytest.mark.parametrize("runtime", ["node", "php"])
def test_the_snippets_place_a_call_and_follow_it(stack: LocalStack, client_key: str, runtime: str) -> None:
    program = shutil.which(runtime)
    if program is None:
        pytest.skip("%s is not installed (make test installs it)" % runtime)
    script = EXAMPLES / ("node/place_call.mjs" if runtime == "node" else "php/place_call.php")
    env = {"PATH": os.environ.get("PATH", ""), "ESLENGINE_URL": stack.api_url, "ESLENGINE_KEY": client_key}
    done = subprocess.run([program, str(script), "+15551230001", "+15551230002"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert re.fullmatch(r"queued [0-9a-f-]{36}: dialing \+15551230001 then \+15551230002", lines[0]), lines
    assert lines[-1] == "completed NORMAL_CLEARING"
    refused = subprocess.run([program, str(script), "555 123 0001", "+15551230002"], env=env, capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 1 and refused.stderr.startswith("refused (422): a a number without its country code")

# eslengine — make demo | make test
# Everything runs from a private virtualenv (.venv). Debian's redis-server is
# installed when no redis-server binary is on PATH; a Redis the user already
# runs is never touched (tests and the demo start their own on a free port).

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-stamp
SUDO    = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup redis-server example-runtimes browser wrk demo lint test test-redis-ha bench bench-quick chaos clean

all: test

setup: $(STAMP) redis-server

$(VENV)/bin/python:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null \
	  || { echo "installing python3-venv"; $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python setup.cfg pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian's redis-server (not started as a service by this Makefile)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# The interpreters the examples' tests run the Node and PHP snippets with.
example-runtimes:
	@command -v node >/dev/null 2>&1 && command -v php >/dev/null 2>&1 || { \
	  echo "installing Debian's nodejs and php-cli (for the examples' tests)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $$(command -v node >/dev/null 2>&1 || echo nodejs) $$(command -v php >/dev/null 2>&1 || echo php-cli); }

# Headless Chromium and its driver, for the widget's browser tests
# (tests/test_widget_browser.py, driven by selenium).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium and chromium-driver (for the widget's browser tests)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  echo "installing Debian's wrk (HTTP load generator for the benchmarks)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }

# Benchmarks print a table and write bench/results.json; exit 1 when a target is missed.
bench: setup wrk
	$(PY) -m bench

bench-quick: setup wrk
	$(PY) -m bench --quick

demo: setup
	$(VENV)/bin/eslengine demo

# ruff over the code, tests, benchmarks and examples; mypy over the package,
# strictly over its pure modules (setup.cfg [mypy-...]).
lint: setup
	$(PY) -m ruff check eslengine tests bench examples
	$(PY) -m mypy

test: setup example-runtimes browser lint
	$(PY) -m pytest -q
	ESLENGINE_TEST_REDIS=cluster $(PY) -m pytest -q -m engine_redis
	ESLENGINE_TEST_REDIS=cluster ESLENGINE_REDIS_SHARDS=3 $(PY) -m pytest -q tests/test_e2e.py tests/test_shards_e2e.py

# Redis Sentinel and Redis Cluster: the failover test (the primary holding
# the engine's keys is killed mid-run, behind Sentinels and in a cluster), then
# every end-to-end test whose stack uses the engine_redis_url fixture, on a
# Redis Cluster of three primaries. `make test` runs both (the first within
# its whole run).
test-redis-ha: setup
	$(PY) -m pytest -q tests/test_redis_failover.py
	ESLENGINE_TEST_REDIS=cluster $(PY) -m pytest -q -m engine_redis
	ESLENGINE_TEST_REDIS=cluster ESLENGINE_REDIS_SHARDS=3 $(PY) -m pytest -q tests/test_e2e.py tests/test_shards_e2e.py

# The real-switch conformance suite (tests/conformance): starts a private
# FreeSWITCH, bound to 127.0.0.1 only, from `make conformance PREFIX=<dir>`
# or $ESLENGINE_FREESWITCH_PREFIX (default ~/.cache/eslengine/freeswitch).
# Without a build there it skips with one line. A PREFIX from the
# environment (set by some distributions) is not used.
.PHONY: conformance
conformance: setup
	ESLENGINE_CONFORMANCE=1 $(if $(filter command line,$(origin PREFIX)),ESLENGINE_FREESWITCH_PREFIX='$(PREFIX)') \
	  $(PY) -m pytest -q tests/conformance

chaos: setup
	$(PY) -m bench.chaos

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache

# streamfleet developer entry points. `make help` lists them.
# Component-specific targets live in mk/*.mk, one file per component.

PY      := .venv/bin/python
PIP     := .venv/bin/pip
DEB_PACKAGES := redis-server redis-tools nginx libnginx-mod-http-lua coturn chromium lua-check wrk prometheus
STAMP   := .venv/.installed-$(shell cat pyproject.toml requirements/dev.lock | sha1sum | cut -c1-12)

.PHONY: help setup test test-unit test-integration test-e2e lint lint-lua fmt bench-broker bench-api bench-fleet bench-queue clean
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  make %-26s %s\n", $$1, $$2}'

setup: $(STAMP) ## install Debian packages (when root and missing), create .venv, install streamfleet with test extras
	@bash scripts/check-system.sh

$(STAMP): pyproject.toml requirements/dev.lock
	@bash scripts/install-debian-packages.sh $(DEB_PACKAGES)
	@test -x $(PY) || python3 -m venv .venv
	@echo "==> installing the locked dev dependencies and streamfleet into .venv (first time: ~2 min)"
	@$(PIP) install -q --disable-pip-version-check --require-hashes -r requirements/dev.lock
	@$(PIP) install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f .venv/.installed-* && touch $(STAMP)

test: setup lint ## the one gate: lint, then the whole suite (unit, integration, e2e) against real servers
	$(PY) -m pytest --durations=15 tests

test-unit: setup ## unit tests only (no I/O)
	$(PY) -m pytest tests/unit

test-integration: setup ## integration tests (real Redis, nginx, coturn, moto)
	$(PY) -m pytest tests/integration

test-e2e: setup ## whole-stack and browser tests
	$(PY) -m pytest tests/e2e

lint: setup lint-lua ## ruff (lint + format check), mypy strict, luacheck over every Lua file
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# Every Lua file: the router (std ngx_lua), the wrk script, and the Redis
# scripts as Redis runs them (preludes prepended; scripts/lint_redis_lua.py).
lint-lua: setup ## luacheck over every Lua file (router, wrk script, Redis scripts)
	cd nginx_lua/lua && luacheck --no-color .
	cd bench && luacheck --no-color .
	$(PY) scripts/lint_redis_lua.py

fmt: setup ## apply ruff formatting and safe fixes
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench-broker: setup ## broker assign+end throughput vs redis-benchmark EVALSHA; last line is JSON
	$(PY) bench/broker.py

clean: ## remove the venv, caches and build output
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache dist build

-include mk/*.mk

bench-queue: setup ## 2,000 waiting clients' event streams on one control plane, line still and moving, vs. none open: Redis calls and CPU per stream; last line is JSON
	$(PY) bench/queue_feed.py $(BENCH_ARGS)

bench-api: setup ## session API create+delete pairs (assigned vs queued, pool of attested heartbeating agents) vs. a no-op aiohttp handler (wrk); BENCH_ARGS=--event-loop=asyncio; last line is JSON
	$(PY) bench/api.py $(BENCH_ARGS)

bench-fleet: setup ## 1,000/3,000/10,000 attested agents heartbeating + 50 creates/s for 60 s each: heartbeat/create p99, background pass, CPU; BENCH_ARGS=--redis=cluster for per-shard CPU; last line is JSON
	$(PY) bench/fleet.py $(BENCH_ARGS)

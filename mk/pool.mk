# Warm pools: pool manager and the launch-day simulator (issue 6).
.PHONY: simulate-launch-day launch-day-live test-pool
LIVE_POLICY ?= buffer

simulate-launch-day: setup ## simulate a launch day for every pool policy; PNG+JSON in simulators/out, last line is JSON
	$(PY) -m streamfleet.cli simulate launch-day --out simulators/out

launch-day-live: setup ## replay the launch day live against a local stack (~10 min; LIVE_POLICY=static|buffer|predictive); PNG+JSON in simulators/out/live, last line is JSON
	$(PY) -m streamfleet.cli simulate launch-day --live --policy $(LIVE_POLICY) --out simulators/out

test-pool: setup ## pool manager and simulator tests (unit + moto integration)
	$(PY) -m pytest tests/unit/pool tests/integration/pool

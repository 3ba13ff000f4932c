# Warm pools: pool manager and the launch-day simulator (issue 6).
.PHONY: simulate-launch-day test-pool

simulate-launch-day: setup ## simulate a launch day for every pool policy; PNG+JSON in simulators/out, last line is JSON
	$(PY) -m streamfleet.cli simulate launch-day --out simulators/out

test-pool: setup ## pool manager and simulator tests (unit + moto integration)
	$(PY) -m pytest tests/unit/pool tests/integration/pool

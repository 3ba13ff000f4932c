# The chaos run (issue 14): faults injected into a local stack with control-plane replicas.
# Included by the Makefile. The last line of each run is one JSON object.
# CHAOS_ARGS passes options on, e.g. `make chaos CHAOS_ARGS='--faults redis_restart,mixed'`.
.PHONY: chaos chaos-quick
CHAOS_ARGS ?=

chaos: setup ## chaos run: every fault one at a time, then mixed, on 2 regions + 3 replicas (~8 min); last line is JSON
	$(PY) bench/chaos.py $(CHAOS_ARGS)

chaos-quick: setup ## chaos run --quick: 1 region, 2 replicas, replica kill -9 and agent kill (~2 min); last line is JSON
	$(PY) bench/chaos.py --quick $(CHAOS_ARGS)

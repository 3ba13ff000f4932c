# The chaos run (issue 14): faults injected into a local stack with control-plane replicas.
# Included by the Makefile. The last line of each run is one JSON object.
.PHONY: chaos chaos-quick

chaos: setup ## chaos run: every fault one at a time, then mixed, on 2 regions + 3 replicas (~10 min); last line is JSON
	$(PY) bench/chaos.py

chaos-quick: setup ## chaos run --quick: 1 region, 2 replicas, replica kill -9 and agent kill (~1.5 min); last line is JSON
	$(PY) bench/chaos.py --quick

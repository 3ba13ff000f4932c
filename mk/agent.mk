# Regional data plane: instance agent, renderer stub, coturn (issue 4). Included by the Makefile.
.PHONY: test-agent bench-first-frame

test-agent: setup ## agent tests: unit (pure lifecycle, codecs) + real agent, stub renderer, coturn, aiortc player
	$(PY) -m pytest tests/unit/agent tests/integration/agent

bench-first-frame: setup ## 30 sessions POST /v1/sessions -> first decoded frame via coturn relay, then input-to-frame; last line is JSON
	$(PY) bench/first_frame.py

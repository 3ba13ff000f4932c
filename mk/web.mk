# Web pages (configurator, status), browser end-to-end tests, `streamfleet status` (issue 7).
# Included by the Makefile.
.PHONY: test-web bench-first-frame-stack

test-web: setup ## browser tests (system Chromium) of the configurator and status pages on real `streamfleet up` stacks; screenshots in test-artifacts/e2e-web
	$(PY) -m pytest tests/unit/web tests/e2e/web

bench-first-frame-stack: setup ## 30 sessions click -> first frame in headless Chromium via router + TURN on `streamfleet up`; last line is JSON
	$(PY) bench/first_frame_stack.py

# Web pages (configurator, status), browser end-to-end tests, `streamfleet status` (issue 7),
# and the configurator's build step: Epic's Pixel Streaming frontend library, pinned in
# package-lock.json, bundled with esbuild (issue 12). Included by the Makefile.
.PHONY: test-web bench-first-frame-stack web-build web-types

WEB_VENDOR := web/configurator/vendor/pixelstreamingfrontend.js
WEB_TYPES  := web/configurator/openapi.d.ts
NODE_STAMP := node_modules/.installed-$(shell cat package-lock.json | sha1sum | cut -c1-12)

# `make setup` also installs Node (when missing), the npm packages from the lock file, the
# bundle, and the session API's TypeScript types generated from the OpenAPI document.
# Both outputs are gitignored: they are rebuilt whenever their inputs change.
setup: $(WEB_VENDOR) $(WEB_TYPES)

$(NODE_STAMP): package.json package-lock.json
	@bash scripts/install-node.sh
	@echo "==> npm ci (Epic's frontend library, esbuild, openapi-typescript, typescript)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(WEB_VENDOR): $(NODE_STAMP)
	@npm run --silent build

web-build: $(NODE_STAMP) ## rebuild the configurator's bundle of Epic's frontend library (gitignored)
	@npm run --silent build

$(WEB_TYPES): $(STAMP) $(NODE_STAMP) streamfleet/wire.py control_plane/api/openapi.py
	@$(MAKE) --no-print-directory web-types

web-types: $(STAMP) $(NODE_STAMP) ## regenerate web/configurator/openapi.d.ts from the control plane's OpenAPI document
	@mkdir -p build
	@$(PY) -c 'import json; from control_plane.api.openapi import build_openapi; print(json.dumps(build_openapi(), indent=1))' > build/openapi.json
	@npm run --silent types

test-web: setup ## browser tests (system Chromium) of the configurator and status pages on real `streamfleet up` stacks; screenshots in test-artifacts/e2e-web
	$(PY) -m pytest tests/unit/web tests/unit/renderer tests/e2e/web

bench-first-frame-stack: setup ## 30 sessions click -> first frame in headless Chromium via router + TURN on `streamfleet up`; last line is JSON
	$(PY) bench/first_frame_stack.py

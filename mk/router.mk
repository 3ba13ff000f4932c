# Regional router (nginx + Lua): tests, lint and benchmark. Included by the Makefile.
.PHONY: test-router lint-router bench-router

test-router: setup ## router tests: real nginx + Lua with the real template
	$(PY) -m pytest tests/unit/router tests/integration/router

lint-router: setup ## luacheck (std ngx_lua) on the router's Lua modules
	cd nginx_lua/lua && luacheck .

bench-router: setup ## router (token check) vs plain nginx proxy_pass, same upstream; last line is JSON
	$(PY) bench/router.py

# Release: lock files, the wheel, the wheelhouse the instances install from, OCI images.
# Included by the Makefile. See README "Install it as a package" and docs/deploy.md.
.PHONY: lock wheel wheelhouse images test-release

# Every dependency of a role pinned with its hashes (`make lock` rewrites them).
LOCKS := dev server agent local
# Base of the OCI images; override with a local image where no registry is reachable.
IMAGE_BASE ?= docker.io/library/debian:bookworm-slim

lock: ## re-pin every role's dependencies with hashes into requirements/*.lock (uv, from PyPI)
	@for extra in $(LOCKS); do \
	  $(dir $(PY))uv pip compile -q pyproject.toml --extra $$extra --generate-hashes \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	    --custom-compile-command 'make lock' -o requirements/$$extra.lock || exit 1; \
	done

wheel: setup ## build the streamfleet wheel (web pages, Lua, templates, configs included) into dist/
	rm -rf dist/streamfleet-*.whl
	$(PY) -m build --wheel --no-isolation --outdir dist . >/dev/null
	@ls dist/streamfleet-*.whl

wheelhouse: wheel ## dist/wheelhouse/: the wheel + the server and agent roles' locked wheels (the instances' offline install; a CDK asset)
	rm -rf dist/wheelhouse
	$(PY) scripts/wheelhouse.py --wheel $$(ls dist/streamfleet-*.whl) --out dist/wheelhouse \
	  --role server=requirements/server.lock --role agent=requirements/agent.lock

images: wheelhouse ## OCI images (podman) of the control plane and the agent, from dist/wheelhouse
	podman build --network host --build-arg BASE=$(IMAGE_BASE) -f containers/control-plane.Containerfile -t streamfleet-control-plane:$$($(PY) -c 'import streamfleet; print(streamfleet.__version__)') .
	podman build --network host --build-arg BASE=$(IMAGE_BASE) -f containers/agent.Containerfile -t streamfleet-agent:$$($(PY) -c 'import streamfleet; print(streamfleet.__version__)') .

test-release: setup ## release tests: the wheel in a fresh venv runs `up`; the CDK wheelhouse asset
	$(PY) -m pytest tests/e2e/release tests/integration/cdk/test_app.py

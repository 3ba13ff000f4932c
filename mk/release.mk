# Release: lock files, the wheel, the wheelhouse the instances install from, OCI images.
# Included by the Makefile. See README "Install it as a package" and docs/deploy.md.
.PHONY: lock wheel wheelhouse images smoke-images test-release

# Every dependency of a role pinned with its hashes (`make lock` rewrites them).
LOCKS := dev server agent local
# Base of the OCI images; override with a local image where no registry is reachable.
IMAGE_BASE ?= docker.io/library/debian:bookworm-slim
# Extra podman flags (PODMAN_BUILD_FLAGS also go to `podman run`), e.g. where crun cannot
# run (hybrid cgroups) and the container may not raise its rlimits (this sandbox):
#   PODMAN_FLAGS='--runtime runc' PODMAN_BUILD_FLAGS='--ulimit nofile=1024:1024 --ulimit nproc=1024:1024'
PODMAN_FLAGS ?=
PODMAN_BUILD_FLAGS ?=
VERSION = $(shell $(PY) -c 'import streamfleet; print(streamfleet.__version__)')

lock: ## re-pin every role's dependencies with hashes into requirements/*.lock (uv, from PyPI)
	@for extra in $(LOCKS); do \
	  $(dir $(PY))uv pip compile -q pyproject.toml --extra $$extra --generate-hashes \
	    --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	    --custom-compile-command 'make lock' -o requirements/$$extra.lock || exit 1; \
	done

wheel: setup ## build the streamfleet wheel (web pages, Lua, templates, configs included) into dist/
	rm -rf dist/streamfleet-*.whl build  # setuptools would ship stale files left in build/
	$(PY) -m build --wheel --no-isolation --outdir dist . >/dev/null
	@ls dist/streamfleet-*.whl

wheelhouse: wheel ## dist/wheelhouse/: the wheel + the server and agent roles' locked wheels (the instances' offline install; a CDK asset)
	rm -rf dist/wheelhouse
	$(PY) scripts/wheelhouse.py --wheel $$(ls dist/streamfleet-*.whl) --out dist/wheelhouse \
	  --role server=requirements/server.lock --role agent=requirements/agent.lock

images: wheelhouse ## OCI images (podman) of the control plane and the agent, from dist/wheelhouse
	for part in control-plane agent; do \
	  podman $(PODMAN_FLAGS) build $(PODMAN_BUILD_FLAGS) --network host --build-arg BASE=$(IMAGE_BASE) \
	    -f containers/$$part.Containerfile -t streamfleet-$$part:$(VERSION) . || exit 1; \
	done

test-release: setup ## release tests: the wheel in a fresh venv runs `up`; the CDK wheelhouse asset
	$(PY) -m pytest tests/e2e/release tests/integration/cdk/test_app.py

smoke-images: setup ## run both images (after `make images`): control plane on a loopback Redis, one agent registers and turns ready
	$(PY) scripts/smoke_images.py --version $(VERSION) --podman 'podman $(PODMAN_FLAGS)' --run-flags '$(PODMAN_BUILD_FLAGS)'

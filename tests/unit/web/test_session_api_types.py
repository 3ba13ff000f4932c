"""The session-API client's TypeScript declarations compile against the types generated
from the OpenAPI document (`make setup` generates web/configurator/openapi.d.ts)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CONFIGURATOR = ROOT / "web" / "configurator"


def test_generated_types_follow_the_openapi_document() -> None:
    from control_plane.api.openapi import build_openapi

    generated = (CONFIGURATOR / "openapi.d.ts").read_text()
    schemas = build_openapi()["components"]["schemas"]
    for name in ("SessionView", "CreateSessionRequest", "IceServer", "Stream"):
        assert f"        {name}: {{" in generated, f"{name} missing: run make web-types"
    for field in schemas["SessionView"]["properties"]:
        assert f" {field}" in generated, field
    # The session states are the API's enum, not a hand-kept copy.
    state = schemas["SessionView"]["properties"]["state"]
    if "$ref" in state:  # an enum model of its own (streamfleet.lifecycle.SessionState)
        state = schemas[state["$ref"].rsplit("/", 1)[-1]]
    states = state["enum"]
    assert " | ".join(json.dumps(s) for s in states) in generated


def test_declarations_typecheck_with_tsc() -> None:
    # The example uses the client as a frontend would, and marks two mistakes
    # with @ts-expect-error: if the types were loose (any), tsc would fail on them.
    done = subprocess.run(
        ["npm", "run", "--silent", "typecheck"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

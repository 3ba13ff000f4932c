"""Fuzz the API from its own OpenAPI document against a real server process.

Positive and negative cases for every operation, with and without the right
credentials: never a 5xx, and every error is problem+json.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from control_plane.api.openapi import build_openapi
from streamfleet.localproc import free_port
from tests.fixtures.control_plane import (
    ADMIN,
    agent_secret,
    plane_settings,
    start_control_plane_process,
)

SCHEMA = schemathesis.openapi.from_dict(build_openapi())
OPERATIONS = [op.ok() for op in SCHEMA.get_all_operations()]
TOKENS = {
    "admin": ADMIN,
    "agent": agent_secret("eu-central-1"),
    "session": "not-a-secret",
    None: "nobody",
}


@pytest.fixture(scope="module")
def server(
    redis_server: Any, cloud: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    proc = start_control_plane_process(
        plane_settings(redis_server.url, cloud, rate_limit_per_minute=100_000),
        port,
        tmp_path_factory.mktemp("fuzz"),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()
    assert "Traceback" not in proc.log_tail(500)


def takes_input(op: Any) -> bool:
    return bool(op.definition.raw.get("requestBody") or op.definition.raw.get("parameters"))


CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if takes_input(op)
]


@pytest.mark.parametrize(
    ("operation", "mode"), CASES, ids=lambda x: getattr(x, "label", getattr(x, "value", ""))
)
def test_no_5xx_and_problem_json(server: str, operation: Any, mode: GenerationMode) -> None:
    auth = (operation.definition.raw.get("security") or [{None: []}])[0]
    token = TOKENS[next(iter(auth))]
    http = requests.Session()

    @settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        for bearer in (token, "wrong"):
            response = case.call(
                base_url=server,
                session=http,
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=5,
            )
            assert response.status_code < 500, (
                case.method,
                case.formatted_path,
                response.text[:300],
            )
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", [""])[0]
                assert content_type.startswith("application/problem+json"), (
                    response.status_code,
                    response.text[:200],
                )

    check()

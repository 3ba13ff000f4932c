"""Every Python user of an identifier rule agrees with streamfleet.ids, through
the shared vector file (the nginx Lua router is held to the same file in
tests/integration/router/test_vectors.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from control_plane import domain, keys
from control_plane.api.openapi import build_openapi
from control_plane.settings import RegionConfig
from nginx_lua.render import RouterSettings
from regional_stack.pool.settings import PoolSettings
from streamfleet import ids, tokens, wire
from tests.vectors import make_identifiers  # a namespace package: scripts, not a library

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "identifiers.json"
VECTORS: dict[str, dict[str, Any]] = json.loads(VECTORS_FILE.read_text())


def cases(*names: str) -> list[tuple[str, str, bool]]:
    return [
        (name, text, ok)
        for name in names
        for ok in (True, False)
        for text in VECTORS[name]["valid" if ok else "invalid"]
    ]


def accepts(fn: Callable[[str], object], text: str) -> bool:
    try:
        fn(text)
    except (ValueError, ValidationError, tokens.TokenError, domain.InvalidArgument):
        return False
    return True


def test_the_vector_file_is_generated_from_the_rules() -> None:
    assert VECTORS_FILE.read_text() == make_identifiers.render(), (
        "stale: run .venv/bin/python tests/vectors/make_identifiers.py"
    )
    assert set(VECTORS) == set(make_identifiers.CANDIDATES)
    for name, (rule, _) in make_identifiers.CANDIDATES.items():
        assert VECTORS[name]["pattern"] == rule.pattern


def test_ipv4_is_a_strict_dotted_quad() -> None:
    assert not ids.is_canonical_ipv4("999.1.1.1")
    assert "999.1.1.1" in VECTORS["ipv4"]["invalid"]
    assert ids.is_canonical_ipv4("255.255.255.255")


_WIRE_TYPES = {
    "client_id": wire.ClientId,
    "instance_id": wire.InstanceId,
    "session_id": wire.SessionId,
    "region": wire.RegionName,
    "model": wire.ModelName,
    "ipv4": wire.Ipv4,
}


@pytest.mark.parametrize(("name", "text", "ok"), cases(*_WIRE_TYPES))
def test_pydantic_types_follow_the_rules(name: str, text: str, ok: bool) -> None:
    # pydantic matches with its own (Rust) regex engine: this proves the
    # anchored pattern means the same there as `fullmatch` does in Python.
    adapter: TypeAdapter[str] = TypeAdapter(_WIRE_TYPES[name])
    assert accepts(adapter.validate_python, text) is ok


@pytest.mark.parametrize(("name", "text", "ok"), cases(*_WIRE_TYPES))
def test_json_schema_patterns_follow_the_rules(name: str, text: str, ok: bool) -> None:
    # What an OpenAPI client generator sees: ECMA-style search with ^...$.
    pattern = TypeAdapter(_WIRE_TYPES[name]).json_schema()["pattern"]
    assert (re.search(pattern, text) is not None and "\n" not in text) is ok


def test_openapi_path_parameters_use_the_rules() -> None:
    doc = build_openapi()
    seen = {}
    for ops in doc["paths"].values():
        for op in ops.values():
            for p in op.get("parameters", []):
                seen[p["name"]] = p["schema"]["pattern"]
    assert seen == {
        "session_id": ids.SESSION_ID.json_pattern,
        "region": ids.REGION.json_pattern,
        "instance_id": ids.INSTANCE_ID.json_pattern,
    }


@pytest.mark.parametrize(("name", "text", "ok"), cases("ipv4"))
def test_token_codec_ipv4(name: str, text: str, ok: bool) -> None:
    claims = tokens.StreamClaims("s-1", "i-1", text, 1, 2_000_000_000)
    assert accepts(lambda _: tokens.sign(claims, kid="k1", key=b"k" * 32), text) is ok


@pytest.mark.parametrize(("name", "text", "ok"), cases("token_id", "instance_id", "kid"))
def test_token_codec_fields(name: str, text: str, ok: bool) -> None:
    def sign(value: str) -> str:
        if name == "kid":
            return tokens.sign(
                tokens.StreamClaims("s-1", "i-1", "127.0.0.1", 1, 9), kid=value, key=b"k" * 32
            )
        sid, iid = (value, "i-1") if name == "token_id" else ("s-1", value)
        return tokens.sign(
            tokens.StreamClaims(sid, iid, "127.0.0.1", 1, 9), kid="k1", key=b"k" * 32
        )

    assert accepts(sign, text) is ok


@pytest.mark.parametrize(("name", "text", "ok"), cases("session_id"))
def test_key_builder_session_ids(name: str, text: str, ok: bool) -> None:
    assert accepts(keys.session_keys, text) is ok


def test_key_builder_makes_valid_session_ids() -> None:
    assert ids.is_session_id(keys.new_session_id("browser-1"))


@pytest.mark.parametrize(("name", "text", "ok"), cases("client_id", "instance_id"))
def test_broker_argument_checks(name: str, text: str, ok: bool) -> None:
    check = domain.check_client_id if name == "client_id" else domain.check_instance_id
    assert accepts(check, text) is ok


@pytest.mark.parametrize(("name", "text", "ok"), cases("region"))
def test_every_setting_that_names_a_region(name: str, text: str, ok: bool) -> None:
    def control_plane(v: str) -> object:
        return RegionConfig(name=v, geography="eu", lat=0, lon=0, router_url="http://x")

    def router(v: str) -> object:
        return RouterSettings(region=v, key_file=Path("keys.json"))

    def pool(v: str) -> object:
        return PoolSettings(region=v)

    # The CDK config's region rule: tests/unit/cdk/test_config.py.
    for build in (control_plane, router, pool):
        assert accepts(build, text) is ok, build.__name__

"""The shared token vectors, run through the real Lua verifier in the real nginx."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from .conftest import VECTORS, Router


def verdict(router: Router, token: str, now: int) -> dict[str, Any]:
    query = urllib.parse.urlencode({"token": token, "now": now})
    url = f"{router.base}/_test/verify?{query}"
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


@pytest.mark.parametrize("vector", VECTORS["good"], ids=lambda v: v["name"])
def test_good_vector_verifies_with_the_same_claims(router: Router, vector: dict[str, Any]) -> None:
    result = verdict(router, vector["token"], VECTORS["now_unix"])
    assert result == {"ok": True, "claims": vector["claims"]}


@pytest.mark.parametrize("vector", VECTORS["bad"], ids=lambda v: v["name"])
def test_bad_vector_fails_with_pythons_error_code(router: Router, vector: dict[str, Any]) -> None:
    result = verdict(router, vector["token"], VECTORS["now_unix"])
    assert result == {"ok": False, "error": vector["error"]}


def test_expiry_boundary_uses_the_injected_clock(router: Router) -> None:
    good = VECTORS["good"][0]
    expires = good["claims"]["expires_unix"]
    assert verdict(router, good["token"], expires - 1)["ok"] is True
    assert verdict(router, good["token"], expires) == {"ok": False, "error": "expired"}


# The identifier rules the router enforces, against the vectors generated from
# streamfleet.ids (tests/vectors/make_identifiers.py).
ID_VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "identifiers.json").read_text()
)
ROUTER_RULES = ("ipv4", "token_id", "instance_id", "kid")


def lua_accepts(router: Router, rule: str, text: str) -> bool:
    query = urllib.parse.urlencode({"rule": rule, "text": text})
    with urllib.request.urlopen(f"{router.base}/_test/ids?{query}", timeout=5) as resp:
        ok: bool = json.loads(resp.read())["ok"]
    return ok


@pytest.mark.parametrize("rule", ROUTER_RULES)
def test_router_identifier_rules_match_the_python_definitions(router: Router, rule: str) -> None:
    verdicts = {
        text: lua_accepts(router, rule, text)
        for text in ID_VECTORS[rule]["valid"] + ID_VECTORS[rule]["invalid"]
    }
    wrong = {
        text: got
        for text, got in verdicts.items()
        if got is not (text in ID_VECTORS[rule]["valid"])
    }
    assert not wrong, f"Lua disagrees with streamfleet.ids on {wrong}"

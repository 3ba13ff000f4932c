"""The shared token vectors, run through the real Lua verifier in the real nginx."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
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

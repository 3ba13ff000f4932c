"""Stream token codec against the shared vectors (the Lua router reads them too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamfleet.tokens import (
    StreamClaims,
    TokenError,
    TokenErrorCode,
    b64url_decode,
    b64url_encode,
    is_canonical_ipv4,
    parse_keyring,
    sign,
    verify,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "stream_tokens.json").read_text())
KEYS = {kid: b64url_decode(text) for kid, text in VECTORS["keys"].items()}
NOW = VECTORS["now_unix"]


@pytest.mark.parametrize("case", VECTORS["good"], ids=lambda c: c["name"])
def test_good_vectors_verify_and_sign_byte_for_byte(case: dict[str, object]) -> None:
    claims = verify(str(case["token"]), keys=KEYS, now_unix=NOW)
    assert claims == StreamClaims(**case["claims"])  # type: ignore[arg-type]
    kid = str(case["token"]).split(".")[1]
    assert sign(claims, kid=kid, key=KEYS[kid]) == case["token"]


@pytest.mark.parametrize("case", VECTORS["bad"], ids=lambda c: c["name"])
def test_bad_vectors_fail_with_their_code(case: dict[str, str]) -> None:
    with pytest.raises(TokenError) as info:
        verify(case["token"], keys=KEYS, now_unix=NOW)
    assert info.value.code == TokenErrorCode(case["error"])


def test_expiry_boundary() -> None:
    claims = StreamClaims("s-1", "i-1", "127.11.0.1", 1, NOW + 10)
    token = sign(claims, kid="k1", key=KEYS["k1"])
    assert verify(token, keys=KEYS, now_unix=NOW + 9.999) == claims
    with pytest.raises(TokenError, match="expired"):
        verify(token, keys=KEYS, now_unix=NOW + 10)


def test_rotation_old_kid_keeps_verifying_while_in_ring() -> None:
    claims = StreamClaims("s-1", "i-1", "127.11.0.1", 3, NOW + 60)
    old = sign(claims, kid="k1", key=KEYS["k1"])
    assert verify(old, keys=KEYS, now_unix=NOW) == claims
    with pytest.raises(TokenError) as info:
        verify(old, keys={"k2": KEYS["k2"]}, now_unix=NOW)
    assert info.value.code is TokenErrorCode.UNKNOWN_KID


@pytest.mark.parametrize("part", [0, 1, 2, 3])
def test_any_changed_character_is_refused(part: int) -> None:
    token = sign(StreamClaims("s-1", "i-1", "127.11.0.1", 1, NOW + 60), kid="k1", key=KEYS["k1"])
    pieces = token.split(".")
    piece = pieces[part]
    pieces[part] = piece[:-1] + ("A" if piece[-1] != "A" else "B")
    with pytest.raises(TokenError):
        verify(".".join(pieces), keys=KEYS, now_unix=NOW)


@pytest.mark.parametrize(
    "claims",
    [
        StreamClaims("", "i-1", "127.11.0.1", 1, NOW),
        StreamClaims("s|x", "i-1", "127.11.0.1", 1, NOW),
        StreamClaims("s-1", "i-1", "127.11.0.1", 0, NOW),
        StreamClaims("s-1", "i-1", "127.11.0.01", 1, NOW),
        StreamClaims("s-1", "i-1", "127.11.0.1", 1, 0),
    ],
)
def test_sign_refuses_what_verify_would_refuse(claims: StreamClaims) -> None:
    with pytest.raises(TokenError):
        sign(claims, kid="k1", key=KEYS["k1"])


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("127.11.0.5", True), ("0.0.0.0", True), ("255.255.255.255", True),
        ("127.011.0.1", False), ("1270.0.0.1", False), ("127.0.0.1.5", False),
        ("127.0.0", False), ("::1", False), ("127.0.0.256", False), ("127.0.0.1 ", False),
        ("127.0.0.%31", False), ("127.11.0.5@evil", False), ("127.11.0.5:22", False),
    ],
)  # fmt: skip
def test_canonical_ipv4(text: str, ok: bool) -> None:
    assert is_canonical_ipv4(text) is ok


def test_keyring_rejects_short_keys_and_bad_kids() -> None:
    assert parse_keyring({"k1": b64url_encode(b"x" * 32)}) == {"k1": b"x" * 32}
    with pytest.raises(ValueError, match="32 bytes"):
        parse_keyring({"k1": b64url_encode(b"short")})
    with pytest.raises(ValueError, match="key id"):
        parse_keyring({"k.1": b64url_encode(b"x" * 32)})

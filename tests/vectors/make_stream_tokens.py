"""Regenerate stream_tokens.json, the vectors shared by the Python and Lua tests.

Run: .venv/bin/python tests/vectors/make_stream_tokens.py
The output is committed; tests/unit/test_tokens.py checks that the codec still
produces every good token byte for byte, so an accidental format change fails.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamfleet.tokens import StreamClaims, b64url_encode, sign

NOW = 1_800_000_000
KEYS = {
    "k1": b"streamfleet-test-vector-key-one!",
    "k2": b"streamfleet-test-vector-key-two!",
}
KEY_NOT_IN_RING = b"streamfleet-test-vector-key-bad!"


def _raw(kid: str, body: str, key: bytes) -> str:
    """Sign an arbitrary payload, bypassing claim checks, for malformed-payload cases."""
    import hashlib
    import hmac

    payload = b64url_encode(body.encode())
    sig = hmac.new(key, f"v1.{kid}.{payload}".encode(), hashlib.sha256).digest()
    return f"v1.{kid}.{payload}.{b64url_encode(sig)}"


def build() -> dict[str, object]:
    base = StreamClaims("s-abc123", "i-0a1b2c3d", "127.11.0.5", 7, NOW + 300)
    good = [
        ("k1 basic", sign(base, kid="k1", key=KEYS["k1"]), base),
        ("k2 after rotation", sign(base, kid="k2", key=KEYS["k2"]), base),
        (
            "max-ish epoch",
            sign(
                StreamClaims("s.x_y-z", "i-1", "127.11.255.254", 2**52, NOW + 1),
                kid="k1",
                key=KEYS["k1"],
            ),
            StreamClaims("s.x_y-z", "i-1", "127.11.255.254", 2**52, NOW + 1),
        ),
    ]
    t = good[0][1]
    v, kid, payload, sig = t.split(".")
    bad = [
        ("forged signature", f"{v}.{kid}.{payload}.{sig[:-2]}AA", "bad_signature"),
        (
            "signed with a key not in the ring",
            sign(base, kid="k1", key=KEY_NOT_IN_RING),
            "bad_signature",
        ),
        (
            "payload swapped",
            f"{v}.{kid}.{sign(StreamClaims('s-abc123', 'i-0a1b2c3d', '127.11.0.6', 7, NOW + 300), kid='k1', key=KEYS['k1']).split('.')[2]}.{sig}",
            "bad_signature",
        ),
        ("unknown kid", sign(base, kid="k9", key=KEYS["k1"]), "unknown_kid"),
        (
            "expired",
            sign(
                StreamClaims("s-abc123", "i-0a1b2c3d", "127.11.0.5", 7, NOW),
                kid="k1",
                key=KEYS["k1"],
            ),
            "expired",
        ),
        ("version v2", f"v2.{kid}.{payload}.{sig}", "unsupported_version"),
        ("three parts", f"{v}.{kid}.{payload}", "malformed"),
        ("five parts", f"{t}.x", "malformed"),
        ("padded base64", f"{v}.{kid}.{payload}.{sig}=", "malformed"),
        ("standard base64 alphabet", f"{v}.{kid}.{payload}.{sig[:-1]}+", "malformed"),
        ("truncated signature", f"{v}.{kid}.{payload}.{sig[:20]}", "bad_signature"),
        ("empty", "", "malformed"),
        ("kid with dot-like junk", f"{v}.k%31.{payload}.{sig}", "malformed"),
        ("oversized", f"{v}.{kid}.{'A' * 600}.{sig}", "malformed"),
        ("four payload fields", _raw("k1", "s|i|127.11.0.5|7", KEYS["k1"]), "malformed"),
        (
            "epoch with leading zero",
            _raw("k1", f"s|i|127.11.0.5|07|{NOW + 300}", KEYS["k1"]),
            "malformed",
        ),
        ("epoch zero", _raw("k1", f"s|i|127.11.0.5|0|{NOW + 300}", KEYS["k1"]), "malformed"),
        ("negative expiry", _raw("k1", "s|i|127.11.0.5|1|-5", KEYS["k1"]), "malformed"),
        (
            "ip with leading zero",
            _raw("k1", f"s|i|127.011.0.5|1|{NOW + 300}", KEYS["k1"]),
            "malformed",
        ),
        ("ip five parts", _raw("k1", f"s|i|127.11.0.5.1|1|{NOW + 300}", KEYS["k1"]), "malformed"),
        (
            "session id with slash",
            _raw("k1", f"s/../x|i|127.11.0.5|1|{NOW + 300}", KEYS["k1"]),
            "malformed",
        ),
    ]
    return {
        "comment": "Shared stream-token vectors: Python (tests/unit/test_tokens.py) and Lua (router tests) must agree. Regenerate with tests/vectors/make_stream_tokens.py.",
        "now_unix": NOW,
        "keys": {kid: b64url_encode(key) for kid, key in KEYS.items()},
        "good": [
            {
                "name": name,
                "token": token,
                "claims": {
                    "session_id": c.session_id,
                    "instance_id": c.instance_id,
                    "private_ip": c.private_ip,
                    "epoch": c.epoch,
                    "expires_unix": c.expires_unix,
                },
            }
            for name, token, c in good
        ],
        "bad": [{"name": n, "token": tok, "error": err} for n, tok, err in bad],
    }


if __name__ == "__main__":
    out = Path(__file__).with_name("stream_tokens.json")
    out.write_text(json.dumps(build(), indent=2) + "\n")
    print(f"wrote {out}")

"""Regenerate identifiers.json, the identifier vectors shared by Python and Lua.

Run: .venv/bin/python tests/vectors/make_identifiers.py
The candidates below are sorted into valid and invalid by streamfleet.ids, the
one definition of each rule; the output is committed. tests/unit/test_ids.py
fails when the file is stale, and checks every Python user of a rule against
it; tests/integration/router/test_vectors.py checks the nginx Lua router's
copies (ipv4.lua, token.lua) inside the real nginx.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamfleet import ids

OUT = Path(__file__).with_name("identifiers.json")

_HEX32 = "0123456789abcdef" * 2
_SID = f"{_HEX32}-0123456789abcdef"

# Strings that no rule accepts: separators the token payload, Redis keys or a
# URL path would misread, and non-ASCII look-alikes.
_HOSTILE = [
    "",
    " ",
    "a b",
    "a|b",
    "a/b",
    "a\\b",
    "a\nb",
    "a%2eb",
    "{tag}",
    "a\u00e9",
    "\uff41",
    "a\x00",
]

CANDIDATES: dict[str, tuple[ids.IdRule, list[str]]] = {
    "client_id": (
        ids.CLIENT_ID,
        ["c", "browser-1", "a.b_c:d@e-f", "x" * 128, "x" * 129, "a+b", "a#b", *_HOSTILE],
    ),
    "instance_id": (
        ids.INSTANCE_ID,
        ["i-0a1b2c3d", "i-1", "a.b_c-D9", "x" * 64, "x" * 65, "i:1", "i@1", *_HOSTILE],
    ),
    "session_id": (
        ids.SESSION_ID,
        [
            _SID,
            "f" * 32 + "-" + "0" * 16,
            _SID.upper(),
            _SID[:-1],
            _SID + "0",
            _SID.replace("-", "_"),
            "g" + _SID[1:],
            "s-abc123",
            "../" + "0" * 46,
            *_HOSTILE,
        ],
    ),
    "region": (
        ids.REGION,
        [
            "eu-central-1",
            "us-east-1",
            "us-gov-west-1",
            "ap-southeast-2",
            "eu-central-10",
            "eu-central",
            "EU-central-1",
            "e-central-1",
            "eur-central-1",
            "eu--central-1",
            "eu-central-1-",
            "eu-central1",
            "local",
            "eu-central-1\n",
            "{eu-central-1}",
            *_HOSTILE,
        ],
    ),
    "model": (
        ids.MODEL_NAME,
        ["car", "car-v2.1_a", "x" * 64, "x" * 65, "car:v2", *_HOSTILE],
    ),
    "ipv4": (
        ids.IPV4,
        [
            "127.11.0.5",
            "0.0.0.0",
            "255.255.255.255",
            "10.0.0.1",
            "1.2.3.4",
            "199.249.250.9",
            "999.1.1.1",
            "256.0.0.1",
            "127.0.0.256",
            "127.011.0.1",
            "00.1.1.1",
            "1270.0.0.1",
            "127.0.0.1.5",
            "127.0.0",
            "::1",
            "127.0.0.1 ",
            " 127.0.0.1",
            "127.0.0.%31",
            "127.11.0.5@evil",
            "127.11.0.5:22",
            "0x7f.0.0.1",
            "127.1",
            "+1.2.3.4",
            "1.2.3.-4",
            *_HOSTILE,
        ],
    ),
    "token_id": (
        ids.TOKEN_ID,
        ["s-abc123", "s.x_y-z", _SID, "x" * 64, "x" * 65, "s:1", *_HOSTILE],
    ),
    "kid": (
        ids.KEY_ID,
        ["k1", "key_2-b", "x" * 32, "x" * 33, "k.1", *_HOSTILE],
    ),
}


def build() -> dict[str, object]:
    out: dict[str, object] = {}
    for key, (rule, candidates) in CANDIDATES.items():
        assert key == rule.name, (key, rule.name)
        valid = [c for c in candidates if rule.matches(c)]
        invalid = [c for c in candidates if not rule.matches(c)]
        assert valid and invalid, key
        out[key] = {
            "pattern": rule.pattern,
            "description": rule.description,
            "valid": valid,
            "invalid": invalid,
        }
    return out


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")

"""Identifier rules, defined once (docs/design.md "Identifiers").

Every identifier that crosses a process boundary has exactly one rule here: the
pydantic types in `streamfleet.wire`, the stream-token codec, the control
plane's Redis key builder, the settings that name regions and the OpenAPI
document all use these objects. The nginx Lua router cannot import Python, so
it is held to the same rules by tests/vectors/identifiers.json, generated from
this module by tests/vectors/make_identifiers.py.

Each rule is a regular expression without anchors, matched against the whole
string (`fullmatch`); `json_pattern` is the anchored form for JSON Schema.
Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IdRule:
    """One identifier's rule: a name (the key in tests/vectors/identifiers.json),
    a full-match regex and the sentence a refusal quotes."""

    name: str
    pattern: str
    description: str
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    @property
    def json_pattern(self) -> str:
        """Anchored, for JSON Schema / pydantic (which search, not full-match)."""
        return f"^(?:{self.pattern})$"

    def matches(self, text: object) -> bool:
        return isinstance(text, str) and self._compiled.fullmatch(text) is not None


# 0-255 in decimal, no leading zeros: 0-9, 10-99, 100-199, 200-249, 250-255.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"

CLIENT_ID = IdRule(
    "client_id",
    r"[A-Za-z0-9._:@-]{1,128}",
    "1-128 characters of letters, digits and ._:@-",
)
INSTANCE_ID = IdRule(
    "instance_id",
    r"[A-Za-z0-9._-]{1,64}",
    "1-64 characters of letters, digits and ._-",
)
# 32 hex of sha256(client id) (the Redis hash tag comes from it), then 16 random hex.
SESSION_ID = IdRule(
    "session_id",
    r"[0-9a-f]{32}-[0-9a-f]{16}",
    "32 lowercase hex digits, a dash and 16 lowercase hex digits",
)
REGION = IdRule(
    "region",
    r"[a-z]{2}(?:-[a-z]+)+-[0-9]",
    "an AWS-style region name such as eu-central-1",
)
MODEL_NAME = IdRule(
    "model",
    r"[A-Za-z0-9._-]{1,64}",
    "1-64 characters of letters, digits and ._-",
)
IPV4 = IdRule(
    "ipv4",
    rf"{_OCTET}(?:\.{_OCTET}){{3}}",
    "a dotted quad of four decimal octets 0-255 without leading zeros",
)
# What a stream token's payload may carry in its session field. Looser than
# SESSION_ID on purpose: the token codec guarantees the payload splits on "|"
# and is safe to log; the agent and router compare the value with what they
# were told, so its finer shape is not the codec's business.
TOKEN_ID = IdRule(
    "token_id",
    r"[A-Za-z0-9._-]{1,64}",
    "1-64 characters of letters, digits and ._-",
)
# A token key id: the part of a token that selects the key.
KEY_ID = IdRule("kid", r"[A-Za-z0-9_-]{1,32}", "1-32 characters of letters, digits and _-")

RULES: tuple[IdRule, ...] = (
    CLIENT_ID,
    INSTANCE_ID,
    SESSION_ID,
    REGION,
    MODEL_NAME,
    IPV4,
    TOKEN_ID,
    KEY_ID,
)


def is_canonical_ipv4(text: object) -> bool:
    """Dotted quad, four decimal octets 0-255, no leading zeros, nothing else."""
    return IPV4.matches(text)


def is_session_id(text: object) -> bool:
    return SESSION_ID.matches(text)

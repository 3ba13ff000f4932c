"""The one JSON parser for input from outside: bounded, finite, unambiguous. Pure.

Every edge (the control plane's request bodies, the agent's signalling frames)
parses untrusted JSON here, before any authentication work, so hostile input
costs at most one bounded scan:

- size: at most `max_bytes` (the caller's body limit, checked first);
- depth: at most `max_depth` nested arrays/objects, counted by a scan over the
  structural characters *before* `json.loads` ever recurses;
- numbers: finite only (`NaN`, `Infinity`, `1e400` are refused) and integers
  within 64 bits, so nothing stores or computes with a value no client meant;
- objects: a key given twice is refused (parsers disagree on which one wins);
- text: valid UTF-8 without lone surrogates (`"\\ud800"` would fail later, in
  Redis or a log line, as a 500).

`JsonRefused.reason` says what was wrong and `field` names the offending key
when there is one; neither echoes the input's values.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_INT = 2**63 - 1
# Strings (skipped whole, escapes included) or one structural bracket.
_STRUCTURE = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")
# A key we may name in an answer: short and plain, so the answer echoes nothing hostile.
_NAMEABLE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class JsonRefused(ValueError):
    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field if field is not None and _NAMEABLE.match(field) else None


def depth_of(raw: bytes, limit: int) -> int:
    """Deepest nesting of arrays/objects in raw, stopping once past limit."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return 0  # cannot be deeper than the number of openers: no scan needed
    depth = deepest = 0
    for m in _STRUCTURE.finditer(raw):
        c = m.group()
        if c in (b"[", b"{"):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif c in (b"]", b"}"):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise JsonRefused("non-finite numbers are not allowed")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused("number out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20:
        raise JsonRefused("number out of range")
    value = int(text)
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise JsonRefused("number out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if _SURROGATE.search(key):
            raise JsonRefused("text is not valid Unicode")
        if key in out:
            raise JsonRefused("duplicate key", field=key)
        out[key] = value
    return out


def _check_text(value: Any, path: str | None) -> None:
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise JsonRefused("text is not valid Unicode", field=path)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(v, k if path is None else f"{path}.{k}")
    elif isinstance(value, list):
        for v in value:
            _check_text(v, path)


def loads(raw: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse raw as strict JSON, or raise JsonRefused (never anything else)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if len(data) > max_bytes:
        raise JsonRefused(f"larger than {max_bytes} bytes")
    if depth_of(data, max_depth) > max_depth:
        raise JsonRefused(f"nested deeper than {max_depth}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRefused("not UTF-8") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except JsonRefused:
        raise
    except (ValueError, RecursionError):
        raise JsonRefused("not valid JSON") from None
    _check_text(value, None)
    return value

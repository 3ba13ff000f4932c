"""streamfleet.strict_json: the edge's one parser refuses what other parsers let through."""

from __future__ import annotations

import pytest

from regional_stack.signalling import messages
from streamfleet.strict_json import JsonRefused, loads


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"[" * 33 + b"]" * 33, "nested deeper than 32", None),
        (b'{"a":' * 2000 + b"1" + b"}" * 2000, "nested deeper than 32", None),
        (b"[NaN]", "non-finite numbers are not allowed", None),
        (b"[-Infinity]", "non-finite numbers are not allowed", None),
        (b"[1e400]", "number out of range", None),
        (b"[" + b"9" * 25 + b"]", "number out of range", None),
        (b"[9223372036854775808]", "number out of range", None),
        (b'{"client_id":"a","client_id":"b"}', "duplicate key", "client_id"),
        (b'{"<script>":1,"<script>":2}', "duplicate key", None),  # never echoed
        (b'{"paint":"\\udc80"}', "text is not valid Unicode", "paint"),
        (b'{"\\ud800":1}', "text is not valid Unicode", None),
        (b"\xff\xfe{}", "not UTF-8", None),
        (b"{not json", "not valid JSON", None),
        (b"x" * 100, "larger than 64 bytes", None),
    ],
)
def test_refused(raw: bytes, reason: str, field: str | None) -> None:
    with pytest.raises(JsonRefused) as caught:
        loads(raw, max_bytes=64 if len(raw) == 100 else 1 << 20)
    assert caught.value.reason == reason and caught.value.field == field


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a":[1,2.5,true,null,"x"]}', {"a": [1, 2.5, True, None, "x"]}),
        (b'["' + b"[" * 40 + b'"]', ["[" * 40]),  # brackets in text
        (b'"caf\\u00e9 \\ud83d\\ude00"', "caf\u00e9 \U0001f600"),  # a valid pair is fine
        (b"[" * 32 + b"]" * 32, [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
        (b"-9223372036854775808", -(2**63)),
    ],
)
def test_accepted(raw: bytes, value: object) -> None:
    assert loads(raw, max_bytes=1 << 20) == value


def test_a_deep_signalling_frame_is_a_protocol_error_not_a_crash() -> None:
    with pytest.raises(messages.ProtocolError):
        messages.parse("[" * 20000 + "]" * 20000, messages.PLAYER_TYPES)
    with pytest.raises(messages.ProtocolError):
        messages.parse('{"type":"ping","type":"offer"}', messages.PLAYER_TYPES)


def test_a_deep_stats_string_is_ignored_not_a_crash() -> None:
    from regional_stack.agent.metrics import input_to_frame_s

    assert input_to_frame_s({"data": "[" * 2000 + "]" * 2000}) is None
    assert input_to_frame_s({"data": '{"inputToFrameMs": NaN}'}) is None
    assert input_to_frame_s({"data": '{"inputToFrameMs": 42}'}) == 0.042

"""JSON log lines: context fields kept, secrets never written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from streamfleet.logs import REDACTED, JsonFormatter, redact, scrub, setup_logging


def test_a_record_becomes_one_json_object_with_its_context() -> None:
    record = logging.LogRecord(
        "streamfleet.agent", logging.INFO, "f.py", 1, "session %s", ("x",), None
    )
    record.session_id = "s-1"
    record.epoch = 3
    line = JsonFormatter("agent").format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert body["part"] == "agent" and body["level"] == "info"
    assert body["message"] == "session x"
    assert body["session_id"] == "s-1" and body["epoch"] == 3
    assert body["logger"] == "streamfleet.agent"


@pytest.mark.parametrize(
    "name",
    ["token", "stream_token", "session_secret", "turn_credential", "password", "admin_token",
     "key", "signing_key", "Authorization"],
)  # fmt: skip
def test_secret_named_fields_are_redacted(name: str) -> None:
    assert redact({name: "v", "session_id": "s"}) == {name: REDACTED, "session_id": "s"}


@pytest.mark.parametrize("name", ["session_id", "instance_id", "keyboard", "monkey_count"])
def test_ordinary_fields_are_kept(name: str) -> None:
    assert redact({name: 1}) == {name: 1}


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("status page: http://h/web/status/index.html#token=abc123", "abc123"),
        ("GET /i/127.11.0.1/signal?token=v1.k1.p.s&x=1", "v1.k1.p.s"),
        ("events ?secret=hunter2 sent", "hunter2"),
        ("header Authorization: Bearer tok-9 refused", "tok-9"),
    ],
)
def test_secrets_in_message_text_are_scrubbed(text: str, leaked: str) -> None:
    cleaned = scrub(text)
    assert leaked not in cleaned and REDACTED in cleaned


def test_setup_logging_writes_json_with_extra_and_no_secret() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("control-plane", stream=stream)
        logging.getLogger("streamfleet.test").info(
            "session ended", extra={"session_id": "s-2", "token": "v1.secret"}
        )
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    body = json.loads(stream.getvalue().splitlines()[-1])
    assert body["session_id"] == "s-2" and body["token"] == REDACTED
    assert "v1.secret" not in stream.getvalue()

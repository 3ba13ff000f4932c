"""JSON logs for every Python part: one object per line, with a correlation id.

Each part calls `setup_logging(part)` once in its command's `run()`. A log call
adds context as `extra=`; `session_id` is the correlation id that follows one
session through the control plane, the agent and the router's access log:

    log.info("session created", extra={"session_id": sid, "state": "assigned"})

Secrets never reach a log line: an `extra` field whose name says it holds one
(token, secret, password, credential, key) is replaced by "[redacted]", so a
careless `extra={"token": ...}` cannot leak a stream token or TURN credential.
Message text is the caller's job (log ids and states, never a token).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
from typing import IO, Any

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
_SECRET_NAME = re.compile(r"token|secret|password|passwd|credential|authorization|(^|_)key$", re.I)
REDACTED = "[redacted]"
# Inside message text: `token=...`, `secret=...` (URLs, fragments) and bearer values.
_SECRET_IN_TEXT = re.compile(
    r"((?:token|secret|password|credential)=)[^&\s\"']+|(Bearer )[^\s\"']+", re.I
)


def scrub(text: str) -> str:
    """Message text with secret-looking values replaced (pure; tested)."""
    return _SECRET_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)


def redact(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields with every secret-named value replaced (pure; tested)."""
    return {k: REDACTED if _SECRET_NAME.search(k) else v for k, v in fields.items()}


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "part", "logger", "message", ...extra}` on one line."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self.part = part

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "part": self.part,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        body.update(redact(extra))
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str, separators=(",", ":"))


def setup_logging(part: str, level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route every logger of this process to one JSON handler (stderr by default)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(part))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Library chatter that would drown the story (one line per HTTP request).
    for noisy in ("aiohttp.access", "werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_json_file(part: str, path: Any) -> logging.Handler:
    """Also write this process's logs as JSON to `path` (used by `up` for its own file)."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter(part))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return handler


def describe_invalid(exc: Exception) -> str:
    """A settings or input error for a log line or stderr, without the values given.

    pydantic's own text quotes every bad input; for settings that input may be a
    secret of the wrong type, so only the field names and the rules are kept.
    """
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return scrub(str(exc))
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(settings)'}: {e['msg']}"
        for e in errors(include_url=False, include_context=False, include_input=False)
    ]
    return f"{len(parts)} invalid setting(s): " + "; ".join(parts)

"""A settings error names the field and the rule, never the value: it may be a secret."""

from __future__ import annotations

import os
import subprocess
import sys

from pydantic import ValidationError

from control_plane.settings import ControlPlaneSettings
from streamfleet.logs import describe_invalid

SECRET = "hunter2-" + "s3cr3t" * 5


def test_describe_invalid_keeps_fields_and_drops_values() -> None:
    try:
        ControlPlaneSettings(token_keys=[SECRET], admin_token={"x": SECRET})  # type: ignore[arg-type]
    except ValidationError as exc:
        text = describe_invalid(exc)
        assert SECRET not in str(text) and SECRET[:12] not in text
        assert "token_keys" in text and "admin_token" in text
    else:
        raise AssertionError("wrong-typed secrets were accepted")


def test_the_command_does_not_echo_a_wrong_typed_secret() -> None:
    env = {
        **os.environ,
        "STREAMFLEET_TOKEN_KEYS": f'["{SECRET}"]',
        "STREAMFLEET_AGENT_SECRETS": f'"{SECRET}"',
        "STREAMFLEET_ADMIN_TOKEN": SECRET,
    }
    for part in ("control-plane", "agent"):
        if part == "agent":
            env["STREAMFLEET_AGENT_TOKEN_KEYS"] = f'["{SECRET}"]'
        done = subprocess.run(
            [sys.executable, "-m", "streamfleet.cli", part],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, (part, done.stderr[-500:])
        assert "bad settings" in done.stderr
        assert SECRET[:12] not in done.stdout + done.stderr, part

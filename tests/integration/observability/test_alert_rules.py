"""The alert rules ship checked (`promtool check rules`) and unit-tested
(`promtool test rules`), with Debian's promtool; a missing promtool fails."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
RULES_DIR = REPO / "deploy" / "prometheus"
PROMTOOL = "/usr/bin/promtool"


def promtool(*args: str, cwd: Path = RULES_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_rules_pass_promtool_check() -> None:
    got = promtool("check", "rules", "alerts.yml")
    assert got.returncode == 0, got.stdout + got.stderr
    assert "SUCCESS" in got.stdout


def test_rules_pass_their_unit_tests() -> None:
    got = promtool("test", "rules", "alerts_test.yml")
    assert got.returncode == 0, got.stdout + got.stderr


def test_every_alert_is_unit_tested_firing() -> None:
    alerts = set(re.findall(r"- alert: (\w+)", (RULES_DIR / "alerts.yml").read_text()))
    tests = (RULES_DIR / "alerts_test.yml").read_text()
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels", tests))
    required = {
        "StreamfleetQueueWaitHigh", "StreamfleetNoReadyCapacity", "StreamfleetInstancesLost",
        "StreamfleetRouter5xx", "StreamfleetRedisUnreachable", "StreamfleetCapacityErrors",
    }  # fmt: skip
    assert required <= alerts
    assert alerts == fired, f"alerts never shown firing in alerts_test.yml: {alerts - fired}"


def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """A rule that would never fire (a flipped comparison) fails `promtool test rules`."""
    shutil.copy(RULES_DIR / "alerts_test.yml", tmp_path)
    rules = (RULES_DIR / "alerts.yml").read_text()
    broken = rules.replace(
        "streamfleet_control_plane_redis_up == 0", "streamfleet_control_plane_redis_up == 2"
    )
    assert broken != rules
    (tmp_path / "alerts.yml").write_text(broken)
    got = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert got.returncode != 0
    assert "StreamfleetRedisUnreachable" in got.stdout + got.stderr

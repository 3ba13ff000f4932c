"""The coturn exporter against a real coturn 4.6 (Debian's, which has no
`--prometheus`): real TURN allocations by turnutils_uclient, counted from
coturn's own -v log and served to Prometheus."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from nginx_lua.process import http_ok
from regional_stack.coturn.exporter import LogTail
from regional_stack.coturn.local import start_coturn
from streamfleet.localproc import ManagedProcess, free_port

SECRET = "exporter-test-secret"
RELAY_PORTS = (44300, 44399)  # this suite's own range


def test_turnserver_has_no_builtin_prometheus() -> None:
    """Why the exporter exists: if Debian's coturn gains --prometheus, use it instead."""
    got = subprocess.run(
        ["turnserver", "--prometheus", "--version"], capture_output=True, text=True, timeout=10,
        check=False,
    )  # fmt: skip
    assert "unrecognized option '--prometheus'" in got.stdout + got.stderr


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        text = resp.read().decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def uclient(port: int, user: str, secret: str) -> None:
    subprocess.run(
        ["turnutils_uclient", "-y", "-n", "1", "-m", "1", "-u", user, "-W", secret,
         "-p", str(port), "127.0.0.1"],
        capture_output=True, timeout=30, check=False,
    )  # fmt: skip


def test_exporter_counts_real_allocations_and_refusals(tmp_path: Path) -> None:
    port = free_port()
    coturn = start_coturn(
        port=port, secret=SECRET, workdir=tmp_path, min_port=RELAY_PORTS[0],
        max_port=RELAY_PORTS[1], verbose=True,
    )  # fmt: skip
    metrics_port = free_port()
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    exporter = ManagedProcess(
        name="coturn-exporter",
        argv=[sys.executable, "-m", "regional_stack.coturn.exporter", "--log",
              str(tmp_path / "turnserver.log"), "--listen", f"127.0.0.1:{metrics_port}",
              "--turn-port", str(port), "--interval", "0.2"],
        log_path=tmp_path / "exporter.log",
    ).start()  # fmt: skip
    try:
        exporter.wait_ready(lambda: http_ok(url), timeout=15)
        before = metrics(url)
        assert before["streamfleet_turn_up"] == 1
        uclient(port, "sess-ok", SECRET)
        uclient(port, "sess-bad", "not-the-secret")
        deadline = time.monotonic() + 15
        got = metrics(url)
        while time.monotonic() < deadline and not (
            got["streamfleet_turn_allocations_total"] >= 1
            and got["streamfleet_turn_auth_failures_total"] >= 1
        ):
            time.sleep(0.2)
            got = metrics(url)
        assert got["streamfleet_turn_allocations_total"] >= 1
        assert got["streamfleet_turn_auth_failures_total"] >= 1
        assert got["streamfleet_turn_allocations_active"] >= 0
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
        assert "sess-ok" not in text and "sess-bad" not in text  # no usernames as labels
    finally:
        exporter.stop()
        coturn.stop()


def test_log_tail_waits_for_whole_lines_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "turn.log"
    tail = LogTail(log)
    assert tail.read_lines() == []  # not there yet
    log.write_bytes(b"one\ntw")
    assert tail.read_lines() == ["one"]
    with log.open("ab") as f:
        f.write(b"o\nthree\n")
    assert tail.read_lines() == ["two", "three"]
    assert tail.read_lines() == []
    log.write_bytes(b"new\n")  # rotated / truncated: start over
    assert tail.read_lines() == ["new"]

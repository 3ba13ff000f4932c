"""The replicas' load balancer (real nginx) starts from a relative folder, as
`make launch-day-live` gives it (`--out simulators/out`): nginx reads relative
paths against its own prefix, which once doubled them and failed the replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos_stack import balancer_conf
from nginx_lua.process import start_nginx, stop_nginx
from streamfleet.localproc import free_port


def test_the_balancer_starts_from_a_relative_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    prefix = Path("out/live/stack/balancer")  # relative, as the CLI's default --out
    port = free_port()
    conf = balancer_conf(prefix, port, [free_port()])
    proc = start_nginx(prefix, conf, ready_url=f"http://127.0.0.1:{port}/lb-healthz")
    try:
        assert proc.alive()
        assert (tmp_path / prefix / "nginx.pid").read_text().strip() == str(proc.pid)
    finally:
        stop_nginx(proc)

"""luacheck (std ngx_lua) and the `streamfleet router-config` command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from streamfleet.cli import main

from .conftest import REPO, VECTORS


def test_luacheck_is_clean() -> None:
    out = subprocess.run(
        ["luacheck", "--no-color", "."],
        cwd=REPO / "nginx_lua" / "lua",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 warnings / 0 errors" in out.stdout


def test_router_config_renders_a_runnable_prefix(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps(VECTORS["keys"]))
    prefix = tmp_path / "router"
    code = main(
        [
            "router-config",
            "--prefix", str(prefix),
            "--key-file", str(key_file),
            "--region", "us-east-1",
            "--region-cidr", "127.13.0.0/16",
            "--listen", "127.0.0.1:18013",
        ]
    )  # fmt: skip
    assert code == 0
    conf = (prefix / "conf" / "nginx.conf").read_text()
    assert '"127.13.0.0/16"' in conf and "listen 127.0.0.1:18013" in conf
    assert "/_test/" not in conf
    assert sorted(p.name for p in (prefix / "lua" / "streamfleet").iterdir()) == [
        "cache.lua", "hmac.lua", "ipv4.lua", "keys.lua", "metrics.lua", "redact.lua", "router.lua", "testapi.lua", "token.lua",
    ]  # fmt: skip
    # nginx itself accepts the rendered file (the start itself is tested by the fixtures).
    test = subprocess.run(
        ["nginx", "-t", "-p", f"{prefix}/", "-c", str(prefix / "conf" / "nginx.conf"),
         "-e", str(prefix / "logs" / "error.log")],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert test.returncode == 0, test.stderr


def test_router_config_refuses_a_short_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"k1": "c2hvcnQ"}))
    code = main(["router-config", "--prefix", str(tmp_path / "p"), "--key-file", str(key_file)])
    assert code == 2
    assert not (tmp_path / "p" / "conf" / "nginx.conf").exists()

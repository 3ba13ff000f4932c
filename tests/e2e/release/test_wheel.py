"""The release as a user gets it: the wheel, installed with the local extra in a fresh
venv (offline, from a hash-locked wheelhouse, as the instances install it), runs a
whole `streamfleet up` stack serving pages and a session from site-packages alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from simulators.local_stack.testing import alive, descendants, running_stack
from streamfleet import __version__
from tests.fixtures.release import REPO, build_wheel, build_wheelhouse


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `streamfleet[local]` from the wheelhouse: no index, every hash checked."""
    root = tmp_path_factory.mktemp("release")
    wheel = build_wheel(root / "dist")
    house = build_wheelhouse(root / "wheelhouse", ("local",), wheel)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         "--no-compile", "--no-index", "--find-links", str(house), "--require-hashes",
         "-r", str(house / "requirements-local.txt")],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return venv


def clean_env(runtime_dir: Path) -> dict[str, str]:
    # Nothing from this checkout may leak in: no PYTHONPATH, and a private state folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["XDG_RUNTIME_DIR"] = str(runtime_dir)
    return env


def test_the_wheel_carries_pages_lua_templates_and_configs(installed: Path) -> None:
    site = next((installed / "lib").glob("python3*/site-packages"))
    for path in [
        "streamfleet_web/configurator/index.html",
        "streamfleet_web/status/index.html",
        "control_plane/lua/session_create.lua",
        "nginx_lua/lua/router.lua",
        "nginx_lua/router.conf.tmpl",
        "regional_stack/coturn/turnserver.conf",
    ]:
        assert (site / path).is_file(), path
    # Every file of web/ in the checkout ships (whatever the frontend's build put there).
    web = {p.relative_to(REPO / "web") for p in (REPO / "web").rglob("*") if p.is_file()}
    shipped = {
        p.relative_to(site / "streamfleet_web") for p in (site / "streamfleet_web").rglob("*")
    }
    assert {p for p in web if "node_modules" not in p.parts} <= shipped
    meta = next(site.glob("streamfleet-*.dist-info"))
    assert (meta / "licenses" / "LICENSE").is_file()


def test_version_comes_from_the_package_metadata(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(installed / "bin" / "streamfleet"), "--version"], cwd=tmp_path,
        env=clean_env(tmp_path), capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert out.stdout.strip() == f"streamfleet {__version__}"


def test_up_from_the_installed_wheel_serves_pages_and_a_session(
    installed: Path, tmp_path: Path
) -> None:
    env = clean_env(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700)
    streamfleet = str(installed / "bin" / "streamfleet")
    with running_stack(
        "--regions", "eu-central-1", "--pool-size", "1",
        workdir=tmp_path / "stack", command=[streamfleet], env=env, cwd=tmp_path, timeout=180,
    ) as info:  # fmt: skip
        # The pages come from site-packages (the checkout is not on the path).
        status, page = http("GET", info["configurator_url"])
        assert status == 200 and b"<html" in page.lower()
        status, body = http(
            "POST", info["control_plane_url"] + "/v1/sessions",
            {"client_id": "wheel-1", "model": "roadster"},
        )  # fmt: skip
        assert status == 201, body
        session = json.loads(body)
        status, _ = http(
            "GET", session["stream"]["url"] + "healthz?token=" + session["stream"]["token"]
        )
        assert status == 200
        # `streamfleet status` finds this stack by itself (URL and token from its state file).
        out = subprocess.run(
            [streamfleet, "status", "--json"], cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["eu-central-1"]["instances"]["reserved"] == 1
        pid = info["pid"]
        children = descendants(pid)
    deadline = time.monotonic() + 30
    while any(alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in children if alive(p)]
    assert not list((tmp_path / "run" / "streamfleet").glob("up-*.json"))  # removed on stop

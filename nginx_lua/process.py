"""Start a rendered router (or any nginx prefix) as a child process, by PID.

Shared by the tests, the benchmark and the local-stack launcher so nginx is
started one way: foreground (`daemon off;` in the config), every path under
the prefix, ready when /healthz answers, stopped with SIGQUIT (graceful).
"""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

from streamfleet.localproc import ManagedProcess

NGINX = "/usr/sbin/nginx"


def nginx_argv(prefix: Path, conf: Path) -> list[str]:
    # nginx resolves a relative -c and -e against -p: pass every path absolute.
    prefix, conf = prefix.resolve(), conf.resolve()
    return [NGINX, "-p", f"{prefix}/", "-c", str(conf), "-e", str(prefix / "logs" / "error.log")]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as resp:
            return int(resp.status) == 200
    except OSError:
        return False


def start_nginx(
    prefix: Path, conf: Path, *, ready_url: str, name: str = "nginx", timeout: float = 15.0
) -> ManagedProcess:
    """Start nginx on `conf` and wait until `ready_url` answers 200."""
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(
        name=name, argv=nginx_argv(prefix, conf), log_path=prefix / "logs" / "stdout.log"
    ).start()
    proc.wait_ready(lambda: http_ok(ready_url), timeout=timeout)
    return proc


def stop_nginx(proc: ManagedProcess) -> None:
    """SIGQUIT: finish in-flight requests, then exit."""
    proc.stop(signal.SIGQUIT)


def reload_nginx(proc: ManagedProcess) -> None:
    """SIGHUP: re-read the config and keys; old workers finish their connections."""
    os.kill(proc.pid, signal.SIGHUP)

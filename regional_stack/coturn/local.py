"""Start coturn on loopback, for tests, the benchmark and `streamfleet up`.

Uses the options TOOLCHAIN.md verified (coturn 4.6), written to an owner-only
configuration file so the static-auth-secret never appears in the process
list, with `allow-loopback-peers`: on loopback every peer is 127.x, which the regional
config denies on purpose.
"""

from __future__ import annotations

from pathlib import Path

from streamfleet.localproc import ManagedProcess, port_open, write_owner_only

CONFIG_FILE = Path(__file__).with_name("turnserver.conf")


def turnserver_config(
    *,
    port: int,
    secret: str,
    workdir: Path,
    min_port: int,
    max_port: int,
    realm: str = "streamfleet",
) -> str:
    """coturn's configuration file: the static-auth-secret lives here, not in argv."""
    lines = [
        "listening-ip=127.0.0.1", f"listening-port={port}",
        "relay-ip=127.0.0.1", f"min-port={min_port}", f"max-port={max_port}",
        "use-auth-secret", f"static-auth-secret={secret}", f"realm={realm}",
        "fingerprint", "no-tls", "no-dtls", "no-cli", "allow-loopback-peers",
        f"pidfile={workdir / 'turnserver.pid'}", f"userdb={workdir / 'turndb'}",
        "log-file=stdout", "simple-log",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def turnserver_argv(config: Path, *, verbose: bool = False) -> list[str]:
    # -v logs one line per allocation event: what the Prometheus exporter reads.
    return ["turnserver", "-c", str(config), *(["-v"] if verbose else [])]


def start_coturn(
    *, port: int, secret: str, workdir: Path, min_port: int, max_port: int, verbose: bool = False
) -> ManagedProcess:
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    config = write_owner_only(
        workdir / "turnserver.conf",
        turnserver_config(
            port=port, secret=secret, workdir=workdir, min_port=min_port, max_port=max_port
        ),
    )
    proc = ManagedProcess(
        name=f"coturn:{port}",
        argv=turnserver_argv(config, verbose=verbose),
        log_path=workdir / "turnserver.log",
    ).start()
    proc.wait_ready(lambda: port_open("127.0.0.1", port))
    return proc

"""Router overhead: the same upstream and the same wrk load, through the
router (Lua token verification on every request) and through a plain nginx
`proxy_pass` without Lua, interleaved in one run.

The upstream is a third nginx answering a fixed 200 on 127.11.0.5, so the
comparison is about the router, not the agent. Every nginx runs one worker;
both proxies write a JSON access log. Requests carry the stream cookie
(steady state: page assets, signaling reconnects); every router request
parses the URL and cookie, checks the IP and CIDR and looks the token up in
the worker's cache of verified tokens (the HMAC runs once per token and
worker). Figures are medians over interleaved rounds.

Run: make bench-router  (progress on stderr, one JSON object as the last line)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nginx_lua.process import start_nginx, stop_nginx
from nginx_lua.render import RouterSettings, render_router
from streamfleet.localproc import ManagedProcess, free_port
from streamfleet.tokens import StreamClaims, b64url_encode, sign

INSTANCE_IP = "127.11.0.5"
# Many short interleaved runs and medians: the machine is shared, and a burst
# of someone else's CPU use should cost one sample, not the comparison.
ROUNDS = int(os.environ.get("BENCH_ROUTER_ROUNDS", "8"))
SECONDS = int(os.environ.get("BENCH_ROUTER_SECONDS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_ROUTER_CONNECTIONS", "32"))
PATH = "/assets/app.js?v=1"

UPSTREAM_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    access_log off;
    keepalive_requests 100000;
    server {{
        listen {listen};
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""

PLAIN_CONF = """
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_requests 10000;
    log_format plain_json escape=json '{{"time":"$time_iso8601","remote":"$remote_addr",'
        '"method":"$request_method","path":"$uri","status":$status,'
        '"upstream_status":"$upstream_status","request_time":$request_time}}';
    access_log {prefix}/logs/access.log plain_json;
    server {{
        listen {listen};
        location = /healthz {{ return 200 "ok\\n"; }}
        location /i/{ip}/ {{
            proxy_pass http://{ip}:{upstream_port}/;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection close;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def plain_prefix(root: Path, name: str, template: str, **values: object) -> tuple[Path, Path]:
    prefix = root / name
    for sub in ("conf", "logs", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(template.format(prefix=prefix, **values))
    return prefix, conf


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def worker_cpu_seconds(master_pid: int) -> float:
    """utime + stime of the nginx master's children (its workers), in seconds.

    CPU per request is the steadier figure on a shared machine: another
    process's burst lowers everyone's throughput but not our CPU per request.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master_pid:  # field 4, ppid
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / ticks


def run_wrk(url: str, cookie: str, seconds: int) -> dict[str, float]:
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    argv += ["-H", f"Cookie: {cookie}", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 30)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)\s*$", text, re.M)
    assert p99 is not None, text
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    if non2xx or errors:
        raise SystemExit(f"wrk saw failures against {url}:\n{text}")
    count = re.search(r"(\d+) requests in", text)
    assert count is not None, text
    return {
        "rps": rps,
        "p99_ms": float(p99.group(1)) * _UNITS[p99.group(2)],
        "requests": float(count.group(1)),
    }


def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: make setup installs it (Debian package wrk)")
    root = Path(tempfile.mkdtemp(prefix="streamfleet-bench-router-"))
    root.chmod(0o755)  # workers of a root-started nginx run as nobody
    procs: list[ManagedProcess] = []
    try:
        upstream_port = free_port(INSTANCE_IP)
        prefix, conf = plain_prefix(
            root, "upstream", UPSTREAM_CONF, listen=f"{INSTANCE_IP}:{upstream_port}"
        )
        procs.append(
            start_nginx(
                prefix, conf, ready_url=f"http://{INSTANCE_IP}:{upstream_port}/", name="upstream"
            )
        )

        plain_port = free_port()
        prefix, conf = plain_prefix(
            root,
            "plain",
            PLAIN_CONF,
            listen=f"127.0.0.1:{plain_port}",
            ip=INSTANCE_IP,
            upstream_port=upstream_port,
        )
        procs.append(
            start_nginx(
                prefix, conf, ready_url=f"http://127.0.0.1:{plain_port}/healthz", name="plain"
            )
        )

        kid, key = "bench", secrets.token_bytes(32)
        key_file = root / "keys.json"
        key_file.write_text(json.dumps({kid: b64url_encode(key)}))
        router_port = free_port()
        settings = RouterSettings(
            listen=f"127.0.0.1:{router_port}",
            region_cidr="127.11.0.0/16",
            agent_port=upstream_port,
            key_file=key_file,
            worker_processes="1",
        )
        conf = render_router(root / "router", settings)
        procs.append(
            start_nginx(
                root / "router",
                conf,
                ready_url=f"http://127.0.0.1:{router_port}/healthz",
                name="router",
            )
        )

        claims = StreamClaims("s-bench", "i-bench", INSTANCE_IP, 1, int(time.time()) + 3600)
        cookie = f"sf_stream={sign(claims, kid=kid, key=key)}"
        urls = {
            "plain": f"http://127.0.0.1:{plain_port}/i/{INSTANCE_IP}{PATH}",
            "router": f"http://127.0.0.1:{router_port}/i/{INSTANCE_IP}{PATH}",
        }
        for name, url in urls.items():
            log(f"warm-up {name}")
            run_wrk(url, cookie, 1)
        masters = {"plain": procs[1].pid, "router": procs[2].pid}
        results: dict[str, list[dict[str, float]]] = {"plain": [], "router": []}
        for i in range(ROUNDS):
            for name, url in urls.items():
                cpu_before = worker_cpu_seconds(masters[name])
                r = run_wrk(url, cookie, SECONDS)
                r["cpu_s"] = worker_cpu_seconds(masters[name]) - cpu_before
                log(
                    f"round {i + 1}/{ROUNDS} {name}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms"
                )
                results[name].append(r)
    finally:
        for proc in reversed(procs):
            stop_nginx(proc)
        shutil.rmtree(root, ignore_errors=True)

    def median(name: str, field: str) -> float:
        return statistics.median(r[field] for r in results[name])

    router_rps, plain_rps = median("router", "rps"), median("plain", "rps")

    def cpu_us_per_request(name: str) -> float:
        rs = results[name]
        return 1e6 * sum(r["cpu_s"] for r in rs) / sum(r["requests"] for r in rs)

    router_cpu, plain_cpu = cpu_us_per_request("router"), cpu_us_per_request("plain")
    paired = [r["rps"] / p["rps"] for r, p in zip(results["router"], results["plain"], strict=True)]
    print(
        json.dumps(
            {
                "bench": "router",
                "router_rps": round(router_rps, 1),
                "plain_rps": round(plain_rps, 1),
                "ratio": round(router_rps / plain_rps, 3),
                "paired_ratio_median": round(statistics.median(paired), 3),
                "router_p99_ms": round(median("router", "p99_ms"), 2),
                "plain_p99_ms": round(median("plain", "p99_ms"), 2),
                "router_cpu_us_per_req": round(router_cpu, 1),
                "plain_cpu_us_per_req": round(plain_cpu, 1),
                "cpu_ratio": round(plain_cpu / router_cpu, 3),
                "goal_ratio": 0.8,
                "connections": CONNECTIONS,
                "seconds_per_run": SECONDS,
                "rounds": ROUNDS,
                "workers_per_nginx": 1,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Render the regional router's nginx configuration for one region.

One template (router.conf.tmpl) serves the tests, the local stack and the AWS
image; only `RouterSettings` differs. `render_config` is pure (text in, text
out); `render_router` lays out a complete nginx prefix directory:

    PREFIX/conf/nginx.conf       rendered template
    PREFIX/conf/sf_proxy.conf    proxy settings shared by two locations
    PREFIX/lua/streamfleet/*.lua the router's Lua modules
    PREFIX/logs/, PREFIX/tmp/    logs, pid and nginx temp paths

Run the result with `nginx -p PREFIX -c PREFIX/conf/nginx.conf` (see
nginx_lua.process).
"""

from __future__ import annotations

import ipaddress
import json
import re
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streamfleet import ids
from streamfleet.tokens import parse_keyring
from streamfleet.wire import RegionName

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_LUA_MODULES = (
    "cache", "hmac", "ipv4", "keys", "metrics", "redact", "router", "token", "testapi",
)  # fmt: skip
_NGINX_SIZE = re.compile(r"[1-9][0-9]{0,5}[km]?")
_NGINX_TIME = re.compile(r"[1-9][0-9]{0,5}(ms|s|m|h)")

TEST_LOCATIONS = """
        # Test only (test_endpoints=true): the real verifier with an injected clock.
        location = /_test/verify {
            content_by_lua_block {
                require("streamfleet.testapi").verify()
            }
        }
        location = /_test/ids {
            content_by_lua_block {
                require("streamfleet.testapi").ids()
            }
        }
"""

# Prometheus scrapes this server; it is a separate listener so the public one
# never answers /metrics, and ops bind it to loopback or a private address.
METRICS_SERVER = """
    server {
        listen {{metrics_listen}};
        server_name _;
        access_log off;
        location = /metrics {
            content_by_lua_block {
                require("streamfleet.metrics").render()
            }
        }
        location / {
            return 404 '{"error":"not_found"}\\n';
        }
    }
"""


class RouterSettings(BaseModel):
    """Everything that differs between one region's router and another's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The control plane's region rule (streamfleet.ids), so a router can only be
    # rendered for a region the control plane could name.
    region: RegionName = "eu-central-1"
    listen: str = Field(default="127.0.0.1:8000", description="host:port nginx listens on")
    metrics_listen: str | None = Field(
        default=None, description="host:port of the Prometheus /metrics server; None = none"
    )
    region_cidr: str = Field(default="127.11.0.0/16", description="instance private IPs")
    agent_port: int = Field(default=8700, ge=1, le=65535)
    key_file: Path = Field(description="JSON object kid -> base64url key")
    access_log: Path | None = None  # default PREFIX/logs/access.log
    error_log: Path | None = None  # default PREFIX/logs/error.log
    error_log_level: str = Field(default="warn", pattern=r"^(debug|info|notice|warn|error)$")
    worker_processes: str = Field(default="auto", pattern=r"^(auto|[1-9][0-9]?)$")
    worker_connections: int = Field(default=4096, ge=16, le=65536)
    client_max_body_size: str = "1m"
    websocket_read_timeout: str = "1h"
    listen_options: str = Field(default="", pattern=r"^( [a-z_=0-9]+)*$")
    test_endpoints: bool = False

    @field_validator("listen", "metrics_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not ids.IPV4.matches(host) or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("listen must be IPV4:PORT")
        return value

    @field_validator("region_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        # strict: a CIDR with host bits set is a typo, not a wider network.
        return str(ipaddress.IPv4Network(value, strict=True))

    @field_validator("client_max_body_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if not _NGINX_SIZE.fullmatch(value):
            raise ValueError("nginx size like 1m or 64k")
        return value

    @field_validator("websocket_read_timeout")
    @classmethod
    def _time(cls, value: str) -> str:
        if not _NGINX_TIME.fullmatch(value):
            raise ValueError("nginx time like 1h or 300s")
        return value


def _template(name: str) -> str:
    return resources.files("nginx_lua").joinpath(name).read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        try:
            return values[match.group(1)]
        except KeyError:
            raise KeyError(f"template placeholder {match.group(0)} has no value") from None

    return _PLACEHOLDER.sub(sub, template)


def _path_value(path: Path) -> str:
    text = str(path)
    # Paths land inside nginx strings and a Lua string literal.
    if any(c in text for c in "\"'\\;{}$ \n"):
        raise ValueError(f"unsupported character in path {text!r}")
    return text


def render_config(prefix: Path, settings: RouterSettings) -> str:
    """The nginx.conf text for `settings`, with every path under `prefix`."""
    prefix = prefix.resolve()
    values = {
        "prefix": _path_value(prefix),
        "region": settings.region,
        "listen": settings.listen,
        "listen_options": settings.listen_options,
        "region_cidr": settings.region_cidr,
        "agent_port": str(settings.agent_port),
        "key_file": _path_value(settings.key_file.resolve()),
        "access_log": _path_value(settings.access_log or prefix / "logs" / "access.log"),
        "error_log": _path_value(settings.error_log or prefix / "logs" / "error.log"),
        "error_log_level": settings.error_log_level,
        "worker_processes": settings.worker_processes,
        "worker_connections": str(settings.worker_connections),
        "client_max_body_size": settings.client_max_body_size,
        "websocket_read_timeout": settings.websocket_read_timeout,
        "test_locations": TEST_LOCATIONS if settings.test_endpoints else "",
        "metrics_server": METRICS_SERVER.replace("{{metrics_listen}}", settings.metrics_listen)
        if settings.metrics_listen
        else "",
        "lua_preload": ", ".join(
            f'"streamfleet.{m}"' for m in _LUA_MODULES if settings.test_endpoints or m != "testapi"
        ),
    }
    return _fill(_template("router.conf.tmpl"), values)


def check_key_file(path: Path) -> list[str]:
    """Refuse a key file the router would refuse; return its kids."""
    encoded = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(encoded, dict) or not encoded:
        raise ValueError(f"{path}: expected a non-empty JSON object kid -> base64url key")
    if not all(isinstance(v, str) for v in encoded.values()):
        raise ValueError(f"{path}: every key must be a base64url string")
    return sorted(parse_keyring(encoded))


def render_router(prefix: Path, settings: RouterSettings) -> Path:
    """Write a runnable nginx prefix for one region's router; return nginx.conf's path."""
    check_key_file(settings.key_file)
    prefix = prefix.resolve()
    for sub in ("conf", "logs", "lua/streamfleet", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    lua = resources.files("nginx_lua").joinpath("lua")
    for name in _LUA_MODULES:
        text = lua.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        (prefix / "lua" / "streamfleet" / f"{name}.lua").write_text(text, encoding="utf-8")
    (prefix / "conf" / "sf_proxy.conf").write_text(_template("sf_proxy.conf"), encoding="utf-8")
    conf = prefix / "conf" / "nginx.conf"
    conf.write_text(render_config(prefix, settings), encoding="utf-8")
    return conf

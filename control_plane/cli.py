"""`streamfleet control-plane`: run the session, agent and ops APIs."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import Any

from pydantic import BaseModel, ValidationError

from control_plane.broker_settings import BrokerSettings
from control_plane.settings import ControlPlaneSettings
from control_plane.workers import is_worker, supervise
from streamfleet.logs import describe_invalid, setup_logging


def _settings_help() -> str:
    lines = ["settings (environment variables; a JSON --config file gives defaults):"]

    def rows(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            if name == "broker":
                continue
            env = f"{prefix}{name.upper()}"
            default = field.default if field.default_factory is None else "(see docs)"
            desc = field.description or ""
            if "Secret" in str(field.annotation) or name in ("token_keys", "agent_secrets"):
                default = "(secret, required)"
            lines.append(f"  {env:<44} {desc} [default: {default}]")

    rows(ControlPlaneSettings, "STREAMFLEET_")
    rows(BrokerSettings, "STREAMFLEET_BROKER__")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.dedent(
        """\
        Run the control plane: the session API for the configurator frontend, the
        agent API for instance agents, the ops API, /metrics and /v1/openapi.json.
        It keeps no state of its own (Redis is the source of truth), so run as
        many replicas as you like behind a load balancer.
        """
    )
    parser.epilog = _settings_help()
    parser.add_argument(
        "--config", metavar="FILE", help="JSON file of settings (STREAMFLEET_CONFIG_FILE)"
    )
    parser.add_argument("--host", help="listen address (STREAMFLEET_HTTP_HOST)")
    parser.add_argument("--port", type=int, help="listen port (STREAMFLEET_HTTP_PORT)")
    parser.add_argument("--redis-url", help="Redis URL (STREAMFLEET_REDIS_URL)")


def load_settings(args: argparse.Namespace) -> ControlPlaneSettings:
    if args.config:
        os.environ["STREAMFLEET_CONFIG_FILE"] = args.config
    overrides: dict[str, Any] = {}
    if args.host:
        overrides["http_host"] = args.host
    if args.port is not None:
        overrides["http_port"] = args.port
    if args.redis_url:
        overrides["redis_url"] = args.redis_url
    return ControlPlaneSettings(**overrides)


def run(args: argparse.Namespace) -> int:
    from control_plane.app import create_app
    from streamfleet.edge import EdgeGuard, run_app

    setup_logging("control-plane")
    try:
        settings = load_settings(args)
        app = create_app(settings)
    except (ValidationError, ValueError) as exc:
        print(f"streamfleet control-plane: bad settings: {describe_invalid(exc)}", file=sys.stderr)
        return 2
    redis = (
        f"sentinels {','.join(settings.redis_sentinels)} master {settings.redis_sentinel_master}"
        if settings.redis_sentinels
        else settings.redis_url.split("@")[-1]
    )
    if not is_worker():
        print(
            f"control plane on http://{settings.http_host}:{settings.http_port} "
            f"(redis {redis}, event loop {settings.event_loop})",
            flush=True,
        )
    if settings.workers > 1:
        if not settings.http_port:
            print("streamfleet control-plane: workers > 1 needs a fixed --port", file=sys.stderr)
            return 2
        return supervise(_env_of(args), settings.workers)
    guard = EdgeGuard(
        header_timeout_s=settings.header_timeout_s,
        max_connections_per_ip=settings.max_connections_per_ip,
    )
    run_app(
        app, settings.http_host, settings.http_port, guard, settings.event_loop,
        reuse_port=is_worker(),
    )  # fmt: skip
    return 0


def _env_of(args: argparse.Namespace) -> dict[str, str]:
    """This command line's options as the settings' variables, for the workers
    (through their environment: a Redis URL may hold a password, argv is public)."""
    env: dict[str, str] = {}
    for name, value in (("STREAMFLEET_CONFIG_FILE", args.config),
                        ("STREAMFLEET_HTTP_HOST", args.host),
                        ("STREAMFLEET_HTTP_PORT", args.port),
                        ("STREAMFLEET_REDIS_URL", args.redis_url)):  # fmt: skip
        if value is not None and value != "":
            env[name] = str(value)
    return env

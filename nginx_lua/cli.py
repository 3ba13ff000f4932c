"""`streamfleet router-config`: render one region's router into an nginx prefix.

Prints the path of the rendered nginx.conf and the command that runs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from nginx_lua.process import nginx_argv
from nginx_lua.render import RouterSettings, render_router


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = RouterSettings.model_fields
    parser.add_argument("--prefix", type=Path, required=True, help="nginx prefix directory")
    parser.add_argument("--key-file", type=Path, required=True, help="JSON kid -> base64url key")
    parser.add_argument("--region", default=defaults["region"].default)
    parser.add_argument("--listen", default=defaults["listen"].default, help="IPV4:PORT")
    parser.add_argument(
        "--region-cidr", default=defaults["region_cidr"].default, help="instance private IPs"
    )
    parser.add_argument("--agent-port", type=int, default=defaults["agent_port"].default)
    parser.add_argument("--worker-processes", default=defaults["worker_processes"].default)
    parser.add_argument("--access-log", type=Path, help="default PREFIX/logs/access.log")
    parser.add_argument("--error-log", type=Path, help="default PREFIX/logs/error.log")
    parser.add_argument(
        "--websocket-read-timeout", default=defaults["websocket_read_timeout"].default
    )
    parser.add_argument(
        "--test-endpoints",
        action="store_true",
        help="add /_test/verify (tests only; never in a deployed router)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = RouterSettings(
            region=args.region,
            listen=args.listen,
            region_cidr=args.region_cidr,
            agent_port=args.agent_port,
            key_file=args.key_file,
            worker_processes=args.worker_processes,
            access_log=args.access_log,
            error_log=args.error_log,
            websocket_read_timeout=args.websocket_read_timeout,
            test_endpoints=args.test_endpoints,
        )
        conf = render_router(args.prefix, settings)
    except (ValidationError, ValueError, OSError) as exc:
        print(f"router-config: {exc}", file=sys.stderr)
        return 2
    print(conf)
    print("run: " + " ".join(nginx_argv(args.prefix, conf)), file=sys.stderr)
    return 0

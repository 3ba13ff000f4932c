"""The `streamfleet` command: one entry point, one subcommand per part.

Each subcommand lives in its own module exposing `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their subcommand is used,
so `streamfleet --help` is instant and needs no server libraries loaded.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    name: str
    module: str
    summary: str


# One line per subcommand. Keep the summaries short: they form `--help`.
# fmt: off
COMMANDS: tuple[Command, ...] = (
    Command("up", "simulators.local_stack.cli", "run the whole system locally (moto, stubs, real servers) until Ctrl-C"),
    Command("status", "simulators.status_cli", "print every region's instances, queue and sessions (ops API)"),
    Command("demo", "control_plane.demo", "start a throwaway Redis and watch the broker assign, queue and end sessions"),
    Command("control-plane", "control_plane.cli", "run the control plane: session, agent and ops APIs"),
    Command("agent", "regional_stack.agent.cli", "run the instance agent: signalling, lifecycle, renderer"),
    Command("pool-manager", "regional_stack.pool.cli", "size a region's warm pool (ASG)"),
    Command("upgrade", "regional_stack.pool.upgrade_cli", "replace a region's GPU instances with the current image, ending no session"),
    Command("simulate", "simulators.launch_day.cli", "simulate a launch day per pool policy"),
    Command("router-config", "nginx_lua.cli", "render a region's router (nginx + Lua) into an nginx prefix"),
)
# fmt: on

EPILOG = """\
Run `streamfleet COMMAND --help` for the options of a command.
Every option can also be set by environment variable (STREAMFLEET_*); see the README.
"""


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamfleet",
        description="GPU 3D-streaming session orchestrator: one user, one GPU, "
        "nearest region with capacity, a fair queue when everything is full.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s 0.1.0")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=command.summary[0].upper() + command.summary[1:] + ".",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.name == selected:
            importlib.import_module(command.module).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    names = {c.name for c in COMMANDS}
    selected = next((a for a in args_list if a in names), None)
    parser = build_parser(selected)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(next(c.module for c in COMMANDS if c.name == args.command))
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

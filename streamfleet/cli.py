"""The `streamfleet` command: one entry point, one subcommand per part.

Each subcommand lives in its own module exposing `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their subcommand is used,
so `streamfleet --help` is instant and needs no server libraries loaded.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import sys
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    name: str
    module: str
    summary: str
    extra: str  # the install extra that brings this command's dependencies


# One line per subcommand. Keep the summaries short: they form `--help`.
# fmt: off
COMMANDS: tuple[Command, ...] = (
    Command("up", "simulators.local_stack.cli", "run the whole system locally (moto, stubs, real servers) until Ctrl-C", "local"),
    Command("status", "simulators.status_cli", "print every region's instances, queue and sessions (ops API)", ""),
    Command("demo", "control_plane.demo", "start a throwaway Redis and watch the broker assign, queue and end sessions", "server"),
    Command("control-plane", "control_plane.cli", "run the control plane: session, agent and ops APIs", "server"),
    Command("agent", "regional_stack.agent.cli", "run the instance agent: signalling, lifecycle, renderer", "agent"),
    Command("pool-manager", "regional_stack.pool.cli", "size a region's warm pool (ASG)", "server"),
    Command("upgrade", "regional_stack.pool.upgrade_cli", "replace a region's GPU instances with the current image, ending no session", "server"),
    Command("simulate", "simulators.launch_day.cli", "simulate a launch day per pool policy", "sim"),
    Command("router-config", "nginx_lua.cli", "render a region's router (nginx + Lua) into an nginx prefix", ""),
)
# fmt: on

OWN_PACKAGES = frozenset(
    {"streamfleet", "control_plane", "regional_stack", "simulators", "nginx_lua"}
)

EPILOG = """\
Run `streamfleet COMMAND --help` for the options of a command.
Every option can also be set by environment variable (STREAMFLEET_*); see the README.
"""


def version() -> str:
    """The installed distribution's version; the source tree's when run uninstalled."""
    try:
        return importlib.metadata.version("streamfleet")
    except importlib.metadata.PackageNotFoundError:
        from streamfleet import __version__

        return __version__


def build_parser(selected: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamfleet",
        description="GPU 3D-streaming session orchestrator: one user, one GPU, "
        "nearest region with capacity, a fair queue when everything is full.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
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
    try:
        parser = build_parser(selected)
    except ModuleNotFoundError as exc:
        return missing_dependency(next(c for c in COMMANDS if c.name == selected), exc)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    command = next(c for c in COMMANDS if c.name == args.command)
    try:
        module = importlib.import_module(command.module)
    except ModuleNotFoundError as exc:
        return missing_dependency(command, exc)
    try:
        return int(module.run(args))
    except KeyboardInterrupt:
        return 130


def missing_dependency(command: Command, exc: ModuleNotFoundError) -> int:
    """A role's dependency is not installed: name the extra that brings it."""
    top = (exc.name or "").split(".")[0]
    if not command.extra or top in OWN_PACKAGES:
        raise exc  # a bug in streamfleet itself, not a missing extra
    print(
        f"streamfleet {command.name}: the Python package {top!r} is missing; "
        f"install this role with: pip install 'streamfleet[{command.extra}]'",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

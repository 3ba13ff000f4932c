"""`streamfleet agent`: run the instance agent on a GPU instance (or a stand-in)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

EPILOG = """\
All settings come from the environment (prefix STREAMFLEET_AGENT_); the flags
above override the most common ones. Secrets (SECRET, TURN_SECRET, TOKEN_KEYS)
are read only from the environment.

Renderer: RENDERER_COMMAND is started by the agent, restarted if it dies, and
restarted between sessions to reset it. It must connect to the agent as a Pixel
Streaming streamer at {streamer_url} (ws://STREAMER_HOST:STREAMER_PORT/).
Placeholders filled in: {streamer_url} {width} {height} {fps}.
The default is the aiortc renderer stub. To run a real Unreal Engine Pixel
Streaming app instead:

  STREAMFLEET_AGENT_RENDERER_COMMAND='/opt/configurator/Linux/Configurator.sh
    -RenderOffScreen -ForceRes -ResX={width} -ResY={height}
    -PixelStreamingURL={streamer_url} -AllowPixelStreamingCommands'

No other change: the agent speaks Epic's signalling protocol 1.3.0 to it and
relays players from /signal. See docs/agent.md and docs/pixel-streaming.md.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--control-plane-url", help="STREAMFLEET_AGENT_CONTROL_PLANE_URL")
    parser.add_argument("--region", help="STREAMFLEET_AGENT_REGION")
    parser.add_argument("--instance-id", help="STREAMFLEET_AGENT_INSTANCE_ID")
    parser.add_argument("--private-ip", help="STREAMFLEET_AGENT_PRIVATE_IP (signalling binds here)")
    parser.add_argument("--port", type=int, help="STREAMFLEET_AGENT_PORT (default 8700)")
    parser.add_argument(
        "--streamer-port", type=int, help="STREAMFLEET_AGENT_STREAMER_PORT (default 8888)"
    )
    parser.add_argument("--renderer-command", help="STREAMFLEET_AGENT_RENDERER_COMMAND")
    parser.add_argument("--log-level", default="INFO")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from regional_stack.agent.root import run as run_agent
    from regional_stack.agent.settings import AgentSettings
    from streamfleet.logs import describe_invalid, setup_logging

    setup_logging("agent", args.log_level)
    overrides = {
        k: v
        for k, v in {
            "control_plane_url": args.control_plane_url,
            "region": args.region,
            "instance_id": args.instance_id,
            "private_ip": args.private_ip,
            "port": args.port,
            "streamer_port": args.streamer_port,
            "renderer_command": args.renderer_command,
        }.items()
        if v is not None
    }
    try:
        settings = AgentSettings(**overrides)
    except ValidationError as exc:
        print(f"streamfleet agent: bad settings: {describe_invalid(exc)}", file=sys.stderr)
        return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(settings, stop)

    asyncio.run(main())
    return 0

"""A renderer that counts: it speaks just enough of the streamer protocol for the
agent to call it ready, and appends a line to --count-file for every player the
agent lets through to it (`playerConnected`). Anything refused in front of the
renderer must leave the file as it was."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import aiohttp


async def run(url: str, count_file: str) -> int:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "identify":
                await ws.send_str(json.dumps({"type": "endpointId", "id": "canary"}))
            elif data.get("type") == "playerConnected":
                _count(count_file, str(data.get("playerId")))
    return 1


def _count(count_file: str, player_id: str) -> None:
    with open(count_file, "a") as out:
        out.write(player_id + "\n")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--signalling-url", required=True)
    p.add_argument("--count-file", required=True)
    args = p.parse_args()
    return asyncio.run(run(args.signalling_url, args.count_file))


if __name__ == "__main__":
    sys.exit(main())

"""`streamfleet demo`: watch the broker assign, queue and end sessions.

Starts its own Redis on a free loopback port (or uses --redis-url), makes a
tiny two-region fleet, and walks through the session lifecycle, printing
what the broker decided at each step. Nothing else is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from control_plane.broker import Broker
from control_plane.broker_settings import BrokerSettings
from control_plane.domain import Placement
from streamfleet.lifecycle import EndReason
from streamfleet.localproc import free_port, start_redis

EU, EUW = "eu-central-1", "eu-west-1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        help="use this Redis (its data is flushed!) instead of starting a throwaway one",
    )


def describe(p: Placement) -> str:
    s = p.session
    if p.assigned:
        return f"{s.client_id:<6} -> {s.state:<9} {s.region}/{s.instance_id} ip={s.private_ip} epoch={s.epoch}"
    return f"{s.client_id:<6} -> {s.state:<9} position {p.position}, about {p.estimated_wait_s} s"


async def walkthrough(client: Any) -> None:
    await client.flushdb()
    broker = Broker(client, [EU, EUW], BrokerSettings(avg_session_s=120))
    print("== a fleet of two instances: one in eu-central-1, one in eu-west-1")
    await broker.register_instance(
        EU, "i-eu-1", "127.11.0.1", instance_type="g4dn.2xlarge", ready=True
    )
    await broker.register_instance(
        EUW, "i-euw-1", "127.12.0.1", instance_type="g4dn.2xlarge", ready=True
    )

    print("\n== four visitors from Frankfurt (nearest first: eu-central-1, then eu-west-1)")
    placed = {}
    for name in ("anna", "ben", "chloe", "dan"):
        placed[name] = await broker.create_session(name, [EU, EUW])
        print("  " + describe(placed[name]))

    print("\n== anna clicks again: same session (idempotent per client)")
    again = await broker.create_session("anna", [EU, EUW])
    print(
        f"  anna   -> same session: {again.session.session_id == placed['anna'].session.session_id}"
    )

    print("\n== anna leaves; her GPU recycles and goes to the head of the queue")
    await broker.end_session(placed["anna"].session.session_id, EndReason.CLIENT_ENDED)
    await broker.mark_ready(EU, "i-eu-1")  # the agent reset the renderer
    chloe = await broker.get_session(placed["chloe"].session.session_id)
    print(
        f"  chloe  -> {chloe.state:<9} {chloe.region}/{chloe.instance_id} epoch={chloe.epoch} (new fencing epoch)"
    )
    dan = await broker.get_session(placed["dan"].session.session_id)
    position, wait = await broker.queue_position(dan)
    print(f"  dan    -> {dan.state:<9} position {position}, about {wait} s")

    print("\n== ops drain eu-west-1's instance: ben keeps streaming, then it drains")
    await broker.drain(EUW, "i-euw-1")
    await broker.end_session(placed["ben"].session.session_id, EndReason.IDLE)
    states = await broker.instance_states(EUW)
    print(f"  i-euw-1 -> {states['i-euw-1']}")

    for region in (EU, EUW):
        snap = await broker.snapshot(region)
        busy = {k: v for k, v in snap.instances.items() if v}
        print(f"\n{region}: instances {busy}, queue {snap.queue_depth}, live {snap.live_sessions}")


async def main_async(redis_url: str | None) -> None:
    if redis_url:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await walkthrough(client)
        finally:
            await client.aclose()
        return
    with tempfile.TemporaryDirectory(prefix="streamfleet-demo-") as tmp:
        port = free_port()
        print(f"starting a throwaway redis-server on 127.0.0.1:{port}")
        server = start_redis(port, Path(tmp))
        client = aioredis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        try:
            await walkthrough(client)
        finally:
            await client.aclose()
            server.stop()
            print("\nstopped redis-server")


def run(args: argparse.Namespace) -> int:
    asyncio.run(main_async(args.redis_url))
    return 0

"""The control plane's Redis client: single node, Sentinel or Cluster, health-checked.

What happens when Redis goes away and comes back (restart, failover, node
replacement), and why:

* A connection taken from the pool is checked before it carries a command:
  redis-py sends a PING on a connection idle longer than
  `redis_health_check_interval_s`, and a PING that fails reconnects (with
  bounded backoff) before the command is written. TCP keepalive finds dead
  peers on idle sockets.
* The first connection error on a pool drops every idle connection of that
  pool (`_IdleDropper`): after a restart or failover the old sockets are all
  dead, so none of them gets to fail a user's request later.
* Retries are bounded (`redis_retries`, jittered backoff capped at 0.5 s) and
  happen only where nothing can run twice: connecting, the health-check PING,
  a command whose bytes never left (a failed write), and read commands. A
  script (EVAL/EVALSHA) whose bytes were written and whose reply was lost may
  have run: redis-py would send it again, and not every script is idempotent
  (region_reserve run twice reserves a second instance for one session). Such
  a call raises `ReplyLost` instead; the broker reports it as "store
  unavailable" (503, Retry-After), and the caller repeats the whole operation,
  which is idempotent (create per client_id, end per session).
* Sentinel: the primary's address is asked of the sentinels on every new
  connection and every `redis_sentinel_check_s`; when it moved, every
  connection is closed (`RedisHandle._follow_primary`). A demoted primary's
  READONLY (the script did not run) drops the connection and the next attempt
  reaches the new primary.

Redis Cluster (redis-py's RedisCluster) gets the health check, keepalive and
timeouts, but its own command retry cannot be limited to unsent commands; see
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    parse_url,
)
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, TimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from control_plane.broker import RedisClient, as_client
from control_plane.broker.plumbing import ReplyLost
from control_plane.settings import ControlPlaneSettings

log = logging.getLogger("streamfleet.control_plane.redis")

# Idle sockets: first probe after 10 s, then every 3 s, dead after 3 misses.
KEEPALIVE = {socket.TCP_KEEPIDLE: 10, socket.TCP_KEEPINTVL: 3, socket.TCP_KEEPCNT: 3}
_SCRIPT_COMMANDS = frozenset({"EVAL", "EVALSHA"})
_DROP_EVERY_S = 0.5  # at most one pool-wide drop per this, however many calls fail


class _IdleDropper:
    """Disconnects a pool's idle connections after a connection error (throttled)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._last = float("-inf")

    async def drop(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._last < _DROP_EVERY_S:
            return
        self._last = now
        await self.pool.disconnect(inuse_connections=False)


class _ScriptSafe(AbstractConnection):
    """Turns a lost script reply into ReplyLost (never retried) and drops the pool's
    idle connections on any connection error. Mixed into redis-py's connections."""

    def __init__(self, **kwargs: Any) -> None:
        self._dropper: _IdleDropper | None = kwargs.pop("idle_dropper", None)
        self._script_sent = False
        super().__init__(**kwargs)

    async def send_command(self, *args: Any, **kwargs: Any) -> None:
        # Set only once the bytes are written: the health-check PING inside
        # send_command passes through here too, and a failed write ran nothing.
        self._script_sent = False
        try:
            await super().send_command(*args, **kwargs)
        except (ConnectionError, TimeoutError):
            await self._drop_idle()
            raise
        self._script_sent = str(args[0]).upper() in _SCRIPT_COMMANDS

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        except ReadOnlyError as exc:
            # A demoted primary (ElastiCache moves its endpoint's DNS; the old
            # socket stays open): refused before anything ran. Reconnect, so
            # the retry resolves the endpoint again and reaches the new primary.
            await self.disconnect()
            await self._drop_idle()
            raise ConnectionError("the primary was demoted to a replica") from exc
        except (ConnectionError, TimeoutError) as exc:
            await self._drop_idle()
            # READONLY from a demoted primary: refused before any write, safe to resend.
            if self._script_sent and not isinstance(exc.__context__, ReadOnlyError):
                # (A Sentinel connection turns READONLY into ConnectionError itself.)
                raise ReplyLost(f"script reply lost, it may have run: {exc}") from exc
            raise

    async def _drop_idle(self) -> None:
        if self._dropper is not None:
            await self._dropper.drop()


class SafeConnection(_ScriptSafe, Connection):
    pass


class SafeSSLConnection(_ScriptSafe, SSLConnection):
    pass


class _FollowsPrimary(_ScriptSafe, SentinelManagedConnection):
    """Never sends to a node that is no longer the primary the pool knows of (a
    connection that was opening while the primary moved would otherwise stay on
    the old one, whose writes Sentinel discards when it demotes it)."""

    async def send_command(self, *args: Any, **kwargs: Any) -> None:
        primary = self.connection_pool.master_address
        if self.is_connected and primary is not None and (self.host, self.port) != primary:
            await self.disconnect()
        if not self.is_connected:
            # connect() asks the sentinels; redis-py's send path would reconnect to
            # the address this connection last had (a retry after an error does).
            await self.connect()  # type: ignore[no-untyped-call]
        await super().send_command(*args, **kwargs)


class SafeSentinelConnection(_FollowsPrimary):
    pass


class SafeSentinelSSLConnection(_FollowsPrimary, SentinelManagedSSLConnection):
    pass


@dataclass
class RedisHandle:
    """The client the broker uses, and everything to close with it (sentinel clients)."""

    client: RedisClient
    sentinel: Sentinel | None = None
    pool: SentinelConnectionPool | None = None
    master: str = ""
    check_s: float = 0.5
    _watch: asyncio.Task[None] | None = None

    def start(self) -> None:
        """With Sentinel: follow the primary (call from the running event loop)."""
        if self.sentinel is not None and self._watch is None:
            self._watch = asyncio.create_task(self._follow_primary(), name="redis-sentinel-watch")

    async def _follow_primary(self) -> None:
        """Ask the sentinels for the primary every `check_s`; when it moved, record it
        and close the idle connections; a connection in use moves before its next
        command (`_FollowsPrimary`). A planned failover leaves the old primary
        accepting writes until Sentinel demotes it (about 10 s later), and those
        writes are then lost, so no command may go there once we know. (Closing
        in-use connections from here instead stalled their callers for seconds.)"""
        assert self.sentinel is not None and self.pool is not None
        while True:
            await asyncio.sleep(self.check_s)
            try:
                address = await self.sentinel.discover_master(self.master)
            except (ConnectionError, TimeoutError):
                continue  # no sentinel reachable or no primary now: connections find out
            if self.pool.master_address not in (None, address):
                log.warning("redis primary moved to %s:%s; reconnecting", *address)
                self.pool.master_address = address
                await self.pool.disconnect(inuse_connections=False)

    async def aclose(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.client.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def connection_options(settings: ControlPlaneSettings) -> dict[str, Any]:
    """Socket, health-check and retry options shared by every mode."""
    return {
        "socket_timeout": settings.redis_socket_timeout_s,
        "socket_connect_timeout": settings.redis_connect_timeout_s,
        "socket_keepalive": True,
        "socket_keepalive_options": KEEPALIVE,
        "health_check_interval": settings.redis_health_check_interval_s,
        # redis-py 8 defaults this to "auto", and while it is on its pool skips
        # the check that a pooled socket is still open (ensure_connection): every
        # connection to a restarted Redis then failed one request. We use no
        # maintenance push notifications (they need RESP3 and a server that sends them).
        "maint_notifications_config": MaintNotificationsConfig(enabled=False),
        # No CLIENT SETINFO on connect: Redis < 7.2 answers it with an error, and a
        # connection cut between that command and its reply (a restart) was seen
        # handing the stale error to the next command, a script.
        "driver_info": None,
        "retry": Retry(
            ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries=settings.redis_retries
        ),
    }


def _install_dropper(pool: ConnectionPool) -> None:
    pool.connection_kwargs["idle_dropper"] = _IdleDropper(pool)


def connect_redis(settings: ControlPlaneSettings) -> RedisHandle:
    """Build (not connect: redis-py connects lazily) the client `settings` describe."""
    options = connection_options(settings)
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(
            settings.redis_url, max_connections=settings.redis_max_connections, **options
        )
        return RedisHandle(as_client(cluster))
    url: dict[str, Any] = dict(parse_url(settings.redis_url))
    tls = url.pop("connection_class", Connection) is SSLConnection
    if settings.redis_sentinels:
        sentinel_password = settings.redis_sentinel_password.get_secret_value() or None
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [_host_port(s) for s in settings.redis_sentinels],
            sentinel_kwargs={
                "password": sentinel_password,
                **{k: v for k, v in options.items() if k != "health_check_interval"},
            },
        )
        node_options: dict[str, Any] = {
            "connection_class": SafeSentinelSSLConnection if tls else SafeSentinelConnection,
            "max_connections": settings.redis_max_connections,
            **{k: v for k, v in url.items() if k in ("username", "password", "db")},
            **options,
        }
        client = sentinel.master_for(settings.redis_sentinel_master, **node_options)
        _install_dropper(client.connection_pool)
        return RedisHandle(
            as_client(client),
            sentinel,
            client.connection_pool,
            settings.redis_sentinel_master,
            settings.redis_sentinel_check_s,
        )
    pool = ConnectionPool(
        connection_class=SafeSSLConnection if tls else SafeConnection,
        max_connections=settings.redis_max_connections,
        **url,
        **options,
    )
    _install_dropper(pool)
    return RedisHandle(as_client(Redis.from_pool(pool)))


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)

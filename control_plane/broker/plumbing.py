"""The Redis connection as the broker sees it: a typed client, a bound on
calls in flight, the registered scripts, and storage failures translated into
domain errors here, so no caller (HTTP code included) catches a Redis error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, Protocol, TypeVar, cast

from redis import exceptions as rx

from control_plane.broker.replies import Raw
from control_plane.domain import IpConflict, NonceMismatch, StoreUnavailable, TransitionRefused
from control_plane.scripts import Scripts

T = TypeVar("T")


class ReplyLost(rx.RedisError):
    """A script was sent and its reply never came (control_plane/redis_client.py): it
    may have run, so the client does not resend it; the whole operation may be repeated."""


# Errors that mean "Redis was briefly unreachable or busy": a restart, a
# failover, AOF loading, a cluster slot moving. Translated to StoreUnavailable.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    ReplyLost,
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.TryAgainError,
    rx.ClusterDownError,
    rx.ReadOnlyError,
)


class RedisClient(Protocol):
    """The commands streamfleet uses, as redis-py's asyncio clients (single
    node and Cluster) answer them without decode_responses."""

    def register_script(self, script: str) -> Any: ...
    async def incr(self, name: str, amount: int = 1) -> int: ...
    async def hincrby(self, name: str, key: str, amount: int = 1) -> int: ...
    async def zrank(self, name: str, value: str) -> int | None: ...
    async def zcard(self, name: str) -> int: ...
    async def hvals(self, name: str) -> list[bytes]: ...
    async def hgetall(self, name: str) -> dict[bytes, bytes]: ...
    async def hget(self, name: str, key: str) -> bytes | None: ...
    async def hmget(self, name: str, keys: list[str]) -> list[bytes | None]: ...
    async def hscan(
        self, name: str, cursor: int = 0, match: str | None = None, count: int | None = None
    ) -> tuple[int, dict[bytes, bytes]]: ...
    async def hset(self, name: str, *, mapping: dict[str, str]) -> int: ...
    async def hdel(self, name: str, *keys: str) -> int: ...
    async def zrem(self, name: str, *values: str) -> int: ...
    async def zrange(
        self, name: str, start: int, end: int, *, withscores: bool = False
    ) -> list[Any]: ...
    async def zrangebyscore(
        self, name: str, min: float | str, max: float | str, start: int, num: int,
        withscores: bool = False,
    ) -> list[Any]: ...  # fmt: skip
    async def zadd(self, name: str, mapping: dict[str, float]) -> int: ...
    async def zremrangebyscore(self, name: str, min: float | str, max: float | str) -> int: ...
    async def pexpire(self, name: str, time: int) -> bool: ...
    async def zcount(self, name: str, min: float | str, max: float | str) -> int: ...
    async def time(self) -> tuple[int, int]: ...
    async def set(
        self, name: str, value: str, *, nx: bool = False, px: int | None = None
    ) -> Any: ...
    async def ping(self) -> Any: ...
    def scan_iter(self, *, match: str, count: int) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


def as_client(client: object) -> RedisClient:
    """The one cast from redis-py's loosely typed clients to the protocol above."""
    return cast(RedisClient, client)


def _refusal(message: str) -> Exception | None:
    """A typed script refusal (see control_plane/lua/_common.lua check_move).
    Redis appends " script: <sha>, on @user_script:<line>." to errors raised
    inside a function; only the leading words are ours."""
    words = message.split(" script: ")[0].split()
    if len(words) == 5 and words[0] == "TRANSITION":
        return TransitionRefused(words[1], words[2], words[3], words[4])
    if words and words[0] == "IP_CONFLICT":
        return IpConflict(
            " ".join(words[1:]).replace("has", "is registered with"), field="private_ip"
        )
    if words and words[0] == "NONCE_MISMATCH":
        return NonceMismatch(
            f"{' '.join(words[1:])} was registered with another nonce", field="nonce"
        )
    return None


class Connection:
    def __init__(self, client: RedisClient, max_inflight: int) -> None:
        self.client = client
        self.scripts = Scripts(client)
        # Bounds connections under bursts: callers wait here, not in Redis' accept queue.
        self._inflight = asyncio.Semaphore(max_inflight)

    async def run(self, call: Awaitable[T]) -> T:
        """Await one Redis call under the in-flight bound, translating failures."""
        try:
            async with self._inflight:
                return await call
        except rx.ResponseError as exc:
            refusal = _refusal(str(exc))
            if refusal is None:
                raise
            raise refusal from None
        except UNAVAILABLE_ERRORS as exc:
            raise StoreUnavailable(f"session store unavailable: {type(exc).__name__}") from exc

    async def script(self, name: str, keys: list[str], args: Sequence[str | int]) -> list[Raw]:
        reply: list[Raw] = await self.run(self.scripts[name](keys, list(args)))
        return reply

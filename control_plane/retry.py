"""Which Redis failures are worth retrying, and how.

Only idempotent broker operations are retried (create is idempotent per
client_id, end per session, heartbeats and reaping by construction), and
only on errors that mean "Redis was briefly unreachable or busy": a restart,
a failover, AOF loading, a cluster slot moving.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import exceptions as rx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

T = TypeVar("T")

RETRYABLE_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    rx.ConnectionError,
    rx.TimeoutError,
    rx.BusyLoadingError,
    rx.TryAgainError,
    rx.ClusterDownError,
)


async def with_redis_retry(
    call: Callable[[], Awaitable[T]], *, attempts: int = 6, max_seconds: float = 5.0
) -> T:
    """Run `call` again on a retryable Redis error: jittered exponential backoff."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(RETRYABLE_REDIS_ERRORS),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover

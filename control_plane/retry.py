"""Which Redis failures are worth retrying, and how.

Only idempotent broker operations are retried (create is idempotent per
client_id, end per session, heartbeats and reaping by construction), and
only on errors that mean "Redis was briefly unreachable or busy": a restart,
a failover, AOF loading, a cluster slot moving.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from control_plane.domain import StoreUnavailable

T = TypeVar("T")

# The broker's adapter (control_plane/broker/plumbing.py) turns every
# "Redis briefly away" error into StoreUnavailable; nothing else is retried.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable,)


async def with_redis_retry(
    call: Callable[[], Awaitable[T]], *, attempts: int = 6, max_seconds: float = 5.0
) -> T:
    """Run `call` again on a retryable Redis error: jittered exponential backoff."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(RETRYABLE_ERRORS),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover

"""The agent's one retry policy for the control plane (tenacity).

Only failures that may pass are retried: no answer, 5xx, 429
(`ControlPlaneError.retryable`). A 4xx is the control plane saying no; a
retry would get the same answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    stop_never,
    wait_exponential,
    wait_random,
)

from regional_stack.agent.control_plane_client import ControlPlaneError

log = logging.getLogger("streamfleet.agent.retry")

# An event is worth this many tries (about 15 s in all); after that the next
# heartbeat carries the truth anyway (state, session, epoch).
EVENT_ATTEMPTS = 8


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, ControlPlaneError) and exc.retryable


def control_plane_retry(
    *,
    forever: bool = False,
    max_wait_s: float = 5.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AsyncRetrying:
    """Exponential backoff with jitter (0.2 s doubling up to `max_wait_s`).

    `forever`: registration, without which the instance serves nobody, retries
    every failure until it succeeds (a wrong secret is logged each time, so ops
    see it); everything else retries only retryable failures, a bounded number
    of times, then re-raises the last error.
    """
    return AsyncRetrying(
        retry=retry_if_exception(lambda e: isinstance(e, ControlPlaneError))
        if forever
        else retry_if_exception(_retryable),
        wait=wait_exponential(multiplier=0.2, max=max_wait_s) + wait_random(0, 0.1),
        stop=stop_never if forever else stop_after_attempt(EVENT_ATTEMPTS),
        before_sleep=before_sleep_log(log, logging.WARNING),
        sleep=sleep,
        reraise=True,
    )

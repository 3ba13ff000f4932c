"""When each region last served queue heads: the input of queue wait estimates.

One sorted set per region (`sf:{region}:served`, member session id, score the
ms it was served), trimmed to the window on every write and expiring with it,
so it stays small and an idle region's set disappears. It lives in the
region's hash slot and is shared by every control-plane replica: each replica
estimates from all serves, not only the ones it settled itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from control_plane import keys
from control_plane.queue_estimate import ServedWindow, service_rate_per_s

RedisCall = Callable[..., Awaitable[Any]]


class ServedLog:
    def __init__(self, call: RedisCall, window_s: float) -> None:
        # `call(command, *args)`: the broker's bounded Redis call.
        self._call = call
        self.window_ms = int(window_s * 1000)

    async def record(self, region: str, session_id: str, now_ms: int) -> None:
        key = keys.region_key(region, "served")
        await self._call("zadd", key, {session_id: now_ms})
        await self._call("zremrangebyscore", key, "-inf", now_ms - self.window_ms)
        await self._call("pexpire", key, self.window_ms)

    async def window(self, regions: Sequence[str], now_ms: int) -> ServedWindow:
        since = now_ms - self.window_ms
        windows = []
        for region in regions:
            key = keys.region_key(region, "served")
            count = int(await self._call("zcount", key, since, "+inf"))
            oldest = newest = None
            if count:
                first = await self._call(
                    "zrangebyscore", key, since, "+inf", start=0, num=1, withscores=True
                )
                last = await self._call("zrange", key, -1, -1, withscores=True)
                if first and last:
                    oldest = max(0.0, (now_ms - float(first[0][1])) / 1000)
                    newest = max(0.0, (now_ms - float(last[0][1])) / 1000)
            windows.append(ServedWindow(count, oldest, newest))
        return ServedWindow.merge(windows)

    async def rate_per_s(self, regions: Sequence[str], now_ms: int) -> float | None:
        return service_rate_per_s(await self.window(regions, now_ms))

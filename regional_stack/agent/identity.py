"""What the agent proves itself with: the instance identity document and its
signature from the instance metadata service (IMDSv2), and its registration
nonce, kept in an owner-only file so a restarted agent can register again as
the same instance (and nobody who lacks the file can). docs/agent-identity.md.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import aiohttp

TOKEN_TTL_S = 60


@dataclass(frozen=True)
class Identity:
    document: str
    signature: str


class ImdsError(RuntimeError):
    pass


async def fetch_identity(http: aiohttp.ClientSession, imds_url: str) -> Identity:
    """IMDSv2: a session token first (PUT), then the document and its signature."""
    base = imds_url.rstrip("/")
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with http.put(
            f"{base}/latest/api/token",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_S)},
            timeout=timeout,
        ) as resp:
            if resp.status != 200:
                raise ImdsError(f"IMDS token: HTTP {resp.status}")
            token = await resp.text()
        parts = []
        for name in ("document", "signature"):
            async with http.get(
                f"{base}/latest/dynamic/instance-identity/{name}",
                headers={"X-aws-ec2-metadata-token": token},
                timeout=timeout,
            ) as resp:
                if resp.status != 200:
                    raise ImdsError(f"IMDS identity {name}: HTTP {resp.status}")
                parts.append(await resp.text())
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ImdsError(f"IMDS unreachable: {exc!r}") from exc
    return Identity(document=parts[0], signature=parts[1])


def load_nonce(path: str) -> str:
    """The nonce of this instance: read from `path`, or made and written there (0600)
    on first use. An empty path keeps it in memory only: a restarted agent then
    cannot register again as this instance (tests, one-shot demos)."""
    if not path:
        return secrets.token_urlsafe(32)
    file = Path(path)
    with contextlib.suppress(FileNotFoundError):
        return file.read_text().strip()
    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    nonce = secrets.token_urlsafe(32)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another start won the race: use its nonce
        return file.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(nonce)
    return nonce

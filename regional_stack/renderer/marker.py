"""The input-sequence pixel marker: which input a frame reflects, readable from pixels.

Layout (top-left corner, `BLOCK` px squares, origin at (`ORIGIN`, `ORIGIN`)):

    row 0: 16 blocks, bit 15 first; white = 1, black = 0
    row 1: the same 16 bits inverted

The inverted row lets a decoder tell a marker from anything else (every pair
must disagree clearly) without a checksum, and large flat blocks survive VP8
and H.264 at modest bitrates. The browser page decodes it the same way from a
canvas. Pure numpy; no I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BITS = 16
BLOCK = 8
ORIGIN = 8
WIDTH = BITS * BLOCK
HEIGHT = 2 * BLOCK
# A pair of blocks must differ by this much luma to count as one clear bit.
MIN_CONTRAST = 64

Frame = npt.NDArray[np.uint8]


def draw(frame: Frame, seq: int) -> None:
    """Paint the marker for `seq` (taken mod 2**16) into an RGB frame, in place."""
    if frame.shape[0] < ORIGIN + HEIGHT or frame.shape[1] < ORIGIN + WIDTH:
        raise ValueError("frame too small for the marker")
    value = seq & 0xFFFF
    for i in range(BITS):
        bit = (value >> (BITS - 1 - i)) & 1
        x = ORIGIN + i * BLOCK
        frame[ORIGIN : ORIGIN + BLOCK, x : x + BLOCK] = 255 if bit else 0
        frame[ORIGIN + BLOCK : ORIGIN + HEIGHT, x : x + BLOCK] = 0 if bit else 255


def _block_luma(frame: Frame, row: int, i: int) -> float:
    # Sample the inner half of the block: its edges carry codec ringing.
    q = BLOCK // 4
    y = ORIGIN + row * BLOCK + q
    x = ORIGIN + i * BLOCK + q
    patch = frame[y : y + BLOCK - 2 * q, x : x + BLOCK - 2 * q].astype(np.float32)
    if patch.ndim == 3:
        # ITU-R BT.601 luma; close enough for black/white blocks.
        patch = patch[..., 0] * 0.299 + patch[..., 1] * 0.587 + patch[..., 2] * 0.114
    return float(patch.mean())


def decode(frame: Frame) -> int | None:
    """The sequence number in a decoded frame, or None when no valid marker is there."""
    if frame.shape[0] < ORIGIN + HEIGHT or frame.shape[1] < ORIGIN + WIDTH:
        return None
    value = 0
    for i in range(BITS):
        top = _block_luma(frame, 0, i)
        bottom = _block_luma(frame, 1, i)
        if abs(top - bottom) < MIN_CONTRAST:
            return None
        value = (value << 1) | (1 if top > bottom else 0)
    return value

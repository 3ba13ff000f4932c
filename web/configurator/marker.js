// Decoder of the renderer's input-sequence marker (a port of
// regional_stack/renderer/marker.py; docs/pixel-streaming.md "The frame marker").
//
// Every frame carries, top-left, the `seq` of the last input it reflects:
// from (8, 8), two rows of sixteen 8x8 px blocks, bit 15 first; row 0 white = 1,
// row 1 the inverse. The inverted row lets us tell a marker from ordinary
// picture content without a checksum, and flat 8x8 blocks survive the codec.

export const BITS = 16;
export const BLOCK = 8;
export const ORIGIN = 8;
export const WIDTH = BITS * BLOCK;
export const HEIGHT = 2 * BLOCK;
// A pair of blocks must differ by this much luma to count as one clear bit.
const MIN_CONTRAST = 64;

/** Mean BT.601 luma of the inner half of one block (its edges carry codec ringing). */
function blockLuma(pixels, stride, row, i) {
  const q = BLOCK / 4;
  const size = BLOCK - 2 * q;
  const y0 = ORIGIN + row * BLOCK + q;
  const x0 = ORIGIN + i * BLOCK + q;
  let sum = 0;
  for (let y = y0; y < y0 + size; y++) {
    for (let x = x0; x < x0 + size; x++) {
      const o = (y * stride + x) * 4; // RGBA
      sum += pixels[o] * 0.299 + pixels[o + 1] * 0.587 + pixels[o + 2] * 0.114;
    }
  }
  return sum / (size * size);
}

/**
 * The sequence number in an RGBA image (an ImageData's data and width), or
 * null when no valid marker is there (a scaled video, a frame before any input).
 */
export function decodeMarker(pixels, width, height) {
  if (width < ORIGIN + WIDTH || height < ORIGIN + HEIGHT) return null;
  let value = 0;
  for (let i = 0; i < BITS; i++) {
    const top = blockLuma(pixels, width, 0, i);
    const bottom = blockLuma(pixels, width, 1, i);
    if (Math.abs(top - bottom) < MIN_CONTRAST) return null;
    value = (value << 1) | (top > bottom ? 1 : 0);
  }
  return value;
}

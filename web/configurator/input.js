// Application input on the Pixel Streaming data channel
// (a port of regional_stack/renderer/input_protocol.py).
//
// Pixel Streaming's UIInteraction message (id 50): one byte id, a little-endian
// uint16 count of UTF-16 code units, then the JSON descriptor in UTF-16LE.
// This is byte for byte what Epic's frontend `emitUIInteraction` sends, so the
// same page drives the stub renderer and a real Unreal configurator.

export const UI_INTERACTION = 50;

/** Encode one descriptor, e.g. {type: "set_paint", color: "#1e90ff", seq: 7}. */
export function encodeUIInteraction(descriptor) {
  const text = JSON.stringify(descriptor);
  if (text.length > 0xffff) throw new Error("descriptor too long");
  const bytes = new Uint8Array(3 + 2 * text.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, UI_INTERACTION);
  view.setUint16(1, text.length, true);
  // JS strings are UTF-16 already: each code unit goes out little-endian.
  for (let i = 0; i < text.length; i++) view.setUint16(3 + 2 * i, text.charCodeAt(i), true);
  return bytes;
}

/**
 * Numbers inputs 1..65535 (the marker carries 16 bits) and remembers when each
 * was sent, so a decoded frame marker can be turned into input-to-frame latency.
 */
export class InputSequencer {
  constructor() {
    this.seq = 0;
    this.sentAt = new Map(); // seq -> performance.now() when sent
  }

  next() {
    this.seq = (this.seq % 0xffff) + 1;
    this.sentAt.set(this.seq, performance.now());
    // Keep the map small: only recent inputs can still show up in a frame.
    if (this.sentAt.size > 256) this.sentAt.delete(this.sentAt.keys().next().value);
    return this.seq;
  }

  /** Milliseconds from sending `seq` to now, once per seq; null when unknown or already taken. */
  takeLatency(seq) {
    const sent = this.sentAt.get(seq);
    if (sent === undefined) return null;
    this.sentAt.delete(seq);
    return performance.now() - sent;
  }
}

// Input sequence numbers for the input-to-frame figure.
//
// The page sends application input as UIInteraction descriptors through Epic's
// library (`emitUIInteraction`); each carries a `seq` the renderer draws into the
// frames that reflect it (marker.js), so the page can time input to frame.

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

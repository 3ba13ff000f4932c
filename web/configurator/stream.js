// One Pixel Streaming player connection: signalling WebSocket through the
// regional router, then WebRTC media and the input data channel through TURN.
// The Python twin used by the tests is regional_stack/signaling/player.py.
//
// Sequence (docs/pixel-streaming.md): open `{signaling_url}?token=` -> `config`
// -> we send `listStreamers` -> `streamerList` -> `subscribe` -> the renderer's
// `offer` -> our `answer` -> video + the `datachannel` it created.

import { encodeUIInteraction } from "./input.js";

/** Why a connection attempt or a live stream stopped; `kind` drives the page's message. */
export class StreamError extends Error {
  /**
   * kind: "refused"   signalling closed before it started (bad/expired token, instance busy, router down)
   *       "ended"     the agent ended the session (close code 4000, `reason` says why)
   *       "turn"      no TURN relay candidate: TURN refused our credentials or is unreachable
   *       "timeout"   no media within the deadline
   *       "lost"      an established stream dropped (network, renderer restart)
   */
  constructor(kind, message, reason = "") {
    super(message);
    this.kind = kind;
    this.reason = reason;
  }
}

const CONNECT_TIMEOUT_MS = 15000;
const GATHER_TIMEOUT_MS = 5000;
// WebRTC reports "disconnected" for short blips and often recovers by itself;
// only a blip longer than this counts as a lost stream.
const DISCONNECTED_GRACE_MS = 2500;
const ACTIVITY_INTERVAL_MS = 1000;
const MAX_STREAMER_POLLS = 100;

export class StreamConnection {
  /**
   * @param {object} p
   * @param {string} p.signalingUrl  from the session API (`stream.signaling_url`)
   * @param {string} p.token         the stream token (`stream.token`)
   * @param {object[]} p.iceServers  TURN servers with their short-lived credentials
   * @param {HTMLVideoElement} p.video
   * @param {(err: StreamError) => void} p.onStop  an established stream stopped
   * @param {() => void} [p.onChannelOpen]
   */
  constructor({ signalingUrl, token, iceServers, video, onStop, onChannelOpen }) {
    this.signalingUrl = signalingUrl;
    this.token = token;
    this.iceServers = iceServers;
    this.video = video;
    this.onStop = onStop;
    this.onChannelOpen = onChannelOpen;
    this.ws = null;
    this.pc = null;
    this.channel = null;
    this.closedByUs = false;
    this.lastActivity = 0;
  }

  /** Connect (or reconnect); resolves once WebRTC is connected, rejects with a StreamError. */
  connect() {
    this.#teardown();
    this.closedByUs = false;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#teardown();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new StreamError("timeout", "no video within 15 s")),
        CONNECT_TIMEOUT_MS,
      );
      this.#attempt({
        connected: () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve();
        },
        // Before `connected` every failure rejects connect(); after it they go to onStop.
        failed: (err) => (settled ? this.#stopped(err) : fail(err)),
      });
    });
  }

  #attempt(cb) {
    // The router wants the token on the first request (docs/router.md); a
    // browser WebSocket cannot set headers, so it goes in the query.
    const sep = this.signalingUrl.includes("?") ? "&" : "?";
    const ws = new WebSocket(`${this.signalingUrl}${sep}token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    let opened = false;
    let streamerPolls = 0;

    ws.onopen = () => (opened = true);
    ws.onclose = (event) => {
      if (this.ws !== ws || this.closedByUs) return;
      if (event.code === 4000) {
        // The agent ended the session (idle, max_duration, renderer crashed, ...).
        cb.failed(new StreamError("ended", `the stream was ended: ${event.reason}`, event.reason));
      } else if (!opened) {
        // Browsers hide the HTTP status of a refused upgrade (it is always 1006),
        // so the page asks the session API afterwards to say more.
        cb.failed(new StreamError("refused", "the streaming server refused the connection"));
      } else {
        cb.failed(new StreamError("lost", "the signalling connection dropped"));
      }
    };
    ws.onmessage = async (event) => {
      const msg = JSON.parse(event.data);
      try {
        if (msg.type === "config") {
          this.#send({ type: "listStreamers" });
        } else if (msg.type === "streamerList") {
          if (msg.ids && msg.ids.length) {
            this.#send({ type: "subscribe", streamerId: msg.ids[0] });
          } else if (++streamerPolls <= MAX_STREAMER_POLLS) {
            // The renderer is (re)starting; it registers within a second or two.
            setTimeout(() => this.#send({ type: "listStreamers" }), 100);
          } else {
            cb.failed(new StreamError("timeout", "the renderer never became available"));
          }
        } else if (msg.type === "offer") {
          await this.#answer(msg.sdp, cb);
        } else if (msg.type === "iceCandidate" && this.pc && msg.candidate) {
          await this.pc.addIceCandidate(msg.candidate);
        }
      } catch (err) {
        cb.failed(err instanceof StreamError ? err : new StreamError("lost", err.message));
      }
    };
  }

  async #answer(sdp, cb) {
    if (this.pc) this.pc.close();
    // Relay only: in production the GPU instance sits in a private subnet, so
    // TURN is the only path; forcing it here too means local runs test that path.
    const pc = new RTCPeerConnection({
      iceServers: this.iceServers,
      iceTransportPolicy: "relay",
    });
    this.pc = pc;
    let disconnectedTimer = null;

    pc.ontrack = (event) => {
      if (event.track.kind !== "video") return;
      this.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      this.video.play().catch(() => {}); // muted autoplay is allowed; ignore a racing pause
    };
    pc.ondatachannel = (event) => {
      this.channel = event.channel;
      this.channel.binaryType = "arraybuffer";
      this.channel.onopen = () => this.onChannelOpen?.();
      if (this.channel.readyState === "open") this.onChannelOpen?.();
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      const state = pc.connectionState;
      clearTimeout(disconnectedTimer);
      if (state === "connected") {
        cb.connected();
      } else if (state === "failed") {
        cb.failed(new StreamError("lost", "the media connection failed"));
      } else if (state === "disconnected") {
        disconnectedTimer = setTimeout(
          () => cb.failed(new StreamError("lost", "the media connection was interrupted")),
          DISCONNECTED_GRACE_MS,
        );
      }
    };

    await pc.setRemoteDescription({ type: "offer", sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    // Send one complete answer instead of trickling candidates: relay candidates
    // come from TURN within milliseconds, and a complete answer lets us tell
    // "TURN refused us" (no relay candidate at all) apart from a slow network.
    await waitForGathering(pc, GATHER_TIMEOUT_MS);
    const local = pc.localDescription.sdp;
    if (!/ typ relay/.test(local)) {
      throw new StreamError(
        "turn",
        "no TURN relay address: the TURN server refused the credentials or is unreachable",
      );
    }
    this.#send({ type: "answer", sdp: local });
  }

  #send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /** True when input can be sent. */
  get ready() {
    return this.channel !== null && this.channel.readyState === "open";
  }

  /** Send one input descriptor (with its `seq`) to the renderer. */
  sendInput(descriptor) {
    if (!this.ready) return false;
    this.channel.send(encodeUIInteraction(descriptor));
    // Input travels peer to peer, out of the agent's sight; tell it the user is
    // active (at most once a second) so it does not end the session as idle.
    const now = performance.now();
    if (now - this.lastActivity >= ACTIVITY_INTERVAL_MS) {
      this.lastActivity = now;
      this.#send({ type: "inputActivity" });
    }
    return true;
  }

  /** Report a measured input-to-frame latency to the agent (its Prometheus metrics). */
  reportInputToFrame(ms) {
    this.#send({ type: "stats", data: { inputToFrameMs: Math.round(ms) } });
  }

  #stopped(err) {
    if (this.closedByUs) return;
    this.#teardown();
    this.onStop(err);
  }

  #teardown() {
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "client closing");
    if (this.pc) this.pc.close();
    this.pc = null;
    this.channel = null;
  }

  /** Close for good (the user left). */
  close() {
    this.closedByUs = true;
    this.#teardown();
    this.video.srcObject = null;
  }
}

function waitForGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    };
    const check = () => pc.iceGatheringState === "complete" && done();
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

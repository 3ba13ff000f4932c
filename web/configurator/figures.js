// Live figures: frame rate, round trip, input-to-frame latency.
//
// - Frame rate: the growth of `framesDecoded` in the inbound video RTP stats,
//   i.e. frames the browser really decoded, not frames the server claims to send.
// - Round trip: `currentRoundTripTime` of the selected ICE candidate pair,
//   i.e. browser <-> TURN <-> instance as ICE measures it.
// - Input to frame: each input carries a sequence number and the renderer
//   draws the last one it applied into the frame (marker.js). We draw the top
//   left of every presented video frame into a small canvas, decode the marker,
//   and stop the clock for that input. This is what the user feels: send, render,
//   encode, network, decode, present.

import { decodeMarker, ORIGIN, WIDTH, HEIGHT } from "./marker.js";

const STATS_INTERVAL_MS = 1000;
const LATENCY_WINDOW = 20;

export class LiveFigures {
  /**
   * @param {() => HTMLVideoElement|null} getVideo  the library's video element (one per stream)
   * @param {() => RTCPeerConnection|null} getPc  the current connection (it changes on reconnect)
   * @param {import("./input.js").InputSequencer} sequencer
   * @param {(figures: object) => void} onUpdate
   */
  constructor(getVideo, getPc, sequencer, onUpdate) {
    this.getVideo = getVideo;
    this.getPc = getPc;
    this.sequencer = sequencer;
    this.onUpdate = onUpdate;
    this.canvas = document.createElement("canvas");
    this.canvas.width = ORIGIN + WIDTH;
    this.canvas.height = ORIGIN + HEIGHT;
    // willReadFrequently keeps the canvas on the CPU: getImageData every frame stays cheap.
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.latencies = [];
    this.last = { framesDecoded: null, at: 0 };
    this.figures = {
      fps: null,
      rttMs: null,
      inputToFrameMs: null,
      inputToFrameMedianMs: null,
      framesDecoded: 0,
      width: 0,
      height: 0,
      frameSeq: null,
      candidateType: null,
    };
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.timer = setInterval(() => this.#poll(), STATS_INTERVAL_MS);
    this.#watchFrames();
  }

  stop() {
    this.running = false;
    clearInterval(this.timer);
  }

  #watchFrames() {
    // requestVideoFrameCallback fires once per frame actually presented, which
    // is the moment that counts for input-to-frame latency.
    const video = this.getVideo();
    if (!video) return;
    const onFrame = () => {
      if (!this.running || this.getVideo() !== video) return;
      this.#readMarker(video);
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  #readMarker(video) {
    const w = this.canvas.width;
    const h = this.canvas.height;
    if (video.videoWidth < w || video.videoHeight < h) return;
    // Source rectangle in the video's own pixels: the marker is read unscaled
    // whatever size the video is shown at.
    this.ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
    const seq = decodeMarker(this.ctx.getImageData(0, 0, w, h).data, w, h);
    if (seq === null || seq === this.figures.frameSeq) return;
    this.figures.frameSeq = seq;
    const ms = this.sequencer.takeLatency(seq);
    if (ms === null) return;
    this.latencies.push(ms);
    if (this.latencies.length > LATENCY_WINDOW) this.latencies.shift();
    this.figures.inputToFrameMs = ms;
    this.figures.inputToFrameMedianMs = median(this.latencies);
    this.onUpdate(this.figures);
  }

  async #poll() {
    const pc = this.getPc();
    if (!pc) return;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return; // the connection closed under us; the next poll sees the new one
    }
    let selectedPairId = null;
    const pairs = new Map();
    const candidates = new Map();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        const now = s.timestamp;
        if (this.last.framesDecoded !== null && now > this.last.at && s.framesDecoded >= this.last.framesDecoded) {
          this.figures.fps = ((s.framesDecoded - this.last.framesDecoded) * 1000) / (now - this.last.at);
        }
        this.last = { framesDecoded: s.framesDecoded, at: now };
        this.figures.framesDecoded = s.framesDecoded;
        this.figures.width = s.frameWidth || this.getVideo()?.videoWidth || 0;
        this.figures.height = s.frameHeight || this.getVideo()?.videoHeight || 0;
      } else if (s.type === "transport" && s.selectedCandidatePairId) {
        selectedPairId = s.selectedCandidatePairId;
      } else if (s.type === "candidate-pair") {
        pairs.set(s.id, s);
      } else if (s.type === "local-candidate") {
        candidates.set(s.id, s);
      }
    });
    // Some browsers do not name the selected pair on the transport: fall back to the nominated one.
    const pair =
      pairs.get(selectedPairId) || [...pairs.values()].find((p) => p.nominated && p.state === "succeeded");
    if (pair) {
      if (typeof pair.currentRoundTripTime === "number") this.figures.rttMs = pair.currentRoundTripTime * 1000;
      this.figures.candidateType = candidates.get(pair.localCandidateId)?.candidateType ?? null;
    }
    this.onUpdate(this.figures);
  }

  /** Forget the frame counter after a reconnect (a new connection starts from zero). */
  resetCounters() {
    this.last = { framesDecoded: null, at: 0 };
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

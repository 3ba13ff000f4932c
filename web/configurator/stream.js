// The stream, through Epic's own Pixel Streaming frontend library, unmodified:
// @epicgames-ps/lib-pixelstreamingfrontend-ue5.5, pinned in package-lock.json and
// bundled into vendor/ by `make setup`. streamfleet needs nothing from the page
// beyond what any Pixel Streaming frontend does:
//
// - the signalling URL is the session's `signaling_url` with the stream token in
//   the query (browsers cannot set headers on a WebSocket);
// - the agent puts the session's TURN servers in the `config` message's
//   `peerConnectionOptions` (relay-only), so the library needs no ICE settings;
// - user input (mouse, keys, touch) is the library's own; the renderer tells the
//   agent that input arrived, so the idle timeout needs nothing from the page;
// - a session the server ends closes the WebSocket with a code and reason the
//   library reports once and does not retry (docs/pixel-streaming.md, close codes).

import { Config, PixelStreaming } from "./vendor/pixelstreamingfrontend.js";

export class EpicStream {
  /**
   * @param {object} p
   * @param {string} p.signalingUrl  from the session API (`stream.signaling_url`)
   * @param {string} p.token         the stream token (`stream.token`)
   * @param {HTMLElement} p.parent   this stream's element (with the library's <video>) goes in here
   * @param {() => void} p.onVideo   the first frame is ready to play
   * @param {() => void} p.onChannelOpen  the data channel to the renderer opened
   * @param {(reason: string, willRetry: boolean) => void} p.onDisconnect
   */
  constructor({ signalingUrl, token, parent, onVideo, onChannelOpen, onDisconnect }) {
    const sep = signalingUrl.includes("?") ? "&" : "?";
    const config = new Config({
      useUrlParams: false,
      initialSettings: {
        ss: `${signalingUrl}${sep}token=${encodeURIComponent(token)}`,
        AutoConnect: false,
        AutoPlayVideo: true,
        StartVideoMuted: true, // browsers autoplay only muted video
        HoveringMouse: true, // drag to orbit without pointer lock
        WaitForStreamer: true, // the renderer may be (re)starting
        TimeoutIfIdle: false, // the agent owns the idle timeout
        MatchViewportRes: false,
      },
    });
    // One element per stream: the library leaves its <video> behind on disconnect.
    this.element = document.createElement("div");
    this.element.className = "stream";
    parent.append(this.element);
    this.ps = new PixelStreaming(config, { videoElementParent: this.element });
    this.disconnects = 0;
    this.ps.addEventListener("videoInitialized", () => onVideo());
    this.channelOpen = false;
    this.ps.addEventListener("dataChannelOpen", () => {
      this.channelOpen = true;
      onChannelOpen();
    });
    this.ps.addEventListener("webRtcDisconnected", (event) => {
      this.disconnects += 1;
      // allowClickToReconnect is the library's "I will not retry by myself".
      onDisconnect(event.data.eventString || "", !event.data.allowClickToReconnect);
    });
  }

  connect() {
    this.ps.connect();
  }

  /** The library's <video> element. */
  get video() {
    return this.element.querySelector("video");
  }

  /** The current RTCPeerConnection (for figures), or null. */
  get pc() {
    return this.ps.webRtcController?.peerConnectionController?.peerConnection ?? null;
  }

  /**
   * Send an application descriptor as UIInteraction (what a Unreal app's OnInputEvent
   * receives). False when it cannot go yet: the library drops input until the video
   * is ready, and sends nothing before the data channel opens (whichever is later).
   */
  emit(descriptor) {
    return this.channelOpen && this.ps.emitUIInteraction(descriptor) !== false;
  }

  /**
   * Report the input-to-frame latency the page measured to the agent (its
   * `streamfleet_agent_input_to_frame_seconds`), as a protocol `stats` message
   * whose `data` is a JSON string, as Epic's protocol types it.
   */
  reportInputToFrame(ms) {
    if (!Number.isFinite(ms)) return;
    this.ps.signallingProtocol?.sendMessage({ type: "stats", data: JSON.stringify({ inputToFrameMs: ms }) });
  }

  /** Close for good (the user left or the session is over): the library does not retry. */
  close() {
    this.ps.disconnect();
    this.element.remove();
  }
}

// The configurator page: ask for a session, wait in the queue if needed,
// stream through Epic's Pixel Streaming frontend library (stream.js), send the
// configuration as UIInteraction descriptors, show live figures, end the
// session on leave. Every failure ends up in showMessage() with a sentence a
// visitor understands.

import { SessionApi, ApiError, NetworkError, describeEndReason } from "./session-api.js";
import { EpicStream } from "./stream.js";
import { InputSequencer } from "./input.js";
import { LiveFigures } from "./figures.js";

const MODEL = "roadster";
// The library reports a stream that never starts only by staying silent.
const FIRST_FRAME_TIMEOUT_MS = 30000;
// After the library gives up on a live session's stream: how many 1 s polls to
// wait for a re-placement (a lost machine is found within the heartbeat timeout,
// 15 s by default) before the page gives up too.
const REPLACE_GRACE_POLLS = 30;

const $ = (id) => document.getElementById(id);
const api = new SessionApi(""); // same origin: the control plane serves this page

// One client id per browser tab: a reload finds the same session again (the
// create call is idempotent per client id), while two tabs are two visitors.
const clientId =
  sessionStorage.getItem("streamfleet.client_id") ||
  `web-${crypto.randomUUID()}`;
sessionStorage.setItem("streamfleet.client_id", clientId);

const sequencer = new InputSequencer();
let current = null; // {id, secret, view, stopFollow, stream, firstFrameTimer}
let firstFrameAt = null; // performance.now() of the first presented frame (the benchmark reads it)
const scene = { paint: $("paint").value, wheels: $("wheels").value };

const figures = new LiveFigures(
  () => current?.stream?.video ?? null,
  () => current?.stream?.pc ?? null,
  sequencer,
  showFigures,
);

// ---- messages and overlay -------------------------------------------------

/** kind: "info" | "warn" | "error" */
function showMessage(kind, text) {
  const box = $("message");
  box.hidden = !text;
  box.dataset.kind = kind;
  box.textContent = text || "";
  box.setAttribute("role", kind === "error" ? "alert" : "status");
}

function showOverlay(kind, title, detail = "") {
  const overlay = $("overlay");
  overlay.dataset.kind = kind;
  overlay.hidden = kind === "none";
  $("overlay-title").textContent = title;
  $("overlay-detail").textContent = detail;
}

function setState(text) {
  $("fig-state").textContent = text;
  document.body.dataset.state = text; // handy for styling and for the e2e tests
}

function setBusy(live) {
  $("start").disabled = live;
  $("leave").disabled = !live;
  $("visit-from").disabled = live;
}

// The agent learns input-to-frame latency only from us; at most once a second.
const REPORT_INTERVAL_MS = 1000;
let lastLatencyReport = { ms: null, at: 0 };

function reportLatency(f) {
  const now = performance.now();
  if (f.inputToFrameMs === null || f.inputToFrameMs === lastLatencyReport.ms) return;
  if (now - lastLatencyReport.at < REPORT_INTERVAL_MS) return;
  lastLatencyReport = { ms: f.inputToFrameMs, at: now };
  current?.stream?.reportInputToFrame(f.inputToFrameMs);
}

function showFigures(f) {
  reportLatency(f);
  const fmt = (v, unit, digits = 0) => (v === null || v === undefined ? "—" : `${v.toFixed(digits)} ${unit}`);
  $("fig-fps").textContent = fmt(f.fps, "fps", 1);
  $("fig-rtt").textContent = fmt(f.rttMs, "ms") + (f.candidateType ? ` (${f.candidateType})` : "");
  $("fig-latency").textContent =
    f.inputToFrameMs === null ? "send some input" : `${fmt(f.inputToFrameMs, "ms")} (median ${fmt(f.inputToFrameMedianMs, "ms")})`;
  $("fig-size").textContent = f.width ? `${f.width}×${f.height}` : "—";
}

// ---- session lifecycle -----------------------------------------------------

async function start() {
  showMessage("info", "");
  setBusy(true);
  setState("requesting");
  showOverlay("wait", "Finding you a machine…", "Picking the nearest region with a free GPU.");
  api.demoClientIp = $("visit-from").value || null;
  let created;
  try {
    created = await api.create(
      { clientId, model: MODEL, configuration: { ...scene } },
      { onRetry: () => showOverlay("wait", "Finding you a machine…", "The service is busy recovering; still trying.") },
    );
  } catch (err) {
    setBusy(false);
    setState("—");
    return failCreate(err);
  }
  const view = created.session;
  // The visitor's choices go to the renderer once per session; a replayed create
  // (200: this tab's session already exists) finds the scene as it was left.
  const configured = created.status === 200;
  current = {
    id: view.session_id, secret: view.session_secret, view: null, stream: null, streamToken: null,
    configured, replacements: 0,
  };
  // Follow the session for its whole life: queue position while waiting, the
  // assignment when it comes, and the server's reason if it ever ends it.
  current.stopFollow = api.follow(current.id, current.secret, {
    onView: onSessionView,
    onTrouble: () => {
      if (current?.view?.state === "queued") showMessage("warn", "Lost contact with the queue; reconnecting…");
    },
  });
  onSessionView(view);
}

function failCreate(err) {
  if (err instanceof ApiError && err.status === 429) {
    const wait = err.retryAfterS ?? 10;
    showOverlay("error", "Too many requests", `Please wait ${wait} s before trying again.`);
    showMessage("error", `Too many session requests from your address. Try again in ${wait} s.`);
    countdownStart(wait);
  } else if (err instanceof ApiError && err.status === 503) {
    const wait = err.retryAfterS ?? 10;
    showOverlay("error", "No capacity right now", err.message);
    showMessage("error", `The service is overloaded (${err.message}). Try again in ${wait} s.`);
    countdownStart(wait);
  } else if (err instanceof ApiError) {
    showOverlay("error", "The session could not be created", err.message);
    showMessage("error", `Could not start: ${err.problem.title || "error"} — ${err.message} (HTTP ${err.status}).`);
  } else if (err instanceof NetworkError) {
    showOverlay("error", "Cannot reach the service", "Check your connection and try again.");
    showMessage("error", `Could not start: ${err.message}.`);
  } else {
    showOverlay("error", "Something went wrong", String(err));
    showMessage("error", String(err));
  }
}

/** Keep Start disabled until Retry-After has passed, showing the remaining seconds. */
function countdownStart(seconds) {
  const button = $("start");
  let left = Math.max(1, Math.min(seconds, 3600));
  button.disabled = true;
  button.textContent = `Start (${left} s)`;
  const timer = setInterval(() => {
    left -= 1;
    if (left > 0 && !current) {
      button.textContent = `Start (${left} s)`;
      return;
    }
    clearInterval(timer);
    button.textContent = "Start";
    button.disabled = current !== null;
  }, 1000);
}

function onSessionView(view) {
  if (!current || view.session_id !== current.id) return;
  current.view = view;
  setState(view.state);
  if (view.region) $("fig-region").textContent = view.region;
  // Re-placement: the machine was lost or its renderer crashed, and the server
  // put the session back at the head of the queue (queued) or already placed it
  // again (a new stream token). Drop the old stream; the new one starts from a
  // fresh renderer, so the visitor's scene goes to it again.
  const placed = view.state === "assigned" || view.state === "connected";
  const moved = view.state === "queued" || (placed && view.stream.token !== current.streamToken);
  if (current.stream && moved) replaced();
  if (view.state === "queued" && current.replacements > 0) {
    showOverlay("wait", "Your machine stopped — getting you another…", "You are first in line. Keep this page open.");
    $("overlay").dataset.position = String(view.position);
  } else if (view.state === "queued") {
    const eta = view.estimated_wait_s ? `about ${formatDuration(view.estimated_wait_s)}` : "soon";
    showOverlay("queue", `You are number ${view.position} in the queue`, `Expected wait: ${eta}. Keep this page open.`);
    $("overlay").dataset.position = String(view.position);
  } else if (placed) {
    if (!current.stream) connect(view);
  } else if (view.state === "ended") {
    finish(view.end_reason);
  }
}

function connect(view) {
  showMessage("info", "");
  showOverlay("wait", "Connecting to your machine…", `Region ${view.region}.`);
  firstFrameAt = null;
  const session = current;
  // Callbacks of a stream this page dropped (re-placement) are ignored.
  const live = () => session === current && current.stream === stream;
  const stream = new EpicStream({
    signalingUrl: view.stream.signaling_url,
    token: view.stream.token,
    parent: $("player"),
    onVideo: () => {
      if (!live()) return;
      configureRenderer();
      onConnected();
    },
    onChannelOpen: () => {
      if (!live()) return;
      $("controls").disabled = false;
      configureRenderer();
    },
    onDisconnect: (reason, willRetry) => live() && onStreamStopped(reason, willRetry),
  });
  current.stream = stream;
  current.streamToken = view.stream.token;
  current.firstFrameTimer = setTimeout(() => {
    if (!live() || firstFrameAt !== null) return;
    showOverlay("error", "No picture", "The stream did not start. Please try again.");
    showMessage("error", "The stream did not start within 30 s; the session was ended.");
    abandon();
  }, FIRST_FRAME_TIMEOUT_MS);
  stream.connect();
}

function onConnected() {
  showMessage("info", "");
  showOverlay("none", "");
  $("controls").disabled = false;
  const video = current.stream.video;
  if (firstFrameAt === null && video) {
    video.requestVideoFrameCallback(() => {
      if (firstFrameAt === null) firstFrameAt = performance.now();
    });
  }
  figures.resetCounters();
  figures.start();
}

/**
 * The library lost the signalling connection. While it retries (network blip,
 * renderer restart) say so; once it gives up, the session API says whether the
 * server ended the session, and why.
 */
async function onStreamStopped(reason, willRetry) {
  $("controls").disabled = true;
  if (willRetry) {
    showOverlay("wait", "Connection lost — reconnecting…", reason);
    showMessage("warn", `Connection lost${reason ? ` (${reason})` : ""}. Reconnecting…`);
    return;
  }
  const ended = await endReasonOr(null);
  if (!current) return; // the session's events already ended it
  if (ended !== null) return finish(ended);
  if (await replacedMeanwhile()) return; // the events stream connects to the new one
  showOverlay("error", "Could not reconnect", "Start again to get a new session.");
  showMessage("error", `The stream stopped${reason ? ` (${reason})` : ""} and could not be resumed.`);
  await abandon();
}

/**
 * Whether the server re-placed the session since this stream began (queued
 * again, or a new stream token): then the session's events connect the page to
 * its new machine, and giving up on the old stream must not end the session.
 * A live session still on the old stream gets a grace: its lost machine is
 * found and the session re-placed within the heartbeat timeout.
 */
async function replacedMeanwhile() {
  const session = current;
  const token = current.streamToken;
  for (let i = 0; i < REPLACE_GRACE_POLLS; i++) {
    try {
      const view = await api.get(session.id, session.secret);
      // Moved on already (the events stream connected a new stream meanwhile).
      if (session !== current || current.streamToken !== token) return true;
      if (view.state === "ended") return false;
      if (view.state === "queued" || view.stream?.token !== token) {
        onSessionView(view); // drops the old stream, follows the new one
        return true;
      }
    } catch {
      /* keep trying within the grace */
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return session !== current;
}

/** The session was re-placed: close the old stream without ending the session. */
function replaced() {
  figures.stop();
  clearTimeout(current.firstFrameTimer);
  const stream = current.stream;
  current.stream = null;
  current.streamToken = null;
  current.configured = false; // a fresh renderer: send the visitor's scene again
  current.replacements += 1;
  $("controls").disabled = true;
  stream?.close();
}

/** The session's end reason from the API, or `fallback` while it is still live. */
async function endReasonOr(fallback) {
  try {
    const view = await api.get(current.id, current.secret);
    if (view.state === "ended") return view.end_reason;
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 410)) return "client_ended";
  }
  return fallback;
}

/** The server ended the session: show why and reset. */
function finish(reason) {
  if (!current) return;
  const text = describeEndReason(reason);
  teardown();
  setState("ended");
  const kind = reason === "client_ended" ? "info" : "error";
  showOverlay(kind === "info" ? "idle" : "error", "Session ended", text);
  showMessage(kind, text);
}

/** We give up on the stream: end the session so the machine is freed, keep the message shown. */
async function abandon() {
  const { id, secret } = current;
  teardown();
  setState("ended");
  try {
    await api.end(id, secret);
  } catch {
    /* the server ends it anyway once the claim or reconnect window runs out */
  }
}

/** The visitor leaves: end the session now, so the machine goes to the next one. */
async function leave() {
  if (!current) return;
  const { id, secret } = current;
  teardown();
  showOverlay("wait", "Ending the session…");
  try {
    await api.end(id, secret);
    setState("ended");
    showOverlay("idle", "Session ended", "Thanks for visiting. Press “Start” for a new one.");
    showMessage("info", "Session ended. The machine is free for the next visitor.");
  } catch (err) {
    showMessage("error", `Could not end the session cleanly (${err.message}); it will time out on its own.`);
  }
}

function teardown() {
  figures.stop();
  clearTimeout(current?.firstFrameTimer);
  current?.stopFollow?.();
  current?.stream?.close();
  current = null;
  $("controls").disabled = true;
  setBusy(false);
}

// ---- input -----------------------------------------------------------------

/** Whether the library took it (it drops input until the video is ready). */
function sendInput(descriptor) {
  return current?.stream?.emit({ ...descriptor, seq: sequencer.next() }) ?? false;
}

/**
 * Bring the renderer to the scene this visitor chose, once per renderer: after a
 * reconnect to the same stream the renderer still has the scene, changes
 * included; a re-placed session's new renderer starts from scratch. Tried when
 * the data channel opens and again when the video is ready (the library drops
 * input until then).
 */
function configureRenderer() {
  if (current.configured) return;
  current.configured = sendInput({ type: "configure", configuration: { ...scene } });
}

$("controls").addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  if (button.dataset.color) return setPaint(button.dataset.color);
  const type = button.dataset.input;
  if (type === "orbit") sendInput({ type, dx_deg: Number(button.dataset.dx) });
  else if (type === "zoom") sendInput({ type, factor: Number(button.dataset.factor) });
  else if (type === "toggle_frunk" || type === "toggle_doors") {
    button.setAttribute("aria-pressed", String(button.getAttribute("aria-pressed") !== "true"));
    sendInput({ type });
  }
});

function setPaint(color) {
  scene.paint = color;
  $("paint").value = color;
  sendInput({ type: "set_paint", color });
}
$("paint").addEventListener("input", (e) => setPaint(e.target.value));
$("wheels").addEventListener("change", (e) => {
  scene.wheels = e.target.value;
  sendInput({ type: "set_wheels", style: e.target.value });
});

// Drag to orbit, wheel to zoom, arrow keys, F and D, touch: Epic's library sends
// the mouse, keyboard and touch input itself; the renderer maps it (as an Unreal
// app's input handling would).

// ---- wiring ----------------------------------------------------------------

$("start").addEventListener("click", start);
$("leave").addEventListener("click", leave);
// Leaving the page ends the session at once instead of after the reconnect
// window; keepalive lets the DELETE outlive the page.
window.addEventListener("pagehide", () => {
  if (current) api.end(current.id, current.secret, { keepalive: true }).catch(() => {});
});

function formatDuration(s) {
  return s < 90 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
}

// For the browser console and the end-to-end tests: read-only views of the live objects.
window.streamfleet = {
  get session() {
    if (!current) return null;
    const { id, view, replacements } = current;
    return { id, state: view?.state, region: view?.region, replacements };
  },
  get pc() {
    return current?.stream?.pc ?? null;
  },
  /** Epic's PixelStreaming object of the live stream: the library's whole API. */
  get pixelStreaming() {
    return current?.stream?.ps ?? null;
  },
  get firstFrameAt() {
    return firstFrameAt;
  },
  figures: figures.figures,
};

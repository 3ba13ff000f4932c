// The ops status page: every region's pool, queue and sessions, live, with a
// drain button per instance. It reads the ops API (docs/contracts.md "Ops API"):
//   GET  /v1/pools                                     counts per region
//   GET  /v1/pools/{region}/instances                  one row per instance
//   POST /v1/pools/{region}/instances/{id}/drain       take one out of service
// all with `Authorization: Bearer <admin token>`. `streamfleet status` prints
// the same figures in a terminal (simulators/status_cli.py).

const REFRESH_MS = 1000;
const STATES = ["provisioning", "booting", "ready", "reserved", "streaming", "recycling", "draining", "lost", "terminated"];
const TOKEN_KEY = "streamfleet.admin_token";
const $ = (id) => document.getElementById(id);

// The admin token comes from the URL fragment (never sent to any server, unlike
// a query string) or from a prompt; it is kept for this tab only and removed
// from the address bar so it does not end up in bookmarks or screen shares.
function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get("token")) {
    sessionStorage.setItem(TOKEN_KEY, fragment.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    token = (prompt("Admin token (STREAMFLEET_ADMIN_TOKEN):") || "").trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
  }
  return token;
}

let token = takeToken();

class OpsError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

async function ops(method, path) {
  let response;
  try {
    response = await fetch(path, { method, headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
  } catch (err) {
    throw new OpsError(0, `cannot reach the control plane (${err.message})`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new OpsError(response.status, body.detail || body.title || `HTTP ${response.status}`);
  return body;
}

function showMessage(text) {
  $("message").hidden = !text;
  $("message").textContent = text || "";
}

async function refresh() {
  if (!token) {
    showMessage("No admin token: open this page as status/index.html#token=… or press “Change token”.");
    return;
  }
  try {
    const pools = await ops("GET", "/v1/pools");
    const names = Object.keys(pools.regions);
    // One request per region, in parallel: the page stays live with many regions.
    const details = await Promise.all(names.map((r) => ops("GET", `/v1/pools/${r}/instances`)));
    render(names.map((name, i) => ({ name, ...pools.regions[name], list: details[i].instances })));
    $("queued-total").textContent = pools.queued_sessions ?? "—";
    showMessage("");
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()} · every ${REFRESH_MS / 1000} s`;
  } catch (err) {
    if (err.status === 401 || err.status === 403) {
      showMessage(`The control plane refused the admin token (${err.message}). Press “Change token”.`);
    } else {
      showMessage(`Cannot load the status: ${err.message}. Retrying…`);
    }
  }
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === false) continue; // absent attribute (e.g. not disabled)
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  // textContent only: instance ids and reasons come from the network, never as HTML.
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function render(regions) {
  // Rebuilt every second; small enough that diffing would only add code.
  $("regions").replaceChildren(...regions.map(renderRegion));
}

function renderRegion(r) {
  const total = STATES.reduce((n, s) => n + (s === "terminated" ? 0 : r.instances[s] || 0), 0);
  const badge = r.constrained
    ? el("span", { class: "badge constrained", title: r.constraint_reason || "" }, `constrained${r.constraint_reason ? `: ${r.constraint_reason}` : ""}`)
    : el("span", { class: "badge" }, `${total} instance${total === 1 ? "" : "s"}`);
  const counts = el(
    "div",
    { class: "counts" },
    ...STATES.filter((s) => r.instances[s] || ["ready", "reserved", "streaming"].includes(s)).map((s) =>
      el("span", { class: "count", dataset: { state: s } }, `${s} `, el("b", {}, r.instances[s] || 0)),
    ),
  );
  const arrivals = (r.arrivals_per_min || []).slice(-5).reduce((a, b) => a + b, 0);
  // A session may wait in several regions: each is counted once, under the region
  // where it is nearest the head (queued_here); the others only say "also waiting".
  const queuedHere = r.queued_here ?? r.queue_depth;
  const alsoWaiting = r.queue_depth - queuedHere;
  const summary = el(
    "div",
    { class: "summary" },
    el(
      "span",
      { title: "queued sessions counted under this region; each session is counted in one region only" },
      "queued ",
      el("b", { dataset: { field: "queued_here" } }, queuedHere),
      alsoWaiting > 0 ? el("span", { class: "also", dataset: { field: "also_waiting" } }, ` (+${alsoWaiting} also waiting here)`) : "",
    ),
    el("span", {}, "live sessions ", el("b", { dataset: { field: "live_sessions" } }, r.live_sessions)),
    el("span", {}, "arrivals (5 min) ", el("b", {}, arrivals)),
  );
  const rows = r.list.map((i) =>
    el(
      "tr",
      { dataset: { instance: i.instance_id, state: i.state } },
      el("td", {}, el("code", {}, i.instance_id)),
      el("td", { class: "state" }, i.state + (i.draining && i.state !== "draining" ? " (draining)" : "")),
      el("td", {}, i.private_ip || ""),
      el("td", {}, i.session_id ? el("code", { title: i.session_id }, i.session_id.slice(0, 8) + "…") : ""),
      el("td", {}, age(i.state_age_s)),
      el("td", {}, age(i.heartbeat_age_s)),
      el(
        "td",
        { class: "action" },
        el(
          "button",
          {
            class: "drain",
            disabled: i.draining || ["draining", "terminated"].includes(i.state) ? "" : null,
            onclick: () => drain(r.name, i),
          },
          "Drain",
        ),
      ),
    ),
  );
  const table = r.list.length
    ? el(
        "table",
        {},
        el("thead", {}, el("tr", {}, ...["instance", "state", "private IP", "session", "in state", "heartbeat", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...rows),
      )
    : el("p", { class: "empty" }, "no instances");
  return el(
    "section",
    { class: "region", dataset: { region: r.name } },
    el("header", {}, el("h2", {}, r.name), badge),
    counts,
    summary,
    table,
  );
}

async function drain(region, instance) {
  const what = instance.session_id ? " Its live session may finish first." : "";
  if (!confirm(`Drain ${instance.instance_id} in ${region}? It takes no new sessions.${what}`)) return;
  try {
    await ops("POST", `/v1/pools/${region}/instances/${instance.instance_id}/drain`);
    await refresh();
  } catch (err) {
    showMessage(`Could not drain ${instance.instance_id}: ${err.message}`);
  }
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

$("change-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  token = takeToken();
  refresh();
});

// setTimeout after each refresh, not setInterval: a slow control plane never
// gets a pile of overlapping requests from this page.
async function loop() {
  await refresh();
  setTimeout(loop, REFRESH_MS);
}
loop();

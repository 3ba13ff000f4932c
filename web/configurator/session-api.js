// The control plane's session API (docs/contracts.md, DESIGN.md "Session API").
//
//   POST   /v1/sessions                      -> 201 assigned | 202 queued | 200 replayed
//   GET    /v1/sessions/{id}                 (Authorization: Bearer <session_secret>)
//   GET    /v1/sessions/{id}/events?secret=  server-sent events, `event: session`
//   DELETE /v1/sessions/{id}                 (Authorization: Bearer <session_secret>)
//
// Errors come as application/problem+json (RFC 9457); ApiError keeps its
// fields so the page can say exactly what went wrong.

export class ApiError extends Error {
  constructor(status, problem, retryAfterS) {
    const what = problem.detail || problem.title || `HTTP ${status}`;
    super(what);
    this.status = status;
    this.problem = problem; // {type, title, detail, ...}
    this.retryAfterS = retryAfterS; // seconds from Retry-After, or null
  }
}

/** The network itself failed (server down, connection refused, offline). */
export class NetworkError extends Error {}

// A create is safe to repeat: the same client_id finds the same session again
// (200). So a create that meets a moment with no answer (a control-plane replica
// restarting or frozen behind the balancer, the session store failing over) is
// retried with backoff, honouring Retry-After, for up to `budgetMs` before the
// visitor sees an error. 429 is never retried: the visitor is told to wait.
export const CREATE_RETRY = Object.freeze({ budgetMs: 30_000, firstDelayMs: 250, maxDelayMs: 4_000 });
const TRANSIENT_STATUS = new Set([502, 503, 504]);

/** Whether a failed request may simply be repeated after a pause. */
export function isTransient(err) {
  return err instanceof NetworkError || (err instanceof ApiError && TRANSIENT_STATUS.has(err.status));
}

/** How long to wait before try number `attempt` (1 = the first retry); null: give up. */
export function retryDelayMs(err, attempt, elapsedMs, policy = CREATE_RETRY) {
  if (!isTransient(err)) return null;
  const backoff = Math.min(policy.firstDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  const wait = err instanceof ApiError && err.retryAfterS !== null ? err.retryAfterS * 1000 : backoff;
  return elapsedMs + wait > policy.budgetMs ? null : wait;
}

export class SessionApi {
  /**
   * @param {string} baseUrl  the control plane, e.g. "" (same origin) or "https://api.example.com"
   * @param {object} options  {demoClientIp}: local demo only, see `create`
   */
  constructor(baseUrl = "", options = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, "");
    this.demoClientIp = options.demoClientIp || null;
  }

  async #request(method, path, { body, secret, keepalive = false } = {}) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (secret) headers["Authorization"] = `Bearer ${secret}`;
    // `streamfleet up --demo-visit-from` only: the control plane then takes the
    // client address from this header instead of the TCP peer, so one machine
    // can show placement for visitors from anywhere. Production ignores it.
    if (this.demoClientIp) headers["X-Demo-Client-IP"] = this.demoClientIp;
    let response;
    try {
      response = await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        keepalive,
        cache: "no-store",
      });
    } catch (err) {
      throw new NetworkError(`cannot reach the session service (${err.message})`);
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = { title: text.slice(0, 200) };
    }
    if (!response.ok) {
      const retry = Number.parseInt(response.headers.get("Retry-After") || "", 10);
      throw new ApiError(response.status, data || {}, Number.isFinite(retry) ? retry : null);
    }
    return { status: response.status, data };
  }

  /**
   * Create (or, for the same client_id, find again) a session. Transient failures
   * are retried within CREATE_RETRY's budget; `onRetry(err, waitMs)` is told each time.
   */
  async create({ clientId, model, configuration }, { onRetry } = {}) {
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const { status, data } = await this.#request("POST", "/v1/sessions", {
          body: { client_id: clientId, model, configuration },
        });
        return { status, session: data };
      } catch (err) {
        const wait = retryDelayMs(err, attempt, Date.now() - started);
        if (wait === null) throw err;
        onRetry?.(err, wait);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  async get(sessionId, secret) {
    const { data } = await this.#request("GET", `/v1/sessions/${sessionId}`, { secret });
    return data;
  }

  /**
   * End the session. `keepalive` lets the request outlive the page (used on
   * pagehide), which navigator.sendBeacon cannot do for DELETE with a header.
   */
  async end(sessionId, secret, { keepalive = false } = {}) {
    const { data } = await this.#request("DELETE", `/v1/sessions/${sessionId}`, {
      secret,
      keepalive,
    });
    return data;
  }

  /**
   * Follow the session's changes. EventSource cannot send headers, so the
   * secret goes in the query (the control plane accepts it there for this
   * endpoint only). EventSource reconnects by itself after a network blip;
   * `onTrouble` is told so the page can say so.
   */
  follow(sessionId, secret, { onView, onTrouble }) {
    const url = `${this.baseUrl}/v1/sessions/${sessionId}/events?secret=${encodeURIComponent(secret)}`;
    const source = new EventSource(url);
    source.addEventListener("session", (event) => onView(JSON.parse(event.data)));
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) onTrouble?.();
    };
    return () => source.close();
  }
}

/** A human sentence for an ended session's reason (DESIGN.md "Session lifecycle"). */
export function describeEndReason(reason) {
  const reasons = {
    client_ended: "You ended the session.",
    claim_expired: "The session expired before the stream connected.",
    disconnected: "The connection was gone for too long; the session was closed.",
    idle: "The session ended after a long time without input.",
    max_duration: "The session reached its maximum duration.",
    instance_lost: "The streaming machines kept failing; the session was given up.",
    queue_timeout: "No machine became free in time; the wait was given up.",
    drained: "An operator took the streaming machine out of service.",
  };
  return reasons[reason] || `The session ended (${reason || "no reason given"}).`;
}

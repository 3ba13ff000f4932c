// TypeScript declarations of session-api.js, the standalone session-API client.
// The wire types come from ./openapi.d.ts, which `make setup` (`make web-types`)
// generates from the control plane's OpenAPI document (/v1/openapi.json) with
// openapi-typescript, so they follow the server's models without hand edits.
import type { components } from "./openapi";

type Schemas = components["schemas"];

/** A session as the API returns it (201 assigned, 202 queued, GET, DELETE, events). */
export type SessionView = Schemas["SessionView"];
export type CreateSessionRequest = Schemas["CreateSessionRequest"];
export type SessionState = SessionView["state"];
export type EndReason = NonNullable<SessionView["end_reason"]>;
export type StreamInfo = NonNullable<SessionView["stream"]>;
export type IceServer = NonNullable<SessionView["ice_servers"]>[number];

/** An RFC 9457 problem document: every 4xx/5xx body of the API. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  field?: string;
  [extension: string]: unknown;
}

/** The API answered with an error status. */
export declare class ApiError extends Error {
  constructor(status: number, problem: Problem, retryAfterS: number | null);
  readonly status: number;
  readonly problem: Problem;
  /** Seconds from Retry-After (429, 503), or null. */
  readonly retryAfterS: number | null;
}

/** The network itself failed (server down, connection refused, offline). */
export declare class NetworkError extends Error {}

/** How a create is retried on 502/503/504 or no answer (a create is safe to repeat). */
export interface RetryPolicy {
  readonly budgetMs: number;
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}
export declare const CREATE_RETRY: RetryPolicy;
/** Whether a failed request may simply be repeated after a pause. */
export declare function isTransient(err: unknown): boolean;
/** Milliseconds to wait before retry number `attempt` (1-based), or null to give up. */
export declare function retryDelayMs(
  err: unknown,
  attempt: number,
  elapsedMs: number,
  policy?: RetryPolicy,
): number | null;

export interface CreateOptions {
  clientId: CreateSessionRequest["client_id"];
  model: CreateSessionRequest["model"];
  configuration: CreateSessionRequest["configuration"];
}

export interface FollowHandlers {
  onView: (view: SessionView) => void;
  onTrouble?: () => void;
}

export declare class SessionApi {
  /** @param baseUrl the control plane, "" for the same origin */
  constructor(baseUrl?: string, options?: { demoClientIp?: string | null });
  /** `streamfleet up --demo-visit-from` only; production ignores it. */
  demoClientIp: string | null;
  /** Create (or, for the same client id, find again) a session: 201 assigned, 202 queued, 200 replayed. */
  /** Transient failures (502/503/504, no answer) are retried within CREATE_RETRY's budget. */
  create(
    options: CreateOptions,
    hooks?: { onRetry?: (err: ApiError | NetworkError, waitMs: number) => void },
  ): Promise<{ status: 200 | 201 | 202; session: SessionView }>;
  get(sessionId: string, secret: string): Promise<SessionView>;
  /** `keepalive` lets the request outlive the page (pagehide). */
  end(sessionId: string, secret: string, options?: { keepalive?: boolean }): Promise<SessionView>;
  /** Follow the session by server-sent events; returns the function that stops following. */
  follow(sessionId: string, secret: string, handlers: FollowHandlers): () => void;
}

/** A sentence for a visitor, for an ended session's reason. */
export declare function describeEndReason(reason: EndReason | string | null | undefined): string;

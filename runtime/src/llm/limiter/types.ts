/**
 * The pool-wide rate limiter contract. Every HTTP attempt to the Messages API goes through it:
 *
 *   const r = await limiter.reserve({ inputTokens, outputTokens });   // may wait
 *   try { call } finally { await limiter.reconcile(r, actualUsageOrNull); }
 *
 * It is async on purpose: the in-memory implementation (`memory.ts`) serves one process and
 * tests; the shared implementation (Postgres token buckets, one row per pool and dimension)
 * serves every pod of a pool behind the same interface. Methods must be safe to call
 * concurrently, and `reconcile` must be idempotent per reservation.
 *
 * Accounting follows Anthropic's rules: ITPM counts `input_tokens + cache_creation_input_tokens`
 * (cache reads are free for the limit); OTPM counts actual output tokens, not `max_tokens`.
 */

export interface TokenEstimate {
  /** Requests to debit (default 1). */
  requests?: number;
  /** Uncached input tokens expected to count toward ITPM. */
  inputTokens: number;
  /** Output tokens expected (not `max_tokens`). */
  outputTokens: number;
}

export interface Reservation {
  id: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  /** Epoch ms when the reservation was granted. */
  grantedAtMs: number;
  /** Time spent waiting inside `reserve`. */
  waitedMs: number;
}

/** What the provider reported, in limiter terms. */
export interface ActualUsage {
  /** `input_tokens + cache_creation_input_tokens`. */
  inputTokens: number;
  outputTokens: number;
}

export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export interface LimiterSnapshot {
  /** Epoch ms until which no request may start (0 when not blocked). */
  blockedUntilMs: number;
  inFlight: number;
  /** Effective limits (after tightening from server headers and ramp-up). */
  effective: { requestsPerMinute: number; inputTokensPerMinute: number; outputTokensPerMinute: number };
  /** Requests and tokens granted in the last 60 s. */
  lastMinute: { requests: number; inputTokens: number; outputTokens: number };
  throttled429: number;
  lastThrottledAtMs: number | null;
}

export interface RateLimiter {
  /**
   * Wait until the estimate fits every bucket, a concurrency slot is free and the pool is not
   * blocked; then debit the estimate. Rejects with the signal's reason when aborted.
   */
  reserve(estimate: TokenEstimate, signal?: AbortSignal): Promise<Reservation>;
  /**
   * Settle a reservation with the reported usage, or `null` when the provider did not process
   * the request (429, 5xx, connection error): tokens are refunded, the request stays counted.
   * Frees the concurrency slot. Idempotent.
   */
  reconcile(reservation: Reservation, actual: ActualUsage | null): Promise<void>;
  /** Block the whole pool until `untilMs` (epoch ms), e.g. from a 429's `retry-after`. Never shortens a block. */
  blockUntil(untilMs: number, reason?: string): Promise<void>;
  /** Feed `anthropic-ratelimit-*` response headers; the limiter tightens when the server reports less. */
  observeHeaders(headers: HeaderSource): Promise<void>;
  snapshot(): Promise<LimiterSnapshot>;
}

export interface ServerLimits {
  requests?: { limit?: number; remaining?: number; resetMs?: number };
  inputTokens?: { limit?: number; remaining?: number; resetMs?: number };
  outputTokens?: { limit?: number; remaining?: number; resetMs?: number };
}

function getHeader(h: HeaderSource, name: string): string | undefined {
  if (typeof (h as Headers).get === 'function') return (h as Headers).get(name) ?? undefined;
  const v = (h as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(v) ? v[0] : v;
}

function num(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Parse the `anthropic-ratelimit-*` headers (limits, remaining, RFC 3339 reset). */
export function parseRateLimitHeaders(h: HeaderSource): ServerLimits {
  const dim = (prefix: string) => {
    const limit = num(getHeader(h, `anthropic-ratelimit-${prefix}-limit`));
    const remaining = num(getHeader(h, `anthropic-ratelimit-${prefix}-remaining`));
    const reset = getHeader(h, `anthropic-ratelimit-${prefix}-reset`);
    const resetMs = reset ? Date.parse(reset) : Number.NaN;
    if (limit === undefined && remaining === undefined) return undefined;
    return { limit, remaining, resetMs: Number.isFinite(resetMs) ? resetMs : undefined };
  };
  return {
    requests: dim('requests'),
    inputTokens: dim('input-tokens'),
    outputTokens: dim('output-tokens'),
  };
}

/** The longest wait a provider's retry-after may impose on a call (the pool row has its own clamp). */
export const MAX_RETRY_AFTER_MS = 600_000;

/**
 * Parse `retry-after-ms` (float ms) or `retry-after` (seconds, or an HTTP date) into ms, at most
 * `maxMs` (a hostile or broken server must not park a worker for days). Returns undefined when
 * absent or unusable.
 */
export function parseRetryAfterMs(
  h: HeaderSource | undefined | null,
  nowMs = Date.now(),
  maxMs = MAX_RETRY_AFTER_MS,
): number | undefined {
  if (!h) return undefined;
  const clamp = (ms: number) => Math.min(ms, maxMs);
  const ms = num(getHeader(h, 'retry-after-ms'));
  if (ms !== undefined && ms >= 0) return clamp(ms);
  const raw = getHeader(h, 'retry-after');
  if (raw === undefined) return undefined;
  const secs = num(raw);
  if (secs !== undefined) return secs >= 0 ? clamp(secs * 1000) : undefined;
  const date = Date.parse(raw);
  return Number.isFinite(date) ? clamp(Math.max(0, date - nowMs)) : undefined;
}

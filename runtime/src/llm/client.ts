/**
 * The Messages API client with our own retry loop.
 *
 * The SDK runs with `maxRetries: 0` so that every attempt passes through the pool's
 * `RateLimiter` (reserve before, reconcile after) and no call silently sleeps on `retry-after`
 * while holding a slot. Retry rules:
 *
 *  - 429 `rate_limit_error` → honour `retry-after` by blocking the whole pool until then
 *    (`limiter.blockUntil`), then retry; the next `reserve` waits for the block.
 *  - 429 with `error_code: enforced_spend_limit_reached` → no retry (`spend_limit`).
 *  - 529, 5xx, 408/409, connection errors and timeouts → exponential backoff with jitter.
 *  - 400, 401, 403, 404, 413 and other 4xx → no retry; 401/403 set `authError` so the caller
 *    can mark the pool Degraded and stop sending.
 *
 * After `maxAttempts` the call fails with the last reason; it is never reported as success.
 */
import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type { Logger } from 'pino';
import { sleep as defaultSleep, type Sleep } from '../../../contract/src/sleep.js';
import type { RateLimiter, TokenEstimate } from './limiter/types.js';
import { parseRetryAfterMs } from './limiter/types.js';
import type { LlmMetrics, MetricLabels } from './metrics.js';
import type { RequestMeta } from './prompt.js';
import type { FailureReason, Pricing, RetryPolicy, TokenUsage } from './types.js';

export type Message = Anthropic.Message;
export type MessageCreateParams = Anthropic.MessageCreateParamsNonStreaming;

export interface CreateAnthropicOptions {
  apiKey: string;
  baseURL?: string;
  /** Per-attempt timeout (default 120 s; the SDK default of 10 min is too long for a worker). */
  timeoutMs?: number;
}

/** An SDK client with SDK-level retries disabled. */
export function createAnthropic(opts: CreateAnthropicOptions): Anthropic {
  return new Anthropic({
    apiKey: opts.apiKey,
    ...(opts.baseURL ? { baseURL: opts.baseURL } : {}),
    maxRetries: 0,
    timeout: opts.timeoutMs ?? 120_000,
  });
}

export interface ErrorClassification {
  reason: FailureReason;
  retryable: boolean;
  /** 401/403: the pool's credentials are bad; stop and mark the pool Degraded. */
  authError: boolean;
  status?: number;
  retryAfterMs?: number;
  /** Key-free, essay-free summary for logs and the comparison record. */
  detail: string;
}

/** Map an SDK error to a failure reason and a retry decision. */
export function classifyError(err: unknown, nowMs = Date.now()): ErrorClassification {
  if (err instanceof APIUserAbortError) {
    return { reason: 'aborted', retryable: false, authError: false, detail: 'aborted' };
  }
  if (err instanceof APIConnectionTimeoutError) {
    return { reason: 'timeout', retryable: true, authError: false, detail: 'request timed out' };
  }
  if (err instanceof APIConnectionError) {
    return { reason: 'connection_error', retryable: true, authError: false, detail: 'connection error' };
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const type = err.type ?? 'unknown';
    const detail = `${status} ${type}${err.errorCode ? ` (${err.errorCode})` : ''}`;
    const base = { status, authError: false, detail };
    if (status === 401) return { ...base, reason: 'auth_failed', retryable: false, authError: true };
    if (status === 403) return { ...base, reason: 'permission_denied', retryable: false, authError: true };
    if (status === 429) {
      const code = err.errorCode ?? spendCode(err.error);
      if (code === 'enforced_spend_limit_reached')
        return { ...base, reason: 'spend_limit', retryable: false };
      return {
        ...base,
        reason: 'rate_limited',
        retryable: true,
        retryAfterMs: parseRetryAfterMs(err.headers, nowMs),
      };
    }
    if (status === 529) return { ...base, reason: 'overloaded', retryable: true };
    if (status === 408) return { ...base, reason: 'timeout', retryable: true };
    if (status === 409 || status >= 500) return { ...base, reason: 'server_error', retryable: true };
    if (status === 413) return { ...base, reason: 'request_too_large', retryable: false };
    if (status === 404) return { ...base, reason: 'not_found', retryable: false };
    if (status === 400 && /usage limits/i.test(err.apiMessage ?? '')) {
      return { ...base, reason: 'spend_limit', retryable: false };
    }
    return { ...base, reason: 'invalid_request', retryable: false };
  }
  if (err instanceof Error && err.name === 'AbortError') {
    return { reason: 'aborted', retryable: false, authError: false, detail: 'aborted' };
  }
  return {
    reason: 'connection_error',
    retryable: false,
    authError: false,
    detail: 'unexpected client error',
  };
}

function spendCode(body: unknown): string | undefined {
  const b = body as { error?: { details?: { error_code?: unknown } } } | undefined;
  const c = b?.error?.details?.error_code;
  return typeof c === 'string' ? c : undefined;
}

/** Backoff before retry number `retryIndex` (0-based): `min(initial * 2^n, max) * (1 - jitter*U)`. */
export function backoffMs(
  policy: RetryPolicy,
  retryIndex: number,
  random: () => number = Math.random,
): number {
  const raw = Math.min(policy.initialBackoffMs * 2 ** retryIndex, policy.maxBackoffMs);
  return Math.round(raw * (1 - policy.jitter * random()));
}

export function usageFromMessage(m: Pick<Message, 'usage'>): TokenUsage {
  return {
    input: m.usage.input_tokens ?? 0,
    output: m.usage.output_tokens ?? 0,
    cacheRead: m.usage.cache_read_input_tokens ?? 0,
    cacheWrite: m.usage.cache_creation_input_tokens ?? 0,
  };
}

export type SendResult =
  | {
      ok: true;
      message: Message;
      usage: TokenUsage;
      attempts: number;
      requestId?: string | null;
      limiterWaitMs: number;
    }
  | {
      ok: false;
      reason: FailureReason;
      detail: string;
      authError: boolean;
      status?: number;
      attempts: number;
      limiterWaitMs: number;
    };

export interface LlmClientOptions {
  anthropic: Anthropic;
  limiter: RateLimiter;
  retry: RetryPolicy;
  labels: MetricLabels;
  metrics?: LlmMetrics;
  pricing?: Pricing;
  logger?: Logger;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
  /** Called once per auth failure (401/403) so the pool can be marked Degraded. */
  onAuthError?: (c: ErrorClassification) => void;
}

export interface SendRequest {
  params: MessageCreateParams;
  meta: RequestMeta;
  estimate: TokenEstimate;
  signal?: AbortSignal;
}

export class LlmClient {
  readonly anthropic: Anthropic;
  private readonly o: LlmClientOptions;
  private readonly sleep: Sleep;
  private readonly now: () => number;

  constructor(opts: LlmClientOptions) {
    this.o = opts;
    this.anthropic = opts.anthropic;
    this.sleep = opts.sleep ?? defaultSleep;
    this.now = opts.now ?? Date.now;
  }

  get labels(): MetricLabels {
    return this.o.labels;
  }

  /** One logical Messages call: up to `maxAttempts` HTTP attempts, each through the limiter. */
  async send(req: SendRequest): Promise<SendResult> {
    const { limiter, retry, metrics, labels, logger } = this.o;
    let waited = 0;
    let last: ErrorClassification | undefined;
    for (let attempt = 1; attempt <= retry.maxAttempts; attempt++) {
      const reservation = await limiter.reserve(req.estimate, req.signal);
      waited += reservation.waitedMs;
      metrics?.limiterWait.observe(
        { provider: labels.provider, model: labels.model },
        reservation.waitedMs / 1000,
      );
      const t0 = this.now();
      try {
        const { data, response, request_id } = await this.anthropic.messages
          .create(req.params, {
            signal: req.signal,
            headers: { 'x-cj-correlation-id': req.meta.correlationId },
          })
          .withResponse();
        const usage = usageFromMessage(data);
        // The verdict is in hand: limiter bookkeeping that fails (its database briefly down) must
        // not turn it into a failed call; an unsettled reservation's lease expires by itself.
        await this.bookkeeping('reconcile', async () => {
          await limiter.observeHeaders(response.headers);
          await limiter.reconcile(reservation, {
            inputTokens: usage.input + usage.cacheWrite,
            outputTokens: usage.output,
          });
        });
        metrics?.latency.observe(labels, (this.now() - t0) / 1000);
        metrics?.requests.inc({ ...labels, status: 'ok' });
        metrics?.recordUsage(labels, usage, this.o.pricing);
        logger?.debug(
          { correlationId: req.meta.correlationId, requestId: request_id, attempt, usage },
          'llm call succeeded',
        );
        return {
          ok: true,
          message: data,
          usage,
          attempts: attempt,
          requestId: request_id,
          limiterWaitMs: waited,
        };
      } catch (err) {
        await this.bookkeeping('release', () => limiter.reconcile(reservation, null));
        const c = classifyError(err, this.now());
        last = c;
        if (err instanceof APIError && err.headers) {
          const headers = err.headers;
          await this.bookkeeping('headers', () => limiter.observeHeaders(headers));
        }
        metrics?.latency.observe(labels, (this.now() - t0) / 1000);
        metrics?.requests.inc({ ...labels, status: c.reason });
        logger?.warn(
          { correlationId: req.meta.correlationId, attempt, reason: c.reason, detail: c.detail },
          'llm call failed',
        );
        if (c.authError) this.o.onAuthError?.(c);
        if (!c.retryable || attempt === retry.maxAttempts) {
          return { ok: false, ...c, attempts: attempt, limiterWaitMs: waited };
        }
        metrics?.retries.inc({ ...labels, reason: c.reason });
        const delay = c.retryAfterMs ?? backoffMs(retry, attempt - 1, this.o.random);
        if (c.reason === 'rate_limited') {
          // Pool-wide: every worker of the pool waits, not just this call (this one at least).
          const until = this.now() + delay;
          if (!(await this.bookkeeping('block', () => limiter.blockUntil(until, 'retry-after'))))
            await this.sleep(delay, req.signal);
        } else {
          await this.sleep(delay, req.signal);
        }
      }
    }
    // Unreachable (maxAttempts >= 1), kept for the type checker.
    const c = last ?? classifyError(new Error('no attempt'));
    return { ok: false, ...c, attempts: retry.maxAttempts, limiterWaitMs: waited };
  }

  /** Runs limiter bookkeeping; a failure is logged, never thrown. Returns whether it worked. */
  private async bookkeeping(what: string, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      this.o.logger?.warn({ what, err: String(err) }, 'limiter bookkeeping failed; carrying on');
      return false;
    }
  }

  /**
   * Retry an arbitrary provider operation (Message Batches endpoints) with the same policy but
   * without token accounting: batch traffic does not draw on the Messages rate limits.
   */
  async withRetry<T>(
    op: (signal?: AbortSignal) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<
    { ok: true; value: T; attempts: number } | { ok: false; c: ErrorClassification; attempts: number }
  > {
    const { retry, metrics, labels } = this.o;
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: true, value: await op(signal), attempts: attempt };
      } catch (err) {
        const c = classifyError(err, this.now());
        metrics?.requests.inc({ ...labels, status: c.reason });
        if (c.authError) this.o.onAuthError?.(c);
        if (!c.retryable || attempt >= retry.maxAttempts) return { ok: false, c, attempts: attempt };
        metrics?.retries.inc({ ...labels, reason: c.reason });
        await this.sleep(c.retryAfterMs ?? backoffMs(retry, attempt - 1, this.o.random), signal);
      }
    }
  }
}

/**
 * Shared state of one `Comparer.compare` call, used by the three modes. Each comparison has a
 * `JobState` that accumulates attempts and usage until exactly one outcome is settled for it.
 */
import type { Logger } from 'pino';
import type { Sleep } from '../../../../contract/src/sleep.js';
import type { BatchStore } from '../batch-store.js';
import type { LlmClient } from '../client.js';
import type { LlmMetrics } from '../metrics.js';
import { type BuiltRequest, buildRequest, injectionFlagsFor } from '../prompt.js';
import {
  type Assignment,
  addUsage,
  type ComparisonOutcome,
  type FailureReason,
  type PairJob,
  type PoolRuntimeConfig,
  type TokenUsage,
  zeroUsage,
} from '../types.js';
import type { Verdict } from '../verdict.js';

export class AbortedError extends Error {
  constructor(cause?: unknown) {
    super('comparison run aborted', { cause });
    this.name = 'AbortError';
  }
}

export interface JobState {
  job: PairJob;
  startedAt: number;
  attempts: number;
  usage: TokenUsage;
  /** The one re-ask after a malformed answer has been used. */
  reasked: boolean;
  promptSha256?: string;
  correlationId?: string;
}

export interface ModeContext {
  pool: PoolRuntimeConfig;
  assignment: Assignment;
  client: LlmClient;
  metrics?: LlmMetrics;
  logger?: Logger;
  sleep: Sleep;
  now: () => number;
  signal?: AbortSignal;
  batchStore: BatchStore;
  batchKeyPrefix: string;
  onBatchSubmitted?: (providerBatchId: string, key: string) => void;
  /** True once a 401/403 was seen: remaining work fails fast as `auth_failed`. */
  isAuthFailed: () => boolean;
  /** Prefix sha → epoch ms until which the provider cache is believed warm. */
  warmPrefixes: Map<string, number>;
  settle: (outcome: ComparisonOutcome) => void;
}

export function newState(job: PairJob, now: number): JobState {
  return { job, startedAt: now, attempts: 0, usage: zeroUsage(), reasked: false };
}

export function succeed(ctx: ModeContext, st: JobState, v: Verdict): void {
  ctx.settle({
    status: 'succeeded',
    comparisonId: st.job.comparisonId,
    pairId: st.job.pairId,
    winner: v.winner,
    confidence: v.confidence,
    justification: v.justification,
    injectionFlags: injectionFlagsFor(st.job),
    usage: st.usage,
    attempts: st.attempts,
    latencyMs: ctx.now() - st.startedAt,
    promptSha256: st.promptSha256,
    correlationId: st.correlationId,
  });
}

export function fail(ctx: ModeContext, st: JobState, reason: FailureReason, detail?: string): void {
  ctx.settle({
    status: 'failed',
    comparisonId: st.job.comparisonId,
    pairId: st.job.pairId,
    failureReason: reason,
    ...(detail ? { failureDetail: detail } : {}),
    injectionFlags: injectionFlagsFor(st.job),
    usage: st.usage,
    attempts: st.attempts,
    latencyMs: ctx.now() - st.startedAt,
    promptSha256: st.promptSha256,
    correlationId: st.correlationId,
  });
}

export function addTo(st: JobState, u: TokenUsage): void {
  st.usage = addUsage(st.usage, u);
}

/** Split a call's usage evenly over `k` comparisons (remainders go to the first ones). */
export function splitUsage(u: TokenUsage, k: number): TokenUsage[] {
  const part = (n: number, i: number) => Math.floor(n / k) + (i < n % k ? 1 : 0);
  return Array.from({ length: k }, (_, i) => ({
    input: part(u.input, i),
    output: part(u.output, i),
    cacheRead: part(u.cacheRead, i),
    cacheWrite: part(u.cacheWrite, i),
  }));
}

export function build(
  ctx: ModeContext,
  jobs: readonly PairJob[],
  correlationId: string,
  multiplier = 1,
): BuiltRequest {
  return buildRequest(ctx.assignment, jobs, {
    model: ctx.pool.model,
    caching: ctx.pool.promptCaching,
    maxOutputTokensPerPair: ctx.pool.maxOutputTokensPerPair,
    correlationId,
    maxTokensMultiplier: multiplier,
  });
}

/** Limiter estimate: dynamic part, plus the prefix unless it is believed cached. */
export function estimateFor(ctx: ModeContext, built: BuiltRequest, pairs: number) {
  const warm =
    ctx.pool.promptCaching.enabled && (ctx.warmPrefixes.get(built.meta.prefixSha256) ?? 0) > ctx.now();
  return {
    inputTokens: built.dynamicTokens + (warm ? 0 : built.prefixTokens) + 8,
    outputTokens: ctx.pool.expectedOutputTokensPerPair * pairs,
  };
}

export function noteCache(ctx: ModeContext, built: BuiltRequest, u: TokenUsage): void {
  if (!ctx.pool.promptCaching.enabled || u.cacheRead + u.cacheWrite === 0) return;
  const ttl = ctx.pool.promptCaching.ttl === '1h' ? 3_600_000 : 300_000;
  // Refresh a little early: the provider's clock started when it served the response.
  ctx.warmPrefixes.set(built.meta.prefixSha256, ctx.now() + ttl - 5_000);
}

export function throwIfAborted(ctx: ModeContext): void {
  if (ctx.signal?.aborted) throw new AbortedError(ctx.signal.reason);
}

/**
 * Types shared by the LLM comparison runtime. The pool configuration is described once as a
 * zod schema and the TypeScript type is derived from it, so the operator (which reads the
 * `LLMProviderPool` CRD) and the worker agree on one shape.
 *
 * This module knows nothing of CJ statistics: a comparison is "two essays in, one winner out".
 */
import { z } from 'zod';

export const BatchingModeSchema = z.enum(['per_request', 'serial_bundle', 'batch_api']);
export type BatchingMode = z.infer<typeof BatchingModeSchema>;

export const CacheTtlSchema = z.enum(['5m', '1h']);
export type CacheTtl = z.infer<typeof CacheTtlSchema>;

/**
 * Our own retry loop (the SDK runs with `maxRetries: 0`). `maxAttempts` counts HTTP attempts,
 * including the first. Backoff for 529/5xx/connection errors is
 * `min(initialBackoffMs * 2^n, maxBackoffMs) * (1 - jitter * U[0,1))`. A 429 always waits for
 * `retry-after` (through the limiter's pool-wide block) instead of the backoff.
 */
export const RetryPolicySchema = z.object({
  maxAttempts: z.number().int().min(1).max(20).default(5),
  initialBackoffMs: z.number().int().min(0).default(500),
  maxBackoffMs: z.number().int().min(0).default(30_000),
  jitter: z.number().min(0).max(1).default(0.25),
});
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/** USD per million tokens. Cache prices default to the documented multipliers of `inputPerMTok`. */
export const PricingSchema = z.object({
  inputPerMTok: z.number().min(0),
  outputPerMTok: z.number().min(0),
  cacheWrite5mPerMTok: z.number().min(0).optional(),
  cacheWrite1hPerMTok: z.number().min(0).optional(),
  cacheReadPerMTok: z.number().min(0).optional(),
  /** Multiplier applied to everything in `batch_api` mode (Message Batches are 50% off). */
  batchMultiplier: z.number().min(0).max(1).default(0.5),
});
export type Pricing = z.infer<typeof PricingSchema>;

export const PoolConfigSchema = z.object({
  /** Label used in metrics and logs (`anthropic` or `fake`). */
  provider: z.string().min(1).default('anthropic'),
  model: z.string().min(1),
  mode: BatchingModeSchema.default('per_request'),
  /** Pairs per call in `serial_bundle` mode. */
  bundleSize: z.number().int().min(1).max(64).default(8),
  /** The model's context window: a bundle never holds more pairs than fit in it. */
  contextWindowTokens: z.number().int().min(4_096).default(200_000),
  retry: RetryPolicySchema.default({
    maxAttempts: 5,
    initialBackoffMs: 500,
    maxBackoffMs: 30_000,
    jitter: 0.25,
  }),
  promptCaching: z
    .object({ enabled: z.boolean().default(true), ttl: CacheTtlSchema.default('5m') })
    .default({ enabled: true, ttl: '5m' }),
  /** Concurrent in-flight calls from this process (the shared limiter may allow fewer). */
  concurrency: z.number().int().min(1).max(512).default(8),
  /** `max_tokens` for a single verdict; bundles get `maxOutputTokensPerPair * k + 64`. */
  maxOutputTokensPerPair: z.number().int().min(64).max(4096).default(256),
  /** Expected output tokens per pair, reserved in the limiter before a call (OTPM counts actual tokens). */
  expectedOutputTokensPerPair: z.number().int().min(1).default(80),
  batchPollIntervalMs: z.number().int().min(1).default(10_000),
  pricing: PricingSchema.optional(),
});
export type PoolConfig = z.infer<typeof PoolConfigSchema>;
export type PoolConfigInput = z.input<typeof PoolConfigSchema>;

/** The assignment shown to the judge, part of the cached static prefix. */
export interface Assignment {
  title: string;
  instructions: string;
  rubric: string;
}

export interface EssayRef {
  id: string;
  text: string;
}

/** One comparison to make. `pairId` identifies the (unordered) pair, `comparisonId` this judgement. */
export interface PairJob {
  comparisonId: string;
  pairId: string;
  essayA: EssayRef;
  essayB: EssayRef;
}

export type Winner = 'A' | 'B';
export type Confidence = 'low' | 'medium' | 'high';

/**
 * Why a comparison failed. Stable strings: they are stored with the comparison and used as a
 * metric label.
 */
export const FAILURE_REASONS = [
  'unparseable',
  'refused',
  'rate_limited',
  'overloaded',
  'server_error',
  'connection_error',
  'timeout',
  'auth_failed',
  'permission_denied',
  'spend_limit',
  'invalid_request',
  'request_too_large',
  'not_found',
  'batch_errored',
  'batch_expired',
  'batch_canceled',
  'aborted',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** Token usage attributed to one comparison (a bundle's usage is split evenly across its pairs). */
export interface TokenUsage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

export const zeroUsage = (): TokenUsage => ({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 });

export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    input: a.input + b.input,
    output: a.output + b.output,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite: a.cacheWrite + b.cacheWrite,
  };
}

export type InjectionKind =
  | 'addresses_grader'
  | 'instruction_override'
  | 'verdict_request'
  | 'delimiter_spoof'
  | 'role_play';

/** An essay that seems to talk to the grader. Recorded with the comparison; the verdict still stands. */
export interface InjectionFlag {
  essayId: string;
  position: Winner;
  kinds: InjectionKind[];
}

interface OutcomeBase {
  comparisonId: string;
  pairId: string;
  injectionFlags: InjectionFlag[];
  usage: TokenUsage;
  /** HTTP attempts that carried this comparison (bundle calls count for each pair in them). */
  attempts: number;
  latencyMs: number;
  /** sha256 of the last prompt sent for this comparison, and its correlation id. */
  promptSha256?: string;
  correlationId?: string;
}

export interface SucceededOutcome extends OutcomeBase {
  status: 'succeeded';
  winner: Winner;
  confidence: Confidence;
  justification: string;
}

export interface FailedOutcome extends OutcomeBase {
  status: 'failed';
  failureReason: FailureReason;
  /** Short, key-free and essay-free description of the last error. */
  failureDetail?: string;
}

/** What the Comparer returns for each job: exactly one outcome per comparisonId. */
export type ComparisonOutcome = SucceededOutcome | FailedOutcome;

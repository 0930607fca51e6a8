// The pool runtime config: what a comparison worker runs with, resolved by the operator from the
// LLMProviderPool spec (and the batch's tightening overrides) and handed to the worker's pod as
// CJ_POOL_CONFIG. Described once, here: the CRD's defaults (`POOL_DEFAULTS`, which
// operator/src/api/pool.ts uses for the CRD too), one resolution from the spec, one
// encode/decode of the environment value. Durations are milliseconds and prices numbers once
// resolved, so the worker parses no API grammar.
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { effectiveLimits, type TierLimits, type TierName } from './tiers.js';

export const BATCHING_MODES = ['per_request', 'serial_bundle', 'batch_api'] as const;
export const BatchingModeSchema = z.enum(BATCHING_MODES);
export type BatchingMode = z.infer<typeof BatchingModeSchema>;

export const CACHE_TTLS = ['5m', '1h'] as const;
export const CacheTtlSchema = z.enum(CACHE_TTLS);
export type CacheTtl = z.infer<typeof CacheTtlSchema>;

export const MAX_BUNDLE_SIZE = 64;
/** Context window assumed when the pool does not set spec.contextWindowTokens (every current Claude model). */
export const DEFAULT_CONTEXT_WINDOW_TOKENS = 200_000;
export const MIN_CONTEXT_WINDOW_TOKENS = 4_096;
/**
 * The model name of a `fake` pool that selects the fake server's standard judge (the engine
 * benchmark's judge model, runtime/src/fake-anthropic/judge.ts) instead of its heuristic one.
 */
export const STANDARD_JUDGE_MODEL = 'fake-standard-judge';

/**
 * The one set of defaults. The spec's (tier, retry, batching, promptCaching) are the CRD's; the
 * apiserver applies them, so they are what production runs with. The runtime tuning below them
 * is not part of the CRD (tests and benchmarks set it).
 */
export const POOL_DEFAULTS = {
  tier: 'start',
  retry: { maxAttempts: 5, initialBackoff: '500ms', maxBackoff: '60s' },
  batching: { mode: 'per_request', bundleSize: 1, batchPollInterval: '30s' },
  promptCaching: { enabled: true, ttl: '5m' },
  contextWindowTokens: DEFAULT_CONTEXT_WINDOW_TOKENS,
  /**
   * Slow start of a pool that was idle (its first call, or none for 10 min): the rate begins at
   * initialPercent and grows linearly to all of it over duration, because a sharp rise in an
   * organisation's traffic can meet the provider's acceleration limits (429s the rate limits do
   * not explain). `duration: 0s` turns it off.
   */
  slowStart: { duration: '60s', initialPercent: 10 },
  /** Jitter share of the retry backoff: `backoff * (1 - jitter * U[0,1))`. */
  jitter: 0.25,
  /** In-flight calls per worker process, capped by the pool's maxConcurrency. */
  concurrency: 16,
  maxOutputTokensPerPair: 256,
  expectedOutputTokensPerPair: 80,
  /** Message Batches cost half of per-request calls. */
  batchMultiplier: 0.5,
} as const satisfies {
  tier: TierName;
  batching: { mode: BatchingMode; bundleSize: number; batchPollInterval: string };
  promptCaching: { enabled: boolean; ttl: CacheTtl };
  [k: string]: unknown;
};

const ms = (d: string) => parseDuration(d);

/**
 * Our own retry loop (the SDK runs with `maxRetries: 0`). `maxAttempts` counts HTTP attempts,
 * including the first. Backoff for 529/5xx/connection errors is
 * `min(initialBackoffMs * 2^n, maxBackoffMs) * (1 - jitter * U[0,1))`. A 429 always waits for
 * `retry-after` (through the limiter's pool-wide block) instead of the backoff.
 */
export const RetryPolicySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(20).default(POOL_DEFAULTS.retry.maxAttempts),
  initialBackoffMs: z.number().int().min(0).default(ms(POOL_DEFAULTS.retry.initialBackoff)),
  maxBackoffMs: z.number().int().min(0).default(ms(POOL_DEFAULTS.retry.maxBackoff)),
  jitter: z.number().min(0).max(1).default(POOL_DEFAULTS.jitter),
});
export type RetryPolicy = z.infer<typeof RetryPolicySchema>;

/**
 * USD per million tokens. Cache reads default to 0.1× input; cache writes to 1.25× input (5m
 * TTL) or 2× (1h TTL) — `cacheWritePerMTok`, when set, is the price for the pool's TTL.
 */
export const PricingSchema = z.strictObject({
  inputPerMTok: z.number().min(0),
  outputPerMTok: z.number().min(0),
  cacheReadPerMTok: z.number().min(0).optional(),
  cacheWritePerMTok: z.number().min(0).optional(),
  /** Multiplier applied to everything in `batch_api` mode. */
  batchMultiplier: z.number().min(0).max(1).default(POOL_DEFAULTS.batchMultiplier),
});
export type Pricing = z.infer<typeof PricingSchema>;

const LimitsSchema = z.strictObject({
  requestsPerMinute: z.number().int().min(1),
  inputTokensPerMinute: z.number().int().min(1),
  outputTokensPerMinute: z.number().int().min(1),
  maxConcurrency: z.number().int().min(1),
});

/**
 * The rate limiters' tuning, one set for the pool-wide Postgres limiter and the in-process one
 * (the migration's column defaults repeat safety and burst). Production runs these; tests and
 * benchmarks may override them through `limiter`.
 */
export const LIMITER_DEFAULTS = {
  /** Fraction of the provider's limits we aim for. */
  safetyFactor: 0.95,
  /** Bucket capacity in seconds of refill (a small burst: "60 RPM" may be enforced as 1/s). */
  burstSeconds: 5,
  /** The default slow start (POOL_DEFAULTS.slowStart) as the limiters take it. */
  rampUp: {
    initialFraction: POOL_DEFAULTS.slowStart.initialPercent / 100,
    durationMs: parseDuration(POOL_DEFAULTS.slowStart.duration),
  },
  /** An unsettled reservation frees its slot after this (> the 120 s per-attempt timeout). */
  leaseMs: 180_000,
  /** The ramp restarts when nothing was granted for this long. */
  rampIdleResetMs: 600_000,
} as const;

const LimiterTuningSchema = z.strictObject({
  safetyFactor: z.number().gt(0).max(1).optional(),
  burstSeconds: z.number().gt(0).optional(),
  rampUp: z
    .strictObject({ initialFraction: z.number().gt(0).max(1), durationMs: z.number().min(0) })
    .optional(),
  leaseMs: z.number().min(1).optional(),
});

export type PoolLimits = z.infer<typeof LimitsSchema>;
export type LimiterTuning = z.infer<typeof LimiterTuningSchema>;

// Strict objects throughout: CJ_POOL_CONFIG is written by the operator of the same version, so a
// key the worker does not know is a version skew or a hand edit, and is refused rather than
// silently dropped (a dropped limit or price would run with a default).
export const PoolRuntimeConfigSchema = z
  .strictObject({
    /** Label used in metrics and logs (`anthropic` or `fake`). */
    provider: z.string().min(1).default('anthropic'),
    /** Override of the provider endpoint (a proxy or the fake server). */
    baseURL: z
      .string()
      .regex(/^https?:\/\/\S+$/)
      .optional(),
    model: z.string().min(1),
    mode: BatchingModeSchema.default(POOL_DEFAULTS.batching.mode),
    /** Pairs per call in `serial_bundle` mode. */
    bundleSize: z.number().int().min(1).max(MAX_BUNDLE_SIZE).default(POOL_DEFAULTS.batching.bundleSize),
    /** The model's context window: a bundle never holds more pairs than fit in it. */
    contextWindowTokens: z
      .number()
      .int()
      .min(MIN_CONTEXT_WINDOW_TOKENS)
      .default(DEFAULT_CONTEXT_WINDOW_TOKENS),
    retry: RetryPolicySchema.prefault({}),
    promptCaching: z
      .strictObject({
        enabled: z.boolean().default(POOL_DEFAULTS.promptCaching.enabled),
        ttl: CacheTtlSchema.default(POOL_DEFAULTS.promptCaching.ttl),
      })
      .prefault({}),
    /** Concurrent in-flight calls from this process (the shared limiter may allow fewer). */
    concurrency: z.number().int().min(1).max(512).default(POOL_DEFAULTS.concurrency),
    /** `max_tokens` for a single verdict; bundles get `maxOutputTokensPerPair * k + 64`. */
    maxOutputTokensPerPair: z.number().int().min(64).max(4096).default(POOL_DEFAULTS.maxOutputTokensPerPair),
    /** Expected output tokens per pair, reserved in the limiter before a call (OTPM counts actual tokens). */
    expectedOutputTokensPerPair: z.number().int().min(1).default(POOL_DEFAULTS.expectedOutputTokensPerPair),
    batchPollIntervalMs: z.number().int().min(1).default(ms(POOL_DEFAULTS.batching.batchPollInterval)),
    pricing: PricingSchema.optional(),
    /** Pool-wide limits for the shared limiter; the default tier's ceiling when left out. */
    limits: LimitsSchema.default(() => effectiveLimits(POOL_DEFAULTS.tier, undefined)!),
    limiter: LimiterTuningSchema.prefault({}),
  })
  // A process never keeps more calls in flight than the whole pool may.
  .transform((c) => ({ ...c, concurrency: Math.min(c.concurrency, c.limits.maxConcurrency) }));
export type PoolRuntimeConfig = z.infer<typeof PoolRuntimeConfigSchema>;
export type PoolRuntimeConfigInput = z.input<typeof PoolRuntimeConfigSchema>;

/** A price as the CRD writes it: a decimal string ("3.00") or a whole number of dollars. */
type Price = string | number;

/** What of an LLMProviderPool's spec the runtime needs (structurally, the CRD type fits). */
export interface PoolSpecForRuntime {
  provider: string;
  baseURL?: string | undefined;
  model: string;
  contextWindowTokens?: number | undefined;
  tier?: TierName | undefined;
  limits?: Partial<TierLimits> | undefined;
  retry?: { maxAttempts?: number; initialBackoff?: string; maxBackoff?: string } | undefined;
  batching?: { mode?: BatchingMode; bundleSize?: number; batchPollInterval?: string } | undefined;
  promptCaching?: { enabled?: boolean; ttl?: CacheTtl } | undefined;
  slowStart?: { duration?: string; initialPercent?: number } | undefined;
  pricing?:
    | {
        inputPerMTok: Price;
        outputPerMTok: Price;
        cacheReadPerMTok?: Price | undefined;
        cacheWritePerMTok?: Price | undefined;
      }
    | undefined;
}

/** A pool whose config cannot run (the message names the field; never holds a key). */
export class PoolConfigError extends Error {
  override name = 'PoolConfigError';
}

/** The pool's prices as numbers (decimal strings parsed), or undefined without spec.pricing. */
export function resolvePricing(p: PoolSpecForRuntime['pricing']): Pricing | undefined {
  if (!p) return undefined;
  const n = (v: Price | undefined) => (v === undefined ? undefined : Number(v));
  return PricingSchema.parse({
    inputPerMTok: n(p.inputPerMTok),
    outputPerMTok: n(p.outputPerMTok),
    ...(p.cacheReadPerMTok !== undefined ? { cacheReadPerMTok: n(p.cacheReadPerMTok) } : {}),
    ...(p.cacheWritePerMTok !== undefined ? { cacheWritePerMTok: n(p.cacheWritePerMTok) } : {}),
  });
}

/**
 * The runtime config of a pool's workers: explicit limits win, the tier's ceiling fills the rest,
 * then the batch's overrides (admission lets them only tighten) apply. Throws `PoolConfigError`
 * for a custom tier without every limit (admission refuses such a pool).
 */
export function resolvePoolRuntimeConfig(
  spec: PoolSpecForRuntime,
  overrides: { limits?: Partial<TierLimits> | undefined } = {},
): PoolRuntimeConfig {
  const tierLimits = effectiveLimits(spec.tier ?? POOL_DEFAULTS.tier, spec.limits);
  if (!tierLimits) throw new PoolConfigError('tier custom needs every field of spec.limits');
  const limits = { ...tierLimits, ...definedOnly(overrides.limits ?? {}) };
  const d = POOL_DEFAULTS;
  const pricing = resolvePricing(spec.pricing);
  return PoolRuntimeConfigSchema.parse({
    provider: spec.provider,
    ...(spec.baseURL ? { baseURL: spec.baseURL } : {}),
    model: spec.model,
    mode: spec.batching?.mode ?? d.batching.mode,
    bundleSize: spec.batching?.bundleSize ?? d.batching.bundleSize,
    contextWindowTokens: spec.contextWindowTokens ?? d.contextWindowTokens,
    retry: {
      maxAttempts: spec.retry?.maxAttempts ?? d.retry.maxAttempts,
      initialBackoffMs: ms(spec.retry?.initialBackoff ?? d.retry.initialBackoff),
      maxBackoffMs: ms(spec.retry?.maxBackoff ?? d.retry.maxBackoff),
    },
    promptCaching: {
      enabled: spec.promptCaching?.enabled ?? d.promptCaching.enabled,
      ttl: spec.promptCaching?.ttl ?? d.promptCaching.ttl,
    },
    batchPollIntervalMs: Math.max(1, ms(spec.batching?.batchPollInterval ?? d.batching.batchPollInterval)),
    ...(pricing ? { pricing } : {}),
    limits,
    limiter: {
      rampUp: {
        initialFraction: (spec.slowStart?.initialPercent ?? d.slowStart.initialPercent) / 100,
        durationMs: ms(spec.slowStart?.duration ?? d.slowStart.duration),
      },
    },
  } satisfies PoolRuntimeConfigInput);
}

/** The CJ_POOL_CONFIG value. */
export function encodePoolRuntimeConfig(config: PoolRuntimeConfigInput): string {
  return JSON.stringify(config);
}

/** What to do about a CJ_POOL_CONFIG the worker refuses (it is the operator's, never hand-written). */
export const POOL_CONFIG_FIX =
  "CJ_POOL_CONFIG is written by the operator from the LLMProviderPool spec: run the workers with the operator's own image " +
  "(an unknown field means the worker image is another version: check the batch's spec.workers.image), " +
  'and correct the pool if a value is out of range (kubectl describe llmpool <pool>)';

function describeIssue(i: z.core.$ZodIssue): string {
  const at = i.path.join('.');
  if (i.code === 'unrecognized_keys')
    return i.keys.map((k) => `unknown field ${at ? `${at}.${k}` : k}`).join('; ');
  return `${at || '(root)'}: ${i.message}`;
}

/**
 * Parses CJ_POOL_CONFIG with the strict schema; throws `PoolConfigError` with a key-free message
 * naming every bad field and the fix (the worker exits `EXIT.badInput`: a retry reads the same value).
 */
export function decodePoolRuntimeConfig(value: string | undefined): PoolRuntimeConfig {
  if (!value) throw new PoolConfigError(`CJ_POOL_CONFIG is not set. ${POOL_CONFIG_FIX}`);
  let raw: unknown;
  try {
    raw = JSON.parse(value);
  } catch {
    throw new PoolConfigError(`CJ_POOL_CONFIG is not valid JSON. ${POOL_CONFIG_FIX}`);
  }
  const p = PoolRuntimeConfigSchema.safeParse(raw);
  if (!p.success)
    throw new PoolConfigError(
      `CJ_POOL_CONFIG: ${p.error.issues.map(describeIssue).join('; ')}. ${POOL_CONFIG_FIX}`,
    );
  return p.data;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * `CJ_POOL_CONFIG`: the LLMProviderPool's spec as JSON (what the operator puts in the worker's
 * environment), turned into what the runtime needs: the `Comparer`'s `PoolConfigInput`, the
 * provider base URL and the pool-wide limits for the shared limiter.
 *
 * Accepted shape (the CRD's, durations as Go-style strings "500ms", "30s", "1h30m"):
 *   { provider, baseURL?, model, tier?, limits?: {requestsPerMinute, inputTokensPerMinute,
 *     outputTokensPerMinute, maxConcurrency}, retry?: {maxAttempts, initialBackoff, maxBackoff},
 *     batching?: {mode, bundleSize, batchPollInterval}, promptCaching?: {enabled, ttl},
 *     pricing?: {inputPerMTok, outputPerMTok, cacheReadPerMTok?, cacheWritePerMTok?} }
 * plus optional runtime tuning that is not part of the CRD:
 *   concurrency (in-flight calls per worker process), maxOutputTokensPerPair,
 *   expectedOutputTokensPerPair, limiter: {safetyFactor, burstSeconds,
 *   rampUp: {initialFraction, duration}, lease}.
 * Limits left out run at the tier's ceiling (operator/src/api/tiers.ts).
 */
import { z } from 'zod';
import { effectiveLimits, TIER_NAMES, type TierLimits } from '../../../operator/src/api/tiers.js';
import { type PoolConfigInput, PoolConfigSchema } from '../llm/types.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "1h30m", "500ms", "2s" → ms; a plain number is taken as ms. */
export function parseDurationMs(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new Error(`invalid duration ${v}`);
    return v;
  }
  if (!/^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/.test(v)) {
    throw new Error(`invalid duration "${v}" (use e.g. 500ms, 30s, 1h30m)`);
  }
  let ms = 0;
  for (const m of v.matchAll(/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDurationMs(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
const Price = z.union([z.number().min(0), z.string().regex(/^[0-9]+(\.[0-9]+)?$/)]).transform(Number);
const Positive = z.number().int().min(1);

const EnvPoolSchema = z.object({
  provider: z.string().min(1).default('anthropic'),
  baseURL: z
    .string()
    .regex(/^https?:\/\/\S+$/)
    .optional(),
  model: z.string().min(1),
  contextWindowTokens: z.number().int().min(4_096).optional(),
  tier: z.enum(TIER_NAMES).default('start'),
  limits: z
    .object({
      requestsPerMinute: Positive.optional(),
      inputTokensPerMinute: Positive.optional(),
      outputTokensPerMinute: Positive.optional(),
      maxConcurrency: Positive.optional(),
    })
    .optional(),
  retry: z
    .object({
      maxAttempts: z.number().int().min(1).max(20).optional(),
      initialBackoff: Duration.optional(),
      maxBackoff: Duration.optional(),
      jitter: z.number().min(0).max(1).optional(),
    })
    .optional(),
  batching: z
    .object({
      mode: z.enum(['per_request', 'serial_bundle', 'batch_api']).optional(),
      bundleSize: z.number().int().min(1).max(64).optional(),
      batchPollInterval: Duration.optional(),
    })
    .optional(),
  promptCaching: z
    .object({ enabled: z.boolean().optional(), ttl: z.enum(['5m', '1h']).optional() })
    .optional(),
  pricing: z
    .object({
      inputPerMTok: Price,
      outputPerMTok: Price,
      cacheReadPerMTok: Price.optional(),
      cacheWritePerMTok: Price.optional(),
    })
    .optional(),
  concurrency: z.number().int().min(1).max(512).optional(),
  maxOutputTokensPerPair: z.number().int().min(64).max(4096).optional(),
  expectedOutputTokensPerPair: z.number().int().min(1).optional(),
  limiter: z
    .object({
      safetyFactor: z.number().gt(0).max(1).optional(),
      burstSeconds: z.number().gt(0).optional(),
      rampUp: z.object({ initialFraction: z.number().gt(0).max(1), duration: Duration }).optional(),
      lease: Duration.optional(),
    })
    .optional(),
});

export interface WorkerPoolConfig {
  pool: PoolConfigInput;
  baseURL?: string;
  limits: TierLimits;
  limiter: {
    safetyFactor?: number;
    burstSeconds?: number;
    rampUp?: { initialFraction: number; durationMs: number };
    leaseMs?: number;
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parse `CJ_POOL_CONFIG`; throws `ConfigError` with a key-free message on anything invalid. */
export function parsePoolConfig(json: string | undefined): WorkerPoolConfig {
  if (!json) throw new ConfigError('CJ_POOL_CONFIG is not set');
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ConfigError('CJ_POOL_CONFIG is not valid JSON');
  }
  const p = EnvPoolSchema.safeParse(raw);
  if (!p.success) {
    const msg = p.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ConfigError(`CJ_POOL_CONFIG: ${msg}`);
  }
  const c = p.data;
  const limits = effectiveLimits(c.tier, c.limits);
  if (!limits) throw new ConfigError('CJ_POOL_CONFIG: tier custom needs every field of limits');
  const ttl = c.promptCaching?.ttl ?? '5m';
  const pool: PoolConfigInput = {
    provider: c.provider,
    model: c.model,
    mode: c.batching?.mode ?? 'per_request',
    bundleSize: c.batching?.bundleSize ?? (c.batching?.mode === 'serial_bundle' ? 8 : 1),
    ...(c.contextWindowTokens ? { contextWindowTokens: c.contextWindowTokens } : {}),
    retry: {
      maxAttempts: c.retry?.maxAttempts ?? 5,
      initialBackoffMs: Math.round(c.retry?.initialBackoff ?? 500),
      maxBackoffMs: Math.round(c.retry?.maxBackoff ?? 60_000),
      jitter: c.retry?.jitter ?? 0.25,
    },
    promptCaching: { enabled: c.promptCaching?.enabled ?? true, ttl },
    concurrency: Math.min(limits.maxConcurrency, c.concurrency ?? 16),
    ...(c.maxOutputTokensPerPair ? { maxOutputTokensPerPair: c.maxOutputTokensPerPair } : {}),
    ...(c.expectedOutputTokensPerPair ? { expectedOutputTokensPerPair: c.expectedOutputTokensPerPair } : {}),
    batchPollIntervalMs: Math.max(1, Math.round(c.batching?.batchPollInterval ?? 30_000)),
    ...(c.pricing
      ? {
          pricing: {
            inputPerMTok: c.pricing.inputPerMTok,
            outputPerMTok: c.pricing.outputPerMTok,
            ...(c.pricing.cacheReadPerMTok !== undefined
              ? { cacheReadPerMTok: c.pricing.cacheReadPerMTok }
              : {}),
            ...(c.pricing.cacheWritePerMTok !== undefined
              ? ttl === '1h'
                ? { cacheWrite1hPerMTok: c.pricing.cacheWritePerMTok }
                : { cacheWrite5mPerMTok: c.pricing.cacheWritePerMTok }
              : {}),
            batchMultiplier: 0.5,
          },
        }
      : {}),
  };
  const checked = PoolConfigSchema.safeParse(pool);
  if (!checked.success) {
    throw new ConfigError(`CJ_POOL_CONFIG: ${checked.error.issues.map((i) => i.message).join('; ')}`);
  }
  return {
    pool,
    ...(c.baseURL ? { baseURL: c.baseURL } : {}),
    limits,
    limiter: {
      ...(c.limiter?.safetyFactor !== undefined ? { safetyFactor: c.limiter.safetyFactor } : {}),
      ...(c.limiter?.burstSeconds !== undefined ? { burstSeconds: c.limiter.burstSeconds } : {}),
      ...(c.limiter?.rampUp
        ? {
            rampUp: {
              initialFraction: c.limiter.rampUp.initialFraction,
              durationMs: c.limiter.rampUp.duration,
            },
          }
        : {}),
      ...(c.limiter?.lease !== undefined ? { leaseMs: c.limiter.lease } : {}),
    },
  };
}

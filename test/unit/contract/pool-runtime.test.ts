import { describe, expect, it } from 'vitest';
import { JobInputError, readCompareEnv } from '../../../contract/src/job.js';
import {
  decodePoolRuntimeConfig,
  encodePoolRuntimeConfig,
  LIMITER_DEFAULTS,
  POOL_CONFIG_FIX,
  POOL_DEFAULTS,
  PoolConfigError,
  PoolRuntimeConfigSchema,
  resolvePoolRuntimeConfig,
} from '../../../contract/src/pool-runtime.js';
import { LLMProviderPoolSpecSchema } from '../../../operator/src/api/index.js';

const roundTrip = (c: Parameters<typeof encodePoolRuntimeConfig>[0]) =>
  decodePoolRuntimeConfig(encodePoolRuntimeConfig(c));

describe('pool runtime config (CJ_POOL_CONFIG)', () => {
  it('resolves the pool spec; limits default to the tier ceiling; encode/decode round-trips', () => {
    const c = roundTrip(
      resolvePoolRuntimeConfig({
        provider: 'anthropic',
        model: 'claude-sonnet-5-5',
        tier: 'start',
        limits: { requestsPerMinute: 600 },
        retry: { maxAttempts: 4, initialBackoff: '250ms', maxBackoff: '1m' },
        batching: { mode: 'serial_bundle', bundleSize: 8, batchPollInterval: '30s' },
        promptCaching: { enabled: true, ttl: '1h' },
        pricing: { inputPerMTok: '2.00', outputPerMTok: 10, cacheWritePerMTok: '4' },
      }),
    );
    expect(c.limits).toEqual({
      requestsPerMinute: 600,
      inputTokensPerMinute: 2_000_000,
      outputTokensPerMinute: 400_000,
      maxConcurrency: 50,
    });
    expect(c).toMatchObject({
      mode: 'serial_bundle',
      bundleSize: 8,
      retry: { maxAttempts: 4, initialBackoffMs: 250, maxBackoffMs: 60_000 },
      batchPollIntervalMs: 30_000,
      concurrency: 16,
      promptCaching: { enabled: true, ttl: '1h' },
      pricing: { inputPerMTok: 2, outputPerMTok: 10, cacheWritePerMTok: 4, batchMultiplier: 0.5 },
    });
    expect(c.baseURL).toBeUndefined();
  });

  it('has one set of defaults: the CRD-defaulted spec and the bare runtime schema agree', () => {
    const spec = LLMProviderPoolSpecSchema.parse({
      provider: 'anthropic',
      model: 'm',
      apiKeySecretRef: { name: 's', key: 'k' },
    });
    const fromCrd = resolvePoolRuntimeConfig(spec);
    const bare = PoolRuntimeConfigSchema.parse({ provider: 'anthropic', model: 'm' });
    // The CRD's slow-start default is the limiters' default (which the bare schema leaves implicit).
    expect(fromCrd).toEqual({ ...bare, limiter: { rampUp: LIMITER_DEFAULTS.rampUp } });
    expect(LIMITER_DEFAULTS.rampUp).toEqual({ initialFraction: 0.1, durationMs: 60_000 });
    expect(bare).toMatchObject({
      mode: 'per_request',
      bundleSize: 1,
      batchPollIntervalMs: 30_000,
      retry: { maxAttempts: 5, initialBackoffMs: 500, maxBackoffMs: 60_000 },
      promptCaching: { enabled: true, ttl: '5m' },
      contextWindowTokens: POOL_DEFAULTS.contextWindowTokens,
    });
    expect(spec.batching.bundleSize).toBe(POOL_DEFAULTS.batching.bundleSize);
  });

  it("takes the pool's slow start (spec.slowStart) to the limiters; 0s turns it off", () => {
    const pool = (slowStart: { duration?: string; initialPercent?: number }) =>
      resolvePoolRuntimeConfig({ provider: 'fake', model: 'm', slowStart }).limiter.rampUp;
    expect(pool({ duration: '2m', initialPercent: 25 })).toEqual({
      initialFraction: 0.25,
      durationMs: 120_000,
    });
    expect(pool({ duration: '0s' })).toEqual({ initialFraction: 0.1, durationMs: 0 });
    expect(() =>
      LLMProviderPoolSpecSchema.parse({
        provider: 'fake',
        model: 'm',
        apiKeySecretRef: { name: 's', key: 'k' },
        slowStart: { initialPercent: 0 },
      }),
    ).toThrow(/initialPercent/);
  });

  it('applies the batch overrides to the limits and caps per-process concurrency at the pool', () => {
    const c = resolvePoolRuntimeConfig(
      { provider: 'fake', model: 'm', tier: 'start', limits: { maxConcurrency: 4 } },
      { limits: { requestsPerMinute: 10, outputTokensPerMinute: undefined } },
    );
    expect(c.limits).toMatchObject({
      requestsPerMinute: 10,
      outputTokensPerMinute: 400_000,
      maxConcurrency: 4,
    });
    expect(c.concurrency).toBe(4);
    expect(
      PoolRuntimeConfigSchema.parse({ model: 'm', concurrency: 100, limits: c.limits }).concurrency,
    ).toBe(4);
  });

  it('rejects invalid configs with a field path', () => {
    expect(() => decodePoolRuntimeConfig(undefined)).toThrow(PoolConfigError);
    expect(() => decodePoolRuntimeConfig('{')).toThrow(/not valid JSON/);
    expect(() =>
      decodePoolRuntimeConfig(JSON.stringify({ model: 'm', retry: { maxBackoffMs: 'x' } })),
    ).toThrow(/retry\.maxBackoffMs/);
    expect(() => resolvePoolRuntimeConfig({ provider: 'fake', model: 'm', tier: 'custom' })).toThrow(
      /tier custom/,
    );
    expect(() => decodePoolRuntimeConfig(JSON.stringify({ provider: 'fake' }))).toThrow(/model/);
  });

  it('decodes strictly: unknown fields, at any depth, are refused by name with the fix', () => {
    const operatorWrote = JSON.parse(
      encodePoolRuntimeConfig(resolvePoolRuntimeConfig({ provider: 'anthropic', model: 'm', tier: 'start' })),
    );
    // What the operator writes decodes as it is (every key is one the worker knows).
    expect(decodePoolRuntimeConfig(JSON.stringify(operatorWrote)).model).toBe('m');
    const skewed = {
      ...operatorWrote,
      retryBudget: 3,
      retry: { ...operatorWrote.retry, maxAttemps: 9 },
      limits: { ...operatorWrote.limits, tokensPerDay: 1 },
    };
    let message = '';
    try {
      decodePoolRuntimeConfig(JSON.stringify(skewed));
    } catch (e) {
      expect(e).toBeInstanceOf(PoolConfigError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/^CJ_POOL_CONFIG: /);
    for (const field of [
      'unknown field retryBudget',
      'unknown field retry.maxAttemps',
      'unknown field limits.tokensPerDay',
    ])
      expect(message).toContain(field);
    expect(message).toContain(POOL_CONFIG_FIX);
    expect(message).toContain('spec.workers.image');
    // An invalid value names the field too, with the same fix.
    expect(() =>
      decodePoolRuntimeConfig(
        JSON.stringify({ ...operatorWrote, promptCaching: { enabled: true, ttl: '2h' } }),
      ),
    ).toThrow(/promptCaching\.ttl: .*kubectl describe llmpool/);
    expect(() => decodePoolRuntimeConfig(JSON.stringify({ ...operatorWrote, bundleSize: 65 }))).toThrow(
      /^CJ_POOL_CONFIG: bundleSize: /,
    );
  });

  it('checks the worker environment', () => {
    const env = {
      DATABASE_URL: 'postgres://x/y',
      BATCH_UID: '3f1e8a52-7c1d-4b7e-9a40-0f6f5d1c2b3a',
      ROUND: '2',
      JOB_COMPLETION_INDEX: '1',
      CJ_POOL_KEY: 'ns/pool',
      CJ_POOL_CONFIG: JSON.stringify({ model: 'm' }),
      ANTHROPIC_API_KEY: 'sk-x',
      POD_NAME: 'pod-1',
    };
    const read = (e: Record<string, string>) => readCompareEnv(e, 'pid-1');
    expect(read(env)).toMatchObject({ round: 2, shard: 1, owner: 'pod-1', leaseSeconds: 60 });
    expect(() => read({ ...env, ROUND: '-1' })).toThrow(/ROUND/);
    expect(() => read({ ...env, BATCH_UID: 'nope' })).toThrow(/BATCH_UID/);
    expect(() => read({ ...env, ANTHROPIC_API_KEY: ' ' })).toThrow(/ANTHROPIC_API_KEY/);
    expect(() => read({ ...env, CJ_POOL_CONFIG: '{' })).toThrow(JobInputError);
    // A config error is the worker's bad input: JobInputError, which exits EXIT.badInput.
    expect(() => read({ ...env, CJ_POOL_CONFIG: JSON.stringify({ model: 'm', shards: 2 }) })).toThrow(
      new JobInputError(`CJ_POOL_CONFIG: unknown field shards. ${POOL_CONFIG_FIX}`),
    );
    let message = '';
    try {
      read({ ...env, ANTHROPIC_API_KEY: '' });
    } catch (e) {
      message = String(e);
    }
    expect(message).toMatch(/ANTHROPIC_API_KEY/);
    expect(message).not.toContain('sk-');
  });
});

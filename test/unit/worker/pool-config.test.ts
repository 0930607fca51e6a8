import { describe, expect, it } from 'vitest';
import { readWorkerEnv } from '../../../runtime/src/worker/compare-worker.js';
import { ConfigError, parseDurationMs, parsePoolConfig } from '../../../runtime/src/worker/pool-config.js';

describe('CJ_POOL_CONFIG', () => {
  it('converts Go durations', () => {
    expect(parseDurationMs('500ms')).toBe(500);
    expect(parseDurationMs('1h30m')).toBe(5_400_000);
    expect(parseDurationMs('1.5s')).toBe(1500);
    expect(() => parseDurationMs('soon')).toThrow(/invalid duration/);
  });

  it('maps the pool spec onto the runtime config; limits default to the tier ceiling', () => {
    const c = parsePoolConfig(
      JSON.stringify({
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
    expect(c.pool).toMatchObject({
      mode: 'serial_bundle',
      bundleSize: 8,
      retry: { maxAttempts: 4, initialBackoffMs: 250, maxBackoffMs: 60_000 },
      batchPollIntervalMs: 30_000,
      concurrency: 16,
      pricing: { inputPerMTok: 2, outputPerMTok: 10, cacheWrite1hPerMTok: 4 },
    });
    expect(c.baseURL).toBeUndefined();
  });

  it('rejects invalid configs with a field path', () => {
    expect(() => parsePoolConfig(undefined)).toThrow(ConfigError);
    expect(() => parsePoolConfig('{')).toThrow(/not valid JSON/);
    expect(() => parsePoolConfig(JSON.stringify({ model: 'm', retry: { maxBackoff: 'x' } }))).toThrow(
      /retry\.maxBackoff/,
    );
    expect(() => parsePoolConfig(JSON.stringify({ model: 'm', tier: 'custom' }))).toThrow(/tier custom/);
    expect(() => parsePoolConfig(JSON.stringify({ provider: 'fake' }))).toThrow(/model/);
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
    expect(readWorkerEnv(env)).toMatchObject({ round: 2, shard: 1, owner: 'pod-1', leaseSeconds: 60 });
    expect(() => readWorkerEnv({ ...env, ROUND: '-1' })).toThrow(/ROUND/);
    expect(() => readWorkerEnv({ ...env, BATCH_UID: 'nope' })).toThrow(/BATCH_UID/);
    expect(() => readWorkerEnv({ ...env, ANTHROPIC_API_KEY: ' ' })).toThrow(/ANTHROPIC_API_KEY/);
    try {
      readWorkerEnv({ ...env, ANTHROPIC_API_KEY: '' });
    } catch (e) {
      expect(String(e)).not.toContain('sk-');
    }
  });
});

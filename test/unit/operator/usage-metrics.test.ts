// The operator's usage metrics from database rows (a fake source): counters grow by each batch's
// change only, a deleted batch never makes them fall, grants count once, cost uses the pool's
// pricing and mode, per-batch gauges follow the batches.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { estimateCostUsd } from '../../../contract/src/cost.js';
import type { CJBatch, LLMProviderPool } from '../../../operator/src/api/index.js';
import { UsageMetrics } from '../../../operator/src/metrics/usage.js';
import type { BatchUsageRow, GrantedAttempt, PoolLimiterState } from '../../../runtime/src/store/usage.js';

const pool = (mode: 'per_request' | 'batch_api' = 'per_request'): LLMProviderPool =>
  ({
    apiVersion: 'cj.huleedu.io/v1alpha1',
    kind: 'LLMProviderPool',
    metadata: { namespace: 'class-9a', name: 'claude' },
    spec: {
      model: 'claude-sonnet-5-5',
      batching: { mode },
      promptCaching: { enabled: true, ttl: '5m' },
      pricing: { inputPerMTok: '3', outputPerMTok: '15' },
    },
    status: { conditions: [{ type: 'Ready', status: 'True' }] },
  }) as unknown as LLMProviderPool;

const batch = (name: string, phase: string): CJBatch =>
  ({
    metadata: { namespace: 'class-9a', name },
    spec: { providerPoolRef: { name: 'claude' }, suspend: false },
    status: { phase },
  }) as unknown as CJBatch;

const row = (over: Partial<BatchUsageRow>): BatchUsageRow => ({
  uid: 'u1',
  namespace: 'class-9a',
  name: 'essays',
  poolKey: 'class-9a/claude',
  finalized: false,
  budget: 300,
  succeeded: 0,
  failed: 0,
  pending: 0,
  retries: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  finishedLast5m: 0,
  lastProgressMs: 1_000_000,
  nowMs: 1_090_000,
  ...over,
});

function setup(mode: 'per_request' | 'batch_api' = 'per_request') {
  const registry = new Registry();
  const state = {
    rows: [] as BatchUsageRow[],
    limiters: [] as PoolLimiterState[],
    grants: [] as GrantedAttempt[],
    batches: [batch('essays', 'Comparing')],
  };
  const m = new UsageMetrics({
    registry,
    source: {
      batches: async () => state.rows,
      pools: async () => state.limiters,
      grants: async () => state.grants,
    },
    listPools: () => [pool(mode)],
    listBatches: () => state.batches,
  });
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const metric = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
    const hit = (metric?.values ?? []).filter((v) =>
      Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
    );
    return hit.length === 0 ? undefined : hit.reduce((a, v) => a + v.value, 0);
  };
  return { m, state, value, registry };
}

describe('UsageMetrics', () => {
  it('counts tokens, comparisons and cost by the growth of each batch, labelled by pool, model and mode', async () => {
    const { m, state, value } = setup();
    state.rows = [row({ succeeded: 10, failed: 1, retries: 2, inputTokens: 1000, outputTokens: 200 })];
    await m.refresh();
    state.rows = [row({ succeeded: 25, failed: 1, retries: 3, inputTokens: 2500, outputTokens: 500 })];
    await m.refresh();
    const l = {
      tenant_namespace: 'class-9a',
      pool: 'claude',
      model: 'claude-sonnet-5-5',
      mode: 'per_request',
    };
    expect(await value('cj_llm_comparisons_total', { ...l, status: 'succeeded' })).toBe(25);
    expect(await value('cj_llm_comparisons_total', { ...l, status: 'failed' })).toBe(1);
    expect(await value('cj_llm_retries_total', l)).toBe(3);
    expect(await value('cj_llm_tokens_total', { ...l, direction: 'input' })).toBe(2500);
    expect(await value('cj_llm_tokens_total', { ...l, direction: 'output' })).toBe(500);
    const usd = estimateCostUsd(
      { input: 2500, output: 500, cacheRead: 0, cacheWrite: 0 },
      { inputPerMTok: 3, outputPerMTok: 15, batchMultiplier: 0.5 },
      'per_request',
    );
    expect(await value('cj_llm_estimated_cost_usd_total', l)).toBeCloseTo(usd, 12);
    expect(await value('cj_batch_estimated_cost_usd', { batch: 'essays' })).toBeCloseTo(usd, 12);
  });

  it('never lowers a counter when a batch and its rows are deleted, and counts a new batch from zero', async () => {
    const { m, state, value } = setup();
    state.rows = [row({ succeeded: 40, inputTokens: 4000 })];
    await m.refresh();
    state.rows = [];
    await m.refresh();
    expect(await value('cj_llm_comparisons_total', { status: 'succeeded' })).toBe(40);
    expect(await value('cj_batch_comparisons', { batch: 'essays' })).toBeUndefined();
    state.rows = [row({ uid: 'u2', name: 'again', succeeded: 5, inputTokens: 500 })];
    await m.refresh();
    expect(await value('cj_llm_comparisons_total', { status: 'succeeded' })).toBe(45);
    expect(await value('cj_llm_tokens_total', { direction: 'input' })).toBe(4500);
  });

  it('applies the batch_api discount of the pool to the cost', async () => {
    const { m, state, value } = setup('batch_api');
    state.rows = [row({ succeeded: 1, inputTokens: 1_000_000, outputTokens: 0 })];
    await m.refresh();
    expect(await value('cj_llm_estimated_cost_usd_total', { mode: 'batch_api' })).toBeCloseTo(1.5, 12);
  });

  it('counts each granted attempt once across overlapping reads, and 429s from the limiter count', async () => {
    const { m, state, value } = setup();
    const g = (id: string, t: number): GrantedAttempt => ({
      id,
      poolKey: 'class-9a/claude',
      requests: 1,
      grantedMs: t,
    });
    state.grants = [g('a', 1), g('b', 2)];
    state.limiters = [{ poolKey: 'class-9a/claude', throttled: 3, blockedSeconds: 12.5 }];
    await m.refresh();
    state.grants = [g('b', 2), g('c', 3), { ...g('d', 4), poolKey: 'batch:u1' }];
    state.limiters = [{ poolKey: 'class-9a/claude', throttled: 5, blockedSeconds: 0 }];
    await m.refresh();
    expect(await value('cj_llm_requests_total', { pool: 'claude' })).toBe(3);
    expect(await value('cj_llm_rate_limited_total', { pool: 'claude' })).toBe(5);
    expect(await value('cj_pool_blocked_seconds', { pool: 'claude' })).toBe(0);
    // A recreated limiter row starts its count again: its new count is all new 429s.
    state.limiters = [{ poolKey: 'class-9a/claude', throttled: 1, blockedSeconds: 30 }];
    await m.refresh();
    expect(await value('cj_llm_rate_limited_total', { pool: 'claude' })).toBe(6);
    expect(await value('cj_pool_blocked_seconds', { pool: 'claude' })).toBe(30);
  });

  it('reports batches by phase, the idle time of unfinished ones and their rate', async () => {
    const { m, state, value } = setup();
    state.batches = [batch('essays', 'Comparing'), batch('old', 'Succeeded'), batch('done', 'Succeeded')];
    state.rows = [
      row({ succeeded: 30, pending: 20, finishedLast5m: 25 }),
      row({ uid: 'u3', name: 'done', finalized: true, succeeded: 50 }),
    ];
    await m.refresh();
    expect(await value('cj_batches', { phase: 'Comparing' })).toBe(1);
    expect(await value('cj_batches', { phase: 'Succeeded' })).toBe(2);
    expect(await value('cj_batch_seconds_since_progress', { batch: 'essays' })).toBe(90);
    expect(await value('cj_batch_seconds_since_progress', { batch: 'done' })).toBeUndefined();
    expect(await value('cj_batch_comparisons_per_minute', { batch: 'essays' })).toBe(5);
    expect(await value('cj_batch_comparisons', { batch: 'essays', status: 'pending' })).toBe(20);
    expect(await value('cj_batch_budget_comparisons', { batch: 'essays' })).toBe(300);
    // A long-finished batch (no row any more) keeps no per-batch series.
    expect(await value('cj_batch_info', { batch: 'old' })).toBeUndefined();
    expect(await value('cj_batch_info', { batch: 'done', phase: 'Succeeded' })).toBe(1);
    expect(await value('cj_pool_ready', { pool: 'claude' })).toBe(1);
  });

  it('the exposition text carries the worker-side names', async () => {
    const { m, state, registry } = setup();
    state.rows = [row({ succeeded: 2, inputTokens: 10 })];
    await m.refresh();
    const text = await registry.metrics();
    expect(text).toMatch(
      /^cj_llm_tokens_total\{tenant_namespace="class-9a",pool="claude",model="claude-sonnet-5-5",mode="per_request",direction="input"\} 10$/m,
    );
  });
});

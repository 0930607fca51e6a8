import { describe, expect, it } from 'vitest';
import { estimateCostUsd } from '../../../contract/src/cost.js';
import { type LLMProviderPool, LLMProviderPoolSpecSchema } from '../../../operator/src/api/index.js';
import { estimateUsd, mirrorProgress } from '../../../operator/src/controllers/cjbatch/status.js';
import type { Progress } from '../../../runtime/src/store/progress.js';

const progress: Progress = {
  planned: 10,
  submitted: 10,
  completed: 10,
  failed: 0,
  cancelled: 0,
  retried: 0,
  pending: 0,
  inputTokens: 1_000_000,
  outputTokens: 200_000,
  cacheReadTokens: 3_000_000,
  cacheWriteTokens: 400_000,
  currentRound: null,
};

function pool(spec: Record<string, unknown>): LLMProviderPool {
  return {
    apiVersion: 'cj.huleedu.io/v1alpha1',
    kind: 'LLMProviderPool',
    metadata: { name: 'p', namespace: 'ns' },
    spec: LLMProviderPoolSpecSchema.parse({
      provider: 'anthropic',
      model: 'claude-sonnet-5-5',
      apiKeySecretRef: { name: 's', key: 'k' },
      pricing: { inputPerMTok: '3.00', outputPerMTok: '15.00' },
      ...spec,
    }),
  };
}

describe('one cost formula for the worker metrics and status.cost.estimatedUSD', () => {
  it('prices batch_api at half of per_request for the same tokens', () => {
    const perRequest = Number(estimateUsd(progress, pool({ batching: { mode: 'per_request' } })));
    const batchApi = Number(estimateUsd(progress, pool({ batching: { mode: 'batch_api' } })));
    // 1M × 3 + 0.2M × 15 + 3M × 0.3 + 0.4M × 3.75 (5-minute cache writes) = 8.4 USD.
    expect(perRequest).toBeCloseTo(8.4, 6);
    expect(batchApi).toBeCloseTo(perRequest * 0.5, 6);
    const status = mirrorProgress(
      {},
      progress,
      { total: 10, source: 'spec' },
      undefined,
      pool({ batching: { mode: 'batch_api' } }),
    );
    expect(status.cost?.estimatedUSD).toBe((4.2).toFixed(6));
  });

  it('prices 1-hour cache writes at 2× input unless the pool sets a price', () => {
    const fiveMin = Number(estimateUsd(progress, pool({ promptCaching: { ttl: '5m' } })));
    const oneHour = Number(estimateUsd(progress, pool({ promptCaching: { ttl: '1h' } })));
    // The cache-write share goes from 0.4M × 3.75 to 0.4M × 6.
    expect(oneHour - fiveMin).toBeCloseTo(0.4 * (6 - 3.75), 6);
    const priced = Number(
      estimateUsd(
        progress,
        pool({
          promptCaching: { ttl: '1h' },
          pricing: { inputPerMTok: '3.00', outputPerMTok: '15.00', cacheWritePerMTok: '5' },
        }),
      ),
    );
    expect(priced - fiveMin).toBeCloseTo(0.4 * (5 - 3.75), 6);
  });

  it('is the worker formula (estimateCostUsd) and shows nothing without pricing', () => {
    const usage = { input: 1_000_000, output: 200_000, cacheRead: 3_000_000, cacheWrite: 400_000 };
    const pricing = { inputPerMTok: 3, outputPerMTok: 15, batchMultiplier: 0.5 };
    expect(estimateCostUsd(usage, pricing, 'batch_api')).toBeCloseTo(4.2, 6);
    expect(estimateUsd(progress, pool({ pricing: undefined }))).toBeUndefined();
    expect(estimateUsd(progress, undefined)).toBeUndefined();
  });
});

// Builds a CJBatch status from what the database and the cluster say (pure; unit-tested). The
// counters come from the database only, so they are cumulative across rounds and can never count
// an error as a completion or exceed what was planned.

import { estimateCostUsd } from '../../../../contract/src/cost.js';
import { resolvePricing } from '../../../../contract/src/pool-runtime.js';
import type { Progress } from '../../../../runtime/src/store/progress.js';
import type { RoundRow } from '../../../../runtime/src/store/rounds.js';
import type { BatchPace } from '../../../../runtime/src/store/share.js';
import type { CJBatch, CJBatchStatus, LLMProviderPool } from '../../api/index.js';
import type { KstatusState } from '../../kube/kstatus.js';

export const condition = (status: CJBatchStatus | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);

/**
 * USD from the token counts and the pool's pricing, as a fixed-point string: the worker's formula
 * (contract/src/cost.ts), so batch_api's discount and the 1-hour cache-write price apply here too.
 */
export function estimateUsd(p: Progress, pool: LLMProviderPool | undefined): string | undefined {
  const pricing = resolvePricing(pool?.spec.pricing);
  if (!pricing || !pool) return undefined;
  const usage = {
    input: p.inputTokens,
    output: p.outputTokens,
    cacheRead: p.cacheReadTokens,
    cacheWrite: p.cacheWriteTokens,
  };
  return estimateCostUsd(usage, pricing, pool.spec.batching.mode, pool.spec.promptCaching.ttl).toFixed(6);
}

export function mirrorProgress(
  status: CJBatchStatus,
  p: Progress,
  budget: { total: number; source: 'spec' | 'default' },
  latest: RoundRow | undefined,
  pool: LLMProviderPool | undefined,
): CJBatchStatus {
  const essays = latest?.summary.counts?.essays ?? 0;
  const usd = estimateUsd(p, pool);
  return {
    ...status,
    progress: `${p.completed}/${budget.total}`,
    comparisons: {
      planned: p.planned,
      submitted: p.submitted,
      completed: p.completed,
      failed: p.failed,
      retried: p.retried,
      pending: p.pending,
    },
    round: latest ? latest.round + (latest.decision === 'continue' ? 1 : 0) : 0,
    budget: { total: budget.total, source: budget.source, used: p.completed + p.pending },
    ...(latest
      ? {
          stability: stripUndefined({
            rankCorrelation: round4(latest.stability.rankSpearman),
            gradeChanges:
              latest.stability.gradeChangeShare === null
                ? undefined
                : Math.round(latest.stability.gradeChangeShare * essays),
            reliability: round4(latest.summary.quality?.reliability?.eap ?? null),
            meanGradeConfidence: round4(latest.summary.quality?.meanModalProbability ?? null),
          }),
        }
      : {}),
    cost: {
      inputTokens: p.inputTokens,
      outputTokens: p.outputTokens,
      cacheReadTokens: p.cacheReadTokens,
      cacheWriteTokens: p.cacheWriteTokens,
      ...(usd ? { estimatedUSD: usd } : {}),
    },
  };
}

/** Below this much history the last-minute rate says too little to project from. */
export const PACE_MIN_WINDOW_S = 10;

/**
 * The live pace in the status: comparisons per minute over the last minute, the batch's part of
 * its pool's grants and the part its priority entitles it to, and the ETA at that rate. Rounded
 * (rates to 0.1/min, shares to 0.01, the ETA to 10 s) so that a status write happens when the
 * pace changes, not on every reconcile.
 */
export function paceStatus(
  pace: BatchPace,
  status: CJBatchStatus,
  now = Date.now(),
): CJBatchStatus['throughput'] {
  const c = status.comparisons ?? {};
  const finished = (c.completed ?? 0) + (c.failed ?? 0);
  const budget = status.budget?.total;
  // The estimate when the batch started, never below what is already planned, never above the budget.
  const expected =
    status.estimate?.comparisons !== undefined
      ? Math.max(status.estimate.comparisons, finished + (c.pending ?? 0))
      : budget;
  const remaining =
    expected === undefined ? undefined : Math.max(0, Math.min(expected, budget ?? expected) - finished);
  const perMinute =
    pace.windowSeconds >= PACE_MIN_WINDOW_S ? (pace.finishedLastMinute / pace.windowSeconds) * 60 : undefined;
  const share = (x: number, of: number) => (of > 0 ? Math.round(Math.min(1, x / of) * 100) / 100 : undefined);
  const etaMs =
    remaining === 0
      ? now
      : remaining !== undefined && perMinute
        ? now + (remaining / perMinute) * 60_000
        : undefined;
  return stripUndefined({
    comparisonsPerMinute: perMinute === undefined ? undefined : Math.round(perMinute * 10) / 10,
    poolShare: share(pace.batchRequestsLastMinute, pace.poolRequestsLastMinute),
    fairShare:
      pace.weight !== undefined && pace.activeWeight !== undefined
        ? share(pace.weight, pace.activeWeight)
        : undefined,
    remaining,
    eta: etaMs === undefined ? undefined : new Date(Math.ceil(etaMs / 10_000) * 10_000).toISOString(),
  });
}

const round4 = (v: number | null) =>
  v === null || !Number.isFinite(v) ? undefined : Math.round(v * 1e4) / 1e4;

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export const isTerminal = (b: CJBatch) => b.status?.phase === 'Succeeded' || b.status?.phase === 'Failed';

/**
 * How generic tools (kstatus: Flux, kubectl wait) should read a batch: a failed batch or an invalid
 * spec is Stalled (a human must act); a batch on its way is Reconciling, including one waiting
 * for its pool (that resolves by itself); a succeeded or suspended batch is neither (Current).
 */
export function batchKstatus(status: CJBatchStatus): KstatusState {
  const invalid = condition(status, 'InvalidSpec');
  if (invalid?.status === 'True') return { stalled: { reason: 'InvalidSpec', message: invalid.message } };
  const done = condition(status, 'Succeeded');
  if (status.phase === 'Failed')
    return { stalled: { reason: done?.reason ?? 'Failed', message: done?.message ?? 'the batch failed' } };
  if (status.phase === 'Succeeded') return {};
  const progressing = condition(status, 'Progressing');
  if (progressing?.status === 'False' && progressing.reason === 'Suspended') return {};
  return {
    reconciling: {
      reason: status.phase ?? 'Pending',
      message: progressing?.message ?? `the batch is ${(status.phase ?? 'Pending').toLowerCase()}`,
    },
  };
}

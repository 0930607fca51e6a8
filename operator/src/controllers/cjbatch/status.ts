// Builds a CJBatch status from what the database and the cluster say (pure; unit-tested). The
// counters come from the database only, so they are cumulative across rounds and can never count
// an error as a completion or exceed what was planned.

import type { Progress } from '../../../../runtime/src/store/progress.js';
import type { BatchPhase, CJBatch, CJBatchStatus, LLMProviderPool } from '../../api/index.js';
import type { KstatusState } from '../../kube/kstatus.js';

export interface RoundInfo {
  round: number;
  decision: 'continue' | 'stop';
  reason: string;
  pairs: number;
  stability: { rankSpearman: number | null; gradeChangeShare: number | null };
  summary: {
    quality?: { reliability?: { eap: number | null }; meanModalProbability?: number | null };
    counts?: { essays: number };
  };
}

export const condition = (status: CJBatchStatus | undefined, type: string) =>
  status?.conditions?.find((c) => c.type === type);

/** USD from token counts and the pool's pricing (decimal strings), as a fixed-point string. */
export function estimateUsd(p: Progress, pool: LLMProviderPool | undefined): string | undefined {
  const pr = pool?.spec.pricing;
  if (!pr) return undefined;
  const n = (v: string | number | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
  const input = n(pr.inputPerMTok, 0);
  const usd =
    (p.inputTokens * input +
      p.outputTokens * n(pr.outputPerMTok, 0) +
      p.cacheReadTokens * n(pr.cacheReadPerMTok, input * 0.1) +
      p.cacheWriteTokens * n(pr.cacheWritePerMTok, input * 1.25)) /
    1e6;
  return usd.toFixed(6);
}

export function mirrorProgress(
  status: CJBatchStatus,
  p: Progress,
  budget: { total: number; source: 'spec' | 'default' },
  latest: RoundInfo | undefined,
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

const round4 = (v: number | null) =>
  v === null || !Number.isFinite(v) ? undefined : Math.round(v * 1e4) / 1e4;

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/** Phase is derived for humans; conditions carry the truth. */
export function withPhase(status: CJBatchStatus, phase: BatchPhase): CJBatchStatus {
  return { ...status, phase };
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

// The estimate of a batch (contract/src/estimate.ts) from a CJBatch spec and its pool: what
// `kubectl cj estimate` prints and what the operator keeps in status.estimate when the batch
// starts. One adapter, so the CLI and the status can never disagree on the inputs.
import { type Estimate, type EstimateInput, estimateBatch } from '../../../contract/src/estimate.js';
import { resolvePoolRuntimeConfig } from '../../../contract/src/pool-runtime.js';
import type { RoundsMode } from '../../../contract/src/rounds-mode.js';
import { type CJBatchSpec, type CJBatchStatus, defaultMaxComparisons } from './batch.js';
import type { LLMProviderPoolSpec } from './pool.js';

export interface BatchTexts {
  essays: readonly string[];
  anchors: readonly string[];
  assignment: { title: string; instructions: string; rubric: string };
}

export function estimateForBatch(
  spec: CJBatchSpec,
  texts: BatchTexts,
  pool: LLMProviderPoolSpec,
  opts: { assume?: EstimateInput['assume']; roundsMode?: RoundsMode } = {},
): Estimate {
  const items = texts.essays.length + texts.anchors.length;
  return estimateBatch({
    ...texts,
    budget: spec.budget?.maxComparisons ?? defaultMaxComparisons(items),
    parallelism: spec.workers?.parallelism ?? 2,
    minPerEssay: spec.stopping?.minComparisonsPerEssay ?? 4,
    pool: resolvePoolRuntimeConfig(pool, { limits: spec.overrides?.limits }),
    ...(opts.assume ? { assume: opts.assume } : {}),
    ...(opts.roundsMode ? { roundsMode: opts.roundsMode } : {}),
  });
}

/** "1h2m5s" style, as kubectl prints ages. */
export function humanSeconds(s: number): string {
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${sec}s`;
}

/** The estimate as status.estimate keeps it (the pool's own mode). */
export function statusEstimate(e: Estimate): NonNullable<CJBatchStatus['estimate']> {
  const own = e.modes[0]!;
  return {
    comparisons: e.comparisons.expected,
    mode: own.mode,
    inputTokens: own.tokens.input,
    outputTokens: own.tokens.output,
    cacheReadTokens: own.tokens.cacheRead,
    cacheWriteTokens: own.tokens.cacheWrite,
    ...(own.costUsd !== undefined ? { estimatedUSD: own.costUsd.toFixed(6) } : {}),
    wallTime: humanSeconds(e.wall.seconds),
  };
}

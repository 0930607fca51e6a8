// Turns a CJBatch spec (inline text or ConfigMap references) into what the database stores when
// the batch starts: essays, anchors, the assignment text and the frozen engine settings. ConfigMaps
// are read once here; later edits to them do not change a running batch.

import { type PoolRuntimeConfig, resolvePoolRuntimeConfig } from '../../../../contract/src/pool-runtime.js';
import { annotatedRoundsMode, type RoundsMode } from '../../../../contract/src/rounds-mode.js';
import type { BatchConfig } from '../../../../runtime/src/store/batch-config.js';
import type { BatchRegistration } from '../../../../runtime/src/store/batches.js';
import type { LimiterRowSettings } from '../../../../runtime/src/store/tenancy.js';
import type { CJBatch, LLMProviderPool } from '../../api/index.js';
import { parseEssayConfigMap, resolveBudget } from '../../validation/index.js';

export type ConfigMapGetter = (name: string) => Promise<{ data?: Record<string, string> } | undefined>;

/** A problem with the batch's inputs that the user must fix; the batch waits with InvalidSpec. */
export class InputError extends Error {}

async function text(
  src: { value?: string | undefined; configMapKeyRef?: { name: string; key: string } | undefined },
  field: string,
  getCm: ConfigMapGetter,
): Promise<string> {
  if (src.value !== undefined) return src.value;
  const ref = src.configMapKeyRef!;
  const cm = await getCm(ref.name);
  const v = cm?.data?.[ref.key];
  if (v === undefined)
    throw new InputError(
      `${field}: ConfigMap "${ref.name}" key "${ref.key}" not found; create it or fix the reference`,
    );
  return v;
}

const bp = (n: number) => n / 10_000;

/**
 * How the batch runs its rounds: its annotation, else the operator's default. A pool in batch_api
 * mode runs rounds (its provider batches take hours; planning ahead of them gains nothing).
 */
export function roundsModeOf(batch: CJBatch, fallback: RoundsMode, pool?: LLMProviderPool): RoundsMode {
  const v = annotatedRoundsMode(batch.metadata.annotations, (m) => {
    throw new InputError(m);
  });
  if (pool?.spec.batching?.mode === 'batch_api') return 'rounds';
  return v ?? fallback;
}

/**
 * spec.stopping (basis points) as plan() takes it. Benches call it on the CRD's defaults
 * (`engineStopping(StoppingSchema.parse({}))`) instead of restating them.
 */
export function engineStopping(s: CJBatch['spec']['stopping']) {
  return {
    lag: s.stableRounds,
    rankStability: bp(s.rankStability),
    maxGradeChanges: 1 - bp(s.gradeStability),
    reliability: bp(s.reliabilityTarget),
    gradeConfidence: bp(s.gradeConfidence),
    minPerEssay: s.minComparisonsPerEssay,
  };
}

export async function buildRegistration(
  batch: CJBatch,
  getCm: ConfigMapGetter,
  rounds: RoundsMode = 'rounds',
): Promise<BatchRegistration> {
  const spec = batch.spec;
  const essays: { id: string; text: string }[] = [...(spec.essays.inline ?? [])];
  for (const [i, ref] of (spec.essays.configMapRefs ?? []).entries()) {
    const cm = await getCm(ref.name);
    if (!cm)
      throw new InputError(
        `spec.essays.configMapRefs[${i}]: ConfigMap "${ref.name}" not found; create it first`,
      );
    const parsed = parseEssayConfigMap(ref.name, ref.format ?? 'perKey', cm);
    if (parsed.errors.length > 0)
      throw new InputError(`spec.essays.configMapRefs[${i}]: ${parsed.errors.join('; ')}`);
    essays.push(...parsed.essays.map((e) => ({ id: e.id, text: e.text })));
  }
  const anchors = [];
  for (const [i, a] of (spec.anchors ?? []).entries()) {
    anchors.push({
      id: a.id,
      grade: a.grade,
      text: await text({ value: a.text, configMapKeyRef: a.configMapKeyRef }, `spec.anchors[${i}]`, getCm),
    });
  }
  const ids = new Set<string>();
  for (const e of [...essays, ...anchors]) {
    if (ids.has(e.id))
      throw new InputError(`essay id "${e.id}" appears twice; essay and anchor ids must be unique`);
    ids.add(e.id);
  }
  if (essays.length + anchors.length < 2)
    throw new InputError('spec.essays: a batch needs at least two essays (anchors included) to compare');
  const budget = resolveBudget(spec, essays.length);
  const items = essays.length + anchors.length;
  const parallelism = spec.workers?.parallelism ?? 2;
  const config: BatchConfig = {
    grades: spec.gradeScale.grades,
    seed: spec.seed,
    // Rounds of about half the items keep the design adaptive while giving every worker enough pairs.
    roundSize: Math.max(parallelism * 4, Math.ceil(items / 2)),
    shards: parallelism,
    ...(rounds === 'pipelined' ? { rounds } : {}),
    ...(spec.budget?.maxComparisonsPerEssay ? { maxPerEssay: spec.budget.maxComparisonsPerEssay } : {}),
    stopping: engineStopping(spec.stopping),
    assignment: {
      title: await text(spec.assignment.title, 'spec.assignment.title', getCm),
      instructions: await text(spec.assignment.instructions, 'spec.assignment.instructions', getCm),
      rubric: await text(spec.assignment.rubric, 'spec.assignment.rubric', getCm),
    },
  };
  return {
    uid: batch.metadata.uid!,
    namespace: batch.metadata.namespace!,
    name: batch.metadata.name!,
    config,
    budgetTotal: budget.total,
    budgetSource: budget.source,
    essays,
    anchors,
  };
}

/**
 * The runtime config a comparison worker reads from CJ_POOL_CONFIG: the pool's spec without the
 * Secret reference, resolved by the Job contract. Limits stay the pool's: a batch's overrides live
 * in the batch's own limiter row (batchLimiterSettings), never in the pool's; a tighter
 * maxConcurrency override only lowers the worker's lanes.
 */
export function workerPoolConfig(pool: LLMProviderPool, batch: CJBatch): PoolRuntimeConfig {
  const base = resolvePoolRuntimeConfig(pool.spec);
  const own = batchLimiterSettings(pool, batch);
  return own ? { ...base, concurrency: Math.min(base.concurrency, own.maxConcurrency) } : base;
}

/** The pool's limiter row: the pool's own limits (tier ceilings where the spec leaves them out). */
export function poolLimiterSettings(pool: LLMProviderPool): LimiterRowSettings {
  const c = resolvePoolRuntimeConfig(pool.spec);
  return {
    ...c.limits,
    ...(c.limiter.safetyFactor !== undefined ? { safetyFactor: c.limiter.safetyFactor } : {}),
    ...(c.limiter.burstSeconds !== undefined ? { burstSeconds: c.limiter.burstSeconds } : {}),
    ...(c.limiter.rampUp ? { rampUp: c.limiter.rampUp } : {}),
  };
}

/**
 * The batch's own limiter row, when it has overrides: each limit is the smaller of the override
 * and the pool's, so an override admitted while the webhook was down still only tightens.
 */
export function batchLimiterSettings(pool: LLMProviderPool, batch: CJBatch): LimiterRowSettings | undefined {
  const o = batch.spec.overrides?.limits;
  if (!o || Object.values(o).every((v) => v === undefined)) return undefined;
  const p = poolLimiterSettings(pool);
  const min = (a: number | undefined, b: number) => (a === undefined ? b : Math.max(1, Math.min(a, b)));
  return {
    ...p,
    requestsPerMinute: min(o.requestsPerMinute, p.requestsPerMinute),
    inputTokensPerMinute: min(o.inputTokensPerMinute, p.inputTokensPerMinute),
    outputTokensPerMinute: min(o.outputTokensPerMinute, p.outputTokensPerMinute),
    maxConcurrency: min(o.maxConcurrency, p.maxConcurrency),
  };
}

/**
 * `serial_bundle` mode: k pairs (1..64) in one Messages call, sharing one copy of the static
 * prefix. Answers are matched by `pair_id` (local ids `P1..Pk`), never by position. Pairs whose
 * answer is missing, duplicated or invalid — or every pair, when the whole answer is unusable —
 * are asked again individually, once (that is their re-ask). A transport failure of the bundle
 * call (after the retry policy) fails every pair in it with the reason.
 *
 * Usage of the bundle call is split evenly over its pairs; re-asks add to the pair re-asked.
 */
import { chunkWithin } from '../../../../contract/src/chunk.js';
import { estimateTokensUpperBound } from '../../../../contract/src/tokens.js';
import { buildStaticPrefix, sha256Hex } from '../prompt.js';
import type { Assignment, PoolRuntimeConfig } from '../types.js';
import { mapPool } from '../util.js';
import { parseVerdictResponse } from '../verdict.js';
import {
  AbortedError,
  addTo,
  build,
  estimateFor,
  fail,
  type JobState,
  type ModeContext,
  noteCache,
  splitUsage,
  succeed,
  throwIfAborted,
} from './context.js';
import { askIndividually } from './per-request.js';

/** Tokens around each pair in a bundle (delimiters, pair id) beyond the two essays. */
const PAIR_OVERHEAD_TOKENS = 64;
/** Tokens for the fixed instructions, the bundle's answer framing and a safety margin. */
const BUNDLE_RESERVE_TOKENS = 2_048;

/**
 * Splits pairs into bundles of at most `bundleSize` whose prompt and answer fit the model's
 * context window (estimated from above: long essays make smaller bundles, never an overflowing
 * call). A pair too big even alone is a bundle of one; admission keeps such essays out.
 */
export function planBundles(
  states: JobState[],
  pool: Pick<PoolRuntimeConfig, 'bundleSize' | 'contextWindowTokens' | 'maxOutputTokensPerPair'>,
  assignment: Assignment,
): JobState[][] {
  const budget =
    pool.contextWindowTokens -
    BUNDLE_RESERVE_TOKENS -
    estimateTokensUpperBound(buildStaticPrefix(assignment));
  const cost = (st: JobState) =>
    estimateTokensUpperBound(st.job.essayA.text) +
    estimateTokensUpperBound(st.job.essayB.text) +
    PAIR_OVERHEAD_TOKENS +
    pool.maxOutputTokensPerPair;
  return chunkWithin(states, pool.bundleSize, cost, budget);
}

export async function askBundle(ctx: ModeContext, states: JobState[]): Promise<void> {
  throwIfAborted(ctx);
  if (states.length === 1) return askIndividually(ctx, states[0]!, true);
  if (ctx.isAuthFailed()) {
    for (const st of states) fail(ctx, st, 'auth_failed', 'pool credentials rejected earlier in this run');
    return;
  }
  const ids = states.map((s) => s.job.comparisonId).join('\u0000');
  const built = build(
    ctx,
    states.map((s) => s.job),
    `bundle-${sha256Hex(ids).slice(0, 16)}`,
  );
  for (const st of states) {
    st.promptSha256 = built.meta.promptSha256;
    st.correlationId = built.meta.correlationId;
  }
  const res = await ctx.client.send({
    params: built.params,
    meta: built.meta,
    estimate: estimateFor(ctx, built, states.length),
    signal: ctx.signal,
  });
  for (const st of states) st.attempts += res.attempts;
  if (!res.ok) {
    if (res.reason === 'aborted') throw new AbortedError();
    for (const st of states) fail(ctx, st, res.reason, res.detail);
    return;
  }
  noteCache(ctx, built, res.usage);
  splitUsage(res.usage, states.length).forEach((u, i) => {
    addTo(states[i]!, u);
  });
  const localIds = [...built.byLocalId.keys()];
  const parsed = parseVerdictResponse(res.message, localIds);
  const redo: JobState[] = [];
  localIds.forEach((id, i) => {
    const st = states[i]!;
    const v = parsed.verdicts.get(id);
    if (v) succeed(ctx, st, v);
    else redo.push(st);
  });
  if (redo.length > 0) {
    ctx.metrics?.retries.inc({ ...ctx.client.labels, reason: 'missing_answer' }, redo.length);
    ctx.logger?.info(
      { correlationId: built.meta.correlationId, missing: redo.length, problem: parsed.problem?.kind },
      're-asking bundle pairs individually',
    );
    for (const st of redo) st.reasked = true;
    await mapPool(redo, ctx.pool.concurrency, (st) => askIndividually(ctx, st, false));
  }
}

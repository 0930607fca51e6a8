// One scoring pass: load every judged comparison of a batch, call the engine's plan(), and write
// the scores, the round's decision and the next round's pairs in ONE transaction. A rerun of the
// same round (a restarted pod) finds the round row and changes nothing, so no pair is planned twice.
import { plan } from '../cj/plan.js';
import type { PlanInputJson, PlanResult } from '../cj/types.js';
import type { Sql } from '../store/index.js';
import {
  type PlannedAhead,
  planAhead,
  type RoundWrite,
  readScoringInput,
  type ScoringInput,
  scoredRound,
  writeRound,
} from '../store/rounds.js';
import { retryTransient, tolerateLostConnections } from '../store/transient.js';

export interface RoundSummary {
  round: number;
  decision: 'continue' | 'stop';
  reason: string;
  nextPairs: number;
  alreadyScored: boolean;
}

export class BadInput extends Error {}

/** The worker stores the judge's confidence as P(chosen is better) in [0.5, 1]: a soft win. */
export function toConfidence(c: number | null): number | undefined {
  if (c === null || Number.isNaN(c)) return undefined;
  return Math.min(1, Math.max(0.5, c));
}

/**
 * Scores `round`, riding out a database outage (Postgres restarted) for up to `outageMs`: the pass
 * is idempotent, so a retry after a commit whose reply was lost finds the round row.
 */
export async function scoreRound(
  sql: Sql,
  uid: string,
  round: number,
  outageMs = 120_000,
): Promise<RoundSummary> {
  // Anything but a lost connection stays as fatal as Node's default makes it.
  const untolerate = tolerateLostConnections((reason) => {
    throw reason;
  });
  try {
    return await retryTransient('score round', () => scoreRoundOnce(sql, uid, round), {
      deadlineMs: outageMs,
    });
  } finally {
    untolerate();
  }
}

async function scoreRoundOnce(sql: Sql, uid: string, round: number): Promise<RoundSummary> {
  // A round row exists only while its batch row does (rows cascade with the batch).
  const r = await scoredRound(sql, uid, round);
  if (r) return { round, decision: r.decision, reason: r.reason, nextPairs: r.pairs, alreadyScored: true };
  const input = await readScoringInput(sql, uid);
  if (!input) throw new BadInput(`batch ${uid} is not registered in the database`);
  const w = planRound(input, round);
  await writeRound(sql, uid, round, w);
  return {
    round,
    decision: w.decision,
    reason: w.reason,
    nextPairs: w.nextPairs.length,
    alreadyScored: false,
  };
}

/**
 * The engine's pass over a batch's scoring input: the round's decision, scores and next pairs as
 * the store writes them. Open pairs go in as `pending` (the budget counts them, and the next pairs
 * are chosen knowing they will be judged).
 */
export function planRound(input: ScoringInput, round: number): RoundWrite {
  const { config } = input;
  const planInput: PlanInputJson = {
    essays: input.essays.map((e) =>
      e.grade ? { id: e.essay_id, anchor: { grade: e.grade } } : { id: e.essay_id },
    ),
    grades: config.grades,
    comparisons: input.judged.map((c) => ({
      a: c.essay_a,
      b: c.essay_b,
      winner: c.winner === 'A' ? 'a' : 'b',
      confidence: toConfidence(c.confidence),
    })),
    pending: input.open.map((c) => ({ a: c.essay_a, b: c.essay_b })),
    history: input.history as PlanInputJson['history'],
    settings: {
      seed: `${config.seed}:${round}`,
      roundSize: config.roundSize,
      budget: input.budgetTotal,
      ...(config.maxPerEssay ? { maxPerEssay: config.maxPerEssay } : {}),
      stopping: config.stopping,
    },
  };
  const result: PlanResult = plan(planInput);
  const pairs = result.decision.action === 'continue' ? result.nextPairs : [];
  const grades = new Map(result.grades.map((g) => [g.id, g]));
  return {
    decision: result.decision.action,
    reason: result.decision.reason,
    shards: config.shards,
    stability: result.stability,
    summary: { decision: result.decision, quality: result.quality, counts: result.counts },
    snapshot: result.snapshot,
    scores: result.scores.map((s) => ({
      id: s.id,
      score: s.score,
      sd: s.sd,
      rank: s.rank,
      anchor: s.anchor,
      ...(grades.has(s.id) ? { grade: grades.get(s.id) } : {}),
    })),
    nextPairs: pairs,
  };
}

/**
 * Pipelined rounds: plans the next pairs when at most `low` of the batch's are open (one pass at a
 * time per batch: `planAhead` in the store). Undefined when there was nothing to do.
 */
export async function planAheadOnce(sql: Sql, uid: string, low: number): Promise<PlannedAhead | undefined> {
  return planAhead(sql, uid, low, planRound);
}

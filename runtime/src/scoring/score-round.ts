// One scoring pass: load every judged comparison of a batch, call the engine's plan(), and write
// the scores, the round's decision and the next round's pairs in ONE transaction. A rerun of the
// same round (a restarted pod) finds the round row and changes nothing, so no pair is planned twice.
import { plan } from '../cj/plan.js';
import type { PlanInputJson, PlanResult } from '../cj/types.js';
import { BatchConfigSchema } from '../store/batch-config.js';
import type { Sql } from '../store/db.js';
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
  const [batch] = await sql`SELECT config, budget_total FROM batches WHERE uid = ${uid}`;
  if (!batch) throw new BadInput(`batch ${uid} is not registered in the database`);
  const existing =
    await sql`SELECT decision, reason, pairs FROM rounds WHERE batch_uid = ${uid} AND round = ${round}`;
  if (existing.length > 0) {
    const r = existing[0]!;
    return { round, decision: r.decision, reason: r.reason, nextPairs: r.pairs, alreadyScored: true };
  }
  const config = BatchConfigSchema.parse(batch.config);
  const essays = await sql`SELECT essay_id, grade FROM essays WHERE batch_uid = ${uid} ORDER BY essay_id`;
  const judged = await sql`
    SELECT essay_a, essay_b, winner, confidence FROM comparisons
     WHERE batch_uid = ${uid} AND status = 'succeeded' ORDER BY id`;
  const open = await sql`
    SELECT essay_a, essay_b FROM comparisons WHERE batch_uid = ${uid} AND status IN ('pending', 'leased')`;
  const history = await sql`SELECT history FROM rounds WHERE batch_uid = ${uid} ORDER BY round`;

  const input: PlanInputJson = {
    essays: essays.map((e) =>
      e.grade ? { id: e.essay_id, anchor: { grade: e.grade } } : { id: e.essay_id },
    ),
    grades: config.grades,
    comparisons: judged.map((c) => ({
      a: c.essay_a,
      b: c.essay_b,
      winner: c.winner === 'A' ? 'a' : 'b',
      confidence: toConfidence(c.confidence),
    })),
    pending: open.map((c) => ({ a: c.essay_a, b: c.essay_b })),
    history: history.map((h) => h.history),
    settings: {
      seed: `${config.seed}:${round}`,
      roundSize: config.roundSize,
      budget: batch.budget_total,
      ...(config.maxPerEssay ? { maxPerEssay: config.maxPerEssay } : {}),
      stopping: config.stopping,
    },
  };
  const result: PlanResult = plan(input);
  const pairs = result.decision.action === 'continue' ? result.nextPairs : [];

  await sql.begin(async (tx) => {
    const inserted = await tx`
      INSERT INTO rounds (batch_uid, round, decision, reason, pairs, shards, stability, summary, history)
      VALUES (${uid}, ${round}, ${result.decision.action}, ${result.decision.reason}, ${pairs.length},
              ${config.shards}, ${tx.json(result.stability as never)},
              ${tx.json({ decision: result.decision, quality: result.quality, counts: result.counts } as never)},
              ${tx.json(result.snapshot as never)})
      ON CONFLICT DO NOTHING RETURNING round`;
    if (inserted.length === 0) return; // a concurrent run of the same round won
    const grades = new Map(result.grades.map((g) => [g.id, g]));
    const rows = result.scores.map((s) => ({
      batch_uid: uid,
      essay_id: s.id,
      round,
      theta: s.score,
      se: s.sd,
      rank: s.rank,
      is_anchor: s.anchor,
      grade: grades.has(s.id) ? (tx.json(grades.get(s.id) as never) as unknown) : null,
    }));
    for (let i = 0; i < rows.length; i += 500)
      await tx`
        INSERT INTO scores ${tx(rows.slice(i, i + 500) as never)}
        ON CONFLICT (batch_uid, essay_id) DO UPDATE SET round = EXCLUDED.round, theta = EXCLUDED.theta,
          se = EXCLUDED.se, rank = EXCLUDED.rank, grade = EXCLUDED.grade`;
    const next = pairs.map((p, i) => ({
      batch_uid: uid,
      round: round + 1,
      shard: i % config.shards,
      essay_a: p.a,
      essay_b: p.b,
    }));
    for (let i = 0; i < next.length; i += 500)
      await tx`INSERT INTO comparisons ${tx(next.slice(i, i + 500))}`;
  });
  return {
    round,
    decision: result.decision.action,
    reason: result.decision.reason,
    nextPairs: pairs.length,
    alreadyScored: false,
  };
}

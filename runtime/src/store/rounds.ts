// Rounds: what the scoring pass writes (the decision, the scores, the next round's pairs, in one
// transaction) and what it and the reconciler read back.
import type postgres from 'postgres';
import type { RoundSummary, StoredRoundSummary } from '../../../contract/src/round.js';
import { type BatchConfig, BatchConfigSchema } from './batch-config.js';
import { CANCELLED, type Querier } from './claims.js';
import type { Sql } from './db.js';

/** A JSON document as the driver takes it (the engine's results are plain JSON). */
const json = (tx: Sql | postgres.TransactionSql, v: unknown) => tx.json(v as postgres.JSONValue);

/** The latest round as the reconciler mirrors it into the batch status. */
export interface RoundRow {
  round: number;
  decision: 'continue' | 'stop';
  reason: string;
  pairs: number;
  stability: { rankSpearman: number | null; gradeChangeShare: number | null };
  summary: StoredRoundSummary;
}

export async function latestRound(sql: Querier, uid: string): Promise<RoundRow | undefined> {
  const [r] = await sql<RoundRow[]>`
    SELECT round, decision, reason, pairs, stability, summary FROM rounds
     WHERE batch_uid = ${uid} ORDER BY round DESC LIMIT 1`;
  return r;
}

/** The round's decision once it is scored (a rerun of the same round finds it). */
export async function scoredRound(
  sql: Sql,
  uid: string,
  round: number,
): Promise<Pick<RoundRow, 'decision' | 'reason' | 'pairs'> | undefined> {
  const [r] = await sql<Pick<RoundRow, 'decision' | 'reason' | 'pairs'>[]>`
    SELECT decision, reason, pairs FROM rounds WHERE batch_uid = ${uid} AND round = ${round}`;
  return r;
}

/** Everything the scoring pass reads: the frozen config, the anchors, every verdict, the history. */
export interface ScoringInput {
  config: BatchConfig;
  budgetTotal: number;
  essays: { essay_id: string; grade: string | null }[];
  judged: { essay_a: string; essay_b: string; winner: 'A' | 'B'; confidence: number | null }[];
  open: { essay_a: string; essay_b: string }[];
  /** The engine's snapshot of each earlier round, in order. */
  history: unknown[];
}

/** The scoring input of a batch, or undefined when the batch is not registered. */
export async function readScoringInput(sql: Querier, uid: string): Promise<ScoringInput | undefined> {
  const [batch] = await sql<{ config: unknown; budget_total: number }[]>`
    SELECT config, budget_total FROM batches WHERE uid = ${uid}`;
  if (!batch) return undefined;
  const config = BatchConfigSchema.parse(batch.config);
  const essays = await sql<ScoringInput['essays']>`
    SELECT essay_id, grade FROM essays WHERE batch_uid = ${uid} ORDER BY essay_id`;
  // Verdicts and open pairs in ONE statement (one snapshot): read apart, a verdict committed between
  // the two reads (a pipelined worker) is in neither list, and plan() sees one pair less spent than
  // there is and can plan past budget_total.
  const rows = await sql<(ScoringInput['judged'][number] & { status: 'succeeded' | 'pending' | 'leased' })[]>`
    SELECT essay_a, essay_b, winner, confidence, status FROM comparisons
     WHERE batch_uid = ${uid} AND status IN ('succeeded', 'pending', 'leased') ORDER BY id`;
  const judged: ScoringInput['judged'] = [];
  const open: ScoringInput['open'] = [];
  for (const r of rows)
    if (r.status === 'succeeded')
      judged.push({ essay_a: r.essay_a, essay_b: r.essay_b, winner: r.winner, confidence: r.confidence });
    else open.push({ essay_a: r.essay_a, essay_b: r.essay_b });
  const history = await sql<{ history: unknown }[]>`
    SELECT history FROM rounds WHERE batch_uid = ${uid} ORDER BY round`;
  return {
    config,
    budgetTotal: batch.budget_total,
    essays: [...essays],
    judged,
    open,
    history: history.map((h) => h.history),
  };
}

/** What one scoring pass writes. */
export interface RoundWrite {
  decision: 'continue' | 'stop';
  reason: string;
  shards: number;
  stability: unknown;
  summary: RoundSummary;
  /** The engine's snapshot, read back as `history` by the next pass. */
  snapshot: unknown;
  scores: { id: string; score: number; sd: number; rank: number; anchor: boolean; grade?: unknown }[];
  /** The next round's pairs, dealt to shards in order. */
  nextPairs: { a: string; b: string }[];
}

/**
 * Writes the round, its scores and the next round's pairs in one transaction. Returns false when
 * a concurrent run of the same round won (then nothing is written twice).
 */
export async function writeRound(sql: Sql, uid: string, round: number, w: RoundWrite): Promise<boolean> {
  return sql.begin((tx) => insertRound(tx, uid, round, w));
}

async function insertRound(tx: postgres.TransactionSql, uid: string, round: number, w: RoundWrite) {
  const inserted = await tx`
    INSERT INTO rounds (batch_uid, round, decision, reason, pairs, shards, stability, summary, history)
    VALUES (${uid}, ${round}, ${w.decision}, ${w.reason}, ${w.nextPairs.length},
            ${w.shards}, ${json(tx, w.stability)}, ${json(tx, w.summary)}, ${json(tx, w.snapshot)})
    ON CONFLICT DO NOTHING RETURNING round`;
  if (inserted.length === 0) return false;
  const rows = w.scores.map((s) => ({
    batch_uid: uid,
    essay_id: s.id,
    round,
    theta: s.score,
    se: s.sd,
    rank: s.rank,
    is_anchor: s.anchor,
    grade: s.grade === undefined ? null : json(tx, s.grade),
  }));
  for (let i = 0; i < rows.length; i += 500)
    await tx`
      INSERT INTO scores ${tx(rows.slice(i, i + 500))}
      ON CONFLICT (batch_uid, essay_id) DO UPDATE SET round = EXCLUDED.round, theta = EXCLUDED.theta,
        se = EXCLUDED.se, rank = EXCLUDED.rank, grade = EXCLUDED.grade`;
  const next = w.nextPairs.map((p, i) => ({
    batch_uid: uid,
    round: round + 1,
    shard: i % w.shards,
    essay_a: p.a,
    essay_b: p.b,
  }));
  for (let i = 0; i < next.length; i += 500) await tx`INSERT INTO comparisons ${tx(next.slice(i, i + 500))}`;
  return true;
}

/** What a long-lived worker needs to know about its batch (pipelined rounds). */
export interface PipelineState {
  /** The latest round row; undefined when the batch's rows are gone (deleted, or the role retired). */
  latest: { round: number; decision: 'continue' | 'stop' } | undefined;
  /** Pairs of the batch not yet final, in every round. */
  open: number;
  /** Of those, the ones a worker can claim now: pending, or leased with the lease expired. */
  claimable: number;
  /**
   * Pairs open right after the latest pass (its pending plus the pairs it planned). Open pairs only
   * become final until the next pass adds some, so `open` below this means new outcomes arrived.
   */
  openAfterLast: number;
  /** The batch's outcome is committed (Succeeded or Failed): nothing more is judged or planned. */
  finalized: boolean;
}

export async function pipelineState(sql: Querier, uid: string): Promise<PipelineState> {
  const [r] = await sql<
    {
      round: number | null;
      decision: 'continue' | 'stop' | null;
      after: number | null;
      open: number;
      claimable: number;
      finalized: boolean;
    }[]
  >`
    WITH l AS (SELECT round, decision, pairs + coalesce((summary->'counts'->>'pending')::int, 0) AS after
                 FROM rounds WHERE batch_uid = ${uid} ORDER BY round DESC LIMIT 1)
    SELECT (SELECT round FROM l) AS round, (SELECT decision FROM l) AS decision, (SELECT after FROM l) AS after,
           o.open, o.claimable,
           coalesce((SELECT finalized_at IS NOT NULL FROM batches WHERE uid = ${uid}), false) AS finalized
      FROM (SELECT count(*)::int AS open,
                   (count(*) FILTER (WHERE status = 'pending' OR lease_expires < now()))::int AS claimable
              FROM comparisons WHERE batch_uid = ${uid} AND status IN ('pending', 'leased')) o`;
  return {
    latest: r!.round === null ? undefined : { round: r!.round, decision: r!.decision! },
    open: r!.open,
    claimable: r!.claimable,
    openAfterLast: r!.after ?? 0,
    finalized: r!.finalized,
  };
}

/** Whether a pipelined pass is due: no stop or outcome yet, at most `low` pairs open, and new outcomes since the last pass. */
export const passDue = (st: PipelineState, low: number): boolean =>
  st.latest !== undefined &&
  st.latest.decision !== 'stop' &&
  !st.finalized &&
  st.open <= low &&
  st.open < st.openAfterLast;

/** What a pass of pipelined planning did (undefined: nothing, another worker holds it or no need). */
export interface PlannedAhead {
  round: number;
  decision: 'continue' | 'stop';
  reason: string;
  pairs: number;
  /** Open pairs cancelled because this pass decided to stop. */
  cancelled: number;
}

/**
 * Pipelined rounds: when at most `low` pairs of the batch are open and some became final since the
 * last pass (`passDue`), score round latest+1 with the open ones as pending, and write its row, its scores and its pairs, all in ONE transaction, as
 * `writeRound` does. A stop decision cancels the pairs still open in that same transaction, so
 * what the results say is exactly what the stop saw; the budget holds because plan() counts the
 * pending pairs against it.
 *
 * One pass at a time per batch: the transaction first locks the batch's oldest comparison row
 * (NOWAIT; a busy lock means another worker is planning, or writing that row's outcome: try again
 * later). The lock lives in the batch's own rows, under its role and row-level security: no
 * database-wide advisory key that another tenant's session could hold.
 */
export async function planAhead(
  sql: Sql,
  uid: string,
  low: number,
  planRound: (input: ScoringInput, round: number) => RoundWrite,
): Promise<PlannedAhead | undefined> {
  try {
    return await sql.begin(async (tx) => {
      await tx`SELECT id FROM comparisons WHERE batch_uid = ${uid} ORDER BY id LIMIT 1 FOR NO KEY UPDATE NOWAIT`;
      const st = await pipelineState(tx, uid);
      // Nothing new since the last pass (waiting for the last pairs at the budget, say): a pass
      // would learn nothing and only add a round row.
      if (!st.latest || !passDue(st, low)) return undefined;
      const input = await readScoringInput(tx, uid);
      if (!input) return undefined;
      const round = st.latest.round + 1;
      const w = planRound(input, round);
      if (!(await insertRound(tx, uid, round, w))) return undefined;
      const cancelled = w.decision === 'stop' ? await cancelOpen(tx, uid) : 0;
      return { round, decision: w.decision, reason: w.reason, pairs: w.nextPairs.length, cancelled };
    });
  } catch (err) {
    // 55P03 lock_not_available: someone else holds the lock right now.
    if ((err as { code?: unknown }).code === '55P03') return undefined;
    throw err;
  }
}

/**
 * Cancels every open pair of the batch (pipelined rounds, at the stop): final, failed with the
 * reason `CANCELLED`, never judged. A pair a worker is judging keeps its owner, so that worker
 * still records the tokens it spent (writeOutcome). Returns how many.
 */
export async function cancelOpen(sql: Querier, uid: string): Promise<number> {
  const rows = await sql`
    UPDATE comparisons SET status = 'failed', failure_reason = ${CANCELLED}, lease_expires = NULL,
           completed_at = now()
     WHERE batch_uid = ${uid} AND status IN ('pending', 'leased')
    RETURNING id`;
  return rows.length;
}

/** Comparisons of the round not yet final (pending or leased). */
export async function openComparisons(sql: Sql, uid: string, round: number): Promise<number> {
  const [r] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM comparisons
     WHERE batch_uid = ${uid} AND round = ${round} AND status IN ('pending', 'leased')`;
  return r!.n;
}

/** A round past its timeout: its open comparisons fail with `reason` (never counted as completed). */
export async function failOpenComparisons(
  sql: Sql,
  uid: string,
  round: number,
  reason: string,
): Promise<void> {
  await sql`
    UPDATE comparisons SET status = 'failed', failure_reason = ${reason}, lease_owner = NULL, completed_at = now()
     WHERE batch_uid = ${uid} AND round = ${round} AND status IN ('pending', 'leased')`;
}

// Pipelined rounds against a real Postgres, under the batch's own role (what a worker pod has):
// planning ahead only at the low-water mark, one pass at a time, the open pairs counted as pending,
// and a stop that cancels what is open in its own transaction (tokens of a pair being judged kept);
// a committed outcome (a Failed batch has no stop round) cancels what is open the same way.
// The store's half of bench/cj/pipeline.ts's call pattern; the worker loop is test/integration/pipeline.test.ts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { planAheadOnce, planRound, scoreRound } from '../../../runtime/src/scoring/score-round.js';
import { registerBatch } from '../../../runtime/src/store/batches.js';
import type { Querier } from '../../../runtime/src/store/claims.js';
import { CANCELLED, claimChunk, writeOutcome } from '../../../runtime/src/store/claims.js';
import { commitOutcomeEvent } from '../../../runtime/src/store/outcome.js';
import { type Progress, readProgress } from '../../../runtime/src/store/progress.js';
import { pipelineState, planAhead, readScoringInput } from '../../../runtime/src/store/rounds.js';
import { createBatchRole, workerDatabaseUrl } from '../../../runtime/src/store/tenancy.js';
import { useTestDb } from '../worker/pg.js';

const db = useTestDb();

const UID = '00000000-0000-4000-8000-0000000000c1';
const fx = JSON.parse(readFileSync('test/fixtures/essays/essays.json', 'utf8'));

/** Judges the `n` oldest open pairs of the batch as the operator's connection (A wins). */
async function judge(n: number) {
  await db.sql`
    UPDATE comparisons SET status = 'succeeded', winner = 'A', confidence = 0.75, completed_at = now()
     WHERE id IN (SELECT id FROM comparisons WHERE batch_uid = ${UID} AND status = 'pending'
                   ORDER BY id LIMIT ${n})`;
}
/** A worker's verdict on `comparisonId` that arrives after its pair was cancelled. */
const lateVerdict = (comparisonId: string, input: number, output: number) => ({
  status: 'succeeded' as const,
  comparisonId,
  pairId: 'x',
  winner: 'A' as const,
  confidence: 'high' as const,
  justification: 'late',
  injectionFlags: [],
  usage: { input, output, cacheRead: 0, cacheWrite: 0 },
  attempts: 1,
  latencyMs: 5,
});

const open = async () =>
  (
    await db.sql`SELECT count(*)::int AS n FROM comparisons
                  WHERE batch_uid = ${UID} AND status IN ('pending', 'leased')`
  )[0]!.n as number;

describe('pipelined rounds in the store', () => {
  it('plans at the low-water mark, once, with the open pairs pending; a stop cancels the rest', async () => {
    await registerBatch(db.sql, {
      uid: UID,
      namespace: 'ns',
      name: 'pipe',
      config: {
        grades: fx.gradeScale.grades,
        seed: 1,
        roundSize: 10,
        shards: 2,
        rounds: 'pipelined',
        // Lenient targets: the batch stops as soon as a lagged check exists, with pairs still open.
        stopping: {
          lag: 1,
          rankStability: 0,
          maxGradeChanges: 1,
          reliability: 0,
          gradeConfidence: 0,
          minPerEssay: 0,
        },
        assignment: fx.assignment,
      },
      budgetTotal: 30,
      budgetSource: 'spec',
      essays: fx.essays.slice(0, 8),
      anchors: fx.anchors.slice(0, 4),
    });
    const cred = await createBatchRole(db.sql, { uid: UID, poolKey: 'ns/pool', connectionLimit: 5 });
    const asWorker = () => db.connectAs(workerDatabaseUrl(db.url, cred), 2);
    const w1 = asWorker();
    const w2 = asWorker();

    const first = (await scoreRound(db.sql, UID, 0)).nextPairs;
    expect(first).toBeGreaterThan(3);
    // A worker holds one pair throughout (it is judging it when the stop commits).
    const [leased] = await claimChunk(
      w2,
      { batchUid: UID, round: 0, shard: 0, allRounds: true },
      'pod-x',
      60,
      1,
    );
    expect(leased).toBeDefined();
    // What the planner reads (as the batch role): all open, all but the leased one claimable.
    expect(await pipelineState(w2, UID)).toMatchObject({ open: first, claimable: first - 1 });
    // More open than the low-water mark (3): nothing to plan yet.
    expect(await planAheadOnce(w1, UID, 3)).toBeUndefined();
    await judge(first - 3);
    // Two workers at once: one pass plans round 1 with the 3 open pairs pending; the other does nothing.
    const passes = await Promise.all([planAheadOnce(w1, UID, 3), planAheadOnce(w2, UID, 3)]);
    const done = passes.filter((p) => p !== undefined);
    expect(done).toHaveLength(1);
    expect(done[0]!.round).toBe(1);
    const [r1] = await db.sql`SELECT summary FROM rounds WHERE batch_uid = ${UID} AND round = 1`;
    expect(r1!.summary.counts).toMatchObject({ comparisons: first - 3, pending: 3 });
    // No new outcome since that pass: none is due, however few are open.
    expect(await planAheadOnce(w1, UID, 1000)).toBeUndefined();

    // The engine decides to stop with 3 pairs open (one of them being judged): the pass cancels
    // them in its own transaction. (The decision is forced here; the engine's own stops are its
    // unit tests' business.)
    await judge((await open()) - 3);
    const stop = await planAhead(w1, UID, 3, (input, round) => ({
      ...planRound(input, round),
      decision: 'stop',
      reason: 'converged',
      nextPairs: [],
    }));
    expect(stop).toMatchObject({ round: 2, decision: 'stop', pairs: 0, cancelled: 3 });
    const cancelled = 3;
    expect(await open()).toBe(0);
    // Nothing is planned after a stop.
    expect(await planAheadOnce(w1, UID, 50)).toBeUndefined();

    // The late verdict is refused, its tokens are kept on the cancelled row (once).
    const late = lateVerdict(leased!.id, 700, 40);
    expect(await writeOutcome(w2, late, 'pod-x')).toBe(false);
    expect(await writeOutcome(w2, late, 'pod-x', true)).toBe(false);
    const [row] = await db.sql`SELECT status, failure_reason, winner, input_tokens::int AS t FROM comparisons
                                WHERE id = ${leased!.id}::bigint`;
    expect(row).toEqual({ status: 'failed', failure_reason: CANCELLED, winner: null, t: 700 });

    const p = await readProgress(db.sql, UID);
    const [all] = await db.sql`SELECT count(*)::int AS n FROM comparisons WHERE batch_uid = ${UID}`;
    expect(p).toMatchObject({ failed: 0, cancelled, pending: 0, planned: p.completed });
    expect(p.completed + p.cancelled).toBe(all!.n);
    expect(p.completed + p.cancelled).toBeLessThanOrEqual(30);
    // The last comparison to finish is the last verdict: a cancellation judges nothing.
    const [last] = await db.sql`SELECT max(completed_at) AS t FROM comparisons
                                 WHERE batch_uid = ${UID} AND status = 'succeeded'`;
    expect(p.lastFinishedAt).toEqual(last!.t);
  }, 60_000);

  it('reads verdicts and open pairs in one snapshot: a verdict committed meanwhile is never lost to the budget', async () => {
    const uid = '00000000-0000-4000-8000-0000000000c2';
    const budget = 15;
    await registerBatch(db.sql, {
      uid,
      namespace: 'ns',
      name: 'snap',
      config: {
        grades: fx.gradeScale.grades,
        seed: 1,
        roundSize: 10,
        shards: 1,
        // Targets out of reach: only the budget limits what is planned.
        stopping: {
          lag: 1,
          rankStability: 1,
          maxGradeChanges: 0,
          reliability: 1,
          gradeConfidence: 1,
          minPerEssay: 1000,
        },
        assignment: fx.assignment,
      },
      budgetTotal: budget,
      budgetSource: 'spec',
      essays: fx.essays.slice(0, 8),
      anchors: fx.anchors.slice(0, 4),
    });
    await scoreRound(db.sql, uid, 0);
    const judgeOne = () => db.sql`
      UPDATE comparisons SET status = 'succeeded', winner = 'A', confidence = 0.75, completed_at = now()
       WHERE id = (SELECT min(id) FROM comparisons WHERE batch_uid = ${uid} AND status = 'pending')`;
    await judgeOne();
    const spent = async () =>
      (
        await db.sql`SELECT count(*)::int AS n FROM comparisons
                      WHERE batch_uid = ${uid} AND status IN ('succeeded', 'pending', 'leased')`
      )[0]!.n as number;
    const before = await spent();
    // A pipelined worker commits a verdict after every statement the read makes: each gap between
    // two statements is a chance for a pair to move from pending to succeeded.
    const racing = (async (strings: TemplateStringsArray, ...args: unknown[]) => {
      const rows = await db.sql(strings, ...(args as never[]));
      await judgeOne();
      return rows;
    }) as unknown as Querier;
    const input = (await readScoringInput(racing, uid))!;
    expect(await spent()).toBe(before);
    expect(input.judged.length + input.open.length).toBe(before);
    expect(input.judged.every((j) => j.winner === 'A')).toBe(true);
    // What plan() sees spent plus what it plans never goes past the budget.
    const w = planRound(input, 1);
    expect(before + w.nextPairs.length).toBeLessThanOrEqual(budget);
  }, 60_000);
  it('a Failed outcome cancels the open pairs in its transaction, after a planning pass in flight', async () => {
    const uid = '00000000-0000-4000-8000-0000000000c3';
    await registerBatch(db.sql, {
      uid,
      namespace: 'ns',
      name: 'failed',
      config: {
        grades: fx.gradeScale.grades,
        seed: 1,
        roundSize: 10,
        shards: 2,
        rounds: 'pipelined',
        stopping: {
          lag: 1,
          rankStability: 1,
          maxGradeChanges: 0,
          reliability: 1,
          gradeConfidence: 1,
          minPerEssay: 1000,
        },
        assignment: fx.assignment,
      },
      budgetTotal: 40,
      budgetSource: 'spec',
      essays: fx.essays.slice(0, 8),
      anchors: fx.anchors.slice(0, 4),
    });
    const cred = await createBatchRole(db.sql, { uid, poolKey: 'ns/pool', connectionLimit: 5 });
    const w = db.connectAs(workerDatabaseUrl(db.url, cred), 3);
    const first = (await scoreRound(db.sql, uid, 0)).nextPairs;
    // A worker is judging one pair; two are judged; the rest are pending.
    const [leased] = await claimChunk(
      w,
      { batchUid: uid, round: 0, shard: 0, allRounds: true },
      'pod-y',
      60,
      1,
    );
    await db.sql`
      UPDATE comparisons SET status = 'succeeded', winner = 'A', confidence = 0.75, completed_at = now()
       WHERE id IN (SELECT id FROM comparisons WHERE batch_uid = ${uid} AND status = 'pending' ORDER BY id LIMIT 2)`;
    // A planning pass holds the batch's lock (planAhead's row) and writes two more pairs while the
    // operator commits the Failed outcome: the outcome waits for it and cancels those too.
    let seen: Progress | undefined;
    let committed = false;
    const outcome = w.begin(async (tx) => {
      await tx`SELECT id FROM comparisons WHERE batch_uid = ${uid} ORDER BY id LIMIT 1 FOR NO KEY UPDATE NOWAIT`;
      const commit = commitOutcomeEvent(db.sql, {
        uid,
        outcome: 'failed',
        reason: 'LowSuccessRate',
        topic: 't',
        eventType: 'cj.batch.failed.v1',
        resultTypes: ['cj.batch.failed.v1', 'cj.batch.completed.v1'],
        event: (eventId, p) => {
          seen = p;
          return { id: eventId };
        },
      }).then((id) => {
        committed = true;
        return id;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(committed, 'the outcome waits for the pass').toBe(false);
      await tx`
        INSERT INTO comparisons (batch_uid, round, shard, essay_a, essay_b)
        SELECT batch_uid, 1, 0, essay_b, essay_a FROM comparisons
         WHERE batch_uid = ${uid} AND round = 1 ORDER BY id LIMIT 2`;
      // Not awaited here: the pass's COMMIT is what lets the outcome go on.
      return { commit };
    });
    await (await outcome).commit;
    const rows = await db.sql`SELECT status, failure_reason FROM comparisons WHERE batch_uid = ${uid}`;
    expect(rows.filter((r) => r.status === 'pending' || r.status === 'leased')).toEqual([]);
    const p = await readProgress(db.sql, uid);
    expect(p).toMatchObject({ completed: 2, failed: 0, pending: 0, cancelled: first, planned: 2 });
    // The event was built from the counters after the cancellation, in the same transaction.
    expect(seen).toMatchObject({ completed: 2, pending: 0, cancelled: first, planned: 2 });
    // The worker's verdict on the pair it was judging comes too late: refused, its tokens kept once.
    const late = lateVerdict(leased!.id, 500, 30);
    expect(await writeOutcome(w, late, 'pod-y')).toBe(false);
    const [row] = await db.sql`SELECT status, failure_reason, winner, input_tokens::int AS t FROM comparisons
                                WHERE id = ${leased!.id}::bigint`;
    expect(row).toEqual({ status: 'failed', failure_reason: CANCELLED, winner: null, t: 500 });
    expect(await readProgress(db.sql, uid)).toMatchObject({ completed: 2, cancelled: first, pending: 0 });
    // What the planner reads now: the outcome, nothing open: no pass, the workers exit.
    expect(await pipelineState(w, uid)).toMatchObject({ open: 0, finalized: true });
    expect(await planAheadOnce(w, uid, 1000)).toBeUndefined();
  }, 60_000);
});

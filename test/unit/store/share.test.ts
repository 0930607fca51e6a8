// Fair share of a pool between batches (migration 7) against a real Postgres: batch roles reserving
// through PostgresRateLimiter, as worker pods do. Weighted shares while both want the pool, unused
// share flowing to the other, a late batch getting its share at once, and what a batch role may
// not touch.
import { describe, expect, it } from 'vitest';
import { batchPace, upsertPoolShare } from '../../../runtime/src/store/share.js';
import {
  createBatchRole,
  retireBatchRole,
  upsertLimiterRow,
  workerDatabaseUrl,
} from '../../../runtime/src/store/tenancy.js';
import { PostgresRateLimiter } from '../../../runtime/src/worker/pool-limiter.js';
import { useTestDb } from '../worker/pg.js';

const db = useTestDb();

const RPM = 1200;
const limits = {
  requestsPerMinute: RPM,
  inputTokensPerMinute: 1e9,
  outputTokensPerMinute: 1e9,
  maxConcurrency: 1000,
};
const noRamp = { rampUp: { initialFraction: 1, durationMs: 0 }, safetyFactor: 1, burstSeconds: 1 };
let n = 0;

/** A batch on `pool` with `weight`: its own role, its share row, and a limiter as its worker has. */
async function batch(pool: string, weight: number) {
  const uid = `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
  const creds = await createBatchRole(db.sql, { uid, poolKey: pool, connectionLimit: 5 });
  await upsertPoolShare(db.sql, { uid, poolKey: pool, weight });
  const sql = db.connectAs(workerDatabaseUrl(db.url, creds), 4);
  const limiter = new PostgresRateLimiter({ sql, poolKey: pool, owner: `w-${n}`, ...limits, managed: false });
  let stop = false;
  // 4 lanes that always want the pool (a judge that answers at once)
  const lanes = Array.from({ length: 4 }, async () => {
    while (!stop) {
      const r = await limiter.reserve({ inputTokens: 10, outputTokens: 1 });
      await limiter.reconcile(r, { inputTokens: 10, outputTokens: 1 });
    }
  });
  return {
    uid,
    sql,
    stop: async () => {
      stop = true;
      await Promise.all(lanes);
    },
  };
}

/** Grants per batch in [from, to) (ms since epoch, database clock). */
async function grants(pool: string, from: number, to: number): Promise<Map<string, number>> {
  const rows = await db.sql<{ uid: string; n: number }[]>`
    SELECT batch_uid::text AS uid, count(*)::int AS n FROM llm_pool_reservations
     WHERE pool_key = ${pool} AND granted_at >= to_timestamp(${from / 1000}) AND granted_at < to_timestamp(${to / 1000})
     GROUP BY 1`;
  return new Map(rows.map((r) => [r.uid, r.n]));
}
const dbNow = async () =>
  Number(
    (await db.sql<{ t: number }[]>`SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS t`)[0]!.t,
  );
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('fair share of a pool', () => {
  it('weights 1:3 split the rate 25/75 while both want it; the other takes it all once one stops', async () => {
    const pool = 'ns/pool-weights';
    await upsertLimiterRow(db.sql, pool, { ...limits, ...noRamp });
    const a = await batch(pool, 1);
    const b = await batch(pool, 3);
    const t0 = await dbNow();
    await pause(10_000);
    const t1 = await dbNow();
    await b.stop();
    await pause(4_000);
    const t2 = await dbNow();
    await a.stop();
    // both wanting the pool: the first 2 s settle the buckets, then 8 s are measured
    const both = await grants(pool, t0 + 2_000, t1);
    const ga = both.get(a.uid) ?? 0;
    const gb = both.get(b.uid) ?? 0;
    console.log(
      JSON.stringify({ ga, gb, shareA: ga / (ga + gb), rpm: ((ga + gb) / (t1 - t0 - 2000)) * 60_000 }),
    );
    expect(ga + gb).toBeGreaterThan(0.8 * (RPM / 60) * 8);
    expect(ga / (ga + gb)).toBeGreaterThan(0.25 * 0.85);
    expect(ga / (ga + gb)).toBeLessThan(0.25 * 1.15);
    // b stopped: its share flows to a (1 s to notice, then 2 s measured)
    const alone = (await grants(pool, t1 + 2_000, t2)).get(a.uid) ?? 0;
    expect(alone).toBeGreaterThan(0.85 * (RPM / 60) * ((t2 - t1 - 2_000) / 1000));
  }, 60_000);

  it('a batch that arrives late gets its share at once: no debt from the others, no credit for its absence', async () => {
    const pool = 'ns/pool-late';
    await upsertLimiterRow(db.sql, pool, { ...limits, ...noRamp });
    const early = await batch(pool, 1);
    await pause(5_000);
    const late = await batch(pool, 1);
    const t0 = await dbNow();
    await pause(7_000);
    const t1 = await dbNow();
    // the pace the status shows, read while both run
    const pace = await batchPace(db.sql, late.uid, pool);
    await Promise.all([early.stop(), late.stop()]);
    const g = await grants(pool, t0 + 500, t1);
    const share = (g.get(late.uid) ?? 0) / ((g.get(late.uid) ?? 0) + (g.get(early.uid) ?? 0));
    console.log(JSON.stringify({ late: g.get(late.uid), early: g.get(early.uid), share }));
    expect(share).toBeGreaterThan(0.5 * 0.85);
    expect(share).toBeLessThan(0.5 * 1.15);
    expect(pace.weight).toBe(1);
    expect(pace.activeWeight).toBe(2);
    expect(pace.batchRequestsLastMinute).toBeGreaterThan(0);
    expect(pace.poolRequestsLastMinute).toBeGreaterThan(pace.batchRequestsLastMinute);
    // grant → settle: this judge answers at once, so well under a second
    expect(pace.poolLatencyMs).toBeGreaterThanOrEqual(0);
    expect(pace.poolLatencyMs).toBeLessThan(1_000);
  }, 60_000);

  it('a batch role can neither read nor change any share, its own included', async () => {
    const pool = 'ns/pool-hostile';
    await upsertLimiterRow(db.sql, pool, { ...limits, ...noRamp });
    const a = await batch(pool, 1);
    await a.stop();
    const code = async (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e) => String((e as { code?: string }).code ?? e),
      );
    expect(await code(a.sql`SELECT * FROM llm_pool_shares`)).toBe('42501');
    expect(await code(a.sql`UPDATE llm_pool_shares SET weight = 1000`)).toBe('42501');
    expect(
      await code(
        a.sql`INSERT INTO llm_pool_shares (batch_uid, pool_key, weight) VALUES (gen_random_uuid(), ${pool}, 1)`,
      ),
    ).toBe('42501');
    expect(await code(a.sql`SELECT batch_uid FROM llm_pool_reservations`)).toBe('42501');
    const [w] = await db.sql<
      { weight: number }[]
    >`SELECT weight FROM llm_pool_shares WHERE batch_uid = ${a.uid}`;
    expect(w!.weight).toBe(1);
    // asking for 0 requests would pass every rate and every share: a grant counts one at least
    const [r] = await a.sql<{ o_granted: boolean }[]>`
      SELECT * FROM cj_limiter_reserve(${pool}, gen_random_uuid(), 'x', 0, 0, 0, 1000, 600000, 50)`;
    expect(r!.o_granted).toBe(true);
    const [last] = await db.sql<{ requests: number }[]>`
      SELECT requests FROM llm_pool_reservations WHERE batch_uid = ${a.uid} ORDER BY granted_at DESC LIMIT 1`;
    expect(last!.requests).toBe(1);
    // the batch ended: its share row goes with its login
    await retireBatchRole(db.sql, a.uid);
    expect(await db.sql`SELECT 1 FROM llm_pool_shares WHERE batch_uid = ${a.uid}`).toHaveLength(0);
  }, 30_000);
});

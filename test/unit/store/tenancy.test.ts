// Per-batch roles against a real Postgres: what the credentials in a worker Secret can and cannot do.
import { describe, expect, it } from 'vitest';
import { registerBatch } from '../../../runtime/src/store/batches.js';
import {
  batchLimiterKey,
  createBatchRole,
  dropBatchRole,
  retireBatchRole,
  upsertLimiterRow,
  workerDatabaseUrl,
} from '../../../runtime/src/store/tenancy.js';
import { PostgresRateLimiter } from '../../../runtime/src/worker/pool-limiter.js';
import { useTestDb } from '../worker/pg.js';

const db = useTestDb();

const UID_A = '00000000-0000-4000-8000-00000000000a';
const UID_B = '00000000-0000-4000-8000-00000000000b';
const limits = {
  requestsPerMinute: 600,
  inputTokensPerMinute: 1e9,
  outputTokensPerMinute: 1e9,
  maxConcurrency: 10,
};
const noRamp = { rampUp: { initialFraction: 1, durationMs: 0 }, safetyFactor: 1, burstSeconds: 1 };

async function register(uid: string, name: string) {
  await registerBatch(db.sql, {
    uid,
    namespace: `ns-${name}`,
    name,
    config: { grades: ['A'] },
    budgetTotal: 10,
    budgetSource: 'spec',
    essays: [
      { id: `${name}-1`, text: `secret essay of ${name}` },
      { id: `${name}-2`, text: 'another' },
    ],
    anchors: [],
  });
  await db.sql`INSERT INTO comparisons (batch_uid, round, shard, essay_a, essay_b)
               VALUES (${uid}, 1, 0, ${`${name}-1`}, ${`${name}-2`})`;
  await db.sql`INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
               VALUES (gen_random_uuid(), ${uid}, 'done', 't', ${uid}, '{}')`;
}

const as = (url: string) => db.connectAs(url);
const code = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
};

describe('per-batch roles', () => {
  it('see only their own batch, no outbox, no limiter table, and reserve only on their own pool', async () => {
    await register(UID_A, 'a');
    await register(UID_B, 'b');
    await upsertLimiterRow(db.sql, 'ns-a/pool', { ...limits, ...noRamp });
    await upsertLimiterRow(db.sql, 'ns-b/pool', { ...limits, ...noRamp });
    const ca = await createBatchRole(db.sql, { uid: UID_A, poolKey: 'ns-a/pool', connectionLimit: 3 });
    const a = as(workerDatabaseUrl(db.url, ca));
    try {
      const [me] = await a`
        SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolconnlimit,
               (SELECT count(*)::int FROM pg_class WHERE relowner = r.oid) AS owned
          FROM pg_roles r WHERE rolname = current_user`;
      expect(me).toEqual({
        rolsuper: false,
        rolbypassrls: false,
        rolcreaterole: false,
        rolcreatedb: false,
        rolconnlimit: 3,
        owned: 0,
      });
      expect((await a`SELECT uid FROM batches`).map((r) => r.uid)).toEqual([UID_A]);
      expect((await a`SELECT essay_id FROM essays ORDER BY 1`).map((r) => r.essay_id)).toEqual([
        'a-1',
        'a-2',
      ]);
      expect(await a`SELECT 1 FROM essays WHERE batch_uid = ${UID_B}`).toHaveLength(0);
      expect(await a`SELECT 1 FROM comparisons WHERE batch_uid = ${UID_B}`).toHaveLength(0);
      // writes: own rows yes, another batch's no (invisible to UPDATE, refused on INSERT)
      expect((await a`UPDATE comparisons SET attempts = attempts + 1 RETURNING batch_uid`).length).toBe(1);
      expect(
        await code(a`INSERT INTO comparisons (batch_uid, round, shard, essay_a, essay_b)
                          VALUES (${UID_B}, 1, 0, 'b-1', 'b-2')`),
      ).toBe('42501');
      expect(await code(a`UPDATE comparisons SET batch_uid = ${UID_B}`)).toBe('42501');
      expect(
        await code(a`INSERT INTO essays (batch_uid, essay_id, text, sha256, is_anchor)
                          VALUES (${UID_A}, 'x', 'x', 'x', false)`),
      ).toBe('42501');
      expect(await code(a`SELECT * FROM outbox`)).toBe('42501');
      expect(
        await code(a`INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
                          VALUES (gen_random_uuid(), ${UID_A}, 'fake', 't', 'k', '{}')`),
      ).toBe('42501');
      // A teacher's audit answers are the operator's: no access at all (RLS on as well).
      expect(await code(a`SELECT * FROM human_judgements`)).toBe('42501');
      expect(
        await code(a`INSERT INTO human_judgements (batch_uid, judge, essay_a, essay_b, winner)
                          VALUES (${UID_A}, 't', 'a-1', 'a-2', 'a-1')`),
      ).toBe('42501');
      expect(await code(a`SELECT * FROM llm_pool_limiter`)).toBe('42501');
      expect(await code(a`UPDATE llm_pool_limiter SET rpm = 1e9`)).toBe('42501');
      expect(await code(a`SELECT * FROM cj_batch_roles`)).toBe('42501');
      expect(await code(a`SELECT cj_create_batch_role(${UID_B}::uuid, 'x', 'x', 1)`)).toBe('42501');
      // the limiter: own pool through the functions, another pool refused
      const own = new PostgresRateLimiter({
        sql: a,
        poolKey: 'ns-a/pool',
        owner: 'w',
        ...limits,
        managed: false,
      });
      const r = await own.reserve({ inputTokens: 1, outputTokens: 1 });
      await own.reconcile(r, { inputTokens: 1, outputTokens: 1 });
      await own.blockUntil(Date.now() + 1);
      const other = new PostgresRateLimiter({
        sql: a,
        poolKey: 'ns-b/pool',
        owner: 'w',
        ...limits,
        managed: false,
      });
      expect(await code(other.reserve({ inputTokens: 1, outputTokens: 1 }))).toBe('42501');
      expect(await code(other.blockUntil(Date.now() + 60_000))).toBe('42501');
      // the operator's user name with the batch's password does not log in
      const su = new URL(workerDatabaseUrl(db.url, ca));
      su.username = 'cj';
      expect(await code(as(su.toString())`SELECT 1`)).toBe('28P01');
    } finally {
      await a.end({ timeout: 1 });
    }
  });

  it('a retired role cannot log in; a dropped one is gone with its limiter row', async () => {
    const ca = await createBatchRole(db.sql, { uid: UID_B, poolKey: 'ns-b/pool', connectionLimit: 3 });
    const url = workerDatabaseUrl(db.url, ca);
    await upsertLimiterRow(db.sql, batchLimiterKey(UID_B), { ...limits, ...noRamp });
    const b = as(url);
    expect(await b`SELECT uid FROM batches`).toHaveLength(1);
    await retireBatchRole(db.sql, UID_B);
    // an open session sees nothing any more (and is terminated when the operator may signal it)
    expect(
      await b`SELECT uid FROM batches`.then(
        (r) => r.length,
        () => 0,
      ),
    ).toBe(0);
    expect(await code(as(url)`SELECT 1`)).toBe('28000');
    expect(await dropBatchRole(db.sql, UID_B)).toBe(true);
    expect(await db.sql`SELECT 1 FROM pg_roles WHERE rolname = ${ca.role}`).toHaveLength(0);
    expect(
      await db.sql`SELECT 1 FROM llm_pool_limiter WHERE pool_key = ${batchLimiterKey(UID_B)}`,
    ).toHaveLength(0);
    expect(await dropBatchRole(db.sql, UID_B)).toBe(true);
  });
});

describe('shared pools', () => {
  const UID_C = '00000000-0000-4000-8000-00000000000c';
  const UID_D = '00000000-0000-4000-8000-00000000000d';
  const pool = 'ns-shared/pool';

  it("one batch's override of 1 request/minute leaves the other batch's limit (and the pool's row) unchanged", async () => {
    await register(UID_C, 'c');
    await register(UID_D, 'd');
    await upsertLimiterRow(db.sql, pool, { ...limits, ...noRamp }); // 600/min, burst 10
    await upsertLimiterRow(db.sql, batchLimiterKey(UID_C), {
      ...limits,
      ...noRamp,
      requestsPerMinute: 1,
    });
    const c = as(
      workerDatabaseUrl(
        db.url,
        await createBatchRole(db.sql, { uid: UID_C, poolKey: pool, connectionLimit: 3 }),
      ),
    );
    const d = as(
      workerDatabaseUrl(
        db.url,
        await createBatchRole(db.sql, { uid: UID_D, poolKey: pool, connectionLimit: 3 }),
      ),
    );
    const opts = { poolKey: pool, owner: 'w', ...limits, managed: false } as const;
    const slow = new PostgresRateLimiter({ sql: c, ...opts });
    const fast = new PostgresRateLimiter({ sql: d, ...opts });
    const est = { inputTokens: 1, outputTokens: 1 };
    await slow.reserve(est); // the batch bucket's single token
    const waitedFor = new AbortController();
    const second = slow.reserve(est, waitedFor.signal);
    const t0 = Date.now();
    for (let i = 0; i < 8; i++) await fast.reserve(est);
    expect(Date.now() - t0).toBeLessThan(3_000); // 8 of the pool's burst of 10, no waiting for C
    // C's second request waits for its own bucket (~60 s at 1/min), not granted meanwhile
    const raced = await Promise.race([
      second.then(() => 'granted'),
      new Promise((r) => setTimeout(() => r('waiting'), 1500)),
    ]);
    expect(raced).toBe('waiting');
    waitedFor.abort();
    await second.catch(() => {});
    const [row] = await db.sql`SELECT rpm FROM llm_pool_limiter WHERE pool_key = ${pool}`;
    expect(row!.rpm).toBe(600);
  });

  it('a retry-after of 10,000,000 s blocks the pool for at most its clamp', async () => {
    const key = 'ns-clamp/pool';
    await upsertLimiterRow(db.sql, key, { ...limits, ...noRamp, maxBlockMs: 1_500 });
    const l = new PostgresRateLimiter({ sql: db.sql, poolKey: key, owner: 'w', ...limits, managed: false });
    await l.blockUntil(Date.now() + 10_000_000 * 1000);
    const [b] = await db.sql`
      SELECT extract(epoch FROM blocked_until - clock_timestamp()) * 1000 AS ms FROM llm_pool_limiter WHERE pool_key = ${key}`;
    expect(Number(b!.ms)).toBeGreaterThan(0);
    expect(Number(b!.ms)).toBeLessThanOrEqual(1_500);
    const t0 = Date.now();
    await l.reserve({ inputTokens: 1, outputTokens: 1 });
    expect(Date.now() - t0).toBeLessThan(4_000);
    // the default clamp is ten minutes
    await upsertLimiterRow(db.sql, key, { ...limits, ...noRamp });
    await l.blockUntil(Date.now() + 10_000_000 * 1000);
    const [c] = await db.sql`
      SELECT extract(epoch FROM blocked_until - clock_timestamp()) * 1000 AS ms FROM llm_pool_limiter WHERE pool_key = ${key}`;
    expect(Number(c!.ms)).toBeLessThanOrEqual(600_000);
    expect(Number(c!.ms)).toBeGreaterThan(590_000);
  });
});

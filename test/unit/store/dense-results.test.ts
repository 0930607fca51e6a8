// A statement that fails after some of its rows arrived leaves postgres.js' row index behind; the
// next statement on that connection came back with leading holes (a count "returned no row": the
// worker's shardState after a Postgres restart cut a claim's rows short). The store's connections
// compact every result, plain and on a reserved connection; so do the tests' extra connections
// (TestDb.connectAs, opened by the store's connect()).
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shardState } from '../../../runtime/src/store/claims.js';
import { compact, connect, type Sql } from '../../../runtime/src/store/db.js';
import { startTestDb, type TestDb } from '../worker/pg.js';

let db: TestDb;
let sql: Sql;
beforeAll(async () => {
  db = await startTestDb();
  // One connection: the statement after the failed one runs on the same connection.
  sql = connect(db.url, 1);
}, 60_000);
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await db?.stop();
});

/** Three rows, then division by zero: fails after rows were sent. */
const failMidResult = (q: Sql | postgres.TransactionSql) =>
  q`SELECT i, 1 / (4 - i) AS boom FROM generate_series(1, 10) i`.then(
    () => 'no error',
    (e: Error) => e.message,
  );

describe('results after a statement failed mid-result', () => {
  it('the driver itself still shifts the next result (remove denseResults once this fails)', async () => {
    // The driver as it is, without the store's wrapper: the only raw connection in the tests.
    const raw = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      expect(await failMidResult(raw)).toBe('division by zero');
      const rows = await raw`SELECT x FROM generate_series(1, 3) x`;
      expect(rows.length).toBe(6);
      expect(0 in rows).toBe(false);
    } finally {
      await raw.end({ timeout: 5 });
    }
  });

  it('a TestDb.connectAs connection (a batch role in the store tests) is compacted too', async () => {
    const as = db.connectAs(db.url, 1);
    expect(await failMidResult(as)).toBe('division by zero');
    const [r] = await as`SELECT count(*)::int AS n FROM generate_series(1, 5)`;
    expect(r).toEqual({ n: 5 });
  });

  it('an aggregate still returns its row; a list starts at index 0', async () => {
    expect(await failMidResult(sql)).toBe('division by zero');
    const [r] = await sql`SELECT count(*)::int AS n FROM generate_series(1, 5)`;
    expect(r).toEqual({ n: 5 });
    expect(await failMidResult(sql)).toBe('division by zero');
    const rows = await sql`SELECT x FROM generate_series(1, 3) x`;
    expect([...rows]).toEqual([{ x: 1 }, { x: 2 }, { x: 3 }]);
    expect(rows.count).toBe(3);
    // What the worker read: a shard's counts, one aggregate row.
    expect(await failMidResult(sql)).toBe('division by zero');
    const st = await shardState(
      sql,
      { batchUid: '00000000-0000-4000-8000-0000000000d1', round: 1, shard: 0 },
      'w',
    );
    expect(st).toEqual({ open: 0, pending: 0, leasedByOthers: 0, nextExpiryMs: null });
  });

  it('on a reserved connection, through unsafe() too', async () => {
    const reserved = await sql.reserve();
    try {
      expect(await failMidResult(reserved)).toBe('division by zero');
      const [r] = await reserved`SELECT 8 AS n`;
      expect(r).toEqual({ n: 8 });
      const [u] = await reserved.unsafe('SELECT 9 AS n');
      expect(u).toEqual({ n: 9 });
    } finally {
      reserved.release();
    }
  });

  it('compact removes leading holes only', () => {
    const a: number[] = [];
    a[2] = 1;
    a[3] = 2;
    expect(compact(a)).toEqual([1, 2]);
    expect(compact([])).toEqual([]);
    expect(compact([1, undefined, 3])).toEqual([1, undefined, 3]);
    expect(compact('x')).toBe('x');
  });
});

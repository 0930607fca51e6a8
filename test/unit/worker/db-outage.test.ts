// A database outage under a running worker (Postgres restarted mid-shard): the worker rides it
// out with retries instead of failing the pod, and every outcome is written exactly once.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Started } from '../../../hack/lib/proc.js';
import { stopPid } from '../../../hack/lib/proc.js';
import { restartPostgresProcess, startPostgres } from '../../../hack/services/postgres.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../../runtime/src/fake-anthropic/server.js';
import { claimChunk, writeOutcome } from '../../../runtime/src/store/claims.js';
import { connect, type Sql } from '../../../runtime/src/store/db.js';
import { migrate } from '../../../runtime/src/store/migrate.js';
import { readProgress } from '../../../runtime/src/store/progress.js';
import {
  isTransientDbError,
  retryTransient,
  tolerateLostConnections,
} from '../../../runtime/src/store/transient.js';
import { profilePath } from '../llm/helpers.js';
import { poolConfig, rowsOf, seedBatch, spawnWorker, waitFor, workerEnv } from './helpers.js';

describe('transient database errors', () => {
  it('classifies connection failures as transient and statement errors as not', () => {
    for (const code of [
      'ECONNREFUSED',
      'ECONNRESET',
      'CONNECTION_CLOSED',
      'CONNECT_TIMEOUT',
      '57P01',
      '57P03',
      '08006',
    ])
      expect(isTransientDbError(Object.assign(new Error(code), { code })), code).toBe(true);
    expect(
      isTransientDbError(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })])),
    ).toBe(true);
    for (const code of ['23505', '42P01', '22P02', undefined])
      expect(isTransientDbError(Object.assign(new Error('x'), { code })), String(code)).toBe(false);
    expect(isTransientDbError(undefined)).toBe(false);
  });

  it('retries a transient failure until it works; gives up at the deadline; rethrows others at once', async () => {
    const down = (n: number) => {
      let calls = 0;
      return async () => {
        calls++;
        if (calls <= n) throw Object.assign(new Error('refused'), { code: 'ECONNREFUSED' });
        return calls;
      };
    };
    expect(await retryTransient('x', down(3), { deadlineMs: 5_000, initialBackoffMs: 5 })).toBe(4);
    await expect(retryTransient('x', down(1000), { deadlineMs: 100, initialBackoffMs: 10 })).rejects.toThrow(
      'refused',
    );
    let calls = 0;
    await expect(
      retryTransient(
        'x',
        async () => {
          calls++;
          throw Object.assign(new Error('duplicate key'), { code: '23505' });
        },
        { deadlineMs: 5_000 },
      ),
    ).rejects.toThrow('duplicate key');
    expect(calls).toBe(1);
  });

  it('tolerates unhandled lost-connection rejections, hands others on, and can be removed', () => {
    const others: unknown[] = [];
    const untolerate = tolerateLostConnections((r) => others.push(r));
    const lost = Object.assign(new Error('closed'), { code: 'CONNECTION_CLOSED' });
    const bad = Object.assign(new Error('syntax'), { code: '42601' });
    const p = Promise.resolve();
    process.emit('unhandledRejection', lost, p);
    process.emit('unhandledRejection', bad, p);
    expect(others).toEqual([bad]);
    untolerate();
    const listeners = process.listeners('unhandledRejection').length;
    const again = tolerateLostConnections(() => {});
    expect(process.listeners('unhandledRejection')).toHaveLength(listeners + 1);
    again();
    expect(process.listeners('unhandledRejection')).toHaveLength(listeners);
  });
});

describe('runtime compare through a Postgres restart', () => {
  let dir: string;
  let port: number;
  let pg: Started;
  let url: string;
  let sql: Sql;
  let srv: FakeAnthropic;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cj-pg-outage-'));
    const s = await startPostgres(dir);
    ({ port, url } = s);
    pg = s.process;
    sql = connect(url, 4);
    await migrate(sql);
    srv = await startFakeAnthropic({ profilePath, seed: 5, lapse: 0.05, latencyMs: 300 });
  }, 60_000);
  afterAll(async () => {
    await srv?.close();
    await sql?.end({ timeout: 5 });
    if (pg) await stopPid(pg.pid);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('an outcome written again by its writer (a retry after a dropped connection) counts once; another worker is refused', async () => {
    const b = await seedBatch(sql, 2, 1);
    const [row] = await claimChunk(sql, { batchUid: b.uid, round: 1, shard: 0 }, 'w-a', 30, 1);
    const o = {
      status: 'succeeded' as const,
      comparisonId: row!.id,
      pairId: `${row!.essay_a}~${row!.essay_b}`,
      winner: 'A' as const,
      confidence: 'high' as const,
      justification: 'clearer argument',
      injectionFlags: [],
      usage: { input: 10, output: 5, cacheRead: 0, cacheWrite: 0 },
      attempts: 1,
      latencyMs: 5,
    };
    expect(await writeOutcome(sql, o as never, 'w-a')).toBe(true);
    // The same write retried after its connection dropped: the first try committed.
    expect(await writeOutcome(sql, o as never, 'w-a', true)).toBe(true);
    // Not a retry (a second outcome for a final row), or another worker: refused.
    expect(await writeOutcome(sql, o as never, 'w-a')).toBe(false);
    expect(await writeOutcome(sql, o as never, 'w-b', true)).toBe(false);
    const [stored] =
      await sql`SELECT status, attempts, input_tokens FROM comparisons WHERE id = ${row!.id}::bigint`;
    expect(stored).toMatchObject({ status: 'succeeded', attempts: 1, input_tokens: 10 });
  });

  it('keeps working after the database comes back: exit 0, every outcome written once', async () => {
    const b = await seedBatch(sql, 40, 1);
    const w = spawnWorker(workerEnv(url, b, 0, poolConfig(srv.url), { CJ_LEASE_SECONDS: '5' }), 'pod-db');
    await waitFor('some done', async () => (await rowsOf(sql, b.uid)).some((r) => r.status === 'succeeded'));
    const r = await restartPostgresProcess(dir, port, pg.pid, { downMs: 3_000, mode: 'fast' });
    pg = r.process;
    const notes = () =>
      w
        .output()
        .split('\n')
        .filter((l) => !l.includes('llm call'))
        .join('\n')
        .slice(-4000);
    expect(await w.exit, notes()).toBe(0);
    expect(w.output(), notes()).toContain('database unavailable');
    const rows = await rowsOf(sql, b.uid);
    expect(
      rows.every((x) => x.status === 'succeeded' && x.winner),
      notes(),
    ).toBe(true);
    // Each row written once. A lease that expired during the outage may have been claimed again
    // by another lane: that duplicate outcome is refused (lostLeases), never stored.
    expect(w.summary(), notes()).toMatchObject({ code: 0, succeeded: 40, failed: 0 });
    expect(await readProgress(sql, b.uid)).toMatchObject({
      planned: 40,
      completed: 40,
      failed: 0,
      pending: 0,
    });
  }, 90_000);
});

// The `runtime compare` worker as a process, against a real Postgres and the fake Anthropic server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../../runtime/src/fake-anthropic/server.js';
import { readProgress } from '../../../runtime/src/store/progress.js';
import { fixture, profilePath } from '../llm/helpers.js';
import { poolConfig, rowsOf, seedBatch, spawnWorker, waitFor, workerEnv } from './helpers.js';
import { startTestDb, type TestDb } from './pg.js';

let db: TestDb;
const servers: FakeAnthropic[] = [];
beforeAll(async () => {
  db = await startTestDb();
}, 60_000);
afterAll(async () => {
  for (const s of servers) await s.close();
  await db?.stop();
});

async function fake(opts: Parameters<typeof startFakeAnthropic>[0] = {}) {
  const s = await startFakeAnthropic({ profilePath, seed: 5, lapse: 0.05, ...opts });
  servers.push(s);
  return s;
}

describe('runtime compare', () => {
  it('completes its shard, then helps with the rest of the round; exit 0; counters consistent', async () => {
    const srv = await fake();
    const b = await seedBatch(db.sql, 40, 2);
    const w = spawnWorker(workerEnv(db.url, b, 0, poolConfig(srv.url)));
    expect(await w.exit, w.output()).toBe(0);
    const rows = await rowsOf(db.sql, b.uid);
    // Shard 1's pod never started: the shard-0 worker took its pairs too, each judged once.
    expect(rows.every((r) => r.status === 'succeeded' && r.winner && r.attempts === 1)).toBe(true);
    const p = await readProgress(db.sql, b.uid);
    expect(p).toMatchObject({
      planned: 40,
      submitted: 40,
      completed: 40,
      failed: 0,
      retried: 0,
      pending: 0,
    });
    expect(srv.stats().messages.total).toBe(40);
    expect(w.output()).not.toContain('sk-test-key');
    for (const e of fixture.essays.slice(0, 5)) expect(w.output()).not.toContain(e.text.slice(20, 80));
  }, 60_000);

  it("takes over another shard's pairs whose lease expired in a frozen pod; each judged once", async () => {
    const srv = await fake();
    const b = await seedBatch(db.sql, 20, 2);
    // The shard-1 pod claimed everything and froze: its leases ran out a second ago.
    await db.sql`
      UPDATE comparisons SET status = 'leased', lease_owner = 'frozen-pod', lease_expires = now() - interval '1 second'
       WHERE batch_uid = ${b.uid} AND shard = 1`;
    const w = spawnWorker(workerEnv(db.url, b, 0, poolConfig(srv.url)));
    expect(await w.exit, w.output()).toBe(0);
    const rows = await rowsOf(db.sql, b.uid);
    expect(rows.every((r) => r.status === 'succeeded' && r.attempts === 1)).toBe(true);
    expect(rows.filter((r) => r.shard === 1).some((r) => r.lease_owner === 'frozen-pod')).toBe(false);
    expect(srv.stats().messages.total).toBe(20);
  }, 60_000);

  it('exits 3 on a rejected key and leaves every row pending, nothing completed', async () => {
    const srv = await fake({ apiKeys: ['sk-good'] });
    const b = await seedBatch(db.sql, 12, 1);
    const w = spawnWorker(workerEnv(db.url, b, 0, poolConfig(srv.url), { ANTHROPIC_API_KEY: 'sk-bad-key' }));
    expect(await w.exit, w.output()).toBe(3);
    const rows = await rowsOf(db.sql, b.uid);
    expect(rows.every((r) => r.status === 'pending' && r.lease_owner === null)).toBe(true);
    const p = await readProgress(db.sql, b.uid);
    expect(p.completed + p.failed).toBe(0);
    expect(srv.stats().authFailures).toBeGreaterThan(0);
    expect(w.output()).not.toContain('sk-bad-key');
  }, 60_000);

  it('exits 4 on bad input: unknown batch, invalid pool config, missing env', async () => {
    const srv = await fake();
    const b = await seedBatch(db.sql, 2, 1);
    const unknown = spawnWorker(
      workerEnv(db.url, { ...b, uid: '00000000-0000-4000-8000-000000000000' }, 0, poolConfig(srv.url)),
    );
    const badPool = spawnWorker(
      workerEnv(db.url, b, 0, JSON.stringify({ model: 'x', retry: { initialBackoffMs: 'soon' } })),
    );
    const noKey = spawnWorker(workerEnv(db.url, b, 0, poolConfig(srv.url), { ANTHROPIC_API_KEY: '' }));
    // A pool config from another operator version (a field this worker does not know).
    const skew = spawnWorker(
      workerEnv(db.url, b, 0, JSON.stringify({ ...JSON.parse(poolConfig(srv.url)), hedging: { after: 2 } })),
    );
    expect(await unknown.exit, unknown.output()).toBe(4);
    expect(await badPool.exit, badPool.output()).toBe(4);
    expect(badPool.output()).toContain('retry.initialBackoff');
    expect(await skew.exit, skew.output()).toBe(4);
    expect(skew.output()).toContain('CJ_POOL_CONFIG: unknown field hedging');
    expect(skew.output()).toContain('spec.workers.image');
    expect(await noKey.exit, noKey.output()).toBe(4);
    expect((await rowsOf(db.sql, b.uid)).every((r) => r.status === 'pending')).toBe(true);
  }, 60_000);

  it('on SIGTERM aborts in-flight calls, releases its leases and exits promptly', async () => {
    const srv = await fake({ latencyMs: 3000 });
    const b = await seedBatch(db.sql, 30, 1);
    const w = spawnWorker(
      workerEnv(db.url, b, 0, poolConfig(srv.url, { promptCaching: { enabled: false } })),
    );
    await waitFor('leases', async () => (await rowsOf(db.sql, b.uid)).some((r) => r.status === 'leased'));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    expect(await w.exit, w.output()).toBe(143);
    expect(Date.now() - t0).toBeLessThan(5000);
    const rows = await rowsOf(db.sql, b.uid);
    expect(rows.filter((r) => r.status === 'leased')).toEqual([]);
    expect(rows.every((r) => r.status === 'pending' && r.lease_owner === null)).toBe(true);
    expect(w.summary()?.released).toBe(4); // concurrency 4, nothing finished in 3 s
  }, 60_000);

  it('a SIGKILLed worker’s leases expire and a replacement finishes the shard', async () => {
    // About 10 s of work (48 pairs, 4 at a time, 800 ms each): a busy machine's slow polling
    // still catches the worker mid-shard, with pairs done and pairs leased.
    const srv = await fake({ latencyMs: 800 });
    const b = await seedBatch(db.sql, 48, 1);
    const pool = poolConfig(srv.url);
    const a = spawnWorker(workerEnv(db.url, b, 0, pool, { CJ_LEASE_SECONDS: '3' }), 'pod-a');
    await waitFor('some done and some leased', async () => {
      const rows = await rowsOf(db.sql, b.uid);
      return rows.some((r) => r.status === 'succeeded') && rows.some((r) => r.status === 'leased');
    });
    a.child.kill('SIGKILL');
    expect(await a.exit).toBe(137);
    const before = await rowsOf(db.sql, b.uid);
    const orphaned = before.filter((r) => r.status === 'leased' && r.lease_owner === 'pod-a');
    expect(orphaned.length).toBeGreaterThan(0);
    const t0 = Date.now();
    const r = spawnWorker(workerEnv(db.url, b, 0, pool, { CJ_LEASE_SECONDS: '3' }), 'pod-b');
    expect(await r.exit, r.output()).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000); // waited for the orphaned leases
    const after = await rowsOf(db.sql, b.uid);
    expect(after.every((x) => x.status === 'succeeded')).toBe(true);
    for (const o of orphaned) expect(after.find((x) => x.id === o.id)!.lease_owner).toBe('pod-b');
    const p = await readProgress(db.sql, b.uid);
    expect(p).toMatchObject({ planned: 48, completed: 48, failed: 0, pending: 0 });
  }, 120_000);

  it('pipelined: a committed outcome (Failed, no stop round) ends the worker with exit 0, open pairs left unclaimed', async () => {
    const srv = await fake({ latencyMs: 400 });
    const b = await seedBatch(db.sql, 60, 1);
    // Round 0 said continue (the pipelined workers' start); a low-water mark of 1 never plans before the outcome here.
    await db.sql`
      INSERT INTO rounds (batch_uid, round, decision, reason, pairs, shards, stability, summary, history)
      VALUES (${b.uid}, 0, 'continue', 'continue', 60, 1, '{}', '{}', '{}')`;
    const w = spawnWorker(
      workerEnv(db.url, b, 0, poolConfig(srv.url, { promptCaching: { enabled: false } }), {
        CJ_PIPELINE_LOW: '1',
      }),
    );
    await waitFor('some judged', async () =>
      (await rowsOf(db.sql, b.uid)).some((r) => r.status === 'succeeded'),
    ).catch((e: unknown) => {
      throw new Error(`${e}\n${w.output()}`);
    });
    // The operator commits a Failed outcome: only its batch-row half here (commitOutcomeEvent also
    // cancels the open pairs, test/unit/store/pipeline.test.ts): the worker exits on the row alone.
    const t0 = Date.now();
    await db.sql`UPDATE batches SET finalized_at = now(), outcome = 'failed', outcome_reason = 'RoundTimeout'
                  WHERE uid = ${b.uid}`;
    expect(await w.exit, w.output()).toBe(0);
    // One planner poll (250 ms) plus the calls in flight (400 ms), on a loaded machine.
    expect(Date.now() - t0).toBeLessThan(5_000);
    const rows = await rowsOf(db.sql, b.uid);
    // It claimed nothing more: pairs stay pending (never judged after the outcome), none leased.
    expect(rows.filter((r) => r.status === 'leased')).toEqual([]);
    expect(rows.some((r) => r.status === 'pending')).toBe(true);
    expect(w.summary()?.lostLeases).toBe(0);
  }, 60_000);

  it('three workers on one shard write every outcome exactly once', async () => {
    const srv = await fake({ latencyMs: 20 });
    const b = await seedBatch(db.sql, 90, 1);
    const pool = poolConfig(srv.url);
    const ws = [0, 1, 2].map((i) => spawnWorker(workerEnv(db.url, b, 0, pool), `pod-${i}`));
    const codes = await Promise.all(ws.map((w) => w.exit));
    expect(codes, ws.map((w) => w.output()).join('\n')).toEqual([0, 0, 0]);
    const sums = ws.map((w) => w.summary()!);
    expect(sums.reduce((a, s) => a + s.succeeded, 0)).toBe(90);
    expect(sums.reduce((a, s) => a + s.lostLeases, 0)).toBe(0);
    expect(sums.filter((s) => s.succeeded > 0).length).toBeGreaterThanOrEqual(2); // work was shared
    const rows = await rowsOf(db.sql, b.uid);
    expect(rows.every((r) => r.status === 'succeeded' && r.attempts === 1)).toBe(true);
    expect(srv.stats().messages.total).toBe(90); // no comparison was sent twice
  }, 60_000);

  it('with 10% 529 and 2% 429 injected, every row ends succeeded or failed with a reason', async () => {
    const srv = await fake({ inject529: 0.1, inject429: 0.02, injectedRetryAfterS: 0.05 });
    const b = await seedBatch(db.sql, 200, 2);
    const pool = poolConfig(srv.url, {
      retry: { maxAttempts: 2, initialBackoff: '5ms', maxBackoff: '20ms' },
    });
    const ws = [0, 1].map((s) => spawnWorker(workerEnv(db.url, b, s, pool)));
    const codes = await Promise.all(ws.map((w) => w.exit));
    expect(codes, ws.map((w) => w.output()).join('\n')).toEqual([0, 0]);
    const rows = await rowsOf(db.sql, b.uid);
    expect(rows).toHaveLength(200);
    for (const r of rows) {
      expect(['succeeded', 'failed']).toContain(r.status);
      if (r.status === 'failed') {
        expect(['overloaded', 'rate_limited']).toContain(r.failure_reason);
        expect(r.winner).toBeNull();
      } else expect(r.winner).not.toBeNull();
    }
    const st = srv.stats();
    const p = await readProgress(db.sql, b.uid);
    const failed = rows.filter((r) => r.status === 'failed').length;
    expect(p.completed).toBe(200 - failed);
    expect(p.failed).toBe(failed);
    expect(p.pending).toBe(0);
    expect(p.submitted).toBe(200);
    // Every HTTP attempt is accounted for exactly once in `attempts`.
    const attempts = rows.reduce((a, r) => a + r.attempts, 0);
    expect(attempts).toBe(st.messages.total);
    expect(p.retried).toBe(attempts - 200);
    expect(st.injected529 + st.injected429).toBeGreaterThan(10);
    const sums = ws.map((w) => w.summary()!);
    expect(sums.reduce((a, s) => a + s.succeeded + s.failed, 0)).toBe(200);
  }, 90_000);

  it('batch_api: a worker killed mid-batch is replaced and resumes the same provider batch id', async () => {
    const srv = await fake({ batchLatencyMs: 4000 });
    const b = await seedBatch(db.sql, 16, 1);
    const pool = poolConfig(srv.url, { batching: { mode: 'batch_api', batchPollInterval: '200ms' } });
    const env = workerEnv(db.url, b, 0, pool, { CJ_LEASE_SECONDS: '2' });
    const a = spawnWorker(env, 'batch-a');
    const stored = await waitFor(
      'provider batch id stored',
      async () =>
        (
          await db.sql<{ provider_batch_id: string }[]>`
            SELECT provider_batch_id FROM llm_provider_batches WHERE batch_uid = ${b.uid}`
        )[0],
    );
    a.child.kill('SIGKILL');
    await a.exit;
    const r = spawnWorker(env, 'batch-b');
    expect(await r.exit, r.output()).toBe(0);
    const st = srv.stats();
    expect(st.batches.created).toBe(1);
    expect(st.batches.requestsSubmitted).toBe(16); // no pair submitted twice
    const recs = await db.sql<{ provider_batch_id: string; state: string }[]>`
      SELECT provider_batch_id, state FROM llm_provider_batches WHERE batch_uid = ${b.uid}`;
    expect(recs).toEqual([{ provider_batch_id: stored.provider_batch_id, state: 'collected' }]);
    expect(r.output()).toContain('resuming batch');
    const p = await readProgress(db.sql, b.uid);
    expect(p).toMatchObject({ planned: 16, completed: 16, pending: 0, submitted: 16, retried: 0 });
  }, 60_000);
});

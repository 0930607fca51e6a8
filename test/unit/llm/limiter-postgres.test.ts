import { describe, expect, it } from 'vitest';
import { poolUsage } from '../../../runtime/src/store/limiter.js';
import {
  type PostgresLimiterOptions,
  PostgresRateLimiter,
} from '../../../runtime/src/worker/pool-limiter.js';
import { useTestDb } from '../worker/pg.js';

const db = useTestDb();

let n = 0;
function pair(opts: Partial<PostgresLimiterOptions> = {}) {
  const poolKey = `ns/pool-${++n}`;
  const base: PostgresLimiterOptions = {
    sql: db.sql,
    poolKey,
    owner: 'a',
    requestsPerMinute: 600,
    inputTokensPerMinute: 1e9,
    outputTokensPerMinute: 1e9,
    safetyFactor: 1,
    burstSeconds: 1,
    rampUp: { initialFraction: 1, durationMs: 0 },
    ...opts,
  };
  return [new PostgresRateLimiter(base), new PostgresRateLimiter({ ...base, owner: 'b' })] as const;
}
const est = { inputTokens: 10, outputTokens: 5 };
/** Grants the limiter gives one caller asking back to back for a second. */
async function grantsInOneSecond(l: PostgresRateLimiter): Promise<number> {
  const t0 = Date.now();
  let granted = 0;
  while (Date.now() - t0 < 1000) {
    await l.reconcile(await l.reserve(est), null);
    granted++;
  }
  return granted;
}

describe('PostgresRateLimiter', () => {
  it('two limiters on one pool share one budget (not one each)', async () => {
    const [a, b] = pair({ requestsPerMinute: 600 }); // 10/s, burst 10
    const t0 = Date.now();
    let granted = 0;
    const run = async (l: PostgresRateLimiter) => {
      while (Date.now() - t0 < 2000) {
        const r = await l.reserve(est);
        if (Date.now() - t0 >= 2000) {
          await l.reconcile(r, null);
          break;
        }
        granted++;
        await l.reconcile(r, { inputTokens: 10, outputTokens: 5 });
      }
    };
    await Promise.all([run(a), run(b), run(a), run(b)]);
    // burst 10 + 2 s at 10/s = 30 for the pool; per-replica limiting would allow ~60.
    expect(granted).toBeGreaterThanOrEqual(26);
    expect(granted).toBeLessThanOrEqual(32);
    const u = await poolUsage(db.sql, a.poolKey);
    expect(u!.requestsLastMinute).toBeGreaterThanOrEqual(granted);
    expect(u!.inputTokensLastMinute).toBe(granted * 10);
  });

  it('caps pool-wide concurrency, and an unsettled lease frees its slot when it expires', async () => {
    const [a, b] = pair({ maxConcurrency: 2, leaseMs: 600, requestsPerMinute: 60_000 });
    const r1 = await a.reserve(est);
    await b.reserve(est); // never reconciled: a "crashed" process
    const t0 = Date.now();
    const r3 = b.reserve(est);
    setTimeout(() => void a.reconcile(r1, null), 200);
    await r3;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    // Both slots are taken again (r3 and the crashed one); the crashed one expires after 600 ms.
    const t1 = Date.now();
    await a.reserve(est);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(200);
    expect(Date.now() - t1).toBeLessThan(2000);
  });

  it('reconcile is idempotent and refunds tokens', async () => {
    const [a] = pair({ inputTokensPerMinute: 6000, requestsPerMinute: 60_000 }); // 100 input tokens/s, burst 100
    const r = await a.reserve({ inputTokens: 100, outputTokens: 1 });
    await a.reconcile(r, null);
    await a.reconcile(r, null);
    const t0 = Date.now();
    const r2 = await a.reserve({ inputTokens: 100, outputTokens: 1 }); // refunded: no wait
    expect(Date.now() - t0).toBeLessThan(300);
    await a.reconcile(r2, { inputTokens: 100, outputTokens: 1 });
    const t1 = Date.now();
    await a.reserve({ inputTokens: 50, outputTokens: 1 }); // bucket empty: ~0.5 s
    expect(Date.now() - t1).toBeGreaterThanOrEqual(350);
  });

  it('blockUntil on one process blocks the whole pool and is counted', async () => {
    const [a, b] = pair();
    await a.blockUntil(Date.now() + 400);
    await a.blockUntil(Date.now() + 100); // never shortens
    const t0 = Date.now();
    await b.reserve(est);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    const u = await b.usage();
    expect(u!.throttled).toBe(2);
    expect(u!.last429Time).toBeDefined();
  });

  it('tightens pool-wide from a lower server limit and follows it back up to the configured one', async () => {
    const [a, b] = pair({ requestsPerMinute: 600 });
    await a.observeHeaders({ 'anthropic-ratelimit-requests-limit': '300' });
    expect((await b.usage())!.effective.requestsPerMinute).toBe(300);
    expect((await b.usage())!.serverLimits.requestsPerMinute).toBe(300);
    await a.observeHeaders({ 'anthropic-ratelimit-requests-limit': '1000' });
    expect((await b.usage())!.effective.requestsPerMinute).toBe(600);
  });

  it('lowers the level to the server-reported remaining when it is below our burst', async () => {
    const [a] = pair({ requestsPerMinute: 600 }); // burst 10
    await a.reconcile(await a.reserve(est), null); // learn capacity
    await a.observeHeaders({
      'anthropic-ratelimit-requests-limit': '600',
      'anthropic-ratelimit-requests-remaining': '0',
    });
    const t0 = Date.now();
    await a.reserve(est); // empty: ~100 ms for one request at 10/s
    expect(Date.now() - t0).toBeGreaterThanOrEqual(60);
  });

  it('ramps up gently: the first second runs at the initial fraction', async () => {
    const [a] = pair({
      requestsPerMinute: 6000, // 100/s at full rate, burst 1 s
      rampUp: { initialFraction: 0.1, durationMs: 20_000 },
    });
    // ~10 burst + ~10/s; without the ramp it would be ~200.
    expect(await grantsInOneSecond(a)).toBeLessThan(40);
    expect((await a.usage())!.effective.requestsPerMinute).toBeLessThan(1500);
  });

  it('a pool created long before its first call still starts slowly (the ramp runs from the first grant)', async () => {
    const [a] = pair({
      requestsPerMinute: 6000, // 100/s at full rate, burst 1 s
      rampUp: { initialFraction: 0.1, durationMs: 20_000 },
    });
    await a.init();
    // As if the operator had written the row an hour ago and no batch had used the pool since.
    await db.sql`UPDATE llm_pool_limiter
                    SET ramp_started_at = ramp_started_at - interval '1 hour',
                        updated_at = updated_at - interval '1 hour'
                  WHERE pool_key = ${a.poolKey}`;
    expect((await a.usage())!.effective.requestsPerMinute, 'a cold pool shows its initial rate').toBeLessThan(
      1500,
    );
    // ~10 burst + ~10/s; a ramp counted from the row's creation would allow ~200.
    expect(await grantsInOneSecond(a)).toBeLessThan(40);
  });

  it('rejects a waiting reserve when aborted', async () => {
    const [a] = pair();
    await a.blockUntil(Date.now() + 5000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 100);
    await expect(a.reserve(est, ac.signal)).rejects.toThrow('stop');
  });
});

import { describe, expect, it } from 'vitest';
import { MemoryRateLimiter } from '../../../runtime/src/llm/limiter/memory.js';
import { parseRateLimitHeaders, parseRetryAfterMs } from '../../../runtime/src/llm/limiter/types.js';

/** A manual clock: sleep advances time instantly. */
function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    sleep: async (ms: number) => {
      t += Math.max(1, ms);
    },
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('MemoryRateLimiter', () => {
  it('paces requests at limit * safety after the burst', async () => {
    const c = clock();
    const l = new MemoryRateLimiter({
      requestsPerMinute: 600,
      inputTokensPerMinute: 1e9,
      outputTokensPerMinute: 1e9,
      safetyFactor: 0.9,
      burstSeconds: 1,
      now: c.now,
      sleep: c.sleep,
    });
    const t0 = c.now();
    for (let i = 0; i < 100; i++)
      await l.reconcile(await l.reserve({ inputTokens: 0, outputTokens: 0 }), null);
    const perMinute = (100 - 9) / ((c.now() - t0) / 60_000); // minus the initial burst of 9
    expect(perMinute).toBeGreaterThan(600 * 0.9 * 0.95);
    expect(perMinute).toBeLessThan(600 * 0.9 * 1.05);
  });

  it('waits for input tokens and refunds on reconcile(null); reconciles actual usage', async () => {
    const c = clock();
    const l = new MemoryRateLimiter({
      requestsPerMinute: 1e6,
      inputTokensPerMinute: 6000,
      outputTokensPerMinute: 1e9,
      safetyFactor: 1,
      burstSeconds: 10, // capacity 1000 tokens, refill 100/s
      now: c.now,
      sleep: c.sleep,
    });
    const r1 = await l.reserve({ inputTokens: 1000, outputTokens: 0 });
    expect(r1.waitedMs).toBe(0);
    await l.reconcile(r1, null); // not processed: tokens come back
    const r2 = await l.reserve({ inputTokens: 1000, outputTokens: 0 });
    expect(r2.waitedMs).toBe(0);
    await l.reconcile(r2, { inputTokens: 500, outputTokens: 0 }); // used less: 500 back
    const r3 = await l.reserve({ inputTokens: 1000, outputTokens: 0 });
    expect(r3.waitedMs).toBeGreaterThanOrEqual(4900);
    expect(r3.waitedMs).toBeLessThan(5500);
  });

  it('blockUntil blocks every reservation and never shortens', async () => {
    const c = clock();
    const l = new MemoryRateLimiter({
      requestsPerMinute: 1e6,
      inputTokensPerMinute: 1e9,
      outputTokensPerMinute: 1e9,
      now: c.now,
      sleep: c.sleep,
    });
    await l.blockUntil(c.now() + 3000);
    await l.blockUntil(c.now() + 1000);
    const r = await l.reserve({ inputTokens: 1, outputTokens: 1 });
    expect(r.waitedMs).toBeGreaterThanOrEqual(3000);
    expect((await l.snapshot()).throttled429).toBe(2);
  });

  it('caps concurrency; a slot frees on reconcile', async () => {
    const l = new MemoryRateLimiter({
      requestsPerMinute: 1e6,
      inputTokensPerMinute: 1e9,
      outputTokensPerMinute: 1e9,
      maxConcurrency: 2,
    });
    const a = await l.reserve({ inputTokens: 1, outputTokens: 1 });
    await l.reserve({ inputTokens: 1, outputTokens: 1 });
    let third = false;
    const p = l.reserve({ inputTokens: 1, outputTokens: 1 }).then(() => {
      third = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    await l.reconcile(a, { inputTokens: 1, outputTokens: 1 });
    await p;
    expect(third).toBe(true);
    expect((await l.snapshot()).inFlight).toBe(2);
  });

  it('tightens from anthropic-ratelimit-* headers when the server reports a lower limit', async () => {
    const c = clock();
    const l = new MemoryRateLimiter({
      requestsPerMinute: 600,
      inputTokensPerMinute: 100_000,
      outputTokensPerMinute: 20_000,
      safetyFactor: 1,
      now: c.now,
      sleep: c.sleep,
    });
    await l.observeHeaders(
      new Headers({
        'anthropic-ratelimit-requests-limit': '300',
        'anthropic-ratelimit-requests-remaining': '2',
        'anthropic-ratelimit-input-tokens-limit': '200000',
      }),
    );
    const s = await l.snapshot();
    expect(s.effective.requestsPerMinute).toBe(300);
    expect(s.effective.inputTokensPerMinute).toBe(100_000); // never loosens past configuration
    // Only ~2 requests left: the third waits for refill at 300/min (200 ms each).
    await l.reserve({ inputTokens: 0, outputTokens: 0 });
    await l.reserve({ inputTokens: 0, outputTokens: 0 });
    const r = await l.reserve({ inputTokens: 0, outputTokens: 0 });
    expect(r.waitedMs).toBeGreaterThanOrEqual(150);
  });

  it('ramps up from a fraction of the rate', async () => {
    const c = clock();
    const l = new MemoryRateLimiter({
      requestsPerMinute: 600,
      inputTokensPerMinute: 1e9,
      outputTokensPerMinute: 1e9,
      safetyFactor: 1,
      rampUp: { initialFraction: 0.25, durationMs: 60_000 },
      now: c.now,
      sleep: c.sleep,
    });
    await l.reserve({ inputTokens: 0, outputTokens: 0 });
    expect((await l.snapshot()).effective.requestsPerMinute).toBe(150);
    c.advance(30_000);
    expect((await l.snapshot()).effective.requestsPerMinute).toBeCloseTo(375, 0);
    c.advance(60_000);
    expect((await l.snapshot()).effective.requestsPerMinute).toBe(600);
  });

  it('parses retry-after and rate-limit headers', () => {
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after-ms': '150.5', 'retry-after': '9' }))).toBe(150.5);
    expect(parseRetryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4000)).toBe(
      6000,
    );
    expect(parseRetryAfterMs(new Headers({}))).toBeUndefined();
    // a hostile or broken server cannot park a worker for months: clamped to 10 minutes
    expect(parseRetryAfterMs(new Headers({ 'retry-after': '10000000' }))).toBe(600_000);
    expect(parseRetryAfterMs(new Headers({ 'retry-after-ms': '1e12' }), 0, 5_000)).toBe(5_000);
    const p = parseRateLimitHeaders({ 'anthropic-ratelimit-output-tokens-remaining': '1000' });
    expect(p.outputTokens).toEqual({ limit: undefined, remaining: 1000, resetMs: undefined });
  });
});

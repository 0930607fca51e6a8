import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../../runtime/src/fake-anthropic/server.js';
import { backoffMs, classifyError } from '../../../runtime/src/llm/client.js';
import { MemoryRateLimiter } from '../../../runtime/src/llm/limiter/memory.js';
import type { RateLimiter } from '../../../runtime/src/llm/limiter/types.js';
import { LlmMetrics } from '../../../runtime/src/llm/metrics.js';
import { comparerFor, makeJobs, profilePath } from './helpers.js';

let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

/** Records blockUntil calls of a real limiter. */
function spyLimiter(): { limiter: RateLimiter; blocks: number[] } {
  const inner = new MemoryRateLimiter({
    requestsPerMinute: 6000,
    inputTokensPerMinute: 1e9,
    outputTokensPerMinute: 1e9,
  });
  const blocks: number[] = [];
  const limiter: RateLimiter = {
    reserve: (e, s) => inner.reserve(e, s),
    reconcile: (r, a) => inner.reconcile(r, a),
    observeHeaders: (h) => inner.observeHeaders(h),
    snapshot: () => inner.snapshot(),
    blockUntil: async (t) => {
      blocks.push(t);
      await inner.blockUntil(t);
    },
  };
  return { limiter, blocks };
}

describe('client retries and classification (real SDK against the fake server)', () => {
  it('retries 529 and 5xx with backoff, then succeeds; attempts and retry metrics are counted', async () => {
    fake = await startFakeAnthropic({ profilePath, faults: { nextStatuses: [529, 500, 529] } });
    const registry = new Registry();
    const metrics = new LlmMetrics(registry);
    const c = comparerFor(
      fake.url,
      { mode: 'per_request', promptCaching: { enabled: false, ttl: '5m' } },
      { metrics },
    );
    const [o] = await c.compare(makeJobs(1));
    expect(o!.status).toBe('succeeded');
    expect(o!.attempts).toBe(4);
    const retries = await registry.getSingleMetricAsString('cj_llm_retries_total');
    expect(retries).toMatch(/reason="overloaded"} 2/);
    expect(retries).toMatch(/reason="server_error"} 1/);
    expect(fake.stats().messages.byStatus).toEqual({ '200': 1, '500': 1, '529': 2 });
  });

  it('honours retry-after on 429 by blocking the pool until then', async () => {
    fake = await startFakeAnthropic({
      profilePath,
      faults: { nextStatuses: [{ status: 429, retryAfterS: 0.4 }] },
    });
    const { limiter, blocks } = spyLimiter();
    const c = comparerFor(fake.url, { promptCaching: { enabled: false, ttl: '5m' } }, { limiter });
    const t0 = Date.now();
    const [o] = await c.compare(makeJobs(1));
    const elapsed = Date.now() - t0;
    expect(o!.status).toBe('succeeded');
    expect(o!.attempts).toBe(2);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]! - t0).toBeGreaterThanOrEqual(350);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect((await limiter.snapshot()).throttled429).toBe(1);
  });

  it('a limiter whose database is away after the call does not turn the verdict into a failure or a second call', async () => {
    fake = await startFakeAnthropic({
      profilePath,
      faults: { nextStatuses: [{ status: 429, retryAfterS: 0.2 }] },
    });
    const { limiter } = spyLimiter();
    const down = () =>
      Promise.reject(Object.assign(new Error('write CONNECTION_CLOSED'), { code: 'CONNECTION_CLOSED' }));
    // Reserving works; settling, reading headers and blocking the pool all fail (Postgres restarting).
    const flaky: RateLimiter = { ...limiter, reconcile: down, observeHeaders: down, blockUntil: down };
    const c = comparerFor(fake.url, { promptCaching: { enabled: false, ttl: '5m' } }, { limiter: flaky });
    const t0 = Date.now();
    const [o] = await c.compare(makeJobs(1));
    expect(o!.status).toBe('succeeded');
    expect(o!.attempts).toBe(2); // the 429, then the verdict: not retried because bookkeeping failed
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190); // retry-after still honoured (locally)
    expect(fake.stats().messages.total).toBe(2);
  });

  it('gives up after maxAttempts and reports the failure, never a success', async () => {
    fake = await startFakeAnthropic({ profilePath, faults: { nextStatuses: [529, 529, 529] } });
    const c = comparerFor(fake.url, {
      retry: { maxAttempts: 3, initialBackoffMs: 1, maxBackoffMs: 5, jitter: 0 },
    });
    const [o] = await c.compare(makeJobs(1));
    expect(o).toMatchObject({ status: 'failed', failureReason: 'overloaded', attempts: 3 });
    expect(o).not.toHaveProperty('winner');
  });

  it.each([
    [{ status: 400 }, 'invalid_request'],
    [{ status: 403 }, 'permission_denied'],
    [{ status: 429, errorCode: 'enforced_spend_limit_reached' }, 'spend_limit'],
  ])('does not retry %j (reason %s)', async (forced, reason) => {
    fake = await startFakeAnthropic({ profilePath, faults: { nextStatuses: [forced] } });
    const c = comparerFor(fake.url, {});
    const [o] = await c.compare(makeJobs(1));
    expect(o).toMatchObject({ status: 'failed', failureReason: reason, attempts: 1 });
    expect(fake.stats().messages.total).toBe(1);
  });

  it('401: fails without retry, flags the pool once, and fails the rest fast without calling', async () => {
    fake = await startFakeAnthropic({ profilePath, apiKeys: ['sk-good'] });
    const flagged: string[] = [];
    const c = comparerFor(
      fake.url,
      { concurrency: 1 },
      { apiKey: 'sk-bad', onAuthError: (e) => flagged.push(e.reason) },
    );
    const outcomes = await c.compare(makeJobs(5));
    expect(outcomes.every((o) => o.status === 'failed' && o.failureReason === 'auth_failed')).toBe(true);
    expect(flagged).toEqual(['auth_failed']);
    expect(c.authFailure?.status).toBe(401);
    expect(fake.stats().authFailures).toBe(1);
  });

  it('accepts Bearer (SDK default) and x-api-key; 401 in the real error format otherwise', async () => {
    fake = await startFakeAnthropic({ profilePath, apiKeys: ['sk-good'] });
    const body = JSON.stringify({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
    const post = (headers: Record<string, string>) =>
      fetch(`${fake!.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    expect((await post({ 'x-api-key': 'sk-good' })).status).toBe(200);
    expect((await post({ authorization: 'Bearer sk-good' })).status).toBe(200);
    const r = await post({ 'x-api-key': 'nope' });
    expect(r.status).toBe(401);
    expect(await r.json()).toMatchObject({ type: 'error', error: { type: 'authentication_error' } });
    expect((await post({})).status).toBe(401);
  });

  it('classifies connection errors as retryable and exhausts the policy', async () => {
    fake = await startFakeAnthropic({});
    const url = fake.url;
    await fake.close();
    fake = undefined;
    const c = comparerFor(url, {
      retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2, jitter: 0 },
    });
    const [o] = await c.compare(makeJobs(1));
    expect(o).toMatchObject({ status: 'failed', failureReason: 'connection_error', attempts: 2 });
  });

  it('backoff grows exponentially, is capped, and jitter only shortens it', () => {
    const p = { maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 1000, jitter: 0.25 };
    expect([0, 1, 2, 3, 4].map((i) => backoffMs(p, i, () => 0))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoffMs(p, 1, () => 0.999)).toBeGreaterThanOrEqual(150);
    expect(classifyError(new Error('x')).retryable).toBe(false);
  });
});

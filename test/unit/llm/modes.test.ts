import { afterEach, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../../runtime/src/fake-anthropic/server.js';
import { MemoryRateLimiter } from '../../../runtime/src/llm/limiter/memory.js';
import type { ComparisonOutcome } from '../../../runtime/src/llm/types.js';
import { comparerFor, fixture, makeJobs, profilePath } from './helpers.js';

let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const NO_CACHE = { enabled: false, ttl: '5m' as const };
const totalInput = (o: ComparisonOutcome) => o.usage.input + o.usage.cacheRead + o.usage.cacheWrite;

describe('per_request', () => {
  it('re-asks once after a malformed answer, then succeeds', async () => {
    fake = await startFakeAnthropic({ profilePath, faults: { malformedNext: 1 } });
    const c = comparerFor(fake.url, { promptCaching: NO_CACHE });
    const [o] = await c.compare(makeJobs(1));
    expect(o).toMatchObject({ status: 'succeeded', attempts: 2 });
    expect(fake.stats().messages.ok).toBe(2);
  });

  it('fails as unparseable after the one re-ask, and as refused on a refusal', async () => {
    fake = await startFakeAnthropic({ profilePath, faults: { malformedNext: 2 } });
    const c = comparerFor(fake.url, { promptCaching: NO_CACHE, concurrency: 1 });
    const [o] = await c.compare(makeJobs(1));
    expect(o).toMatchObject({ status: 'failed', failureReason: 'unparseable', attempts: 2 });
    fake.setFaults({ stopReasonNext: { reason: 'refusal', count: 1 } });
    const [r] = await c.compare(makeJobs(1, 'other'));
    expect(r).toMatchObject({ status: 'failed', failureReason: 'refused', attempts: 1 });
  });

  it('re-asks with a larger max_tokens after stop_reason max_tokens', async () => {
    fake = await startFakeAnthropic({
      profilePath,
      faults: { stopReasonNext: { reason: 'max_tokens', count: 1 } },
    });
    const c = comparerFor(fake.url, { promptCaching: NO_CACHE });
    const [o] = await c.compare(makeJobs(1));
    expect(o).toMatchObject({ status: 'succeeded', attempts: 2 });
  });

  it('records injection flags on the outcome and carries prompt hash and correlation id', async () => {
    fake = await startFakeAnthropic({ profilePath });
    const planted = fixture.essays.find((e) => /Dear grader/.test(e.text))!;
    const other = fixture.essays.find((e) => e.id !== planted.id && !/grader|AI marking/.test(e.text))!;
    const c = comparerFor(fake.url, {});
    const [o] = await c.compare([{ comparisonId: 'x1', pairId: 'p', essayA: other, essayB: planted }]);
    expect(o!.status).toBe('succeeded');
    expect(o!.injectionFlags).toEqual([
      {
        essayId: planted.id,
        position: 'B',
        kinds: expect.arrayContaining(['addresses_grader', 'verdict_request']),
      },
    ]);
    expect(o!.promptSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(o!.correlationId).toBe('cmp-x1');
    expect(fake.stats().messageLog[0]!.correlationId).toBe('cmp-x1');
  });

  it('uses the prompt cache: first call writes the prefix, later calls read it', async () => {
    fake = await startFakeAnthropic({ profilePath });
    const c = comparerFor(fake.url, { promptCaching: { enabled: true, ttl: '1h' }, concurrency: 4 });
    const outcomes = await c.compare(makeJobs(6));
    const writes = outcomes.filter((o) => o.usage.cacheWrite > 0);
    const reads = outcomes.filter((o) => o.usage.cacheRead > 0);
    // The Comparer warms the cache with one call before fanning out.
    expect(writes).toHaveLength(1);
    expect(reads).toHaveLength(5);
  });
});

describe('serial_bundle', () => {
  it('matches answers by pair_id and re-asks exactly the two missing pairs individually', async () => {
    fake = await startFakeAnthropic({ profilePath, faults: { dropPairIds: ['P3', 'P6'] } });
    const c = comparerFor(fake.url, { mode: 'serial_bundle', bundleSize: 8, promptCaching: NO_CACHE });
    const jobs = makeJobs(8);
    const outcomes = await c.compare(jobs);
    expect(outcomes.every((o) => o.status === 'succeeded')).toBe(true);
    const log = fake.stats().messageLog;
    expect(log.map((e) => e.pairs)).toEqual([8, 1, 1]);
    expect(outcomes.map((o) => o.attempts)).toEqual([1, 1, 2, 1, 1, 2, 1, 1]);
    // The re-asked ones are exactly jobs 3 and 6 (P3, P6).
    const reasked = log
      .slice(1)
      .map((e) => e.correlationId)
      .sort();
    expect(reasked).toEqual([`cmp-${jobs[2]!.comparisonId}`, `cmp-${jobs[5]!.comparisonId}`].sort());
  });

  it('re-asks corrupted answers too, and verdicts equal the per_request verdicts', async () => {
    fake = await startFakeAnthropic({
      profilePath,
      seed: 3,
      lapse: 0.1,
      bias: 0.3,
      faults: { corruptPairIds: ['P1'] },
    });
    const jobs = makeJobs(8);
    const bundle = await comparerFor(fake.url, { mode: 'serial_bundle', bundleSize: 8 }).compare(jobs);
    const single = await comparerFor(fake.url, { mode: 'per_request' }).compare(jobs);
    expect(bundle.map((o) => o.status === 'succeeded' && o.winner)).toEqual(
      single.map((o) => o.status === 'succeeded' && o.winner),
    );
    expect(
      fake
        .stats()
        .messageLog.slice(0, 2)
        .map((e) => e.pairs),
    ).toEqual([8, 1]);
  });

  it('k=8 spends <= 40% of per_request input tokens per comparison, with identical verdicts', async () => {
    fake = await startFakeAnthropic({ profilePath, seed: 11, lapse: 0.05, bias: 0.2 });
    const jobs = makeJobs(64);
    const single = await comparerFor(fake.url, { mode: 'per_request', promptCaching: NO_CACHE }).compare(
      jobs,
    );
    const bundle = await comparerFor(fake.url, {
      mode: 'serial_bundle',
      bundleSize: 8,
      promptCaching: NO_CACHE,
    }).compare(jobs);
    const sum = (os: ComparisonOutcome[]) => os.reduce((a, o) => a + totalInput(o), 0) / os.length;
    const ratio = sum(bundle) / sum(single);
    console.log(
      JSON.stringify({
        perRequestInputPerCmp: sum(single),
        bundle8InputPerCmp: sum(bundle),
        ratio: Number(ratio.toFixed(3)),
      }),
    );
    expect(ratio).toBeLessThanOrEqual(0.4);
    expect(bundle.every((o) => o.status === 'succeeded')).toBe(true);
    expect(bundle.map((o) => (o.status === 'succeeded' ? o.winner : null))).toEqual(
      single.map((o) => (o.status === 'succeeded' ? o.winner : null)),
    );
  });
});

describe('robustness under injected faults', () => {
  it.each(['per_request', 'serial_bundle'] as const)(
    '%s: 10 percent 529 + 2 percent 429 — every comparison ends succeeded or failed-with-reason, none lost or duplicated',
    async (mode) => {
      fake = await startFakeAnthropic({
        profilePath,
        seed: 5,
        inject529: 0.1,
        inject429: 0.02,
        injectedRetryAfterS: 0.05,
      });
      const limiter = new MemoryRateLimiter({
        requestsPerMinute: 60_000,
        inputTokensPerMinute: 1e9,
        outputTokensPerMinute: 1e8,
        maxConcurrency: 8,
      });
      const jobs = makeJobs(200, mode);
      const seen: string[] = [];
      const c = comparerFor(fake.url, { mode, bundleSize: 4, concurrency: 8 }, { limiter });
      const outcomes = await c.compare(jobs, { onOutcome: (o) => seen.push(o.comparisonId) });
      expect(outcomes).toHaveLength(jobs.length);
      expect(new Set(seen).size).toBe(jobs.length);
      expect(seen).toHaveLength(jobs.length);
      for (const o of outcomes) {
        if (o.status === 'succeeded') expect(['A', 'B']).toContain(o.winner);
        else expect(o.failureReason).toBeTruthy();
      }
      const st = fake.stats();
      expect(st.injected529 + st.injected429).toBeGreaterThan(0);
      const succeeded = outcomes.filter((o) => o.status === 'succeeded').length;
      console.log(
        JSON.stringify({
          mode,
          succeeded,
          failed: jobs.length - succeeded,
          injected529: st.injected529,
          injected429: st.injected429,
        }),
      );
      // Successes never exceed what the server actually judged.
      expect(succeeded).toBeLessThanOrEqual(st.pairsJudged);
      expect((await limiter.snapshot()).inFlight).toBe(0);
    },
  );
});

describe('abort', () => {
  it('per_request: aborting rejects with AbortError; delivered outcomes stand, none is a fake success', async () => {
    fake = await startFakeAnthropic({ profilePath, latencyMs: 30 });
    const ac = new AbortController();
    const delivered: ComparisonOutcome[] = [];
    const c = comparerFor(fake.url, { concurrency: 2, promptCaching: NO_CACHE });
    const p = c.compare(makeJobs(20), {
      signal: ac.signal,
      onOutcome: (o) => {
        delivered.push(o);
        if (delivered.length === 3) ac.abort();
      },
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
    expect(delivered.length).toBeLessThan(20);
    expect(delivered.every((o) => o.status === 'succeeded')).toBe(true);
  });
});

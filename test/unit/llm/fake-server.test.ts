import { afterEach, describe, expect, it } from 'vitest';
import { LIMITER_DEFAULTS } from '../../../contract/src/pool-runtime.js';
import { judgeProbability, STANDARD_JUDGE } from '../../../runtime/src/cj/judge-model.js';
import { main } from '../../../runtime/src/commands/fake-anthropic.js';
import {
  heuristicQuality,
  Judge,
  judgeModeFor,
  STANDARD_JUDGE_MODEL,
} from '../../../runtime/src/fake-anthropic/judge.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../../runtime/src/fake-anthropic/server.js';
import { MemoryRateLimiter } from '../../../runtime/src/llm/limiter/memory.js';
import { comparerFor, fixture, makeJobs, profilePath } from './helpers.js';

let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const body = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: 'claude-sonnet-5-5',
    max_tokens: 50,
    messages: [{ role: 'user', content: 'hello' }],
    ...extra,
  });
const post = (path: string, b: string) =>
  fetch(`${fake!.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
    body: b,
  });

describe('fake Anthropic server', () => {
  it('enforces RPM with real headers and a 429 rate_limit_error carrying retry-after', async () => {
    fake = await startFakeAnthropic({ limits: { rpm: 3, itpm: 100_000, otpm: 10_000 } });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 4; i++) {
      last = await post('/v1/messages', body());
      statuses.push(last.status);
      if (i === 0) {
        expect(last.headers.get('anthropic-ratelimit-requests-limit')).toBe('3');
        expect(last.headers.get('anthropic-ratelimit-requests-remaining')).toBe('2');
        expect(Date.parse(last.headers.get('anthropic-ratelimit-input-tokens-reset')!)).toBeGreaterThan(0);
      }
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(Number(last!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await last!.json()).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } });
  });

  it('injects 529s at a seeded rate and 429 bursts with retry-after, set at run time via /_admin/faults', async () => {
    const run = async () => {
      fake = await startFakeAnthropic({ seed: 3 });
      const r = await fetch(`${fake.url}/_admin/faults`, {
        method: 'POST',
        body: JSON.stringify({ inject529: 0.3, burst429: { every: 10, length: 3, retryAfterS: 0.2 } }),
      });
      expect(r.status).toBe(200);
      const statuses: number[] = [];
      const retryAfter: string[] = [];
      for (let i = 0; i < 200; i++) {
        const res = await post('/v1/messages', body());
        statuses.push(res.status);
        if (res.status === 429) retryAfter.push(res.headers.get('retry-after')!);
        await res.arrayBuffer();
      }
      const stats = fake.stats();
      await fake.close();
      fake = undefined;
      return { statuses, retryAfter, stats };
    };
    const a = await run();
    // Bursts: the first 3 of every 10 requests.
    expect(a.statuses.filter((_, i) => i % 10 < 3).every((s) => s === 429)).toBe(true);
    expect(a.stats.burst429).toBe(60);
    expect(new Set(a.retryAfter)).toEqual(new Set(['0.2']));
    // About 30% of the rest are 529 overloaded_error.
    const rest = a.statuses.filter((_, i) => i % 10 >= 3);
    const share = rest.filter((s) => s === 529).length / rest.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.4);
    expect(a.stats.injected529).toBe(rest.filter((s) => s === 529).length);
    expect(a.stats.messages.total).toBe(200);
    // Deterministic: the same seed gives the same sequence.
    expect((await run()).statuses).toEqual(a.statuses);
  });

  it('draws each answer latency from [latencyMs, latencyMaxMs], spread over the range', async () => {
    fake = await startFakeAnthropic({ seed: 5, latencyMs: 40, latencyMaxMs: 160 });
    const took = await Promise.all(
      Array.from({ length: 24 }, async () => {
        const t = performance.now();
        const r = await post('/v1/messages', body());
        expect(r.status).toBe(200);
        return performance.now() - t;
      }),
    );
    // setTimeout may fire a millisecond early; a loaded machine only makes calls slower.
    expect(Math.min(...took)).toBeGreaterThanOrEqual(39);
    // 24 uniform draws over 120 ms spread far apart (a fixed latency would not: load shifts all).
    const sorted = [...took].sort((a, b) => a - b);
    expect(sorted.at(-1)! - sorted[0]!).toBeGreaterThan(60);
    expect(sorted.at(-1)!).toBeGreaterThan(100);
  });

  it('rejects sampling parameters like API 2026-10-21', async () => {
    fake = await startFakeAnthropic({});
    const r = await post('/v1/messages', body({ temperature: 0 }));
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
  });

  it('halving the limit mid-run via /_admin/limits: the client tightens from headers and loses nothing', async () => {
    fake = await startFakeAnthropic({ profilePath, limits: { rpm: 1200 } });
    const limiter = new MemoryRateLimiter({
      requestsPerMinute: 1200,
      inputTokensPerMinute: 1e9,
      outputTokensPerMinute: 1e9,
      burstSeconds: 1,
    });
    const c = comparerFor(fake.url, { concurrency: 4 }, { limiter });
    await c.compare(makeJobs(6, 'before'));
    const r = await fetch(`${fake.url}/_admin/limits`, {
      method: 'POST',
      body: JSON.stringify({ rpm: 600 }),
    });
    expect(r.status).toBe(200);
    const outcomes = await c.compare(makeJobs(12, 'after'));
    expect(outcomes.every((o) => o.status === 'succeeded')).toBe(true);
    expect((await limiter.snapshot()).effective.requestsPerMinute).toBeCloseTo(
      600 * LIMITER_DEFAULTS.safetyFactor,
      0,
    );
  });

  it('counts cache writes then reads for the same cached prefix', async () => {
    fake = await startFakeAnthropic({});
    const sys = [{ type: 'text', text: 'x'.repeat(4000), cache_control: { type: 'ephemeral', ttl: '5m' } }];
    const a = (await (await post('/v1/messages', body({ system: sys }))).json()) as {
      usage: Record<string, number>;
    };
    const b = (await (await post('/v1/messages', body({ system: sys }))).json()) as {
      usage: Record<string, number>;
    };
    expect(a.usage.cache_creation_input_tokens).toBe(1000);
    expect(a.usage.cache_read_input_tokens).toBe(0);
    expect(b.usage.cache_read_input_tokens).toBe(1000);
    expect(b.usage.cache_creation_input_tokens).toBe(0);
  });

  it('judge: deterministic, follows the profile, position bias and lapse behave', () => {
    const judge = new Judge({
      seed: 1,
      profile: {
        essays: [
          { text: 'good', quality: 3 },
          { text: 'bad', quality: -3 },
        ],
      },
    });
    expect(judge.judge('good', 'bad').winner).toBe('A');
    expect(judge.judge('bad', 'good').winner).toBe('B');
    expect(new Judge({ seed: 1 }).judge('a b c', 'd e f')).toEqual(
      new Judge({ seed: 1 }).judge('a b c', 'd e f'),
    );
    // Strong bias toward A on equal essays.
    const biased = new Judge({ seed: 4, bias: 3 });
    const texts = fixture.essays.map((e) => e.text);
    const firsts = texts.slice(0, 20).map((t, i) => biased.judge(t, texts[(i + 1) % 20]!).winner);
    expect(firsts.filter((w) => w === 'A').length).toBeGreaterThan(12);
    // Heuristic roughly orders the sample set: anchors A beat anchors F.
    const grade = (g: string) =>
      fixture.anchors.filter((a) => a.grade === g).map((a) => heuristicQuality(a.text));
    expect(Math.min(...grade('A'))).toBeGreaterThan(Math.max(...grade('F')));
  });

  it('standard judge: the engine benchmark judge model, every answer sure, chosen by the model name', async () => {
    // 2,000 distinct pairs at each quality gap: the share of first-shown wins is the model's.
    const n = 2000;
    const essays = (gap: number) =>
      Array.from({ length: n }, (_, i) => [
        { text: `x${gap} ${i}`, quality: gap },
        { text: `y${gap} ${i}`, quality: 0 },
      ]).flat();
    const judge = new Judge({ seed: 3, profile: { essays: [0, 1, -2].flatMap(essays) } });
    for (const gap of [0, 1, -2]) {
      const verdicts = Array.from({ length: n }, (_, i) =>
        judge.judge(`x${gap} ${i}`, `y${gap} ${i}`, 'standard'),
      );
      const share = verdicts.filter((v) => v.winner === 'A').length / n;
      // P = 0.025 + 0.95·Φ(gap + 0.15): 0.557, 0.856, 0.060; 4 SD of a binomial share is ≤ 0.045.
      expect(Math.abs(share - judgeProbability(gap, 0, STANDARD_JUDGE))).toBeLessThan(0.045);
      expect(new Set(verdicts.map((v) => v.confidence))).toEqual(new Set(['high']));
    }
    expect(judgeModeFor(STANDARD_JUDGE_MODEL)).toBe('standard');
    expect(judgeModeFor('claude-sonnet-5-5')).toBe('heuristic');

    // Over the wire: the pool's model picks the judge (the heuristic one answers this close pair "low").
    fake = await startFakeAnthropic({
      seed: 3,
      profile: {
        essays: [
          { text: 'first essay', quality: 0.1 },
          { text: 'second essay', quality: 0 },
        ],
      },
    });
    const pair = [
      'Judge the following pair of essays.',
      '',
      '<pair id="P1">\n<essay_a>\nfirst essay\n</essay_a>\n<essay_b>\nsecond essay\n</essay_b>\n</pair>',
    ].join('\n');
    const confidence = async (model: string) => {
      const r = await post('/v1/messages', body({ model, messages: [{ role: 'user', content: pair }] }));
      expect(r.status).toBe(200);
      return JSON.parse(((await r.json()) as any).content[0].text).confidence;
    };
    expect(await confidence(STANDARD_JUDGE_MODEL)).toBe('high');
    expect(await confidence('claude-sonnet-5-5')).toBe('low');
  });

  it('CLI prints one JSON line with the URL and stops on SIGTERM', async () => {
    const writes: string[] = [];
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => {
      writes.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    try {
      const done = main(['--port', '0', '--seed', '3', '--rpm', '100']);
      for (let i = 0; i < 50 && writes.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const line = JSON.parse(writes[0]!) as { url: string };
      expect(line.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const r = await fetch(`${line.url}/v1/messages`, {
        method: 'POST',
        body: body(),
        headers: { 'x-api-key': 'k' },
      });
      expect(r.status).toBe(200);
      process.emit('SIGTERM');
      expect(await done).toBe(0);
    } finally {
      process.stdout.write = orig;
    }
    expect(await main(['--nope'])).toBe(2);
  });
});

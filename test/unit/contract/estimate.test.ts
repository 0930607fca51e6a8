// The batch estimate (contract/src/estimate.ts): its prompt constants match the real request
// builder, comparisons respect the budget, the distinct pairs and round boundaries, tokens follow
// the modes, cost is the one formula, and wall time follows the binding limit.
import { describe, expect, it } from 'vitest';
import { estimateCostUsd } from '../../../contract/src/cost.js';
import {
  dynamicFrameChars,
  escapedLength,
  estimateBatch,
  PREFIX_FIXED_CHARS,
  roundSizeFor,
  STOP_TABLE,
  simulateWall,
  stopPerItem,
  stopPerItemFor,
} from '../../../contract/src/estimate.js';
import { resolvePoolRuntimeConfig } from '../../../contract/src/pool-runtime.js';
import { buildRequest, buildStaticPrefix } from '../../../runtime/src/llm/prompt.js';
import type { PairJob } from '../../../runtime/src/llm/types.js';

const assignment = {
  title: 'Should schools ban smartphones?',
  instructions: '  Write 150 to 300 words.  ',
  // Long enough that the prefix passes Anthropic's 1024-token caching minimum.
  rubric: 'Position, reasons, evidence, counter-argument, conclusion. '.repeat(40),
};
const essay = (i: number) => `Essay ${i}: ${'Phones distract & <annoy> students. '.repeat(20 + (i % 7))}`;

const pool = (over: Record<string, unknown> = {}) =>
  resolvePoolRuntimeConfig({
    provider: 'anthropic',
    model: 'claude-sonnet-5-5',
    tier: 'start',
    limits: { requestsPerMinute: 60 },
    pricing: { inputPerMTok: '3', outputPerMTok: '15' },
    ...over,
  });

const input = (over: Partial<Parameters<typeof estimateBatch>[0]> = {}) => ({
  essays: Array.from({ length: 40 }, (_, i) => essay(i)),
  anchors: Array.from({ length: 12 }, (_, i) => essay(100 + i)),
  assignment,
  budget: 1000,
  parallelism: 2,
  minPerEssay: 4,
  pool: pool(),
  ...over,
});

describe('estimate: prompt shape', () => {
  it('the fixed prefix and the pair frames are those of runtime/src/llm/prompt.ts', () => {
    expect(buildStaticPrefix(assignment).length).toBe(
      PREFIX_FIXED_CHARS +
        assignment.title.length +
        assignment.instructions.trim().length +
        assignment.rubric.trim().length,
    );
    const opts = {
      model: 'm',
      caching: { enabled: true, ttl: '5m' as const },
      maxOutputTokensPerPair: 256,
      correlationId: 'c',
    };
    for (const k of [1, 2, 9, 10, 11, 64]) {
      const jobs: PairJob[] = Array.from({ length: k }, (_, i) => ({
        essayA: { id: `a${i}`, text: essay(i) },
        essayB: { id: `b${i}`, text: essay(i + 1) },
      })) as PairJob[];
      const user = buildRequest(assignment, jobs, opts).params.messages[0]!.content as string;
      const essays = jobs.reduce(
        (s, j) => s + escapedLength(j.essayA.text) + escapedLength(j.essayB.text),
        0,
      );
      expect(user.length, `${k} pairs`).toBe(dynamicFrameChars(k) + essays);
    }
  });
});

describe('estimate: comparisons', () => {
  it("expects the engine to stop near the table's comparisons per item, at a round boundary, within the budget", () => {
    const e = estimateBatch(input({ budget: 1000 }));
    const rs = roundSizeFor(52, 2);
    expect(rs).toBe(26);
    const perItem = stopPerItemFor(52);
    expect(perItem).toBeCloseTo(12.25 + ((11.85 - 12.25) * 4) / 16, 9);
    expect(e.comparisons.expected % rs).toBe(0);
    expect(e.comparisons.expected).toBeGreaterThanOrEqual(perItem * 52);
    expect(e.comparisons.expected).toBeLessThan(perItem * 52 + rs);
    expect(e.comparisons).toMatchObject({ endsBy: 'converged', stopsBeforeBudget: true });
    expect(e.comparisons.low).toBeLessThan(e.comparisons.expected);
    expect(e.comparisons.high).toBeGreaterThan(e.comparisons.expected);
  });

  it('the budget or the distinct pairs end a batch first when smaller', () => {
    const byBudget = estimateBatch(input({ budget: 312 }));
    expect(byBudget.comparisons.expected).toBe(312);
    expect(byBudget.comparisons.stopsBeforeBudget).toBe(false);
    const small = estimateBatch(input({ essays: [essay(1), essay(2), essay(3)], anchors: [essay(4)] }));
    expect(small.comparisons.expected).toBe(6); // 4 items: 6 distinct pairs
  });

  it('the table: flat past its last row, no stop for small classes or the heuristic fake judge', () => {
    expect(stopPerItemFor(500)).toBe(STOP_TABLE[STOP_TABLE.length - 1]![1]);
    expect(stopPerItemFor(150)).toBe(10.25);
    expect(stopPerItemFor(40)).toBe(Number.POSITIVE_INFINITY);
    // 40 items with a budget above its 780 distinct pairs: every pair is judged.
    const small = estimateBatch(
      input({ essays: Array.from({ length: 28 }, (_, i) => essay(i)), budget: 800 }),
    );
    expect(small.comparisons).toMatchObject({ expected: 780, endsBy: 'complete' });
    expect(small.assumptions.stopPerItem).toBeNull();
    expect(stopPerItem({ provider: 'fake', model: 'claude-sonnet-5-5' }, 100)).toBe(Number.POSITIVE_INFINITY);
    expect(stopPerItem({ provider: 'fake', model: 'fake-standard-judge' }, 100)).toBe(10.6);
    expect(stopPerItem({ provider: 'anthropic', model: 'claude-sonnet-5-5' }, 100)).toBe(10.6);
  });

  it('never expects fewer than minPerEssay comparisons per essay', () => {
    const e = estimateBatch(input({ minPerEssay: 20, assume: { stopPerItem: 1 } }));
    expect(e.comparisons.expected).toBeGreaterThanOrEqual((52 * 20) / 2);
  });
});

describe('estimate: tokens and cost', () => {
  it('per_request: one call per comparison, the prefix written per first-round worker and read after', () => {
    const e = estimateBatch(input({ budget: 312 }));
    const own = e.modes[0]!;
    expect(own.mode).toBe('per_request');
    expect(own.calls).toBe(312);
    expect(e.assumptions.prefixCached).toBe(true);
    expect(own.tokens.cacheWrite).toBe(2 * e.assumptions.prefixTokens);
    expect(own.tokens.cacheRead).toBe(310 * e.assumptions.prefixTokens);
    expect(own.tokens.output).toBe(312 * 80);
    expect(own.costUsd).toBeCloseTo(estimateCostUsd(own.tokens, pool().pricing!, 'per_request'), 12);
  });

  it('a prefix below the provider minimum is sent uncached at full price', () => {
    const e = estimateBatch(
      input({ budget: 100, assignment: { title: 't', instructions: 'i', rubric: 'r' } }),
    );
    const own = e.modes[0]!;
    expect(e.assumptions.prefixCached).toBe(false);
    expect(own.tokens.cacheRead + own.tokens.cacheWrite).toBe(0);
    expect(own.tokens.input).toBeGreaterThan(100 * e.assumptions.prefixTokens);
  });

  it('serial_bundle sends the prefix once per bundle; batch_api costs half of per_request', () => {
    const e = estimateBatch(
      input({ budget: 300, pool: pool({ batching: { mode: 'serial_bundle', bundleSize: 10 } }) }),
    );
    const [bundle, perRequest, batchApi] = ['serial_bundle', 'per_request', 'batch_api'].map(
      (m) => e.modes.find((x) => x.mode === m)!,
    );
    expect(e.modes[0]!.mode).toBe('serial_bundle');
    expect(bundle!.calls).toBe(30);
    expect(bundle!.tokens.cacheRead).toBeLessThan(perRequest!.tokens.cacheRead / 5);
    expect(batchApi!.costUsd).toBeCloseTo(perRequest!.costUsd! / 2, 12);
  });
});

describe('estimate: wall time', () => {
  it('simulates the limiter: a burst, then the rate; the bucket refills while a round is scored', () => {
    const base = { lanes: 100, latency: 0, burstSeconds: 5, rampInitial: 1, rampSeconds: 60 };
    expect(simulateWall({ ...base, callsPerRound: [10], callsPerSecond: 1, overhead: 0 })).toBeCloseTo(5, 9);
    // Round 0, round 1 (5 from the bucket, 5 at 1/s), its scoring, round 2 the same, its scoring.
    expect(simulateWall({ ...base, callsPerRound: [10, 10], callsPerSecond: 1, overhead: 5 })).toBeCloseTo(
      25,
      9,
    );
    // Four lanes of 2 s calls: 8 calls take two waves.
    expect(
      simulateWall({ ...base, lanes: 4, latency: 2, callsPerRound: [8], callsPerSecond: 100, overhead: 0 }),
    ).toBeCloseTo(4, 9);
    // A cold pool starts at 10% of its rate.
    const cold = simulateWall({
      ...base,
      rampInitial: 0.1,
      callsPerRound: [60],
      callsPerSecond: 1,
      overhead: 0,
    });
    expect(cold).toBeGreaterThan(60);
  });

  it('a 60/min pool is limited by requests; a warm pool skips the slow start', () => {
    const e = estimateBatch(input({ budget: 312 }));
    expect(e.wall.limitedBy).toBe('requests per minute');
    expect(e.wall.perMinute).toBeCloseTo(57, 6);
    const rounds = e.comparisons.rounds;
    const calls = (312 / 57) * 60;
    expect(e.wall.seconds).toBeGreaterThan(calls - rounds * 5);
    expect(e.wall.seconds).toBeLessThan(calls + (rounds + 1) * 7 + 60);
    expect(e.assumptions.rampSeconds).toBeGreaterThan(0);
    const warm = estimateBatch(input({ budget: 312, assume: { warmPool: true } }));
    expect(warm.assumptions.rampSeconds).toBe(0);
    expect(warm.wall.seconds).toBe(e.wall.seconds - e.assumptions.rampSeconds);
  });

  it('pipelined (the default) pays the Jobs once, round by round pays a scoring pass per round', () => {
    const warm = { warmPool: true, roundOverheadSeconds: 7 };
    const piped = estimateBatch(input({ budget: 312, assume: warm }));
    const rounds = estimateBatch(input({ budget: 312, assume: warm, roundsMode: 'rounds' }));
    expect(piped.assumptions.roundsMode).toBe('pipelined');
    expect(rounds.assumptions.roundsMode).toBe('rounds');
    const calls = (312 / 57) * 60; // the rate binds; the bucket's first 5 s of calls go at once
    expect(piped.wall.seconds).toBeGreaterThan(calls - 5 + 2 * 7 - 1);
    expect(piped.wall.seconds).toBeLessThan(calls + 2 * 7 + 1);
    // each of the other rounds adds its pass (less what the refilled bucket sends at once)
    expect(rounds.wall.seconds - piped.wall.seconds).toBeGreaterThan((rounds.comparisons.rounds - 1) * 2);
    expect(estimateBatch(input({ budget: 312, assume: warm, roundsMode: 'pipelined' }))).toEqual(piped);
  });

  it('a small output-token limit binds instead', () => {
    const e = estimateBatch(input({ budget: 312, pool: pool({ limits: { outputTokensPerMinute: 800 } }) }));
    expect(e.wall.limitedBy).toBe('output tokens per minute');
    expect(e.wall.perMinute).toBeCloseTo((800 * 0.95) / 80, 6);
  });
});

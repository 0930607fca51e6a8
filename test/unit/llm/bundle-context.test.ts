// serial_bundle never builds a prompt larger than the model's context window: long essays make
// smaller bundles (hand-computed budgets below), short ones keep the configured bundle size.
import { describe, expect, it } from 'vitest';
import { chunkWithin } from '../../../contract/src/chunk.js';
import {
  decodePoolRuntimeConfig,
  encodePoolRuntimeConfig,
  resolvePoolRuntimeConfig,
} from '../../../contract/src/pool-runtime.js';
import { estimateTokensUpperBound } from '../../../contract/src/tokens.js';
import { newState } from '../../../runtime/src/llm/modes/context.js';
import { planBundles } from '../../../runtime/src/llm/modes/serial-bundle.js';
import { buildStaticPrefix } from '../../../runtime/src/llm/prompt.js';

const assignment = { title: 'Phones', instructions: 'Argue a position.', rubric: 'Better argument wins.' };
const states = (n: number, chars: number) =>
  Array.from({ length: n }, (_, i) =>
    newState(
      {
        comparisonId: `c${i}`,
        pairId: `p${i}`,
        essayA: { id: `a${i}`, text: 'x'.repeat(chars) },
        essayB: { id: `b${i}`, text: 'y'.repeat(chars) },
      },
      0,
    ),
  );

describe('chunkWithin', () => {
  it('cuts at the count or the budget, whichever comes first; an oversized item stands alone', () => {
    const cost = (n: number) => n;
    expect(chunkWithin([1, 1, 1, 1, 1], 2, cost, 100)).toEqual([[1, 1], [1, 1], [1]]);
    expect(chunkWithin([4, 4, 4, 4], 10, cost, 9)).toEqual([
      [4, 4],
      [4, 4],
    ]);
    expect(chunkWithin([3, 50, 3], 10, cost, 10)).toEqual([[3], [50], [3]]);
    expect(chunkWithin([], 3, cost, 10)).toEqual([]);
  });
});

describe('planBundles', () => {
  const pool = { bundleSize: 8, contextWindowTokens: 200_000, maxOutputTokensPerPair: 256 };

  it('keeps the bundle size for ordinary essays', () => {
    const bundles = planBundles(states(20, 2_000), pool, assignment);
    expect(bundles.map((b) => b.length)).toEqual([8, 8, 4]);
  });

  it('makes smaller bundles when essays are long, and every bundle fits the window', () => {
    // Each pair: 2 × 12,500 tokens (50,000 ASCII characters / 4) + 64 + 256 = 25,320 tokens.
    const prefix = estimateTokensUpperBound(buildStaticPrefix(assignment));
    const budget = 200_000 - 2_048 - prefix;
    const perPair = 25_320;
    const bundles = planBundles(states(16, 50_000), pool, assignment);
    const fit = Math.floor(budget / perPair); // 7 with this assignment
    expect(fit).toBeLessThan(8);
    expect(bundles.every((b) => b.length <= fit)).toBe(true);
    expect(bundles.flat()).toHaveLength(16);
    for (const b of bundles) expect(b.length * perPair + prefix + 2_048).toBeLessThanOrEqual(200_000);
  });

  it('uses the pool context window from CJ_POOL_CONFIG (smaller window, smaller bundles)', () => {
    const c = decodePoolRuntimeConfig(
      encodePoolRuntimeConfig(
        resolvePoolRuntimeConfig({
          provider: 'fake',
          model: 'm',
          contextWindowTokens: 32_000,
          batching: { mode: 'serial_bundle', bundleSize: 8 },
        }),
      ),
    );
    expect(c.contextWindowTokens).toBe(32_000);
    const bundles = planBundles(states(8, 20_000), { ...pool, contextWindowTokens: 32_000 }, assignment);
    // 2 × 5,000 + 320 = 10,320 per pair; 32,000 − 2,048 − prefix leaves room for 2.
    expect(bundles.map((b) => b.length)).toEqual([2, 2, 2, 2]);
  });
});

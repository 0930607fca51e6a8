import { describe, expect, it } from 'vitest';
import { connectivity } from '../../../runtime/src/cj/connectivity.js';
import { type FitProblem, fitEmpiricalBayes, fitMap, orderTerms } from '../../../runtime/src/cj/fit.js';
import {
  boundaryJitter,
  decideGrade,
  drawBoundaries,
  isotonic,
  summarize,
  truncatedNormal,
} from '../../../runtime/src/cj/grades.js';
import { createRng } from '../../../runtime/src/cj/rng.js';
import { pairKey, selectPairs } from '../../../runtime/src/cj/select.js';
import { normCdf, normInv } from '../../../runtime/src/cj/stats.js';
import { laplace } from '../../../runtime/src/cj/uncertainty.js';

describe('grade projection', () => {
  it('isotonic regression pools adjacent violators with weights', () => {
    expect(Array.from(isotonic([1, 3, 2, 4], [1, 1, 1, 1]))).toEqual([1, 2.5, 2.5, 4]);
    expect(Array.from(isotonic([3, 1], [3, 1]))).toEqual([2.5, 2.5]);
  });

  it('boundaries are midpoints of grade centres; extreme grades one band width out', () => {
    // Anchors: grade 1 at 0 and 1 (centre 0.5), grade 2 at 2 and 3 (centre 2.5); 4 grades.
    const draw = [0, 1, 2, 3];
    const anchors = [
      { item: 0, grade: 1 },
      { item: 1, grade: 1 },
      { item: 2, grade: 2 },
      { item: 3, grade: 2 },
    ];
    const b = drawBoundaries(draw, anchors, 4, createRng(1));
    // Band width 2: centres −1.5, 0.5, 2.5, 4.5 → boundaries −0.5, 1.5, 3.5.
    expect(Array.from(b)).toEqual([-0.5, 1.5, 3.5]);
  });

  it('boundary jitter: τ² = (v/n_k + v/n_{k+1})/4 with v the pooled within-grade variance', () => {
    const draws = [Float64Array.from([0, 1, 2, 3])];
    const anchors = [
      { item: 0, grade: 0 },
      { item: 1, grade: 0 },
      { item: 2, grade: 1 },
      { item: 3, grade: 1 },
    ];
    // Within-grade SS = 4·0.25 = 1 on 2 df → v = 0.5; τ² = (0.25 + 0.25)/4.
    const tau = boundaryJitter(draws, anchors, 2);
    expect(tau[0]!).toBeCloseTo(Math.sqrt(0.125), 12);
  });

  it('boundary jitter uses the within-grade variance of the two grades it separates, partially pooled', () => {
    const draws = [Float64Array.from([0, 2, 3, 3.5, 5, 5.2])];
    const anchors = [0, 0, 1, 1, 2, 2].map((grade, item) => ({ item, grade }));
    // SS per grade: 2, 0.125, 0.02 (1 df each); pooled v = 2.145/3 = 0.715.
    // Boundary 0: v₀ = (2 + 0.125 + 1·0.715)/(2 + 1); boundary 1: v₁ = (0.125 + 0.02 + 0.715)/3.
    const tau = boundaryJitter(draws, anchors, 3);
    const v0 = (2 + 0.125 + 0.715) / 3;
    const v1 = (0.125 + 0.02 + 0.715) / 3;
    expect(tau[0]!).toBeCloseTo(Math.sqrt(v0 / 4), 12);
    expect(tau[1]!).toBeCloseTo(Math.sqrt(v1 / 4), 12);
    // Fully pooled (pool = ∞): both boundaries use v.
    const pooled = boundaryJitter(draws, anchors, 3, Number.POSITIVE_INFINITY);
    expect(pooled[0]!).toBeCloseTo(Math.sqrt(0.715 / 4), 12);
    expect(pooled[1]!).toBeCloseTo(Math.sqrt(0.715 / 4), 12);
  });

  it('jittered boundaries stay between the anchors they separate', () => {
    const draw = Float64Array.from([0, 0.2, 0.9, 1.1]);
    const anchors = [0, 0, 1, 1].map((grade, item) => ({ item, grade }));
    const rng = createRng(3);
    for (let t = 0; t < 500; t++) {
      const [b] = drawBoundaries(draw, anchors, 2, rng, [5]);
      expect(b!).toBeGreaterThanOrEqual(0.2);
      expect(b!).toBeLessThanOrEqual(0.9);
    }
  });

  it('truncated normal: inside the interval, with the known mean of a half-normal', () => {
    const rng = createRng(11);
    let sum = 0;
    const N = 20000;
    for (let t = 0; t < N; t++) {
      const x = truncatedNormal(1, 2, 1, Number.POSITIVE_INFINITY, rng);
      expect(x).toBeGreaterThanOrEqual(1);
      sum += x;
    }
    // E = μ + σ·φ(0)/(1 − Φ(0)) = 1 + 2·0.79788; SE of the mean ≈ 2·0.6/√N ≈ 0.0085.
    expect(Math.abs(sum / N - (1 + 2 * 0.7978845608))).toBeLessThan(0.035);
    // A gap far in a tail returns its nearer end instead of NaN.
    expect(truncatedNormal(0, 1, 40, 41, rng)).toBe(40);
  });

  it('normInv inverts normCdf', () => {
    for (const p of [1e-6, 0.01, 0.2, 0.5, 0.8, 0.975, 1 - 1e-5])
      expect(normCdf(normInv(p))).toBeCloseTo(p, 6);
    expect(normInv(0.975)).toBeCloseTo(1.959964, 5);
  });

  it('selection tops an essay up to minPerEssay only once the design could have got there', () => {
    // Independent unit-variance scores; item 3 has no design weight, so only the floor asks for it.
    const n = 4;
    const pick = (perItem: number[], minPerEssay: number) => {
      const total = perItem.reduce((s, c) => s + c, 0) / 2;
      const history = {
        byPair: new Map([[pairKey(0, 3, n), { ab: 1, ba: 0 }]]),
        perItem: Int32Array.from(perItem),
        inSlotA: new Int32Array(n),
        total,
      };
      return selectPairs({
        n,
        posterior: {
          mean: new Float64Array(n),
          sd: new Float64Array(n).fill(1),
          draws: [],
          cov: (i, j) => (i === j ? 1 : 0),
          biasSd: 0,
          exact: true,
        },
        lapse: 0.05,
        weights: Float64Array.from([1, 1, 1, 0]),
        history,
        connectivity: connectivity(
          n,
          [
            [0, 1],
            [1, 2],
            [0, 3],
          ],
          [false, false, false, false],
        ),
        settings: {
          count: 1,
          maxPerEssay: 100,
          maxPerRound: 2,
          reverseShare: 0,
          bridgeBonus: 0,
          minPerEssay,
        },
        rng: createRng(1),
      })[0]!;
    };
    const has3 = (p: { a: number; b: number }) => p.a === 3 || p.b === 3;
    expect(has3(pick([20, 20, 20, 1], 0))).toBe(false);
    expect(has3(pick([20, 20, 20, 1], 4))).toBe(true);
    // Too early (1 comparison per essay on average, < 2·4): the floor waits.
    expect(has3(pick([2, 1, 1, 0], 4))).toBe(false);
  });

  it("pending pairs count as the round's earlier picks: a pass continues the greedy round they began", () => {
    // Independent scores of unequal uncertainty, so each pick's information changes the next pick.
    const n = 7;
    const sd = [2.2, 2.0, 1.8, 1.5, 1.2, 1.0, 0.8];
    const posterior = {
      mean: Float64Array.from([0.3, -0.2, 0.1, 0.5, -0.4, 0, 0.2]),
      sd: Float64Array.from(sd),
      draws: [],
      cov: (i: number, j: number) => (i === j ? sd[i]! ** 2 : 0),
      biasSd: 0,
      exact: true,
    };
    const line: [number, number][] = [
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 5],
      [5, 6],
    ];
    const pick = (pending: [number, number][], count: number) => {
      const perItem = new Int32Array(n);
      const byPair = new Map<number, { ab: number; ba: number }>();
      for (const [i, j] of [...line, ...pending]) {
        byPair.set(pairKey(i, j, n), { ab: 1, ba: 0 });
        perItem[i]! += 1;
        perItem[j]! += 1;
      }
      return selectPairs({
        n,
        posterior,
        lapse: 0.05,
        weights: new Float64Array(n).fill(1),
        history: { byPair, perItem, inSlotA: new Int32Array(n), total: line.length + pending.length },
        pending,
        connectivity: connectivity(n, [...line, ...pending], new Array(n).fill(false)),
        settings: { count, maxPerEssay: 100, maxPerRound: 100, reverseShare: 0, bridgeBonus: 0 },
        rng: createRng(1),
      }).map((p) => (p.a < p.b ? [p.a, p.b] : [p.b, p.a]) as [number, number]);
    };
    const round = pick([], 4);
    // Whatever the first two picks were, planning the rest with them pending picks the same pairs.
    expect(pick(round.slice(0, 2), 2)).toEqual(round.slice(2));
    expect(pick(round.slice(0, 1), 3)).toEqual(round.slice(1));
  });

  it('the 80% interval is the contiguous set around the mode with probability nearest 0.8', () => {
    // 0.6 → 0.75 (adds 0.15 on the right) → 0.85 is as far from 0.8 as 0.75; a tie grows: [1, 3].
    expect(summarize([0.05, 0.1, 0.6, 0.15, 0.1]).interval).toEqual([1, 3]);
    expect(summarize([0.05, 0.1, 0.6, 0.2, 0.05]).interval).toEqual([2, 3]);
    // 0.7 is nearer 0.8 than 1.0: a one-grade interval.
    expect(summarize([0.0, 0.7, 0.3]).interval).toEqual([1, 1]);
    expect(summarize([0.0, 0.55, 0.45]).interval).toEqual([1, 2]);
    expect(summarize([0.3, 0.3, 0.4]).interval).toEqual([1, 2]);
    // The old central 10–90% rule gave [1, 3] for the second case (mass 0.9 instead of 0.8).
  });

  it('decides the grade by mode, median or rounded mean (hand-derived)', () => {
    // [0.4, 0.1, 0.5]: most probable index 2; cumulative 0.4, 0.5 → median index 1;
    // mean 0·0.4 + 1·0.1 + 2·0.5 = 1.1 → 1. (Grades 1..3: modal grade 3, median and mean grade 2.)
    expect(decideGrade([0.4, 0.1, 0.5], 'modal')).toBe(2);
    expect(decideGrade([0.4, 0.1, 0.5], 'median')).toBe(1);
    expect(decideGrade([0.4, 0.1, 0.5], 'mean')).toBe(1);
    // [0.1, 0.2, 0.3, 0.4]: mode 3; cumulative 0.1, 0.3, 0.6 → median 2; mean 0.2 + 0.6 + 1.2 = 2.0.
    expect(decideGrade([0.1, 0.2, 0.3, 0.4], 'modal')).toBe(3);
    expect(decideGrade([0.1, 0.2, 0.3, 0.4], 'median')).toBe(2);
    expect(decideGrade([0.1, 0.2, 0.3, 0.4], 'mean')).toBe(2);
    // [0.45, 0.05, 0, 0.5]: mode 3; cumulative 0.45, 0.5 → median 1; mean 0.05 + 1.5 = 1.55 → 2:
    // three rules, three grades.
    expect(decideGrade([0.45, 0.05, 0, 0.5], 'modal')).toBe(3);
    expect(decideGrade([0.45, 0.05, 0, 0.5], 'median')).toBe(1);
    expect(decideGrade([0.45, 0.05, 0, 0.5], 'mean')).toBe(2);
    // Ties: the mode takes the lowest of equal grades, the median the first grade whose cumulative
    // probability reaches 0.5, the mean rounds halves up (1.5 → 2).
    expect(decideGrade([0.5, 0, 0, 0.5], 'modal')).toBe(0);
    expect(decideGrade([0.5, 0, 0, 0.5], 'median')).toBe(0);
    expect(decideGrade([0.5, 0, 0, 0.5], 'mean')).toBe(2);
    // A symmetric unimodal distribution: all three agree.
    for (const r of ['modal', 'median', 'mean'] as const)
      expect(decideGrade([0.05, 0.15, 0.6, 0.15, 0.05], r)).toBe(2);
  });

  it('grows the 80% interval from the assigned grade, so it contains the reported grade', () => {
    // Modal: start at index 3 (0.4); its only neighbour has 0 → [3, 3], which excludes the median.
    const modal = summarize([0.3, 0.3, 0, 0.4], 'modal');
    expect([modal.assigned, modal.modal, modal.interval]).toEqual([3, 3, [3, 3]]);
    // Median (cumulative 0.3, 0.6 → index 1): 0.3 → +0.3 on the left = 0.6 → right neighbour 0 → [0, 1].
    const median = summarize([0.3, 0.3, 0, 0.4], 'median');
    expect([median.assigned, median.modal, median.modalProbability]).toEqual([1, 3, 0.4]);
    expect(median.interval).toEqual([0, 1]);
    // [0.4, 0.1, 0.5] from the median (index 1, 0.1): +0.5 right = 0.6, +0.4 left = 1.0 (as far
    // from 0.8 as 0.6; a tie grows) → [0, 2].
    expect(summarize([0.4, 0.1, 0.5], 'median').interval).toEqual([0, 2]);
    // The default of summarize() itself stays modal (assigned = modal).
    expect(summarize([0.4, 0.1, 0.5]).assigned).toBe(2);
  });
});

describe('anchor order constraint', () => {
  it('log Φ terms: value, slope and curvature match finite differences', () => {
    const sd = 0.3;
    for (const x of [-2, -0.4, 0, 0.5, 3]) {
      const h = 1e-3;
      const t = orderTerms(x, sd);
      const up = orderTerms(x + h, sd);
      const dn = orderTerms(x - h, sd);
      expect(t.score).toBeCloseTo((up.value - dn.value) / (2 * h), 3);
      // Curvature from the analytic slopes (second differences of an erfc approximation are noisy).
      // (within 1%: the far tail, z < −6, uses the asymptotic inverse Mills ratio)
      expect(Math.abs(t.weight + (up.score - dn.score) / (2 * h))).toBeLessThan(0.01 * t.weight + 1e-6);
      expect(t.weight).toBeGreaterThanOrEqual(0);
    }
  });

  it('orders two unjudged anchors by grade', () => {
    const p: FitProblem = {
      n: 2,
      obs: { a: new Int32Array(0), b: new Int32Array(0), y: new Float64Array(0) },
      fixed: new Float64Array(2).fill(Number.NaN),
      priorSd: 1,
      biasPriorSd: 0,
      lapsePrior: { alpha: 2, beta: 20, fixed: 0 },
      order: { hi: Int32Array.from([1]), lo: Int32Array.from([0]), sd: 0.1 },
    };
    const fit = fitMap(p);
    // The MAP sits just inside the constraint (x ≈ 1.3τ), not at the ordered-pair mean.
    expect(fit.theta[1]!).toBeGreaterThan(0.05);
    expect(fit.theta[0]!).toBeCloseTo(-fit.theta[1]!, 6);
    const post = laplace(p, fit, 50, createRng(1));
    expect(post.sd[0]!).toBeLessThan(1);
  });
});

describe('empirical Bayes prior SD', () => {
  it('recovers a larger scale than the configured prior from a dense round robin', () => {
    const rng = createRng(7, 'eb');
    const n = 40;
    const truth = Float64Array.from({ length: n }, () => 3 * rng.normal());
    const a: number[] = [];
    const b: number[] = [];
    const y: number[] = [];
    for (let r = 0; r < 3; r++)
      for (let i = 0; i < n; i++)
        for (let j = i + 1; j < n; j++) {
          a.push(i);
          b.push(j);
          y.push(rng.next() < 1 / (1 + Math.exp(-(truth[i]! - truth[j]!))) ? 1 : 0);
        }
    const p: FitProblem = {
      n,
      obs: { a: Int32Array.from(a), b: Int32Array.from(b), y: Float64Array.from(y) },
      fixed: new Float64Array(n).fill(Number.NaN),
      priorSd: 1,
      biasPriorSd: 0,
      lapsePrior: { alpha: 2, beta: 20, fixed: 0 },
    };
    const sdTruth = Math.sqrt(truth.reduce((s, t) => s + t * t, 0) / n);
    const eb = fitEmpiricalBayes(p, undefined, { pseudoCount: 0, max: 10, maxIter: 50 });
    expect(eb.priorSd).toBeGreaterThan(0.8 * sdTruth);
    expect(eb.priorSd).toBeLessThan(1.2 * sdTruth);
  });
});

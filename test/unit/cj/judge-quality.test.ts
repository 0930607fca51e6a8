import { describe, expect, it } from 'vitest';
import {
  anchorSpread,
  chiSquareCdf,
  EXTRA_LR,
  leaveOneAnchorOut,
  misperceptionTest,
  wilsonHilferty,
} from '../../../runtime/src/cj/grades.js';
import { misfit } from '../../../runtime/src/cj/misfit.js';
import { plan } from '../../../runtime/src/cj/plan.js';
import { createRng } from '../../../runtime/src/cj/rng.js';

/** Draws tightly around given anchor scores (posterior SD 0.05): anchors 2 per grade of 6. */
function anchorDraws(scores: number[], seed: number): Float64Array[] {
  const rng = createRng(seed, 'draws');
  return Array.from({ length: 200 }, () => Float64Array.from(scores, (x) => x + 0.05 * rng.normal()));
}

describe("judge's extra per-essay SD from held-out anchors", () => {
  const anchors = Array.from({ length: 12 }, (_, item) => ({ item, grade: Math.floor(item / 2) }));
  const centre = anchors.map((a, t) => a.grade * 1.2 + (t % 2 === 0 ? -0.25 : 0.25));

  it('is zero and not applied when anchors sit inside their bands', () => {
    const cal = leaveOneAnchorOut(anchorDraws(centre, 1), anchors, 6, createRng(2), 'median');
    expect(cal.extra.sd).toBe(0);
    expect(cal.extra.applied).toBe(0);
    expect(cal.coverage80).toBe(1);
  });

  it('is found and applied when anchors are perceived a band away from their grades', () => {
    const rng = createRng(3, 'offsets');
    const perceived = centre.map((x) => x + 1.2 * rng.normal());
    const cal = leaveOneAnchorOut(anchorDraws(perceived, 4), anchors, 6, createRng(5), 'median');
    expect(cal.extra.lr).toBeGreaterThanOrEqual(EXTRA_LR);
    expect(cal.extra.sd).toBeGreaterThan(0.3);
    expect(cal.extra.applied).toBe(cal.extra.sd);
  });
});

describe('held-out anchors are graded by settings.gradeDecision', () => {
  const anchors = Array.from({ length: 12 }, (_, item) => ({ item, grade: Math.floor(item / 2) }));
  // Anchors perceived far from their bands, estimated loosely: the held-out probabilities spread
  // over several grades, so the rules disagree on some anchors.
  const rng = createRng(7, 'offsets');
  const perceived = anchors.map((a, t) => a.grade * 1.2 + (t % 2 === 0 ? -0.25 : 0.25) + 0.9 * rng.normal());
  const draws = (() => {
    const r = createRng(8, 'draws');
    return Array.from({ length: 400 }, () => Float64Array.from(perceived, (x) => x + 0.6 * r.normal()));
  })();
  const modalOf = (p: number[]) => p.reduce((b, x, g) => (x > p[b]! ? g : b), 0);

  it.each(['modal', 'mean', 'exact'] as const)('%s: the per-essay rule, also when means are passed', (d) => {
    const cal = leaveOneAnchorOut(draws, anchors, 6, createRng(9), d, perceived);
    expect(cal.anchors.length).toBe(12);
    for (const a of cal.anchors) {
      const p = a.predicted.probabilities;
      const want = d === 'mean' ? Math.round(p.reduce((t, x, g) => t + g * x, 0)) : modalOf(p);
      expect(a.predicted.assigned).toBe(want);
    }
  });
});

describe("anchors' within-grade spread test (what decides the widening)", () => {
  const anchors = Array.from({ length: 12 }, (_, item) => ({ item, grade: Math.floor(item / 2) }));
  /**
   * One simulated batch: anchors uniform in bands of width 1.2, perceived with an extra N(0, tau²)
   * offset, estimated with error N(0, v) (posterior means), posterior draws of variance v.
   */
  function spreadOf(seed: number, tau: number, v: number) {
    const rng = createRng(seed, 'spread');
    const truth = anchors.map((a) => a.grade * 1.2 + 1.2 * (rng.next() - 0.5) + tau * rng.normal());
    const means = truth.map((x) => x + Math.sqrt(v) * rng.normal());
    const draws = Array.from({ length: 200 }, () =>
      Float64Array.from(means, (x) => x + Math.sqrt(v) * rng.normal()),
    );
    return anchorSpread(draws, anchors, 6);
  }

  it('Wilson–Hilferty: the 5% point of χ²_4 (9.49) is z ≈ 1.645', () => {
    expect(wilsonHilferty(9.488, 4)).toBeCloseTo(1.645, 1);
    expect(wilsonHilferty(4 * (1 - 2 / 36) ** 3, 4)).toBeCloseTo(0, 6);
  });

  it('fires rarely for a consistent judge however noisy the anchors, and finds a large offset', () => {
    for (const v of [0.05, 0.8]) {
      const fired = Array.from({ length: 40 }, (_, s) => spreadOf(s, 0, v).z >= 1.645).filter(Boolean);
      expect(fired.length).toBeLessThanOrEqual(6); // nominal 5% of 40 = 2
    }
    const found = Array.from({ length: 40 }, (_, s) => spreadOf(100 + s, 1, 0.05));
    expect(found.filter((r) => r.z >= 1.645).length).toBeGreaterThanOrEqual(32);
    const mean = found.reduce((t, r) => t + r.extraVar, 0) / found.length;
    expect(mean).toBeGreaterThan(0.6);
    expect(mean).toBeLessThan(1.5);
  });

  it('cannot see an offset as large as the noise of 7 comparisons per anchor (power, not a bug)', () => {
    const fired = Array.from({ length: 40 }, (_, s) => spreadOf(200 + s, 0.85, 0.8).z >= 1.645);
    expect(fired.filter(Boolean).length).toBeLessThan(20);
  });
});

describe("anchors' misperception test (what decides the widening and bounds the claims)", () => {
  const anchors = Array.from({ length: 12 }, (_, item) => ({ item, grade: Math.floor(item / 2) }));
  /** As above, with correlated posterior draws (a shared N(0, v/2) shift per draw). */
  function testOf(seed: number, tau: number, v: number) {
    const rng = createRng(seed, 'misperception');
    const truth = anchors.map((a) => a.grade * 1.2 + 1.2 * (rng.next() - 0.5) + tau * rng.normal());
    // Estimation errors with the covariance the draws report (shared part v/2, own part v/2).
    const common = Math.sqrt(v / 2) * rng.normal();
    const means = truth.map((x) => x + common + Math.sqrt(v / 2) * rng.normal());
    const draws = Array.from({ length: 200 }, () => {
      const shift = Math.sqrt(v / 2) * rng.normal();
      return Float64Array.from(means, (x) => x + shift + Math.sqrt(v / 2) * rng.normal());
    });
    return misperceptionTest(draws, anchors, 6, 0.1);
  }

  it('χ² distribution function (Wilson–Hilferty): the 90% point of χ²_4 is 7.78', () => {
    expect(chiSquareCdf(7.779, 4)).toBeCloseTo(0.9, 2);
    expect(chiSquareCdf(1.064, 4)).toBeCloseTo(0.1, 2);
  });

  it('rejects a consistent judge at about its level, however noisy the anchors (calibrated)', () => {
    for (const v of [0.05, 0.8]) {
      const rs = Array.from({ length: 100 }, (_, s) => testOf(s, 0, v));
      expect(rs.every((r) => r.df === 4)).toBe(true);
      // Nominal 10 of 100; binomial SD 3.
      expect(rs.filter((r) => r.reject).length).toBeLessThanOrEqual(17);
      // The upper bound covers the truth (0) always, and is wide when the anchors are imprecise.
      expect(rs.filter((r) => r.tauUpper >= 0).length).toBe(100);
    }
  });

  it('finds a large offset on precise anchors, bounds it from above, and has the power the anchors allow', () => {
    const big = Array.from({ length: 60 }, (_, s) => testOf(500 + s, 1, 0.05));
    expect(big.filter((r) => r.reject).length).toBeGreaterThanOrEqual(45);
    expect(big.filter((r) => r.tauUpper >= 1).length).toBeGreaterThanOrEqual(48);
    const mean = big.reduce((t, r) => t + r.tauHat, 0) / big.length;
    expect(mean).toBeGreaterThan(0.7);
    expect(mean).toBeLessThan(1.3);
    // The grid's misperception (≈ 0.85 logits) with ≈ 7 comparisons per anchor: about 1 in 3.
    const weak = Array.from({ length: 60 }, (_, s) => testOf(900 + s, 0.85, 0.8));
    expect(weak.filter((r) => r.reject).length).toBeLessThan(35);
  });

  it("'anywhere' stays calibrated when anchors sit at their bands' edges, and bounds τ more widely", () => {
    // Each anchor at one edge of its band of width 1.2, the edge drawn independently: spread w²/4,
    // the most any placement of independently placed anchors has (three times the uniform w²/12).
    const edgeOf = (seed: number, placement: 'uniform' | 'anywhere') => {
      const rng = createRng(seed, 'edge');
      const truth = anchors.map((a) => a.grade * 1.2 + (rng.next() < 0.5 ? -0.6 : 0.6));
      const means = truth.map((x) => x + Math.sqrt(0.05) * rng.normal());
      const draws = Array.from({ length: 200 }, () =>
        Float64Array.from(means, (x) => x + Math.sqrt(0.05) * rng.normal()),
      );
      return misperceptionTest(draws, anchors, 6, 0.1, placement);
    };
    const uniform = Array.from({ length: 40 }, (_, s) => edgeOf(s, 'uniform'));
    const anywhere = Array.from({ length: 40 }, (_, s) => edgeOf(s, 'anywhere'));
    expect(uniform.filter((r) => r.reject).length).toBeGreaterThan(8);
    expect(anywhere.filter((r) => r.reject).length).toBeLessThanOrEqual(6);
    anywhere.forEach((r, i) => {
      expect(r.tauUpper).toBeGreaterThanOrEqual(uniform[i]!.tauUpper);
    });
  });

  it('makes no test with fewer than 3 contrasts (one anchor per grade)', () => {
    const one = Array.from({ length: 6 }, (_, item) => ({ item, grade: item }));
    const draws = Array.from({ length: 50 }, () => Float64Array.from({ length: 6 }, (_, i) => i));
    const r = misperceptionTest(draws, one, 6, 0.1);
    expect(r.df).toBe(0);
    expect(r.reject).toBe(false);
    expect(Number.isNaN(r.p)).toBe(true);
  });
});

describe('misfit', () => {
  it('flags the essay the judge is inconsistent about, and only it', () => {
    const rng = createRng(7, 'misfit');
    const n = 30;
    const truth = Array.from({ length: n }, () => 1.5 * rng.normal());
    const a: number[] = [];
    const b: number[] = [];
    const y: number[] = [];
    for (let k = 0; k < 900; k++) {
      const i = rng.int(n);
      const j = (i + 1 + rng.int(n - 1)) % n;
      // Essay 0: coin flips (the judge cannot make up its mind about it); others: logistic.
      const p = i === 0 || j === 0 ? 0.5 : 1 / (1 + Math.exp(-(truth[i]! - truth[j]!)));
      a.push(i);
      b.push(j);
      y.push(rng.next() < p ? 1 : 0);
    }
    // Essay 0's fitted score sits at the middle, where coin flips against far essays surprise.
    const theta = Float64Array.from(truth, (t, i) => (i === 0 ? 0 : t));
    const fit = misfit(theta, 0, 0, {
      a: Int32Array.from(a),
      b: Int32Array.from(b),
      y: Float64Array.from(y),
    });
    expect(fit.flagged[0]).toBe(true);
    expect(fit.flagged.filter(Boolean).length).toBeLessThanOrEqual(2);
    const others = Array.from(fit.infit).slice(1);
    expect(others.reduce((s, x) => s + x, 0) / others.length).toBeGreaterThan(0.7);
    expect(others.reduce((s, x) => s + x, 0) / others.length).toBeLessThan(1.3);
  });

  it('plan() reports infit/outfit per essay, flagged essays, and comparisons per anchor and student', () => {
    const essays = [
      ...Array.from({ length: 12 }, (_, i) => ({ id: `e${i}` })),
      { id: 'lo', anchor: { grade: 'L' } },
      { id: 'hi', anchor: { grade: 'H' } },
    ];
    const rng = createRng(9);
    const comparisons = Array.from({ length: 120 }, () => {
      const i = rng.int(14);
      const j = (i + 1 + rng.int(13)) % 14;
      return {
        a: essays[i]!.id,
        b: essays[j]!.id,
        winner: rng.next() < 0.5 ? ('a' as const) : ('b' as const),
      };
    });
    const out = plan({ essays, grades: ['L', 'H'], comparisons });
    for (const s of out.scores) {
      expect(s.infit).toBeGreaterThan(0);
      expect(s.outfit).toBeGreaterThan(0);
      expect(typeof s.misfit).toBe('boolean');
    }
    expect(out.quality.misfit?.flagged).toBe(out.scores.filter((s) => s.misfit).length);
    const anchorsMean = (
      out.scores.filter((s) => s.anchor).reduce((t, s) => t + s.comparisons, 0) / 2
    ).toFixed(9);
    expect(out.quality.comparisonsPerAnchor!.toFixed(9)).toBe(anchorsMean);
    expect(out.quality.comparisonsPerStudent).toBeGreaterThan(0);
    expect(out.quality.judge.extraSd).toBeGreaterThanOrEqual(0);
    // Two anchors in two grades: no misperception test, so the claim cannot be bounded.
    expect(out.quality.judge.misperception).toBe('unknown');
    expect(out.quality.judge.misperceptionDf).toBe(0);
    expect(out.quality.expectedSpearmanLow).toBeNull();
  });
});

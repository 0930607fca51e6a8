/**
 * Property test: the headline grade never inverts the ranking. Random batches from a small
 * seeded generator (no property library needed): 3–20 grades, 0–3 anchors per grade (some
 * grades without anchors, anchors anywhere), fixed-score anchors, judges from consistent to
 * coin-flip, ties and soft wins, every grade decision rule, dense and sparse routes.
 */
import { describe, expect, it } from 'vitest';
import { assertMonotone, decideGrade, exactGrades, monotoneGrades } from '../../../runtime/src/cj/grades.js';
import { plan } from '../../../runtime/src/cj/plan.js';
import { createRng, type Rng } from '../../../runtime/src/cj/rng.js';
import type { PlanInputJson } from '../../../runtime/src/cj/types.js';

function randomBatch(rng: Rng, maxStudents: number): PlanInputJson {
  const K = 3 + rng.int(18);
  const grades = Array.from({ length: K }, (_, g) => `g${g}`);
  const students = 3 + rng.int(maxStudents - 2);
  const spread = 0.2 + 3 * rng.next();
  const truth: number[] = [];
  const essays: PlanInputJson['essays'] = [];
  for (let i = 0; i < students; i++) {
    truth.push(spread * rng.normal());
    essays.push({ id: `s${i}` });
  }
  const perGrade = rng.int(4);
  for (let g = 0; g < K; g++) {
    const count = rng.next() < 0.2 ? 0 : perGrade;
    for (let r = 0; r < count; r++) {
      // Anchors anywhere: usually near their grade's place in the population, sometimes not.
      const t = rng.next() < 0.8 ? spread * (((g + rng.next()) / K) * 4 - 2) : spread * rng.normal();
      truth.push(t);
      const fixedScore = rng.next() < 0.1;
      essays.push({ id: `a${g}_${r}`, anchor: { grade: grades[g]!, ...(fixedScore ? { score: t } : {}) } });
    }
  }
  const n = essays.length;
  const noise = [0.05, 0.5, 1, 3, 100][rng.int(5)]!;
  const m = rng.int(8 * n);
  const comparisons: NonNullable<PlanInputJson['comparisons']> = [];
  for (let c = 0; c < m; c++) {
    const a = rng.int(n);
    const b = (a + 1 + rng.int(n - 1)) % n;
    const p = 1 / (1 + Math.exp(-(truth[a]! - truth[b]!) / noise));
    const u = rng.next();
    const winner = u < 0.03 ? 'tie' : rng.next() < p ? 'a' : 'b';
    comparisons.push({
      a: essays[a]!.id,
      b: essays[b]!.id,
      winner,
      ...(rng.next() < 0.2 && winner !== 'tie' ? { confidence: 0.5 + 0.5 * rng.next() } : {}),
    });
  }
  const decisions = ['median', 'modal', 'mean', 'exact'] as const;
  return {
    essays,
    grades,
    comparisons,
    settings: {
      seed: rng.int(1e9),
      gradeDecision: decisions[rng.int(decisions.length)]!,
      draws: 50 + rng.int(100),
      splitHalf: false,
    },
  };
}

function inversions(out: ReturnType<typeof plan>, labels: string[]): number {
  const score = new Map(out.scores.map((s) => [s.id, s.score]));
  let bad = 0;
  for (const x of out.grades)
    for (const y of out.grades)
      if (score.get(x.id)! > score.get(y.id)! && labels.indexOf(x.assigned) < labels.indexOf(y.assigned))
        bad++;
  return bad;
}

describe('headline grade is monotone in the score (property)', () => {
  it('no inversion in 30 random batches (dense route)', () => {
    const rng = createRng(20261202, 'monotone');
    let graded = 0;
    for (let t = 0; t < 30; t++) {
      const input = randomBatch(rng, 30);
      const out = plan(input);
      if (out.grades.length > 0) graded++;
      expect(inversions(out, input.grades!)).toBe(0);
    }
    // The generator must actually produce graded batches, or the property says nothing.
    expect(graded).toBeGreaterThan(15);
  }, 300_000);

  it('no inversion on the sparse route (more than 400 parameters)', () => {
    const rng = createRng(7, 'monotone-sparse');
    const input = randomBatch(rng, 40);
    const extra = Array.from({ length: 420 }, (_, i) => ({ id: `z${i}` }));
    const essays = [...input.essays, ...extra];
    const comparisons = Array.from({ length: 3000 }, () => {
      const a = rng.int(essays.length);
      const b = (a + 1 + rng.int(essays.length - 1)) % essays.length;
      return {
        a: essays[a]!.id,
        b: essays[b]!.id,
        winner: rng.next() < 0.5 ? ('a' as const) : ('b' as const),
      };
    });
    const out = plan({ ...input, essays, comparisons });
    expect(out.grades.length).toBeGreaterThan(400);
    expect(inversions(out, input.grades!)).toBe(0);
  }, 120_000);

  it('monotoneGrades: boundaries for the median, PAV for the other rules; assertMonotone throws on an inversion', () => {
    const probs = [
      [0.1, 0.9],
      [0.9, 0.1],
      [0.5, 0.5],
    ];
    expect(monotoneGrades(probs, [1, 2, 3], [1.5], 'median')).toEqual([0, 1, 1]);
    // Modal grades 1, 0, (0) in score order pool to 0.5 → rounded up, then the third stays ≥.
    const modal = monotoneGrades(probs, [1, 2, 3], [1.5], 'modal');
    expect(modal[0]! <= modal[1]! && modal[1]! <= modal[2]!).toBe(true);
    expect(() => assertMonotone([1, 2], [1, 0])).toThrow(/inversion/);
    expect(() => assertMonotone([1, 1], [1, 0])).not.toThrow();
  });

  it('exact: the monotone grades with the most expected agreements (hand-checked)', () => {
    // Score order e1 < e2 < e3. Modal grades 2, 1, 1 pool to 4/3 → [1, 1, 1]: expected agreements
    // 0.1 + 0.5 + 0.5 = 1.1. Boundaries [0.5, 2.5] (median) give [1, 1, 2]: 0.1 + 0.5 + 0.4 = 1.0.
    // The best monotone assignment is [2, 2, 2]: 0.9 + 0.4 + 0.4 = 1.7 ([1, 1, 1] 1.1, [1, 2, 2]
    // 0.9, [1, 1, 2] 1.0, [0, …] ≤ 0.1 + 1.0).
    const probs = [
      [0, 0.1, 0.9],
      [0.1, 0.5, 0.4],
      [0.1, 0.5, 0.4],
    ];
    expect(monotoneGrades(probs, [1, 2, 3], [0.5, 2.5], 'median')).toEqual([1, 1, 2]);
    expect(monotoneGrades(probs, [1, 2, 3], [0.5, 2.5], 'modal')).toEqual([1, 1, 1]);
    expect(monotoneGrades(probs, [1, 2, 3], [0.5, 2.5], 'exact')).toEqual([2, 2, 2]);
    // Input order is free: the same essays listed highest score first.
    expect(monotoneGrades([...probs].reverse(), [3, 2, 1], [0.5, 2.5], 'exact')).toEqual([2, 2, 2]);
    // One essay: its modal grade.
    expect(decideGrade([0.3, 0.3, 0.4], 'exact')).toBe(2);
    // Ties in expected agreement: nearest the reference (the median's grades), then lowest.
    const flat = [
      [0.5, 0.5],
      [0.5, 0.5],
    ];
    expect(exactGrades(flat, [1, 2], { reference: [0, 1] })).toEqual([0, 1]);
    expect(exactGrades(flat, [1, 2], { reference: [1, 1] })).toEqual([1, 1]);
    expect(exactGrades(flat, [1, 2])).toEqual([0, 0]);
    // A penalty on expected squared error pulls a split essay to its mean: [0.4, 0, 0.6] alone
    // takes grade 2 (0.6) without, grade 1 (0 − λ·1 vs 0.6 − λ·1.6) with λ = 1.
    expect(exactGrades([[0.4, 0, 0.6]], [0])).toEqual([2]);
    expect(exactGrades([[0.4, 0, 0.6]], [0], { squaredPenalty: 1 })).toEqual([1]);
  });

  it('exact: optimal among all monotone assignments, never below median, modal or mean (property)', () => {
    const rng = createRng(20261204, 'exact-grades');
    const objective = (p: number[][], g: number[], lambda = 0): number =>
      p.reduce(
        (t, pi, i) => t + pi[g[i]!]! - lambda * pi.reduce((u, q, h) => u + q * (g[i]! - h) ** 2, 0),
        0,
      );
    for (let trial = 0; trial < 300; trial++) {
      const n = 1 + rng.int(7);
      const k = 2 + rng.int(4);
      // Draw frequencies (as plan() reports them), so exact ties occur.
      const S = [4, 10, 200][rng.int(3)]!;
      const probs = Array.from({ length: n }, () => {
        const c = new Array<number>(k).fill(0);
        const centre = rng.int(k);
        for (let s = 0; s < S; s++) c[Math.min(k - 1, Math.max(0, centre + Math.round(rng.normal())))]!++;
        return c.map((x) => x / S);
      });
      // Scores with ties; sorted boundaries anywhere.
      const scores = Array.from({ length: n }, () => rng.int(5));
      const bounds = Array.from({ length: k - 1 }, () => 5 * rng.next() - 0.5).sort((a, b) => a - b);
      const lambda = rng.next() < 0.3 ? rng.next() : 0;
      const got =
        lambda > 0
          ? exactGrades(probs, scores, { squaredPenalty: lambda })
          : monotoneGrades(probs, scores, bounds, 'exact');
      expect(() => assertMonotone(scores, got)).not.toThrow();
      // Brute force over every grade vector monotone in the score.
      const order = Array.from({ length: n }, (_, t) => t).sort((x, y) => scores[x]! - scores[y]!);
      let best = Number.NEGATIVE_INFINITY;
      const g = new Array<number>(n).fill(0);
      const visit = (r: number, lo: number): void => {
        if (r === n) {
          best = Math.max(best, objective(probs, g, lambda));
          return;
        }
        for (let v = lo; v < k; v++) {
          g[order[r]!] = v;
          visit(r + 1, v);
        }
      };
      visit(0, 0);
      expect(objective(probs, got, lambda)).toBeCloseTo(best, 9);
      if (lambda === 0)
        for (const rule of ['median', 'modal', 'mean'] as const)
          expect(objective(probs, got)).toBeGreaterThanOrEqual(
            objective(probs, monotoneGrades(probs, scores, bounds, rule)) - 1e-9,
          );
    }
  });
});

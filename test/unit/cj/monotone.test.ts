/**
 * Property test: the headline grade never inverts the ranking. Random batches from a small
 * seeded generator (no property library needed): 3–20 grades, 0–3 anchors per grade (some
 * grades without anchors, anchors anywhere), fixed-score anchors, judges from consistent to
 * coin-flip, ties and soft wins, every grade decision rule, dense and sparse routes.
 */
import { describe, expect, it } from 'vitest';
import { assertMonotone, monotoneGrades } from '../../../runtime/src/cj/grades.js';
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
  const decisions = ['median', 'modal', 'mean'] as const;
  return {
    essays,
    grades,
    comparisons,
    settings: {
      seed: rng.int(1e9),
      gradeDecision: decisions[rng.int(3)]!,
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
});

import { describe, expect, it } from 'vitest';
import { gradeProjection, rearrangeAnchors } from '../../../runtime/src/cj/grades.js';
import { plan } from '../../../runtime/src/cj/plan.js';
import { createRng } from '../../../runtime/src/cj/rng.js';

/** `n` random pairs (self-pairs skipped), each judged by Bradley–Terry on `truth`; a fixed stream. */
function judged(ids: string[], truth: Map<string, number>, n: number) {
  const rng = createRng(3);
  const comparisons: { a: string; b: string; winner: 'a' | 'b' }[] = [];
  for (let t = 0; t < n; t++) {
    const a = ids[rng.int(ids.length)]!;
    const b = ids[rng.int(ids.length)]!;
    if (a === b) continue;
    const p = 1 / (1 + Math.exp(-(truth.get(a)! - truth.get(b)!)));
    comparisons.push({ a, b, winner: rng.next() < p ? 'a' : 'b' });
  }
  return comparisons;
}

describe('anchors rearranged into grade order', () => {
  it('hands the sorted anchor values out lowest grade first and leaves other items alone', () => {
    // Items 0, 1, 3, 4 are anchors of grades 1, 0, 0, 2; item 2 is a student.
    const anchors = [
      { item: 0, grade: 1 },
      { item: 1, grade: 0 },
      { item: 3, grade: 0 },
      { item: 4, grade: 2 },
    ];
    const draw = Float64Array.from([5, 3, 9, 1, 0]);
    const [out] = rearrangeAnchors([draw], anchors);
    // Sorted values 0, 1, 3, 5 to items 1, 3 (grade 0), 0 (grade 1), 4 (grade 2).
    expect(Array.from(out!)).toEqual([3, 0, 9, 1, 5]);
    expect(Array.from(draw)).toEqual([5, 3, 9, 1, 0]);
    // A draw already in grade order is returned as it is.
    const ordered = Float64Array.from([2, 0, 9, 1, 5]);
    expect(rearrangeAnchors([ordered], anchors)[0]).toBe(ordered);
  });

  it('without information, a student exchangeable with the anchors gets the outer grades less often', () => {
    // Every item an independent N(0, 1) per draw: the data say nothing. The student is then
    // equally likely in any of the 13 places among 12 anchors; a boundary at the midpoint of the
    // adjacent grade centres gives each outer grade 2.5 of them (the half place at its boundary and
    // the unbounded tail): 5/13 ≈ 0.385 for both. The anchors' draws taken as they are squeeze the
    // centres together (a centre averages its grade's anchors, wherever they fell) and give more.
    const K = 6;
    const rng = createRng(7);
    const draws = Array.from({ length: 4000 }, () =>
      Float64Array.from({ length: 2 * K + 1 }, () => rng.normal()),
    );
    const anchors = Array.from({ length: 2 * K }, (_, t) => ({ item: t + 1, grade: t % K }));
    const outer = (rearrange: boolean): number => {
      const p = gradeProjection(draws, anchors, K, [0], createRng(1), { rearrange }).rows[0]!.probabilities;
      return p[0]! + p[K - 1]!;
    };
    expect(Math.abs(outer(true) - 5 / 13)).toBeLessThan(0.025);
    expect(outer(false)).toBeGreaterThan(outer(true) + 0.04);
  });

  it('plan() with rearrangeAnchors: grades monotone in the score, anchors held out alike', () => {
    const grades = ['C', 'B', 'A'];
    const essays: { id: string; anchor?: { grade: string } }[] = [
      ...Array.from({ length: 12 }, (_, i) => ({ id: `s${String(i).padStart(2, '0')}` })),
      ...Array.from({ length: 6 }, (_, i) => ({ id: `a${i}`, anchor: { grade: grades[i % 3]! } })),
    ];
    const truth = new Map(
      essays.map((e, i) => [e.id, e.anchor ? grades.indexOf(e.anchor.grade) - 1 : (i - 6) / 4]),
    );
    const comparisons = judged(
      essays.map((e) => e.id),
      truth,
      40,
    );
    const base = plan({ essays, grades, comparisons, settings: { seed: 1, splitHalf: false } });
    const re = plan({
      essays,
      grades,
      comparisons,
      settings: { seed: 1, splitHalf: false, rearrangeAnchors: true },
    });
    expect(re.scores).toEqual(base.scores);
    expect(re.grades).toHaveLength(12);
    const score = new Map(re.scores.map((s) => [s.id, s.score]));
    const rank = new Map(grades.map((g, i) => [g, i]));
    const rows = [...re.grades].sort((x, y) => score.get(x.id)! - score.get(y.id)!);
    for (let t = 1; t < rows.length; t++)
      expect(rank.get(rows[t]!.assigned)!).toBeGreaterThanOrEqual(rank.get(rows[t - 1]!.assigned)!);
    expect(re.quality.calibration?.heldOut).toBe(6);
  });

  it('changes the reported grade probabilities, not the pairs chosen next', () => {
    // Selection reads the draws as they are: steered by the rearranged (more decided-looking)
    // probabilities it sent fewer comparisons to the anchors and lost exact agreement.
    const K = 6;
    const grades = Array.from({ length: K }, (_, g) => `G${g}`);
    const essays: { id: string; anchor?: { grade: string } }[] = [
      ...Array.from({ length: 30 }, (_, i) => ({ id: `s${String(i).padStart(2, '0')}` })),
      ...Array.from({ length: 2 * K }, (_, i) => ({ id: `a${i}`, anchor: { grade: grades[i % K]! } })),
    ];
    const truth = new Map(
      essays.map((e, i) => [
        e.id,
        e.anchor ? (grades.indexOf(e.anchor.grade) - (K - 1) / 2) * 0.8 : ((i - 15) / 30) * 0.8 * K,
      ]),
    );
    const comparisons = judged(
      essays.map((e) => e.id),
      truth,
      60,
    );
    const run = (rearrangeAnchors: boolean) =>
      plan({ essays, grades, comparisons, settings: { seed: 1, splitHalf: false, rearrangeAnchors } });
    const base = run(false);
    const re = run(true);
    expect(re.grades.map((g) => g.probabilities)).not.toEqual(base.grades.map((g) => g.probabilities));
    expect(re.nextPairs.length).toBeGreaterThan(0);
    expect(re.nextPairs).toEqual(base.nextPairs);
  });
});

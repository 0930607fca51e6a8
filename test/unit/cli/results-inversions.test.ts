// `kubectl cj results` checks that no essay's headline grade is above a higher-scored essay's.
import { describe, expect, it } from 'vitest';
import { resultsTable } from '../../../operator/src/cli/kubectl-cj.js';
import { gradeInversions } from '../../../operator/src/cli/render.js';

const essay = (essayId: string, score: number, assigned: string, anchor = false) => ({
  essayId,
  anchor,
  rank: 0,
  score,
  se: 0.3,
  grade: {
    assigned,
    assignedProbability: 0.6,
    modal: assigned,
    modalProbability: 0.6,
    expected: 1,
    interval80: [assigned, assigned] as [string, string],
    probabilities: [],
  },
});
const dist = ['C', 'B', 'A'].map((grade) => ({ grade, count: 0 }));

describe('grade inversions in the results table', () => {
  it('reports an essay graded above a higher-scored one (the demo case before issue 16)', () => {
    const r = {
      essays: [essay('essay-015', 1.32, 'B'), essay('essay-027', 1.28, 'A'), essay('e3', 0.1, 'C')],
      gradeDistribution: dist,
    };
    expect(gradeInversions(r).map(([hi, lo]) => [hi.essayId, lo.essayId])).toEqual([
      ['essay-015', 'essay-027'],
    ]);
    expect(resultsTable(r).split('\n').at(-1)).toBe(
      '! grade inversions (an essay graded above a higher-scored one; please report): essay-027 (A, 1.28) over essay-015 (B, 1.32)',
    );
  });

  it('finds none when grades fall with the score; equal scores may differ, anchors do not count', () => {
    const r = {
      essays: [
        essay('e1', 2, 'A'),
        essay('e2', 1, 'B'),
        essay('e3', 1, 'A'),
        essay('anchor', 0.5, 'A', true),
        essay('e4', 0, 'C'),
      ],
      gradeDistribution: dist,
    };
    expect(gradeInversions(r)).toEqual([]);
    expect(resultsTable(r)).not.toContain('inversion');
  });

  it('compares against the lowest grade above, across a run of equal scores', () => {
    const r = {
      essays: [essay('e1', 2, 'B'), essay('e2', 2, 'C'), essay('e3', 1, 'B'), essay('e4', 0, 'A')],
      gradeDistribution: dist,
    };
    expect(gradeInversions(r).map(([hi, lo]) => [hi.essayId, lo.essayId])).toEqual([
      ['e2', 'e3'],
      ['e2', 'e4'],
    ]);
  });
});

// `kubectl cj results`: flagged essays are marked in the table and listed under it (ids and kinds only).
import { describe, expect, it } from 'vitest';
import { resultsTable } from '../../../operator/src/cli/kubectl-cj.js';

describe('resultsTable', () => {
  it('marks essays with possible prompt injection and lists them with their kinds', () => {
    const grade = {
      assigned: 'B',
      assignedProbability: 0.5,
      modal: 'B',
      modalProbability: 0.5,
      expected: 1.2,
      interval80: ['C', 'B'] as [string, string],
    };
    const out = resultsTable({
      essays: [
        {
          essayId: 'e1',
          anchor: false,
          rank: 1,
          score: 1,
          se: 0.3,
          grade: { ...grade, assigned: 'C', assignedProbability: 0.3, probabilities: [] },
        },
        {
          essayId: 'e2',
          anchor: false,
          rank: 2,
          score: 0.5,
          se: 0.3,
          grade: { ...grade, probabilities: [] },
          flags: ['injection:instruction_override'],
        },
        { essayId: 'a1', anchor: true, rank: 3, score: 0, se: 0.3, flags: ['injection:role_play'] },
      ],
      gradeDistribution: [{ grade: 'B', count: 2 }],
    });
    const lines = out.split('\n');
    expect(lines.find((l) => l.includes(' e1 '))).not.toMatch(/!$/);
    // The headline grade is the assigned one (posterior median by default), not the modal one.
    expect(lines.find((l) => l.includes(' e1 '))).toMatch(/ C +0\.30 /);
    expect(lines.find((l) => l.includes(' e2 '))).toMatch(/ {2}!$/);
    expect(lines.at(-1)).toBe(
      '! possible prompt injection (judged as data; worth a read): e2 (instruction_override)',
    );
  });

  it('numbers the class 1..n in rank order, skipping the places anchors hold', () => {
    const e = (essayId: string, rank: number, anchor = false) => ({
      essayId,
      anchor,
      rank,
      score: -rank,
      se: 0.3,
    });
    const out = resultsTable({
      essays: [e('s3', 4), e('a1', 1, true), e('s1', 2), e('a2', 3, true), e('s2', 3.5)],
      gradeDistribution: [],
    });
    const rows = out.split('\n').slice(1, 4);
    expect(rows.map((l) => l.trim().split(/ +/).slice(0, 2))).toEqual([
      ['1', 's1'],
      ['2', 's2'],
      ['3', 's3'],
    ]);
    expect(out).not.toContain('a1');
  });

  it('has no flag line when nothing is flagged', () => {
    const out = resultsTable({ essays: [], gradeDistribution: [] });
    expect(out).not.toContain('prompt injection');
  });
});

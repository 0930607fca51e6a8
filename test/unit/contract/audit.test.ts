// The audit's pure parts: pairs where the LLM and the model disagree most come first, the rest at
// random, each pair once and in either order; the Wilson interval matches known values; answers
// from the tenant's ConfigMap are checked; the agreement counts the LLM's majority per pair.
import { describe, expect, it } from 'vitest';
import {
  AuditAnswersError,
  agreementSentence,
  auditReport,
  type JudgedPair,
  parseAuditAnswers,
  selectAuditPairs,
  wilson,
} from '../../../contract/src/audit.js';

const judged: JudgedPair[] = Array.from({ length: 60 }, (_, i) => ({
  a: `e${i}`,
  b: `e${i + 1}`,
  llmWinner: `e${i}`,
  // The model gives the LLM's pick a probability rising with i: e0..e4 are the worst disagreements.
  pModel: 0.05 + i * 0.015,
}));

describe('selectAuditPairs', () => {
  it('takes the strongest disagreements and random others, each pair once, without verdicts', () => {
    const p = selectAuditPairs([...judged, { ...judged[0]!, a: 'e1', b: 'e0' }], 20, 7);
    expect(p).toHaveLength(20);
    const ids = new Set(p.map((x) => [x.a, x.b].sort().join('|')));
    expect(ids.size).toBe(20);
    for (let i = 0; i < 10; i++)
      expect(ids.has([`e${i}`, `e${i + 1}`].sort().join('|')), `pair ${i}`).toBe(true);
    expect(Object.keys(p[0]!).sort()).toEqual(['a', 'b', 'id']);
    // Shown in either order: the LLM's first essay is not always first for the teacher.
    const flipped = p.filter((x) => Number(x.a.slice(1)) > Number(x.b.slice(1))).length;
    expect(flipped).toBeGreaterThan(2);
    expect(flipped).toBeLessThan(18);
    expect(selectAuditPairs(judged, 20, 7)).toEqual(selectAuditPairs(judged, 20, 7));
    expect(selectAuditPairs(judged, 20, 8)).not.toEqual(selectAuditPairs(judged, 20, 7));
  });

  it('returns every pair when there are fewer than asked', () => {
    expect(selectAuditPairs(judged.slice(0, 5), 20, 1)).toHaveLength(5);
  });
});

describe('wilson', () => {
  it('matches the textbook 95% interval', () => {
    const [lo, hi] = wilson(16, 20);
    expect(lo).toBeCloseTo(0.584, 3);
    expect(hi).toBeCloseTo(0.919, 3);
    expect(wilson(0, 0)).toEqual([0, 1]);
    expect(wilson(20, 20)[1]).toBe(1);
  });
});

describe('parseAuditAnswers', () => {
  const pairs = [
    { id: 'p1', a: 'e1', b: 'e2' },
    { id: 'p2', a: 'e3', b: 'e4' },
  ];
  it('accepts winners of the pair, null for skipped, and defaults the judge', () => {
    const r = parseAuditAnswers(
      JSON.stringify({
        answers: [
          { id: 'p1', winner: 'e2', seconds: 4.5 },
          { id: 'p2', winner: null },
        ],
      }),
      pairs,
    );
    expect(r).toEqual({
      judge: 'teacher',
      answers: [
        { id: 'p1', winner: 'e2', seconds: 4.5 },
        { id: 'p2', winner: null },
      ],
    });
  });
  it.each([
    ['not json', /is not JSON/],
    ['{"answers": {}}', /must be/],
    ['{"judge": "", "answers": []}', /judge must be/],
    ['{"answers": [{"id": "p9", "winner": "e1"}]}', /answers\[0\]\.id is not one of the pairs/],
    ['{"answers": [{"id": "p1", "winner": "e3"}]}', /answers\[0\]\.winner must be "e1", "e2" or null/],
    ['{"answers": [{"id": "p1", "winner": "e1"}, {"id": "p1", "winner": "e2"}]}', /answered twice/],
  ])('refuses %s', (text, msg) => {
    expect(() => parseAuditAnswers(text, pairs)).toThrow(AuditAnswersError);
    expect(() => parseAuditAnswers(text, pairs)).toThrow(msg);
  });
});

describe('auditReport', () => {
  it("counts the LLM's majority per pair, skips, the model's agreement and the interval", () => {
    const pairs = [
      { id: 'p1', a: 'e2', b: 'e1' },
      { id: 'p2', a: 'e3', b: 'e4' },
      { id: 'p3', a: 'e5', b: 'e6' },
    ];
    const verdicts = [
      { a: 'e1', b: 'e2', winner: 'e1' },
      { a: 'e2', b: 'e1', winner: 'e2' },
      { a: 'e1', b: 'e2', winner: 'e2' }, // majority e2 over both orders
      { a: 'e3', b: 'e4', winner: 'e3' },
      { a: 'e5', b: 'e6', winner: 'e6' },
    ];
    const theta = new Map([
      ['e1', 1],
      ['e2', 0],
      ['e3', 0],
      ['e4', 1],
    ]);
    const r = auditReport(
      pairs,
      [
        { id: 'p1', winner: 'e2' },
        { id: 'p2', winner: 'e4' },
        { id: 'p3', winner: null },
      ],
      verdicts,
      theta,
    );
    expect(r.decisions).toEqual([
      { essayA: 'e2', essayB: 'e1', human: 'e2', llm: 'e2', model: 'e1' },
      { essayA: 'e3', essayB: 'e4', human: 'e4', llm: 'e3', model: 'e4' },
    ]);
    expect([r.pairs, r.judged, r.skipped, r.agreements, r.modelAgreements]).toEqual([3, 2, 1, 1, 1]);
    expect(r.agreement).toBe(0.5);
    expect(r.interval95).toEqual(wilson(1, 2));
    expect(agreementSentence(r)).toBe(
      'The teacher agreed with the AI judge on 1 of 2 pairs (50%, 95% CI 9–91%)',
    );
  });
});

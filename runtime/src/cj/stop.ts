/**
 * Stopping rules. Hard stops come first: the budget (judged + pending comparisons), and
 * completion of small sets, where the denominator is the number of distinct pairs n(n−1)/2
 * (4 essays → 6 pairs), so a small batch finishes as soon as every pair is judged.
 *
 * Otherwise the batch stops only when every check passes (the R package pairwiseLLM's rule,
 * extended to grades). Lagged checks compare with the snapshot `lag` refits back, so one lucky round cannot
 * stop a batch (HuleEdu's single-wave max|Δθ| can, and is scale-dependent):
 * - connected: all essays on one scale;
 * - min per essay: every essay has at least `minPerEssay` judged comparisons;
 * - reliability: EAP reliability ≥ target (reliability.ts);
 * - rank stability: Spearman(current scores, lagged scores) ≥ target;
 * - grade stability: share of essays whose modal grade changed since the lag ≤ target;
 * - grade confidence: mean posterior P(modal grade) ≥ target.
 * Grade checks are skipped when there are no usable anchors.
 */
import type { z } from 'zod';
import type { Check, Decision } from './types.js';

type CheckT = z.output<typeof Check>;
type DecisionT = z.output<typeof Decision>;

export interface StopInput {
  judged: number;
  pending: number;
  budget: number;
  distinctPairs: number;
  distinctJudged: number;
  connected: boolean;
  minComparisons: number;
  eap: number;
  expectedSpearman?: number;
  rankSpearman: number;
  gradeChangeShare: number;
  meanModalProbability: number;
  hasGrades: boolean;
  targets: {
    minPerEssay: number;
    reliability: number;
    expectedSpearman?: number;
    rankStability: number;
    maxGradeChanges: number;
    gradeConfidence: number;
  };
}

const orNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

export function decide(s: StopInput): DecisionT {
  const t = s.targets;
  const checks: CheckT[] = [
    { name: 'connected', value: s.connected ? 1 : 0, target: 1, pass: s.connected },
    {
      name: 'minPerEssay',
      value: s.minComparisons,
      target: t.minPerEssay,
      pass: s.minComparisons >= t.minPerEssay,
    },
    { name: 'reliability', value: orNull(s.eap), target: t.reliability, pass: s.eap >= t.reliability },
  ];
  if ((t.expectedSpearman ?? 0) > 0)
    checks.push({
      name: 'expectedSpearman',
      value: orNull(s.expectedSpearman ?? Number.NaN),
      target: t.expectedSpearman!,
      pass: (s.expectedSpearman ?? Number.NaN) >= t.expectedSpearman!,
    });
  checks.push({
    name: 'rankStability',
    value: orNull(s.rankSpearman),
    target: t.rankStability,
    pass: s.rankSpearman >= t.rankStability,
  });
  if (s.hasGrades) {
    checks.push(
      {
        name: 'gradeStability',
        value: orNull(s.gradeChangeShare),
        target: t.maxGradeChanges,
        pass: s.gradeChangeShare <= t.maxGradeChanges,
      },
      {
        name: 'gradeConfidence',
        value: orNull(s.meanModalProbability),
        target: t.gradeConfidence,
        pass: s.meanModalProbability >= t.gradeConfidence,
      },
    );
  }
  if (s.distinctPairs > 0 && s.distinctJudged >= s.distinctPairs)
    return { action: 'stop', reason: 'complete', checks };
  if (s.judged >= s.budget) return { action: 'stop', reason: 'budget', checks };
  if (checks.every((c) => c.pass)) return { action: 'stop', reason: 'converged', checks };
  if (s.judged + s.pending >= s.budget) return { action: 'continue', reason: 'waiting', checks };
  return { action: 'continue', reason: 'continue', checks };
}

/**
 * The plan() contract, described once as zod schemas; TypeScript types and docs/plan-schema.json
 * are derived from these. Everything is JSON: ids are strings, grades are labels, and the state a
 * lagged stopping rule needs (earlier rounds' scores and grades) is passed back in as `history`,
 * so plan() stays a pure function of its input.
 */
import { z } from 'zod';

const id = z.string().min(1);

export const Essay = z
  .object({
    id,
    anchor: z
      .object({
        grade: z.string().min(1).describe('Known grade; one of `grades`.'),
        score: z.number().optional().describe('Fixed score from an earlier calibration run (logits).'),
      })
      .optional()
      .describe('Present for anchor essays (known grade).'),
  })
  .describe('An essay or an anchor.');

export const Comparison = z
  .object({
    a: id.describe('Essay shown first (slot A).'),
    b: id.describe('Essay shown second (slot B).'),
    winner: z.enum(['a', 'b', 'tie']),
    confidence: z
      .number()
      .min(0.5)
      .max(1)
      .optional()
      .describe("Judge's probability that the chosen essay is better; makes the win fractional."),
  })
  .describe('One judged comparison.');

export const PendingPair = z
  .object({ a: id, b: id })
  .describe('A pair already scheduled but not judged yet.');

export const Snapshot = z
  .object({
    comparisons: z.number().int().min(0).describe('Judged comparisons when the snapshot was taken.'),
    scores: z.record(z.string(), z.number()).describe('Score per essay id.'),
    grades: z.record(z.string(), z.number().int()).optional().describe('Modal grade index per essay id.'),
    priorSd: z.number().positive().optional().describe('Estimated prior SD (warm start for the next call).'),
    expectedSpearman: z
      .number()
      .optional()
      .describe('quality.expectedSpearman of that call (the expectedSpearman check needs two in a row).'),
  })
  .describe('What an earlier plan() returned as `snapshot`; append it to `history` for the next call.');

export const Stopping = z.object({
  lag: z.number().int().min(1).default(2).describe('Compare with the refit this many snapshots back.'),
  rankStability: z
    .number()
    .min(0)
    .max(1)
    .default(0.99)
    .describe('Min Spearman of scores vs the lagged refit.'),
  maxGradeChanges: z
    .number()
    .min(0)
    .max(1)
    .default(0.25)
    .describe('Max share of modal grades changed vs lag.'),
  reliability: z.number().min(0).max(1).default(0.88).describe('Min EAP reliability.'),
  expectedSpearman: z
    .number()
    .min(0)
    .max(1)
    .default(0.95)
    .describe(
      'Min posterior expected Spearman with the true order (quality.expectedSpearman), in this call and in the latest snapshot of `history` when it has one; 0 disables.',
    ),
  gradeConfidence: z.number().min(0).max(1).default(0.55).describe('Min mean posterior P(modal grade).'),
  minPerEssay: z.number().int().min(0).default(4).describe('Min judged comparisons per essay.'),
});

export const Settings = z.object({
  seed: z.union([z.string(), z.number()]).default('cj').describe('Seeds every random choice.'),
  roundSize: z.number().int().min(1).default(20).describe('Pairs per round (size it for parallel workers).'),
  budget: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('Max comparisons (judged + pending); default 20 per essay.'),
  maxPerEssay: z.number().int().min(1).default(60),
  maxPerRound: z.number().int().min(1).default(2).describe('Max pairs per essay within one round.'),
  reverseShare: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe('Max share of a round spent on both-order checks.'),
  priorSd: z
    .number()
    .positive()
    .default(2.5)
    .describe('Prior SD of scores (logits); with estimatePriorSd the centre of its weak hyperprior.'),
  anchorOrderSd: z
    .number()
    .min(0)
    .default(0)
    .describe(
      'Softness (logits) of the constraint that an anchor of a higher grade scores higher; 0 (default) disables it. It leaks the grade into leave-one-anchor-out calibration.',
    ),
  estimatePriorSd: z
    .boolean()
    .default(false)
    .describe('Estimate the prior SD from the data (empirical Bayes) instead of fixing it.'),
  priorSdPseudoCount: z
    .number()
    .min(0)
    .default(5)
    .describe('Weight (in essays) of priorSd when the prior SD is estimated.'),
  biasPriorSd: z.number().min(0).default(0.5).describe('Prior SD of the slot-A bias; 0 disables it.'),
  lapsePrior: z
    .object({ alpha: z.number().positive().default(2), beta: z.number().positive().default(20) })
    .default({ alpha: 2, beta: 20 }),
  lapse: z.number().min(0).max(0.5).optional().describe('Fix the lapse rate instead of estimating it.'),
  draws: z.number().int().min(20).default(400).describe('Posterior draws for grade probabilities.'),
  rankDensityPower: z
    .number()
    .min(0)
    .default(1)
    .describe(
      'Weight essays by (local density of competitors)^power in the design; 2 = rank variance, 0 = flat.',
    ),
  rankFocus: z
    .number()
    .min(0)
    .default(20)
    .describe(
      'Design weight of the rank-variance contrasts (delta-method Var of each rank; exact-covariance route), relative to gradeFocus; 0 = per-essay rank weights (rankDensityPower) instead.',
    ),
  gradeFocus: z.number().min(0).default(4).describe('Extra design weight for essays with undecided grades.'),
  gradeDecision: z
    .enum(['modal', 'median', 'mean', 'exact'])
    .default('median')
    .describe(
      'Rule for the assigned (headline) grade from the grade probabilities: modal = most probable grade; median = posterior median (least expected absolute error); mean = rounded posterior mean (least expected squared error); exact = the grades, non-decreasing in the score, with the most expected exact agreements (ties: nearest the median). Pair selection and stopping use the modal grade either way.',
    ),
  boundaryScale: z
    .enum(['population', 'score'])
    .default('score')
    .describe(
      "Where grade centres and their midpoints are taken: population = on the non-anchor essays' distribution (rank) scale, robust to unequal bands and to anchors anywhere inside their band (needs ≥ 10 non-anchor essays; fewer fall back to score); score = on the score scale.",
    ),
  rearrangeAnchors: z
    .boolean()
    .default(false)
    .describe(
      "Grade boundaries from posterior draws with the anchors' scores rearranged into the order of their known grades (per draw the anchors' sorted scores are handed out lowest grade first). The posterior ignores the anchors' grades, so an anchor with few comparisons is drawn near the middle whatever its grade, which squeezes the boundaries together and puts too much probability on the outer grades. Reported grades only: pair selection reads the draws as they are.",
    ),
  gradeTargets: z
    .enum(['jacobian', 'nearest'])
    .default('nearest')
    .describe(
      "Design targets for grades: jacobian = delta-method variance of each essay's grade over all boundaries (weights from the expected change in grade accuracy); nearest = the essay against its nearest boundary, weighted by 1 − P(modal).",
    ),
  widenByAnchors: z
    .boolean()
    .default(true)
    .describe(
      "Widen every essay's uncertainty by the judge's extra per-essay SD when the anchors' misperception test rejects a consistent judge (misperceptionAlpha).",
    ),
  misperceptionAlpha: z
    .number()
    .min(0)
    .max(1)
    .default(0.1)
    .describe(
      "Level of the anchors' misperception test (quality.judge.misperceptionP ≤ this widens): its false-positive rate on a consistent judge; also 1 − the confidence of quality.judge.extraSdUpper.",
    ),
  misperceptionPlacement: z
    .enum(['uniform', 'anywhere'])
    .default('uniform')
    .describe(
      'Where the misperception test assumes anchors sit in their band: uniform (spread w²/12); anywhere = no assumption (the test uses the largest spread any placement allows, w²/4, and the upper bound the smallest, 0): calibrated for any placement, less power, wider range.',
    ),
  anchorWeight: z
    .number()
    .min(0)
    .default(0.5)
    .describe('Design weight of anchor scores (they set boundaries).'),
  bridgeBonus: z.number().min(0).default(2).describe('Relative bonus for pairs joining graph components.'),
  splitHalf: z.boolean().default(true).describe('Compute split-half reliability (two extra fits).'),
  stopping: Stopping.default(Stopping.parse({})),
});

export const PlanInput = z
  .object({
    essays: z.array(Essay).min(1),
    grades: z.array(z.string().min(1)).default([]).describe('Grade labels, lowest first.'),
    comparisons: z.array(Comparison).default([]),
    pending: z.array(PendingPair).default([]),
    history: z.array(Snapshot).default([]).describe('Snapshots of earlier plan() calls, oldest first.'),
    settings: Settings.default(Settings.parse({})),
  })
  .superRefine((input, ctx) => {
    const ids = new Set<string>();
    input.essays.forEach((e, i) => {
      if (ids.has(e.id))
        ctx.addIssue({ code: 'custom', path: ['essays', i, 'id'], message: `duplicate id ${e.id}` });
      ids.add(e.id);
      if (e.anchor && !input.grades.includes(e.anchor.grade))
        ctx.addIssue({
          code: 'custom',
          path: ['essays', i, 'anchor', 'grade'],
          message: `grade ${e.anchor.grade} is not in grades`,
        });
    });
    const check = (list: { a: string; b: string }[], name: string) =>
      list.forEach((c, i) => {
        for (const side of ['a', 'b'] as const)
          if (!ids.has(c[side]))
            ctx.addIssue({ code: 'custom', path: [name, i, side], message: `unknown essay ${c[side]}` });
        if (c.a === c.b)
          ctx.addIssue({ code: 'custom', path: [name, i], message: 'an essay compared with itself' });
      });
    check(input.comparisons, 'comparisons');
    check(input.pending, 'pending');
  });

const num = z.number().nullable().describe('null when undefined (for example too few essays).');

export const ScoreOut = z.object({
  id,
  score: z.number().describe('Posterior mean (MAP) score, logits.'),
  sd: z.number().describe('Posterior SD (Laplace).'),
  rank: z.number().int().describe('1 = best.'),
  comparisons: z.number().int(),
  slotAShare: num,
  component: z.number().int().describe('Index into quality.connectivity.components.'),
  anchor: z.boolean(),
  infit: num.optional().describe('Information-weighted mean square residual of its comparisons (≈ 1 fits).'),
  outfit: num.optional().describe('Unweighted mean square residual of its comparisons (≈ 1 fits).'),
  misfit: z
    .boolean()
    .optional()
    .describe(
      'Infit above the mean + 2 SD over essays with ≥ 6 comparisons: the judge is inconsistent about it.',
    ),
});

export const GradeOut = z.object({
  id,
  probabilities: z.array(z.number()).describe('P(grade), aligned with input `grades`.'),
  assigned: z
    .string()
    .describe('The headline grade: chosen from the probabilities by settings.gradeDecision; show this one.'),
  assignedProbability: z.number().describe('P(assigned grade).'),
  modal: z.string().describe('Most probable grade (equals `assigned` when gradeDecision is modal).'),
  modalProbability: z.number(),
  expected: z.number().describe('Expected grade index (0 = lowest grade).'),
  interval80: z.tuple([z.string(), z.string()]),
});

export const Check = z.object({ name: z.string(), value: num, target: z.number(), pass: z.boolean() });

export const Decision = z.object({
  action: z.enum(['continue', 'stop']),
  reason: z.enum(['converged', 'budget', 'complete', 'exhausted', 'continue', 'waiting']),
  checks: z.array(Check),
});

export const Calibration = z.object({
  heldOut: z.number().int(),
  exact: num,
  adjacent: num,
  qwk: num,
  coverage80: num,
  brier: num,
  anchors: z.array(
    z.object({
      id,
      grade: z.string(),
      predicted: z.string().describe('Assigned grade (settings.gradeDecision) from the other anchors.'),
      interval80: z.tuple([z.string(), z.string()]),
    }),
  ),
});

export const PlanOutput = z.object({
  scores: z.array(ScoreOut),
  grades: z.array(GradeOut).describe('Non-anchor essays; empty without anchors of two or more grades.'),
  stability: z.object({
    lag: z.number().int(),
    lagComparisons: z.number().int().nullable(),
    rankSpearman: num,
    gradeChangeShare: num,
  }),
  decision: Decision,
  nextPairs: z.array(
    z.object({ a: id, b: id, reason: z.enum(['start', 'bridge', 'info', 'reverse', 'complete']) }),
  ),
  quality: z.object({
    reliability: z.object({ eap: num, splitHalf: num }),
    judge: z.object({
      lapse: z
        .number()
        .describe(
          "The model's effective lapse rate (joint MAP); biased low as an estimate of the judge's true lapse rate (docs/cj-engine.md).",
        ),
      bias: z.number(),
      biasSd: z.number(),
      aWinShare: num,
      reversedPairs: z.number().int(),
      positionConsistency: num,
      extraSd: z
        .number()
        .optional()
        .describe(
          "Judge's extra per-essay SD (logits) estimated from held-out anchors' distance from their known grades (reported, not applied: its likelihood-ratio test is not calibrated).",
        ),
      extraSdLr: z.number().optional().describe('Likelihood-ratio statistic of extraSd against 0.'),
      anchorSpread: num
        .optional()
        .describe(
          "Anchors' within-grade spread over what their bands' widths explain (≈ 1 for a judge that perceives essays as they are; null with fewer than 2 anchors in inner grades).",
        ),
      anchorSpreadZ: num
        .optional()
        .describe(
          "Normal deviate (Wilson–Hilferty) of the χ² test of the anchors' within-grade spread against no extra SD, posterior variance included; null when anchorSpread is.",
        ),
      extraSdApplied: z
        .number()
        .optional()
        .describe(
          "Extra SD added to every essay when the anchors' misperception test rejects a consistent judge (the test's maximum-likelihood estimate), else 0: uncertainty, grade probabilities and claims are widened by it.",
        ),
      misperception: z
        .enum(['widened', 'bounded', 'unknown'])
        .optional()
        .describe(
          "What the anchors say about a persistent per-essay misperception (invisible in the judge's own comparisons): widened = the test rejects a consistent judge and claims are widened by extraSdApplied; bounded = not shown, and even the upper bound extraSdUpper would lower expectedSpearman by ≤ 0.02; unknown = the anchors cannot tell (too few or too imprecise): the truth may be as low as expectedSpearmanLow.",
        ),
      misperceptionP: num
        .optional()
        .describe(
          "p-value of the anchors' misperception test (χ² of whitened within-grade anchor contrasts); null when no grade has 2 anchors between anchored neighbours.",
        ),
      misperceptionDf: z.number().int().optional().describe('Degrees of freedom of that test (0: no test).'),
      extraSdUpper: num
        .optional()
        .describe(
          "Upper (1 − misperceptionAlpha) confidence bound on the judge's extra per-essay SD (logits) from the same test; null without a test.",
        ),
    }),
    connectivity: z.object({
      connected: z.boolean(),
      components: z.array(z.object({ size: z.number().int(), fixedScale: z.boolean(), essays: z.array(id) })),
    }),
    meanModalProbability: num,
    calibration: Calibration.nullable(),
    priorSd: z.number().optional().describe('Prior SD of scores used in the fit (estimated or fixed).'),
    expectedSpearman: num
      .optional()
      .describe(
        'Model-based: posterior expected Spearman between true and reported scores (non-anchor essays), widened by judge.extraSdApplied; the stop rule uses it.',
      ),
    expectedSpearmanConsistent: num
      .optional()
      .describe(
        'The same, assuming the judge perceives every essay consistently (no extra SD): the top of the range.',
      ),
    expectedSpearmanLow: num
      .optional()
      .describe(
        'The same with the extra SD at judge.extraSdUpper (or extraSdApplied if larger): the bottom of the range the anchors cannot rule out; null when they cannot bound it at all (no test).',
      ),
    comparisonsPerAnchor: num.optional().describe('Mean judged comparisons per anchor.'),
    comparisonsPerStudent: num.optional().describe('Mean judged comparisons per non-anchor essay.'),
    misfit: z
      .object({ threshold: num, flagged: z.number().int(), essays: z.array(id) })
      .optional()
      .describe('Essays whose infit exceeds the threshold (mean + 2 SD over essays).'),
  }),
  counts: z.object({
    essays: z.number().int(),
    comparisons: z.number().int(),
    pending: z.number().int(),
    distinctPairs: z.number().int(),
    budget: z.number().int(),
  }),
  snapshot: Snapshot,
});

export type PlanInputJson = z.input<typeof PlanInput>;
export type PlanState = z.output<typeof PlanInput>;
export type PlanSettings = z.output<typeof Settings>;
export type PlanResult = z.output<typeof PlanOutput>;

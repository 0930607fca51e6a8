// CJBatch: one comparative-judgement run over a set of essays, graded through anchor essays.
// The zod schemas below are the single source of truth (see pool.ts for how they are used).

import { z } from 'zod';
import { BATCHING_MODES } from '../../../contract/src/pool-runtime.js';
import { ABSOLUTE_MAX, LIMIT_FIELDS, type LimitField } from '../../../contract/src/tiers.js';
import type { ObjectMeta } from '../kube/rest.js';
import {
  type API_VERSION,
  basisPoints,
  ConfigMapKeyRefSchema,
  conditions,
  counter,
  duration,
  identifier,
  objectName,
  quantity,
  type TwinRule,
  time,
  withRules,
} from './common.js';
import {
  codePoints,
  ESSAY_TEXT_MAX_LENGTH,
  emptyEssayMessage,
  emptyOrNulProblem,
  longEssayCelMessage,
  longEssayMessage,
  MAX_ESSAY_CHARS,
  NOT_BLANK_CEL,
} from './essay-size.js';

export const MAX_INLINE_ESSAYS = 500;
export const MAX_ANCHORS = 100;
export const MAX_GRADES = 20;
export const MAX_CONFIGMAP_REFS = 50;

/** Text given inline (`value`) or read from a ConfigMap key; exactly one of the two. */
const textSource = (what: string, maxChars: number) =>
  withRules(
    z
      .object({
        value: z.string().max(maxChars).optional().describe(`The ${what} inline.`),
        configMapKeyRef: ConfigMapKeyRefSchema.optional().describe(`A ConfigMap key holding the ${what}.`),
      })
      .describe(`The ${what}: inline in value, or in a ConfigMap key via configMapKeyRef (exactly one).`),
    [
      {
        field: '',
        cel: {
          rule: 'has(self.value) != has(self.configMapKeyRef)',
          message: `set exactly one of value or configMapKeyRef for the ${what}`,
          reason: 'FieldValueInvalid',
        },
        check: (t) =>
          (t.value !== undefined) === (t.configMapKeyRef !== undefined)
            ? `set exactly one of value or configMapKeyRef for the ${what}`
            : undefined,
      },
    ],
  );

export const AssignmentSchema = z
  .object({
    title: textSource('assignment title', 1_000),
    instructions: textSource('assignment instructions given to students', 20_000),
    rubric: textSource('rubric the judge applies', 20_000),
  })
  .describe('The assignment the essays answer; the judge sees it in every comparison prompt.');

/**
 * CEL rules on the text of an essay or anchor (`what`): not empty or whitespace only, and within
 * the static size bound (see essay-size.ts). The CRD keeps maxLength as the cost bound of other
 * rules; this rule adds a message naming the essay, its size and the fix. `optional`: anchors may
 * take their text from a ConfigMap instead.
 */
function essayTextRules<T extends { id: string; text?: string | undefined }>(
  what: string,
  optional: boolean,
): TwinRule<T>[] {
  const guard = optional ? '!has(self.text) || ' : '';
  return [
    {
      field: 'text',
      cel: {
        rule: `${guard}self.text.${NOT_BLANK_CEL}`,
        messageExpression: `'${emptyEssayMessage(what, '%s')}'.format([self.id])`,
        fieldPath: '.text',
        reason: 'FieldValueRequired',
      },
      // Stricter than the CEL rule: also whitespace-only and NUL (see essay-size.ts).
      check: (e) => (e.text === undefined ? undefined : emptyOrNulProblem(what, e.id, e.text)),
    },
    {
      field: 'text',
      cel: {
        rule: `${guard}size(self.text) <= ${MAX_ESSAY_CHARS}`,
        messageExpression: longEssayCelMessage(what),
        fieldPath: '.text',
        reason: 'FieldValueInvalid',
      },
      check: (e) => {
        const chars = e.text === undefined ? 0 : codePoints(e.text);
        return chars > MAX_ESSAY_CHARS ? longEssayMessage(what, e.id, chars) : undefined;
      },
    },
  ];
}

// Essay text: no zod .min/.max, so the CLI and the controller report the rules' messages; the
// CRD still gets maxLength (the CEL cost bound of the immutability rule).
const essayText = (description: string) =>
  z.string().meta({ maxLength: ESSAY_TEXT_MAX_LENGTH }).describe(description);

/**
 * A grade: 1..16 characters, words separated by single spaces, no control characters. Grades
 * appear in CEL messages, results, CSV and events, where a line break or control character
 * would garble them (the apiserver refuses a CEL message with a line break and falls back).
 */
export const GRADE_PATTERN = '^[^\\s\\p{Cc}]+( [^\\s\\p{Cc}]+)*$';
const gradeName = (description: string) =>
  z
    .string()
    .min(1)
    .max(16)
    .regex(new RegExp(GRADE_PATTERN, 'u'), {
      error:
        'a grade is 1-16 characters without line breaks, tabs or control characters, e.g. A, B+ or Merit',
    })
    .describe(description);

export const EssaySchema = withRules(
  z
    .object({
      id: identifier('Essay id, unique in the batch; results and events refer to it.'),
      text: essayText(
        `The essay text: not blank, at most ${MAX_ESSAY_CHARS} characters (see docs/admission.md, "Essay size").`,
      ),
    })
    .describe('One essay.'),
  essayTextRules('essay', false),
);
export type Essay = z.infer<typeof EssaySchema>;

export const ESSAY_FORMATS = ['perKey', 'jsonl'] as const;

export const EssaysConfigMapRefSchema = z
  .object({
    name: objectName('Name of a ConfigMap in the batch namespace.'),
    format: z
      .enum(ESSAY_FORMATS)
      .default('perKey')
      .describe(
        'perKey: each data key is an essay id and its value the text. jsonl: every key holds lines ' +
          'of JSON objects {"id": ..., "text": ...}.',
      ),
  })
  .describe('A ConfigMap holding essays.');

export const EssaysSchema = z
  .object({
    inline: z
      .array(EssaySchema)
      .min(1)
      .max(MAX_INLINE_ESSAYS)
      .optional()
      .describe(`Essays listed in the spec (up to ${MAX_INLINE_ESSAYS}; mind the 1.5 MB object limit).`)
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] }),
    configMapRefs: z
      .array(EssaysConfigMapRefSchema)
      .min(1)
      .max(MAX_CONFIGMAP_REFS)
      .optional()
      .describe('ConfigMaps holding the essays, for sets too large to list inline.')
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
  })
  .describe('The essays to rank: exactly one of inline or configMapRefs. Immutable after creation.');

export const AnchorSchema = withRules(
  z
    .object({
      id: identifier('Anchor id, unique in the batch and distinct from every essay id.'),
      grade: gradeName('The known grade of the anchor; must be in spec.gradeScale.grades.'),
      text: essayText('The anchor essay text, inline (same bounds as an essay).').optional(),
      configMapKeyRef: ConfigMapKeyRefSchema.optional().describe('A ConfigMap key holding the anchor text.'),
    })
    .describe('An essay with a known grade; anchors place grade boundaries on the fitted scale.'),
  [
    {
      field: '',
      cel: {
        rule: 'has(self.text) != has(self.configMapKeyRef)',
        messageExpression: "'anchor ' + self.id + ' must set exactly one of text or configMapKeyRef'",
        reason: 'FieldValueInvalid',
      },
      check: (a) =>
        (a.text !== undefined) === (a.configMapKeyRef !== undefined)
          ? `anchor ${a.id} must set exactly one of text or configMapKeyRef`
          : undefined,
    },
    ...essayTextRules<{ id: string; text?: string | undefined }>('anchor', true),
  ],
);
export type Anchor = z.infer<typeof AnchorSchema>;

export const GradeScaleSchema = z
  .object({
    grades: z
      .array(gradeName('A grade.'))
      .min(2)
      .max(MAX_GRADES)
      .describe('Grades from lowest to highest, e.g. [F, E, D, C, B, A]. Unique. Immutable after creation.')
      .meta({ 'x-kubernetes-list-type': 'set' }),
  })
  .describe('The ordered grade scale anchors and projected grades use.');

export const BudgetSchema = z
  .object({
    maxComparisons: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .optional()
      .describe(
        'Total comparisons the batch may make. Default: computed by the operator from the number of ' +
          'essays and anchors (see docs/api.md); status.budget.source says which applied. Fixed once the batch starts.',
      ),
    maxComparisonsPerEssay: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .optional()
      .describe('Cap on comparisons any single essay takes part in. Must not exceed maxComparisons.'),
  })
  .describe('The comparison budget. Above the number of distinct pairs it is never reached.');

export const StoppingSchema = z
  .object({
    minComparisonsPerEssay: z
      .number()
      .int()
      .min(1)
      .max(1_000)
      .default(4)
      .describe('No stop decision before every essay took part in this many comparisons.'),
    rankStability: basisPoints(
      'Stop when the Spearman correlation of the ranking with the refit stableRounds rounds earlier reaches this.',
      9_900,
    ),
    gradeStability: basisPoints(
      'Stop when at least this share of essays kept their projected grade since stableRounds rounds earlier.',
      7_500,
    ),
    gradeConfidence: basisPoints(
      'Stop when the mean posterior probability of each essay’s most likely grade reaches this.',
      5_500,
    ),
    reliabilityTarget: basisPoints('Stop when the EAP (scale separation) reliability reaches this.', 8_800),
    stableRounds: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(2)
      .describe('How many rounds back the stability checks look (the lag of the refit comparison).'),
  })
  .describe(
    'When the batch stops before its budget: all thresholds must hold (thresholds in basis points, 10000 = 1.0). ' +
      'The batch also stops when the budget is spent or every distinct pair has been judged.',
  );

const limitOverride = (f: LimitField) =>
  z
    .number()
    .int()
    .min(1)
    .max(ABSOLUTE_MAX[f])
    .optional()
    .describe(`Lower ${f} for this batch; must not exceed the pool's effective ${f}.`);

export const OverridesSchema = z
  .object({
    limits: z
      .object(
        Object.fromEntries(LIMIT_FIELDS.map((f) => [f, limitOverride(f)])) as Record<
          LimitField,
          ReturnType<typeof limitOverride>
        >,
      )
      .optional()
      .describe('Per-batch rate limits; each may only tighten the pool (checked by the admission webhook).'),
  })
  .describe('Per-batch settings that may only tighten the pool, never loosen it.');

export const WorkersSchema = z
  .object({
    parallelism: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe(
        'Comparison worker pods per round (the Indexed Job parallelism); pipelined rounds: the most long-lived workers the batch runs (as many as its share of the pool needs).',
      ),
    resources: z
      .object({
        requests: z
          .object({
            cpu: quantity('CPU request.').optional(),
            memory: quantity('Memory request.').optional(),
          })
          .optional()
          .describe('Resource requests of each worker container.'),
        limits: z
          .object({ cpu: quantity('CPU limit.').optional(), memory: quantity('Memory limit.').optional() })
          .optional()
          .describe('Resource limits of each worker container.'),
      })
      .optional()
      .describe('Compute resources of worker containers.'),
    nodeSelector: z
      .record(z.string().max(317), z.string().max(63).describe('Label value.'))
      .optional()
      .describe('Node labels worker pods must match.')
      .meta({ maxProperties: 32 }),
    tolerations: z
      .array(
        z
          .object({
            key: z
              .string()
              .max(317)
              .optional()
              .describe('Taint key the toleration applies to; empty with Exists matches all.'),
            operator: z.enum(['Exists', 'Equal']).optional().describe('Exists or Equal (default Equal).'),
            value: z.string().max(63).optional().describe('Taint value for operator Equal.'),
            effect: z
              .enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute'])
              .optional()
              .describe('Taint effect to match; empty matches all effects.'),
            tolerationSeconds: z
              .number()
              .int()
              .optional()
              .describe('For NoExecute: how long the pod stays bound after the taint appears.'),
          })
          .describe('A pod toleration.'),
      )
      .max(32)
      .optional()
      .describe('Tolerations of worker pods.')
      .meta({ 'x-kubernetes-list-type': 'atomic' }),
    image: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .describe("Worker image; default: the operator's own image (same version)."),
  })
  .describe('Worker pods that run scoring and comparison Jobs.');

/** spec.priority: the batch's weight in its pool's fair share (docs/api.md, "Priority and fair share"). */
export const MIN_PRIORITY = 1;
export const MAX_PRIORITY = 100;
export const DEFAULT_PRIORITY = 10;

export const RETENTION_POLICIES = ['Delete', 'Retain'] as const;

type BatchSpecShape = {
  essays: { inline?: { id: string }[] | undefined; configMapRefs?: unknown[] | undefined };
  anchors?: { id: string; grade: string }[] | undefined;
  gradeScale: { grades: string[] };
  budget?: { maxComparisons?: number | undefined; maxComparisonsPerEssay?: number | undefined } | undefined;
  stopping: { minComparisonsPerEssay: number };
};

const ANCHORS_SIZE = '(has(self.anchors) ? size(self.anchors) : 0)';

export const BATCH_SPEC_RULES: TwinRule<BatchSpecShape>[] = [
  {
    field: 'essays',
    cel: {
      rule: 'has(self.essays.inline) != has(self.essays.configMapRefs)',
      messageExpression:
        "has(self.essays.inline) ? 'essays has both inline and configMapRefs; keep exactly one source' : 'essays has no source; set spec.essays.inline or spec.essays.configMapRefs'",
      fieldPath: '.essays',
      reason: 'FieldValueInvalid',
    },
    check: (s) => {
      const inline = s.essays.inline !== undefined;
      if (inline === (s.essays.configMapRefs !== undefined)) {
        return inline
          ? 'essays has both inline and configMapRefs; keep exactly one source'
          : 'essays has no source; set spec.essays.inline or spec.essays.configMapRefs';
      }
      return undefined;
    },
  },
  {
    field: 'anchors',
    cel: {
      rule: '!has(self.anchors) || self.anchors.all(a, a.grade in self.gradeScale.grades)',
      messageExpression:
        "'anchor %s has grade %s which is not in spec.gradeScale.grades [%s]; use one of those grades or add it to the scale'.format([self.anchors.filter(a, !(a.grade in self.gradeScale.grades))[0].id, self.anchors.filter(a, !(a.grade in self.gradeScale.grades))[0].grade, self.gradeScale.grades.join(', ')])",
      // Used when the expression cannot produce a one-line message.
      message:
        'an anchor has a grade that is not in spec.gradeScale.grades; use one of those grades or add it to the scale',
      fieldPath: '.anchors',
      reason: 'FieldValueInvalid',
    },
    check: (s) => {
      const bad = s.anchors?.find((a) => !s.gradeScale.grades.includes(a.grade));
      return bad
        ? `anchor ${bad.id} has grade ${bad.grade} which is not in spec.gradeScale.grades [${s.gradeScale.grades.join(', ')}]; use one of those grades or add it to the scale`
        : undefined;
    },
  },
  {
    field: 'budget.maxComparisonsPerEssay',
    cel: {
      rule: '!has(self.budget) || !has(self.budget.maxComparisons) || !has(self.budget.maxComparisonsPerEssay) || self.budget.maxComparisonsPerEssay <= self.budget.maxComparisons',
      messageExpression:
        "'maxComparisonsPerEssay %d exceeds maxComparisons %d; lower spec.budget.maxComparisonsPerEssay'.format([self.budget.maxComparisonsPerEssay, self.budget.maxComparisons])",
      fieldPath: '.budget.maxComparisonsPerEssay',
      reason: 'FieldValueInvalid',
    },
    check: (s) => {
      const b = s.budget;
      return b?.maxComparisons !== undefined &&
        b.maxComparisonsPerEssay !== undefined &&
        b.maxComparisonsPerEssay > b.maxComparisons
        ? `maxComparisonsPerEssay ${b.maxComparisonsPerEssay} exceeds maxComparisons ${b.maxComparisons}; lower spec.budget.maxComparisonsPerEssay`
        : undefined;
    },
  },
  {
    field: 'stopping.minComparisonsPerEssay',
    cel: {
      rule: '!has(self.budget) || !has(self.budget.maxComparisonsPerEssay) || self.stopping.minComparisonsPerEssay <= self.budget.maxComparisonsPerEssay',
      messageExpression:
        "'minComparisonsPerEssay %d exceeds spec.budget.maxComparisonsPerEssay %d, so the stop rule could never hold; lower spec.stopping.minComparisonsPerEssay'.format([self.stopping.minComparisonsPerEssay, self.budget.maxComparisonsPerEssay])",
      fieldPath: '.stopping.minComparisonsPerEssay',
      reason: 'FieldValueInvalid',
    },
    check: (s) => {
      const cap = s.budget?.maxComparisonsPerEssay;
      return cap !== undefined && s.stopping.minComparisonsPerEssay > cap
        ? `minComparisonsPerEssay ${s.stopping.minComparisonsPerEssay} exceeds spec.budget.maxComparisonsPerEssay ${cap}, so the stop rule could never hold; lower spec.stopping.minComparisonsPerEssay`
        : undefined;
    },
  },
  {
    field: 'budget.maxComparisons',
    cel: {
      rule: `!has(self.budget) || !has(self.budget.maxComparisons) || !has(self.essays.inline) || self.budget.maxComparisons * 2 >= size(self.essays.inline) + ${ANCHORS_SIZE}`,
      messageExpression: `'maxComparisons %d cannot include each of the %d essays and anchors even once; set spec.budget.maxComparisons to at least %d'.format([self.budget.maxComparisons, size(self.essays.inline) + ${ANCHORS_SIZE}, (size(self.essays.inline) + ${ANCHORS_SIZE} + 1) / 2])`,
      fieldPath: '.budget.maxComparisons',
      reason: 'FieldValueInvalid',
    },
    check: (s) => {
      const max = s.budget?.maxComparisons;
      if (max === undefined || s.essays.inline === undefined) return undefined;
      const n = s.essays.inline.length + (s.anchors?.length ?? 0);
      return max * 2 >= n
        ? undefined
        : `maxComparisons ${max} cannot include each of the ${n} essays and anchors even once; set spec.budget.maxComparisons to at least ${Math.floor((n + 1) / 2)}`;
    },
  },
  // Immutability: the scores, grades and pairs in the database are only meaningful for the set
  // of items and the scale they were computed on. Transition rules run on update only.
  ...(['essays', 'anchors', 'gradeScale'] as const).map(
    (f): TwinRule<BatchSpecShape> => ({
      field: f,
      transition: true,
      cel: {
        rule: `has(self.${f}) == has(oldSelf.${f}) && (!has(self.${f}) || self.${f} == oldSelf.${f})`,
        message: `spec.${f} is immutable after creation; create a new CJBatch to change it`,
        fieldPath: `.${f}`,
        reason: 'FieldValueForbidden',
      },
      check: () => undefined,
    }),
  ),
];

export const CJBatchSpecSchema = withRules(
  z
    .object({
      providerPoolRef: z
        .object({ name: objectName('Name of an LLMProviderPool in the batch namespace.') })
        .describe('The LLMProviderPool whose provider, key and rate limits the batch uses.'),
      overrides: OverridesSchema.optional(),
      assignment: AssignmentSchema,
      essays: EssaysSchema,
      anchors: z
        .array(AnchorSchema)
        .max(MAX_ANCHORS)
        .optional()
        .describe(
          'Anchor essays with known grades, covering at least two grades. Without anchors the batch ranks but cannot grade. Immutable after creation.',
        )
        .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'] }),
      gradeScale: GradeScaleSchema,
      budget: BudgetSchema.optional(),
      stopping: StoppingSchema.prefault({}),
      seed: z
        .number()
        .int()
        .min(0)
        .max(2_147_483_647)
        .default(1)
        .describe('Seed of the pair selection; the same seed and the same judgements give the same pairs.'),
      workers: WorkersSchema.prefault({}),
      priority: z
        .number()
        .int()
        .min(MIN_PRIORITY)
        .max(MAX_PRIORITY)
        .default(DEFAULT_PRIORITY)
        .describe(
          `The batch's weight in its pool: while several batches of the pool want more than the pool's ` +
            `rate, each gets rate × priority ÷ the sum of their priorities (${DEFAULT_PRIORITY} by default: ` +
            `20 gets twice the share of ${DEFAULT_PRIORITY}); a share a batch does not use goes to the others. ` +
            'May be changed while the batch runs.',
        ),
      suspend: z
        .boolean()
        .default(false)
        .describe(
          'Pause the batch: no new Jobs start; a round-by-round batch lets its running comparisons finish, a pipelined one stops its workers. Set false to resume.',
        ),
      timeouts: z
        .object({
          round: duration(
            'Longest a round (scoring plus comparisons) may run; a late round is scored with what exists or failed (e.g. 30m). Pipelined rounds: longest the workers may finish no comparison before Progressing=False, reason NothingJudged (the batch is not failed for it).',
          ).default('30m'),
        })
        .prefault({})
        .describe('Time limits.'),
      output: z
        .object({
          kafkaTopic: z
            .string()
            .min(1)
            .max(249)
            .regex(/^[a-zA-Z0-9._-]+$/)
            .optional()
            .describe("Kafka topic for the result event; default: the operator's configured topic."),
        })
        .optional()
        .describe('Where the result is published.'),
      retention: z
        .object({
          policy: z
            .enum(RETENTION_POLICIES)
            .default('Delete')
            .describe(
              'Delete: remove the batch rows from Postgres when the CJBatch is deleted. Retain: keep them.',
            ),
        })
        .prefault({})
        .describe('What happens to stored comparisons when the CJBatch is deleted.'),
    })
    .describe('Desired state of the batch.'),
  BATCH_SPEC_RULES,
);
export type CJBatchSpec = z.infer<typeof CJBatchSpecSchema>;
export type CJBatchSpecInput = z.input<typeof CJBatchSpecSchema>;

export const BATCH_PHASES = [
  'Pending',
  'Preparing',
  'Scoring',
  'Comparing',
  'Finalizing',
  'Succeeded',
  'Failed',
] as const;
export type BatchPhase = (typeof BATCH_PHASES)[number];

export const BATCH_CONDITION_TYPES = [
  'Succeeded',
  'Progressing',
  'Stable',
  'Degraded',
  'EventPublished',
  'InvalidSpec',
  'PoolReady',
  // The batch's database role, retired once its worker pods are gone (phases/retiring.ts).
  'RoleRetired',
  // For kstatus (Flux, kubectl wait): derived from the others, see operator/src/kube/kstatus.ts.
  'Reconciling',
  'Stalled',
] as const;

export const CJBatchStatusSchema = z
  .object({
    phase: z
      .enum(BATCH_PHASES)
      .optional()
      .describe('Summary for humans and printer columns; conditions are authoritative.'),
    progress: z
      .string()
      .max(64)
      .optional()
      .describe('Completed comparisons over the budget, e.g. "120/600".'),
    observedGeneration: counter('The metadata.generation the status describes.').optional(),
    conditions: conditions(BATCH_CONDITION_TYPES),
    comparisons: z
      .object({
        planned: counter('Comparisons planned so far.').optional(),
        submitted: counter('Comparisons sent to the provider.').optional(),
        completed: counter('Comparisons with a judgement (errors never count here).').optional(),
        failed: counter('Comparisons that failed after all retries.').optional(),
        retried: counter('Retry attempts.').optional(),
        pending: counter('Planned comparisons without an outcome yet.').optional(),
      })
      .optional()
      .describe('Cumulative counters across all rounds, read from the database.'),
    round: counter('Current round (1-based); 0 before the first round.').optional(),
    budget: z
      .object({
        total: counter('The budget in force; fixed at start and never changed by a continuation.').optional(),
        source: z
          .enum(['spec', 'default'])
          .optional()
          .describe('spec: from spec.budget; default: computed by the operator.'),
        used: counter('Comparisons charged against the budget.').optional(),
      })
      .optional()
      .describe('The comparison budget.'),
    stability: z
      .object({
        rankCorrelation: z
          .number()
          .min(-1)
          .max(1)
          .optional()
          .describe('Spearman correlation with the previous round.'),
        gradeChanges: counter('Essays whose projected grade changed since the previous round.').optional(),
        reliability: z.number().min(-1).max(1).optional().describe('Scale separation reliability.'),
        meanGradeConfidence: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .describe("Mean posterior probability of each essay's most likely grade."),
      })
      .optional()
      .describe('Stability after the last scoring (numbers in status are fine; spec never has floats).'),
    cost: z
      .object({
        inputTokens: counter('Uncached input tokens.').optional(),
        outputTokens: counter('Output tokens.').optional(),
        cacheReadTokens: counter('Cache-read input tokens.').optional(),
        cacheWriteTokens: counter('Cache-write input tokens.').optional(),
        estimatedUSD: z
          .string()
          .max(32)
          .optional()
          .describe('Estimated cost from the pool pricing, e.g. "1.234567".'),
      })
      .optional()
      .describe('Tokens and estimated cost so far.'),
    estimate: z
      .object({
        comparisons: counter(
          'Comparisons expected when the batch started (the budget when it is expected to bind).',
        ).optional(),
        mode: z.enum(BATCHING_MODES).optional().describe("The pool's batching mode the estimate is for."),
        inputTokens: counter('Expected uncached input tokens.').optional(),
        outputTokens: counter('Expected output tokens.').optional(),
        cacheReadTokens: counter('Expected cache-read input tokens.').optional(),
        cacheWriteTokens: counter('Expected cache-write input tokens.').optional(),
        estimatedUSD: z
          .string()
          .max(32)
          .optional()
          .describe('Expected cost from the pool pricing, e.g. "1.234567".'),
        wallTime: z
          .string()
          .max(32)
          .optional()
          .describe(
            'Expected time from start to finish under the pool limits, e.g. "8m30s" (docs/estimate.md).',
          ),
      })
      .optional()
      .describe(
        'What the batch was expected to take when it started (kubectl cj estimate), beside the actuals above.',
      ),
    audit: z
      .object({
        state: z
          .enum(['Waiting', 'Audited', 'Invalid'])
          .optional()
          .describe(
            'Waiting: the pairs are in the ConfigMap, the answers are not; Audited: the figures below are final; Invalid: the answers could not be read (message says why).',
          ),
        configMap: z
          .string()
          .max(253)
          .optional()
          .describe('The <batch>-audit ConfigMap with the pairs and answers.'),
        judge: z.string().max(64).optional().describe('The human judge the answers were stored as.'),
        pairs: counter('Pairs the teacher was asked to judge.').optional(),
        judged: counter('Pairs the teacher judged (not skipped).').optional(),
        agreements: counter('Judged pairs where the teacher chose what the AI judge chose.').optional(),
        agreement: z.number().min(0).max(1).optional().describe('agreements / judged.'),
        interval95: z
          .array(z.number().min(0).max(1))
          .max(2)
          .optional()
          .describe('Wilson 95% confidence interval of the agreement, [low, high].'),
        modelAgreements: counter(
          'Judged pairs where the teacher chose the essay the final scores rank higher.',
        ).optional(),
        auditedAt: time('When the answers were stored.').optional(),
        eventId: z.string().max(64).optional().describe('Id of the cj.batch.audited.v1 event.'),
        message: z
          .string()
          .max(1024)
          .optional()
          .describe('What to do next, or why the answers were refused.'),
        nonce: z
          .string()
          .max(64)
          .optional()
          .describe(
            'The cj.huleedu.io/audit-nonce annotation this state answers (kubectl cj audit waits for it).',
          ),
      })
      .optional()
      .describe("A teacher's spot check of the AI judge (kubectl cj audit, docs/teachers.md)."),
    throughput: z
      .object({
        comparisonsPerMinute: z
          .number()
          .min(0)
          .optional()
          .describe('Comparisons that reached an outcome per minute, over the last minute.'),
        poolShare: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .describe("The batch's part of the requests its pool granted over the last minute (0-1)."),
        fairShare: z
          .number()
          .min(0)
          .max(1)
          .optional()
          .describe(
            "The part spec.priority entitles the batch to while the pool's batches that asked in the last 10 s all want more: its priority over the sum of theirs.",
          ),
        remaining: counter(
          'Comparisons still expected: the estimate (or the budget) less those with an outcome.',
        ).optional(),
        eta: time('When the batch is expected to finish at the throughput above.').optional(),
      })
      .optional()
      .describe(
        'Live pace while the batch is comparing or scoring; removed when it finishes or is suspended.',
      ),
    startTime: time('When the batch started preparing.').optional(),
    completionTime: time('When the batch reached Succeeded or Failed.').optional(),
    result: z
      .object({
        gradeDistribution: z
          .array(
            z
              .object({
                grade: z.string().max(16).describe('A grade.'),
                count: counter('Essays projected to it.'),
              })
              .describe('Essays per grade.'),
          )
          .max(MAX_GRADES)
          .optional()
          .describe('Essays per projected grade.')
          .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['grade'] }),
        resultsConfigMap: z.string().max(253).optional().describe('ConfigMap with the full ranked results.'),
      })
      .optional()
      .describe('Result summary; full results are in the ConfigMap and the Kafka event.'),
    currentJobs: z
      .object({
        scoring: z.string().max(253).optional().describe('The scoring Job of the current round.'),
        comparison: z.string().max(253).optional().describe('The comparison Job of the current round.'),
      })
      .optional()
      .describe('Jobs of the current round.'),
  })
  .describe('Observed state of the batch, written by the operator.');
export type CJBatchStatus = z.infer<typeof CJBatchStatusSchema>;

export interface CJBatch {
  apiVersion: typeof API_VERSION;
  kind: 'CJBatch';
  /** As the apiserver sends it (timestamps are RFC 3339 strings). */
  metadata: ObjectMeta;
  spec: CJBatchSpec;
  status?: CJBatchStatus;
}

/** Number of distinct unordered pairs among n items. */
export const distinctPairs = (n: number) => (n * (n - 1)) / 2;

/**
 * The default budget when spec.budget.maxComparisons is absent: about 12 comparisons per item
 * (essays plus anchors; each comparison involves two), never more than the distinct pairs.
 */
export const defaultMaxComparisons = (items: number) =>
  Math.min(distinctPairs(items), Math.ceil((items * 12) / 2));

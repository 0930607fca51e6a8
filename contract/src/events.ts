// The CloudEvents the operator publishes to Kafka (docs/events.md): one zod schema per event type,
// envelope and `data`. The operator builds its events with the types derived from these, and
// hack/gen-crds.ts generates the JSON Schemas consumers validate with from them
// (config/schemas/<type>.json: the whole record value; <type>.data.json: `data` alone), so the
// schemas, the types and the published files cannot disagree (`npm run check:crds`).
import { z } from 'zod';
import { AuditReportSchema } from './audit.js';
import { EssayResultSchema, GradeDistributionSchema } from './results.js';

export const EVENT_COMPLETED = 'cj.batch.completed.v1';
export const EVENT_FAILED = 'cj.batch.failed.v1';
export const EVENT_AUDITED = 'cj.batch.audited.v1';
export const EVENT_TYPES = [EVENT_COMPLETED, EVENT_FAILED, EVENT_AUDITED] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * The revision of each event type's `data` schema, `<major>.<minor>`; it is part of the event's
 * `dataschema` URI, so a consumer knows which schema the event was written against.
 *
 * Bump rules (any change of the generated <type>.data.json other than descriptions):
 * - minor (1.0 → 1.1): every event valid under the old revision stays valid under the new one and
 *   nothing a consumer reads changes meaning: a new optional field, a looser bound. Consumers that
 *   ignore unknown fields (docs/events.md asks them to) keep working.
 * - major: anything else (a field removed, renamed, retyped or made required, a tighter bound, a
 *   new enum value, a changed meaning). That is a new event type `…v<major>` with revision
 *   `<major>.0`, published alongside the old one for a transition period; the major always equals
 *   the type's `v<N>` suffix (test/unit/contract/events.test.ts checks it).
 */
export const EVENT_DATA_VERSIONS = {
  [EVENT_COMPLETED]: '1.0',
  [EVENT_FAILED]: '1.0',
  [EVENT_AUDITED]: '1.0',
} as const satisfies Record<EventType, `${number}.${number}`>;

export const SCHEMA_BASE = 'https://cj.huleedu.io/schemas';

/** The `dataschema` attribute: names the data schema of the type and its revision (default: the current one). */
export const dataSchemaUri = <T extends EventType>(type: T, revision: string = EVENT_DATA_VERSIONS[type]) =>
  `${SCHEMA_BASE}/${type}/${revision}/data.json`;

/**
 * The revision of the events committed before they carried `dataschema` (cj-operator 0.1.0):
 * their data is revision 1.0 of their type whatever the current revision is.
 */
export const REVISION_BEFORE_DATASCHEMA = '1.0';

/** `$id` of the whole-event schema (config/schemas/<type>.json). */
export const eventSchemaUri = (type: EventType) => `${SCHEMA_BASE}/${type}.json`;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const Uuid = z.string().regex(UUID_RE);
const Count = z.number().int().min(0);
const NullableName = (what: string) => z.string().nullable().describe(what);

/** The CJBatch an event is about. */
export const BatchRefSchema = z
  .object({
    uid: Uuid.describe('metadata.uid of the CJBatch; also the Kafka record key and the event subject.'),
    namespace: z.string().min(1),
    name: z.string().min(1),
  })
  .describe('The CJBatch the event is about.');
export type BatchRef = z.infer<typeof BatchRefSchema>;

/** What a batch spent and how stable it got: both result events carry it. */
export const BatchSummarySchema = z.object({
  provider: NullableName('LLMProviderPool spec.provider at finalization (null if the pool is gone).'),
  model: NullableName('LLMProviderPool spec.model at finalization (null if the pool is gone).'),
  gradeScale: z.array(z.string().min(1)).min(1).describe('spec.gradeScale.grades, lowest first.'),
  rounds: Count.describe('Comparison rounds run (completed: the last scored round).'),
  comparisons: z
    .object({
      planned: Count,
      submitted: Count,
      completed: Count,
      failed: Count,
      retried: Count,
      pending: Count,
    })
    .describe('Cumulative comparison counters across all rounds, equal to status.comparisons.'),
  reliability: z
    .number()
    .min(-1)
    .max(1)
    .nullable()
    .describe('Scale separation reliability (EAP) of the last scoring.'),
  stability: z
    .object({
      rankCorrelation: z
        .number()
        .min(-1)
        .max(1)
        .nullable()
        .describe('Spearman correlation of the ranks with the previous round.'),
      gradeChanges: Count.nullable().describe('Essays whose modal grade changed since the previous round.'),
      meanGradeConfidence: z
        .number()
        .min(0)
        .max(1)
        .nullable()
        .describe("Mean posterior probability of each essay's modal grade."),
    })
    .describe('Stability after the last scoring, equal to status.stability (null when not computed yet).'),
  tokens: z
    .object({ input: Count, output: Count, cacheRead: Count, cacheWrite: Count })
    .describe('Tokens spent by all comparisons, equal to status.cost.'),
  cost: z.object({
    estimatedUSD: z
      .string()
      .regex(/^[0-9]+(\.[0-9]+)?$/)
      .nullable()
      .describe(
        "Estimated cost in USD from the pool's pricing as a decimal string; null when the pool has no pricing.",
      ),
  }),
});
export type BatchSummary = z.infer<typeof BatchSummarySchema>;

/** Where the results are when they are too large for one Kafka message (a claim check). */
export const ResultsRefSchema = z
  .object({
    configMap: z
      .string()
      .min(1)
      .describe(
        'The first results ConfigMap; parts 2..parts are named <configMap>-2 ... <configMap>-<parts>.',
      ),
    parts: z.number().int().min(1).describe('Number of results ConfigMaps (key parts in the first one).'),
    essays: Count.describe('Essays and anchors in the results.'),
    bytes: Count.describe('Size of the results as JSON.'),
    reason: z.string().min(1).describe('Why the results are not in the event, and where to read them.'),
  })
  .describe(
    "Present only when the results were too large for the event (claim check): read them from the results ConfigMaps in the batch's namespace.",
  );

/** `data` of cj.batch.completed.v1. */
export const CompletedDataSchema = z.object({
  batch: BatchRefSchema,
  outcome: z.literal('succeeded'),
  reason: z.string().min(1).describe('Stopping reason of the last scoring (e.g. converged, budget).'),
  message: z.string(),
  ...BatchSummarySchema.shape,
  gradeDistribution: GradeDistributionSchema.describe(
    'Essays (anchors excluded) per assigned grade, equal to status.result.gradeDistribution.',
  ),
  results: z
    .array(EssayResultSchema)
    .describe(
      'Every essay and anchor, by rank. Empty when the results do not fit one Kafka message; resultsRef then says where they are.',
    ),
  resultsRef: ResultsRefSchema.optional(),
});
export type CompletedData = z.infer<typeof CompletedDataSchema>;

/** `data` of cj.batch.failed.v1: why, and what was spent before the failure; no results. */
export const FailedDataSchema = z.object({
  batch: BatchRefSchema,
  outcome: z.literal('failed'),
  reason: z
    .string()
    .regex(/^[A-Z][A-Za-z0-9]*$/)
    .describe(
      "CamelCase failure reason, equal to the Succeeded=False condition's reason (e.g. RoundTimeout, LowSuccessRate, ScoringFailed, ComparisonsFailed).",
    ),
  message: z.string().min(1).describe('Human-readable explanation.'),
  ...BatchSummarySchema.shape,
  rounds: Count.describe('The round in progress when the batch failed (status.round).'),
});
export type FailedData = z.infer<typeof FailedDataSchema>;

/** `data` of cj.batch.audited.v1: the batch, who judged against which model, and the report. */
export const AuditedDataSchema = z.object({
  batch: BatchRefSchema,
  judge: z
    .string()
    .min(1)
    .describe('The human judge the answers are stored as (kubectl cj audit --judge; default teacher).'),
  provider: NullableName('LLMProviderPool spec.provider when audited (null if the pool is gone).'),
  model: NullableName('LLMProviderPool spec.model when audited (null if the pool is gone).'),
  ...AuditReportSchema.shape,
});
export type AuditedData = z.infer<typeof AuditedDataSchema>;

/** Per type: its data schema and what the generated schemas say about it. */
export const EVENT_DATA = {
  [EVENT_COMPLETED]: {
    data: CompletedDataSchema,
    description: 'A CJBatch finished: its ranking, scores and grade projections.',
    id: 'Stable event id: one per batch outcome, the same on every redelivery. Consumers dedupe on it.',
    time: 'When the outcome was committed.',
  },
  [EVENT_FAILED]: {
    data: FailedDataSchema,
    description: 'A CJBatch failed: why, and what it spent before failing. No results.',
    id: 'Stable event id: one per batch outcome, the same on every redelivery. Consumers dedupe on it.',
    time: 'When the outcome was committed.',
  },
  [EVENT_AUDITED]: {
    data: AuditedDataSchema,
    description:
      "A teacher judged a sample of a Succeeded CJBatch's pairs without seeing the AI judge's verdicts (kubectl cj audit): how often the two agreed, with its 95% interval. One per batch, after its cj.batch.completed.v1.",
    id: 'Stable event id: one per audited batch, the same on every redelivery. Consumers dedupe on it.',
    time: "When the teacher's answers were stored.",
  },
} as const satisfies Record<EventType, { data: z.ZodType; description: string; id: string; time: string }>;

export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA)[T]['data']>;

/**
 * The structured-mode CloudEvent (CloudEvents 1.0, Kafka binding) of a type: the envelope with
 * its `data`. Unknown envelope attributes are allowed (CloudEvents extensions); `data` is closed.
 */
export function eventSchema<T extends EventType>(type: T) {
  const e = EVENT_DATA[type];
  return z.looseObject({
    specversion: z.literal('1.0').describe('CloudEvents 1.0.'),
    id: Uuid.describe(e.id),
    source: z
      .string()
      .regex(/^\/apis\/cj\.huleedu\.io\/v1alpha1\/namespaces\/[a-z0-9-]+\/cjbatches\/[a-z0-9.-]+$/)
      .describe('API path of the CJBatch.'),
    type: z.literal(type),
    subject: Uuid.describe('The batch UID.'),
    time: z.iso.datetime({ offset: true }).describe(e.time),
    datacontenttype: z.literal('application/json'),
    dataschema: z
      .literal(dataSchemaUri(type))
      .describe(`The JSON Schema of data and its revision (config/schemas/${type}.data.json).`),
    partitionkey: Uuid.describe('CloudEvents Kafka partitioning extension: the record key, the batch UID.'),
    data: e.data as (typeof EVENT_DATA)[T]['data'],
  });
}

/** A CloudEvent of the type as the operator publishes it. */
export type BatchEvent<T extends EventType> = z.infer<ReturnType<typeof eventSchema<T>>>;

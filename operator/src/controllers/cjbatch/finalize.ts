// Finalization: the batch's outcome and its result event are committed in ONE transaction (the
// outbox pattern), so an event exists if and only if the outcome does, with one stable event id
// per outcome. The relay (operator/src/outbox) publishes it to Kafka.
import {
  type BatchEvent,
  type BatchSummary,
  type CompletedData,
  dataSchemaUri,
  EVENT_COMPLETED,
  EVENT_FAILED,
  type EventData,
  type EventType,
  type FailedData,
} from '../../../../contract/src/events.js';
import type { BatchResults, EssayResult } from '../../../../contract/src/results.js';
import type { StoredRoundSummary } from '../../../../contract/src/round.js';
import type { Sql } from '../../../../runtime/src/store/index.js';
import {
  type CommittedOutcome,
  commitOutcomeEvent,
  committedOutcome as storedOutcome,
} from '../../../../runtime/src/store/outcome.js';
import type { Progress } from '../../../../runtime/src/store/progress.js';
import { readFlaggedComparisons, readScores } from '../../../../runtime/src/store/results.js';
import type { CJBatch, CJBatchStatus } from '../../api/index.js';

// The results format is the contract's (the CLI reads it too); re-exported for the tests.
export {
  type BatchResults,
  type EssayResult,
  joinResultsParts,
  RESULTS_BYTES_PER_CONFIGMAP,
  type ResultsPart,
  resultsConfigMaps,
} from '../../../../contract/src/results.js';
// Result event types (CloudEvents `type`), from the contract (contract/src/events.ts) that the
// JSON Schemas in config/schemas/ are generated from.
export { EVENT_COMPLETED, EVENT_FAILED };

const RESULT_EVENT_TYPES = [EVENT_COMPLETED, EVENT_FAILED] as const;

export async function readResults(sql: Sql, uid: string, grades: string[]): Promise<BatchResults> {
  const rows = await readScores(sql, uid);
  const essays: EssayResult[] = rows.map((r) => {
    const g = r.grade as {
      probabilities: number[];
      assigned?: string;
      assignedProbability?: number;
      modal: string;
      modalProbability: number;
      expected: number;
      interval80: [string, string];
    } | null;
    return {
      essayId: r.essay_id,
      anchor: r.is_anchor,
      rank: r.rank,
      score: round(r.theta),
      se: round(r.se),
      ...(g
        ? {
            grade: {
              // Scores stored before the engine had gradeDecision carry only the modal grade.
              assigned: g.assigned ?? g.modal,
              assignedProbability: round(g.assignedProbability ?? g.modalProbability),
              modal: g.modal,
              modalProbability: round(g.modalProbability),
              expected: round(g.expected),
              interval80: g.interval80,
              probabilities: grades.map((grade, i) => ({ grade, p: round(g.probabilities[i] ?? 0) })),
            },
          }
        : {}),
    };
  });
  // Flags are stored per comparison as `injection:<A|B>:<kind>`; gather them per essay.
  const flagged = new Map<string, Set<string>>();
  for (const r of await readFlaggedComparisons(sql, uid))
    for (const f of r.flags) {
      const m = /^injection:(A|B):(.+)$/.exec(f);
      if (!m) continue;
      const essay = m[1] === 'A' ? r.essay_a : r.essay_b;
      if (!flagged.has(essay)) flagged.set(essay, new Set());
      flagged.get(essay)!.add(`injection:${m[2]}`);
    }
  for (const e of essays) {
    const f = flagged.get(e.essayId);
    if (f) e.flags = [...f].sort();
  }
  const counts = new Map(grades.map((g) => [g, 0]));
  for (const e of essays)
    if (e.grade && !e.anchor) counts.set(e.grade.assigned, (counts.get(e.grade.assigned) ?? 0) + 1);
  return { essays, gradeDistribution: grades.map((grade) => ({ grade, count: counts.get(grade) ?? 0 })) };
}

const round = (v: number) => Math.round(v * 1e4) / 1e4;

/** A result event's data without what commitOutcome adds (batch, outcome, reason, message). */
type Body<D> = Omit<D, 'batch' | 'outcome' | 'reason' | 'message'>;
export type CompletedBody = Body<CompletedData>;
export type FailedBody = Body<FailedData>;

interface OutcomeBase {
  reason: string;
  message: string;
  topic: string;
}
export type Outcome =
  | (OutcomeBase & { outcome: 'succeeded'; data: CompletedBody })
  | (OutcomeBase & {
      outcome: 'failed';
      data: FailedBody;
      /**
       * The event's data from the counters read in the outcome's own transaction, after it
       * cancelled the open pairs (commitOutcomeEvent), instead of `data`: a failed batch may
       * still have pairs open, and its event must say what the store says from then on.
       */
      recount?: (p: Progress) => FailedBody;
    });

/**
 * The structured-mode CloudEvent of every event about a batch (result and audit): the envelope
 * and `data` of contract/src/events.ts, whose schemas config/schemas/<type>.json are generated from.
 */
export function batchEvent<T extends EventType>(
  batch: CJBatch,
  type: T,
  eventId: string,
  time: Date,
  data: EventData<T>,
): BatchEvent<T> {
  const uid = batch.metadata.uid!;
  return {
    specversion: '1.0',
    id: eventId,
    source: `/apis/cj.huleedu.io/v1alpha1/namespaces/${batch.metadata.namespace}/cjbatches/${batch.metadata.name}`,
    type,
    subject: uid,
    time: time.toISOString(),
    datacontenttype: 'application/json',
    dataschema: dataSchemaUri(type),
    // CloudEvents Kafka binding: the record key is the partitionkey extension (the batch UID).
    partitionkey: uid,
    data,
  } as BatchEvent<T>;
}

/** The batch's identity as every event's data carries it. */
export const batchRef = (batch: CJBatch) => ({
  uid: batch.metadata.uid!,
  namespace: batch.metadata.namespace!,
  name: batch.metadata.name!,
});

type OutcomeOf<O extends Outcome['outcome']> = Omit<Extract<Outcome, { outcome: O }>, 'topic'>;
/** An outcome without its topic (Omit on the union itself would lose the discriminant). */
export type EventOutcome = OutcomeOf<'succeeded'> | OutcomeOf<'failed'>;

/** The result event of an outcome: cj.batch.completed.v1 or cj.batch.failed.v1. */
export function resultEvent(
  batch: CJBatch,
  o: OutcomeOf<'succeeded'>,
  eventId: string,
  time: Date,
): BatchEvent<typeof EVENT_COMPLETED>;
export function resultEvent(
  batch: CJBatch,
  o: OutcomeOf<'failed'>,
  eventId: string,
  time: Date,
): BatchEvent<typeof EVENT_FAILED>;
export function resultEvent(
  batch: CJBatch,
  o: EventOutcome,
  eventId: string,
  time: Date,
): BatchEvent<typeof EVENT_COMPLETED> | BatchEvent<typeof EVENT_FAILED>;
export function resultEvent(batch: CJBatch, o: EventOutcome, eventId: string, time: Date) {
  const head = { batch: batchRef(batch), reason: o.reason, message: o.message };
  return o.outcome === 'succeeded'
    ? batchEvent(batch, EVENT_COMPLETED, eventId, time, { ...head, outcome: o.outcome, ...o.data })
    : batchEvent(batch, EVENT_FAILED, eventId, time, { ...head, outcome: o.outcome, ...o.data });
}

/**
 * Records the outcome and its event once. Returns the event id of the outcome (the existing one
 * when this is a retry after a crash: never a second id, and never a second outcome).
 */
export async function commitOutcome(sql: Sql, batch: CJBatch, o: Outcome): Promise<string> {
  return commitOutcomeEvent(sql, {
    uid: batch.metadata.uid!,
    outcome: o.outcome,
    reason: o.reason,
    topic: o.topic,
    eventType: o.outcome === 'succeeded' ? EVENT_COMPLETED : EVENT_FAILED,
    resultTypes: RESULT_EVENT_TYPES,
    event: (eventId, p) =>
      resultEvent(
        batch,
        o.outcome === 'failed' && o.recount ? { ...o, data: o.recount(p) } : o,
        eventId,
        new Date(),
      ),
  });
}

/** What the pool says about the model, as far as the event needs it. */
export interface PoolModel {
  spec: { provider: string; model: string };
}

/**
 * The per-batch part of a result event (both types), from the status the reconciler just mirrored
 * from the database (so the event equals the status summary) and the pool's model.
 */
export function batchSummary(
  status: CJBatchStatus,
  pool: PoolModel | undefined,
  rounds: number,
  grades: string[],
): BatchSummary {
  const c = status.comparisons ?? {};
  const st = status.stability ?? {};
  const cost = status.cost ?? {};
  return {
    provider: pool?.spec.provider ?? null,
    model: pool?.spec.model ?? null,
    gradeScale: grades,
    rounds,
    comparisons: {
      planned: c.planned ?? 0,
      submitted: c.submitted ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
      retried: c.retried ?? 0,
      pending: c.pending ?? 0,
    },
    reliability: st.reliability ?? null,
    stability: {
      rankCorrelation: st.rankCorrelation ?? null,
      gradeChanges: st.gradeChanges ?? null,
      meanGradeConfidence: st.meanGradeConfidence ?? null,
    },
    tokens: {
      input: cost.inputTokens ?? 0,
      output: cost.outputTokens ?? 0,
      cacheRead: cost.cacheReadTokens ?? 0,
      cacheWrite: cost.cacheWriteTokens ?? 0,
    },
    cost: { estimatedUSD: cost.estimatedUSD ?? null },
  };
}

/** `data` of cj.batch.completed.v1 (besides batch/outcome/reason/message, added by commitOutcome). */
export function completedEventData(
  results: BatchResults,
  status: CJBatchStatus,
  pool: PoolModel | undefined,
  rounds: number,
  grades: string[],
  ref?: ResultsRef,
): CompletedBody {
  const data: CompletedBody = {
    ...batchSummary(status, pool, rounds, grades),
    gradeDistribution: results.gradeDistribution,
    results: results.essays,
  };
  if (!ref) return data;
  // Claim check: results too large for one Kafka message stay in the ConfigMaps; the event says
  // where (a message over the broker's limit would be refused forever and hold up later events).
  if (Buffer.byteLength(JSON.stringify(data)) + EVENT_ENVELOPE_BYTES <= ref.maxMessageBytes) return data;
  const bytes = Buffer.byteLength(JSON.stringify(results.essays));
  return {
    ...data,
    results: [],
    resultsRef: {
      configMap: ref.configMap,
      parts: ref.parts,
      essays: results.essays.length,
      bytes,
      reason: `the results (${bytes} bytes) do not fit one Kafka message (limit ${ref.maxMessageBytes} bytes, KAFKA_MAX_MESSAGE_BYTES); read them from the ConfigMap${ref.parts > 1 ? `s ${ref.configMap}, ${ref.configMap}-2 … -${ref.parts}` : ` ${ref.configMap}`}`,
    },
  };
}

/** Room for the CloudEvents envelope around `data` (ids, source, type, time). */
const EVENT_ENVELOPE_BYTES = 2_000;

/** Where the results are when they are too large for the event. */
export interface ResultsRef {
  /** The first results ConfigMap (in the batch's namespace). */
  configMap: string;
  parts: number;
  maxMessageBytes: number;
}

/** `data` of cj.batch.failed.v1: what was spent before the failure; no results. */
export function failedEventData(
  status: CJBatchStatus,
  pool: PoolModel | undefined,
  grades: string[],
): FailedBody {
  return batchSummary(status, pool, status.round ?? 0, grades);
}

/**
 * The outcome already committed for a batch, if any. The database is the truth: a batch whose
 * outcome is committed is terminal even when the informer's copy (or a status write lost in a
 * crash) still says otherwise, so the reconciler re-asserts that outcome instead of deciding again.
 */
export function committedOutcome(sql: Sql, uid: string): Promise<CommittedOutcome | undefined> {
  return storedOutcome(sql, uid, RESULT_EVENT_TYPES);
}

/**
 * Why the batch stopped and how good the judge was, for `kubectl cj explain` (results ConfigMap key
 * `summary.json`): the last scoring pass's decision checks and quality figures.
 */
export function explainSummary(
  latest: { round: number; reason: string; summary: StoredRoundSummary },
  status: { comparisons?: unknown; stability?: unknown; budget?: unknown },
): Record<string, unknown> {
  const s = latest.summary;
  const cal = s.quality?.calibration;
  return {
    stoppedBecause: latest.reason,
    rounds: latest.round,
    checks: s.decision?.checks ?? [],
    comparisons: status.comparisons,
    budget: status.budget,
    stability: status.stability,
    reliability: s.quality?.reliability,
    expectedSpearman: s.quality?.expectedSpearman,
    expectedSpearmanConsistent: s.quality?.expectedSpearmanConsistent,
    expectedSpearmanLow: s.quality?.expectedSpearmanLow,
    meanModalProbability: s.quality?.meanModalProbability,
    comparisonsPerAnchor: s.quality?.comparisonsPerAnchor,
    comparisonsPerStudent: s.quality?.comparisonsPerStudent,
    misfit: s.quality?.misfit,
    judge: s.quality?.judge,
    connected: s.quality?.connectivity?.connected,
    components: s.quality?.connectivity?.components?.length,
    anchorCalibration: cal
      ? {
          heldOut: cal.heldOut,
          exact: cal.exact,
          adjacent: cal.adjacent,
          qwk: cal.qwk,
          coverage80: cal.coverage80,
        }
      : null,
  };
}

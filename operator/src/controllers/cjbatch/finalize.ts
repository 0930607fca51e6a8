// Finalization: the batch's outcome and its result event are committed in ONE transaction (the
// outbox pattern), so an event exists if and only if the outcome does, with one stable event id
// per outcome. The relay (operator/src/outbox) publishes it to Kafka.
import { randomUUID } from 'node:crypto';
import { chunkWithin } from '../../../../contract/src/chunk.js';
import type { Sql } from '../../../../runtime/src/store/db.js';
import type { CJBatch, CJBatchStatus } from '../../api/index.js';

/** Result event types (CloudEvents `type`); their JSON Schemas are in config/schemas/<type>.json. */
export const EVENT_COMPLETED = 'cj.batch.completed.v1';
export const EVENT_FAILED = 'cj.batch.failed.v1';

export interface EssayResult {
  essayId: string;
  anchor: boolean;
  rank: number;
  score: number;
  se: number;
  grade?: {
    /** The headline grade (the engine's gradeDecision, posterior median by default). */
    assigned: string;
    assignedProbability: number;
    modal: string;
    modalProbability: number;
    expected: number;
    interval80: [string, string];
    probabilities: { grade: string; p: number }[];
  };
  /**
   * Possible prompt injection found in this essay's text (`injection:<kind>`, kinds from
   * runtime/src/llm/prompt.ts). The essay was judged as data inside its delimiters; a teacher may
   * want to read it.
   */
  flags?: string[];
}

export interface BatchResults {
  essays: EssayResult[];
  gradeDistribution: { grade: string; count: number }[];
}

export async function readResults(sql: Sql, uid: string, grades: string[]): Promise<BatchResults> {
  const rows = await sql`
    SELECT essay_id, is_anchor, rank, theta, se, grade FROM scores WHERE batch_uid = ${uid} ORDER BY rank, essay_id`;
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
  const flagRows = await sql`
    SELECT essay_a, essay_b, flags FROM comparisons WHERE batch_uid = ${uid} AND cardinality(flags) > 0`;
  for (const r of flagRows)
    for (const f of r.flags as string[]) {
      const m = /^injection:(A|B):(.+)$/.exec(f);
      if (!m) continue;
      const essay = (m[1] === 'A' ? r.essay_a : r.essay_b) as string;
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

export interface Outcome {
  outcome: 'succeeded' | 'failed';
  reason: string;
  message: string;
  topic: string;
  data: Record<string, unknown>;
}

/** The CloudEvent (structured-mode envelope) of an outcome; config/schemas/<type>.json describes it. */
export function resultEvent(batch: CJBatch, o: Omit<Outcome, 'topic'>, eventId: string, time: Date) {
  const uid = batch.metadata.uid!;
  return {
    specversion: '1.0',
    id: eventId,
    source: `/apis/cj.huleedu.io/v1alpha1/namespaces/${batch.metadata.namespace}/cjbatches/${batch.metadata.name}`,
    type: o.outcome === 'succeeded' ? EVENT_COMPLETED : EVENT_FAILED,
    subject: uid,
    time: time.toISOString(),
    datacontenttype: 'application/json',
    // CloudEvents Kafka binding: the record key is the partitionkey extension (the batch UID).
    partitionkey: uid,
    data: {
      batch: { uid, namespace: batch.metadata.namespace, name: batch.metadata.name },
      outcome: o.outcome,
      reason: o.reason,
      message: o.message,
      ...o.data,
    },
  };
}

/**
 * Records the outcome and its event once. Returns the event id of the outcome (the existing one
 * when this is a retry after a crash: never a second id, and never a second outcome).
 */
export async function commitOutcome(sql: Sql, batch: CJBatch, o: Outcome): Promise<string> {
  const uid = batch.metadata.uid!;
  const type = o.outcome === 'succeeded' ? EVENT_COMPLETED : EVENT_FAILED;
  return sql.begin(async (tx) => {
    // One outcome per batch, ever: a retry after a crash (or a second decision after a restart)
    // gets the event already committed, never a second id. The advisory lock serializes two
    // operators finalizing the same batch during a leader hand-over.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${uid}, 0))`;
    const [existing] = await tx`
      SELECT event_id FROM outbox WHERE batch_uid = ${uid} AND event_type IN (${EVENT_COMPLETED}, ${EVENT_FAILED})
       ORDER BY created_at LIMIT 1`;
    if (existing) return existing.event_id as string;
    await tx`
      UPDATE batches SET finalized_at = coalesce(finalized_at, now()),
             outcome = coalesce(outcome, ${o.outcome}), outcome_reason = coalesce(outcome_reason, ${o.reason})
       WHERE uid = ${uid}`;
    const eventId = randomUUID();
    const event = resultEvent(batch, o, eventId, new Date());
    // Only batches that exist in the database get an event row (a batch that failed before
    // registration still gets one: the row is keyed by uid, not by a foreign key).
    await tx`
      INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
      VALUES (${eventId}, ${uid}, ${type}, ${o.topic}, ${uid}, ${tx.json(event as never)})
      ON CONFLICT (batch_uid, event_type) DO NOTHING`;
    const [row] = await tx`SELECT event_id FROM outbox WHERE batch_uid = ${uid} AND event_type = ${type}`;
    return row!.event_id as string;
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
) {
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
): Record<string, unknown> {
  const data = {
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
): Record<string, unknown> {
  return batchSummary(status, pool, status.round ?? 0, grades);
}

/**
 * The outcome already committed for a batch, if any. The database is the truth: a batch whose
 * outcome is committed is terminal even when the informer's copy (or a status write lost in a
 * crash) still says otherwise, so the reconciler re-asserts that outcome instead of deciding again.
 */
export async function committedOutcome(
  sql: Sql,
  uid: string,
): Promise<
  { eventId: string; outcome: 'succeeded' | 'failed'; reason: string; message: string } | undefined
> {
  const [row] = await sql`
    SELECT event_id, payload->'data'->>'outcome' AS outcome, payload->'data'->>'reason' AS reason,
           payload->'data'->>'message' AS message
      FROM outbox WHERE batch_uid = ${uid} AND event_type IN (${EVENT_COMPLETED}, ${EVENT_FAILED})
     ORDER BY created_at LIMIT 1`;
  if (!row) return undefined;
  return {
    eventId: row.event_id,
    outcome: row.outcome === 'failed' ? 'failed' : 'succeeded',
    reason: row.reason ?? '',
    message: row.message ?? '',
  };
}

export async function eventSent(sql: Sql, eventId: string): Promise<boolean> {
  const [row] = await sql`SELECT sent_at FROM outbox WHERE event_id = ${eventId}`;
  return !!row?.sent_at;
}

/**
 * Bytes of results one ConfigMap may carry. The apiserver refuses a ConfigMap above 1 MiB
 * (1,048,576 bytes of data and metadata); the rest of the budget is for `summary.json`, keys and
 * metadata. 2000 essays with 6 grades need ≈ 0.97 MB, with 20 grades ≈ 1.9 MB.
 */
export const RESULTS_BYTES_PER_CONFIGMAP = 900_000;

/** One results ConfigMap's data and the name suffix it gets (`''` for the first). */
export interface ResultsPart {
  suffix: string;
  data: Record<string, string>;
}

/**
 * The results as ConfigMap data: JSON for programs (`results.json`: `{essays, gradeDistribution}`),
 * CSV for spreadsheets (`results.csv`). When they do not fit one ConfigMap, the essays (in rank
 * order) are split over `<name>`, `<name>-2`, … `<name>-<k>`: the first carries `parts: "k"`, the
 * grade distribution and the CSV header; concatenating the parts' `results.csv` in order gives the
 * whole CSV, and their `results.json` essays in order give every essay (`joinResultsParts`).
 */
export function resultsConfigMaps(
  r: BatchResults,
  grades: string[],
  budget = RESULTS_BYTES_PER_CONFIGMAP,
): ResultsPart[] {
  const header = `${[
    'rank',
    'essay',
    'anchor',
    'score',
    'se',
    'grade',
    'p_grade',
    'modal_grade',
    'p_modal',
    ...grades.map((g) => `p_${g}`),
    'flags',
  ].join(',')}\n`;
  const rows = r.essays.map((e) => ({
    json: JSON.stringify(e),
    csv: `${[
      e.rank,
      e.essayId,
      e.anchor,
      e.score,
      e.se,
      e.grade?.assigned ?? '',
      e.grade?.assignedProbability ?? '',
      e.grade?.modal ?? '',
      e.grade?.modalProbability ?? '',
      ...grades.map((g) => e.grade?.probabilities.find((x) => x.grade === g)?.p ?? ''),
      (e.flags ?? []).join(' '),
    ].join(',')}\n`,
  }));
  const distribution = JSON.stringify(r.gradeDistribution);
  // Rank order, packed greedily; the first part's header and distribution are charged to every
  // part, which keeps each within the budget and costs little.
  const overhead = Buffer.byteLength(header) + Buffer.byteLength(distribution) + 64;
  const chunks = chunkWithin(
    rows,
    Number.POSITIVE_INFINITY,
    (row) => Buffer.byteLength(row.json) + Buffer.byteLength(row.csv) + 1,
    budget - overhead,
  );
  if (chunks.length === 0) chunks.push([]);
  return chunks.map((chunk, i) => {
    const essays = `[${chunk.map((x) => x.json).join(',')}]`;
    const csv = chunk.map((x) => x.csv).join('');
    if (i > 0)
      return { suffix: `-${i + 1}`, data: { 'results.json': `{"essays":${essays}}`, 'results.csv': csv } };
    return {
      suffix: '',
      data: {
        'results.json': `{"essays":${essays},"gradeDistribution":${distribution}}`,
        'results.csv': header + csv,
        ...(chunks.length > 1 ? { parts: String(chunks.length) } : {}),
      },
    };
  });
}

/** The whole results from the parts' data, first part first (the inverse of resultsConfigMaps). */
export function joinResultsParts(parts: Record<string, string>[]): { json: BatchResults; csv: string } {
  const first = JSON.parse(
    parts[0]?.['results.json'] ?? '{"essays":[],"gradeDistribution":[]}',
  ) as BatchResults;
  const essays = [...first.essays];
  for (const p of parts.slice(1))
    essays.push(...(JSON.parse(p['results.json'] ?? '{"essays":[]}') as BatchResults).essays);
  return {
    json: { essays, gradeDistribution: first.gradeDistribution },
    csv: parts.map((p) => p['results.csv'] ?? '').join(''),
  };
}

/**
 * Why the batch stopped and how good the judge was, for `kubectl cj explain` (results ConfigMap key
 * `summary.json`): the last scoring pass's decision checks and quality figures.
 */
export function explainSummary(
  latest: { round: number; reason: string; summary: Record<string, unknown> },
  status: { comparisons?: unknown; stability?: unknown; budget?: unknown },
): Record<string, unknown> {
  const s = latest.summary as {
    decision?: { action: string; reason: string; checks?: unknown[] };
    quality?: {
      reliability?: unknown;
      judge?: unknown;
      expectedSpearman?: unknown;
      meanModalProbability?: unknown;
      connectivity?: { connected?: boolean; components?: unknown[] };
      calibration?: {
        heldOut?: number;
        exact?: unknown;
        adjacent?: unknown;
        qwk?: unknown;
        coverage80?: unknown;
      } | null;
    };
  };
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
    meanModalProbability: s.quality?.meanModalProbability,
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

// Finalization: the batch's outcome and its result event are committed in ONE transaction (the
// outbox pattern), so an event exists if and only if the outcome does, with one stable event id
// per outcome. The relay (operator/src/outbox) publishes it to Kafka.
import { randomUUID } from 'node:crypto';
import type { Sql } from '../../../../runtime/src/store/db.js';
import type { CJBatch } from '../../api/index.js';

export interface EssayResult {
  essayId: string;
  anchor: boolean;
  rank: number;
  score: number;
  se: number;
  grade?: {
    modal: string;
    modalProbability: number;
    expected: number;
    interval80: [string, string];
    probabilities: { grade: string; p: number }[];
  };
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
  const counts = new Map(grades.map((g) => [g, 0]));
  for (const e of essays) if (e.grade) counts.set(e.grade.modal, (counts.get(e.grade.modal) ?? 0) + 1);
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

/**
 * Records the outcome and its event once. Returns the event id of the outcome (the existing one
 * when this is a retry after a crash: never a second id).
 */
export async function commitOutcome(sql: Sql, batch: CJBatch, o: Outcome): Promise<string> {
  const uid = batch.metadata.uid!;
  const type = o.outcome === 'succeeded' ? 'cj.batch.completed.v1' : 'cj.batch.failed.v1';
  return sql.begin(async (tx) => {
    await tx`
      UPDATE batches SET finalized_at = coalesce(finalized_at, now()),
             outcome = coalesce(outcome, ${o.outcome}), outcome_reason = coalesce(outcome_reason, ${o.reason})
       WHERE uid = ${uid}`;
    const eventId = randomUUID();
    const event = {
      specversion: '1.0',
      id: eventId,
      source: `/apis/cj.huleedu.io/v1alpha1/namespaces/${batch.metadata.namespace}/cjbatches/${batch.metadata.name}`,
      type,
      subject: uid,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: {
        batch: { uid, namespace: batch.metadata.namespace, name: batch.metadata.name },
        reason: o.reason,
        message: o.message,
        ...o.data,
      },
    };
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

export async function eventSent(sql: Sql, eventId: string): Promise<boolean> {
  const [row] = await sql`SELECT sent_at FROM outbox WHERE event_id = ${eventId}`;
  return !!row?.sent_at;
}

/** The results ConfigMap data: JSON for programs, CSV for spreadsheets. */
export function resultsConfigMapData(r: BatchResults, grades: string[]): Record<string, string> {
  const header = [
    'rank',
    'essay',
    'anchor',
    'score',
    'se',
    'modal_grade',
    'p_modal',
    ...grades.map((g) => `p_${g}`),
  ];
  const lines = r.essays.map((e) =>
    [
      e.rank,
      e.essayId,
      e.anchor,
      e.score,
      e.se,
      e.grade?.modal ?? '',
      e.grade?.modalProbability ?? '',
      ...grades.map((g) => e.grade?.probabilities.find((x) => x.grade === g)?.p ?? ''),
    ].join(','),
  );
  return {
    'results.json': JSON.stringify(r),
    'results.csv': `${header.join(',')}\n${lines.join('\n')}\n`,
  };
}

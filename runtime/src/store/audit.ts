// The human spot check of the AI judge (kubectl cj audit): what the operator picks the pairs from
// (the LLM's verdicts, the final scores, the essays' texts) and, in ONE transaction, the teacher's
// judgements as a separate judge and the cj.batch.audited.v1 event (the outbox pattern, as for the
// result event: the event exists if and only if the judgements do).
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from './db.js';

/** Every LLM verdict of the batch, as essay ids (winner is the essay, not the position). */
export async function llmVerdicts(
  sql: Sql,
  uid: string,
): Promise<{ a: string; b: string; winner: string }[]> {
  const rows = await sql<{ a: string; b: string; winner: string }[]>`
    SELECT essay_a AS a, essay_b AS b, CASE winner WHEN 'A' THEN essay_a ELSE essay_b END AS winner
      FROM comparisons WHERE batch_uid = ${uid} AND status = 'succeeded' ORDER BY id`;
  return [...rows];
}

/** The final latent score of every essay and anchor. */
export async function finalThetas(sql: Sql, uid: string): Promise<Map<string, number>> {
  const rows = await sql<{ essay_id: string; theta: number }[]>`
    SELECT essay_id, theta FROM scores WHERE batch_uid = ${uid}`;
  return new Map(rows.map((r) => [r.essay_id, r.theta]));
}

/** The texts of these essays (or anchors) of the batch. */
export async function essayTexts(
  sql: Sql,
  uid: string,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const rows = await sql<{ essay_id: string; text: string }[]>`
    SELECT essay_id, text FROM essays WHERE batch_uid = ${uid} AND essay_id = ANY(${ids as string[]})`;
  return new Map(rows.map((r) => [r.essay_id, r.text]));
}

export interface AuditWrite {
  uid: string;
  judge: string;
  judgements: { a: string; b: string; winner: string; seconds?: number }[];
  eventType: string;
  topic: string;
  /** The event payload for the id the store assigns. */
  event: (eventId: string) => unknown;
}

/**
 * Stores the judgements and the audit event once per batch. Returns the event id (the existing
 * one when this is a retry after a crash or a lost status write: never a second event).
 */
export async function commitAudit(
  sql: Sql,
  w: AuditWrite,
): Promise<{ eventId: string; created: boolean; payload: unknown }> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${`audit:${w.uid}`}, 0))`;
    const [existing] = await tx<{ event_id: string; payload: unknown }[]>`
      SELECT event_id, payload FROM outbox WHERE batch_uid = ${w.uid} AND event_type = ${w.eventType}`;
    if (existing) return { eventId: existing.event_id, created: false, payload: existing.payload };
    for (const j of w.judgements)
      await tx`
        INSERT INTO human_judgements (batch_uid, judge, essay_a, essay_b, winner, seconds)
        VALUES (${w.uid}, ${w.judge}, ${j.a}, ${j.b}, ${j.winner}, ${j.seconds ?? null})
        ON CONFLICT (batch_uid, judge, essay_a, essay_b) DO NOTHING`;
    const eventId = randomUUID();
    const payload = w.event(eventId);
    await tx`
      INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
      VALUES (${eventId}, ${w.uid}, ${w.eventType}, ${w.topic}, ${w.uid},
              ${tx.json(payload as postgres.JSONValue)})`;
    return { eventId, created: true, payload };
  });
}

/** The audit event of a batch and whether the relay has published it. */
export async function auditEventState(
  sql: Sql,
  uid: string,
  eventType: string,
): Promise<{ eventId: string; sent: boolean } | undefined> {
  const [r] = await sql<{ event_id: string; sent: boolean }[]>`
    SELECT event_id, sent_at IS NOT NULL AS sent FROM outbox WHERE batch_uid = ${uid} AND event_type = ${eventType}`;
  return r ? { eventId: r.event_id, sent: r.sent } : undefined;
}

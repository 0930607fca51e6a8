// The batch's outcome and its result event, committed in ONE transaction (the writing side of the
// transactional outbox): an event exists if and only if the outcome does, with one stable event id
// per outcome. The relay's side is outbox.ts.
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from './db.js';
import { type Progress, readProgress } from './progress.js';
import { cancelOpen } from './rounds.js';

export interface OutcomeWrite {
  uid: string;
  outcome: 'succeeded' | 'failed';
  reason: string;
  topic: string;
  /** The CloudEvent type of this outcome. */
  eventType: string;
  /** Every result event type: a batch has at most one row of any of them. */
  resultTypes: readonly string[];
  /**
   * The event payload for the id the store assigns, given the batch's counters read in the
   * outcome's transaction (after its open pairs were cancelled).
   */
  event: (eventId: string, progress: Progress) => unknown;
}

/**
 * Records the outcome and its event once. Returns the event id of the outcome (the existing one
 * when this is a retry after a crash: never a second id, and never a second outcome).
 *
 * Nothing is judged for a batch once its outcome is committed: the transaction cancels its pairs
 * still open (`cancelOpen`: final, `failed` with reason `CANCELLED`, in neither planned nor
 * failed), as a pipelined stop decision does. A Failed batch has no stop round, so without this its
 * unclaimed pairs would stay `pending` for good. A pair a worker is judging right now is cancelled
 * too, keeping its owner: the worker's late write is refused (never counted as a verdict after the
 * outcome) and only records the tokens it spent (`writeOutcome`); its lane then finds the outcome
 * and exits. After a stop decision (Succeeded) nothing is open any more and this changes nothing.
 */
export async function commitOutcomeEvent(sql: Sql, o: OutcomeWrite): Promise<string> {
  return sql.begin(async (tx) => {
    // One outcome per batch, ever: a retry after a crash (or a second decision after a restart)
    // gets the event already committed, never a second id. The advisory lock serializes two
    // operators finalizing the same batch during a leader hand-over.
    await tx`SELECT pg_advisory_xact_lock(hashtextextended(${o.uid}, 0))`;
    const [existing] = await tx<{ event_id: string }[]>`
      SELECT event_id FROM outbox WHERE batch_uid = ${o.uid} AND event_type IN ${tx(o.resultTypes)}
       ORDER BY created_at LIMIT 1`;
    if (existing) return existing.event_id;
    // Wait for a pipelined planning pass in flight (it holds the batch's oldest comparison row,
    // planAhead) so that the pairs it writes are cancelled below; a later pass cannot take the
    // row before this commits, and then sees the outcome and plans nothing.
    await tx`SELECT id FROM comparisons WHERE batch_uid = ${o.uid} ORDER BY id LIMIT 1 FOR NO KEY UPDATE`;
    await cancelOpen(tx, o.uid);
    await tx`
      UPDATE batches SET finalized_at = coalesce(finalized_at, now()),
             outcome = coalesce(outcome, ${o.outcome}), outcome_reason = coalesce(outcome_reason, ${o.reason})
       WHERE uid = ${o.uid}`;
    const eventId = randomUUID();
    // Only batches that exist in the database get an event row (a batch that failed before
    // registration still gets one: the row is keyed by uid, not by a foreign key).
    await tx`
      INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
      VALUES (${eventId}, ${o.uid}, ${o.eventType}, ${o.topic}, ${o.uid},
              ${tx.json(o.event(eventId, await readProgress(tx, o.uid)) as postgres.JSONValue)})
      ON CONFLICT (batch_uid, event_type) DO NOTHING`;
    const [row] = await tx<{ event_id: string }[]>`
      SELECT event_id FROM outbox WHERE batch_uid = ${o.uid} AND event_type = ${o.eventType}`;
    return row!.event_id;
  });
}

export interface CommittedOutcome {
  eventId: string;
  outcome: 'succeeded' | 'failed';
  reason: string;
  message: string;
}

/** The outcome already committed for a batch (its first result event), if any. */
export async function committedOutcome(
  sql: Sql,
  uid: string,
  resultTypes: readonly string[],
): Promise<CommittedOutcome | undefined> {
  const [row] = await sql<
    { event_id: string; outcome: string | null; reason: string | null; message: string | null }[]
  >`
    SELECT event_id, payload->'data'->>'outcome' AS outcome, payload->'data'->>'reason' AS reason,
           payload->'data'->>'message' AS message
      FROM outbox WHERE batch_uid = ${uid} AND event_type IN ${sql(resultTypes)}
     ORDER BY created_at LIMIT 1`;
  if (!row) return undefined;
  return {
    eventId: row.event_id,
    outcome: row.outcome === 'failed' ? 'failed' : 'succeeded',
    reason: row.reason ?? '',
    message: row.message ?? '',
  };
}

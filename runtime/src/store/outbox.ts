// The relay's side of the transactional outbox (operator/src/outbox/relay.ts): unsent events in
// order, sent marks, failure bookkeeping, and parking — a row Kafka refuses for its own sake (a
// topic that is not allowed or does not exist, a record too large) is set aside with its reason so
// that every other batch's events keep flowing.
import type { Sql } from './db.js';

export interface OutboxRow {
  event_id: string;
  batch_uid: string;
  event_type: string;
  topic: string;
  key: string;
  payload: unknown;
  attempts: number;
}

/** Unsent, unparked events, oldest first. */
export async function unsentEvents(sql: Sql, limit: number): Promise<OutboxRow[]> {
  return sql<OutboxRow[]>`
    SELECT event_id, batch_uid, event_type, topic, key, payload, attempts FROM outbox
     WHERE sent_at IS NULL AND parked_at IS NULL ORDER BY created_at LIMIT ${limit}`;
}

/** How many events wait and the age of the oldest (parked ones excluded: they wait for a person). */
export async function outboxBacklog(sql: Sql): Promise<{ n: number; age: number; parked: number }> {
  const [r] = await sql<{ n: number; age: number | null; parked: number }[]>`
    SELECT count(*) FILTER (WHERE parked_at IS NULL)::int AS n,
           extract(epoch FROM now() - min(created_at) FILTER (WHERE parked_at IS NULL))::float AS age,
           count(*) FILTER (WHERE parked_at IS NOT NULL)::int AS parked
      FROM outbox WHERE sent_at IS NULL`;
  return { n: r!.n, age: r!.age ?? 0, parked: r!.parked };
}

export async function markSent(sql: Sql, eventId: string): Promise<void> {
  await sql`UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE event_id = ${eventId}`;
}

/** A failed attempt at these events (the broker may be away): counted, reason kept. */
export async function recordFailure(sql: Sql, eventIds: readonly string[], error: string): Promise<void> {
  if (eventIds.length === 0) return;
  await sql`UPDATE outbox SET attempts = attempts + 1, last_error = ${error.slice(0, 500)}
             WHERE event_id = ANY(${eventIds as string[]}::uuid[]) AND sent_at IS NULL`;
}

/** A failed attempt at every unsent event (the relay could not reach the broker at all). */
export async function recordFailureAll(sql: Sql, error: string): Promise<void> {
  await sql`UPDATE outbox SET attempts = attempts + 1, last_error = ${error.slice(0, 500)}
             WHERE sent_at IS NULL AND parked_at IS NULL`;
}

/** Sets the event aside with its reason; it is not retried until a person un-parks it. */
export async function parkEvent(sql: Sql, eventId: string, reason: string): Promise<void> {
  await sql`UPDATE outbox SET parked_at = now(), attempts = attempts + 1, last_error = ${reason.slice(0, 500)}
             WHERE event_id = ${eventId} AND sent_at IS NULL`;
}

/** The first event of a batch and where it stands (the batch's EventPublished condition). */
export async function batchEventState(
  sql: Sql,
  uid: string,
): Promise<{ eventId: string; sent: boolean; parkedReason: string | null } | undefined> {
  const [r] = await sql<{ event_id: string; sent: boolean; parked: boolean; last_error: string | null }[]>`
    SELECT event_id, sent_at IS NOT NULL AS sent, parked_at IS NOT NULL AS parked, last_error
      FROM outbox WHERE batch_uid = ${uid} ORDER BY created_at LIMIT 1`;
  if (!r) return undefined;
  return { eventId: r.event_id, sent: r.sent, parkedReason: r.parked ? (r.last_error ?? 'parked') : null };
}

// The outbox relay (leader only): publishes committed result events to Kafka and marks them sent.
// Delivery is at least once with a stable event id (a crash between publish and mark re-sends the
// same id; consumers dedupe on it). Events are CloudEvents in structured mode: the whole envelope
// is the JSON value (content-type application/cloudevents+json), so any consumer reads it without
// knowing the binding; `ce_id`/`ce_type` headers are added for routing and dedupe without parsing.
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Sql } from '../../../runtime/src/store/db.js';
import type { Logger } from '../kube/log.js';

export interface RelayOptions {
  sql: Sql;
  brokers: string;
  log: Logger;
  registry: Registry;
  signal: AbortSignal;
  pollMs?: number;
  /** Partitions for topics the relay creates (auto-creation is off on production brokers). */
  partitions?: number;
}

export async function startRelay(o: RelayOptions): Promise<void> {
  const published = new Counter({
    name: 'cj_outbox_published_total',
    help: 'Events published to Kafka',
    registers: [o.registry],
  });
  const failures = new Counter({
    name: 'cj_outbox_failures_total',
    help: 'Failed publish attempts',
    registers: [o.registry],
  });
  const pending = new Gauge({
    name: 'cj_outbox_pending',
    help: 'Unsent events in the outbox',
    registers: [o.registry],
  });
  const oldest = new Gauge({
    name: 'cj_outbox_oldest_age_seconds',
    help: 'Age of the oldest unsent event',
    registers: [o.registry],
  });
  const kafka = new Kafka({
    clientId: 'cj-operator-relay',
    brokers: o.brokers.split(','),
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  });
  let producer: Producer | undefined;
  const knownTopics = new Set<string>();
  let backoff = INITIAL_BACKOFF_MS;
  while (!o.signal.aborted) {
    try {
      const rows = await o.sql`
        SELECT event_id, topic, key, payload, event_type FROM outbox WHERE sent_at IS NULL ORDER BY created_at LIMIT 50`;
      const [stats] = await o.sql`
        SELECT count(*)::int AS n, extract(epoch FROM now() - min(created_at))::float AS age FROM outbox WHERE sent_at IS NULL`;
      pending.set(stats!.n);
      oldest.set(stats!.age ?? 0);
      if (rows.length > 0) {
        if (!producer) {
          producer = kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
          });
          await producer.connect();
        }
        await ensureTopics(
          kafka,
          rows.map((r) => r.topic as string),
          knownTopics,
          o.partitions ?? 3,
        );
        for (const r of rows) {
          await producer.send({
            topic: r.topic,
            acks: -1,
            messages: [toKafkaMessage(r as unknown as OutboxRow)],
          });
          await o.sql`UPDATE outbox SET sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE event_id = ${r.event_id}`;
          published.inc();
          o.log.info({ eventId: r.event_id, type: r.event_type, topic: r.topic }, 'Published result event');
        }
      }
      backoff = INITIAL_BACKOFF_MS;
      await sleep(rows.length > 0 ? 0 : (o.pollMs ?? 1000), o.signal);
    } catch (err) {
      failures.inc();
      o.log.warn(
        { err: (err as Error).message, retryInMs: backoff },
        'Outbox relay cannot publish; backing off',
      );
      await o.sql`UPDATE outbox SET attempts = attempts + 1, last_error = ${(err as Error).message.slice(0, 500)}
                   WHERE sent_at IS NULL`.catch(() => {});
      await producer?.disconnect().catch(() => {});
      producer = undefined;
      // A broker that came back may have lost the topic (a new cluster): verify it again.
      knownTopics.clear();
      await sleep(backoff, o.signal);
      backoff = nextBackoff(backoff);
    }
  }
  await producer?.disconnect().catch(() => {});
}

export const INITIAL_BACKOFF_MS = 500;
/** Upper bound of the wait between attempts while the broker is down: recovery is seen within it. */
export const MAX_BACKOFF_MS = 15_000;

/** Doubling backoff, capped. */
export const nextBackoff = (ms: number) => Math.min(Math.max(ms, INITIAL_BACKOFF_MS) * 2, MAX_BACKOFF_MS);

export interface OutboxRow {
  event_id: string;
  event_type: string;
  topic: string;
  key: string;
  payload: unknown;
}

/**
 * The Kafka record of an outbox row: CloudEvents structured mode (the envelope is the value), key =
 * batch UID (all events of a batch on one partition, in order). `ce_id`/`ce_type` headers duplicate
 * the envelope's id and type so consumers can dedupe and route without parsing the value; SDKs read
 * the record as structured because of the content-type header and ignore them.
 */
export function toKafkaMessage(r: OutboxRow) {
  return {
    key: r.key,
    value: JSON.stringify(r.payload),
    headers: {
      'content-type': 'application/cloudevents+json; charset=utf-8',
      ce_id: r.event_id,
      ce_type: r.event_type,
    },
  };
}

async function ensureTopics(kafka: Kafka, topics: string[], known: Set<string>, partitions: number) {
  const missing = [...new Set(topics)].filter((t) => !known.has(t));
  if (missing.length === 0) return;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const create = missing.filter((t) => !existing.has(t));
    if (create.length > 0)
      await admin.createTopics({
        waitForLeaders: true,
        topics: create.map((topic) => ({ topic, numPartitions: partitions })),
      });
    for (const t of missing) known.add(t);
  } finally {
    await admin.disconnect();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}

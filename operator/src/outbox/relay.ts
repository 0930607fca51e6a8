// The outbox relay (leader only): publishes committed result events to Kafka and marks them sent.
// Delivery is at least once with a stable event id (a crash between publish and mark re-sends the
// same id; consumers dedupe on it). Events are CloudEvents in structured mode only: the whole
// envelope is the JSON value (content-type application/cloudevents+json), with no `ce_` headers,
// which the Python SDK would take for binary mode (docs/events.md).
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  dataSchemaUri,
  EVENT_TYPES,
  type EventType,
  REVISION_BEFORE_DATASCHEMA,
} from '../../../contract/src/events.js';
import { pause } from '../../../contract/src/sleep.js';
import type { Sql } from '../../../runtime/src/store/index.js';
import {
  markSent,
  outboxBacklog,
  parkEvent,
  recordFailure,
  recordFailureAll,
  type OutboxRow as StoredRow,
  unsentEvents,
} from '../../../runtime/src/store/outbox.js';
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
  /**
   * Topics the platform allows (KAFKA_TOPIC, KAFKA_ALLOWED_TOPICS); an event for any other topic
   * is parked, never sent. Admission refuses such topics too; this holds when it was bypassed.
   */
  topicAllowed?: (topic: string) => boolean;
  /**
   * Called with the batch's uid once its event was published or parked, so that its controller
   * looks at the batch now (EventPublished) instead of polling the outbox on a timer.
   */
  onSettled?: (batchUid: string) => void;
}

/**
 * Kafka errors that are the record's or its topic's own fault: retrying cannot help, and other
 * events must not wait behind it (kafkajs protocol error types).
 */
const POISON_TYPES = new Set([
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'POLICY_VIOLATION',
  'INVALID_REQUIRED_ACKS',
]);
/** A row that failed this many times while other rows went through is parked too. */
export const PARK_AFTER_ATTEMPTS = 3;
/** This many failures in a row with no success in between: the broker, not a row, is the problem. */
const OUTAGE_AFTER_FAILURES = 3;

const errorType = (err: unknown): string | undefined => {
  const e = err as { type?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e?.type === 'string') return e.type;
  if (Array.isArray(e?.errors)) for (const x of e.errors) if (errorType(x)) return errorType(x);
  return e?.cause ? errorType(e.cause) : undefined;
};
export const isPoison = (err: unknown) => POISON_TYPES.has(errorType(err) ?? '');

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
  const parkedTotal = new Counter({
    name: 'cj_outbox_parked_total',
    help: 'Events set aside because Kafka refused them for their own sake (see the batch condition)',
    registers: [o.registry],
  });
  const pending = new Gauge({
    name: 'cj_outbox_pending',
    help: 'Unsent events in the outbox',
    registers: [o.registry],
  });
  const parkedGauge = new Gauge({
    name: 'cj_outbox_parked',
    help: 'Unsent events parked with a reason',
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
  const park = async (r: StoredRow, reason: string) => {
    await parkEvent(o.sql, r.event_id, reason);
    parkedTotal.inc();
    o.onSettled?.(r.batch_uid);
    o.log.warn(
      { eventId: r.event_id, batchUid: r.batch_uid, topic: r.topic, reason },
      'Parked an outbox event Kafka cannot take; other events go on',
    );
  };
  while (!o.signal.aborted) {
    try {
      const rows = await unsentEvents(o.sql, 50);
      const stats = await outboxBacklog(o.sql);
      pending.set(stats.n);
      parkedGauge.set(stats.parked);
      oldest.set(stats.age);
      let progressed = false;
      if (rows.length > 0) {
        if (!producer) {
          producer = kafka.producer({
            idempotent: true,
            maxInFlightRequests: 1,
            allowAutoTopicCreation: false,
          });
          await producer.connect();
        }
        const sendable: StoredRow[] = [];
        for (const r of rows) {
          if (o.topicAllowed && !o.topicAllowed(r.topic))
            await park(
              r,
              `topic "${r.topic}" is not allowed on this platform (Helm value kafka.allowedTopics)`,
            );
          else sendable.push(r);
        }
        const topicErrors = await ensureTopics(
          kafka,
          sendable.map((r) => r.topic),
          knownTopics,
          o.partitions ?? 3,
        );
        let failedInARow = 0;
        let lastError: unknown;
        const failed: { r: StoredRow; msg: string }[] = [];
        for (const r of sendable) {
          try {
            const topicError = topicErrors.get(r.topic);
            if (topicError) throw topicError;
            await producer.send({ topic: r.topic, acks: -1, messages: [toKafkaMessage(r)] });
            await markSent(o.sql, r.event_id);
            published.inc();
            o.onSettled?.(r.batch_uid);
            progressed = true;
            failedInARow = 0;
            o.log.info({ eventId: r.event_id, type: r.event_type, topic: r.topic }, 'Published result event');
          } catch (err) {
            failures.inc();
            const msg = (err as Error).message ?? String(err);
            if (isPoison(err)) {
              await park(r, `Kafka refused the event: ${msg}`);
              progressed = true;
              continue;
            }
            lastError = err;
            // Several failures with no success in between: the broker is away, back off.
            if (++failedInARow >= OUTAGE_AFTER_FAILURES && !progressed) throw err;
            failed.push({ r, msg });
          }
        }
        if (!progressed && lastError) throw lastError;
        for (const { r, msg } of failed) {
          await recordFailure(o.sql, [r.event_id], msg);
          // It failed again while others went through: it is this row, not the broker.
          if (r.attempts + 1 >= PARK_AFTER_ATTEMPTS)
            await park(
              r,
              `publishing failed ${r.attempts + 1} times while other events went through: ${msg}`,
            );
        }
      }
      backoff = INITIAL_BACKOFF_MS;
      await pause(progressed ? 0 : (o.pollMs ?? 1000), o.signal);
    } catch (err) {
      failures.inc();
      o.log.warn(
        { err: (err as Error).message, retryInMs: backoff },
        'Outbox relay cannot publish; backing off',
      );
      await recordFailureAll(o.sql, (err as Error).message ?? String(err)).catch(() => {});
      await producer?.disconnect().catch(() => {});
      producer = undefined;
      // A broker that came back may have lost the topic (a new cluster): verify it again.
      knownTopics.clear();
      await pause(backoff, o.signal);
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
 * A row committed before events carried `dataschema` (still unsent at the upgrade, or replayed)
 * gets the attribute of the revision its data has, so every published event names its schema.
 */
function withDataSchema(payload: unknown): unknown {
  if (typeof payload !== 'object' || payload === null || 'dataschema' in payload) return payload;
  const type = (payload as { type?: unknown }).type;
  if (!(EVENT_TYPES as readonly unknown[]).includes(type)) return payload;
  return { ...payload, dataschema: dataSchemaUri(type as EventType, REVISION_BEFORE_DATASCHEMA) };
}

/**
 * The Kafka record of an outbox row: CloudEvents structured mode (the envelope is the value), key =
 * batch UID (all events of a batch on one partition, in order). The content type is the only
 * header: SDKs that see any `ce_` header read the record as binary mode and miss the attributes.
 */
export function toKafkaMessage(r: OutboxRow) {
  return {
    key: r.key,
    value: JSON.stringify(withDataSchema(r.payload)),
    headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' },
  };
}

/**
 * Creates missing topics, one request each so that one refused topic does not fail the others;
 * returns the error of each topic that could not be made ready. Listing the topics failing (the
 * broker is away) throws.
 */
async function ensureTopics(
  kafka: Kafka,
  topics: string[],
  known: Set<string>,
  partitions: number,
): Promise<Map<string, unknown>> {
  const errors = new Map<string, unknown>();
  const missing = [...new Set(topics)].filter((t) => !known.has(t));
  if (missing.length === 0) return errors;
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    for (const topic of missing) {
      if (!existing.has(topic)) {
        try {
          await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] });
        } catch (err) {
          errors.set(topic, err);
          continue;
        }
      }
      known.add(topic);
    }
  } finally {
    await admin.disconnect();
  }
  return errors;
}

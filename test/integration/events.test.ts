// Result events end to end with a real Kafka broker: the operator (dist/) finalizes batches on the
// local cluster, the outbox relay publishes CloudEvents, a kafkajs consumer reads them back. This
// file runs its own broker (under the stack dir, on a free port) so it can stop and restart it
// without disturbing anything else.
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, type Started, startDetached, stopPid } from '../../hack/lib/proc.js';
import { repoRoot, toolPaths } from '../../hack/lib/tools.js';
import { type KafkaService, startKafka } from '../../hack/services/kafka.js';
import { kafkaReady } from '../../hack/stack.js';
import type { CJBatch } from '../../operator/src/api/index.js';
import { commitOutcome, failedEventData } from '../../operator/src/controllers/cjbatch/finalize.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { loadEventSchema, validate } from '../unit/outbox/event-schemas.js';
import { deleteNamespace, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { type Record_, readTopic } from './kafka-topic.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  startFake,
  startOperator,
} from './operator-harness.js';

const TOPIC = 'cj.batch.events';

let ns: string;
let dbUrl: string;
let sql: postgres.Sql;
let fake: FakeAnthropic;
let slowFake: FakeAnthropic;
let kafka: KafkaService;
let kafkaDir: string;
let operator: OperatorProcess;

const getJson = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-n', ns, '-o', 'json']));
const getBatch = (name: string) => getJson(['get', 'cjbatch', name]);
const cond = (status: any, type: string) => status?.conditions?.find((c: any) => c.type === type);

/**
 * Starts the stopped broker again on its own storage and ports (startKafka would format a new
 * cluster): the same broker coming back, with every record it had.
 */
function restartKafka(dir: string): Started {
  return startDetached(
    'kafka',
    'java',
    [
      '-Xms128m',
      '-Xmx512m',
      '-XX:TieredStopAtLevel=1',
      `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
      '-cp',
      `${toolPaths().kafkaLibs}/*`,
      'kafka.Kafka',
      path.join(dir, 'server.properties'),
    ],
    path.join(dir, 'kafka.log'),
  );
}

const forBatch = (records: Record_[], uid: string) => records.filter((r) => r.key === uid);

async function applyBatch(name: string, edit: (b: any) => void = () => {}): Promise<string> {
  const b = JSON.parse(
    await kubectlOk([
      'create',
      '--dry-run=client',
      '-o',
      'json',
      '-f',
      path.join(repoRoot, 'config/samples/cjbatch-small.yaml'),
    ]),
  );
  b.metadata = { name, namespace: ns };
  edit(b);
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(b));
  return (await getBatch(name)).metadata.uid;
}

/** Waits for the phase; fails at once when the batch ends the other way. */
async function waitTerminal(name: string, phase: 'Succeeded' | 'Failed', timeoutMs = 240_000) {
  const other = phase === 'Succeeded' ? 'Failed' : 'Succeeded';
  const s = await waitFor(
    `${name} ${phase}`,
    async () => {
      const st = (await getBatch(name)).status ?? {};
      return st.phase === phase || st.phase === other ? st : undefined;
    },
    timeoutMs,
  ).catch(async (err) => {
    const st = await getBatch(name).catch(() => ({}));
    throw new Error(`${(err as Error).message}; status: ${JSON.stringify(st.status)}`);
  });
  if (s.phase !== phase) throw new Error(`${name} ended ${s.phase}: ${JSON.stringify(s.conditions)}`);
  return s;
}

const waitPublished = (name: string, timeoutMs = 120_000) =>
  waitFor(
    `${name} EventPublished=True`,
    async () => {
      const s = (await getBatch(name)).status;
      return cond(s, 'EventPublished')?.status === 'True' ? s : undefined;
    },
    timeoutMs,
  );

const outboxRows = (uid: string) =>
  sql`SELECT event_id, event_type, sent_at, attempts, last_error, created_at FROM outbox WHERE batch_uid = ${uid}`;

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('events');
  dbUrl = await freshDatabase('events');
  sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  kafkaDir = path.join(stack().dir, `events-kafka-${randomBytes(3).toString('hex')}`);
  [fake, slowFake, kafka] = await Promise.all([
    startFake(),
    startFake({ latencyMs: 120_000 }),
    startKafka(kafkaDir),
  ]);
  await kafkaReady(kafka.brokers, kafka.process);
  operator = await startOperator({
    namespace: ns,
    databaseUrl: dbUrl,
    env: { KAFKA_BROKERS: kafka.brokers },
  });
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [...poolManifests(ns, fake.url), ...poolManifests(ns, slowFake.url, 'slow-pool', 'slow-key')],
    }),
  );
  for (const pool of ['fake-pool', 'slow-pool'])
    await waitFor(
      `${pool} Ready`,
      async () => cond((await getJson(['get', 'llmpool', pool])).status, 'Ready')?.status === 'True',
    );
});

afterAll(async () => {
  await operator?.stop();
  if (kafka) await stopPid(kafka.process.pid);
  await Promise.all([fake?.close(), slowFake?.close()]);
  await sql?.end();
  if (ns) await deleteNamespace(ns);
  if (kafkaDir) rmSync(kafkaDir, { recursive: true, force: true });
});

describe('result events on Kafka', () => {
  it('a completed batch yields exactly one valid event equal to the status summary', async () => {
    const uid = await applyBatch('done');
    await waitTerminal('done', 'Succeeded');
    const status = await waitPublished('done');
    const rows = await outboxRows(uid);
    expect(rows).toHaveLength(1);
    const records = forBatch(await readTopic(kafka.brokers), uid);
    expect(records).toHaveLength(1);
    const { event, headers } = records[0]!;
    expect(validate(loadEventSchema('cj.batch.completed.v1'), event)).toEqual([]);
    expect(event.id).toBe(rows[0]!.event_id);
    // Structured mode only: a ce_ header would make SDKs read the record as binary mode.
    expect(headers).toEqual({ 'content-type': 'application/cloudevents+json; charset=utf-8' });
    expect(event.type).toBe('cj.batch.completed.v1');
    expect(event.subject).toBe(uid);
    expect(cond(status, 'EventPublished').message).toContain(event.id);
    // Equal to the status summary.
    const d = event.data;
    expect(d.comparisons).toEqual(status.comparisons);
    expect(d.gradeDistribution).toEqual(status.result.gradeDistribution);
    expect(d.tokens).toEqual({
      input: status.cost.inputTokens,
      output: status.cost.outputTokens,
      cacheRead: status.cost.cacheReadTokens,
      cacheWrite: status.cost.cacheWriteTokens,
    });
    expect(d.cost.estimatedUSD).toBe(status.cost.estimatedUSD);
    expect(d.reliability).toBe(status.stability.reliability ?? null);
    expect(d.stability.rankCorrelation).toBe(status.stability.rankCorrelation ?? null);
    expect(d.model).toBe((await getJson(['get', 'llmpool', 'fake-pool'])).spec.model);
    expect(d.provider).toBe('fake');
    expect(d.results).toHaveLength(12);
    expect(d.results.filter((e: any) => e.anchor)).toHaveLength(4);
    expect(d.gradeDistribution.reduce((a: number, g: any) => a + g.count, 0)).toBe(8);
    // The ConfigMap holds the same results.
    const cm = await getJson(['get', 'configmap', 'done-results']);
    expect(JSON.parse(cm.data['results.json']).essays).toEqual(d.results);
  }, 300_000);

  it('a failed batch emits cj.batch.failed.v1 with its reason', async () => {
    // Every call to the slow fake takes 120 s; a round may last 1 min (the admission minimum): RoundTimeout with 0 judged.
    // Round by round: a pipelined batch is not failed for it (NothingJudged, pipeline.test.ts).
    const uid = await applyBatch('late', (b) => {
      b.metadata.annotations = { ...b.metadata.annotations, 'cj.huleedu.io/rounds': 'rounds' };
      b.spec.providerPoolRef.name = 'slow-pool';
      b.spec.timeouts = { round: '1m' };
    });
    const failed = await waitTerminal('late', 'Failed');
    expect(cond(failed, 'Succeeded').reason).toBe('RoundTimeout');
    await waitPublished('late');
    const records = forBatch(await readTopic(kafka.brokers), uid);
    expect(records).toHaveLength(1);
    const { event } = records[0]!;
    expect(validate(loadEventSchema('cj.batch.failed.v1'), event)).toEqual([]);
    expect(event.type).toBe('cj.batch.failed.v1');
    expect(event.data.reason).toBe('RoundTimeout');
    expect(event.data.message).toBe(cond(failed, 'Succeeded').message);
    expect(event.data).not.toHaveProperty('results');
  }, 300_000);

  it('publishes after the broker comes back: EventPublished turns True, nothing lost', async () => {
    const before = await readTopic(kafka.brokers);
    await stopPid(kafka.process.pid);
    const stoppedAt = Date.now();
    const uid = await applyBatch('outage');
    await waitTerminal('outage', 'Succeeded');
    // Committed, not published, and the relay is retrying.
    await waitFor('a failed publish attempt', async () => (await outboxRows(uid))[0]?.attempts > 0);
    const s = (await getBatch('outage')).status;
    expect(cond(s, 'EventPublished').status).toBe('False');
    expect((await outboxRows(uid))[0]!.sent_at).toBeNull();
    const wait = stoppedAt + 60_000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));

    kafka = { ...kafka, process: restartKafka(kafkaDir) };
    await kafkaReady(kafka.brokers, kafka.process);
    const upAt = Date.now();
    await waitPublished('outage', 90_000);
    const [row] = await outboxRows(uid);
    const publishMs = row!.sent_at.getTime() - upAt;
    console.log(
      `[events] broker down ${Math.round((upAt - stoppedAt) / 1000)} s; published ${publishMs} ms after it was ready, after ${row!.attempts - 1} failed attempts`,
    );
    const after = await readTopic(kafka.brokers);
    const mine = forBatch(after, uid);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.event.id).toBe(row!.event_id);
    expect(validate(loadEventSchema('cj.batch.completed.v1'), mine[0]!.event)).toEqual([]);
    // Nothing lost: everything from before the outage is still there, plus exactly the new event.
    expect(after.map((r) => r.event.id).sort()).toEqual(
      [...before.map((r) => r.event.id), row!.event_id].sort(),
    );
  }, 420_000);

  it('an operator killed between the commit and the publish: one event id, redeliveries carry it', async () => {
    await operator.stop();
    // The next operator cannot reach any broker: its outcome stays in the outbox.
    const nowhere = `127.0.0.1:${await freePort()}`;
    operator = await startOperator({
      namespace: ns,
      databaseUrl: dbUrl,
      env: { KAFKA_BROKERS: nowhere, LEADER_ELECTION: 'false' },
    });
    const uid = await applyBatch('crash');
    await waitTerminal('crash', 'Succeeded');
    const [row] = await outboxRows(uid);
    expect(row!.sent_at).toBeNull();
    expect((await operator.stop('SIGKILL')) ?? 'killed').toBeTruthy();

    // A retried (or different) decision after the crash gets the committed id, never a second one.
    const batch = (await getBatch('crash')) as CJBatch;
    const again = await commitOutcome(sql as never, batch, {
      outcome: 'failed',
      reason: 'Retried',
      message: 'a second decision after a crash',
      topic: TOPIC,
      data: failedEventData({}, undefined, batch.spec.gradeScale.grades),
    });
    expect(again).toBe(row!.event_id);

    operator = await startOperator({
      namespace: ns,
      databaseUrl: dbUrl,
      env: { KAFKA_BROKERS: kafka.brokers },
    });
    await waitPublished('crash', 120_000);
    let mine = forBatch(await readTopic(kafka.brokers), uid);
    expect(mine.map((r) => r.event.id)).toEqual([row!.event_id]);

    // A relay that dies after the broker's ack but before marking the row sends it again: the
    // consumer sees a redelivery with the same id (and dedupes on it), never a second id.
    await sql`UPDATE outbox SET sent_at = NULL WHERE event_id = ${row!.event_id}`;
    await waitFor('republished', async () => (await outboxRows(uid))[0]?.sent_at !== null, 60_000);
    mine = forBatch(await readTopic(kafka.brokers), uid);
    expect(mine).toHaveLength(2);
    expect(new Set(mine.map((r) => r.event.id))).toEqual(new Set([row!.event_id]));
    expect(await outboxRows(uid)).toHaveLength(1);
  }, 420_000);

  it('results larger than KAFKA_MAX_MESSAGE_BYTES travel as a reference to the results ConfigMap', async () => {
    await operator.stop();
    // The small sample's results are ≈ 4 kB: a 3,000-byte limit makes them "too large".
    operator = await startOperator({
      namespace: ns,
      databaseUrl: dbUrl,
      env: { KAFKA_BROKERS: kafka.brokers, KAFKA_MAX_MESSAGE_BYTES: '3000' },
    });
    const uid = await applyBatch('claim');
    await waitTerminal('claim', 'Succeeded');
    const status = await waitPublished('claim');
    const mine = forBatch(await readTopic(kafka.brokers), uid);
    expect(mine).toHaveLength(1);
    const { event } = mine[0]!;
    expect(validate(loadEventSchema('cj.batch.completed.v1'), event)).toEqual([]);
    expect(event.data.results).toEqual([]);
    expect(event.data.gradeDistribution).toEqual(status.result.gradeDistribution);
    const cm = await getJson(['get', 'configmap', status.result.resultsConfigMap]);
    const essays = JSON.parse(cm.data['results.json']).essays;
    expect(essays).toHaveLength(12);
    expect(event.data.resultsRef).toMatchObject({
      configMap: status.result.resultsConfigMap,
      parts: 1,
      essays: 12,
      bytes: Buffer.byteLength(JSON.stringify(essays)),
    });
    expect(event.data.resultsRef.reason).toContain('limit 3000 bytes');
  }, 300_000);
});

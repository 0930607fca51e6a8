// Result events read by the official CloudEvents SDKs from the real broker, as consumers in other
// teams read them: Python (`cloudevents` on PyPI, `from_kafka`, which picks binary or structured
// mode by itself) and JavaScript (`cloudevents` on npm, `Kafka.toEvent`). The operator (dist/)
// finalizes a completed and a failed batch; the outbox relay publishes to the stack's broker, on a
// topic of this run. Every attribute each SDK returns is checked against what the operator
// committed, not against our own decoding of the record.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type CloudEvent, Kafka, type KafkaMessage } from 'cloudevents';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataSchemaUri, type EventType } from '../../contract/src/events.js';
import { repoRoot, toolPaths } from '../../hack/lib/tools.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { loadEventSchema, validate } from '../unit/outbox/event-schemas.js';
import { deleteNamespace, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { readRawTopic } from './kafka-topic.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

const TOPIC = `cj.sdk-test.${randomBytes(3).toString('hex')}`;
const run = promisify(execFile);

/** The venv hack/tools/python-cloudevents.sh builds; missing or stale fails the test, naming the fix. */
function pythonSdk(): string {
  const venv = path.join(toolPaths().cache, 'python-cloudevents');
  const python = path.join(venv, 'bin', 'python');
  const pins = createHash('sha256')
    .update(readFileSync(path.join(repoRoot, 'hack/tools/python-cloudevents.txt')))
    .digest('hex');
  const built = existsSync(path.join(venv, '.pins'))
    ? readFileSync(path.join(venv, '.pins'), 'utf8').trim()
    : '';
  if (!existsSync(python) || built !== pins)
    throw new Error(
      `The CloudEvents Python SDK venv at ${venv} is missing or built from other pins. Run \`npm run tools\` first.`,
    );
  return python;
}

let ns: string;
let sql: postgres.Sql;
let fake: FakeAnthropic;
let slowFake: FakeAnthropic;
let operator: OperatorProcess;
/** What the operator committed, per event id: the ground truth both SDKs are checked against. */
const committed = new Map<string, { name: string; uid: string; type: string; createdAt: Date }>();

const getJson = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-n', ns, '-o', 'json']));
const cond = (status: any, type: string) => status?.conditions?.find((c: any) => c.type === type);

async function runBatch(name: string, edit: (b: any) => void = () => {}) {
  const b = sampleBatch('cjbatch-small.yaml', name, ns);
  edit(b);
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(b));
  const published = await waitFor(
    `${name} EventPublished=True`,
    async () => {
      const got = await getJson(['get', 'cjbatch', name]);
      return cond(got.status, 'EventPublished')?.status === 'True' ? got : undefined;
    },
    240_000,
  );
  const uid = published.metadata.uid as string;
  const [row] = await sql`SELECT event_id, event_type, created_at FROM outbox WHERE batch_uid = ${uid}`;
  committed.set(row!.event_id, { name, uid, type: row!.event_type, createdAt: row!.created_at });
}

beforeAll(async () => {
  pythonSdk(); // before minutes of setup: a missing SDK fails at once
  await installCrds();
  ns = await newNamespace('events-sdk');
  const dbUrl = await freshDatabase('events_sdk');
  sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  [fake, slowFake] = await Promise.all([startFake(), startFake({ latencyMs: 120_000 })]);
  operator = await startOperator({
    namespace: ns,
    databaseUrl: dbUrl,
    // This run's own topic as the operator's: only this file's events are on it.
    env: { KAFKA_BROKERS: stack().kafkaBrokers, KAFKA_TOPIC: TOPIC },
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
  await Promise.all([
    runBatch('sdk-done'),
    // Every call to the slow fake takes 120 s and a round may last 1 min (the admission minimum): cj.batch.failed.v1.
    // Round by round: a pipelined batch is not failed for it (NothingJudged, pipeline.test.ts).
    runBatch('sdk-late', (b) => {
      b.metadata.annotations = { ...b.metadata.annotations, 'cj.huleedu.io/rounds': 'rounds' };
      b.spec.providerPoolRef.name = 'slow-pool';
      b.spec.timeouts = { round: '1m' };
    }),
  ]);
}, 360_000);

afterAll(async () => {
  await operator?.stop();
  await Promise.all([fake?.close(), slowFake?.close()]);
  await sql?.end();
  if (ns) await deleteNamespace(ns);
});

/** Every CloudEvents attribute, as the SDK returned it, equals what the operator committed. */
function expectAttributes(attrs: Record<string, unknown>, data: any) {
  const c = committed.get(attrs.id as string);
  expect(c, `an event id the operator committed (got ${attrs.id})`).toBeDefined();
  expect(attrs).toMatchObject({
    specversion: '1.0',
    id: attrs.id,
    type: c!.type,
    source: `/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/cjbatches/${c!.name}`,
    subject: c!.uid,
    datacontenttype: 'application/json',
    dataschema: dataSchemaUri(c!.type as EventType),
    partitionkey: c!.uid,
  });
  // Committed with the outcome; the SDKs return it as a date (Python) or an ISO string (JS).
  expect(Math.abs(new Date(attrs.time as string).getTime() - c!.createdAt.getTime())).toBeLessThan(5_000);
  expect(Object.keys(attrs).sort()).toEqual(
    [
      'datacontenttype',
      'dataschema',
      'id',
      'partitionkey',
      'source',
      'specversion',
      'subject',
      'time',
      'type',
    ].sort(),
  );
  // The data is the event's, whole: valid against the published schema once enveloped again.
  expect(data.batch).toEqual({ uid: c!.uid, namespace: ns, name: c!.name });
  expect(
    validate(loadEventSchema(c!.type), {
      ...attrs,
      time: new Date(attrs.time as string).toISOString(),
      data,
    }),
  ).toEqual([]);
}

describe('result events read by the official CloudEvents SDKs', () => {
  it('Python: cloudevents.core.bindings.kafka.from_kafka decodes every record with every attribute', async () => {
    const { stdout } = await run(
      pythonSdk(),
      [path.join(repoRoot, 'test/integration/sdk/read_events.py'), stack().kafkaBrokers, TOPIC],
      { timeout: 90_000 },
    );
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.error ?? 'decoded')).toEqual(lines.map(() => 'decoded'));
    expect(lines).toHaveLength(committed.size);
    expect(new Set(lines.map((l) => l.attributes.type))).toEqual(
      new Set(['cj.batch.completed.v1', 'cj.batch.failed.v1']),
    );
    for (const l of lines) expectAttributes(l.attributes, l.data);
  }, 120_000);

  it('JavaScript: Kafka.toEvent decodes every record with every attribute', async () => {
    const records = await readRawTopic(stack().kafkaBrokers, TOPIC);
    expect(records).toHaveLength(committed.size);
    for (const r of records) {
      // kafkajs returns header values and the key as Buffers; the SDK expects strings.
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]));
      const message: KafkaMessage<string> = {
        headers,
        key: r.key!.toString(), // the SDK passes the key through as partitionkey
        value: r.value.toString(),
        body: undefined,
      };
      const event = Kafka.toEvent(message) as CloudEvent<unknown>;
      expect(Array.isArray(event)).toBe(false);
      const { data, ...attrs } = event.toJSON() as Record<string, any>;
      // toJSON lists the attributes the SDK knows even when unset (dataschema: undefined).
      expectAttributes(Object.fromEntries(Object.entries(attrs).filter(([, v]) => v !== undefined)), data);
    }
  }, 120_000);
});

// Data-isolation drills (issue 15, data half) on the real stack: the real operator as a Postgres
// role that is NOT a superuser (LOGIN CREATEROLE, owner of its database only), the real apiserver,
// Job controller and Kafka broker.
//  - The credentials in a batch's `<batch>-worker` Secret: not superuser, no BYPASSRLS, own no
//    table, see only their batch's rows, cannot read or write another batch's rows, any outbox
//    row or the limiter tables, cannot reserve on another pool, cannot log in as the operator;
//    NOLOGIN once the batch ended, gone once it was deleted.
//  - Two batches on one pool, one with an override of 1 request/minute: the other finishes at
//    the pool's pace and the pool's limiter row keeps the pool's limit.
//  - spec.workers.image and spec.output.kafkaTopic outside the platform's allowlists are refused
//    with a message naming the field.
//  - A topic the broker refuses (max.message.bytes far below the event) parks that event with its
//    reason and an EventParked condition, while 10 other batches' events are published.
import { randomBytes, randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { RESULT_TOPIC, readTopic } from './kafka-topic.js';
import {
  installCrds,
  type OperatorProcess,
  poolManifests,
  smallBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

type Obj = Record<string, any>;
const TAG = randomBytes(3).toString('hex');
const OP_ROLE = `cjop_${TAG}`;
const OP_DB = `tdata_${TAG}`;
/** Allowed by KAFKA_ALLOWED_TOPICS below, but the broker takes no record above 200 bytes on it. */
const SMALL_TOPIC = `tdata.ok.small${TAG}`;

let ns: string;
let fake: FakeAnthropic;
let operator: OperatorProcess;
let opUrl: string;
let op: postgres.Sql;
const clients: postgres.Sql[] = [];

function connectAs(url: string) {
  const c = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  clients.push(c);
  return c;
}

/** The SQLSTATE a statement fails with, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return String((e as { code?: string }).code ?? (e as Error).message);
  }
}

const getBatch = async (name: string): Promise<Obj> =>
  JSON.parse(await kubectlOk(['get', 'cjbatch', name, '-n', ns, '-o', 'json']));

async function workerUrl(batch: string): Promise<string> {
  const s = await waitFor(`Secret ${batch}-worker`, async () => {
    const r = await kubectl(['get', 'secret', `${batch}-worker`, '-n', ns, '-o', 'json']);
    return r.code === 0 ? JSON.parse(r.stdout) : undefined;
  });
  return Buffer.from(s.data.DATABASE_URL, 'base64').toString();
}

async function apply(obj: Obj) {
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(obj));
}

const batch = (name: string, extra?: (b: any) => void) => smallBatch(name, ns, 12, extra);

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('tdata');
  // The operator's own role as we recommend it: no superuser, no BYPASSRLS; CREATEROLE to manage
  // the batch roles; owner of its database (and so of the tables it migrates).
  const admin = postgres(stack().postgresUrl, { max: 1, onnotice: () => {} });
  const pw = randomBytes(12).toString('hex');
  await admin.unsafe(`CREATE ROLE ${OP_ROLE} LOGIN CREATEROLE PASSWORD '${pw}'`);
  await admin.unsafe(`CREATE DATABASE ${OP_DB} OWNER ${OP_ROLE}`);
  await admin.end();
  const u = new URL(stack().postgresUrl);
  u.username = OP_ROLE;
  u.password = pw;
  u.pathname = `/${OP_DB}`;
  opUrl = u.toString();
  op = connectAs(opUrl);
  // The small topic exists before the batch that writes to it (as a platform team would create it).
  const kafka = new Kafka({ clientId: 'tdata', brokers: [stack().kafkaBrokers], logLevel: logLevel.NOTHING });
  const ka = kafka.admin();
  await ka.connect();
  await ka.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: SMALL_TOPIC, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '200' }] },
    ],
  });
  await ka.disconnect();

  fake = await startFake();
  operator = await startOperator({
    namespace: ns,
    databaseUrl: opUrl,
    env: { KAFKA_ALLOWED_TOPICS: 'tdata.ok.*' },
  });
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: poolManifests(ns, fake.url) }),
  );
  await waitFor(
    'pool Ready',
    async () => {
      const p = JSON.parse(await kubectlOk(['get', 'llmproviderpool', 'fake-pool', '-n', ns, '-o', 'json']));
      return p.status?.conditions?.some((c: Obj) => c.type === 'Ready' && c.status === 'True');
    },
    60_000,
  );
}, 180_000);

afterAll(async () => {
  if (ns) await kubectl(['delete', 'cjbatch', '--all', '-n', ns, '--wait=true', '--timeout=60s']);
  await operator?.stop();
  await fake?.close();
  await Promise.all(clients.map((c) => c.end({ timeout: 1 }).catch(() => {})));
  if (ns) await deleteNamespace(ns);
}, 120_000);

describe('tenant data isolation', () => {
  it('a batch with an override of 1 request/minute leaves the pool and its other batch at the pool limit; its credentials reach nothing else', async () => {
    // `slow` first: it holds its role for minutes (1 request/minute), `fast` runs beside it.
    await apply(
      batch('slow', (b) => {
        b.spec.overrides = { limits: { requestsPerMinute: 1 } };
      }),
    );
    const slowUrl = await workerUrl('slow');
    await waitFor(
      'slow Comparing',
      async () => (await getBatch('slow')).status?.phase === 'Comparing',
      90_000,
    );
    const t0 = Date.now();
    await apply(batch('fast'));
    const fast = await waitFor(
      'fast Succeeded',
      async () => {
        const b = await getBatch('fast');
        if (b.status?.phase === 'Failed')
          throw new Error(`fast failed: ${JSON.stringify(b.status.conditions)}`);
        return b.status?.phase === 'Succeeded' ? b : undefined;
      },
      180_000,
    );
    const fastSeconds = (Date.now() - t0) / 1000;
    const slow = await getBatch('slow');
    const slowUid = slow.metadata.uid;
    const fastUid = fast.metadata.uid;
    // fast judged all its pairs while slow, on the same pool, got at most one a minute (+ burst 1)
    const done = async (uid: string) =>
      (
        await op`SELECT count(*)::int AS n FROM comparisons WHERE batch_uid = ${uid} AND status = 'succeeded'`
      )[0]!.n;
    const fastDone = await done(fastUid);
    const slowDone = await done(slowUid);
    expect(fastDone).toBeGreaterThanOrEqual(10);
    expect(slowDone).toBeLessThanOrEqual(2 + Math.ceil(fastSeconds / 60));
    // the pool's row keeps the pool's limit; the override lives in the batch's own row
    const rows = await op`SELECT pool_key, rpm FROM llm_pool_limiter ORDER BY pool_key`;
    expect(rows.find((r) => r.pool_key === `${ns}/fake-pool`)?.rpm).toBe(1000);
    expect(rows.find((r) => r.pool_key === `batch:${slowUid}`)?.rpm).toBe(1);
    expect(rows.find((r) => r.pool_key === `batch:${fastUid}`)).toBeUndefined();
    console.log(
      `[tdata] fast: ${fastDone} comparisons in ${fastSeconds.toFixed(1)} s; slow (1/min) meanwhile: ${slowDone}`,
    );

    // The credentials a tenant can read from slow's Secret.
    const url = new URL(slowUrl);
    expect(url.username).not.toBe(OP_ROLE);
    expect(url.password.length).toBeGreaterThanOrEqual(24);
    const t = connectAs(slowUrl);
    const [me] = await t`
      SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb,
             (SELECT count(*)::int FROM pg_class WHERE relowner = r.oid) AS owned
        FROM pg_roles r WHERE rolname = current_user`;
    expect(me).toEqual({
      rolsuper: false,
      rolbypassrls: false,
      rolcreaterole: false,
      rolcreatedb: false,
      owned: 0,
    });
    expect((await t`SELECT uid FROM batches`).map((r) => r.uid)).toEqual([slowUid]);
    expect(await t`SELECT essay_id FROM essays WHERE batch_uid = ${fastUid}`).toHaveLength(0);
    expect(await t`SELECT 1 FROM scores WHERE batch_uid = ${fastUid}`).toHaveLength(0);
    expect(await t`SELECT 1 FROM comparisons WHERE batch_uid = ${fastUid}`).toHaveLength(0);
    expect(await t`SELECT 1 FROM rounds WHERE batch_uid = ${fastUid}`).toHaveLength(0);
    // the operator does see fast's rows: the emptiness above is the policy, not an empty table
    expect(
      (await op`SELECT count(*)::int AS n FROM essays WHERE batch_uid = ${fastUid}`)[0]!.n,
    ).toBeGreaterThan(0);
    expect(
      await t`UPDATE comparisons SET winner = 'A' WHERE batch_uid = ${fastUid} RETURNING id`,
    ).toHaveLength(0);
    expect(await outcome(t`DELETE FROM comparisons WHERE batch_uid = ${fastUid}`)).toBe('42501');
    expect(
      await outcome(t`INSERT INTO comparisons (batch_uid, round, shard, essay_a, essay_b)
                      VALUES (${fastUid}, 99, 0, 'x', 'y')`),
    ).toBe('42501');
    expect(await outcome(t`UPDATE comparisons SET batch_uid = ${fastUid} WHERE batch_uid = ${slowUid}`)).toBe(
      '42501',
    );
    expect(await outcome(t`SELECT * FROM outbox`)).toBe('42501');
    expect(
      await outcome(t`INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
                      VALUES (${randomUUID()}, ${slowUid}, 'cj.batch.completed.v1', ${RESULT_TOPIC}, 'k', '{}')`),
    ).toBe('42501');
    expect(await outcome(t`SELECT * FROM llm_pool_limiter`)).toBe('42501');
    expect(await outcome(t`SELECT * FROM llm_pool_reservations`)).toBe('42501');
    expect(await outcome(t`SELECT * FROM cj_batch_roles`)).toBe('42501');
    expect(
      await outcome(
        t`SELECT * FROM cj_limiter_reserve('other-ns/pool', ${randomUUID()}::uuid, 'x', 1, 1, 1, 1000, 1000, 50)`,
      ),
    ).toBe('42501');
    expect(await outcome(t`SELECT cj_limiter_block('other-ns/pool', 1e12)`)).toBe('42501');
    expect(await outcome(t`CREATE TABLE mine (x int)`)).toBe('42501');
    expect(await outcome(t`SET ROLE ${t(OP_ROLE)}`)).toBe('42501');
    // the operator's user name with this password does not log in
    const asOperator = new URL(slowUrl);
    asOperator.username = OP_ROLE;
    expect(await outcome(connectAs(asOperator.toString())`SELECT 1`)).toBe('28P01');

    // fast ended: once its workers are gone the role is retired (RoleRetired=True) and cannot log in any more
    const retired = await waitFor(
      'fast RoleRetired',
      async () =>
        (await getBatch('fast')).status?.conditions?.find(
          (x: Obj) => x.type === 'RoleRetired' && x.status === 'True',
        ),
      120_000,
    );
    expect(retired.reason).toBe('Retired');
    const fastUrl = await workerUrl('fast');
    expect(await outcome(connectAs(fastUrl)`SELECT 1`)).toBe('28000');
    // slow deleted: its role is dropped, and so is its own limiter row
    const slowRole = decodeURIComponent(url.username);
    await kubectlOk(['delete', 'cjbatch', 'slow', '-n', ns, '--wait=true', '--timeout=60s']);
    expect(await op`SELECT 1 FROM pg_roles WHERE rolname = ${slowRole}`).toHaveLength(0);
    expect(await op`SELECT 1 FROM llm_pool_limiter WHERE pool_key = ${`batch:${slowUid}`}`).toHaveLength(0);
  }, 420_000);

  it('refuses a worker image and a Kafka topic the platform does not allow, naming the field', async () => {
    await apply(
      batch('bad-image', (b) => {
        b.spec.workers = { parallelism: 1, image: 'attacker.example/steal-keys:latest' };
      }),
    );
    await apply(
      batch('bad-topic', (b) => {
        b.spec.output = { kafkaTopic: 'other-team.results' };
      }),
    );
    for (const [name, field] of [
      ['bad-image', 'spec.workers.image'],
      ['bad-topic', 'spec.output.kafkaTopic'],
    ] as const) {
      const c = await waitFor(`${name} InvalidSpec`, async () =>
        (await getBatch(name)).status?.conditions?.find(
          (x: Obj) => x.type === 'InvalidSpec' && x.status === 'True',
        ),
      );
      expect(c.message).toContain(field);
      expect(c.message).toMatch(/not allowed on this platform/);
    }
    // nothing of theirs reached the database, no Job or Secret was created
    const uids = [(await getBatch('bad-image')).metadata.uid, (await getBatch('bad-topic')).metadata.uid];
    expect(await op`SELECT 1 FROM batches WHERE uid IN ${op(uids)}`).toHaveLength(0);
    expect((await kubectl(['get', 'secret', 'bad-image-worker', '-n', ns])).code).not.toBe(0);
    const jobs = JSON.parse(
      await kubectlOk(['get', 'jobs', '-n', ns, '-l', 'cj.huleedu.io/batch=bad-image', '-o', 'json']),
    );
    expect(jobs.items).toHaveLength(0);
  }, 120_000);

  it('a topic the broker refuses parks that event with its reason while 10 other batches’ events are published', async () => {
    // Ten other batches' events, queued behind one that Kafka will refuse (oldest first).
    const poisonId = randomUUID();
    const others = Array.from({ length: 10 }, () => ({ id: randomUUID(), uid: randomUUID() }));
    await op.begin(async (tx) => {
      await tx`INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload, created_at)
               VALUES (${poisonId}, ${randomUUID()}, 'cj.batch.completed.v1', ${SMALL_TOPIC}, 'k',
                       ${tx.json({ id: poisonId, padding: 'x'.repeat(2000) })}, now() - interval '1 minute')`;
      for (const o of others)
        await tx`INSERT INTO outbox (event_id, batch_uid, event_type, topic, key, payload)
                 VALUES (${o.id}, ${o.uid}, 'cj.batch.completed.v1', ${RESULT_TOPIC}, ${o.uid},
                         ${tx.json({ specversion: '1.0', id: o.id, type: 'cj.batch.completed.v1' })})`;
    });
    // And a real batch whose result goes to the small topic: its event is parked, its status says why.
    await apply(
      batch('small-topic', (b) => {
        b.spec.output = { kafkaTopic: SMALL_TOPIC };
      }),
    );
    const cond = await waitFor(
      'small-topic EventParked',
      async () =>
        (await getBatch('small-topic')).status?.conditions?.find(
          (c: Obj) => c.type === 'EventPublished' && c.reason === 'EventParked',
        ),
      240_000,
    );
    expect(cond.status).toBe('False');
    expect(cond.message).toMatch(/MESSAGE_TOO_LARGE|too large|larger than/i);
    expect((await getBatch('small-topic')).status.phase).toBe('Succeeded');
    const ids = new Set((await readTopic(stack().kafkaBrokers, RESULT_TOPIC)).map((r) => r.event.id));
    for (const o of others) expect(ids.has(o.id)).toBe(true);
    const [p] = await op`SELECT parked_at, sent_at, last_error FROM outbox WHERE event_id = ${poisonId}`;
    expect(p!.sent_at).toBeNull();
    expect(p!.parked_at).not.toBeNull();
    expect(p!.last_error).toMatch(/Kafka refused/);
    const sent =
      await op`SELECT count(*)::int AS n FROM outbox WHERE event_id IN ${op(others.map((o) => o.id))} AND sent_at IS NOT NULL`;
    expect(sent[0]!.n).toBe(10);
    // nothing was written to the small topic
    expect(await readTopic(stack().kafkaBrokers, SMALL_TOPIC)).toHaveLength(0);
  }, 300_000);
});

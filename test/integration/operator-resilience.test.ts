// Restarts and takeovers: the operator leader killed mid-round, a second replica taking over the
// Lease, a fresh process resuming, and a worker pod deleted mid-round. The batch must finish with
// no comparison lost or duplicated and no Job created twice.
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, waitFor } from './helpers.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

let ns: string;
let dbUrl: string;
let sql: postgres.Sql;
let fake: FakeAnthropic;
const operators: OperatorProcess[] = [];

const getJson = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-n', ns, '-o', 'json']));
const status = async () => (await getJson(['get', 'cjbatch', 'resilient'])).status ?? {};
const leaseHolder = async () =>
  (await getJson(['get', 'lease', 'cj-operator-leader'])).spec?.holderIdentity as string | undefined;

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('resilience');
  dbUrl = await freshDatabase('res');
  sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  // Slow answers keep each round open long enough to interrupt it.
  fake = await startFake({ latencyMs: 250 });
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: poolManifests(ns, fake.url) }),
  );
});

afterAll(async () => {
  for (const o of operators) await o.stop('SIGKILL');
  await fake?.close();
  await sql?.end();
  if (ns) await deleteNamespace(ns);
});

it('finishes a batch through a leader kill, a Lease takeover, a restart and a deleted worker pod', async () => {
  const a = await startOperator({ namespace: ns, databaseUrl: dbUrl, identity: 'replica-a' });
  operators.push(a);
  await waitFor('replica-a leads', async () => (await leaseHolder()) === 'replica-a', 60_000);
  const b = await startOperator({ namespace: ns, databaseUrl: dbUrl, identity: 'replica-b' });
  operators.push(b);

  const batch = sampleBatch('cjbatch-demo.yaml', 'resilient', ns);
  // Round by round: the kills land mid-round and the Job checks count Jobs per round (the drills
  // cover the pipelined mode, the default).
  batch.metadata.annotations = { ...batch.metadata.annotations, 'cj.huleedu.io/rounds': 'rounds' };
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(batch));

  // 1. Kill the leader mid-round (round 2 or later, comparisons in flight).
  await waitFor(
    'round 2 comparing',
    async () => {
      const s = await status();
      return s.phase === 'Comparing' && (s.round ?? 0) >= 2;
    },
    240_000,
  );
  await a.stop('SIGKILL');
  await waitFor('replica-b takes the Lease', async () => (await leaseHolder()) === 'replica-b', 60_000);

  // 2. A worker pod deleted mid-round: its leased pairs go back to the queue.
  const pod = await waitFor(
    'a running comparison pod',
    async () => {
      const pods = (
        await getJson(['get', 'pods', '-l', 'cj.huleedu.io/batch=resilient,cj.huleedu.io/role=comparison'])
      ).items;
      return pods.find((p: any) => p.status?.phase === 'Running' && !p.metadata.deletionTimestamp);
    },
    240_000,
  );
  await kubectlOk(['delete', 'pod', pod.metadata.name, '-n', ns, '--wait=false']);

  // 3. Restart: the second replica is killed too; a fresh process resumes.
  await waitFor('a later round', async () => ((await status()).round ?? 0) >= 4, 240_000);
  await b.stop('SIGKILL');
  const c = await startOperator({ namespace: ns, databaseUrl: dbUrl, identity: 'replica-c' });
  operators.push(c);

  const final = await waitFor(
    'resilient Succeeded',
    async () => {
      const s = await status();
      if (s.phase === 'Failed') throw new Error(`batch failed: ${JSON.stringify(s.conditions)}`);
      return s.phase === 'Succeeded' ? s : undefined;
    },
    600_000,
  );

  // Nothing lost, nothing duplicated.
  const uid = (await getJson(['get', 'cjbatch', 'resilient'])).metadata.uid;
  const [db] = await sql`
    SELECT count(*)::int AS planned, count(*) FILTER (WHERE status = 'succeeded')::int AS completed,
           count(*) FILTER (WHERE status IN ('pending', 'leased'))::int AS open
      FROM comparisons WHERE batch_uid = ${uid}`;
  expect(db!.open).toBe(0);
  expect(final.comparisons.planned).toBe(db!.planned);
  expect(final.comparisons.completed).toBe(db!.completed);
  expect(final.comparisons.failed).toBe(0); // a deleted pod's pairs were retried, not failed
  const [rounds] =
    await sql`SELECT count(*)::int AS n, max(round)::int AS last FROM rounds WHERE batch_uid = ${uid}`;
  expect(rounds!.n).toBe(rounds!.last + 1); // each round scored exactly once

  // No Job was created twice: one scoring Job per scored round, one comparison Job per judged
  // round (a retry would carry an attempt suffix, and none was needed).
  const jobs = (await getJson(['get', 'jobs', '-l', 'cj.huleedu.io/batch=resilient'])).items.map(
    (j: any) => j.metadata.name as string,
  );
  expect(new Set(jobs).size).toBe(jobs.length);
  expect(jobs.filter((n: string) => /-score-\d+$/.test(n))).toHaveLength(rounds!.n);
  expect(jobs.filter((n: string) => /-\d+-\d+$/.test(n))).toEqual([]);
  expect((await kubectl(['get', 'lease', 'cj-operator-leader', '-n', ns])).code).toBe(0);
}, 900_000);

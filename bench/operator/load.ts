// Load drill (issue 9): many batches of 30 essays over two pools with different rate limits, on
// the local stack (reused from `npm run dev:up` when running), one operator process, the fake judge.
// Reports completion time against the minimum the pools' rate limits allow, operator CPU and peak
// RSS, apiserver requests per second, and checks that nothing was lost or duplicated: per batch,
// status counters equal the stored outcomes, and exactly one result event per batch reached Kafka.
//   node --import tsx bench/operator/load.ts [--batches 50] [--essays 30] [--budget 90]
//                                            [--rpm-a 600] [--rpm-b 300] [--rounds rounds|pipelined]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import postgres from 'postgres';
import YAML from 'yaml';
import { sleep } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { apiserverRequests, benchEnv, cleanupBench, startBenchJudge, startBenchOperator } from './harness.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('--batches', 50);
const ESSAYS = arg('--essays', 30);
const BUDGET = arg('--budget', 90);
const RPM = { 'pool-a': arg('--rpm-a', 600), 'pool-b': arg('--rpm-b', 300) };
const POOLS = Object.keys(RPM) as (keyof typeof RPM)[];
// The operator's rounds mode for every batch (its ROUNDS_MODE).
const MODE = process.argv.includes('--rounds')
  ? process.argv[process.argv.indexOf('--rounds') + 1]!
  : 'rounds';
if (!['rounds', 'pipelined'].includes(MODE))
  throw new Error(`--rounds: "${MODE}" is not rounds or pipelined`);
const TIMEOUT_MS = arg('--timeout-min', 40) * 60_000;

const bench = await benchEnv('load');
const { ns, api, env, dbUrl, stack: s } = bench;
const topic = `bench.load.${ns}`;
const fake = await startBenchJudge();
const op = await startBenchOperator(bench, {
  KAFKA_BROKERS: s.kafkaBrokers,
  KAFKA_TOPIC: topic,
  ROUNDS_MODE: MODE,
});
console.log(`namespace ${ns}; rounds mode ${MODE}; operator log: ${op.log}`);

const load = (f: string) => YAML.parse(readFileSync(path.join(repoRoot, 'config/samples', f), 'utf8'));
const secret = load('secret.yaml');
const pools = POOLS.map((name) => {
  const p = load('llmproviderpool.yaml');
  p.metadata = { name };
  p.spec.baseURL = fake.url;
  p.spec.limits = { requestsPerMinute: RPM[name], maxConcurrency: 16 };
  return p;
});
const demo = load('cjbatch-demo.yaml');
const grades: string[] = demo.spec.gradeScale.grades;
const anchors = grades.map((g) => demo.spec.anchors.find((a: any) => a.grade === g));
const batches = Array.from({ length: N }, (_, i) => ({
  apiVersion: demo.apiVersion,
  kind: demo.kind,
  metadata: { name: `load-${String(i).padStart(2, '0')}` },
  spec: {
    ...demo.spec,
    providerPoolRef: { name: POOLS[i % POOLS.length] },
    essays: { inline: demo.spec.essays.inline.slice(0, ESSAYS) },
    anchors,
    budget: { maxComparisons: BUDGET },
  },
}));
const cleanup = () => cleanupBench(bench, op, () => fake.close());
process.on('uncaughtException', (err) => {
  console.error(err);
  void cleanup().finally(() => process.exit(1));
});
const apply = (items: unknown[]) =>
  execFileSync('kubectl', ['apply', '-n', ns, '-f', '-'], {
    env,
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    stdio: ['pipe', 'ignore', 'inherit'],
  });
apply([secret, ...pools]);
const req0 = await apiserverRequests(api);
const cpu0 = op.cpuSeconds();
const t0 = Date.now();
apply(batches);
let list: any;
let readErrors = 0;
for (;;) {
  // A saturated machine can time out one read (seen at load 80): count it, look again.
  const got = await api
    .get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/cjbatches`)
    .catch((err: unknown) => {
      readErrors++;
      console.error(`\n  reading the batches failed (${readErrors}): ${String(err).slice(0, 200)}`);
      return undefined;
    });
  if (!got) {
    if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`timed out after ${TIMEOUT_MS / 60_000} min`);
    await sleep(2000);
    continue;
  }
  list = got;
  const done = list.items.filter((b: any) => ['Succeeded', 'Failed'].includes(b.status?.phase)).length;
  const completed = list.items.reduce((n: number, b: any) => n + (b.status?.comparisons?.completed ?? 0), 0);
  process.stdout.write(
    `\r  ${done}/${N} finished, ${completed} comparisons, ${Math.round((Date.now() - t0) / 1000)}s, load ${os.loadavg()[0]!.toFixed(1)} `,
  );
  if (done === N) break;
  if (op.exitCode() !== null) throw new Error(`operator exited (${op.exitCode()}); see ${op.log}`);
  if (Date.now() - t0 > TIMEOUT_MS) throw new Error(`timed out after ${TIMEOUT_MS / 60_000} min`);
  await sleep(2000);
}
const wall = (Date.now() - t0) / 1000;
const cpu = op.cpuSeconds() - cpu0;
const req1 = await apiserverRequests(api);
process.stdout.write('\n');

// Nothing lost: the status counters equal the stored outcomes, batch by batch.
const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
const rows = await sql<{ uid: string; succeeded: number; failed: number }[]>`
  SELECT batch_uid::text AS uid,
         count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE status = 'failed')::int AS failed
  FROM comparisons GROUP BY batch_uid`;
const unsent = (await sql`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`)[0]!.n as number;
await sql.end();
const stored = new Map(rows.map((r) => [r.uid, r]));
const mismatches: string[] = [];
const perPool = new Map<string, number>();
for (const b of list.items) {
  const st = b.status;
  const db = stored.get(b.metadata.uid);
  if (!db || db.succeeded !== st.comparisons.completed || db.failed !== (st.comparisons.failed ?? 0))
    mismatches.push(
      `${b.metadata.name}: status ${st.comparisons.completed}/${st.comparisons.failed} db ${db?.succeeded}/${db?.failed}`,
    );
  const pool = b.spec.providerPoolRef.name;
  perPool.set(pool, (perPool.get(pool) ?? 0) + st.comparisons.completed + (st.comparisons.failed ?? 0));
}

// Nothing duplicated or missing on Kafka: one result event per batch (by CloudEvent id and subject).
const kafka = new Kafka({ clientId: 'load-bench', brokers: [s.kafkaBrokers], logLevel: logLevel.NOTHING });
const consumer = kafka.consumer({ groupId: `load-${ns}` });
await consumer.connect();
await consumer.subscribe({ topic, fromBeginning: true });
const events: { id: string; subject: string }[] = [];
await consumer.run({
  eachMessage: async ({ message }) => {
    const e = JSON.parse(message.value!.toString());
    events.push({ id: e.id, subject: e.subject });
  },
});
const tk = Date.now();
while (events.length < N && Date.now() - tk < 60_000) await sleep(500);
await sleep(3000); // late duplicates would arrive here
await consumer.disconnect();
const ids = new Set(events.map((e) => e.id));
const subjects = new Set(events.map((e) => e.subject));
const uids = new Set(list.items.map((b: any) => b.metadata.uid));
const missing = [...uids].filter((u) => !subjects.has(u as string)).length;

const failed = list.items.filter((b: any) => b.status.phase === 'Failed').length;
const minSeconds = Math.max(...POOLS.map((p) => ((perPool.get(p) ?? 0) / RPM[p]) * 60));
const comparisons = [...perPool.values()].reduce((a, b) => a + b, 0);
console.log(`
machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${new Date().toISOString().slice(0, 10)}

| mode | batches × items | pools (rpm) | comparisons | wall time | rate-limit minimum | wall / minimum | failed batches | operator CPU | operator peak RSS | apiserver req/s |
|---|---|---|---|---|---|---|---|---|---|---|
| ${MODE} | ${N} × ${ESSAYS}+${anchors.length} | ${POOLS.map((p) => `${p} ${RPM[p]}: ${perPool.get(p)}`).join(', ')} | ${comparisons} | ${wall.toFixed(0)} s | ${minSeconds.toFixed(0)} s | ${(wall / minSeconds).toFixed(2)} | ${failed} | ${cpu.toFixed(0)} s (${((cpu / wall) * 100).toFixed(0)}% of a core) | ${(op.peakRssKiB() / 1024).toFixed(0)} MiB | ${((req1 - req0) / wall).toFixed(1)} |

| check | result |
|---|---|
| status counters == stored outcomes | ${mismatches.length === 0 ? `yes, all ${N}` : `NO: ${mismatches.join('; ')}`} |
| result events on Kafka | ${events.length} events, ${ids.size} distinct ids, ${missing} batches without an event |
| outbox rows unsent | ${unsent} |
`);
await cleanup();
const ok = mismatches.length === 0 && events.length === N && ids.size === N && missing === 0 && failed === 0;
process.exit(ok ? 0 : 1);

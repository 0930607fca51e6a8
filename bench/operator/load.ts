// Load drill (issue 9): many batches of 30 essays over two pools with different rate limits, on
// the local stack (reused from `npm run dev:up` when running), one operator process, the fake judge.
// Reports completion time against the minimum the pools' rate limits allow, operator CPU and peak
// RSS, apiserver requests per second, and checks that nothing was lost or duplicated: per batch,
// status counters equal the stored outcomes, and exactly one result event per batch reached Kafka.
// Also: apply → first verdict, pods created, the load average, and the CPU used by every part of
// the stack by role (operator, apiserver, etcd, Postgres, Kafka, worker pods, ...).
//   node --import tsx bench/operator/load.ts [--batches 50] [--essays 30] [--budget 90]
//                                            [--rpm-a 600] [--rpm-b 300] [--rounds rounds|pipelined]
//                                            [--stack NAME] [--timeout-min 40]
// It needs `npm run build` (the operator and the worker pods run dist/). The stack is a private one
// (`--stack`, default `load-<pid>`) started and stopped here, so its worker pods run this
// checkout; `--stack dev` uses (and keeps) the `npm run dev:up` stack, whichever checkout started it.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import postgres from 'postgres';
import YAML from 'yaml';
import { sleep } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { stopStack } from '../../hack/stack.js';
import {
  apiserverRequests,
  benchEnv,
  cleanupBench,
  sampleCpuByRole,
  startBenchJudge,
  startBenchOperator,
} from './harness.js';

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
const STACK = process.argv.includes('--stack')
  ? process.argv[process.argv.indexOf('--stack') + 1]!
  : `load-${process.pid}`;

const bench = await benchEnv('load', STACK);
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
const cleanup = () =>
  cleanupBench(bench, op, async () => {
    await fake.close();
    if (STACK !== 'dev') await stopStack(STACK).catch(() => {});
  });
process.on('uncaughtException', (err) => {
  console.error(err);
  void cleanup().finally(() => process.exit(1));
});
// Asynchronous: the fake judge lives in this process, and the pools' reachability check (cached
// by the operator for minutes) must not meet it blocked in a kubectl call.
const apply = (items: unknown[]) =>
  new Promise<void>((resolve, reject) => {
    const p = execFile('kubectl', ['apply', '-n', ns, '-f', '-'], { env, maxBuffer: 64 * 2 ** 20 }, (err) =>
      err ? reject(err) : resolve(),
    );
    p.stdin!.end(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  });
await apply([secret, ...pools]);
// The pools first: the clock starts with every pool Ready, as in floor.ts.
for (const t = Date.now(); ; await sleep(500)) {
  const ready = await Promise.all(
    POOLS.map((p) =>
      api
        .get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/llmproviderpools/${p}`)
        .then((o: any) => o.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
        .catch(() => false),
    ),
  );
  if (ready.every(Boolean)) break;
  if (Date.now() - t > 60_000) throw new Error('the pools did not become Ready in 60 s');
}
const req0 = await apiserverRequests(env);
const cpu0 = op.cpuSeconds();
const roles = sampleCpuByRole(s, op.pid);
const loads: number[] = [];
const pods = new Set<string>();
const t0 = Date.now();
await apply(batches);
let list: any;
let readErrors = 0;
for (;;) {
  loads.push(os.loadavg()[0]!);
  const podList = await api.get(`/api/v1/namespaces/${ns}/pods`).catch(() => undefined);
  for (const p of podList?.items ?? []) pods.add(p.metadata.uid);
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
const cpuByRole = roles.stop();
const req1 = await apiserverRequests(env);
// Pods seen by the 2-s poll, or the Jobs' own counts when a pod came and went between polls.
const jobs = (await api.get(`/apis/batch/v1/namespaces/${ns}/jobs`)).items as any[];
const jobPods = jobs.reduce(
  (n, j) => n + (j.status?.succeeded ?? 0) + (j.status?.failed ?? 0) + (j.status?.active ?? 0),
  0,
);
const podsCreated = Math.max(pods.size, jobPods);
process.stdout.write('\n');

// Nothing lost: the status counters equal the stored outcomes, batch by batch.
const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
const rows = await sql<{ uid: string; succeeded: number; failed: number }[]>`
  SELECT batch_uid::text AS uid,
         count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
         count(*) FILTER (WHERE status = 'failed')::int AS failed
  FROM comparisons GROUP BY batch_uid`;
const unsent = (await sql`SELECT count(*)::int AS n FROM outbox WHERE sent_at IS NULL`)[0]!.n as number;
// Apply → first verdict, and each batch's first verdict (the last of those says how long the
// slowest batch waited to start).
const firsts = await sql<{ first_ms: number }[]>`
  SELECT (extract(epoch FROM min(completed_at)) * 1000)::float8 AS first_ms
    FROM comparisons WHERE completed_at IS NOT NULL GROUP BY batch_uid ORDER BY 1`;
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
const firstVerdictS = ((firsts[0]?.first_ms ?? Number.NaN) - t0) / 1000;
const lastFirstS = ((firsts.at(-1)?.first_ms ?? Number.NaN) - t0) / 1000;
const meanLoad = loads.reduce((a, x) => a + x, 0) / Math.max(1, loads.length);
const seen = roles.processes();
const reqRate = (req1 - req0) / wall;
console.log(`
machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${new Date().toISOString().slice(0, 10)}

| mode | batches × items | pools (rpm) | comparisons | wall time | rate-limit minimum | wall / minimum | first verdict (last batch's first) | pods created | failed batches | operator CPU | operator peak RSS | apiserver req/s | load avg (mean, max) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
| ${MODE} | ${N} × ${ESSAYS}+${anchors.length} | ${POOLS.map((p) => `${p} ${RPM[p]}: ${perPool.get(p)}`).join(', ')} | ${comparisons} | ${wall.toFixed(0)} s | ${minSeconds.toFixed(0)} s | ${(wall / minSeconds).toFixed(2)} | ${firstVerdictS.toFixed(0)} s (${lastFirstS.toFixed(0)} s) | ${podsCreated} | ${failed} | ${cpu.toFixed(0)} s (${((cpu / wall) * 100).toFixed(0)}% of a core) | ${(op.peakRssKiB() / 1024).toFixed(0)} MiB | ${Number.isNaN(reqRate) ? 'unreadable' : reqRate.toFixed(1)} | ${meanLoad.toFixed(1)}, ${Math.max(...loads).toFixed(1)} |

| role | CPU s | share of all cores × wall | processes |
|---|---|---|---|
${Object.entries(cpuByRole)
  .sort((a, b) => b[1] - a[1])
  .map(
    ([r, c]) =>
      `| ${r} | ${c.toFixed(0)} | ${((c / (os.cpus().length * wall)) * 100).toFixed(0)}% | ${seen[r]} |`,
  )
  .join('\n')}

| check | result |
|---|---|
| status counters == stored outcomes | ${mismatches.length === 0 ? `yes, all ${N}` : `NO: ${mismatches.join('; ')}`} |
| result events on Kafka | ${events.length} events, ${ids.size} distinct ids, ${missing} batches without an event |
| outbox rows unsent | ${unsent} |
`);
await cleanup();
const ok = mismatches.length === 0 && events.length === N && ids.size === N && missing === 0 && failed === 0;
process.exit(ok ? 0 : 1);

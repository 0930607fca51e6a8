// Fair share bench (issue 19): batches of different spec.priority on one pool, the fake judge
// answering in 2-6 s, on a private process-tier stack (started and stopped here; needs
// `npm run build`). Two demo batches (priorities 10 and 30) start together; a small batch
// (config/samples/cjbatch-small.yaml, priority 10) is submitted last. Reports, per 60-s window,
// each batch's part of the verdicts beside the part its priority entitles it to among the batches
// active (applied, not finished) in each second of that window, and the small batch's wall time
// against its floor at its fair share (its comparisons ÷ (pool rate × its weight ÷ the weights
// active then)).
//
//   nice -n 10 node --import tsx bench/operator/share.ts [--rpm 120] [--late-after 60] [--stack NAME]
//       [--operator-env NAME=VALUE[,NAME=VALUE]]   (e.g. a rounds-mode switch)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { sleep } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { stopStack } from '../../hack/stack.js';
import { benchEnv, cleanupBench, startBenchJudge, startBenchOperator } from './harness.js';

const argv = process.argv.slice(2);
const num = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const RPM = num('--rpm', 120);
const LATE_AFTER_S = num('--late-after', 60);
const STACK = argv.includes('--stack') ? argv[argv.indexOf('--stack') + 1]! : `share-${process.pid}`;
const TIMEOUT_MS = 40 * 60_000;
const OPERATOR_ENV = Object.fromEntries(
  (argv.includes('--operator-env') ? argv[argv.indexOf('--operator-env') + 1]! : '')
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);

const load = (f: string) => YAML.parse(readFileSync(path.join(repoRoot, 'config/samples', f), 'utf8'));
const BATCHES = [
  { name: 'low', file: 'cjbatch-demo.yaml', priority: 10, lateS: 0 },
  { name: 'high', file: 'cjbatch-demo.yaml', priority: 30, lateS: 0 },
  { name: 'small', file: 'cjbatch-small.yaml', priority: 10, lateS: LATE_AFTER_S },
];

const bench = await benchEnv('share', STACK);
const { ns, api, env, dbUrl } = bench;
const fake = await startBenchJudge({ latencyMs: 2000, latencyMaxMs: 6000 });
const op = await startBenchOperator(bench, OPERATOR_ENV);
const apply = (items: unknown[]) =>
  execFileSync('kubectl', ['apply', '-n', ns, '-f', '-'], {
    env,
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
    stdio: ['pipe', 'ignore', 'inherit'],
  });
let ok = false;
try {
  const pool = load('llmproviderpool.yaml');
  pool.spec.baseURL = fake.url;
  pool.spec.limits = { requestsPerMinute: RPM, maxConcurrency: 16 };
  apply([load('secret.yaml'), pool]);
  const batchOf = (b: (typeof BATCHES)[number]) => {
    const m = load(b.file);
    return { ...m, metadata: { name: b.name }, spec: { ...m.spec, priority: b.priority } };
  };
  const t0 = Date.now();
  // Every second: which batches are asking the limiter (their share row's last ask within 2 s,
  // the limiter's own test for "waiting") and the grants each got since the last sample, read
  // before the limiter prunes its reservations.
  const samples: { s: number; asking: string[]; grants: Map<string, number> }[] = [];
  const probe = postgres(dbUrl, { max: 1, onnotice: () => {} });
  let prev: number | undefined;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const [{ t }] = (await probe`SELECT extract(epoch FROM clock_timestamp())::float8 * 1000 AS t`) as any;
      if (prev !== undefined) {
        const asking = await probe<{ uid: string }[]>`
          SELECT batch_uid::text AS uid FROM llm_pool_shares
           WHERE last_ask_at > to_timestamp(${t / 1000}) - interval '2 seconds'`;
        const g = await probe<{ uid: string; n: number }[]>`
          SELECT batch_uid::text AS uid, count(*)::int AS n FROM llm_pool_reservations
           WHERE batch_uid IS NOT NULL AND granted_at > to_timestamp(${prev / 1000})
             AND granted_at <= to_timestamp(${t / 1000}) GROUP BY 1`;
        samples.push({
          s: (t - t0) / 1000,
          asking: asking.map((r) => r.uid).sort(),
          grants: new Map(g.map((r) => [r.uid, r.n])),
        });
      }
      prev = t;
      await sleep(1000);
    }
  })();
  const applied = new Map<string, number>();
  const finished = new Map<string, number>();
  const uids = new Map<string, string>();
  for (;;) {
    const el = (Date.now() - t0) / 1000;
    const due = BATCHES.filter((b) => !applied.has(b.name) && el >= b.lateS);
    if (due.length) {
      apply(due.map(batchOf));
      for (const b of due) applied.set(b.name, Date.now());
    }
    const list = (await api.get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/cjbatches`)).items as any[];
    for (const b of list) {
      uids.set(b.metadata.name, b.metadata.uid);
      if (['Succeeded', 'Failed'].includes(b.status?.phase) && !finished.has(b.metadata.name))
        finished.set(b.metadata.name, Date.now());
    }
    process.stdout.write(
      `\r  ${Math.round(el)}s ${list.map((b) => `${b.metadata.name} ${b.status?.phase ?? '-'} ${b.status?.progress ?? ''} ${b.status?.throughput?.poolShare ?? ''}`).join(' | ')} load ${os.loadavg()[0]!.toFixed(1)}  `,
    );
    if (finished.size === BATCHES.length) break;
    if (op.exitCode() !== null) throw new Error(`operator exited (${op.exitCode()}); see ${op.log}`);
    if (Date.now() - t0 > TIMEOUT_MS) throw new Error('timed out');
    await sleep(1000);
  }
  process.stdout.write('\n');
  sampling = false;
  await sampler;
  await probe.end();

  // Verdicts per batch per 60-s window, from the comparisons' completion times (the limiter prunes
  // its settled reservations after two minutes, the comparisons stay).
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  const rows = await sql<{ uid: string; w: number; n: number }[]>`
    SELECT batch_uid::text AS uid,
           floor((extract(epoch FROM completed_at) * 1000 - ${t0}) / 60000)::int AS w,
           count(*)::int AS n
      FROM comparisons WHERE completed_at IS NOT NULL GROUP BY 1, 2 ORDER BY 2`;
  const [sm] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM comparisons WHERE batch_uid = ${uids.get('small')!} AND completed_at IS NOT NULL`;
  await sql.end();
  const nameOf = new Map([...uids].map(([n, u]) => [u, n]));
  const weight = new Map(BATCHES.map((b) => [b.name, b.priority]));
  // A batch is active from its apply to its finish. Its fair part of a window is its priority's
  // part of the active batches' priorities, averaged over the window's seconds in which any batch
  // was active: in a window where another batch finishes, the share that batch no longer uses
  // flows on to the others (by design), and the fair part follows it.
  const activeAt = (name: string, ms: number) =>
    applied.get(name)! <= ms && (finished.get(name) ?? Number.POSITIVE_INFINITY) > ms;
  const fairIn = (w: number) => {
    const parts = new Map<string, number>();
    let secs = 0;
    for (let s = 0; s < 60; s++) {
      const ms = t0 + (w * 60 + s + 0.5) * 1000;
      const act = BATCHES.filter((b) => activeAt(b.name, ms));
      if (act.length === 0) continue;
      secs++;
      const sumW = act.reduce((a, b) => a + b.priority, 0);
      for (const b of act) parts.set(b.name, (parts.get(b.name) ?? 0) + b.priority / sumW);
    }
    return new Map([...parts].map(([n, p]) => [n, p / Math.max(secs, 1)]));
  };
  const windows = [...new Set(rows.map((r) => r.w))].sort((a, b) => a - b);
  const lines: string[] = [];
  let within = 0;
  let judged = 0;
  let withinAmongJudged = 0;
  for (const w of windows) {
    const inW = rows.filter((r) => r.w === w);
    const total = inW.reduce((s, r) => s + r.n, 0);
    const sumW = inW.reduce((s, r) => s + weight.get(nameOf.get(r.uid)!)!, 0);
    const fair = fairIn(w);
    const wStart = t0 + w * 60_000;
    const cells = inW.map((r) => {
      const name = nameOf.get(r.uid)!;
      const share = r.n / total;
      const f = fair.get(name) ?? 0;
      // the older, cruder fair part: priority among the batches that got verdicts in the window
      const among = weight.get(name)! / sumW;
      // judged: the batch was active the whole window and another batch was active at its start
      const whole =
        applied.get(name)! <= wStart && (finished.get(name) ?? Number.POSITIVE_INFINITY) >= wStart + 60_000;
      const others = BATCHES.some((b) => b.name !== name && activeAt(b.name, wStart + 500));
      if (whole && others) {
        judged++;
        if (f > 0 && Math.abs(share / f - 1) <= 0.15) within++;
        if (Math.abs(share / among - 1) <= 0.15) withinAmongJudged++;
      }
      return `${name} ${(share * 100).toFixed(0)}% (fair ${(f * 100).toFixed(0)}%${whole ? '' : ', partial'})`;
    });
    lines.push(`| ${w * 60}-${(w + 1) * 60} s | ${total} | ${cells.join('; ')} |`);
  }
  // While the same two or more batches were all asking: each one's part of the grants beside
  // its priority's part of theirs, per 60-s window (stretches shorter than 20 s left out).
  const asked: string[] = [];
  let askWithin = 0;
  let askJudged = 0;
  const groups = new Map<string, { w: number; set: string[]; secs: number; grants: Map<string, number> }>();
  for (const x of samples) {
    if (x.asking.length < 2) continue;
    const w = Math.floor(x.s / 60);
    const key = `${w}|${x.asking.join(',')}`;
    const g = groups.get(key) ?? { w, set: x.asking, secs: 0, grants: new Map() };
    g.secs++;
    for (const u of x.asking) g.grants.set(u, (g.grants.get(u) ?? 0) + (x.grants.get(u) ?? 0));
    groups.set(key, g);
  }
  for (const g of [...groups.values()].sort((a, b) => a.w - b.w)) {
    if (g.secs < 20) continue;
    const total = [...g.grants.values()].reduce((a, b) => a + b, 0);
    const sumW = g.set.reduce((a, u) => a + weight.get(nameOf.get(u)!)!, 0);
    const cells = g.set.map((u) => {
      const name = nameOf.get(u)!;
      const share = total ? (g.grants.get(u) ?? 0) / total : 0;
      const fair = weight.get(name)! / sumW;
      askJudged++;
      if (Math.abs(share / fair - 1) <= 0.15) askWithin++;
      return `${name} ${(share * 100).toFixed(0)}% (fair ${(fair * 100).toFixed(0)}%)`;
    });
    asked.push(`| ${g.w * 60}-${(g.w + 1) * 60} s | ${g.secs} s | ${total} | ${cells.join('; ')} |`);
  }
  const smallWall = (finished.get('small')! - applied.get('small')!) / 1000;
  // its floor at its fair share: the pool's rate × 10 / (10 + 30 + 10) while all three run
  const smallFloor = (sm!.n / (RPM * (10 / 50))) * 60;
  console.log(`
machine: ${os.cpus().length} × ${os.cpus()[0]?.model}; ${new Date().toISOString().slice(0, 16)}Z; pool ${RPM}/min, 16 in flight, judge 2-6 s; operator env ${JSON.stringify(OPERATOR_ENV)}

| window | verdicts | each batch's part (fair part: its priority's part of the active batches', averaged over the window's seconds) |
|---|---|---|
${lines.join('\n')}

whole windows with 2+ batches within ±15% of their fair part: ${within}/${judged} batch-windows (against the priority's part among the batches judged in the window, the cruder rule of earlier runs: ${withinAmongJudged}/${judged})

While the same batches were all asking the limiter (sampled every second):

| window | seconds | grants | each batch's part of the grants (fair part by priority) |
|---|---|---|---|
${asked.join('\n')}

batch-stretches within ±15% of their fair part: ${askWithin}/${askJudged}
small batch (priority 10, submitted at ${LATE_AFTER_S} s): ${sm!.n} comparisons, ${smallWall.toFixed(0)} s from apply to finish; floor at its fair share (20% of ${RPM}/min) ${smallFloor.toFixed(0)} s; ratio ${(smallWall / smallFloor).toFixed(2)}
finished at: ${BATCHES.map((b) => `${b.name} ${(((finished.get(b.name) ?? 0) - t0) / 1000).toFixed(0)} s`).join(', ')}
operator CPU ${op.cpuSeconds().toFixed(1)} s, peak RSS ${(op.peakRssKiB() / 1024).toFixed(0)} MiB
`);
  ok = true;
} finally {
  await cleanupBench(bench, op, () => fake.close()).catch(() => {});
  await stopStack(STACK).catch(() => {});
}
process.exit(ok ? 0 : 1);

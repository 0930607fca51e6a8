// Floor benchmark (issue 19): one batch at a time on the local process-tier stack, the fake judge
// answering in a latency drawn from 2-6 s, against the floor its pool allows: the largest of
// comparisons ÷ requests per minute, tokens ÷ token rates, and the latency chain (comparisons ×
// mean latency ÷ the pool's concurrency). Reports wall time (apply → Succeeded), the ratio to the
// floor, the share of the pool's request rate used between the first and the last verdict, the
// fixed start-up (apply → first verdict), pods created, operator CPU and peak RSS, and per 10 s
// the verdicts and the calls in flight (each call from its lane's start, limiter wait included).
//
// Cases: `demo` (config/samples/cjbatch-demo.yaml, 40 essays + 12 anchors, default budget) on a
// pool of 60 requests/minute; `e200` (200 essays made from the demo's by reordering paragraphs,
// the same 12 anchors, default budget) on a pool of 1,000/minute. Modes run one after another in
// the same invocation, so every figure has its same-run baseline: `rounds` (ROUNDS_MODE=rounds)
// and any mode given as operator environment with `--mode NAME=ENV=VALUE[,ENV=VALUE]`.
//
//   nice -n 10 node --import tsx bench/operator/floor.ts [--cases demo,e200] [--latency-ms 2000-6000]
//       [--mode pipelined=CJ_SOME_SWITCH=1] [--no-baseline] [--stack NAME]
//       [--slow-start DURATION] [--concurrency N] [--tier NAME]
//
// `--slow-start` sets the pool's spec.slowStart.duration (default: the CRD's 60s; `0s` for a key
// that already carries traffic); `--concurrency` the pool's maxConcurrency (default per case), the
// e200 batch then getting enough pods of 16 lanes to fill it (above 50, `--tier build`: the start
// tier's ceiling is 50 in flight).
//
// It needs `npm run build` (the operator and the worker pods run dist/). The stack is a private one
// (`--stack`, default `floor-<pid>`) started and stopped here, so its worker pods run this checkout.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { LIMITER_DEFAULTS, resolvePoolRuntimeConfig } from '../../contract/src/pool-runtime.js';
import { sleep } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { stopStack } from '../../hack/stack.js';
import { benchEnv, cleanupBench, startBenchJudge, startBenchOperator } from './harness.js';

const argv = process.argv.slice(2);
const opt = (name: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const all = (name: string) => argv.flatMap((a, i) => (a === name && argv[i + 1] ? [argv[i + 1]!] : []));

const CASES = (opt('--cases') ?? 'demo,e200').split(',');
const [LAT_LO, LAT_HI] = (opt('--latency-ms') ?? '2000-6000').split('-').map(Number) as [number, number];
const STACK = opt('--stack') ?? `floor-${process.pid}`;
const RUN_TIMEOUT_MS = 40 * 60_000;
const SLOW_START = opt('--slow-start');
const TIER = opt('--tier');
const CONCURRENCY = opt('--concurrency') === undefined ? undefined : Number(opt('--concurrency'));
if (CONCURRENCY !== undefined && !(Number.isInteger(CONCURRENCY) && CONCURRENCY > 0))
  throw new Error("--concurrency: a positive integer (the pool's maxConcurrency)");
/** Worker lanes per pod (contract POOL_DEFAULTS.concurrency). */
const LANES_PER_POD = 16;

const MODES: { name: string; env: Record<string, string> }[] = [
  // `--no-baseline`: only the given modes (a diagnostic run; the table's rows need the baseline).
  ...(argv.includes('--no-baseline') ? [] : [{ name: 'rounds', env: { ROUNDS_MODE: 'rounds' } }]),
  ...all('--mode').map((m) => {
    const [name, ...rest] = m.split('=');
    const env = Object.fromEntries(
      rest
        .join('=')
        .split(',')
        .filter(Boolean)
        .map((kv) => {
          const [k, ...v] = kv.split('=');
          return [k!, v.join('=')];
        }),
    );
    if (!name || Object.keys(env).length === 0)
      throw new Error(`--mode ${m}: write NAME=ENV=VALUE[,ENV=VALUE], e.g. pipelined=CJ_PIPELINE=1`);
    return { name, env };
  }),
];

const load = (f: string) => YAML.parse(readFileSync(path.join(repoRoot, 'config/samples', f), 'utf8'));
const demo = load('cjbatch-demo.yaml');

/** 200 distinct essays from the demo's 40: each paragraph order (5 rotations) is one copy. */
function essays200(): { id: string; text: string }[] {
  const out: { id: string; text: string }[] = [];
  for (let c = 0; c < 5; c++)
    for (const e of demo.spec.essays.inline as { id: string; text: string }[]) {
      const paras = e.text.split('\n\n');
      const k = c % paras.length;
      const text = c === 0 ? e.text : [...paras.slice(k), ...paras.slice(0, k)].join('\n\n');
      out.push({ id: `${e.id}-v${c}`, text: c > 0 && text === e.text ? `${text}\n\n(${c})` : text });
    }
  return out;
}

interface Case {
  name: string;
  rpm: number;
  maxConcurrency: number;
  batch: (poolName: string) => unknown;
}
const CASE_DEFS: Record<string, Case> = {
  demo: {
    name: 'demo 40+12, 60/min',
    rpm: 60,
    maxConcurrency: 16,
    batch: (pool) => ({ ...demo, spec: { ...demo.spec, providerPoolRef: { name: pool } } }),
  },
  e200: {
    name: '200+12, 1,000/min',
    rpm: 1000,
    maxConcurrency: CONCURRENCY ?? 50,
    batch: (pool) => ({
      ...demo,
      metadata: { name: 'e200' },
      spec: {
        ...demo.spec,
        providerPoolRef: { name: pool },
        essays: { inline: essays200() },
        // Pods × 16 lanes ≥ the pool's in flight: the pool, not the batch, caps concurrency.
        workers: { ...demo.spec.workers, parallelism: Math.ceil((CONCURRENCY ?? 50) / LANES_PER_POD) },
      },
    }),
  },
};

interface Row {
  case: string;
  mode: string;
  comparisons: number;
  floorS: number;
  floorWhy: string;
  limiterFloorS: number;
  wallS: number;
  startupS: number;
  rateUsed: number;
  /** The same against the most the pool allows: min(requests per minute, lanes ÷ mean latency). */
  boundUsed: number;
  meanLatencyMs: number;
  rounds: number;
  pods: number;
  cpuS: number;
  rssMiB: number;
  load: number;
  phase: string;
  /** Per 10-s window from apply: verdicts, and the mean calls in flight (from each call's start and end). */
  timeline: { verdicts: number; inFlight: number }[];
}

/**
 * Seconds the pool-wide limiter lets `n` requests finish in: it aims at safety × rpm and starts a
 * fresh pool at `initial` of that, reaching all of it after `rampS` (the pool's slow start), while at
 * most `inFlight` calls of `latencyS` each run at once. The two compound: during the slow start
 * the rate is the bound, after it the concurrency (their max alone understates the floor).
 */
function limiterSeconds(
  n: number,
  rpm: number,
  inFlight: number,
  latencyS: number,
  ramp: { initialFraction: number; durationMs: number },
  safety = 0.95,
): number {
  const initial = ramp.durationMs > 0 ? ramp.initialFraction : 1;
  const rampS = Math.max(0.001, ramp.durationMs / 1000);
  const dt = 0.01;
  let done = 0;
  let t = 0;
  for (; done < n; t += dt) {
    const ramp = ((rpm * safety) / 60) * Math.min(1, initial + ((1 - initial) * t) / rampS);
    done += Math.min(ramp, inFlight / latencyS) * dt;
  }
  return t;
}

async function runOne(c: Case, mode: (typeof MODES)[number]): Promise<Row> {
  const bench = await benchEnv('floor', STACK);
  const { ns, api, env, dbUrl } = bench;
  const fake = await startBenchJudge({ latencyMs: LAT_LO, latencyMaxMs: LAT_HI });
  const op = await startBenchOperator(bench, mode.env);
  const cleanup = () => cleanupBench(bench, op, () => fake.close());
  try {
    const pool = load('llmproviderpool.yaml');
    pool.spec.baseURL = fake.url;
    pool.spec.limits = { requestsPerMinute: c.rpm, maxConcurrency: c.maxConcurrency };
    if (SLOW_START !== undefined) pool.spec.slowStart = { duration: SLOW_START };
    if (TIER !== undefined) pool.spec.tier = TIER;
    const apply = (items: unknown[]) =>
      execFileSync('kubectl', ['apply', '-n', ns, '-f', '-'], {
        env,
        input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
        stdio: ['pipe', 'ignore', 'inherit'],
      });
    apply([load('secret.yaml'), pool]);
    const poolPath = `/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/llmproviderpools/${pool.metadata.name}`;
    for (const t = Date.now(); ; await sleep(500)) {
      const p = await api.get(poolPath);
      if (p.status?.conditions?.some((x: any) => x.type === 'Ready' && x.status === 'True')) break;
      if (Date.now() - t > 60_000) throw new Error('the pool did not become Ready in 60 s');
    }
    const batch = c.batch(pool.metadata.name) as { metadata: { name: string }; spec: any };
    const cpu0 = op.cpuSeconds();
    const pods = new Set<string>();
    const loads: number[] = [];
    const t0 = Date.now();
    apply([batch]);
    const bPath = `/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/cjbatches/${batch.metadata.name}`;
    let b: any;
    for (;;) {
      b = await api.get(bPath).catch(() => undefined);
      for (const p of (await api.get(`/api/v1/namespaces/${ns}/pods`)).items) pods.add(p.metadata.uid);
      loads.push(os.loadavg()[0]!);
      const phase = b?.status?.phase;
      process.stdout.write(
        `\r  ${c.name} [${mode.name}] ${phase ?? '-'} ${b?.status?.progress ?? ''} ${Math.round((Date.now() - t0) / 1000)}s, load ${os.loadavg()[0]!.toFixed(1)}   `,
      );
      if (phase === 'Succeeded' || phase === 'Failed') break;
      if (op.exitCode() !== null) throw new Error(`operator exited (${op.exitCode()}); see ${op.log}`);
      if (Date.now() - t0 > RUN_TIMEOUT_MS) throw new Error(`timed out after ${RUN_TIMEOUT_MS / 60_000} min`);
      await sleep(1000);
    }
    const wallS = (Date.now() - t0) / 1000;
    const cpuS = op.cpuSeconds() - cpu0;
    process.stdout.write('\n');

    const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
    const [d] = await sql<
      {
        n: number;
        first_ms: number;
        last_ms: number;
        input: string;
        output: string;
        latency: number;
        rounds: number;
      }[]
    >`
      SELECT count(*)::int AS n,
             (extract(epoch FROM min(completed_at)) * 1000)::float8 AS first_ms,
             (extract(epoch FROM max(completed_at)) * 1000)::float8 AS last_ms,
             coalesce(sum(input_tokens + cache_write_tokens), 0)::bigint AS input,
             coalesce(sum(output_tokens), 0)::bigint AS output,
             coalesce(avg(latency_ms), 0)::float8 AS latency,
             count(DISTINCT round)::int AS rounds
        FROM comparisons WHERE batch_uid = ${b.metadata.uid} AND completed_at IS NOT NULL`;
    // Where the time goes: each call spans [completed_at - latency_ms, completed_at]; sampled every
    // second from apply, averaged per 10-s window, beside the verdicts of the window.
    const timeline = await sql<{ w: number; verdicts: number; in_flight: number }[]>`
      WITH c AS (SELECT completed_at AS e, completed_at - make_interval(secs => coalesce(latency_ms, 0) / 1000.0) AS s
                   FROM comparisons WHERE batch_uid = ${b.metadata.uid} AND completed_at IS NOT NULL
                    AND status = 'succeeded'),
           t AS (SELECT g, to_timestamp(${t0 / 1000}) + make_interval(secs => g) AS at
                   FROM generate_series(0, ${Math.ceil(wallS)}) g),
           per_s AS (SELECT t.g, (SELECT count(*) FROM c WHERE c.s <= t.at AND c.e > t.at) AS busy,
                            (SELECT count(*) FROM c WHERE c.e >= t.at AND c.e < t.at + interval '1 second') AS done
                       FROM t)
      SELECT (g / 10)::int AS w, sum(done)::int AS verdicts, avg(busy)::float8 AS in_flight
        FROM per_s GROUP BY g / 10 ORDER BY 1`;
    await sql.end();
    // Pods seen by the 1-s poll, or the Jobs' own counts when a pod came and went between polls.
    const jobs = (await api.get(`/apis/batch/v1/namespaces/${ns}/jobs`)).items as any[];
    const jobPods = jobs.reduce(
      (s, j) => s + (j.status?.succeeded ?? 0) + (j.status?.failed ?? 0) + (j.status?.active ?? 0),
      0,
    );

    const { limits, limiter } = resolvePoolRuntimeConfig(pool.spec);
    const n = d!.n;
    const lanes = Math.min(limits.maxConcurrency, (batch.spec.workers?.parallelism ?? 2) * LANES_PER_POD);
    const floors: [string, number][] = [
      ['requests', (n / limits.requestsPerMinute) * 60],
      ['input tokens', (Number(d!.input) / limits.inputTokensPerMinute) * 60],
      ['output tokens', (Number(d!.output) / limits.outputTokensPerMinute) * 60],
      ['latency chain', (n * ((LAT_LO + LAT_HI) / 2 / 1000)) / lanes],
    ];
    const [floorWhy, floorS] = floors.reduce((a, x) => (x[1] > a[1] ? x : a));
    const spanMin = (d!.last_ms - d!.first_ms) / 60_000;
    return {
      case: c.name,
      mode: mode.name,
      comparisons: n,
      floorS,
      floorWhy,
      limiterFloorS: limiterSeconds(
        n,
        limits.requestsPerMinute,
        lanes,
        (LAT_LO + LAT_HI) / 2 / 1000,
        limiter.rampUp ?? LIMITER_DEFAULTS.rampUp,
      ),
      wallS,
      startupS: (d!.first_ms - t0) / 1000,
      rateUsed: spanMin > 0 ? (n - 1) / spanMin / limits.requestsPerMinute : 0,
      boundUsed:
        spanMin > 0
          ? (n - 1) /
            spanMin /
            Math.min(limits.requestsPerMinute, (lanes * 60) / ((LAT_LO + LAT_HI) / 2 / 1000))
          : 0,
      meanLatencyMs: d!.latency,
      rounds: d!.rounds,
      pods: Math.max(pods.size, jobPods),
      cpuS,
      rssMiB: op.peakRssKiB() / 1024,
      load: loads.reduce((a, x) => a + x, 0) / Math.max(1, loads.length),
      phase: b.status.phase,
      timeline: timeline.map((x) => ({ verdicts: x.verdicts, inFlight: x.in_flight })),
    };
  } finally {
    await cleanup().catch((e) => console.error(`cleanup: ${(e as Error).message}`));
  }
}

const rows: Row[] = [];
try {
  for (const name of CASES) {
    const c = CASE_DEFS[name];
    if (!c) throw new Error(`--cases: unknown case "${name}"; use ${Object.keys(CASE_DEFS).join(', ')}`);
    for (const m of MODES) rows.push(await runOne(c, m));
  }
} finally {
  await stopStack(STACK).catch(() => {});
}

const f0 = (x: number) => x.toFixed(0);
console.log(`
machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ${new Date().toISOString().slice(0, 16)}Z; judge latency ${LAT_LO}-${LAT_HI} ms; slow start ${SLOW_START ?? 'default (60s)'}; e200 maxConcurrency ${CONCURRENCY ?? 50}; tier ${TIER ?? 'start'}

| case | mode | comparisons | floor (bound) | limiter floor | wall | wall / floor | rate used, first→last verdict | of the bound | start-up | rounds | pods | operator CPU | operator RSS | load avg | phase |
|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows
  .map(
    (r) =>
      `| ${r.case} | ${r.mode} | ${r.comparisons} | ${f0(r.floorS)} s (${r.floorWhy}) | ${f0(r.limiterFloorS)} s | ${f0(r.wallS)} s | ${(r.wallS / r.floorS).toFixed(2)} | ${(r.rateUsed * 100).toFixed(0)}% | ${(r.boundUsed * 100).toFixed(0)}% | ${r.startupS.toFixed(1)} s | ${r.rounds} | ${r.pods} | ${r.cpuS.toFixed(1)} s | ${f0(r.rssMiB)} MiB | ${r.load.toFixed(1)} | ${r.phase} |`,
  )
  .join('\n')}

Per 10 s from apply: verdicts / mean calls in flight
${rows
  .map(
    (r) =>
      `${r.case} [${r.mode}]: ${r.timeline.map((x) => `${x.verdicts}/${x.inFlight.toFixed(0)}`).join(' ')}`,
  )
  .join('\n')}
`);
process.exit(rows.every((r) => r.phase === 'Succeeded') ? 0 : 1);

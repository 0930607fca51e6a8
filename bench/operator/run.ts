// Operator load benchmark: N small batches at once on the local stack (reused from `npm run
// dev:up` when running). Reports wall time, reconcile latency p50/p99 (from the operator's
// controller_runtime_reconcile_time_seconds histogram), apiserver requests per second (from the
// apiserver's apiserver_request_total) and the operator's peak RSS.
//   node --import tsx bench/operator/run.ts [--batches 20]
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { sleep } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { apiserverRequests, benchEnv, cleanupBench, startBenchJudge, startBenchOperator } from './harness.js';

const N = Number(process.argv[process.argv.indexOf('--batches') + 1] || 20) || 20;

function histogramQuantile(text: string, metric: string, q: number): number | undefined {
  const buckets: [number, number][] = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${metric}_bucket\\{.*le="([^"]+)".*\\} (\\d+(?:\\.\\d+)?)`).exec(line);
    if (m) buckets.push([m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]), Number(m[2])]);
  }
  // sum across label sets per bound
  const byLe = new Map<number, number>();
  for (const [le, c] of buckets) byLe.set(le, (byLe.get(le) ?? 0) + c);
  const sorted = [...byLe.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1];
  if (!total) return undefined;
  let prevLe = 0;
  let prevC = 0;
  for (const [le, c] of sorted) {
    if (c >= q * total) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (q * total - prevC)) / Math.max(1, c - prevC);
    }
    prevLe = le;
    prevC = c;
  }
  return undefined;
}

const bench = await benchEnv('bench');
const { ns, api, env } = bench;
const fake = await startBenchJudge();
const op = await startBenchOperator(bench);
console.log(`operator log: ${op.log}`);

const pool = YAML.parse(readFileSync(path.join(repoRoot, 'config/samples/llmproviderpool.yaml'), 'utf8'));
pool.spec.baseURL = fake.url;
pool.spec.limits = { requestsPerMinute: 1000, maxConcurrency: 50 };
const secret = YAML.parse(readFileSync(path.join(repoRoot, 'config/samples/secret.yaml'), 'utf8'));
const small = YAML.parse(readFileSync(path.join(repoRoot, 'config/samples/cjbatch-small.yaml'), 'utf8'));
const items = [
  secret,
  pool,
  ...Array.from({ length: N }, (_, i) => ({ ...small, metadata: { name: `batch-${i}` } })),
];
const cleanup = () => cleanupBench(bench, op, () => fake.close());
process.on('uncaughtException', (err) => {
  console.error(err);
  void cleanup().finally(() => process.exit(1));
});
const req0 = await apiserverRequests(env);
const t0 = Date.now();
execFileSync('kubectl', ['apply', '-n', ns, '-f', '-'], {
  env,
  input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }),
  stdio: ['pipe', 'ignore', 'inherit'],
});
let done = 0;
while (done < N) {
  const list = await api.get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/cjbatches`);
  done = list.items.filter((b: any) => ['Succeeded', 'Failed'].includes(b.status?.phase)).length;
  const failed = list.items.filter((b: any) => b.status?.phase === 'Failed').length;
  process.stdout.write(
    `\r  ${done}/${N} finished (${failed} failed)  ${Math.round((Date.now() - t0) / 1000)}s `,
  );
  if (Date.now() - t0 > 15 * 60_000) {
    console.error('\ntimed out after 15 min');
    await cleanup();
    process.exit(1);
  }
  await sleep(1000);
}
const wall = (Date.now() - t0) / 1000;
const req1 = await apiserverRequests(env);
const metrics = await (await fetch(`http://127.0.0.1:${op.probePort}/metrics`)).text();
const p50 = histogramQuantile(metrics, 'controller_runtime_reconcile_time_seconds', 0.5);
const p99 = histogramQuantile(metrics, 'controller_runtime_reconcile_time_seconds', 0.99);
const list = await api.get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${ns}/cjbatches`);
const failed = list.items.filter((b: any) => b.status?.phase === 'Failed').length;
console.log(`\n
| batches | finished | failed | wall time | reconcile p50 | reconcile p99 | apiserver req/s | operator peak RSS |
|---|---|---|---|---|---|---|---|
| ${N} (12 items each) | ${N} | ${failed} | ${wall.toFixed(0)} s | ${((p50 ?? 0) * 1000).toFixed(0)} ms | ${((p99 ?? 0) * 1000).toFixed(0)} ms | ${((req1 - req0) / wall).toFixed(1)} | ${(op.peakRssKiB() / 1024).toFixed(0)} MiB |
`);
await cleanup();
process.exit(failed > 0 ? 1 : 0);

// kubectl cj estimate against a real batch: the example class on a pool limited to 60 requests a
// minute (the fake judge), with a budget above its distinct pairs so the batch stops before the
// budget. The estimate printed before the submit and the one kept in status.estimate must hold
// against the actuals: comparisons within 20%, tokens and cost within 15% given the comparisons,
// wall time within 25%. The figures are printed for docs/estimate.md.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from '../../hack/lib/tools.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  startFake,
  startOperator,
} from './operator-harness.js';

const CLI = path.join(repoRoot, 'dist/operator/src/cli/kubectl-cj.js');
const CLASS = path.join(repoRoot, 'config/samples/class-example');
let ns: string;
let fake: FakeAnthropic;
let operator: OperatorProcess;

function cj(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '-n', ns],
      { env: { ...process.env, KUBECONFIG: stack().kubeconfig }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('estimate');
  fake = await startFake();
  operator = await startOperator({ namespace: ns, databaseUrl: await freshDatabase('estimate') });
  const [secret, pool] = poolManifests(ns, fake.url, 'slow-pool') as any[];
  pool.spec.limits = { requestsPerMinute: 60, maxConcurrency: 16 };
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [secret, pool] }),
  );
});

afterAll(async () => {
  await operator?.stop();
  await fake?.close();
  if (ns) await deleteNamespace(ns);
});

const within = (est: number, act: number) => Math.abs(est - act) / act;

it('holds against a batch that stops before its budget on a 60/min pool', async () => {
  await waitFor('pool Ready', async () => {
    const p = JSON.parse(await kubectlOk(['get', 'llmpool', 'slow-pool', '-n', ns, '-o', 'json']));
    return p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');
  });
  const est = await cj(['estimate', CLASS, '--pool', 'slow-pool', '--budget', '200', '-o', 'json']);
  expect(est.code, est.stderr).toBe(0);
  const e = JSON.parse(est.stdout);
  // 16 items: 120 distinct pairs, all judged before the budget of 200.
  expect(e.comparisons).toMatchObject({
    expected: 120,
    budget: 200,
    endsBy: 'complete',
    stopsBeforeBudget: true,
  });
  expect(e.wall.limitedBy).toBe('requests per minute');

  const sub = await cj([
    'submit',
    CLASS,
    '--pool',
    'slow-pool',
    '--budget',
    '200',
    '--wait',
    '--timeout',
    '20m',
  ]);
  expect(sub.code, `${sub.stdout}\n${sub.stderr}`).toBe(0);
  // The status kept the same estimate, and --wait printed it beside the actuals.
  expect(sub.stdout).toMatch(/^comparisons\s+120\s+120$/m);
  const b = JSON.parse(await kubectlOk(['get', 'cjbatch', 'class-example', '-n', ns, '-o', 'json']));
  const s = b.status;
  const own = e.modes[0];
  expect(s.estimate).toMatchObject({
    comparisons: e.comparisons.expected,
    mode: 'per_request',
    inputTokens: own.tokens.input,
    outputTokens: own.tokens.output,
    cacheReadTokens: own.tokens.cacheRead,
    cacheWriteTokens: own.tokens.cacheWrite,
    estimatedUSD: own.costUsd.toFixed(6),
  });

  const actual = {
    comparisons: s.comparisons.completed + s.comparisons.failed,
    input: s.cost.inputTokens + s.cost.cacheReadTokens + s.cost.cacheWriteTokens,
    output: s.cost.outputTokens,
    usd: Number(s.cost.estimatedUSD),
    seconds: (Date.parse(s.completionTime) - Date.parse(s.startTime)) / 1000,
  };
  // Tokens and cost given the comparisons: the estimate scaled to the comparisons that ran.
  const k = actual.comparisons / e.comparisons.expected;
  const estimate = {
    input: (own.tokens.input + own.tokens.cacheRead + own.tokens.cacheWrite) * k,
    output: own.tokens.output * k,
    usd: own.costUsd * k,
  };
  const errors = {
    comparisons: within(e.comparisons.expected, actual.comparisons),
    input: within(estimate.input, actual.input),
    output: within(estimate.output, actual.output),
    usd: within(estimate.usd, actual.usd),
    seconds: within(e.wall.seconds, actual.seconds),
  };
  console.log(
    `[estimate] comparisons ${e.comparisons.expected} vs ${actual.comparisons}; input tokens ${Math.round(estimate.input)} vs ${actual.input} ` +
      `(uncached ${own.tokens.input} vs ${s.cost.inputTokens}, read ${own.tokens.cacheRead} vs ${s.cost.cacheReadTokens}, write ${own.tokens.cacheWrite} vs ${s.cost.cacheWriteTokens}); ` +
      `output ${Math.round(estimate.output)} vs ${actual.output}; USD ${estimate.usd.toFixed(4)} vs ${actual.usd.toFixed(4)}; ` +
      `wall ${e.wall.seconds} s vs ${actual.seconds} s (${s.round} rounds); errors ${JSON.stringify(errors)}`,
  );
  expect(errors.comparisons).toBeLessThanOrEqual(0.2);
  expect(errors.input).toBeLessThanOrEqual(0.15);
  expect(errors.output).toBeLessThanOrEqual(0.15);
  expect(errors.usd).toBeLessThanOrEqual(0.15);
  expect(errors.seconds).toBeLessThanOrEqual(0.25);
}, 1_500_000);

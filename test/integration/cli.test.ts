// kubectl-cj against the local cluster and a running operator: submit a folder of essays, wait,
// read the results as a table and CSV, explain why it stopped; a bad submission writes nothing.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from '../../hack/lib/tools.js';
import { joinResultsParts, resultsConfigMaps } from '../../operator/src/controllers/cjbatch/finalize.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { manyResults } from '../fixtures/results.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack } from './helpers.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

const CLI = path.join(repoRoot, 'dist/operator/src/cli/kubectl-cj.js');
let ns: string;
let fake: FakeAnthropic;
let operator: OperatorProcess;
let dir: string;

function cj(args: string[], namespace = ns): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '-n', namespace],
      { env: { ...process.env, KUBECONFIG: stack().kubeconfig }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('cli');
  const dbUrl = await freshDatabase('cli');
  fake = await startFake();
  operator = await startOperator({ namespace: ns, databaseUrl: dbUrl });
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: poolManifests(ns, fake.url) }),
  );
  // A teacher's folder: one file per essay; anchors and the assignment beside it.
  const set = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/essays/essays.json'), 'utf8'));
  dir = path.join(stack().dir, `cli-${ns}`);
  mkdirSync(path.join(dir, 'essays'), { recursive: true });
  for (const e of set.essays.slice(0, 10)) writeFileSync(path.join(dir, 'essays', `${e.id}.txt`), e.text);
  const anchors = set.anchors.filter((_: unknown, i: number) => i % 3 === 0);
  writeFileSync(path.join(dir, 'anchors.jsonl'), anchors.map((a: object) => JSON.stringify(a)).join('\n'));
  writeFileSync(path.join(dir, 'assignment.json'), JSON.stringify(set.assignment));
});

afterAll(async () => {
  await operator?.stop();
  await fake?.close();
  if (ns) await deleteNamespace(ns);
});

it('submits a folder of essays, waits, and shows results and why it stopped', async () => {
  const sub = await cj([
    'submit',
    path.join(dir, 'essays'),
    '--pool',
    'fake-pool',
    '--name',
    'class-9a',
    '--anchors',
    path.join(dir, 'anchors.jsonl'),
    '--assignment',
    path.join(dir, 'assignment.json'),
    '--wait',
  ]);
  expect(sub.stderr).toBe('');
  expect(sub.code).toBe(0);
  expect(sub.stdout).toContain('cjbatch/class-9a submitted');
  expect(sub.stdout).toMatch(/Succeeded: \w+/);

  const table = await cj(['results', 'class-9a']);
  expect(table.code).toBe(0);
  expect(table.stdout).toMatch(/^RANK\s+ESSAY\s+SCORE/);
  for (let i = 1; i <= 10; i++) expect(table.stdout).toContain(`essay-${String(i).padStart(3, '0')}`);

  const csv = await cj(['results', 'class-9a', '-o', 'csv']);
  const lines = csv.stdout.trim().split('\n');
  expect(lines[0]).toMatch(/^rank,essay,anchor,score,se,grade,p_grade,modal_grade,p_modal/);
  expect(lines).toHaveLength(1 + 10 + 4); // header, essays, anchors

  const why = await cj(['explain', 'class-9a']);
  expect(why.code).toBe(0);
  expect(why.stdout).toContain('Stopped because:');
  expect(why.stdout).toContain('position consistency');

  const once = await cj(['status', 'class-9a', '--once']);
  expect(once.stdout).toMatch(/Succeeded round \d+/);
}, 600_000);

it('refuses a submission naming a missing pool and writes nothing', async () => {
  const r = await cj(['submit', path.join(dir, 'essays'), '--pool', 'no-such-pool', '--name', 'never']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('LLMProviderPool "no-such-pool" not found');
  expect((await kubectl(['get', 'configmap', 'never-essays', '-n', ns])).code).not.toBe(0);
  expect((await kubectl(['get', 'cjbatch', 'never', '-n', ns])).code).not.toBe(0);
});

it('reads the results of a large batch spread over several ConfigMaps (2000 essays, 20 grades)', async () => {
  // No operator watches this namespace: the test writes what the operator's finalization writes
  // (resultsConfigMaps) and points a batch's status at it; the apiserver must accept every part.
  const other = await newNamespace('cli-big');
  try {
    const grades = Array.from({ length: 20 }, (_, i) => `grade-${i + 1}`);
    const results = manyResults(2000, grades);
    const parts = resultsConfigMaps(results, grades);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts)
      await kubectlOk(
        ['create', '-n', other, '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: `big-results${p.suffix}` },
          data: p.data,
        }),
      );
    const b = sampleBatch('cjbatch-small.yaml', 'big', other);
    await kubectlOk(['create', '-n', other, '-f', '-'], JSON.stringify(b));
    await kubectlOk([
      'patch',
      'cjbatch',
      'big',
      '-n',
      other,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: { phase: 'Succeeded', result: { resultsConfigMap: 'big-results', gradeDistribution: [] } },
      }),
    ]);
    const whole = resultsConfigMaps(results, grades, Number.POSITIVE_INFINITY)[0]!.data;
    const csv = await cj(['results', 'big', '-o', 'csv'], other);
    expect(csv.stderr).toBe('');
    expect(csv.stdout).toBe(whole['results.csv']);
    const json = await cj(['results', 'big', '-o', 'json'], other);
    expect(JSON.parse(json.stdout)).toEqual(joinResultsParts([whole]).json);
    const table = await cj(['results', 'big'], other);
    expect(table.stdout.split('\n').filter((l) => /^ *\d+ {2}student-essay-/.test(l))).toHaveLength(
      2000 - 40,
    );
  } finally {
    await deleteNamespace(other);
  }
}, 120_000);

// kubectl-cj against the local cluster and a running operator: submit a folder of essays, wait,
// read the results as a table and CSV, explain why it stopped; a bad submission writes nothing,
// not even when the apiserver refuses the batch after its ConfigMap was created; --context picks
// the cluster; --wait gives up after --timeout; status --watch prints lines into a pipe; and the
// bundled kubectl-cj, copied alone onto PATH, runs as `kubectl cj`.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import YAML from 'yaml';
import { freePort } from '../../hack/lib/proc.js';
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

function cj(
  args: string[],
  namespace = ns,
  env: NodeJS.ProcessEnv = { KUBECONFIG: stack().kubeconfig },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '-n', namespace],
      { env: { ...process.env, ...env }, maxBuffer: 16 * 1024 * 1024 },
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
  // A pool paced at 120 requests/minute (no slow start) for the --watch case: its batch must judge
  // for longer than the operator's 10 s pace window to show an ETA, which a pipelined batch on the
  // 1,000/minute pool does not.
  const [pacedKey, paced] = poolManifests(ns, fake.url, 'paced-pool', 'paced-key') as any[];
  paced.spec.limits.requestsPerMinute = 120;
  paced.spec.slowStart = { duration: '0s' };
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [...poolManifests(ns, fake.url), pacedKey, paced],
    }),
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

  const once = await cj(['status', 'class-9a']);
  expect(once.stdout).toMatch(/Succeeded round \d+/);
  const json = await cj(['status', 'class-9a', '-o', 'json']);
  expect(JSON.parse(json.stdout).phase).toBe('Succeeded');
  // a finished batch has no live pace
  expect(JSON.parse(json.stdout).throughput).toBeUndefined();
}, 600_000);

it('--wait gives up after --timeout (the batch keeps running); status --watch prints lines into a pipe', async () => {
  const sub = await cj([
    'submit',
    path.join(dir, 'essays'),
    '--pool',
    'paced-pool',
    '--name',
    'piped',
    '--wait',
    '--timeout',
    '1s',
  ]);
  expect(sub.code).toBe(1);
  expect(sub.stderr).toContain('timed out after 1s waiting for cjbatch/piped');
  expect(sub.stderr).toContain('it keeps running');
  // stdout is a pipe here: one line per change of progress, then the outcome.
  const w = await cj(['status', 'piped', '--watch', '--timeout', '5m']);
  expect(w.code).toBe(0);
  const lines = w.stdout.trim().split('\n');
  expect(lines.at(-1)).toMatch(/^Succeeded: /);
  expect(lines.length).toBeGreaterThanOrEqual(3);
  expect(new Set(lines).size).toBe(lines.length);
  expect(w.stdout).not.toContain('\r');
  // while it ran, the operator's ETA with the pace (status.throughput)
  expect(lines.some((l) => / ETA ~\w+ \(\d+(\.\d)?\/min/.test(l))).toBe(true);
}, 600_000);

it('--context picks the cluster: a kubeconfig whose current context is a dead server', async () => {
  const real = YAML.parse(readFileSync(stack().kubeconfig, 'utf8'));
  const deadServer = `https://127.0.0.1:${await freePort()}`;
  const ctx = real.contexts[0];
  const cfg = {
    ...real,
    clusters: [
      ...real.clusters,
      { name: 'dead', cluster: { server: deadServer, 'insecure-skip-tls-verify': true } },
    ],
    contexts: [...real.contexts, { name: 'dead', context: { cluster: 'dead', user: ctx.context.user } }],
    'current-context': 'dead',
  };
  const file = path.join(dir, 'two-contexts.kubeconfig');
  writeFileSync(file, YAML.stringify(cfg));
  // The current context: the dead server, named, with what to do.
  const dead = await cj(['status', 'class-9a', '--kubeconfig', file]);
  expect(dead.code).toBe(1);
  expect(dead.stderr).toContain(`cannot reach the Kubernetes API at ${deadServer} (context "dead")`);
  // --context: the real cluster, though it is not the current context.
  const live = await cj(['status', 'class-9a', '--kubeconfig', file, '--context', ctx.name]);
  expect(live.stderr).toBe('');
  expect(live.stdout).toMatch(/Succeeded round \d+/);
  const unknown = await cj(['status', 'class-9a', '--kubeconfig', file, '--context', 'nope']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain(
    `context "nope" is not in the kubeconfig ${file}; its contexts: ${ctx.name}, dead`,
  );
}, 120_000);

it('a batch the apiserver refuses after its ConfigMap was made leaves nothing behind', async () => {
  // A quota of zero CJBatches: the ConfigMap is accepted, the batch is not.
  const other = await newNamespace('cli-quota');
  try {
    await kubectlOk(
      ['apply', '-n', other, '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          ...poolManifests(other, fake.url),
          {
            apiVersion: 'v1',
            kind: 'ResourceQuota',
            metadata: { name: 'no-batches' },
            spec: { hard: { 'count/cjbatches.cj.huleedu.io': '0' } },
          },
        ],
      }),
    );
    const r = await cj(
      ['submit', path.join(dir, 'essays'), '--pool', 'fake-pool', '--name', 'refused'],
      other,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('The batch was not submitted (nothing was written)');
    expect(r.stderr).toMatch(/quota|forbidden/i);
    expect((await kubectl(['get', 'cjbatch', 'refused', '-n', other])).code).not.toBe(0);
    expect(
      await kubectlOk(['get', 'configmaps', '-n', other, '-l', 'cj.huleedu.io/batch', '-o', 'name']),
    ).toBe('');
    // The same folder again, once the quota allows it: no leftover ConfigMap in the way.
    await kubectlOk(['delete', 'resourcequota', 'no-batches', '-n', other]);
    const again = await cj(
      ['submit', path.join(dir, 'essays'), '--pool', 'fake-pool', '--name', 'refused'],
      other,
    );
    expect(again.stderr).toBe(
      'Warning: there are no anchors (anchors.jsonl in the class folder, or --anchors): the batch will rank the essays but cannot grade them; add anchors covering at least two grades\n',
    );
    expect(again.stdout).toContain('cjbatch/refused submitted');
  } finally {
    await deleteNamespace(other);
  }
}, 120_000);

it('the bundled kubectl-cj, alone in an empty directory on PATH, runs as `kubectl cj`', async () => {
  execFileSync(process.execPath, ['--import', 'tsx', 'hack/cli/build.ts'], { cwd: repoRoot, stdio: 'pipe' });
  const bin = mkdtempSync(path.join(os.tmpdir(), 'cj-bin-'));
  const home = mkdtempSync(path.join(os.tmpdir(), 'cj-home-'));
  copyFileSync(path.join(repoRoot, 'dist/cli/kubectl-cj'), path.join(bin, 'kubectl-cj'));
  // Only the plugin, node and kubectl on PATH; no kubeconfig; run from another directory.
  const PATH = [
    bin,
    path.dirname(process.execPath),
    path.dirname(execFileSync('which', ['kubectl']).toString().trim()),
  ].join(':');
  const env = { PATH, HOME: home };
  const k = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile('kubectl', ['cj', ...args], { env: { ...env, ...extra }, cwd: home }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  const example = path.join(repoRoot, 'config/samples/class-example');
  const dry = await k(['submit', example, '--pool', 'anthropic', '--dry-run=client']);
  expect(dry.stderr).toContain('10 essays and 6 anchors checked offline');
  expect(dry.code).toBe(0);
  expect(dry.stdout).toContain('cjbatch.cj.huleedu.io/class-example created (dry run)');
  const help = await k(['--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toContain('Commands:');
  const version = await k(['--version']);
  expect(version.stdout.trim()).toBe(
    `kubectl-cj ${JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version}`,
  );
  const noConfig = await k(['status', 'class-9a']);
  expect(noConfig.code).toBe(2);
  expect(noConfig.stderr).toContain('no kubeconfig');
  expect(noConfig.stderr).not.toMatch(/HTTP protocol|skipTLSVerify/);
  // Against the cluster, through kubectl's plugin mechanism.
  const live = await k(['results', 'class-9a', '-n', ns, '-o', 'csv'], { KUBECONFIG: stack().kubeconfig });
  expect(live.stderr).toBe('');
  expect(live.stdout.split('\n')[0]).toMatch(/^rank,essay/);

  // The npm package installs kubectl-cj without the network (no dependencies).
  const version0 = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version;
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'cj-npm-'));
  execFileSync(
    'npm',
    [
      'install',
      '-g',
      '--offline',
      '--no-audit',
      '--no-fund',
      '--prefix',
      prefix,
      path.join(repoRoot, `dist/cli/kubectl-cj-${version0}.tgz`),
    ],
    { stdio: 'pipe' },
  );
  expect(existsSync(path.join(prefix, 'bin', 'kubectl-cj'))).toBe(true);
  expect(execFileSync(path.join(prefix, 'bin', 'kubectl-cj'), ['--version'], { env }).toString()).toContain(
    version0,
  );

  // The krew manifest names the archive's checksum and the binary inside it.
  const manifest = YAML.parse(readFileSync(path.join(repoRoot, 'dist/cli/krew/cj.yaml'), 'utf8'));
  const archive = readFileSync(path.join(repoRoot, `dist/cli/kubectl-cj-${version0}.tar.gz`));
  expect(manifest.kind).toBe('Plugin');
  expect(manifest.metadata.name).toBe('cj');
  for (const p of manifest.spec.platforms) {
    expect(p.sha256).toBe(createHash('sha256').update(archive).digest('hex'));
    expect(p.uri).toMatch(new RegExp(`/v${version0}/kubectl-cj-${version0}\\.tar\\.gz$`));
    expect(p.bin).toBe('kubectl-cj');
  }
  const listed = execFileSync('tar', [
    '-tzf',
    path.join(repoRoot, `dist/cli/kubectl-cj-${version0}.tar.gz`),
  ]).toString();
  expect(listed.split('\n')).toEqual(expect.arrayContaining(['kubectl-cj', 'LICENSE']));
}, 180_000);

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

// The README's first command: `npm run demo` installs the chart with helm into the local control
// plane, runs the 40-essay sample with the fake judge to Succeeded and prints the results. Here it
// runs against the test stack (`--stack`), already built (`--no-build`).
import { execFile } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopPid } from '../../hack/lib/proc.js';
import { repoRoot, requireTool, toolPaths } from '../../hack/lib/tools.js';
import { readExtras, writeExtras } from '../../hack/stack.js';
import { deleteNamespace, kubectl, kubectlOk, type Run, stack } from './helpers.js';
import { installCrds, requireBuild } from './operator-harness.js';

function demo(): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'hack/demo.ts'), '--stack', stack().name, '--no-build'],
      { cwd: repoRoot, env: process.env, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run demo', () => {
  const uninstall = () =>
    new Promise<Run>((resolve) =>
      execFile(
        requireTool(toolPaths().helm, 'helm'),
        ['uninstall', 'cj-demo', '-n', 'cj-demo', '--wait', '--ignore-not-found'],
        { env: { ...process.env, KUBECONFIG: stack().kubeconfig } },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );

  afterAll(async () => {
    await kubectl(['delete', 'cjbatch', '--all', '-n', 'cj-demo', '--wait=true', '--timeout=60s']);
    await uninstall();
    await deleteNamespace('cj-demo');
    // The fake judge the demo started belongs to the stack's extras: stop it here.
    const extras = readExtras(stack().name);
    for (const p of extras.filter((x) => x.name === 'fake-anthropic')) await stopPid(p.pid);
    writeExtras(
      stack().name,
      extras.filter((x) => x.name !== 'fake-anthropic'),
    );
  });

  it('installs the chart, runs the sample to Succeeded and prints the results', async () => {
    requireBuild();
    await installCrds();
    const r = await demo();
    if (r.code !== 0) throw new Error(`demo failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain('helm upgrade --install cj-demo');
    expect(r.stdout).toMatch(/Succeeded: \w+/);
    // Before the batch: `kubectl cj estimate` of the sample on its pool.
    const before = r.stdout.indexOf('▶ kubectl cj estimate');
    const applied = r.stdout.indexOf('▶ kubectl cj status');
    expect(before).toBeGreaterThan(0);
    const estimate = r.stdout.slice(before, applied);
    const planned = Number(/Comparisons: ([\d,]+) of a budget/.exec(estimate)?.[1]?.replace(/,/g, ''));
    expect(planned, estimate).toBeGreaterThan(0);
    expect(estimate).toMatch(/^\w+ \(pool\)\s+[\d,]+/m);
    // After it: the estimate the operator kept beside the actuals, the same comparisons expected.
    const vs = r.stdout.slice(applied);
    expect(vs).toMatch(/^\s+ESTIMATE\s+ACTUAL$/m);
    const row = /^comparisons\s+(\d+)\s+(\d+)$/m.exec(vs);
    expect(row, vs).not.toBeNull();
    expect(Number(row![1])).toBe(planned);
    expect(Number(row![2])).toBeGreaterThan(0);
    expect(vs).toMatch(/^cost \(USD\)\s+\d+\.\d{4}\s+\d+\.\d{4}$/m);
    expect(vs).toMatch(/^wall time\s+\S+\s+\S+$/m);
    console.log(
      `[demo] estimate before the run and beside the actuals:\n${estimate}\n${vs.slice(vs.search(/^\s+ESTIMATE\s+ACTUAL$/m))}`,
    );
    // One results row per essay (40, anchors are listed separately), each with a grade.
    const rows = r.stdout.split('\n').filter((l) => /^\s+\d+\s+essay-\d{3}\s/.test(l));
    expect(rows).toHaveLength(40);
    // Issue 16: no essay's grade above a higher-scored essay's. The CLI checks it (its warning line)
    // and the table shows it: in rank order the grades, in the batch's order (the distribution
    // line, lowest first), never rise.
    expect(r.stdout).not.toContain('grade inversions');
    const order = (r.stdout.match(/^grades: (.*)$/m)?.[1] ?? '').split(', ').map((g) => g.split(' ')[0]!);
    expect(order.length).toBeGreaterThanOrEqual(2);
    const ranked = rows.map((l) => order.indexOf(l.trim().split(/ +/)[5]!));
    expect(ranked.every((g) => g >= 0)).toBe(true);
    expect(ranked.every((g, t) => t === 0 || g <= ranked[t - 1]!)).toBe(true);
    expect(r.stdout).toContain('Stopped because:');
    // The operator ran as the chart's Deployment (a pod of the process kubelet), not as a process.
    const dep = JSON.parse(
      await kubectlOk(['get', 'deployment', 'cj-operator', '-n', 'cj-demo', '-o', 'json']),
    );
    expect(dep.status.readyReplicas).toBe(1);
    const release = await kubectlOk(['get', 'secret', '-n', 'cj-demo', '-l', 'owner=helm', '-o', 'name']);
    expect(release).toContain('sh.helm.release.v1.cj-demo');
  }, 600_000);

  it("tears down as printed: helm uninstall removes the chart's objects", async () => {
    await kubectlOk(['delete', 'cjbatch', '--all', '-n', 'cj-demo', '--wait=true', '--timeout=60s']);
    const r = await uninstall();
    expect(r.code, r.stderr).toBe(0);
    // The chart owns the webhook configuration and the Deployment: both go with the release.
    expect(
      (await kubectl(['get', 'validatingwebhookconfiguration', 'cj-operator-validating'])).code,
    ).not.toBe(0);
    expect((await kubectlOk(['get', 'deployments', '-n', 'cj-demo', '-o', 'name'])).trim()).toBe('');
  }, 120_000);
});

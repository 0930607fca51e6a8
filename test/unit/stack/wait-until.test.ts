// The local stack waits for each component with waitUntil: ready at once on the normal path, a
// long budget for a loaded machine, and every failure names the component, its log file, the
// machine's load and the log's last lines. A check that hangs must not hang the start.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { START_BUDGET_MS, type Started, startDetached, stopPid, waitUntil } from '../../../hack/lib/proc.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cj-wait-'));
const started: Started[] = [];
afterAll(async () => {
  await Promise.all(started.map((p) => stopPid(p.pid, 1000)));
  rmSync(dir, { recursive: true, force: true });
});

/** A detached `sh -c script` with its output in `<name>.log`. */
function component(name: string, script: string): Started {
  const p = startDetached(name, 'sh', ['-c', script], path.join(dir, `${name}.log`));
  started.push(p);
  return p;
}

describe('waitUntil (local stack start-up)', () => {
  it('the budget fits a loaded 2-core machine (not the 30 s that failed there)', () => {
    expect(START_BUDGET_MS).toBeGreaterThanOrEqual(120_000);
  });

  it('returns as soon as the component is ready', async () => {
    const p = component('ready', 'exec sleep 30');
    const t0 = Date.now();
    await waitUntil(p, async () => true);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('past its deadline: names the component, its log, the load and the last log lines', async () => {
    const p = component('slowpoke', 'echo first line; echo last words; exec sleep 30');
    await new Promise((r) => setTimeout(r, 200));
    const err = await waitUntil(p, async () => false, 1000).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/^slowpoke not ready after 1s \(load average [\d. ]+ on \d+ CPUs\)/);
    expect(err).toContain(`Last lines of ${p.log}:\nfirst line\nlast words`);
  });

  it('a check that never settles still fails at the deadline', async () => {
    const p = component('hung', 'exec sleep 30');
    const t0 = Date.now();
    await expect(waitUntil(p, () => new Promise<boolean>(() => {}), 1000)).rejects.toThrow(
      /hung not ready after 1s/,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a component that exits fails at once, with its log', async () => {
    const p = component('crasher', 'echo "fatal: bad flag"; exit 3');
    const t0 = Date.now();
    await expect(waitUntil(p, async () => false)).rejects.toThrow(
      /crasher exited during start-up after [\d.]+s \(load average .*\)\. Last lines of .*crasher\.log:\nfatal: bad flag/,
    );
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

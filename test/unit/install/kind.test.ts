// hack/kind/e2e.sh (`npm run e2e:kind`) cannot run without Docker, so here: it parses, and it
// stops with the reason when kind, docker or the Docker daemon is missing, before touching
// anything. Fake `kind`/`docker` executables on a minimal PATH make each case deterministic.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../../hack/lib/tools.js';

const SCRIPT = path.join(repoRoot, 'hack/kind/e2e.sh');
let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Runs the script with PATH = a folder holding only the coreutils it needs plus `fakes`. */
function run(args: string[], fakes: Record<string, string>) {
  dir = mkdtempSync(path.join(tmpdir(), 'cj-kind-'));
  for (const tool of ['dirname', 'sed', 'tail', 'grep', 'cat'])
    symlinkSync(
      execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(),
      path.join(dir, tool),
    );
  for (const [name, body] of Object.entries(fakes)) {
    writeFileSync(path.join(dir, name), `#!/bin/bash\necho "$0 $*" >> "${dir}/calls"\n${body}\n`);
    chmodSync(path.join(dir, name), 0o755);
  }
  const r = spawnSync('/bin/bash', [SCRIPT, ...args], { encoding: 'utf8', env: { PATH: dir, HOME: dir } });
  let calls = '';
  try {
    calls = readFileSync(path.join(dir, 'calls'), 'utf8');
  } catch {}
  return { code: r.status, stderr: r.stderr, calls };
}

describe('npm run e2e:kind', () => {
  it('parses (bash -n)', () => {
    expect(spawnSync('bash', ['-n', SCRIPT]).status).toBe(0);
  });

  it('is the package.json script', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(pkg.scripts['e2e:kind']).toBe('bash hack/kind/e2e.sh');
  });

  it('fails loudly without kind', () => {
    const r = run([], { docker: 'exit 0' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('kind not found on PATH');
    expect(r.calls).toBe('');
  });

  it('fails loudly without docker', () => {
    const r = run([], { kind: 'exit 0' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('docker not found on PATH');
  });

  it('fails loudly when the Docker daemon is down, before creating anything', () => {
    const r = run([], {
      kind: 'exit 0',
      docker: 'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2; exit 1',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('the Docker daemon is not reachable');
    expect(r.stderr).toContain('Cannot connect to the Docker daemon');
    expect(r.calls).not.toMatch(/kind create/);
  });

  it('--down deletes the kind cluster; unknown arguments are refused', () => {
    const down = run(['--down'], { kind: 'exit 0', docker: 'exit 0' });
    expect(down.code).toBe(0);
    expect(down.calls).toMatch(/kind delete cluster --name cj-e2e/);
    const bad = run(['--up'], { kind: 'exit 0', docker: 'exit 0' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown argument: --up');
  });
});

// hack/kind without a cluster: the scripts parse, the npm scripts point at them, and the runc
// wrapper (the one piece of logic every container of the kind tier passes through) edits exactly
// what it must. The kind tier itself runs in `npm run e2e:kind` (test/e2e).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../../hack/lib/tools.js';

const KIND = path.join(repoRoot, 'hack/kind');
const WRAPPER = path.join(KIND, 'runc-wrapper');
let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Runs the wrapper with `echo` as the real runc: returns the arguments it handed over. */
function wrap(args: string[], cwd?: string) {
  const r = spawnSync('sh', [WRAPPER, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, CJ_REAL_RUNC: 'echo' },
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

const spec = (process: object) => ({ ociVersion: '1.0.2', process, root: { path: 'rootfs' } });
const allCaps = ['CAP_CHOWN', 'CAP_SYS_RESOURCE', 'CAP_KILL'];

describe('hack/kind', () => {
  it('every script parses (bash -n / sh -n)', () => {
    for (const f of readdirSync(KIND).filter((f) => f.endsWith('.sh')))
      expect(spawnSync('bash', ['-n', path.join(KIND, f)]).status, f).toBe(0);
    expect(spawnSync('sh', ['-n', WRAPPER]).status).toBe(0);
  });

  it("netpol.yaml: every placeholder is one e2e.sh fills in, and the agent's queue is the one it diverts to", () => {
    const manifest = readFileSync(path.join(KIND, 'netpol.yaml'), 'utf8');
    const e2e = readFileSync(path.join(KIND, 'e2e.sh'), 'utf8');
    const placeholders = [...new Set([...manifest.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]))].sort();
    expect(placeholders).toEqual(['IPTABLES_IMAGE', 'NETPOL_IMAGE', 'POD_CIDR']);
    for (const p of placeholders) expect(e2e, `e2e.sh substitutes \${${p}}`).toContain(`s#\\\${${p}}#`);
    const queue = manifest.match(/--nfqueue-id=(\d+)/)![1];
    expect(manifest).toContain(`-j NFQUEUE --queue-num ${queue}`);
    expect(e2e).toContain(`$1 == ${queue} `);
  });

  it('is what the npm scripts run', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
    expect(pkg.scripts['e2e:kind']).toBe('bash hack/kind/e2e.sh');
    expect(pkg.scripts['tools:kind']).toBe('bash hack/kind/tools.sh');
  });
});

describe('runc wrapper', () => {
  it('create: drops CAP_SYS_RESOURCE from every set and raises a negative oomScoreAdj to 0', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cj-runc-'));
    const caps = { bounding: allCaps, effective: allCaps, permitted: allCaps };
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify(spec({ oomScoreAdj: -998, capabilities: caps })),
    );
    const argv = ['--root', '/run/x', '--systemd-cgroup', 'create', '--bundle', dir, 'ctr-1'];
    expect(wrap(argv)).toBe(argv.join(' ')); // arguments pass through unchanged
    const out = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(out.process.oomScoreAdj).toBe(0);
    for (const set of ['bounding', 'effective', 'permitted'])
      expect(out.process.capabilities[set]).toEqual(['CAP_CHOWN', 'CAP_KILL']);
    expect(out.root).toEqual({ path: 'rootfs' });
  });

  it('run with --bundle=DIR; a non-negative oomScoreAdj stays', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cj-runc-'));
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec({ oomScoreAdj: 500 })));
    wrap(['run', `--bundle=${dir}`, 'c']);
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).process.oomScoreAdj).toBe(500);
  });

  it('exec --process FILE: drops CAP_SYS_RESOURCE from the process file', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cj-runc-'));
    const file = path.join(dir, 'process.json');
    writeFileSync(file, JSON.stringify({ args: ['sh'], capabilities: { bounding: allCaps } }));
    wrap(['--root', '/r', 'exec', '--process', file, '--detach', 'c']);
    expect(JSON.parse(readFileSync(file, 'utf8')).capabilities.bounding).toEqual(['CAP_CHOWN', 'CAP_KILL']);
  });

  it('leaves other commands alone; create without --bundle edits ./config.json', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cj-runc-'));
    const cfg = JSON.stringify(spec({ oomScoreAdj: -998, capabilities: { bounding: allCaps } }));
    writeFileSync(path.join(dir, 'config.json'), cfg);
    expect(wrap(['--root', '/r', 'delete', '--force', 'c'], dir)).toBe('--root /r delete --force c');
    wrap(['state', 'c'], dir);
    expect(readFileSync(path.join(dir, 'config.json'), 'utf8')).toBe(cfg);
    wrap(['create', 'c'], dir);
    expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).process.oomScoreAdj).toBe(0);
  });
});

// kubectl cj's command line: help on every command lists every flag and an example, misspelt flags
// and commands are refused naming the nearest real one, a missing kubeconfig says what to do, and a
// class folder is read with every problem named by the teacher's file and line.
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { nearest, parseDuration } from '../../../operator/src/cli/args.js';
import { COMMANDS, main } from '../../../operator/src/cli/kubectl-cj.js';
import { buildSubmission, classFiles, kubeName } from '../../../operator/src/cli/submit.js';

let out: string;
let err: string;
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(console, 'log').mockImplementation((...a) => {
    out += `${a.join(' ')}\n`;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  vi.spyOn(console, 'error').mockImplementation((...a) => {
    err += `${a.join(' ')}\n`;
  });
});
afterEach(() => vi.restoreAllMocks());

const EXAMPLE = path.resolve('config/samples/class-example');

describe('help', () => {
  it.each([[['--help']], [['-h']], [['help']]])(
    'kubectl cj %j prints the commands and exits 0',
    async (argv) => {
      expect(await main(argv)).toBe(0);
      for (const c of COMMANDS) expect(out).toContain(`  ${c.name} `);
      expect(out).toContain('--namespace');
      expect(err).toBe('');
    },
  );

  it('kubectl cj with no command prints the overview on stderr and exits 2', async () => {
    expect(await main([])).toBe(2);
    expect(err).toContain('Commands:');
  });

  it.each(COMMANDS.map((c) => [c.name]))('%s --help lists every flag and an example', async (name) => {
    const cmd = COMMANDS.find((c) => c.name === name)!;
    expect(await main([name, '--help'])).toBe(0);
    for (const f of cmd.flags) expect(out).toContain(`--${f.name}`);
    for (const g of ['--namespace', '--context', '--kubeconfig', '--help']) expect(out).toContain(g);
    expect(out).toMatch(new RegExp(`Examples:\\n(  .*\\n)*  kubectl cj ${name}`));
    out = '';
    expect(await main(['help', name])).toBe(0);
    expect(out).toContain(`kubectl cj ${name}`);
  });

  it('--help after real arguments prints help and does nothing else', async () => {
    expect(await main(['submit', EXAMPLE, '--pool', 'p', '--help'])).toBe(0);
    expect(out).toContain('Usage:\n  kubectl cj submit');
    expect(out).not.toContain('created');
  });

  it('--version and version print the version', async () => {
    expect(await main(['--version'])).toBe(0);
    expect(out).toMatch(/^kubectl-cj \d+\.\d+\.\d+/);
    out = '';
    expect(await main(['version', '-o', 'json'])).toBe(0);
    expect(JSON.parse(out).clientVersion.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('mistakes', () => {
  it('a misspelt flag is refused with the nearest flag, before anything runs', async () => {
    expect(await main(['submit', EXAMPLE, '--pool', 'p', '--bugdet', '10'])).toBe(2);
    expect(err).toContain('unknown flag --bugdet for "kubectl cj submit"; did you mean --budget?');
    expect(err).toContain("See 'kubectl cj submit --help'");
    err = '';
    expect(await main(['status', 'x', '--namspace', 'y'])).toBe(2);
    expect(err).toContain('did you mean --namespace?');
  });

  it('audit: a misspelt flag or a bad value is refused before any cluster is asked', async () => {
    expect(await main(['audit', 'x', '--pair', '20'])).toBe(2);
    expect(err).toContain('unknown flag --pair for "kubectl cj audit"; did you mean --pairs?');
    err = '';
    expect(await main(['audit', 'x', '--pairs', '3', '--kubeconfig', '/nonexistent'])).toBe(2);
    expect(err).toContain('--pairs 3: give a whole number from 4 to 100');
    err = '';
    expect(await main(['audit', 'x', '--judge', '$(rm)', '--kubeconfig', '/nonexistent'])).toBe(2);
    expect(err).toContain('--judge $(rm): 1–63 letters');
  });

  it('a misspelt command is refused with the nearest command', async () => {
    expect(await main(['resluts', 'x'])).toBe(2);
    expect(err).toContain('unknown command "resluts" for "kubectl cj"; did you mean results?');
  });

  it('a flag value outside the choices names them', async () => {
    expect(await main(['results', 'x', '-o', 'xml'])).toBe(2);
    expect(err).toContain('--output=xml is not supported here; use one of: table, csv, json, yaml');
    err = '';
    expect(await main(['submit', EXAMPLE, '--pool', 'p', '--dry-run=maybe'])).toBe(2);
    expect(err).toContain('use one of: none, client, server');
  });

  it('--pool is required; --timeout without --wait is refused', async () => {
    expect(await main(['submit', EXAMPLE])).toBe(2);
    expect(err).toContain('--pool is required');
    err = '';
    expect(await main(['submit', EXAMPLE, '--pool', 'p', '--timeout', '5m'])).toBe(2);
    expect(err).toContain('--timeout needs --wait');
  });

  it('no kubeconfig anywhere: says so and how to fix it (not an HTTP/TLS error)', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'cj-home-'));
    vi.stubEnv('HOME', home);
    vi.stubEnv('KUBECONFIG', '');
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    try {
      expect(await main(['status', 'x'])).toBe(2);
      expect(err).toContain(`no kubeconfig: ${home}/.kube/config does not exist and KUBECONFIG is not set`);
      expect(err).toContain('--kubeconfig');
      err = '';
      expect(await main(['status', 'x', '--kubeconfig', path.join(home, 'nope')])).toBe(2);
      expect(err).toContain(`kubeconfig ${home}/nope (from --kubeconfig) does not exist`);
      const bad = path.join(home, 'bad');
      writeFileSync(bad, 'just: text\n');
      err = '';
      expect(await main(['status', 'x', '--kubeconfig', bad])).toBe(2);
      expect(err).toContain(`cannot read the kubeconfig ${bad}`);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('submit --dry-run=client (offline)', () => {
  it('checks the example class folder without a cluster and names the batch after the folder', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'cj-home-'));
    vi.stubEnv('HOME', home);
    vi.stubEnv('KUBECONFIG', '');
    try {
      expect(await main(['submit', EXAMPLE, '--pool', 'anthropic', '--dry-run=client', '-o', 'json'])).toBe(
        0,
      );
    } finally {
      vi.unstubAllEnvs();
    }
    const list = JSON.parse(out);
    const [cm, batch] = list.items;
    expect(batch.metadata.name).toBe('class-example');
    expect(cm.data['essays.jsonl'].trim().split('\n')).toHaveLength(10);
    expect(batch.spec.anchors.map((a: { grade: string }) => a.grade)).toEqual(['F', 'E', 'D', 'C', 'B', 'A']);
    expect(batch.spec.assignment.title.value).toMatch(/smartphones/);
    expect(err).toContain('10 essays and 6 anchors checked offline');
  });

  it('names the teacher file and line for problems, never the ConfigMap it builds', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cj-class-'));
    const essays = path.join(dir, 'essays');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(essays);
    writeFileSync(
      path.join(essays, 'amy.txt'),
      'Phones distract students in lessons, so they should be stored away.',
    );
    writeFileSync(path.join(essays, 'amy.md'), 'A second essay file with the same id as the first one.');
    writeFileSync(
      path.join(essays, 'ben.txt'),
      'Phones help students learn when teachers plan their use well.',
    );
    const anchors = path.join(dir, 'anchors.jsonl');
    writeFileSync(
      anchors,
      '{"id":"a1","grade":"A","text":"A strong essay."}\n{"id":"a2","grade":"F","text":"A weak essay."}\n',
    );
    const dup = (await buildSubmission({ source: dir, pool: 'p', namespace: 'default' })).problems.join('\n');
    expect(dup).toContain(`essay id "amy" in ${path.join(essays, 'amy.txt')}`);
    expect(dup).toContain(path.join(essays, 'amy.md'));
    expect(dup).not.toMatch(/ConfigMap|configMapRefs|spec\.essays/);
    writeFileSync(
      anchors,
      '{"id":"a1","grade":"A","text":"A strong essay."}\n{"id":"a2","grade":"Z","text":"An essay with a grade off the scale."}\n',
    );
    const grade = (await buildSubmission({ source: dir, pool: 'p', namespace: 'default' })).problems.join(
      '\n',
    );
    expect(grade).toContain(
      `${anchors} line 2: anchor a2 has grade Z which is not in the grade scale (--grades)`,
    );
    expect(grade).not.toMatch(/spec\./);
  });
});

describe('pieces', () => {
  it('nearest, durations, names', () => {
    expect(nearest('bugdet', ['pool', 'budget', 'name'])).toBe('budget');
    expect(nearest('zzzzzz', ['pool', 'budget'])).toBeUndefined();
    expect(parseDuration('timeout', '1h30m')).toBe(5_400_000);
    expect(parseDuration('timeout', '90')).toBe(90_000);
    expect(() => parseDuration('timeout', 'soon')).toThrow('--timeout soon');
    expect(kubeName('Class 9A')).toBe('class-9a');
    expect(classFiles(EXAMPLE).anchors).toBe(path.join(EXAMPLE, 'anchors.jsonl'));
  });
});

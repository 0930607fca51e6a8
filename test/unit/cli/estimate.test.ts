// kubectl cj estimate, offline: a class folder or a CJBatch manifest (its essay ConfigMap in the
// same file) on a pool manifest; the figures are the contract's estimate of the same texts.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { estimateBatch } from '../../../contract/src/estimate.js';
import { resolvePoolRuntimeConfig } from '../../../contract/src/pool-runtime.js';
import { LLMProviderPoolSpecSchema } from '../../../operator/src/api/index.js';
import { main } from '../../../operator/src/cli/kubectl-cj.js';

const root = path.resolve(import.meta.dirname, '../../..');
const CLASS = path.join(root, 'config/samples/class-example');
const POOL = path.join(root, 'config/samples/llmproviderpool.yaml');

let out: string;
let err: string;
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(console, 'log').mockImplementation((...a) => {
    out += `${a.join(' ')}\n`;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(console, 'error').mockImplementation((...a) => {
    err += `${a.join(' ')}\n`;
  });
});
afterEach(() => vi.restoreAllMocks());

// No kubeconfig is read offline: point KUBECONFIG at nothing so a stray read would fail loudly.
const run = (...args: string[]) => {
  process.env.KUBECONFIG = path.join(os.tmpdir(), 'no-such-kubeconfig');
  return main(['estimate', ...args]);
};

describe('kubectl cj estimate (offline)', () => {
  it('estimates a class folder on a pool manifest: comparisons, the three modes, wall time', async () => {
    expect(await run(CLASS, '--pool-file', POOL), err).toBe(0);
    expect(out).toContain('Estimate for 10 essays and 6 anchors');
    for (const m of ['per_request (pool)', 'serial_bundle', 'batch_api']) expect(out).toContain(m);
    expect(out).toMatch(/Wall time: about (\d+m)?\d+s/);
    expect(out).toContain('limited by requests per minute');
    expect(out).toContain('pipelined rounds (7 s for the workers');
  });

  it("--rounds-mode rounds, or the manifest's annotation, models a scoring pass per round", async () => {
    const wall = () => Number(JSON.parse(out).wall.seconds);
    expect(await run(CLASS, '--pool-file', POOL, '-o', 'json', '--warm-pool'), err).toBe(0);
    const piped = wall();
    out = '';
    expect(
      await run(CLASS, '--pool-file', POOL, '-o', 'json', '--warm-pool', '--rounds-mode', 'rounds'),
      err,
    ).toBe(0);
    const rounds = wall();
    expect(JSON.parse(out).assumptions.roundsMode).toBe('rounds');
    expect(rounds).toBeGreaterThan(piped + 30); // 12 rounds of 7-s passes, less the bucket's refills
    out = '';
    expect(await run(CLASS, '--pool-file', POOL, '--rounds-mode', 'serial')).toBe(2);
    expect(err).toContain('--rounds-mode');
  });

  it('-o json is the contract estimate of the same texts', async () => {
    expect(await run(CLASS, '--pool-file', POOL, '-o', 'json', '--budget', '120'), err).toBe(0);
    const e = JSON.parse(out);
    const pool = LLMProviderPoolSpecSchema.parse(YAML.parse(readFileSync(POOL, 'utf8')).spec);
    const essays = ['001', '002', '003', '004', '005', '006', '007', '008', '009', '010'].map((i) =>
      readFileSync(path.join(CLASS, 'essays', `essay-${i}.txt`), 'utf8'),
    );
    const anchors = readFileSync(path.join(CLASS, 'anchors.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).text);
    const assignment = JSON.parse(readFileSync(path.join(CLASS, 'assignment.json'), 'utf8'));
    const want = estimateBatch({
      essays,
      anchors,
      assignment,
      budget: 120,
      parallelism: 2,
      minPerEssay: 4,
      pool: resolvePoolRuntimeConfig(pool),
    });
    expect(e).toEqual(JSON.parse(JSON.stringify(want)));
    expect(e.comparisons.budget).toBe(120);
  });

  it('reads a CJBatch manifest with its essays ConfigMap in the same file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cj-estimate-'));
    const file = path.join(dir, 'batch.yaml');
    const essays = Array.from({ length: 6 }, (_, i) => ({
      id: `e${i}`,
      text: `Essay ${i}. ${'Words. '.repeat(50)}`,
    }));
    const docs = [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'essays' },
        data: { 'essays.jsonl': essays.map((e) => JSON.stringify(e)).join('\n') },
      },
      {
        apiVersion: 'cj.huleedu.io/v1alpha1',
        kind: 'CJBatch',
        metadata: { name: 'b' },
        spec: {
          providerPoolRef: { name: 'fake-pool' },
          assignment: { title: { value: 'T' }, instructions: { value: 'I' }, rubric: { value: 'R' } },
          essays: { configMapRefs: [{ name: 'essays', format: 'jsonl' }] },
          gradeScale: { grades: ['C', 'B', 'A'] },
          budget: { maxComparisons: 12 },
        },
      },
    ];
    writeFileSync(file, docs.map((d) => YAML.stringify(d)).join('---\n'));
    expect(await run(file, '--pool-file', POOL, '-o', 'json'), err).toBe(0);
    const e = JSON.parse(out);
    expect(e.comparisons.expected).toBe(12);
    expect(e.comparisons.budget).toBe(12);
    expect(e.assumptions.roundsMode).toBe('pipelined');

    // Its rounds-mode annotation is the batch's mode; a bad one is refused naming the field.
    const annotated = (v: string) => ({
      ...docs[1],
      metadata: { name: 'b', annotations: { 'cj.huleedu.io/rounds': v } },
    });
    writeFileSync(file, [docs[0], annotated('rounds')].map((d) => YAML.stringify(d)).join('---\n'));
    out = '';
    expect(await run(file, '--pool-file', POOL, '-o', 'json'), err).toBe(0);
    expect(JSON.parse(out).assumptions.roundsMode).toBe('rounds');
    writeFileSync(file, [docs[0], annotated('fast')].map((d) => YAML.stringify(d)).join('---\n'));
    out = '';
    expect(await run(file, '--pool-file', POOL)).not.toBe(0);
    expect(err).toContain('metadata.annotations["cj.huleedu.io/rounds"]: "fast" is not a rounds mode');

    // Without the ConfigMap and without a cluster, the message says where it must be.
    writeFileSync(file, YAML.stringify(docs[1]));
    out = '';
    expect(await run(file, '--pool-file', POOL)).not.toBe(0);
    expect(err).toMatch(/ConfigMap "essays"/);
  });

  it('needs a pool, and refuses a bad budget naming the flag', async () => {
    expect(await run(CLASS, '--pool-file', POOL, '--budget', 'lots')).toBe(2);
    expect(err).toContain('--budget lots');
    err = '';
    expect(await run(CLASS, '--pool-file', POOL, '--pool', 'x')).toBe(2);
    expect(err).toContain('not both');
  });
});

// Admission on the real local apiserver: the CRDs' schema and CEL rules, and the validating
// webhook (running in this process on 127.0.0.1, registered with a url clientConfig) for what CEL
// cannot see. Every invalid manifest must be refused with a message that names the field and the
// fix; the samples must be accepted; warnings must reach kubectl; a certificate close to expiry
// must be rotated while requests keep flowing.
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseEgressPolicy } from '../../contract/src/egress.js';
import { KubeClient } from '../../operator/src/kube/rest.js';
import {
  KubeCertStore,
  kubeValidationContext,
  startWebhookServer,
  type WebhookServer,
  webhookConfiguration,
} from '../../operator/src/webhook/index.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';

type Obj = Record<string, any>;
const sample = (f: string): Obj => YAML.parse(readFileSync(`config/samples/${f}`, 'utf8'));
const clone = <T>(o: T): T => structuredClone(o);

let ns: string;
let server: WebhookServer;
let vwcName: string;
let clockOffsetMs = 0;

beforeAll(async () => {
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', 'crds/']);
  await kubectlOk(['wait', '--for=condition=Established', '--timeout=60s', '-f', 'crds/']);
  ns = await newNamespace('adm');
  vwcName = `cj-admission-${ns}`;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(stack().kubeconfig);
  const client = await KubeClient.fromKubeConfig(kc);
  server = await startWebhookServer({
    host: '127.0.0.1',
    port: 0,
    tls: {
      mode: 'selfManaged',
      store: new KubeCertStore(client, {
        namespace: ns,
        secretName: 'webhook-tls',
        webhookConfigurationName: vwcName,
      }),
      // A one-day serving certificate renewed 12 h before expiry; the rotation test moves the clock.
      policy: {
        dnsNames: ['localhost'],
        ipAddresses: ['127.0.0.1'],
        servingValidityDays: 1,
        renewBeforeMs: 12 * 3600_000,
      },
    },
    contextFor: kubeValidationContext(client, {
      egress: parseEgressPolicy(['https://api.anthropic.com', 'http://127.0.0.1:*']),
    }),
    checkIntervalMs: 300,
    now: () => new Date(Date.now() + clockOffsetMs),
  });
  const vwc = webhookConfiguration({
    name: vwcName,
    target: { url: `https://127.0.0.1:${server.port}` },
    failurePolicy: 'Fail',
    // Only our namespace: other test files share this apiserver.
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
  });
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(vwc));
  await server.refresh(); // injects the caBundle now that the configuration exists
  // The apiserver picks up webhook configurations asynchronously: wait until ours answers.
  const probe = batch('probe', (b) => {
    b.spec.providerPoolRef.name = 'no-such-pool';
  });
  await waitFor('the webhook to be called', async () => {
    const r = await kubectl(['create', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(probe));
    return r.stderr.includes('denied the request');
  });
  await kubectlOk(['apply', '-n', ns, '-f', 'config/samples/secret.yaml']);
  await kubectlOk(['apply', '-n', ns, '-f', 'config/samples/llmproviderpool.yaml']);
}, 180_000);

afterAll(async () => {
  await kubectl(['delete', 'validatingwebhookconfiguration', vwcName, '--ignore-not-found']);
  await server?.close();
  if (ns) await deleteNamespace(ns);
});

function pool(name: string, mutate: (p: Obj) => void = () => {}): Obj {
  const p = clone(sample('llmproviderpool.yaml'));
  p.metadata = { name };
  mutate(p);
  return p;
}
function batch(name: string, mutate: (b: Obj) => void = () => {}): Obj {
  const b = clone(sample('cjbatch-small.yaml'));
  b.metadata = { name };
  mutate(b);
  return b;
}

interface Case {
  name: string;
  obj: Obj;
  setup?: Obj[];
  /** The exact message kubectl prints (after the object's name), field and fix included. */
  expect: string;
}

const CEL = (kind: string, name: string, msg: string) => `The ${kind} "${name}" is invalid: ${msg}`;
// Schema errors (enum, required, type) stop CEL evaluation; the apiserver says so in a second line.
const CEL_SKIPPED = (kind: string, name: string, msg: string) =>
  `The ${kind} "${name}" is invalid: \n* ${msg}\n* <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation`;
const HOOK = (kind: 'cjbatch' | 'llmproviderpool', msg: string) =>
  `The request is invalid: error when creating "STDIN": admission webhook "v${kind}.cj.huleedu.io" denied the request: ${msg}`;

const cases: Case[] = [
  // --- LLMProviderPool: schema and CEL -------------------------------------------------------
  {
    name: 'p-rpm-over-tier',
    obj: pool('p-rpm-over-tier', (p) => (p.spec.limits = { requestsPerMinute: 2000 })),
    expect: CEL(
      'LLMProviderPool',
      'p-rpm-over-tier',
      'spec.limits.requestsPerMinute: Invalid value: requestsPerMinute 2000 exceeds the start tier ceiling of 1000; lower spec.limits.requestsPerMinute or choose a higher spec.tier',
    ),
  },
  {
    name: 'p-itpm-over-build',
    obj: pool('p-itpm-over-build', (p) => {
      p.spec.tier = 'build';
      p.spec.limits = { inputTokensPerMinute: 6_000_000 };
    }),
    expect: CEL(
      'LLMProviderPool',
      'p-itpm-over-build',
      'spec.limits.inputTokensPerMinute: Invalid value: inputTokensPerMinute 6000000 exceeds the build tier ceiling of 5000000; lower spec.limits.inputTokensPerMinute or choose a higher spec.tier',
    ),
  },
  {
    name: 'p-otpm-over-scale',
    obj: pool('p-otpm-over-scale', (p) => {
      p.spec.tier = 'scale';
      p.spec.limits = { outputTokensPerMinute: 3_000_000 };
    }),
    expect: CEL(
      'LLMProviderPool',
      'p-otpm-over-scale',
      'spec.limits.outputTokensPerMinute: Invalid value: outputTokensPerMinute 3000000 exceeds the scale tier ceiling of 2000000; lower spec.limits.outputTokensPerMinute or choose a higher spec.tier',
    ),
  },
  {
    name: 'p-concurrency-over-start',
    obj: pool('p-concurrency-over-start', (p) => (p.spec.limits = { maxConcurrency: 51 })),
    expect: CEL(
      'LLMProviderPool',
      'p-concurrency-over-start',
      'spec.limits.maxConcurrency: Invalid value: maxConcurrency 51 exceeds the start tier ceiling of 50; lower spec.limits.maxConcurrency or choose a higher spec.tier',
    ),
  },
  {
    name: 'p-custom-without-limits',
    obj: pool('p-custom-without-limits', (p) => {
      p.spec.tier = 'custom';
      p.spec.limits = { requestsPerMinute: 50_000 };
    }),
    expect: CEL(
      'LLMProviderPool',
      'p-custom-without-limits',
      'spec.limits: Required value: tier custom has no ceiling to fall back on; set all of spec.limits.requestsPerMinute, inputTokensPerMinute, outputTokensPerMinute, maxConcurrency or choose tier start, build or scale',
    ),
  },
  {
    name: 'p-bundle-65',
    obj: pool('p-bundle-65', (p) => (p.spec.batching = { mode: 'serial_bundle', bundleSize: 65 })),
    expect: CEL(
      'LLMProviderPool',
      'p-bundle-65',
      'spec.batching.bundleSize: Invalid value: bundleSize 65 is out of range; set spec.batching.bundleSize between 1 and 64',
    ),
  },
  {
    name: 'p-bundle-0',
    obj: pool('p-bundle-0', (p) => (p.spec.batching = { mode: 'serial_bundle', bundleSize: 0 })),
    expect: CEL(
      'LLMProviderPool',
      'p-bundle-0',
      'spec.batching.bundleSize: Invalid value: bundleSize 0 is out of range; set spec.batching.bundleSize between 1 and 64',
    ),
  },
  {
    name: 'p-batch-api-fake',
    obj: pool('p-batch-api-fake', (p) => (p.spec.batching = { mode: 'batch_api' })),
    expect: CEL(
      'LLMProviderPool',
      'p-batch-api-fake',
      'spec.batching.mode: Forbidden: batching mode batch_api needs a provider with a batch API (anthropic) but provider is fake; use mode per_request or serial_bundle',
    ),
  },
  {
    name: 'p-backoff-order',
    obj: pool('p-backoff-order', (p) => (p.spec.retry = { initialBackoff: '2m', maxBackoff: '30s' })),
    expect: CEL(
      'LLMProviderPool',
      'p-backoff-order',
      'spec.retry.initialBackoff: Invalid value: initialBackoff 2m is longer than maxBackoff 30s; lower spec.retry.initialBackoff or raise spec.retry.maxBackoff',
    ),
  },
  {
    name: 'p-bad-provider',
    obj: pool('p-bad-provider', (p) => (p.spec.provider = 'openai')),
    expect: CEL_SKIPPED(
      'LLMProviderPool',
      'p-bad-provider',
      'spec.provider: Unsupported value: "openai": supported values: "anthropic", "fake"',
    ),
  },
  {
    name: 'p-bad-duration',
    obj: pool('p-bad-duration', (p) => (p.spec.retry = { maxBackoff: '30 seconds' })),
    expect: CEL(
      'LLMProviderPool',
      'p-bad-duration',
      'spec.retry.maxBackoff: Invalid value: "30 seconds": spec.retry.maxBackoff in body should match \'^([0-9]+(ms|s|m|h))+$\'',
    ),
  },
  {
    name: 'p-float-price',
    obj: pool('p-float-price', (p) => (p.spec.pricing.inputPerMTok = '3.0.0')),
    expect: CEL(
      'LLMProviderPool',
      'p-float-price',
      'spec.pricing.inputPerMTok: Invalid value: "3.0.0": spec.pricing.inputPerMTok in body should match \'^(0|[1-9][0-9]{0,8})(\\.[0-9]{1,6})?$\'',
    ),
  },
  {
    name: 'p-bad-ttl',
    obj: pool('p-bad-ttl', (p) => (p.spec.promptCaching.ttl = '10m')),
    expect: CEL_SKIPPED(
      'LLMProviderPool',
      'p-bad-ttl',
      'spec.promptCaching.ttl: Unsupported value: "10m": supported values: "5m", "1h"',
    ),
  },
  {
    name: 'p-no-secret-ref',
    obj: pool('p-no-secret-ref', (p) => delete p.spec.apiKeySecretRef),
    expect: CEL_SKIPPED('LLMProviderPool', 'p-no-secret-ref', 'spec.apiKeySecretRef: Required value'),
  },
  // --- CJBatch: schema and CEL ----------------------------------------------------------------
  {
    name: 'b-two-sources',
    obj: batch('b-two-sources', (b) => (b.spec.essays.configMapRefs = [{ name: 'essays' }])),
    expect: CEL(
      'CJBatch',
      'b-two-sources',
      'spec.essays: Invalid value: essays has both inline and configMapRefs; keep exactly one source',
    ),
  },
  {
    name: 'b-no-source',
    obj: batch('b-no-source', (b) => (b.spec.essays = {})),
    expect: CEL(
      'CJBatch',
      'b-no-source',
      'spec.essays: Invalid value: essays has no source; set spec.essays.inline or spec.essays.configMapRefs',
    ),
  },
  {
    name: 'b-anchor-grade',
    obj: batch('b-anchor-grade', (b) => (b.spec.anchors[1].grade = 'A+')),
    expect: CEL(
      'CJBatch',
      'b-anchor-grade',
      'spec.anchors: Invalid value: anchor anchor-d has grade A+ which is not in spec.gradeScale.grades [F, E, D, C, B, A]; use one of those grades or add it to the scale',
    ),
  },
  {
    name: 'b-per-essay-over-total',
    obj: batch(
      'b-per-essay-over-total',
      (b) => (b.spec.budget = { maxComparisons: 10, maxComparisonsPerEssay: 11 }),
    ),
    expect: CEL(
      'CJBatch',
      'b-per-essay-over-total',
      'spec.budget.maxComparisonsPerEssay: Invalid value: maxComparisonsPerEssay 11 exceeds maxComparisons 10; lower spec.budget.maxComparisonsPerEssay',
    ),
  },
  {
    name: 'b-budget-too-small',
    obj: batch('b-budget-too-small', (b) => (b.spec.budget = { maxComparisons: 5 })),
    expect: CEL(
      'CJBatch',
      'b-budget-too-small',
      'spec.budget.maxComparisons: Invalid value: maxComparisons 5 cannot include each of the 12 essays and anchors even once; set spec.budget.maxComparisons to at least 6',
    ),
  },
  {
    name: 'b-min-over-cap',
    obj: batch('b-min-over-cap', (b) => {
      b.spec.budget = { maxComparisonsPerEssay: 3 };
      b.spec.stopping.minComparisonsPerEssay = 4;
    }),
    expect: CEL(
      'CJBatch',
      'b-min-over-cap',
      'spec.stopping.minComparisonsPerEssay: Invalid value: minComparisonsPerEssay 4 exceeds spec.budget.maxComparisonsPerEssay 3, so the stop rule could never hold; lower spec.stopping.minComparisonsPerEssay',
    ),
  },
  {
    name: 'b-anchor-two-texts',
    obj: batch(
      'b-anchor-two-texts',
      (b) => (b.spec.anchors[0].configMapKeyRef = { name: 'anchors', key: 'f' }),
    ),
    expect: CEL(
      'CJBatch',
      'b-anchor-two-texts',
      'spec.anchors[0]: Invalid value: anchor anchor-f must set exactly one of text or configMapKeyRef',
    ),
  },
  {
    name: 'b-rubric-missing',
    obj: batch('b-rubric-missing', (b) => (b.spec.assignment.rubric = {})),
    expect: CEL(
      'CJBatch',
      'b-rubric-missing',
      'spec.assignment.rubric: Invalid value: set exactly one of value or configMapKeyRef for the rubric the judge applies',
    ),
  },
  {
    name: 'b-duplicate-essay',
    obj: batch('b-duplicate-essay', (b) => (b.spec.essays.inline[1].id = 'essay-01')),
    expect: CEL('CJBatch', 'b-duplicate-essay', 'spec.essays.inline[1]: Duplicate value: {"id":"essay-01"}'),
  },
  {
    name: 'b-one-grade-scale',
    obj: batch('b-one-grade-scale', (b) => {
      b.spec.gradeScale.grades = ['A'];
      delete b.spec.anchors;
    }),
    expect: CEL(
      'CJBatch',
      'b-one-grade-scale',
      'spec.gradeScale.grades: Invalid value: 1: spec.gradeScale.grades in body should have at least 2 items',
    ),
  },
  {
    name: 'b-duplicate-grade',
    obj: batch('b-duplicate-grade', (b) => (b.spec.gradeScale.grades = ['F', 'D', 'D', 'B', 'A'])),
    expect: CEL('CJBatch', 'b-duplicate-grade', 'spec.gradeScale.grades[2]: Duplicate value: "D"'),
  },
  {
    name: 'b-bad-essay-id',
    obj: batch('b-bad-essay-id', (b) => (b.spec.essays.inline[0].id = 'essay 01')),
    expect: CEL(
      'CJBatch',
      'b-bad-essay-id',
      'spec.essays.inline[0].id: Invalid value: "essay 01": spec.essays.inline[0].id in body should match \'^[A-Za-z0-9]([-._A-Za-z0-9]*[A-Za-z0-9])?$\'',
    ),
  },
  {
    name: 'b-parallelism-0',
    obj: batch('b-parallelism-0', (b) => (b.spec.workers.parallelism = 0)),
    expect: CEL(
      'CJBatch',
      'b-parallelism-0',
      'spec.workers.parallelism: Invalid value: 0: spec.workers.parallelism in body should be greater than or equal to 1',
    ),
  },
  {
    name: 'b-bad-retention',
    obj: batch('b-bad-retention', (b) => (b.spec.retention = { policy: 'Archive' })),
    expect: CEL_SKIPPED(
      'CJBatch',
      'b-bad-retention',
      'spec.retention.policy: Unsupported value: "Archive": supported values: "Delete", "Retain"',
    ),
  },
  {
    name: 'b-float-threshold',
    obj: batch('b-float-threshold', (b) => (b.spec.stopping.rankStability = 0.98)),
    expect: CEL_SKIPPED(
      'CJBatch',
      'b-float-threshold',
      'spec.stopping.rankStability: Invalid value: "number": spec.stopping.rankStability in body must be of type integer: "number"',
    ),
  },
  // --- CJBatch: the webhook -------------------------------------------------------------------
  {
    name: 'b-pool-missing',
    obj: batch('b-pool-missing', (b) => (b.spec.providerPoolRef.name = 'other-pool')),
    expect: HOOK(
      'cjbatch',
      'spec.providerPoolRef.name: LLMProviderPool "other-pool" not found in namespace "NS"; create the pool first or fix the name',
    ),
  },
  {
    name: 'b-override-loosens',
    obj: batch(
      'b-override-loosens',
      (b) => (b.spec.overrides = { limits: { requestsPerMinute: 700, maxConcurrency: 8 } }),
    ),
    expect: HOOK(
      'cjbatch',
      'spec.overrides.limits.requestsPerMinute: 700 exceeds the requestsPerMinute of LLMProviderPool "fake-pool" (600); overrides may only tighten the pool, so set at most 600 or remove the override',
    ),
  },
  {
    name: 'b-override-over-ceiling-default',
    obj: batch(
      'b-override-over-ceiling-default',
      (b) => (b.spec.overrides = { limits: { outputTokensPerMinute: 500_000 } }),
    ),
    expect: HOOK(
      'cjbatch',
      'spec.overrides.limits.outputTokensPerMinute: 500000 exceeds the outputTokensPerMinute of LLMProviderPool "fake-pool" (400000); overrides may only tighten the pool, so set at most 400000 or remove the override',
    ),
  },
  {
    name: 'b-configmap-missing',
    obj: batch(
      'b-configmap-missing',
      (b) => (b.spec.essays = { configMapRefs: [{ name: 'no-such-essays' }] }),
    ),
    expect: HOOK(
      'cjbatch',
      'spec.essays.configMapRefs[0].name: ConfigMap "no-such-essays" not found in namespace "NS"; create it before the batch or fix the name',
    ),
  },
  {
    name: 'b-jsonl-broken',
    setup: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'essays-broken' },
        data: { 'set.jsonl': '{"id":"x1","text":"fine"}\n{"id":"x2","text":\n' },
      },
    ],
    obj: batch(
      'b-jsonl-broken',
      (b) => (b.spec.essays = { configMapRefs: [{ name: 'essays-broken', format: 'jsonl' }] }),
    ),
    expect: HOOK(
      'cjbatch',
      'spec.essays.configMapRefs[0]: ConfigMap "essays-broken" key "set.jsonl" line 2 is not valid JSON; each line must be {"id": "...", "text": "..."}',
    ),
  },
  {
    name: 'b-ids-across-sources',
    setup: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'essays-a' },
        data: { 'essay-01': 'one', 'essay-02': 'two' },
      },
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'essays-b' }, data: { 'essay-02': 'again' } },
    ],
    obj: batch(
      'b-ids-across-sources',
      (b) => (b.spec.essays = { configMapRefs: [{ name: 'essays-a' }, { name: 'essays-b' }] }),
    ),
    expect: HOOK(
      'cjbatch',
      'spec.essays.configMapRefs[1]: essay id "essay-02" in ConfigMap "essays-b" (key "essay-02") is also used by ConfigMap "essays-a" (key "essay-02"); essay ids must be unique',
    ),
  },
  {
    name: 'b-anchor-is-essay',
    obj: batch('b-anchor-is-essay', (b) => (b.spec.anchors[0].id = 'essay-03')),
    expect: HOOK(
      'cjbatch',
      'spec.anchors[0].id: anchor id "essay-03" is also an essay id (spec.essays.inline[2]); rename the anchor or the essay',
    ),
  },
  {
    name: 'b-anchors-one-grade',
    obj: batch('b-anchors-one-grade', (b) => {
      for (const a of b.spec.anchors) a.grade = 'C';
    }),
    expect: HOOK(
      'cjbatch',
      'spec.anchors: anchors cover only grade C; grades are placed between anchors, so add anchors of at least one other grade from spec.gradeScale.grades',
    ),
  },
  {
    name: 'b-rubric-key-missing',
    setup: [{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'assignment' }, data: { title: 'T' } }],
    obj: batch(
      'b-rubric-key-missing',
      (b) => (b.spec.assignment.rubric = { configMapKeyRef: { name: 'assignment', key: 'rubric' } }),
    ),
    expect: HOOK(
      'cjbatch',
      'spec.assignment.rubric.configMapKeyRef: ConfigMap "assignment" has no key "rubric"; add the key or fix configMapKeyRef.key',
    ),
  },
];

describe('admission of invalid manifests', () => {
  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases.map((c) => [c.name, c] as const))(
    'refuses %s with a message naming the field and the fix',
    async (_n, c) => {
      for (const s of c.setup ?? []) await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(s));
      const r = await kubectl(['create', '-n', ns, '-f', '-'], JSON.stringify(c.obj));
      expect(r.code, `accepted: ${r.stdout}`).not.toBe(0);
      const want = c.expect.replaceAll('"NS"', `"${ns}"`);
      // The whole of kubectl's output, exactly: the message and nothing else.
      expect(r.stderr.trim()).toBe(want);
    },
  );
});

describe('admission of valid manifests', () => {
  it('accepts the samples as written', async () => {
    const r = await kubectl(['apply', '-n', ns, '-f', 'config/samples/']);
    // The demo set holds two essays written to game the grader: the webhook warns, never refuses.
    expect(r.stderr.trim()).toBe(
      'Warning: possible prompt injection in essay-017, essay-035 (addresses_grader, instruction_override, verdict_request): judged as data inside the prompt delimiters; their comparisons are flagged',
    );
    expect(r.stdout).toContain('cjbatch.cj.huleedu.io/sample-small created');
    const got = JSON.parse(await kubectlOk(['get', 'cjb', 'sample-small', '-n', ns, '-o', 'json']));
    // Defaults from the schema are applied by the apiserver.
    expect(got.spec.stopping.rankStability).toBe(9900);
    expect(got.spec.retention).toEqual({ policy: 'Delete' });
    const cols = await kubectlOk(['get', 'cj', '-n', ns]);
    expect(cols).toMatch(/PHASE\s+PROGRESS\s+ROUND\s+STABILITY\s+AGE/);
    expect(cols).toMatch(/PROVIDER\s+MODEL\s+TIER\s+READY\s+AGE/);
  });

  it('prints warnings for legal but suspicious specs', async () => {
    const b = batch('warn-small', (x) => {
      x.spec.essays.inline = x.spec.essays.inline.slice(0, 3);
      delete x.spec.anchors;
      x.spec.budget = { maxComparisons: 50 };
    });
    const r = await kubectl(['create', '-n', ns, '-f', '-'], JSON.stringify(b));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(
      'Warning: spec.budget.maxComparisons 50 is more than the 3 distinct pairs of 3 essays and anchors; the batch stops once every pair is judged',
    );
    expect(r.stderr).toContain(
      'Warning: only 3 essays: a ranking of fewer than 4 essays carries little information',
    );
    expect(r.stderr).toContain(
      'Warning: spec.anchors is empty: the batch will rank the essays but cannot grade them; add anchors covering at least two grades',
    );
    // Admission never looks Secrets up: its answer must not tell whether a Secret exists.
    const p = pool('warn-pool', (x) => (x.spec.apiKeySecretRef.name = 'not-yet-created'));
    const rp = await kubectl(['create', '-n', ns, '-f', '-'], JSON.stringify(p));
    expect(rp.code).toBe(0);
    expect(rp.stderr).not.toContain('not-yet-created');
    const rs = await kubectl(['create', '-n', ns, '-f', '-'], JSON.stringify(pool('warn-pool-2')));
    expect(rs.code).toBe(0);
    expect(rs.stderr).not.toContain('llm-api-key');
  });

  it('refuses a pool whose baseURL is not on the allowlist, or carries credentials', async () => {
    const far = await kubectl(
      ['create', '--dry-run=server', '-n', ns, '-f', '-'],
      JSON.stringify(pool('far-pool', (x) => (x.spec.baseURL = 'http://169.254.169.254/latest'))),
    );
    expect(far.code).not.toBe(0);
    expect(far.stderr).toContain(
      'spec.baseURL: http://169.254.169.254/latest is not an allowed provider endpoint; the platform allows https://api.anthropic.com,http://127.0.0.1:*',
    );
    const creds = await kubectl(
      ['create', '--dry-run=server', '-n', ns, '-f', '-'],
      JSON.stringify(pool('creds-pool', (x) => (x.spec.baseURL = 'http://u:hunter2@127.0.0.1:8089'))),
    );
    expect(creds.code).not.toBe(0);
    expect(creds.stderr).toContain('spec.baseURL: must not carry credentials');
    expect(creds.stderr).not.toContain('hunter2');
  });

  it('refuses changes to essays, anchors and the grade scale after creation, and allows other changes', async () => {
    const changed = (f: (b: Obj) => void) => {
      const b = batch('sample-small');
      f(b);
      return JSON.stringify(b);
    };
    const essays = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      changed((b) => (b.spec.essays.inline[0].text = 'edited')),
    );
    expect(essays.stderr).toContain(
      'spec.essays: Forbidden: spec.essays is immutable after creation; create a new CJBatch to change it',
    );
    const anchors = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      changed((b) => b.spec.anchors.pop()),
    );
    expect(anchors.stderr).toContain(
      'spec.anchors: Forbidden: spec.anchors is immutable after creation; create a new CJBatch to change it',
    );
    const scale = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      changed((b) => (b.spec.gradeScale.grades = ['F', 'D', 'C', 'B', 'A'])),
    );
    expect(scale.stderr).toContain(
      'spec.gradeScale: Forbidden: spec.gradeScale is immutable after creation; create a new CJBatch to change it',
    );
    const suspend = await kubectl(
      ['apply', '-n', ns, '-f', '-'],
      changed((b) => (b.spec.suspend = true)),
    );
    expect(suspend.stderr).toBe('');
    expect(suspend.stdout).toContain('configured');
  });
});

describe('kubectl explain', () => {
  it('explains cjbatch.spec.budget', async () => {
    const out = (await kubectlOk(['explain', 'cjbatch.spec.budget'])).replace(/\s+/g, ' ');
    expect(out).toContain('The comparison budget.');
    expect(out).toContain('maxComparisons <integer>');
    expect(out).toContain('status.budget.source says which applied');
    expect(out).toContain('Must not exceed maxComparisons');
  });

  it('explains llmproviderpool.spec.limits with the tier ceilings', async () => {
    const out = (await kubectlOk(['explain', 'llmproviderpool.spec.limits'])).replace(/\s+/g, ' ');
    expect(out).toContain('start: 1k requests, 2M input and 400k output tokens per minute, 50 concurrent');
    expect(out).toContain('requestsPerMinute <integer>');
    expect(out).toContain('tier custom needs all four');
  });
});

describe('webhook certificate rotation', () => {
  const servedSerial = () =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: server.port, rejectUnauthorized: false }, () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.end();
      });
      s.on('error', reject);
    });

  it('rotates a certificate close to expiry with no request refused', async () => {
    const before = server.servingSerial();
    expect((await servedSerial()).toUpperCase()).toBe(before.toUpperCase());
    let stop = false;
    const failures: string[] = [];
    let ok = 0;
    // Four clients keep sending admission requests (server-side dry runs through the webhook).
    const load = Array.from({ length: 4 }, (_, i) =>
      (async () => {
        while (!stop) {
          const r = await kubectl(
            ['create', '--dry-run=server', '-n', ns, '-f', '-'],
            JSON.stringify(batch(`load-${i}`)),
          );
          if (r.code === 0) ok++;
          else failures.push(r.stderr);
        }
      })(),
    );
    await new Promise((r) => setTimeout(r, 2_000));
    // 13 h later the one-day certificate is inside its 12 h renewal window.
    clockOffsetMs = 13 * 3600_000;
    await waitFor(
      'the serving certificate to be rotated',
      async () => server.servingSerial() !== before,
      30_000,
    );
    const okAtSwap = ok;
    await new Promise((r) => setTimeout(r, 3_000));
    stop = true;
    await Promise.all(load);
    process.stderr.write(
      `[admission] rotation: ${ok} admission requests (${okAtSwap} before the swap), ${failures.length} refused\n`,
    );
    expect(failures).toEqual([]);
    expect(okAtSwap).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(okAtSwap); // requests kept succeeding after the swap
    // The simulated clock keeps the new one-day certificate inside its window too; stop the clock
    // so the served, current and stored certificates settle on one.
    clockOffsetMs = 0;
    await server.refresh();
    const after = server.servingSerial();
    expect((await servedSerial()).toUpperCase()).toBe(after.toUpperCase());
    // The Secret holds the new certificate, so other replicas pick it up.
    const secret = JSON.parse(await kubectlOk(['get', 'secret', 'webhook-tls', '-n', ns, '-o', 'json']));
    const { X509Certificate } = await import('node:crypto');
    const stored = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    expect(stored.serialNumber.toUpperCase()).toBe(after.toUpperCase());
  });
});

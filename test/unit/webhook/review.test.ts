// AdmissionReview handling without HTTP: what the apiserver sends in, what we answer.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import type { ValidationContext } from '../../../operator/src/validation/index.js';
import { BadReview, review, webhookConfiguration } from '../../../operator/src/webhook/index.js';

type Obj = Record<string, any>;
const sample = (f: string): Obj => YAML.parse(readFileSync(`config/samples/${f}`, 'utf8'));
const pool = sample('llmproviderpool.yaml');
const calls: string[] = [];
const contextFor = (namespace: string): ValidationContext => ({
  namespace,
  getPool: async (name) => {
    calls.push(`pool ${namespace}/${name}`);
    return name === 'fake-pool' ? pool : undefined;
  },
  getConfigMap: async () => undefined,
});

function request(kind: string, operation: string, object: Obj, oldObject?: Obj) {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-1',
      kind: { group: 'cj.huleedu.io', version: 'v1alpha1', kind },
      operation,
      namespace: 'ns1',
      name: object.metadata?.name,
      object,
      oldObject,
    },
  };
}

describe('review', () => {
  it('allows a valid batch and echoes the uid', async () => {
    const out = await review(request('CJBatch', 'CREATE', sample('cjbatch-small.yaml')), contextFor);
    expect(out).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: 'uid-1', allowed: true },
    });
  });

  it('denies with 422, every field and fix in the message, and passes warnings', async () => {
    const b = sample('cjbatch-small.yaml');
    b.spec.providerPoolRef.name = 'gone';
    b.spec.anchors = [{ id: 'essay-01', grade: 'A', text: 'x' }];
    const out = await review(request('CJBatch', 'CREATE', b), contextFor);
    expect(out.response).toEqual({
      uid: 'uid-1',
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message:
          'spec.providerPoolRef.name: LLMProviderPool "gone" not found in namespace "ns1"; create the pool first or fix the name; ' +
          'spec.anchors[0].id: anchor id "essay-01" is also an essay id (spec.essays.inline[0]); rename the anchor or the essay; ' +
          'spec.anchors: anchors cover only grade A; grades are placed between anchors, so add anchors of at least one other grade from spec.gradeScale.grades',
      },
    });
  });

  it('returns warnings on an allowed request', async () => {
    const b = sample('cjbatch-small.yaml');
    delete b.spec.anchors;
    const out = await review(request('CJBatch', 'CREATE', b), contextFor);
    expect(out.response?.allowed).toBe(true);
    expect(out.response?.warnings).toEqual([
      'spec.anchors is empty: the batch will rank the essays but cannot grade them; add anchors covering at least two grades',
    ]);
  });

  it('validates pools', async () => {
    const p = structuredClone(pool);
    p.spec.tier = 'custom';
    const out = await review(request('LLMProviderPool', 'CREATE', p), contextFor);
    expect(out.response?.allowed).toBe(false);
    expect(out.response?.status?.message).toMatch(/^spec\.limits: tier custom has no ceiling/);
  });

  it('lets updates that leave the spec alone through without lookups (finalizer removal must never be blocked)', async () => {
    const b = sample('cjbatch-small.yaml');
    b.spec.providerPoolRef.name = 'deleted-pool';
    const withFinalizer: Obj = { ...b, metadata: { ...b.metadata, finalizers: ['cj.huleedu.io/cleanup'] } };
    calls.length = 0;
    const out = await review(request('CJBatch', 'UPDATE', b, withFinalizer), contextFor);
    expect(out.response).toEqual({ uid: 'uid-1', allowed: true });
    expect(calls).toEqual([]);
    const deleting: Obj = { ...b, metadata: { ...b.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } };
    const changed = structuredClone(deleting);
    changed.spec.suspend = true;
    expect(
      (await review(request('CJBatch', 'UPDATE', changed, deleting), contextFor)).response?.allowed,
    ).toBe(true);
  });

  it('re-validates updates that change the spec', async () => {
    const old = sample('cjbatch-small.yaml');
    const b = structuredClone(old);
    b.spec.providerPoolRef.name = 'gone';
    expect((await review(request('CJBatch', 'UPDATE', b, old), contextFor)).response?.allowed).toBe(false);
  });

  it('allows other groups, kinds and operations untouched', async () => {
    const other = request('CJBatch', 'CREATE', { spec: {} });
    other.request.kind.group = 'example.com';
    expect((await review(other, contextFor)).response?.allowed).toBe(true);
    expect((await review(request('CJBatch', 'DELETE', { spec: {} }), contextFor)).response?.allowed).toBe(
      true,
    );
  });

  it('rejects a body that is not an AdmissionReview', async () => {
    await expect(review({ kind: 'Nope' }, contextFor)).rejects.toBeInstanceOf(BadReview);
  });
});

describe('webhookConfiguration', () => {
  it('registers both kinds with the chosen failurePolicy, URL or Service target', () => {
    const url = webhookConfiguration({
      name: 'cj',
      target: { url: 'https://127.0.0.1:9443/' },
      failurePolicy: 'Ignore',
    });
    expect(
      url.webhooks?.map((w) => [w.name, w.clientConfig.url, w.failurePolicy, w.rules?.[0]?.resources]),
    ).toEqual([
      ['vcjbatch.cj.huleedu.io', 'https://127.0.0.1:9443/validate-cjbatch', 'Ignore', ['cjbatches']],
      [
        'vllmproviderpool.cj.huleedu.io',
        'https://127.0.0.1:9443/validate-llmproviderpool',
        'Ignore',
        ['llmproviderpools'],
      ],
    ]);
    const svc = webhookConfiguration({
      name: 'cj',
      target: { service: { name: 'cj-webhook', namespace: 'cj-system', port: 443 } },
      caBundle: 'PEM',
    });
    expect(svc.webhooks?.[0]?.clientConfig).toEqual({
      service: { name: 'cj-webhook', namespace: 'cj-system', port: 443, path: '/validate-cjbatch' },
      caBundle: Buffer.from('PEM').toString('base64'),
    });
    expect(svc.webhooks?.[0]?.failurePolicy).toBe('Fail');
    expect(svc.webhooks?.[0]?.sideEffects).toBe('None');
  });
});

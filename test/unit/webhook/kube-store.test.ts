// KubeCertStore against a recording HTTP server: a Secret and a ValidatingWebhookConfiguration
// rendered by an installer (Helm, kustomize) are patched, never replaced, so their type, labels
// and annotations (Helm's ownership metadata) stay and `helm uninstall` can remove them.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubeClient } from '../../../operator/src/kube/rest.js';
import { KubeCertStore, type StoredCerts } from '../../../operator/src/webhook/index.js';

interface Call {
  method: string;
  path: string;
  contentType: string | undefined;
  body: any;
}
type Answer = { status: number; body: unknown };

let server: http.Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A fake apiserver answering from `answers` in order per "METHOD path"; records every call. */
async function fakeApi(answers: Record<string, Answer[]>) {
  const calls: Call[] = [];
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '').split('?')[0]!;
      calls.push({
        method: req.method!,
        path,
        contentType: req.headers['content-type'],
        body: text ? JSON.parse(text) : undefined,
      });
      const a = answers[`${req.method} ${path}`]?.shift() ?? { status: 500, body: { message: 'unexpected' } };
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(JSON.stringify(a.body));
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'c',
        server: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  // The operator's own REST client, from a kubeconfig as in the operator.
  return { kc: await KubeClient.fromKubeConfig(kc), calls };
}

const SECRET = '/api/v1/namespaces/cj-system/secrets/rel-webhook-tls';
const VWC = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/rel-validating';
const certs: StoredCerts = {
  caBundle: 'CA',
  caKey: 'CAKEY',
  tlsCert: 'CRT',
  tlsKey: 'KEY',
  caRotatedAt: '2026-01-01T00:00:00.000Z',
};
const b64 = (s: string) => Buffer.from(s).toString('base64');
const data = { 'tls.crt': b64('CRT'), 'tls.key': b64('KEY'), 'ca.crt': b64('CA'), 'ca.key': b64('CAKEY') };
const status = (code: number, reason: string) => ({
  status: code,
  body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, code },
});
const store = (kc: KubeClient, urls?: Record<string, string>) =>
  new KubeCertStore(kc, {
    namespace: 'cj-system',
    secretName: 'rel-webhook-tls',
    webhookConfigurationName: 'rel-validating',
    ...(urls ? { urls } : {}),
  });
// The chart's rendered Secret: Opaque, no data, Helm's labels and annotations.
const rendered = {
  apiVersion: 'v1',
  kind: 'Secret',
  type: 'Opaque',
  metadata: {
    name: 'rel-webhook-tls',
    namespace: 'cj-system',
    resourceVersion: '7',
    labels: { 'app.kubernetes.io/managed-by': 'Helm' },
    annotations: { 'meta.helm.sh/release-name': 'rel' },
  },
};

describe('KubeCertStore', () => {
  it('treats a rendered empty Secret as absent, then fills it with a merge patch that keeps type, labels and annotations', async () => {
    const { kc, calls } = await fakeApi({
      [`GET ${SECRET}`]: [
        { status: 200, body: rendered },
        { status: 200, body: rendered },
      ],
      [`PATCH ${SECRET}`]: [{ status: 200, body: { ...rendered, data } }],
    });
    const s = store(kc);
    expect(await s.load()).toBeUndefined();
    expect(await s.save(certs, undefined)).toBe(true);
    const patch = calls.find((c) => c.method === 'PATCH')!;
    expect(patch.contentType).toBe('application/merge-patch+json');
    expect(patch.body).toEqual({
      metadata: { resourceVersion: '7', annotations: { 'cj.huleedu.io/ca-rotated-at': certs.caRotatedAt } },
      data,
    });
    // No create (the installer may grant none) and no replace.
    expect(calls.map((c) => c.method)).toEqual(['GET', 'GET', 'PATCH']);
  });

  it('creates a labelled kubernetes.io/tls Secret when none exists (operator-managed installs)', async () => {
    const { kc, calls } = await fakeApi({
      [`GET ${SECRET}`]: [status(404, 'NotFound')],
      'POST /api/v1/namespaces/cj-system/secrets': [{ status: 201, body: {} }, status(409, 'AlreadyExists')],
    });
    expect(await store(kc).save(certs, undefined)).toBe(true);
    expect(calls.map((c) => c.method)).toEqual(['GET', 'POST']);
    expect(calls[1]!.body).toMatchObject({
      type: 'kubernetes.io/tls',
      metadata: { labels: { 'app.kubernetes.io/managed-by': 'cj-operator' } },
      data,
    });
  });

  it('rotates with a patch preconditioned on the version it loaded; a conflict reports a lost race', async () => {
    const { kc, calls } = await fakeApi({
      [`PATCH ${SECRET}`]: [{ status: 200, body: {} }, status(409, 'Conflict')],
    });
    const s = store(kc);
    expect(await s.save({ ...certs, caRotatedAt: undefined }, '12')).toBe(true);
    expect(calls[0]!.body.metadata).toEqual({
      resourceVersion: '12',
      annotations: { 'cj.huleedu.io/ca-rotated-at': null },
    });
    expect(await s.save(certs, '12')).toBe(false);
  });

  it('reports a lost race when another replica filled or created the Secret meanwhile', async () => {
    const { kc, calls } = await fakeApi({
      [`GET ${SECRET}`]: [{ status: 200, body: { ...rendered, data } }, status(404, 'NotFound')],
      'POST /api/v1/namespaces/cj-system/secrets': [status(409, 'AlreadyExists')],
    });
    expect(await store(kc).save(certs, undefined)).toBe(false);
    expect(calls.map((c) => c.method)).toEqual(['GET']);
    expect(await store(kc).save(certs, undefined)).toBe(false);
    expect(calls.map((c) => c.method)).toEqual(['GET', 'GET', 'POST']);
  });

  it('injects caBundle (and a run-time URL) into a rendered configuration with a strategic merge patch by webhook name', async () => {
    const hook = (name: string, clientConfig: Record<string, string>) => ({ name, clientConfig });
    const cfg = {
      metadata: {
        name: 'rel-validating',
        resourceVersion: '3',
        labels: { 'app.kubernetes.io/managed-by': 'Helm' },
      },
      webhooks: [
        hook('vcjbatch.cj.huleedu.io', { url: 'https://$(POD_IP):9443/validate-cjbatch' }),
        hook('vllmproviderpool.cj.huleedu.io', { url: 'https://$(POD_IP):9443/validate-llmproviderpool' }),
      ],
    };
    const done = {
      ...cfg,
      webhooks: [
        hook('vcjbatch.cj.huleedu.io', {
          url: 'https://10.0.0.5:9443/validate-cjbatch',
          caBundle: b64('CA'),
        }),
        hook('vllmproviderpool.cj.huleedu.io', {
          url: 'https://10.0.0.5:9443/validate-llmproviderpool',
          caBundle: b64('CA'),
        }),
      ],
    };
    const { kc, calls } = await fakeApi({
      [`GET ${VWC}`]: [
        { status: 200, body: cfg },
        { status: 200, body: done },
        { status: 200, body: done },
      ],
      [`PATCH ${VWC}`]: [status(409, 'Conflict')],
    });
    // The 409 (someone wrote in between) makes it re-read; the new state is already current.
    const urls = {
      'vcjbatch.cj.huleedu.io': 'https://10.0.0.5:9443/validate-cjbatch',
      'vllmproviderpool.cj.huleedu.io': 'https://10.0.0.5:9443/validate-llmproviderpool',
    };
    await store(kc, urls).injectCABundle('CA');
    const patch = calls.find((c) => c.method === 'PATCH')!;
    expect(patch.contentType).toBe('application/strategic-merge-patch+json');
    expect(patch.body).toEqual({
      metadata: { resourceVersion: '3' },
      webhooks: [
        {
          name: 'vcjbatch.cj.huleedu.io',
          clientConfig: { caBundle: b64('CA'), url: urls['vcjbatch.cj.huleedu.io'] },
        },
        {
          name: 'vllmproviderpool.cj.huleedu.io',
          clientConfig: { caBundle: b64('CA'), url: urls['vllmproviderpool.cj.huleedu.io'] },
        },
      ],
    });
    expect(calls.map((c) => c.method)).toEqual(['GET', 'PATCH', 'GET']);
    // Already current: no write at all.
    calls.length = 0;
    await store(kc, urls).injectCABundle('CA');
    expect(calls.map((c) => c.method)).toEqual(['GET']);
  });

  it('waits for a configuration that is not there yet', async () => {
    const { kc, calls } = await fakeApi({ [`GET ${VWC}`]: [status(404, 'NotFound')] });
    await store(kc).injectCABundle('CA');
    expect(calls.map((c) => c.method)).toEqual(['GET']);
  });
});

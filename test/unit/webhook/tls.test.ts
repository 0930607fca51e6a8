// Certificates and their rotation with an in-memory store and a controllable clock, and the HTTPS
// server's hot swap: a new certificate is served without refusing a request.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICY,
  ensureCerts,
  generateCA,
  generateServingCert,
  issuedBy,
  MemoryCertStore,
  type RotationPolicy,
  serialOf,
  splitPem,
  startWebhookServer,
  type WebhookServer,
} from '../../../operator/src/webhook/index.js';

const HOUR = 3600_000;
const policy: RotationPolicy = {
  ...DEFAULT_POLICY,
  dnsNames: ['localhost'],
  ipAddresses: ['127.0.0.1'],
  servingValidityDays: 1,
  caValidityDays: 2,
  renewBeforeMs: HOUR,
  caRenewBeforeMs: 30 * HOUR,
  caPropagationMs: 1_000,
};

describe('generateCA / generateServingCert (in-process, no openssl)', () => {
  it('makes a P-256 CA and a serving cert for the given names, signed by it', async () => {
    const ca = await generateCA('cj-webhook-ca', 2);
    const caX = new X509Certificate(ca.cert);
    expect(caX.ca).toBe(true);
    expect(caX.subject).toBe('CN=cj-webhook-ca');
    expect(caX.checkPrivateKey(createPrivateKey(ca.key))).toBe(true);
    const leaf = await generateServingCert(ca, {
      dnsNames: ['cj-webhook.cj-system.svc'],
      ipAddresses: ['127.0.0.1'],
      validityDays: 1,
    });
    const x = new X509Certificate(leaf.cert);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBe('DNS:cj-webhook.cj-system.svc, IP Address:127.0.0.1');
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
    expect(x.checkPrivateKey(createPrivateKey(leaf.key))).toBe(true);
    expect(issuedBy(leaf.cert, ca.cert)).toBe(true);
    expect(issuedBy(leaf.cert, (await generateCA('other', 1)).cert)).toBe(false);
    const days = (Date.parse(x.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(0.99);
    expect(days).toBeLessThanOrEqual(1);
  });

  it('signs with a CA key stored in SEC1 form (what openssl wrote in earlier releases)', async () => {
    const ca = await generateCA('legacy', 1);
    const sec1 = createPrivateKey(ca.key).export({ type: 'sec1', format: 'pem' }).toString();
    const leaf = await generateServingCert(
      { cert: ca.cert, key: sec1 },
      {
        dnsNames: ['x'],
        ipAddresses: [],
        validityDays: 1,
      },
    );
    expect(issuedBy(leaf.cert, ca.cert)).toBe(true);
  });

  it('refuses a serving cert without any name', async () => {
    const ca = await generateCA('c', 1);
    await expect(generateServingCert(ca, { dnsNames: [], ipAddresses: [], validityDays: 1 })).rejects.toThrow(
      /DNS name or IP/,
    );
  });
});

describe('ensureCerts', () => {
  it('creates a CA and a serving cert once, then leaves them alone', async () => {
    const store = new MemoryCertStore();
    const t0 = Date.now();
    const a = await ensureCerts(store, policy, () => new Date(t0));
    expect(a.changed).toBe(true);
    expect(issuedBy(a.certs.tlsCert, a.certs.caBundle)).toBe(true);
    expect(store.bundle).toBe(a.certs.caBundle);
    const b = await ensureCerts(store, policy, () => new Date(t0 + 10_000));
    expect(b.changed).toBe(false);
    expect(serialOf(b.serving.cert)).toBe(serialOf(a.serving.cert));
  });

  it('re-issues an expiring serving cert from the same CA (no caBundle change)', async () => {
    const store = new MemoryCertStore();
    const t0 = Date.now();
    const p = { ...policy, caRenewBeforeMs: HOUR }; // keep the CA out of its window here
    const a = await ensureCerts(store, p, () => new Date(t0));
    const b = await ensureCerts(store, p, () => new Date(t0 + 23.5 * HOUR));
    expect(b.changed).toBe(true);
    expect(serialOf(b.serving.cert)).not.toBe(serialOf(a.serving.cert));
    expect(b.certs.caBundle).toBe(a.certs.caBundle);
  });

  it('rotates the CA in two steps: bundle first, serving cert after propagation', async () => {
    const store = new MemoryCertStore();
    const t0 = Date.now();
    const a = await ensureCerts(store, policy, () => new Date(t0));
    // 20 h in, the 48 h CA is inside its 30 h renewal window. (Its successor gets 10 days:
    // certificates are dated by the real clock, and a 2-day successor would already look old here.)
    const t1 = t0 + 20 * HOUR;
    const later = { ...policy, caValidityDays: 10 };
    const b = await ensureCerts(store, later, () => new Date(t1));
    const bundle = splitPem(b.certs.caBundle);
    expect(bundle).toHaveLength(2);
    expect(bundle[1]).toBe(a.certs.caBundle); // the old CA stays trusted
    expect(store.bundle).toBe(b.certs.caBundle);
    expect(serialOf(b.serving.cert)).toBe(serialOf(a.serving.cert)); // still the old serving cert
    const c = await ensureCerts(store, later, () => new Date(t1 + 500));
    expect(c.changed).toBe(false); // not propagated yet
    const d = await ensureCerts(store, later, () => new Date(t1 + 1_500));
    expect(d.changed).toBe(true);
    expect(issuedBy(d.serving.cert, bundle[0]!)).toBe(true);
    expect(splitPem(d.certs.caBundle)).toHaveLength(2);
  });

  it('re-reads and adopts the winner when another replica wrote first', async () => {
    const store = new MemoryCertStore();
    const realSave = store.save.bind(store);
    let raced = false;
    store.save = async (certs, version) => {
      if (!raced) {
        raced = true;
        await realSave({ ...certs, tlsCert: certs.tlsCert }, version); // the "other replica"
        return false;
      }
      return realSave(certs, version);
    };
    const r = await ensureCerts(store, policy);
    expect(r.changed).toBe(false);
    expect(r.certs).toBe(store.certs);
  });
});

describe('startWebhookServer', () => {
  // A cluster with no pools or ConfigMaps: enough for TLS and transport behaviour.
  const noObjects = (namespace: string) => ({
    namespace,
    getPool: async () => undefined,
    getConfigMap: async () => undefined,
  });
  let server: WebhookServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  const post = (port: number, ca: string, body: unknown) =>
    new Promise<{ status: number; body: any; serial: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, path: '/validate-cjbatch', method: 'POST', ca, agent: false },
        (res) => {
          let data = '';
          res.on('data', (c) => (data += c));
          res.on('end', () =>
            resolve({
              status: res.statusCode!,
              body: data.startsWith('{') ? JSON.parse(data) : data,
              serial: (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });

  it('answers AdmissionReviews over TLS verified by the stored CA, and 400s garbage', async () => {
    const store = new MemoryCertStore();
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'selfManaged', store, policy },
      contextFor: noObjects,
    });
    const ca = store.certs!.caBundle;
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u1',
        kind: { group: 'cj.huleedu.io', version: 'v1alpha1', kind: 'LLMProviderPool' },
        operation: 'CREATE',
        namespace: 'n',
        object: { spec: { provider: 'fake', model: 'm', apiKeySecretRef: { name: 's', key: 'k' } } },
      },
    };
    const ok = await post(server.port, ca, review);
    expect(ok.status).toBe(200);
    expect(ok.body.response).toEqual({ uid: 'u1', allowed: true });
    const bad = await post(server.port, ca, { nope: true });
    expect(bad.status).toBe(400);
  });

  it('closes within seconds even while a client holds a request half-sent', async () => {
    const store = new MemoryCertStore();
    const s = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'selfManaged', store, policy },
      contextFor: noObjects,
    });
    const { connect } = await import('node:tls');
    const socket = connect({
      host: '127.0.0.1',
      port: s.port,
      ca: store.certs!.caBundle,
      servername: 'localhost',
    });
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()));
    // Headers without their end: the server counts the connection as active, not idle.
    socket.write('POST /validate-cjbatch HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n');
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(5_000);
    socket.destroy();
  });

  it('hot-swaps a rotated certificate with no failed request', async () => {
    const store = new MemoryCertStore();
    let offset = 0;
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'selfManaged', store, policy },
      contextFor: noObjects,
      checkIntervalMs: 50,
      now: () => new Date(Date.now() + offset),
    });
    const ca = store.certs!.caBundle;
    const before = server.servingSerial();
    const body = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u', kind: { group: 'x', version: 'v', kind: 'K' }, operation: 'CREATE', object: {} },
    };
    const serials = new Set<string>();
    let failures = 0;
    let stop = false;
    const s = server;
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const r = await post(s.port, ca, body);
          if (r.status === 200) serials.add(r.serial.toUpperCase());
          else failures++;
        } catch {
          failures++;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 200));
    offset = 23.5 * HOUR;
    const deadline = Date.now() + 10_000;
    while (server.servingSerial() === before && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    offset = 0;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    expect(failures).toBe(0);
    expect(server.servingSerial()).not.toBe(before);
    expect(serials.has(before.toUpperCase())).toBe(true);
    expect(serials.has(server.servingSerial().toUpperCase())).toBe(true);
  });

  it('serves certificate files (cert-manager mode) and reloads them when they change', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { generateCA, generateServingCert } = await import('../../../operator/src/webhook/index.js');
    const dir = await mkdtemp(path.join(tmpdir(), 'cj-wh-'));
    const ca = await generateCA('test-ca', 1);
    const first = await generateServingCert(ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityDays: 1,
    });
    await writeFile(path.join(dir, 'tls.crt'), first.cert);
    await writeFile(path.join(dir, 'tls.key'), first.key);
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: { mode: 'files', certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key') },
      contextFor: noObjects,
    });
    expect(server.servingSerial()).toBe(serialOf(first.cert));
    const second = await generateServingCert(ca, {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      validityDays: 1,
    });
    await writeFile(path.join(dir, 'tls.key'), second.key);
    await writeFile(path.join(dir, 'tls.crt'), second.cert);
    expect(await server.refresh()).toBe(true);
    expect(server.servingSerial()).toBe(serialOf(second.cert));
    const health = await new Promise<number>((resolve, reject) => {
      https
        .get(
          { host: '127.0.0.1', port: server!.port, path: '/healthz', ca: ca.cert, agent: false },
          (res) => {
            res.resume();
            resolve(res.statusCode!);
          },
        )
        .on('error', reject);
    });
    expect(health).toBe(200);
  });
});

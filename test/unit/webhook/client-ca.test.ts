// WEBHOOK_CLIENT_CA_FILE: with a client CA the webhook serves only clients that present a
// certificate from it (what the apiserver does when its AdmissionConfiguration names a client
// certificate for this webhook). Real TLS on 127.0.0.1; the client certificates are made here.
import 'reflect-metadata';
import { createPrivateKey, webcrypto } from 'node:crypto';
import https from 'node:https';
import * as x509 from '@peculiar/x509';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICY,
  generateCA,
  type KeyPair,
  MemoryCertStore,
  startWebhookServer,
  type WebhookServer,
} from '../../../operator/src/webhook/index.js';

// The library's types name the DOM's CryptoKey; Node's webcrypto is that API.
type CryptoKey = webcrypto.CryptoKey;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** A client certificate (clientAuth) for `cn`, signed by `ca`. */
async function clientCert(ca: KeyPair, cn: string): Promise<KeyPair> {
  const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const caKey = await (webcrypto.subtle.importKey(
    'pkcs8',
    createPrivateKey(ca.key).export({ type: 'pkcs8', format: 'der' }),
    EC,
    false,
    ['sign'],
  ) as Promise<CryptoKey>);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '01a2b3',
    subject: `CN=${cn}`,
    issuer: new x509.X509Certificate(ca.cert).subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    signingAlgorithm: EC,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({
    type: 'pkcs8',
    format: 'pem',
  });
  return { cert: cert.toString('pem'), key: key.toString() };
}

describe('webhook client CA (WEBHOOK_CLIENT_CA_FILE)', () => {
  let server: WebhookServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  /** Starts the webhook (self-managed serving certificate, no cluster objects); returns its CA. */
  async function start(clientCA?: string): Promise<string> {
    const store = new MemoryCertStore();
    server = await startWebhookServer({
      host: '127.0.0.1',
      port: 0,
      tls: {
        mode: 'selfManaged',
        store,
        policy: { ...DEFAULT_POLICY, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] },
      },
      contextFor: (namespace) => ({
        namespace,
        getPool: async () => undefined,
        getConfigMap: async () => undefined,
      }),
      ...(clientCA ? { clientCA } : {}),
    });
    return store.certs!.caBundle;
  }

  const get = (port: number, serverCa: string, client?: KeyPair) =>
    new Promise<number>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port,
          path: '/healthz',
          ca: serverCa,
          agent: false,
          ...(client ? { cert: client.cert, key: client.key } : {}),
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        },
      );
      req.on('error', reject);
      req.end();
    });

  it('serves a client with a certificate from the CA and refuses one without, or from another CA', async () => {
    const apiserverCa = await generateCA('apiserver-client-ca', 1);
    const strangerCa = await generateCA('stranger-ca', 1);
    const serverCa = await start(apiserverCa.cert);
    expect(await get(server!.port, serverCa, await clientCert(apiserverCa, 'kube-apiserver'))).toBe(200);
    await expect(get(server!.port, serverCa)).rejects.toThrow(/certificate|socket hang up|ECONNRESET/i);
    await expect(get(server!.port, serverCa, await clientCert(strangerCa, 'kube-apiserver'))).rejects.toThrow(
      /certificate|unknown ca|socket hang up|ECONNRESET/i,
    );
  });

  it('without a client CA, a client without a certificate is served (the default install)', async () => {
    const serverCa = await start();
    expect(await get(server!.port, serverCa)).toBe(200);
  });
});

// The admission webhook's HTTPS server. Paths: /validate-cjbatch, /validate-llmproviderpool
// (either accepts both kinds; the kind in the request decides), /healthz, /readyz.
//
// TLS comes from one of:
// - `selfManaged`: certificates in a Secret that this process creates, rotates and injects as
//   caBundle (see rotation.ts); checked every `checkIntervalMs`;
// - `files`: a certificate and key mounted from a Secret that cert-manager manages (its CA
//   injector sets caBundle); the files are re-read every `checkIntervalMs`.
// Either way a new certificate is hot-swapped with setSecureContext: connections in flight keep
// the old context, new handshakes get the new one, and no request is refused.
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { type KeyPair, serialOf } from './certs.js';
import { BadReview, type ContextFactory, review } from './review.js';
import { type CertStore, type Clock, DEFAULT_POLICY, ensureCerts, type RotationPolicy } from './rotation.js';

export type TlsSource =
  | {
      mode: 'selfManaged';
      store: CertStore;
      policy: Partial<RotationPolicy> & Pick<RotationPolicy, 'dnsNames' | 'ipAddresses'>;
    }
  | { mode: 'files'; certFile: string; keyFile: string };

export interface WebhookServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port: number;
  tls: TlsSource;
  contextFor: ContextFactory;
  checkIntervalMs?: number;
  /** For tests: the clock rotation decisions use. */
  now?: Clock;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Largest AdmissionReview body accepted (a CJBatch with inline essays can be large). */
  maxBodyBytes?: number;
}

export interface WebhookServer {
  port: number;
  /** Serial number of the certificate currently served. */
  servingSerial(): string;
  /** Runs one rotation check now (also runs on the timer); resolves when any swap is done. */
  refresh(): Promise<boolean>;
  close(): Promise<void>;
}

export async function startWebhookServer(opts: WebhookServerOptions): Promise<WebhookServer> {
  const log = opts.log ?? (() => {});
  const maxBody = opts.maxBodyBytes ?? 8 * 1024 * 1024;
  let current = await loadTls(opts);
  const server = https.createServer(
    { key: current.key, cert: current.cert, minVersion: 'TLSv1.2' },
    (req, res) => {
      handle(req, res).catch((e) => {
        log('webhook request failed', { error: String(e) });
        if (!res.headersSent) res.writeHead(500).end();
      });
    },
  );

  async function handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) {
    const url = new URL(req.url ?? '/', 'https://x');
    if (req.method === 'GET' && (url.pathname === '/healthz' || url.pathname === '/readyz')) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (req.method !== 'POST' || !url.pathname.startsWith('/validate')) {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > maxBody) {
        res.writeHead(413).end();
        return;
      }
      chunks.push(c as Buffer);
    }
    let body: { request?: { uid?: string; name?: string; namespace?: string; kind?: { kind?: string } } };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('body is not JSON');
      return;
    }
    try {
      const out = await review(body, opts.contextFor);
      log('admission reviewed', {
        kind: body.request?.kind?.kind,
        name: body.request?.name,
        namespace: body.request?.namespace,
        allowed: out.response?.allowed,
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
    } catch (e) {
      if (e instanceof BadReview) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end(e.message);
        return;
      }
      // Lookups failed (e.g. the apiserver was briefly unavailable): refuse with a reason to retry
      // rather than admit an object nobody checked.
      const uid = body?.request?.uid ?? '';
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid,
            allowed: false,
            status: {
              code: 500,
              reason: 'InternalError',
              message: `validation could not complete: ${e}; retry`,
            },
          },
        }),
      );
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });

  let refreshing: Promise<boolean> | undefined;
  const refresh = () => {
    // One check at a time: the timer and an explicit call never race each other.
    refreshing ??= (async () => {
      try {
        const next = await loadTls(opts);
        if (next.cert === current.cert && next.key === current.key) return false;
        server.setSecureContext({ key: next.key, cert: next.cert, minVersion: 'TLSv1.2' });
        log('webhook serving certificate swapped', { from: serialOf(current.cert), to: serialOf(next.cert) });
        current = next;
        return true;
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  };
  const timer = setInterval(() => {
    refresh().catch((e) => log('webhook certificate check failed', { error: String(e) }));
  }, opts.checkIntervalMs ?? 60_000);
  timer.unref();

  return {
    port: (server.address() as AddressInfo).port,
    servingSerial: () => serialOf(current.cert),
    refresh,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.close(() => resolve());
        server.closeIdleConnections();
        // The apiserver keeps connections open; give in-flight reviews a moment, then drop them.
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      }),
  };
}

async function loadTls(opts: WebhookServerOptions): Promise<KeyPair> {
  if (opts.tls.mode === 'files') {
    const [cert, key] = await Promise.all([
      readFile(opts.tls.certFile, 'utf8'),
      readFile(opts.tls.keyFile, 'utf8'),
    ]);
    return { cert, key };
  }
  const policy: RotationPolicy = { ...DEFAULT_POLICY, ...opts.tls.policy };
  return (await ensureCerts(opts.tls.store, policy, opts.now)).serving;
}

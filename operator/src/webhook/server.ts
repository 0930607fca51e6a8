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
  /**
   * Largest AdmissionReview body accepted. The apiserver sends at most about 3 MiB (its own
   * request limit), so anything larger is not from it: refused from Content-Length, unread.
   */
  maxBodyBytes?: number;
  /**
   * Reviews validated at once; the rest wait (up to `maxQueued`, then 429). Validation is CPU
   * work on the event loop that also renews the leader Lease: a burst of large reviews must
   * queue, not pile up (docs/security.md, "Hostile input").
   */
  maxConcurrent?: number;
  maxQueued?: number;
  /**
   * PEM CA bundle: when set, only clients with a certificate from it are served (the apiserver
   * presents one when its admission configuration names a client certificate for this webhook).
   */
  clientCA?: string;
}

/** Lets timers and I/O (the Lease renewal among them) run before the next stretch of CPU work. */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A counting semaphore with a bounded queue: `run` refuses (returns undefined) when it is full. */
export function limiter(maxConcurrent: number, maxQueued: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
    async run<T>(fn: () => Promise<T>): Promise<{ value: T } | undefined> {
      if (active >= maxConcurrent) {
        if (waiting.length >= maxQueued) return undefined;
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else active++;
      try {
        return { value: await fn() };
      } finally {
        const next = waiting.shift();
        if (next) next();
        else active--;
      }
    },
  };
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
  const maxBody = opts.maxBodyBytes ?? 4 * 1024 * 1024;
  // One at a time: validation is synchronous CPU work between its lookups, so a second review in
  // parallel only lengthens the stretches the Lease renewal must wait through.
  const gate = limiter(opts.maxConcurrent ?? 1, opts.maxQueued ?? 16);
  const clientAuth = opts.clientCA ? { ca: opts.clientCA, requestCert: true, rejectUnauthorized: true } : {};
  let current = await loadTls(opts);
  const server = https.createServer(
    { key: current.key, cert: current.cert, minVersion: 'TLSv1.2', ...clientAuth },
    (req, res) => {
      handle(req, res).catch((e) => {
        log('webhook request failed', { error: String(e) });
        if (!res.headersSent) res.writeHead(500).end();
      });
    },
  );
  // A client that sends slowly holds a socket, never the event loop; drop it after these.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.maxHeadersCount = 100;

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
    const tooLarge = () => {
      res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
      res.end(`AdmissionReview larger than ${maxBody} bytes`);
      req.destroy();
    };
    if (Number(req.headers['content-length'] ?? 0) > maxBody) return tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > maxBody) return tooLarge();
      chunks.push(c as Buffer);
    }
    const outcome = await gate.run(() => decide(Buffer.concat(chunks)));
    if (!outcome) {
      res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end('too many reviews');
      return;
    }
    const { status, type, text } = outcome.value;
    res.writeHead(status, { 'content-type': type }).end(text);
  }

  /** Parses and validates one review; yields to the event loop first (the Lease renews there). */
  async function decide(raw: Buffer): Promise<{ status: number; type: string; text: string }> {
    await breathe();
    let body: { request?: { uid?: string; name?: string; namespace?: string; kind?: { kind?: string } } };
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return { status: 400, type: 'text/plain', text: 'body is not JSON' };
    }
    await breathe();
    try {
      const out = await review(body, opts.contextFor);
      log('admission reviewed', {
        kind: body.request?.kind?.kind,
        name: body.request?.name,
        namespace: body.request?.namespace,
        allowed: out.response?.allowed,
      });
      return { status: 200, type: 'application/json', text: JSON.stringify(out) };
    } catch (e) {
      if (e instanceof BadReview) return { status: 400, type: 'text/plain', text: e.message };
      // Lookups failed (e.g. the apiserver was briefly unavailable): refuse with a reason to retry
      // rather than admit an object nobody checked.
      const uid = body?.request?.uid ?? '';
      return {
        status: 200,
        type: 'application/json',
        text: JSON.stringify({
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
      };
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
        server.setSecureContext({
          key: next.key,
          cert: next.cert,
          minVersion: 'TLSv1.2',
          ...(opts.clientCA ? { ca: opts.clientCA } : {}),
        });
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

// /healthz (liveness), /readyz (readiness) and /metrics (Prometheus text) over plain HTTP.
// Probe failures answer 500 with a short reason; a throwing probe counts as failing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export type Probe = () => boolean | Promise<boolean>;

export interface HealthServerOptions {
  host?: string;
  port: number;
  registry: Registry;
  readyz?: Probe;
  healthz?: Probe;
}

export interface HealthServer {
  server: http.Server;
  port: number;
  close(): Promise<void>;
}

async function check(probe: Probe | undefined): Promise<boolean> {
  if (!probe) return true;
  try {
    return await probe();
  } catch {
    return false;
  }
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const send = (code: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed\n');
    if (url === '/healthz' || url === '/livez') {
      void check(opts.healthz).then((ok) => send(ok ? 200 : 500, ok ? 'ok\n' : 'unhealthy\n'));
      return;
    }
    if (url === '/readyz') {
      void check(opts.readyz).then((ok) => send(ok ? 200 : 500, ok ? 'ok\n' : 'not ready\n'));
      return;
    }
    if (url === '/metrics') {
      opts.registry.metrics().then(
        (text) => send(200, text, opts.registry.contentType),
        (err: unknown) => send(500, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
    send(404, 'not found\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

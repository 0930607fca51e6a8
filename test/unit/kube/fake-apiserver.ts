// A tiny in-process HTTP "apiserver" for ONE collection (ConfigMaps in namespace `ns`), used
// only to inject watch faults a real apiserver cannot produce on demand: 410 Gone mid-stream,
// dropped streams, silence, bookmarks. Everything else is proven against the real apiserver.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface WatchConn {
  query: URLSearchParams;
  res: http.ServerResponse;
  send(type: string, object: unknown): void;
  end(): void;
  drop(): void;
}

export interface Obj {
  metadata: { name: string; namespace: string; resourceVersion: string; managedFields?: unknown[] };
  data?: Record<string, string>;
}

export class FakeApiserver {
  readonly items = new Map<string, Obj>();
  rv = 100;
  readonly lists: URLSearchParams[] = [];
  readonly watches: WatchConn[] = [];
  /** When set, the next watch request is answered with this HTTP status. */
  nextWatchStatus: number | undefined;
  /** When set, every list request is answered with this HTTP status. */
  listStatus: number | undefined;
  private server!: http.Server;
  url = '';
  private waiters: Array<() => void> = [];

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const w of this.watches) w.drop();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  put(name: string, data: Record<string, string> = {}): Obj {
    const obj: Obj = {
      metadata: {
        name,
        namespace: 'ns',
        resourceVersion: String(++this.rv),
        managedFields: [{ manager: 'x' }],
      },
      data,
    };
    this.items.set(name, obj);
    return obj;
  }

  /** Resolves when the n-th watch request (1-based) has arrived. */
  async waitWatch(n: number, timeoutMs = 5000): Promise<WatchConn> {
    const end = Date.now() + timeoutMs;
    while (this.watches.length < n) {
      if (Date.now() > end) throw new Error(`watch #${n} did not arrive (have ${this.watches.length})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return this.watches[n - 1]!;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/api/v1/namespaces/ns/configmaps') {
      res.writeHead(404).end('{"kind":"Status","code":404,"reason":"NotFound","message":"nope"}');
      return;
    }
    if (url.searchParams.get('watch')) {
      if (this.nextWatchStatus) {
        const code = this.nextWatchStatus;
        this.nextWatchStatus = undefined;
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({
            kind: 'Status',
            code,
            reason: code === 410 ? 'Expired' : 'Failure',
            message: 'x',
          }),
        );
        this.watches.push(this.conn(url.searchParams, res));
        this.wake();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      this.watches.push(this.conn(url.searchParams, res));
      this.wake();
      return;
    }
    this.lists.push(url.searchParams);
    if (this.listStatus) {
      res.writeHead(this.listStatus, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ kind: 'Status', code: this.listStatus, reason: 'Forbidden', message: 'denied' }),
      );
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        kind: 'ConfigMapList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.items.values()],
      }),
    );
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  private conn(query: URLSearchParams, res: http.ServerResponse): WatchConn {
    return {
      query,
      res,
      send: (type, object) => res.write(`${JSON.stringify({ type, object })}\n`),
      end: () => res.end(),
      drop: () => res.destroy(),
    };
  }
}

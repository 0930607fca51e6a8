// A minimal Kubernetes REST client for the dev/test harness (the process kubelet and setup code),
// with exact control over verbs, patch types and watch streams. The operator has its own
// (operator/src/kube/rest.ts), which takes only client-node's KubeConfig loading.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import YAML from 'yaml';

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status}: ${body.slice(0, 500)}`);
  }
}

interface Kubeconfig {
  server: string;
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
}

export function readKubeconfig(file: string): Kubeconfig {
  const kc = YAML.parse(readFileSync(file, 'utf8'));
  const cluster = kc.clusters[0].cluster;
  const user = kc.users[0].user;
  return {
    server: cluster.server,
    ca: readFileSync(cluster['certificate-authority']),
    cert: user['client-certificate'] ? readFileSync(user['client-certificate']) : undefined,
    key: user['client-key'] ? readFileSync(user['client-key']) : undefined,
    token: user.token,
  };
}

export class KubeApi {
  private readonly agent: https.Agent;
  constructor(private readonly kc: Kubeconfig) {
    this.agent = new https.Agent({ ca: kc.ca, cert: kc.cert, key: kc.key, keepAlive: true, maxSockets: 32 });
  }

  static fromFile(file: string): KubeApi {
    return new KubeApi(readKubeconfig(file));
  }

  private open(method: string, path: string, contentType?: string, timeoutMs = 30_000) {
    const url = new URL(path, this.kc.server);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (contentType) headers['Content-Type'] = contentType;
    if (this.kc.token) headers.Authorization = `Bearer ${this.kc.token}`;
    return https.request(url, { method, agent: this.agent, headers, timeout: timeoutMs });
  }

  request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const req = this.open(method, path, payload === undefined ? undefined : contentType);
      // Always frame the body: Node does not use chunked encoding for DELETE, so an unframed
      // body would be read by the server as the start of the next request on the connection.
      if (payload !== undefined) req.setHeader('Content-Length', Buffer.byteLength(payload));
      req.on('response', (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          data += c;
        });
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 300)
            reject(new KubeError(res.statusCode ?? 0, data, `${method} ${path}`));
          else if (!data) resolve(undefined as T);
          else resolve(res.headers['content-type']?.includes('json') ? JSON.parse(data) : (data as T));
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  get<T = any>(path: string) {
    return this.request<T>('GET', path);
  }
  mergePatch<T = any>(path: string, body: unknown) {
    return this.request<T>('PATCH', path, body, 'application/merge-patch+json');
  }
  strategicPatch<T = any>(path: string, body: unknown) {
    return this.request<T>('PATCH', path, body, 'application/strategic-merge-patch+json');
  }

  /**
   * List then watch `path` forever (until `signal` aborts): relists on 410 Gone and on any
   * stream end, with a short backoff. `onEvent` is called for every object (type ADDED for listed ones).
   */
  async listWatch(
    path: string,
    onEvent: (type: string, obj: any) => void,
    signal: AbortSignal,
    onSynced?: () => void,
  ): Promise<void> {
    const sep = path.includes('?') ? '&' : '?';
    while (!signal.aborted) {
      try {
        const list = await this.get(path);
        for (const item of list.items ?? []) onEvent('ADDED', item);
        onSynced?.();
        let rv: string = list.metadata.resourceVersion;
        for (;;) {
          if (signal.aborted) return;
          const res = await this.watchOnce(
            `${path}${sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=240&resourceVersion=${rv}`,
            (type, obj) => {
              if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
              if (type !== 'BOOKMARK') onEvent(type, obj);
            },
            signal,
          );
          if (res === 'gone') break;
        }
      } catch (err) {
        if (signal.aborted) return;
        console.error(`[kubeapi] watch ${path} failed, retrying: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private watchOnce(
    path: string,
    onEvent: (type: string, obj: any) => void,
    signal: AbortSignal,
  ): Promise<'ended' | 'gone'> {
    return new Promise((resolve, reject) => {
      const req = this.open('GET', path, undefined, 300_000);
      const abort = () => req.destroy();
      signal.addEventListener('abort', abort, { once: true });
      req.on('response', (res) => {
        if (res.statusCode === 410) {
          res.resume();
          return resolve('gone');
        }
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`watch ${path}: HTTP ${res.statusCode}`));
        }
        let buf = '';
        let gone = false;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let nl = buf.indexOf('\n');
          while (nl >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            nl = buf.indexOf('\n');
            if (!line) continue;
            const ev = JSON.parse(line);
            if (ev.type === 'ERROR') {
              if (ev.object?.code === 410) gone = true;
              continue;
            }
            onEvent(ev.type, ev.object);
          }
        });
        res.on('end', () => {
          signal.removeEventListener('abort', abort);
          resolve(gone ? 'gone' : 'ended');
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('watch timeout')));
      req.on('error', (e) => (signal.aborted ? resolve('ended') : reject(e)));
      req.end();
    });
  }
}

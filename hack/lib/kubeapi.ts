// The dev/test harness's view of the apiserver (the process kubelet and setup code): the
// operator's own REST client (operator/src/kube/rest.ts) from the process cluster's kubeconfig,
// plus the list-then-watch loop the kubelet runs. One HTTP client for the whole repository.
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { pause } from '../../contract/src/sleep.js';
import { ApiError, CONTENT_TYPE, KubeClient } from '../../operator/src/kube/rest.js';

/** An apiserver answer ≥ 300 (`status`), or status 0 for a network failure. */
export { ApiError as KubeError };

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
  readonly client: KubeClient;
  constructor(kc: Kubeconfig) {
    this.client = new KubeClient({
      server: kc.server,
      tls: { ca: kc.ca, ...(kc.cert ? { cert: kc.cert } : {}), ...(kc.key ? { key: kc.key } : {}) },
      ...(kc.token ? { authHeaders: async () => ({ Authorization: `Bearer ${kc.token}` }) } : {}),
      userAgent: 'cj-harness',
    });
  }

  static fromFile(file: string): KubeApi {
    return new KubeApi(readKubeconfig(file));
  }

  request<T = any>(method: string, path: string, body?: unknown, contentType: string = CONTENT_TYPE.json) {
    return this.client.request<T>(method, path, body, contentType);
  }
  get<T = any>(path: string) {
    return this.client.get<T>(path);
  }
  mergePatch<T = any>(path: string, body: unknown) {
    return this.client.mergePatch<T>(path, body);
  }
  strategicPatch<T = any>(path: string, body: unknown) {
    return this.client.request<T>('PATCH', path, body, CONTENT_TYPE.strategicMergePatch);
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
          let gone = false;
          await this.client.watch(
            `${path}${sep}watch=1&allowWatchBookmarks=true&timeoutSeconds=240&resourceVersion=${rv}`,
            (type, obj: any) => {
              if (type === 'ERROR') {
                if (obj?.code === 410) gone = true;
                return;
              }
              if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
              if (type !== 'BOOKMARK') onEvent(type, obj);
            },
            signal,
          );
          if (gone) break;
        }
      } catch (err) {
        if (signal.aborted) return;
        // A 410 on the watch request itself: relist at once.
        if (!(err instanceof ApiError && err.status === 410))
          console.error(`[kubeapi] watch ${path} failed, retrying: ${(err as Error).message}`);
        await pause(1000, signal);
      }
    }
  }
}

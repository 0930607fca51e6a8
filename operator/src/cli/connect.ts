// Which cluster, as identity and namespace kubectl would use: --kubeconfig, else $KUBECONFIG (a
// colon-separated list), else ~/.kube/config, else the in-cluster service account; --context
// overrides the current context; -n overrides the context's namespace. Every failure says which
// file and context it was about and how to fix it (client-node alone would fall back to
// http://localhost:8080 and report "HTTP protocol is not allowed when skipTLSVerify is not set").
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, KubeClient } from '../kube/rest.js';
import { UsageError } from './args.js';

export interface Conn {
  client: KubeClient;
  namespace: string;
  context: string;
  server: string;
  /** Where the kubeconfig came from, for messages. */
  source: string;
}

export interface ConnFlags {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(flags: ConnFlags, env = process.env): { kc: KubeConfig; source: string } {
  const kc = new KubeConfig();
  // Files merge the way kubectl merges them: the first to set a value (current-context) wins.
  let first = true;
  const load = (file: string, source: string) => {
    const one = new KubeConfig();
    try {
      // loadFromFile alone accepts any YAML and fails later, vaguely.
      const text = readFileSync(file, 'utf8');
      if (!/\bclusters\s*:/.test(text) && !/\bcontexts\s*:/.test(text))
        throw new Error('it has no clusters or contexts');
      one.loadFromFile(file);
    } catch (err) {
      throw new UsageError(
        `cannot read the kubeconfig ${file} (${source}): ${(err as Error).message}. Check it with: kubectl config view --kubeconfig ${file}`,
      );
    }
    if (first) kc.loadFromFile(file);
    else kc.mergeConfig(one, kc.getCurrentContext() !== '');
    first = false;
  };
  if (flags.kubeconfig) {
    if (!existsSync(flags.kubeconfig))
      throw new UsageError(`kubeconfig ${flags.kubeconfig} (from --kubeconfig) does not exist`);
    load(flags.kubeconfig, 'from --kubeconfig');
    return { kc, source: flags.kubeconfig };
  }
  if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(path.delimiter).filter(Boolean);
    const present = files.filter((f) => existsSync(f));
    if (present.length === 0)
      throw new UsageError(
        `KUBECONFIG=${env.KUBECONFIG} names no file that exists; fix the variable, unset it to use ~/.kube/config, or pass --kubeconfig <file>`,
      );
    for (const f of present) load(f, 'from $KUBECONFIG');
    return { kc, source: present.join(path.delimiter) };
  }
  const home = path.join(env.HOME ?? os.homedir(), '.kube', 'config');
  if (existsSync(home)) {
    load(home, 'the default');
    return { kc, source: home };
  }
  if (env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
    kc.loadFromCluster();
    return { kc, source: 'in-cluster service account' };
  }
  throw new UsageError(
    `no kubeconfig: ${home} does not exist and KUBECONFIG is not set. Pass --kubeconfig <file>, set KUBECONFIG, ` +
      'or get a kubeconfig from your cluster administrator (kubectl config view shows the one kubectl uses)',
  );
}

export async function connect(flags: ConnFlags): Promise<Conn> {
  const { kc, source } = loadKubeConfig(flags);
  const contexts = kc.getContexts().map((c) => c.name);
  if (flags.context) {
    if (!contexts.includes(flags.context))
      throw new UsageError(
        `context "${flags.context}" is not in the kubeconfig ${source}; its contexts: ${contexts.join(', ') || '(none)'}`,
      );
    kc.setCurrentContext(flags.context);
  }
  const context = kc.getCurrentContext();
  const ctx = kc.getContextObject(context);
  if (!ctx && source !== 'in-cluster service account')
    throw new UsageError(
      `the kubeconfig ${source} has no current context${context ? ` ("${context}" is not defined)` : ''}; pass --context <name> or run kubectl config use-context <name> (contexts: ${contexts.join(', ') || 'none'})`,
    );
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server)
    throw new UsageError(`context "${context}" in ${source} names no cluster with a server address`);
  const client = await KubeClient.fromKubeConfig(kc, { timeoutMs: 30_000, userAgent: 'kubectl-cj' });
  return {
    client,
    namespace: flags.namespace ?? ctx?.namespace ?? 'default',
    context,
    server: cluster.server,
    source,
  };
}

/** An API failure in words a teacher can act on, naming the cluster and context. */
export function apiFailure(err: unknown, conn: Pick<Conn, 'server' | 'context'>): string | undefined {
  if (!(err instanceof ApiError)) return undefined;
  const where = `the Kubernetes API at ${conn.server} (context "${conn.context}")`;
  if (err.status === 0)
    return `cannot reach ${where}: ${err.message.replace(/^\w+ \S+: /, '')}. Check the context (kubectl config get-contexts) or pass --context`;
  if (err.status === 401)
    return `${where} did not accept the credentials in the kubeconfig (401): log in again`;
  if (err.status === 403) return `${where} refused: ${err.message}`;
  return undefined;
}

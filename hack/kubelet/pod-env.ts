// Builds a container's environment the way the kubelet does: literal values, fieldRef (including
// the Job completion-index annotation), configMapKeyRef, secretKeyRef and envFrom, with
// $(VAR) expansion. Missing non-optional references are errors, as in a real kubelet
// (CreateContainerConfigError).
import type { KubeApi } from '../lib/kubeapi.js';

export class ContainerConfigError extends Error {}

type Lookup = (kind: 'configmaps' | 'secrets', name: string) => Promise<Record<string, string> | undefined>;

/** Fetches ConfigMap/Secret data once per pod start; Secret values are base64-decoded. */
export function makeLookup(api: KubeApi, namespace: string): Lookup {
  const cache = new Map<string, Record<string, string> | undefined>();
  return async (kind, name) => {
    const key = `${kind}/${name}`;
    if (!cache.has(key)) {
      try {
        const obj = await api.get(`/api/v1/namespaces/${namespace}/${kind}/${name}`);
        const data: Record<string, string> = { ...(obj.data ?? {}) };
        if (kind === 'secrets')
          for (const k of Object.keys(data)) data[k] = Buffer.from(data[k]!, 'base64').toString();
        if (kind === 'configmaps')
          for (const [k, v] of Object.entries(obj.binaryData ?? {}))
            data[k] = Buffer.from(v as string, 'base64').toString();
        cache.set(key, data);
      } catch (err) {
        if ((err as { status?: number }).status === 404) cache.set(key, undefined);
        else throw err;
      }
    }
    return cache.get(key);
  };
}

export function fieldValue(pod: any, fieldPath: string): string {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return pod.metadata?.[m[1]!]?.[m[2]!] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata.name;
    case 'metadata.namespace':
      return pod.metadata.namespace;
    case 'metadata.uid':
      return pod.metadata.uid;
    case 'spec.nodeName':
      return pod.spec.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.podIPs':
      return pod.status?.podIP ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return '127.0.0.1';
    default:
      throw new ContainerConfigError(`fieldRef ${fieldPath} is not supported by the process kubelet`);
  }
}

/** Kubernetes' $(VAR) expansion: $(VAR) replaced when defined, $$(VAR) escapes to $(VAR). */
export function expand(s: string, env: Record<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (all, name?: string) => {
    if (all === '$$') return '$';
    return name !== undefined && name in env ? env[name]! : all;
  });
}

export async function containerEnv(
  pod: any,
  container: any,
  lookup: Lookup,
): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const src of container.envFrom ?? []) {
    const ref = src.configMapRef ?? src.secretRef;
    const kind = src.configMapRef ? 'configmaps' : 'secrets';
    const data = await lookup(kind, ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new ContainerConfigError(
        `${kind === 'configmaps' ? 'configmap' : 'secret'} "${ref.name}" not found`,
      );
    }
    for (const [k, v] of Object.entries(data)) env[(src.prefix ?? '') + k] = v;
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) {
      env[e.name] = expand(e.value, env);
      continue;
    }
    const from = e.valueFrom ?? {};
    if (from.fieldRef) env[e.name] = fieldValue(pod, from.fieldRef.fieldPath);
    else if (from.configMapKeyRef || from.secretKeyRef) {
      const ref = from.configMapKeyRef ?? from.secretKeyRef;
      const kind = from.configMapKeyRef ? 'configmaps' : 'secrets';
      const data = await lookup(kind, ref.name);
      const value = data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(
          data
            ? `couldn't find key ${ref.key} in ${kind.slice(0, -1)} ${ref.name}`
            : `${kind.slice(0, -1)} "${ref.name}" not found`,
        );
      }
      env[e.name] = value;
    } else if (from.resourceFieldRef) {
      env[e.name] = '0'; // no resource accounting here; documented in docs/local-cluster.md
    } else env[e.name] = '';
  }
  return env;
}

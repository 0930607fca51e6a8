// Materialises a pod's volumes as directories under the pod's own folder. Without mount
// namespaces a container cannot see them at their `mountPath`, so the runner rewrites any
// argument or env value that starts with a mountPath to the materialised directory
// (see `pathRewriter`). The service-account token volume becomes a real token from the
// TokenRequest API, bound to the pod, so the pod talks to the apiserver with its own identity.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { KubeApi } from '../lib/kubeapi.js';
import { ContainerConfigError, fieldValue, makeLookup } from './pod-env.js';

export interface Mounts {
  /** mountPath → host directory (or file, with subPath) */
  byMountPath: Map<string, string>;
  /** set when the pod mounts a service-account token: the token itself */
  serviceAccountToken?: string;
}

function writeItems(
  dir: string,
  data: Record<string, string>,
  items?: { key: string; path: string }[],
): void {
  mkdirSync(dir, { recursive: true });
  const chosen = items ?? Object.keys(data).map((k) => ({ key: k, path: k }));
  for (const it of chosen) {
    if (!(it.key in data)) throw new ContainerConfigError(`volume item key ${it.key} not found`);
    const file = path.join(dir, it.path);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data[it.key]!, { mode: 0o600 });
  }
}

async function token(api: KubeApi, pod: any, expirationSeconds: number, audience?: string): Promise<string> {
  const sa = pod.spec.serviceAccountName || 'default';
  const res = await api.request(
    'POST',
    `/api/v1/namespaces/${pod.metadata.namespace}/serviceaccounts/${sa}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        audiences: audience ? [audience] : undefined,
        expirationSeconds,
        boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid },
      },
    },
  );
  return res.status.token;
}

export async function materialiseVolumes(api: KubeApi, pod: any, podDir: string): Promise<Mounts> {
  const lookup = makeLookup(api, pod.metadata.namespace);
  const volumeDirs = new Map<string, string>();
  let serviceAccountToken: string | undefined;
  for (const v of pod.spec.volumes ?? []) {
    const dir = path.join(podDir, 'volumes', v.name);
    volumeDirs.set(v.name, dir);
    if (v.emptyDir) mkdirSync(dir, { recursive: true });
    else if (v.configMap || v.secret) {
      const kind = v.configMap ? 'configmaps' : 'secrets';
      const name = v.configMap?.name ?? v.secret.secretName;
      const data = await lookup(kind, name);
      if (!data) {
        if ((v.configMap ?? v.secret).optional) mkdirSync(dir, { recursive: true });
        else throw new ContainerConfigError(`${kind.slice(0, -1)} "${name}" not found (volume ${v.name})`);
      } else writeItems(dir, data, (v.configMap ?? v.secret).items);
    } else if (v.projected) {
      mkdirSync(dir, { recursive: true });
      for (const src of v.projected.sources ?? []) {
        if (src.serviceAccountToken) {
          const t = await token(
            api,
            pod,
            src.serviceAccountToken.expirationSeconds ?? 3607,
            src.serviceAccountToken.audience,
          );
          writeFileSync(path.join(dir, src.serviceAccountToken.path), t, { mode: 0o600 });
          serviceAccountToken = t;
        } else if (src.configMap || src.secret) {
          const kind = src.configMap ? 'configmaps' : 'secrets';
          const ref = src.configMap ?? src.secret;
          const data = await lookup(kind, ref.name);
          if (data) writeItems(dir, data, ref.items);
          else if (!ref.optional)
            throw new ContainerConfigError(`${kind.slice(0, -1)} "${ref.name}" not found (volume ${v.name})`);
        } else if (src.downwardAPI) {
          for (const it of src.downwardAPI.items ?? []) {
            if (it.fieldRef) writeFileSync(path.join(dir, it.path), fieldValue(pod, it.fieldRef.fieldPath));
          }
        }
      }
    } else if (v.downwardAPI) {
      mkdirSync(dir, { recursive: true });
      for (const it of v.downwardAPI.items ?? []) {
        if (it.fieldRef) writeFileSync(path.join(dir, it.path), fieldValue(pod, it.fieldRef.fieldPath));
      }
    } else {
      // hostPath, PVCs, CSI...: not available without a real node; fail like a kubelet would.
      throw new ContainerConfigError(
        `volume ${v.name}: only emptyDir, configMap, secret, projected and downwardAPI are supported`,
      );
    }
  }
  const byMountPath = new Map<string, string>();
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    for (const m of c.volumeMounts ?? []) {
      const dir = volumeDirs.get(m.name);
      if (dir) byMountPath.set(m.mountPath, m.subPath ? path.join(dir, m.subPath) : dir);
    }
  }
  return { byMountPath, serviceAccountToken };
}

/** Rewrites absolute paths under a mountPath (or under `/app`, the image's root) to host paths. */
export function pathRewriter(map: Map<string, string>): (s: string) => string {
  const entries = [...map.entries()].sort((a, b) => b[0].length - a[0].length);
  if (entries.length === 0) return (s) => s;
  const esc = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // A mount path only matches as a whole path prefix: not inside a longer path on either side.
  const re = new RegExp(`(?<![\\w.\\-/])(${entries.map(([from]) => esc(from)).join('|')})(?![\\w.\\-])`, 'g');
  return (s) => s.replace(re, (from) => map.get(from)!);
}

// Where `npm run tools` put each pinned tool. The versions live in hack/tools/versions.sh only.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function versions(): Record<string, string> {
  const text = readFileSync(path.join(repoRoot, 'hack/tools/versions.sh'), 'utf8');
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^([A-Z_]+)=([0-9][^\s#]*)/gm)) out[m[1]!] = m[2]!;
  return out;
}

export function toolPaths() {
  const v = versions();
  const cache = process.env.CJ_CACHE ?? path.join(os.homedir(), '.cache', 'cj-operator');
  const pgBin = ['17', '16', '15'].map((m) => `/usr/lib/postgresql/${m}/bin`).find((d) => existsSync(d));
  return {
    versions: v,
    cache,
    kubeApiserver: path.join(cache, 'kube', v.KUBE_VERSION!, 'kube-apiserver'),
    kubeControllerManager: path.join(cache, 'kube', v.KUBE_VERSION!, 'kube-controller-manager'),
    etcd: path.join(cache, 'etcd', v.ETCD_VERSION!, 'etcd'),
    helm: path.join(cache, 'helm', v.HELM_VERSION!, 'helm'),
    kafkaLibs: path.join(cache, 'kafka', v.KAFKA_VERSION!, 'libs'),
    pgBin: pgBin ?? '/usr/lib/postgresql/15/bin',
  };
}

/** Fails loudly, naming the fix, when a tool is missing (never skip silently). */
export function requireTool(p: string, what: string): string {
  if (!existsSync(p)) throw new Error(`${what} not found at ${p}. Run \`npm run tools\` first.`);
  return p;
}

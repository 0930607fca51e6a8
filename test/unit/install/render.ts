// Renders the chart (`helm template`) and the kustomize base (`kubectl kustomize`) into objects,
// for the install unit tests. Both tools are required: a missing one fails with the fix.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot, requireTool, toolPaths } from '../../../hack/lib/tools.js';

export type Obj = Record<string, any>;
export const CHART = path.join(repoRoot, 'charts/cj-operator');

function docs(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => !!o && typeof o === 'object' && !!o.kind);
}

export function helmTemplate(release: string, namespace: string, sets: string[] = []): Obj[] {
  const helm = requireTool(toolPaths().helm, 'helm');
  // The chart's kubeVersion rules out helm template's default (v1.20): render for the tested version.
  const args = [
    'template',
    release,
    CHART,
    '-n',
    namespace,
    '--kube-version',
    toolPaths().versions.KUBE_VERSION!,
  ];
  for (const s of sets) args.push('--set', s);
  return docs(
    execFileSync(helm, args, {
      encoding: 'utf8',
      maxBuffer: 32 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** Like helmTemplate, but returns helm's error text (for the chart's `fail` checks). */
export function helmTemplateError(release: string, namespace: string, sets: string[]): string {
  try {
    helmTemplate(release, namespace, sets);
    return '';
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e);
  }
}

export function kustomize(dir: string): Obj[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', dir], {
      encoding: 'utf8',
      maxBuffer: 32 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT')
      throw new Error('kubectl not found on PATH: it is needed for `kubectl kustomize`');
    throw new Error(`kubectl kustomize ${dir} failed: ${err.stderr ?? e}`);
  }
  return docs(out);
}

export const find = (objs: Obj[], kind: string, name?: string): Obj | undefined =>
  objs.find((o) => o.kind === kind && (name === undefined || o.metadata?.name === name));

export function get(objs: Obj[], kind: string, name?: string): Obj {
  const o = find(objs, kind, name);
  if (!o) throw new Error(`no ${kind}${name ? ` ${name}` : ''} rendered`);
  return o;
}

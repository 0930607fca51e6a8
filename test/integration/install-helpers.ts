// Shared by the install tests (helm.test.ts, kustomize.test.ts, health.test.ts) and the drills that
// render the chart: the helm binary and the chart rendered offline,
// the permission table of docs/install.md as `kubectl auth can-i --list` rows, the sample batch
// run to Succeeded on the fake judge, and the checks that an install leaves nothing behind.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot, requireTool, toolPaths } from '../../hack/lib/tools.js';
import { kubectl, kubectlOk, newNamespace, type Run, stack, waitFor } from './helpers.js';
import { poolManifests } from './operator-harness.js';

export const CHART = path.join(repoRoot, 'charts/cj-operator');
export const SAMPLE = path.join(repoRoot, 'config/samples/cjbatch-small.yaml');

function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      { env: { ...process.env, KUBECONFIG: stack().kubeconfig, ...env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

export function helm(args: string[]): Promise<Run> {
  return run(requireTool(toolPaths().helm, 'helm'), args);
}

export async function helmOk(args: string[]): Promise<string> {
  const r = await helm(args);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/**
 * The chart rendered offline (`helm template`) for namespace `ns`, as objects: CRDs left out, a
 * placeholder database URL, `set` as extra `--set` values. The chart sets kubeVersion, and
 * without a cluster helm assumes v1.20 unless told the version.
 */
export async function renderChart(release: string, ns: string, set: string[]): Promise<any[]> {
  const out = await helmOk([
    'template',
    release,
    CHART,
    '-n',
    ns,
    '--kube-version',
    toolPaths().versions.KUBE_VERSION!,
    '--set',
    'crds.install=false',
    '--set-string',
    'database.url=postgres://db.invalid/cj',
    ...set.flatMap((v) => ['--set', v]),
  ]);
  return parseAllDocuments(out)
    .map((d) => d.toJSON())
    .filter(Boolean);
}

/** A fresh namespace that enforces the restricted Pod Security profile (operator and workers must pass it). */
export async function restrictedNamespace(prefix: string): Promise<string> {
  const ns = await newNamespace(prefix);
  await kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted']);
  return ns;
}

/** `kubectl auth can-i --list` rows as `resource [resourceNames]` → `[verbs]`. */
export function canIRows(out: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of out.split('\n').slice(1)) {
    const m = /^(\S+)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s*$/.exec(line);
    if (m) rows.set(`${m[1]} ${m[3]}`, m[4]!);
  }
  return rows;
}

/** Rows every authenticated account has. */
const DEFAULT_ROWS = new Set([
  'selfsubjectreviews.authentication.k8s.io []',
  'selfsubjectaccessreviews.authorization.k8s.io []',
  'selfsubjectrulesreviews.authorization.k8s.io []',
]);

export const INSTALL_DOC = path.join(repoRoot, 'docs/install.md');

/** One row of the permission table: `resource[/subresource]` (as written), optional object name, verbs. */
export interface DocGrant {
  resource: string;
  subresource?: string;
  name?: string;
  verbs: string[];
  line: number;
}

/**
 * The table under "## Permissions" of docs/install.md (`| resource | verbs | why |`). A resource
 * cell lists `` `resource[/subresource]` `` items separated by ", ", each optionally followed by
 * `` `object-name` `` and a parenthesised remark; verbs are separated by spaces. Anything else fails
 * naming the doc and line: this table is what the install tests hold the live RBAC to.
 */
export function permissionTable(text: string, doc = 'docs/install.md'): DocGrant[] {
  const lines = text.split('\n');
  const fail = (i: number | undefined, why: string): never => {
    throw new Error(
      `${doc}${i === undefined ? '' : `:${i + 1}`}: cannot read the operator's permission table (${why}); ` +
        'the install tests (helm.test.ts, kustomize.test.ts) compare the live RBAC against it',
    );
  };
  const heading = lines.findIndex((l) => /^##\s+Permissions\s*$/.test(l));
  if (heading < 0) fail(undefined, 'no "## Permissions" heading');
  let i = heading + 1;
  while (i < lines.length && !lines[i]!.startsWith('|')) {
    if (/^#{1,2}\s/.test(lines[i]!)) fail(i, 'no table before the next heading');
    i++;
  }
  const cells = (i: number) => {
    const l = lines[i]!.trim();
    if (!l.startsWith('|') || !l.endsWith('|')) fail(i, 'a table row must start and end with "|"');
    return l
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
  };
  if (i >= lines.length) fail(undefined, 'no table after "## Permissions"');
  if (cells(i).join('|') !== 'resource|verbs|why') fail(i, 'header is not "| resource | verbs | why |"');
  if (!/^\|(\s*:?-+:?\s*\|){3}$/.test(lines[i + 1]?.trim() ?? '')) fail(i + 1, 'no separator row');
  const out: DocGrant[] = [];
  for (i += 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) {
    const row = cells(i);
    if (row.length !== 3) fail(i, `${row.length} cells instead of 3 (a "|" inside a cell?)`);
    const verbs = row[1]!.split(/\s+/);
    if (!verbs.every((v) => /^[a-z]+$/.test(v))) fail(i, `verbs "${row[1]}" are not space-separated words`);
    for (const item of row[0]!.split(/,\s*/)) {
      const m = /^`([a-z0-9.-]+)(?:\/([a-z]+))?`(?:\s+`([^`\s]+)`)?(?:\s+\([^)]*\))?$/.exec(item);
      if (!m) fail(i, `resource "${item}" is not \`resource[/subresource]\` [\`name\`] [(remark)]`);
      out.push({ resource: m![1]!, subresource: m![2], name: m![3], verbs, line: i + 1 });
    }
  }
  if (out.length === 0) fail(i, 'the table has no rows');
  return out;
}

/**
 * The operator's grants as docs/install.md ("Permissions") lists them, as `kubectl auth can-i
 * --list` rows (`resource.group[/sub] [name]` → `[verbs]`): the doc is the one source, so a verb
 * added to the RBAC but not to the doc (or the other way round) fails the install tests. Resources
 * the table writes without their API group are qualified through the apiserver's discovery.
 * `names` maps the table's placeholder object names (`<release>-webhook-tls`) to the installed
 * ones; a row with a placeholder not given (the self-managed webhook rows, webhook off) is left out.
 */
export async function documentedGrants(names: Record<string, string> = {}): Promise<Record<string, string>> {
  const doc = path.relative(repoRoot, INSTALL_DOC);
  const rows = permissionTable(readFileSync(INSTALL_DOC, 'utf8'), doc);
  for (const placeholder of Object.keys(names))
    if (!rows.some((r) => r.name === placeholder))
      throw new Error(`${doc}: no row of the permission table names ${placeholder}`);
  const known = (await kubectlOk(['api-resources', '-o', 'name'])).split('\n').filter(Boolean);
  const qualify = (r: DocGrant) => {
    const found = known.includes(r.resource)
      ? [r.resource]
      : known.filter((k) => !r.resource.includes('.') && k.startsWith(`${r.resource}.`));
    if (found.length !== 1)
      throw new Error(
        `${doc}:${r.line}: resource "${r.resource}" is ${found.length ? `ambiguous (${found.join(', ')})` : 'not served by the apiserver'}`,
      );
    return found[0]!;
  };
  const grants = new Map<string, Set<string>>();
  for (const r of rows) {
    const name = r.name?.includes('<') ? names[r.name] : r.name;
    if (r.name && !name) continue;
    const key = `${qualify(r)}${r.subresource ? `/${r.subresource}` : ''} [${name ?? ''}]`;
    const verbs = grants.get(key) ?? new Set();
    for (const v of r.verbs) verbs.add(v);
    grants.set(key, verbs);
  }
  return Object.fromEntries([...grants].map(([k, v]) => [k, `[${[...v].join(' ')}]`]));
}

/**
 * `kubectl auth can-i --list` for the ServiceAccount shows exactly `grants` plus the defaults,
 * the worker ServiceAccount only the defaults, and the usual suspects are refused.
 */
export async function expectExactGrants(
  ns: string,
  operatorSA: string,
  grants: Record<string, string>,
  opts: { clusterWide?: boolean } = {},
): Promise<void> {
  const sa = `system:serviceaccount:${ns}:${operatorSA}`;
  const rows = canIRows(await kubectlOk(['auth', 'can-i', '--list', '-n', ns, `--as=${sa}`]));
  const sorted = (verbs?: string) => verbs?.replace(/[[\]]/g, '').split(' ').sort().join(' ');
  for (const [k, v] of Object.entries(grants)) expect(sorted(rows.get(k)), k).toBe(sorted(v));
  for (const k of rows.keys())
    if (!(k in grants)) expect(DEFAULT_ROWS.has(k), `unexpected grant ${k}`).toBe(true);

  const can = async (...args: string[]) =>
    (await kubectl(['auth', 'can-i', ...args, `--as=${sa}`])).stdout.trim();
  expect(await can('create', 'jobs.batch', '-n', ns)).toBe('yes');
  expect(await can('delete', 'pods', '-n', ns)).toBe('no');
  expect(await can('delete', 'cjbatches.cj.huleedu.io', '-n', ns)).toBe('no');
  expect(await can('update', 'cjbatches.cj.huleedu.io', '-n', ns)).toBe('no');
  expect(await can('list', 'secrets', '-n', ns)).toBe('no');
  // A ClusterRole (no watchNamespace) reads Secrets by name everywhere; a Role only in its namespace.
  expect(await can('get', 'secrets', '-n', 'kube-system')).toBe(opts.clusterWide ? 'yes' : 'no');
  expect(await can('create', 'leases.coordination.k8s.io', '-n', ns)).toBe('no');
  expect(await can('update', 'leases.coordination.k8s.io/other', '-n', ns)).toBe('no');
  expect(await can('create', 'validatingwebhookconfigurations.admissionregistration.k8s.io')).toBe('no');
  expect(await can('delete', 'validatingwebhookconfigurations.admissionregistration.k8s.io')).toBe('no');
  const workerRows = canIRows(
    await kubectlOk(['auth', 'can-i', '--list', '-n', ns, `--as=system:serviceaccount:${ns}:cj-worker`]),
  );
  for (const k of workerRows.keys()) expect(DEFAULT_ROWS.has(k), `worker grant ${k}`).toBe(true);
}

/** The operator Deployment is Ready and its pod passes the restricted profile. */
export async function expectReadyRestrictedDeployment(ns: string, name: string, replicas = 1) {
  await kubectlOk(['rollout', 'status', '-n', ns, `deployment/${name}`, '--timeout=120s']);
  const dep = JSON.parse(await kubectlOk(['get', 'deployment', name, '-n', ns, '-o', 'json']));
  expect(dep.status.readyReplicas).toBe(replicas);
  const pod = dep.spec.template.spec;
  expect(pod.securityContext).toMatchObject({
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  });
  expect(pod.containers[0].securityContext).toMatchObject({
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
  const worker = JSON.parse(await kubectlOk(['get', 'sa', 'cj-worker', '-n', ns, '-o', 'json']));
  expect(worker.automountServiceAccountToken).toBe(false);
  return dep;
}

/** The validating webhook answers for `ns` (a batch naming a missing pool is denied by it). */
export async function expectWebhookDenies(ns: string): Promise<void> {
  const sample = parse(readFileSync(SAMPLE, 'utf8'));
  sample.metadata = { name: 'probe' };
  sample.spec.providerPoolRef.name = 'no-such-pool';
  await waitFor('the webhook to deny a batch naming a missing pool', async () => {
    const r = await kubectl(['create', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(sample));
    return r.stderr.includes('admission webhook "vcjbatch.cj.huleedu.io" denied the request');
  });
}

/** Applies the fake-judge pool and config/samples/cjbatch-small.yaml and waits for Succeeded. */
export async function runSampleToSucceeded(ns: string, fakeUrl: string, timeoutMs = 170_000) {
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: poolManifests(ns, fakeUrl) }),
  );
  await kubectlOk(['apply', '-n', ns, '-f', SAMPLE]);
  const status = await waitFor(
    'sample-small Succeeded',
    async () => {
      const b = JSON.parse(await kubectlOk(['get', 'cjbatch', 'sample-small', '-n', ns, '-o', 'json']));
      const s = b.status ?? {};
      if (s.phase === 'Failed') throw new Error(`batch failed: ${JSON.stringify(s.conditions)}`);
      return s.phase === 'Succeeded' ? s : undefined;
    },
    timeoutMs,
  );
  // Worker pods ran as the token-less worker ServiceAccount.
  const jobs = JSON.parse(
    await kubectlOk([
      'get',
      'jobs',
      '-n',
      ns,
      '-l',
      'app.kubernetes.io/managed-by=cj-operator',
      '-o',
      'json',
    ]),
  );
  expect(jobs.items.length).toBeGreaterThan(0);
  for (const j of jobs.items) expect(j.spec.template.spec.serviceAccountName).toBe('cj-worker');
  return status;
}

/** Deletes the batches and pools while the operator runs (its finalizer cleans up). */
export async function deleteBatchesAndPools(ns: string): Promise<void> {
  await kubectlOk(['delete', 'cjbatch', '--all', '-n', ns, '--wait=true', '--timeout=60s']);
  await kubectlOk(['delete', 'llmproviderpool', '--all', '-n', ns, '--wait=true', '--timeout=60s']);
}

/** Object names (`kind/name`) of `kind` in `ns`, sorted. */
export async function names(ns: string, kind: string, ...extra: string[]): Promise<string[]> {
  return (await kubectlOk(['get', kind, '-n', ns, '-o', 'name', ...extra]))
    .trim()
    .split('\n')
    .filter(Boolean)
    .sort();
}

/** Waits until the children the operator made for batches (Jobs, pods, ConfigMaps, Secrets) are gone. */
export async function waitForOperatorChildrenGone(ns: string): Promise<void> {
  await waitFor(
    'operator-created objects to be gone',
    async () =>
      (await names(ns, 'jobs')).length === 0 &&
      (await names(ns, 'pods')).length === 0 &&
      (await names(ns, 'configmaps', '-l', 'app.kubernetes.io/managed-by=cj-operator')).length === 0 &&
      (await names(ns, 'secrets', '-l', 'app.kubernetes.io/managed-by=cj-operator')).length === 0,
    60_000,
  );
}

/** Cluster-scoped objects of `kind` whose name contains `part`. */
export async function clusterNames(kind: string, part: string): Promise<string[]> {
  return (await kubectlOk(['get', kind, '-o', 'name']))
    .trim()
    .split('\n')
    .filter((n) => n.includes(part));
}

import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { repoRoot } from '../../hack/lib/tools.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import { renderChart } from './install-helpers.js';
import { describeHits, logFiles, scan } from './log-scan.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

type Obj = Record<string, any>;
const TAG = randomBytes(6).toString('hex');
const KEY = `sk-ant-api03-cjsec${TAG}-DO-NOT-LOG`;
const BATCH = 'secret-essays';

let ns: string;
let release: string;
/** The operator's ServiceAccount as the chart names it. */
let operatorSa: string;
let fake: FakeAnthropic;
let operator: OperatorProcess;
/** Recognisable essay text: a marker per essay, inside ordinary prose. */
const essayMarkers: string[] = [];
const clusterScoped: string[] = [];

/** The chart rendered for `ns` (scoped to it, or cluster-wide), as objects. */
function renderScoped(scoped: boolean): Promise<Obj[]> {
  return renderChart(release, ns, [
    scoped ? `watchNamespaces={${ns}}` : 'rbac.clusterWide=true',
    // The teachers' roles are cluster-scoped and shared: not this file's business.
    'rbac.teacherRoles.create=false',
  ]);
}

const RBAC_KINDS = ['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'];

async function applyRbac(objs: Obj[]): Promise<void> {
  const rbac = objs.filter((o) => RBAC_KINDS.includes(o.kind));
  for (const o of rbac) if (o.kind.startsWith('Cluster')) clusterScoped.push(`${o.kind}/${o.metadata.name}`);
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: rbac }),
  );
}

const can = async (as: string, ...args: string[]) =>
  (await kubectl(['auth', 'can-i', ...args, `--as=${as}`])).stdout.trim();

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('security');
  release = `cj-sec-${ns.slice(-6)}`;
  // The chart's ServiceAccounts and namespace-scoped RBAC, as `helm install` would create them.
  const scoped = await renderScoped(true);
  operatorSa = scoped.find((o) => o.kind === 'ServiceAccount' && o.metadata.name !== 'cj-worker')!.metadata
    .name;
  await applyRbac(scoped);
  const dbUrl = await freshDatabase('security');
  // The fake provider accepts only the test key: a comparison that succeeds proves the key
  // reached the worker (and nowhere else, below).
  fake = await startFake({ apiKeys: [KEY] });
  operator = await startOperator({
    namespace: ns,
    databaseUrl: dbUrl,
    env: { WORKER_SERVICE_ACCOUNT: 'cj-worker', LOG_LEVEL: 'debug' },
  });
  const [secret, pool] = poolManifests(ns, fake.url) as Obj[];
  secret!.stringData = { apiKey: KEY };
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [secret, pool] }),
  );
  const b = sampleBatch('cjbatch-small.yaml', BATCH, ns);
  b.spec.budget = { maxComparisons: 12 };
  b.spec.workers = { parallelism: 1 };
  for (const [i, e] of [...b.spec.essays.inline, ...b.spec.anchors].entries()) {
    const marker = `cjsec${TAG}essay${i}`;
    essayMarkers.push(marker);
    e.text = `${e.text} Quartz zebras ${marker} jumped over the school gate.`;
  }
  await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(b));
  await waitFor(
    `${BATCH} Succeeded`,
    async () => {
      const s = JSON.parse(await kubectlOk(['get', 'cjbatch', BATCH, '-n', ns, '-o', 'json'])).status ?? {};
      if (s.phase === 'Failed') throw new Error(`batch failed: ${JSON.stringify(s.conditions)}`);
      return s.phase === 'Succeeded';
    },
    180_000,
  );
}, 240_000);

afterAll(async () => {
  if (ns) await kubectl(['delete', 'cjbatch', '--all', '-n', ns, '--wait=true', '--timeout=30s']);
  if (operator) {
    const exited = await Promise.race([
      operator.stop().then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
    ]);
    if (!exited) await operator.stop('SIGKILL');
  }
  await fake?.close();
  for (const o of clusterScoped) await kubectl(['delete', o, '--ignore-not-found']);
  if (ns) await deleteNamespace(ns);
}, 90_000);

const podsOf = async () =>
  JSON.parse(await kubectlOk(['get', 'pods', '-n', ns, '-l', `cj.huleedu.io/batch=${BATCH}`, '-o', 'json']))
    .items as Obj[];

describe('secrets and essay text stay out of logs', () => {
  it('the key reached the provider: comparisons succeeded with no authentication failure', async () => {
    const s = JSON.parse(await kubectlOk(['get', 'cjbatch', BATCH, '-n', ns, '-o', 'json'])).status;
    expect(s.comparisons.completed).toBeGreaterThan(0);
    expect(fake.stats().authFailures).toBe(0);
  });

  it('no log file of the stack holds the API key or essay text', () => {
    const files = logFiles(stack().dir);
    // The scan covers what matters: this operator, this batch's worker pods, the control plane,
    // the kubelet, Postgres and Kafka.
    const podDirs = readdirSync(path.join(stack().dir, 'kubelet', 'pods')).filter((d) =>
      d.startsWith(`${ns}_`),
    );
    expect(podDirs.length).toBeGreaterThan(1);
    const workerLogs = podDirs.map((d) => path.join(stack().dir, 'kubelet', 'pods', d, 'worker.log'));
    expect(workerLogs.filter((f) => files.includes(f)).length).toBeGreaterThan(1);
    for (const want of [
      operator.log,
      path.join(stack().dir, 'cluster', 'kube-apiserver.log'),
      path.join(stack().dir, 'kubelet.log'),
      path.join(stack().dir, 'postgres', 'postgres.log'),
      path.join(stack().dir, 'kafka', 'kafka.log'),
    ])
      expect(files, want).toContain(want);
    // The operator logged at debug level, so a leak would have had every chance.
    expect(readFileSync(operator.log, 'utf8')).toContain('"level":"debug"');
    const hits = scan(files, [KEY, ...essayMarkers, 'Quartz zebras']);
    expect(describeHits(hits)).toEqual([]);
    // The scan does find what it looks for (a canary log outside the stack).
    const canary = path.join(mkdtempSync(path.join(tmpdir(), 'cj-canary-')), 'canary.log');
    writeFileSync(canary, `{"msg":"oops","key":"${KEY}","essay":"… ${essayMarkers[3]} …"}\n`);
    expect(scan(logFiles(path.dirname(canary)), [KEY, ...essayMarkers]).map((h) => h.needle)).toEqual([
      KEY,
      essayMarkers[3],
    ]);
    rmSync(path.dirname(canary), { recursive: true, force: true });
  });

  it('nor do Events, pod termination messages, Jobs, pods or the operator-made ConfigMaps', async () => {
    const dump = await kubectlOk(['get', 'events,pods,jobs,configmaps', '-n', ns, '-o', 'json']);
    expect(dump).toContain(BATCH); // the dump is the right one
    expect(dump).not.toContain(KEY);
    const leaked = essayMarkers.filter((m) => dump.includes(m));
    // The batch's own inputs may hold essays (none here: inline); results hold ids and scores only.
    expect(leaked).toEqual([]);
    // The key travels only as a secretKeyRef.
    const pods = await podsOf();
    const comparison = pods.filter((p) => p.metadata.labels['cj.huleedu.io/role'] === 'comparison');
    expect(comparison.length).toBeGreaterThan(0);
    for (const p of comparison) {
      const env = p.spec.containers[0].env as Obj[];
      expect(env.find((e) => e.name === 'ANTHROPIC_API_KEY')).toEqual({
        name: 'ANTHROPIC_API_KEY',
        valueFrom: { secretKeyRef: { name: 'llm-api-key', key: 'apiKey' } },
      });
    }
  });
});

describe('worker pods and ServiceAccounts', () => {
  it('worker pods run as the token-less worker ServiceAccount and no token was materialised', async () => {
    const pods = await podsOf();
    expect(pods.length).toBeGreaterThan(1);
    const sa = JSON.parse(await kubectlOk(['get', 'sa', 'cj-worker', '-n', ns, '-o', 'json']));
    expect(sa.automountServiceAccountToken).toBe(false);
    for (const p of pods) {
      expect(p.spec.serviceAccountName).toBe('cj-worker');
      expect(p.spec.automountServiceAccountToken).toBe(false);
      expect(JSON.stringify(p.spec.volumes ?? [])).not.toContain('serviceAccountToken');
      for (const c of p.spec.containers)
        expect(JSON.stringify(c.volumeMounts ?? [])).not.toContain('/var/run/secrets/kubernetes.io');
      // The process kubelet writes a pod's token (and a kubeconfig using it) only when one is mounted.
      const dir = path.join(
        stack().dir,
        'kubelet',
        'pods',
        `${ns}_${p.metadata.name}_${p.metadata.uid.slice(0, 8)}`,
      );
      expect(existsSync(dir), dir).toBe(true);
      expect(existsSync(path.join(dir, 'serviceaccount.kubeconfig'))).toBe(false);
      const volumes = path.join(dir, 'volumes');
      const files = existsSync(volumes) ? readdirSync(volumes, { recursive: true }).map(String) : [];
      expect(files.filter((f) => /(^|\/)token$/.test(f))).toEqual([]);
    }
  });

  it('the worker ServiceAccount can do nothing', async () => {
    const as = `system:serviceaccount:${ns}:cj-worker`;
    const list = await kubectlOk(['auth', 'can-i', '--list', '-n', ns, `--as=${as}`]);
    // Resource rows only (non-resource URL rows start with blanks).
    const rows = list
      .split('\n')
      .slice(1)
      .filter((l) => /^\S/.test(l))
      .map((l) => l.split(/\s+/)[0]);
    expect(rows.sort()).toEqual([
      'selfsubjectaccessreviews.authorization.k8s.io',
      'selfsubjectreviews.authentication.k8s.io',
      'selfsubjectrulesreviews.authorization.k8s.io',
    ]);
    const denied: Array<[string, string]> = [
      ['get', 'secrets'],
      ['get', 'configmaps'],
      ['create', 'pods'],
      ['get', 'cjbatches.cj.huleedu.io'],
      ['patch', 'cjbatches.cj.huleedu.io/status'],
      ['list', 'jobs.batch'],
    ];
    for (const [verb, res] of denied) expect(await can(as, verb, res, '-n', ns), `${verb} ${res}`).toBe('no');
  });
});

describe("the operator's ServiceAccount (chart RBAC)", () => {
  const never = (as: string) =>
    [
      ['list', 'secrets', '--all-namespaces'],
      ['watch', 'secrets', '--all-namespaces'],
      ['list', 'secrets', '-n', ns],
      ['delete', 'namespaces'],
      ['create', 'namespaces'],
      ['create', 'pods', '-n', ns],
      ['create', 'pods/exec', '-n', ns],
      ['get', 'nodes'],
      ['impersonate', 'serviceaccounts', '-n', ns],
      ['create', 'rolebindings.rbac.authorization.k8s.io', '-n', ns],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
      ['escalate', 'roles.rbac.authorization.k8s.io', '-n', ns],
      ['bind', 'clusterroles.rbac.authorization.k8s.io'],
      ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
      ['delete', 'cjbatches.cj.huleedu.io', '-n', ns],
      ['create', 'serviceaccounts/token', '-n', ns],
      ['delete', 'secrets', '-n', ns],
    ].map((args) => ({ as, args }));

  it('namespace-scoped (watchNamespaces): nothing outside the namespace, nothing dangerous inside', async () => {
    const as = `system:serviceaccount:${ns}:${operatorSa}`;
    // The RBAC is in place (the authorizer's cache follows the apply within moments).
    await waitFor(
      'the namespace-scoped grants to apply',
      async () => (await can(as, 'create', 'jobs.batch', '-n', ns)) === 'yes',
    );
    for (const { args } of never(as)) expect(await can(as, ...args), args.join(' ')).toBe('no');
    expect(await can(as, 'get', 'secrets', '-n', 'kube-system')).toBe('no');
    expect(await can(as, 'get', 'secrets', '-n', 'default')).toBe('no');
    expect(await can(as, 'create', 'jobs.batch', '-n', 'default')).toBe('no');
  });

  it('cluster-wide: still no Secret listing, namespace deletion, pods, exec, impersonation or escalation', async () => {
    const objs = (await renderScoped(false)).map((o) =>
      // Its own names, so both modes can be checked side by side.
      RBAC_KINDS.includes(o.kind) && o.kind.startsWith('Cluster')
        ? { ...o, metadata: { ...o.metadata, name: `${o.metadata.name}-cw` } }
        : o,
    );
    for (const o of objs) {
      if (o.kind === 'ClusterRoleBinding') o.roleRef.name = `${o.roleRef.name}-cw`;
    }
    expect(objs.some((o) => o.kind === 'ClusterRole')).toBe(true);
    await applyRbac(objs);
    const as = `system:serviceaccount:${ns}:${operatorSa}`;
    await waitFor(
      'the cluster-wide grants to apply',
      async () => (await can(as, 'create', 'jobs.batch', '-n', 'default')) === 'yes',
    );
    for (const { args } of never(as)) expect(await can(as, ...args), args.join(' ')).toBe('no');
    // Known limit of the cluster-wide mode: `get` on a named Secret in any namespace (the pool's
    // API-key Secret lives in the pool's namespace). Listing is not granted, so names must be known.
    expect(await can(as, 'get', 'secrets', '-n', 'kube-system')).toBe('yes');
  });
});

describe('the NetworkPolicy sample', () => {
  const policies = () =>
    YAML.parseAllDocuments(
      readFileSync(path.join(repoRoot, 'config/samples/networkpolicy.yaml'), 'utf8'),
    ).map((d) => d.toJSON() as Obj);
  const matches = (sel: Obj, labels: Record<string, string>) =>
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (sel.matchExpressions ?? []).every((e: Obj) =>
      e.operator === 'In'
        ? e.values.includes(labels[e.key])
        : e.operator === 'Exists'
          ? e.key in labels
          : false,
    );
  const ports = (p: Obj) =>
    new Set<string>(p.spec.egress.flatMap((r: Obj) => r.ports.map((x: Obj) => `${x.protocol}/${x.port}`)));

  it('is accepted by the apiserver (dry run)', async () => {
    const r = await kubectl([
      'apply',
      '--dry-run=server',
      '-n',
      ns,
      '-f',
      path.join(repoRoot, 'config/samples/networkpolicy.yaml'),
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('networkpolicy.networking.k8s.io/cj-operator-egress created (server dry run)');
    expect(r.stdout).toContain('networkpolicy.networking.k8s.io/cj-worker-egress created (server dry run)');
  });

  it("selects the real worker pods and the chart's operator pods, and nothing else of ours", async () => {
    const [op, worker] = policies();
    const pods = await podsOf();
    for (const p of pods) {
      expect(matches(worker!.spec.podSelector, p.metadata.labels), p.metadata.name).toBe(true);
      expect(matches(op!.spec.podSelector, p.metadata.labels), p.metadata.name).toBe(false);
    }
    const dep = (await renderScoped(true)).find((o) => o.kind === 'Deployment')!;
    const opLabels = dep.spec.template.metadata.labels;
    expect(matches(op!.spec.podSelector, opLabels)).toBe(true);
    expect(matches(worker!.spec.podSelector, opLabels)).toBe(false);
  });

  it('allows only DNS, the apiserver, Postgres, Kafka and HTTPS, each to a destination', () => {
    const [op, worker] = policies();
    expect(op!.spec.policyTypes).toEqual(['Egress']);
    expect([...ports(op!)].sort()).toEqual([
      'TCP/443',
      'TCP/53',
      'TCP/5432',
      'TCP/6443',
      'TCP/9092',
      'UDP/53',
    ]);
    // Workers: no apiserver, no Kafka, and no ingress at all.
    expect([...ports(worker!)].sort()).toEqual(['TCP/443', 'TCP/53', 'TCP/5432', 'UDP/53']);
    expect(worker!.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(worker!.spec.ingress).toBeUndefined();
    for (const p of [op!, worker!])
      for (const rule of p.spec.egress) {
        // Every rule names a destination and ports: no allow-all rule.
        expect(rule.to?.length, JSON.stringify(rule)).toBeGreaterThan(0);
        expect(rule.ports?.length, JSON.stringify(rule)).toBeGreaterThan(0);
        for (const to of rule.to)
          if (to.ipBlock?.cidr === '0.0.0.0/0') {
            // Public HTTPS only: private ranges and the metadata endpoint are excluded.
            expect(to.ipBlock.except).toEqual(
              expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16']),
            );
            expect(rule.ports).toEqual([{ protocol: 'TCP', port: 443 }]);
          }
      }
  });
});

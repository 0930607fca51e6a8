// The kustomize base (config/default) and the Helm chart install the same operator: the same
// objects (names, namespaces), identical RBAC rules and bindings, the same Deployment spec,
// Service, webhook configuration, Secrets, ServiceAccounts and Lease, and the CRDs of crds/.
// Renders both with the real tools (`kubectl kustomize`, `helm template`).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../../hack/lib/tools.js';
import { helmTemplate, kustomize, type Obj } from './render.js';

const base = kustomize(path.join(repoRoot, 'config/default'));
// The chart as the base is meant to be: release cj-operator in cj-system, the database Secret
// cj-database (the base's), every other value at its default.
const chart = helmTemplate('cj-operator', 'cj-system', ['database.existingSecret=cj-database']);

const key = (o: Obj) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const byKey = (objs: Obj[]) => new Map(objs.map((o) => [key(o), o]));
const b = byKey(base);
const c = byKey(chart);
const pair = (kind: string, name: string, ns = 'cj-system') => {
  const k = `${kind} ${ns}/${name}`;
  const x = b.get(k);
  const y = c.get(k);
  if (!x || !y) throw new Error(`${k}: ${x ? '' : 'not in the base '}${y ? '' : 'not in the chart'}`);
  return [x, y] as const;
};

describe('kustomize base vs Helm chart', () => {
  it('holds the same objects (plus the Namespace, which Helm leaves to `-n`)', () => {
    const onlyBase = [...b.keys()].filter((k) => !c.has(k));
    const onlyChart = [...c.keys()].filter((k) => !b.has(k));
    expect(onlyBase).toEqual(['Namespace /cj-system']);
    expect(onlyChart).toEqual([]);
  });

  it('grants identical RBAC rules with identical bindings', () => {
    const rbac = base.filter((o) => /^(Cluster)?Role(Binding)?$/.test(o.kind));
    // Namespaced mode: the reconcilers' Role in the watched namespace (cj-system), no ClusterRole
    // beyond the webhook's one object and the teachers' aggregated roles.
    expect(rbac.map(key).sort()).toEqual([
      'ClusterRole /cj-editor',
      'ClusterRole /cj-operator-webhook',
      'ClusterRole /cj-viewer',
      'ClusterRoleBinding /cj-operator-webhook',
      'Role cj-system/cj-operator',
      'Role cj-system/cj-operator-self',
      'RoleBinding cj-system/cj-operator',
      'RoleBinding cj-system/cj-operator-self',
    ]);
    for (const o of rbac) {
      const [x, y] = pair(o.kind, o.metadata.name, o.metadata.namespace ?? '');
      expect(x.rules, key(o)).toEqual(y.rules);
      for (const l of Object.keys(y.metadata.labels ?? {}).filter((k) => k.startsWith('rbac.authorization')))
        expect(x.metadata.labels?.[l], `${key(o)} label ${l}`).toBe(y.metadata.labels[l]);
      expect(x.roleRef, key(o)).toEqual(y.roleRef);
      expect(x.subjects, key(o)).toEqual(y.subjects);
    }
  });

  it('runs the same Deployment: 2 replicas, leader election, restricted security contexts, read-only root', () => {
    const [x, y] = pair('Deployment', 'cj-operator');
    expect(x.spec).toEqual(y.spec);
    const pod = x.spec.template.spec;
    expect(x.spec.replicas).toBe(2);
    const env = Object.fromEntries(pod.containers[0].env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]));
    expect(env.LEADER_ELECTION).toBe('true');
    expect(env.DATABASE_URL).toEqual({ secretKeyRef: { name: 'cj-database', key: 'url' } });
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0].securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
  });

  it('has the same Service, webhook configuration, webhook Secret, ServiceAccounts and Lease', () => {
    let [x, y] = pair('Service', 'cj-operator-webhook');
    expect(x.spec).toEqual(y.spec);
    [x, y] = pair('ValidatingWebhookConfiguration', 'cj-operator-validating', '');
    expect(x.webhooks).toEqual(y.webhooks);
    [x, y] = pair('Secret', 'cj-operator-webhook-tls');
    expect([x.type, x.data, x.stringData]).toEqual([y.type, y.data, y.stringData]);
    [x, y] = pair('ServiceAccount', 'cj-worker');
    expect(x.automountServiceAccountToken).toBe(false);
    expect(y.automountServiceAccountToken).toBe(false);
    [x, y] = pair('ServiceAccount', 'cj-operator');
    expect(x.automountServiceAccountToken).toEqual(y.automountServiceAccountToken);
    [x, y] = pair('Lease', 'cj-operator-leader');
    expect(x.spec).toEqual(y.spec);
  });

  it("installs the CRDs of crds/ (config/crd holds exact copies) with the chart's specs", () => {
    for (const f of ['cj.huleedu.io_cjbatches.yaml', 'cj.huleedu.io_llmproviderpools.yaml'])
      expect(
        readFileSync(path.join(repoRoot, 'config/crd', f), 'utf8'),
        `config/crd/${f}: copy crds/${f}`,
      ).toBe(readFileSync(path.join(repoRoot, 'crds', f), 'utf8'));
    for (const name of ['cjbatches.cj.huleedu.io', 'llmproviderpools.cj.huleedu.io']) {
      const [x, y] = pair('CustomResourceDefinition', name, '');
      expect(x.spec).toEqual(y.spec);
    }
  });

  it('puts its namespace under the restricted Pod Security profile', () => {
    const ns = b.get('Namespace /cj-system')!;
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

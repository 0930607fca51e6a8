// The kustomize base on the local control plane: `kubectl apply -k` of an overlay on
// config/default runs the operator Deployment (a pod of the process kubelet; image cj-operator =
// this checkout), the sample batch reaches Succeeded with the fake judge, the operator's
// ServiceAccount holds exactly the documented permissions, and `kubectl delete -k` leaves nothing
// of the install or of the operator behind.
//
// The overlay is docs/install.md's "another namespace" recipe plus what a shared test cluster
// needs: the CRDs and the Namespace are left out (installed once for every test file / created by
// the test), cluster-scoped names get a per-run suffix, the operator watches only its namespace,
// and the apiserver calls the webhook at the pod's address (no Service routing here).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { repoRoot } from '../../hack/lib/tools.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, stack, waitFor } from './helpers.js';
import {
  clusterNames,
  deleteBatchesAndPools,
  documentedGrants,
  expectExactGrants,
  expectReadyRestrictedDeployment,
  expectWebhookDenies,
  names,
  restrictedNamespace,
  runSampleToSucceeded,
  waitForOperatorChildrenGone,
} from './install-helpers.js';
import { freshDatabase, installCrds, requireBuild, startFake } from './operator-harness.js';

/** The overlay directory (a temporary folder) for namespace `ns`; cluster-scoped names end in `-${id}`. */
function writeOverlay(dir: string, ns: string, id: string, databaseUrl: string): void {
  const del = (apiVersion: string, kind: string, name: string) => ({
    patch: stringify({ $patch: 'delete', apiVersion, kind, metadata: { name } }),
  });
  const json = (target: Record<string, string>, ops: unknown[]) => ({ target, patch: JSON.stringify(ops) });
  const hook = (i: number, p: string) => [
    { op: 'replace', path: `/webhooks/${i}/clientConfig`, value: { url: `https://$(POD_IP):9443${p}` } },
    {
      op: 'add',
      path: `/webhooks/${i}/namespaceSelector`,
      value: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [ns] }],
      },
    },
  ];
  const env = (name: string, value: string) => ({ name, value });
  const kustomization = {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    // Kustomize wants a relative path.
    resources: [path.relative(dir, path.join(repoRoot, 'config/default'))],
    namespace: ns,
    images: [{ name: 'ghcr.io/huleedu/cj-operator', newName: 'cj-operator', newTag: 'dev' }],
    transformers: ['suffix.yaml'],
    secretGenerator: [
      { name: 'cj-database', literals: [`url=${databaseUrl}`], options: { disableNameSuffixHash: true } },
    ],
    patches: [
      del('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'cjbatches.cj.huleedu.io'),
      del('apiextensions.k8s.io/v1', 'CustomResourceDefinition', 'llmproviderpools.cj.huleedu.io'),
      del('v1', 'Namespace', 'cj-system'),
      // The recipe: bindings name the ServiceAccount in the new namespace.
      // The teachers' roles are cluster-scoped and shared with the other files (the demo's).
      del('rbac.authorization.k8s.io/v1', 'ClusterRole', 'cj-editor'),
      del('rbac.authorization.k8s.io/v1', 'ClusterRole', 'cj-viewer'),
      json({ kind: 'RoleBinding|ClusterRoleBinding' }, [
        { op: 'replace', path: '/subjects/0/namespace', value: ns },
      ]),
      // Suffixed configuration name: the webhook ClusterRole's resourceNames follow it.
      json({ kind: 'ClusterRole', name: 'cj-operator-webhook' }, [
        { op: 'replace', path: '/rules/0/resourceNames/0', value: `cj-operator-validating-${id}` },
      ]),
      json({ kind: 'ValidatingWebhookConfiguration' }, [
        ...hook(0, '/validate-cjbatch'),
        ...hook(1, '/validate-llmproviderpool'),
      ]),
      {
        patch: stringify({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'cj-operator' },
          spec: {
            replicas: 1,
            template: {
              spec: {
                containers: [
                  {
                    name: 'operator',
                    // A strategic merge patch puts these entries first: POD_IP must precede
                    // the values that expand it.
                    env: [
                      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                      env('OPERATOR_IMAGE', 'cj-operator:dev'),
                      env('KAFKA_BROKERS', stack().kafkaBrokers),
                      env('WATCH_NAMESPACES', ns),
                      env('LLM_ALLOWED_BASE_URLS', 'https://api.anthropic.com,http://127.0.0.1:*'),
                      // Pods share the host's network: bind the pod's own loopback address.
                      env('PROBE_ADDRESS', '$(POD_IP)'),
                      env('WEBHOOK_URL', 'https://$(POD_IP):9443'),
                      env('WEBHOOK_CONFIGURATION_NAME', `cj-operator-validating-${id}`),
                      env('COMPARISON_LEASE_SECONDS', '15'),
                    ],
                  },
                ],
              },
            },
          },
        }),
      },
    ],
  };
  writeFileSync(path.join(dir, 'kustomization.yaml'), stringify(kustomization));
  writeFileSync(
    path.join(dir, 'suffix.yaml'),
    stringify({
      apiVersion: 'builtin',
      kind: 'PrefixSuffixTransformer',
      metadata: { name: 'suffix' },
      suffix: `-${id}`,
      fieldSpecs: ['ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration'].map((kind) => ({
        kind,
        path: 'metadata/name',
      })),
    }),
  );
}

describe('kustomize base (config/default)', () => {
  let ns: string;
  let id: string;
  let dir: string;
  let fake: FakeAnthropic;
  let applied = false;

  beforeAll(async () => {
    requireBuild();
    await installCrds();
    ns = await restrictedNamespace('kustomize');
    id = ns.slice(-6);
    dir = mkdtempSync(path.join(stack().dir, 'kustomize-'));
    writeOverlay(dir, ns, id, await freshDatabase('kustomize'));
    fake = await startFake();
  });

  afterAll(async () => {
    if (applied) await kubectl(['delete', '-k', dir, '--ignore-not-found', '--wait=false']);
    await fake?.close();
    if (ns) await deleteNamespace(ns);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('applies: the operator Deployment becomes Ready and holds the Lease', async () => {
    await kubectlOk(['apply', '-k', dir]);
    applied = true;
    await expectReadyRestrictedDeployment(ns, 'cj-operator');
    await waitFor('the leader Lease is held', async () => {
      const lease = JSON.parse(
        await kubectlOk(['get', 'lease', 'cj-operator-leader', '-n', ns, '-o', 'json']),
      );
      return !!lease.spec?.holderIdentity?.startsWith('cj-operator-');
    });
  });

  it('serves the webhook; the base owns the configuration and Secret, the operator fills them in', async () => {
    await expectWebhookDenies(ns);
    const tls = JSON.parse(
      await kubectlOk(['get', 'secret', 'cj-operator-webhook-tls', '-n', ns, '-o', 'json']),
    );
    expect(Object.keys(tls.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(tls.type).toBe('Opaque');
    expect(tls.metadata.labels['app.kubernetes.io/managed-by']).toBe('kustomize');
    const cfg = JSON.parse(
      await kubectlOk([
        'get',
        'validatingwebhookconfiguration',
        `cj-operator-validating-${id}`,
        '-o',
        'json',
      ]),
    );
    for (const h of cfg.webhooks) expect(h.clientConfig.caBundle).toBe(tls.data['ca.crt']);
  });

  it('runs the sample batch to Succeeded', async () => {
    expect((await runSampleToSucceeded(ns, fake.url)).phase).toBe('Succeeded');
  }, 180_000);

  it("grants the operator's ServiceAccount exactly the documented permissions", async () => {
    await expectExactGrants(
      ns,
      'cj-operator',
      await documentedGrants({
        '<release>-webhook-tls': 'cj-operator-webhook-tls',
        '<release>-validating': `cj-operator-validating-${id}`,
      }),
      // The base is namespaced (a Role per watched namespace): no Secret outside its namespace.
      { clusterWide: false },
    );
  });

  it('`kubectl delete -k` leaves nothing of the install or the operator (the CRDs are not in this overlay)', async () => {
    // Batches first, while the operator runs (finalizers); UPDATEs go through the webhook.
    await deleteBatchesAndPools(ns);
    // Re-applying keeps what the operator filled in.
    const tls = JSON.parse(
      await kubectlOk(['get', 'secret', 'cj-operator-webhook-tls', '-n', ns, '-o', 'json']),
    );
    // kubectl's three-way merge leaves fields the manifests do not set. (It resets the URL this
    // test's overlay sets to the $(POD_IP) placeholder; the operator restores it within a minute.)
    await kubectlOk(['apply', '-k', dir]);
    const again = JSON.parse(
      await kubectlOk([
        'get',
        'validatingwebhookconfiguration',
        `cj-operator-validating-${id}`,
        '-o',
        'json',
      ]),
    );
    for (const h of again.webhooks) expect(h.clientConfig.caBundle).toBe(tls.data['ca.crt']);
    const tlsAgain = JSON.parse(
      await kubectlOk(['get', 'secret', 'cj-operator-webhook-tls', '-n', ns, '-o', 'json']),
    );
    expect(tlsAgain.data).toEqual(tls.data);
    await kubectlOk(['delete', '-k', dir, '--wait=true', '--timeout=90s']);
    applied = false;
    await waitForOperatorChildrenGone(ns);
    expect(await names(ns, 'deployments')).toEqual([]);
    expect(await names(ns, 'leases')).toEqual([]);
    expect(await names(ns, 'services')).toEqual([]);
    expect(await names(ns, 'serviceaccounts')).toEqual(['serviceaccount/default']);
    expect(await names(ns, 'secrets')).toEqual(['secret/llm-api-key']);
    expect(await names(ns, 'configmaps')).toEqual(['configmap/kube-root-ca.crt']);
    expect(await names(ns, 'roles')).toEqual([]);
    expect(await names(ns, 'rolebindings')).toEqual([]);
    for (const kind of ['clusterroles', 'clusterrolebindings', 'validatingwebhookconfigurations'])
      expect(await clusterNames(kind, `-${id}`), kind).toEqual([]);
  }, 120_000);
});

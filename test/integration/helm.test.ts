// The Helm chart on the local control plane: `helm install` runs the operator as a Deployment (a
// pod of the process kubelet, image cj-operator:dev = this checkout's dist/), the sample batch
// reaches Succeeded, the operator's ServiceAccount holds exactly the chart's permissions, and
// `helm uninstall` leaves nothing the operator or the chart created except the (kept) CRDs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, stack, waitFor } from './helpers.js';
import {
  CHART,
  clusterNames,
  deleteBatchesAndPools,
  documentedGrants,
  expectExactGrants,
  expectReadyRestrictedDeployment,
  expectWebhookDenies,
  helm,
  helmOk,
  names,
  restrictedNamespace,
  runSampleToSucceeded,
  waitForOperatorChildrenGone,
} from './install-helpers.js';
import { freshDatabase, installCrds, requireBuild, startFake } from './operator-harness.js';

// On by default; CJ_HELM_WEBHOOK=0 installs the chart without its webhook.
const WEBHOOK = process.env.CJ_HELM_WEBHOOK !== '0';

describe('Helm chart', () => {
  let ns: string;
  let release: string;
  // The chart renders both, named per release (docs/install.md); the operator fills them in.
  let vwc: string;
  let webhookTls: string;
  let fake: FakeAnthropic;
  let installed = false;

  beforeAll(async () => {
    requireBuild();
    await installCrds();
    // Every pod (operator and workers) must pass the restricted Pod Security profile.
    ns = await restrictedNamespace('helm');
    release = `cj-operator-${ns.slice(-6)}`;
    vwc = `${release}-validating`;
    webhookTls = `${release}-webhook-tls`;
    fake = await startFake();
  });

  afterAll(async () => {
    if (installed) await helm(['uninstall', release, '-n', ns, '--wait', '--timeout', '60s']);
    if (WEBHOOK) await kubectl(['delete', 'validatingwebhookconfiguration', vwc, '--ignore-not-found']);
    await fake?.close();
    if (ns) await deleteNamespace(ns);
  });

  it('lints clean, also in cert-manager mode', async () => {
    for (const extra of [[], ['--set', 'webhook.certManager.enabled=true']]) {
      const out = await helmOk([
        'lint',
        CHART,
        '--strict',
        '--set',
        'database.url=postgres://db/cj',
        ...extra,
      ]);
      expect(out).toContain('0 chart(s) failed');
      expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
    }
  });

  it('installs: the operator Deployment becomes Ready', async () => {
    const databaseUrl = await freshDatabase('helm');
    await helmOk([
      'install',
      release,
      CHART,
      '-n',
      ns,
      '--set',
      'crds.install=false', // installed above, shared with the other test files
      '--set',
      'image.repository=cj-operator',
      '--set',
      'image.tag=dev',
      '--set',
      'replicas=1',
      '--set-string',
      `database.url=${databaseUrl}`,
      '--set-string',
      `kafka.brokers=${stack().kafkaBrokers}`,
      // Namespaced mode by default: the release namespace is the one watched. The fake judge
      // listens on loopback: the platform allows it next to the official endpoint.
      '--set',
      `llm.allowedBaseURLs={https://api.anthropic.com,${fake.url}}`,
      // The teachers' roles are cluster-scoped: one per cluster (the demo makes them).
      '--set',
      'rbac.teacherRoles.create=false',
      // The process kubelet has no Service routing: the apiserver calls the pod's own address.
      ...(WEBHOOK
        ? ['--set-string', 'webhook.url=https://$(POD_IP):9443']
        : ['--set', 'webhook.enabled=false']),
      // Pods share the host's network namespace: bind the pod's own loopback address.
      '--set',
      'probes.address=podIP',
      '--set',
      'operator.comparisonLeaseSeconds=15',
    ]);
    installed = true;
    await expectReadyRestrictedDeployment(ns, release);
    // The leader holds the chart's Lease.
    await waitFor('the leader Lease is held', async () => {
      const lease = JSON.parse(
        await kubectlOk(['get', 'lease', 'cj-operator-leader', '-n', ns, '-o', 'json']),
      );
      return !!lease.spec?.holderIdentity?.startsWith(release);
    });
  });

  it.runIf(WEBHOOK)(
    'serves the validating webhook at the pod address; the chart owns the configuration and the Secret the operator fills',
    async () => {
      await expectWebhookDenies(ns);
      const tls = JSON.parse(await kubectlOk(['get', 'secret', webhookTls, '-n', ns, '-o', 'json']));
      expect(Object.keys(tls.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
      // Still Helm's: type and ownership metadata untouched by the operator's patches.
      expect(tls.type).toBe('Opaque');
      expect(tls.metadata.labels['app.kubernetes.io/managed-by']).toBe('Helm');
      expect(tls.metadata.annotations['meta.helm.sh/release-name']).toBe(release);
      const cfg = JSON.parse(await kubectlOk(['get', 'validatingwebhookconfiguration', vwc, '-o', 'json']));
      expect(cfg.metadata.labels['app.kubernetes.io/managed-by']).toBe('Helm');
      for (const h of cfg.webhooks) {
        expect(h.clientConfig.caBundle).toBe(tls.data['ca.crt']);
        expect(h.clientConfig.url).toMatch(/^https:\/\/127\.[\d.]+:9443\/validate-/); // $(POD_IP) patched in
      }
    },
  );

  it('runs the sample batch to Succeeded', async () => {
    const status = await runSampleToSucceeded(ns, fake.url);
    expect(status.phase).toBe('Succeeded');
  }, 180_000);

  it("grants the operator's ServiceAccount exactly the chart's permissions", async () => {
    await expectExactGrants(
      ns,
      release,
      await documentedGrants(
        WEBHOOK ? { '<release>-webhook-tls': webhookTls, '<release>-validating': vwc } : {},
      ),
    );
    expect(
      (
        await kubectl([
          'auth',
          'can-i',
          'create',
          'jobs.batch',
          '-n',
          'default',
          `--as=system:serviceaccount:${ns}:${release}`,
        ])
      ).stdout.trim(),
    ).toBe('no');
  });

  it('uninstall leaves nothing the operator or the chart created but the CRDs (after the batches are deleted)', async () => {
    // Batches carry the operator's finalizer: delete them while the operator runs.
    await deleteBatchesAndPools(ns);
    if (WEBHOOK) {
      // `helm upgrade` keeps what the operator filled in: Helm's three-way merge leaves fields the
      // chart does not render. (It resets the $(POD_IP) URL this test uses; the operator restores
      // it within a minute. Nothing is admitted in between here.)
      const before = JSON.parse(await kubectlOk(['get', 'secret', webhookTls, '-n', ns, '-o', 'json']));
      await helmOk([
        'upgrade',
        release,
        CHART,
        '-n',
        ns,
        '--reuse-values',
        '--set',
        'operator.logLevel=debug',
      ]);
      const after = JSON.parse(await kubectlOk(['get', 'secret', webhookTls, '-n', ns, '-o', 'json']));
      expect(after.type).toBe('Opaque');
      expect(after.data).toEqual(before.data);
      const cfg = JSON.parse(await kubectlOk(['get', 'validatingwebhookconfiguration', vwc, '-o', 'json']));
      for (const h of cfg.webhooks) expect(h.clientConfig.caBundle).toBe(before.data['ca.crt']);
    }
    await helmOk(['uninstall', release, '-n', ns, '--wait', '--timeout', '90s']);
    installed = false;
    await waitForOperatorChildrenGone(ns);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await names(ns, 'leases')).toEqual([]);
    expect(await names(ns, 'deployments')).toEqual([]);
    expect(await names(ns, 'services')).toEqual([]);
    expect(await names(ns, 'serviceaccounts')).toEqual(['serviceaccount/default']);
    // Only the test's own API key Secret: no webhook TLS Secret, no worker Secret, no database Secret.
    expect(await names(ns, 'secrets')).toEqual(['secret/llm-api-key']);
    expect(await names(ns, 'configmaps')).toEqual(['configmap/kube-root-ca.crt']);
    expect(await names(ns, 'roles')).toEqual([]);
    expect(await names(ns, 'rolebindings')).toEqual([]);
    // Cluster-scoped: the webhook configuration and any release ClusterRole are gone too.
    expect((await kubectl(['get', 'validatingwebhookconfiguration', vwc])).code).not.toBe(0);
    expect(await clusterNames('clusterroles', release)).toEqual([]);
    expect(await clusterNames('clusterrolebindings', release)).toEqual([]);
    // The CRDs were not the release's (crds.install=false) and stay.
    expect((await kubectl(['get', 'crd', 'cjbatches.cj.huleedu.io'])).code).toBe(0);
  }, 180_000);
});

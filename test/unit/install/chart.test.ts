// The chart's webhook objects: rendered by the chart (so `helm uninstall` deletes them) in the
// shape the operator would register itself, with only the fields the operator or cert-manager
// fill in left out; cert-manager mode wires Certificate, Issuer, CA injection and the mount.
import { describe, expect, it } from 'vitest';
import { webhookConfiguration } from '../../../operator/src/webhook/index.js';
import { find, get, helmTemplate, helmTemplateError, type Obj } from './render.js';

const BASE = ['database.existingSecret=cj-database'];
const env = (dep: Obj) =>
  Object.fromEntries(
    dep.spec.template.spec.containers[0].env.map((e: Obj) => [e.name, e.value ?? e.valueFrom]),
  );

describe('chart: webhook, self-managed certificate (default)', () => {
  const objs = helmTemplate('rel', 'cj-system', [...BASE, 'watchNamespaces={team-a}']);

  it('renders the configuration the operator would register, without caBundle', () => {
    const vwc = get(objs, 'ValidatingWebhookConfiguration', 'rel-cj-operator-validating');
    const operator = webhookConfiguration({
      name: 'rel-cj-operator-validating',
      target: { service: { name: 'rel-cj-operator-webhook', namespace: 'cj-system', port: 443 } },
      failurePolicy: 'Fail',
      namespaceSelector: {
        matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['team-a'] }],
      },
    });
    expect(vwc.webhooks).toEqual(operator.webhooks);
    for (const h of vwc.webhooks) expect(h.clientConfig.caBundle).toBeUndefined();
    expect(vwc.metadata.annotations?.['cert-manager.io/inject-ca-from']).toBeUndefined();
  });

  it('renders the TLS Secret empty and Opaque, and tells the operator not to register anything', () => {
    const secret = get(objs, 'Secret', 'rel-cj-operator-webhook-tls');
    expect(secret.type).toBe('Opaque');
    expect(secret.data).toBeUndefined();
    expect(secret.stringData).toBeUndefined();
    const e = env(get(objs, 'Deployment'));
    expect(e.WEBHOOK_MANAGE_CONFIGURATION).toBe('false');
    expect(e.WEBHOOK_SECRET_NAME).toBe('rel-cj-operator-webhook-tls');
    expect(e.WEBHOOK_CONFIGURATION_NAME).toBe('rel-cj-operator-validating');
    expect(e.WEBHOOK_CERT_MODE).toBeUndefined();
  });

  it('grants only get/patch on exactly those two objects (no create)', () => {
    const self = get(objs, 'Role', 'rel-cj-operator-self');
    expect(self.rules).toContainEqual({
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: ['rel-cj-operator-webhook-tls'],
      verbs: ['get', 'patch'],
    });
    expect(get(objs, 'ClusterRole', 'rel-cj-operator-webhook').rules).toEqual([
      {
        apiGroups: ['admissionregistration.k8s.io'],
        resources: ['validatingwebhookconfigurations'],
        resourceNames: ['rel-cj-operator-validating'],
        verbs: ['get', 'patch'],
      },
    ]);
    for (const o of objs.filter((x) => /Role$/.test(x.kind)))
      for (const r of o.rules) {
        if (r.resources.includes('validatingwebhookconfigurations')) expect(r.verbs).not.toContain('create');
        if (r.resourceNames?.includes('rel-cj-operator-webhook-tls')) expect(r.verbs).not.toContain('update');
      }
  });

  it('with webhook.url renders the placeholder URL per webhook (the operator patches the real one)', () => {
    const u = helmTemplate('rel', 'ns', [...BASE, 'webhook.url=https://$(POD_IP):9443/']);
    expect(get(u, 'ValidatingWebhookConfiguration').webhooks.map((h: Obj) => h.clientConfig)).toEqual([
      { url: 'https://$(POD_IP):9443/validate-cjbatch' },
      { url: 'https://$(POD_IP):9443/validate-llmproviderpool' },
    ]);
  });

  it('renders no webhook objects or permissions when disabled', () => {
    const off = helmTemplate('rel', 'ns', [...BASE, 'webhook.enabled=false']);
    expect(find(off, 'ValidatingWebhookConfiguration')).toBeUndefined();
    expect(find(off, 'Secret', 'rel-cj-operator-webhook-tls')).toBeUndefined();
    expect(find(off, 'ClusterRole', 'rel-cj-operator-webhook')).toBeUndefined();
  });
});

describe('chart: webhook, cert-manager', () => {
  const objs = helmTemplate('rel', 'cj-system', [...BASE, 'webhook.certManager.enabled=true']);

  it('renders a self-signed Issuer and a Certificate for the Service names into the webhook Secret', () => {
    const issuer = get(objs, 'Issuer', 'rel-cj-operator-selfsigned');
    expect(issuer.spec).toEqual({ selfSigned: {} });
    const cert = get(objs, 'Certificate', 'rel-cj-operator-webhook');
    expect(cert.apiVersion).toBe('cert-manager.io/v1');
    expect(cert.spec).toMatchObject({
      secretName: 'rel-cj-operator-webhook-tls',
      issuerRef: { name: 'rel-cj-operator-selfsigned', kind: 'Issuer', group: 'cert-manager.io' },
      duration: '2160h',
      renewBefore: '720h',
    });
    expect(cert.spec.dnsNames).toContain('rel-cj-operator-webhook.cj-system.svc');
    // cert-manager creates the Secret; the chart does not render one.
    expect(find(objs, 'Secret', 'rel-cj-operator-webhook-tls')).toBeUndefined();
  });

  it('asks the CA injector for the caBundle and mounts the certificate for the operator', () => {
    const vwc = get(objs, 'ValidatingWebhookConfiguration', 'rel-cj-operator-validating');
    expect(vwc.metadata.annotations['cert-manager.io/inject-ca-from']).toBe(
      'cj-system/rel-cj-operator-webhook',
    );
    const dep = get(objs, 'Deployment');
    const e = env(dep);
    expect(e).toMatchObject({
      WEBHOOK_CERT_MODE: 'files',
      WEBHOOK_CERT_DIR: '/tls',
      WEBHOOK_MANAGE_CONFIGURATION: 'false',
    });
    const pod = dep.spec.template.spec;
    expect(pod.volumes).toContainEqual({
      name: 'webhook-tls',
      secret: { secretName: 'rel-cj-operator-webhook-tls' },
    });
    expect(pod.containers[0].volumeMounts).toContainEqual({
      name: 'webhook-tls',
      mountPath: '/tls',
      readOnly: true,
    });
  });

  it('grants nothing on Secrets by name or on webhook configurations', () => {
    expect(find(objs, 'ClusterRole', 'rel-cj-operator-webhook')).toBeUndefined();
    const self = get(objs, 'Role', 'rel-cj-operator-self');
    expect(self.rules.map((r: Obj) => r.resources)).toEqual([['leases']]);
  });

  it('uses a given issuer instead of making one', () => {
    const own = helmTemplate('rel', 'cj-system', [
      ...BASE,
      'webhook.certManager.enabled=true',
      'webhook.certManager.issuerRef.name=corp-ca',
      'webhook.certManager.issuerRef.kind=ClusterIssuer',
    ]);
    expect(find(own, 'Issuer')).toBeUndefined();
    expect(get(own, 'Certificate').spec.issuerRef).toEqual({
      name: 'corp-ca',
      kind: 'ClusterIssuer',
      group: 'cert-manager.io',
    });
  });

  it('refuses webhook.url with cert-manager, and typos in the values', () => {
    expect(
      helmTemplateError('rel', 'ns', [
        ...BASE,
        'webhook.certManager.enabled=true',
        'webhook.url=https://x:9443',
      ]),
    ).toContain('webhook.url needs the self-managed certificate');
    expect(helmTemplateError('rel', 'ns', [...BASE, 'webhook.certManager.enable=true'])).toMatch(
      /additional properties|additionalProperties|not allowed/i,
    );
  });
});

describe('chart: operator settings', () => {
  it('passes leader election timings only when set', () => {
    const plain = env(get(helmTemplate('rel', 'cj-system', BASE), 'Deployment'));
    expect(plain.LEADER_LEASE_DURATION).toBeUndefined();
    expect(plain.KAFKA_MAX_MESSAGE_BYTES).toBe('1000000');
    const set = env(
      get(
        helmTemplate('rel', 'cj-system', [
          ...BASE,
          'leaderElectionTimings.leaseDuration=30',
          'leaderElectionTimings.renewDeadline=20',
          'leaderElectionTimings.retryPeriod=4',
          'kafka.maxMessageBytes=5000000',
        ]),
        'Deployment',
      ),
    );
    expect([set.LEADER_LEASE_DURATION, set.LEADER_RENEW_DEADLINE, set.LEADER_RETRY_PERIOD]).toEqual([
      '30',
      '20',
      '4',
    ]);
    expect(set.KAFKA_MAX_MESSAGE_BYTES).toBe('5000000');
  });
});

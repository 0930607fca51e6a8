// Starts the admission webhook inside the operator process (every replica serves it; it does not
// need the Lease). Configuration from the environment, set by the chart:
//   WEBHOOK_PORT                 enables the webhook (e.g. 9443)
//   WEBHOOK_CERT_MODE            selfManaged (default: CA + serving cert in a Secret, rotated,
//                                caBundle injected) | files (cert-manager mounts tls.crt/tls.key)
//   WEBHOOK_CERT_DIR             files mode: folder with tls.crt and tls.key
//   WEBHOOK_SERVICE_NAME         the Service in front of the operator (DNS names of the cert)
//   WEBHOOK_URL                  instead of a Service: a URL the apiserver calls (process clusters)
//   WEBHOOK_FAILURE_POLICY       Fail | Ignore (default Fail)
//   WEBHOOK_CONFIGURATION_NAME   the ValidatingWebhookConfiguration (cluster-scoped; one per release)
//   WEBHOOK_SECRET_NAME          the Secret holding the CA and serving certificate (selfManaged)
//   WEBHOOK_CLIENT_CA_FILE       PEM CA: serve only clients with a certificate from it (the
//                                apiserver's, when its AdmissionConfiguration gives it one)
//   WEBHOOK_MANAGE_CONFIGURATION true (default): register the configuration with server-side
//                                apply. false: the installer (Helm chart, kustomize base)
//                                renders it, and the Secret, so that uninstalling removes them;
//                                we only patch in the caBundle, the Secret's data and, for
//                                WEBHOOK_URL targets, the real URL.
import { readFile } from 'node:fs/promises';
import { type OperatorConfig, platformPolicy } from '../config.js';
import type { KubeClient } from '../kube/rest.js';
import { kubeValidationContext, webhookConfiguration } from './config.js';
import { KubeCertStore } from './kube-store.js';
import { startWebhookServer, type WebhookServer } from './server.js';

export const DEFAULT_WEBHOOK_CONFIGURATION_NAME = 'cj-operator-validating';

export async function runWebhook(
  config: OperatorConfig,
  client: KubeClient,
  log: (msg: string, fields?: Record<string, unknown>) => void,
  env: NodeJS.ProcessEnv = process.env,
): Promise<WebhookServer | undefined> {
  if (!env.WEBHOOK_PORT) return undefined;
  const configurationName = env.WEBHOOK_CONFIGURATION_NAME || DEFAULT_WEBHOOK_CONFIGURATION_NAME;
  const service = env.WEBHOOK_SERVICE_NAME ?? 'cj-operator-webhook';
  const dnsNames = [
    service,
    `${service}.${config.namespace}`,
    `${service}.${config.namespace}.svc`,
    `${service}.${config.namespace}.svc.cluster.local`,
  ];
  const url = env.WEBHOOK_URL ? new URL(env.WEBHOOK_URL) : undefined;
  const vwc = webhookConfiguration({
    name: configurationName,
    target: url
      ? { url: url.toString().replace(/\/$/, '') }
      : { service: { name: service, namespace: config.namespace, port: 443 } },
    failurePolicy: env.WEBHOOK_FAILURE_POLICY === 'Ignore' ? 'Ignore' : 'Fail',
    ...(config.watchNamespaces
      ? {
          namespaceSelector: {
            matchExpressions: [
              { key: 'kubernetes.io/metadata.name', operator: 'In', values: config.watchNamespaces },
            ],
          },
        }
      : {}),
  });
  if (env.WEBHOOK_MANAGE_CONFIGURATION !== 'false') {
    // The configuration is ours; the caBundle is managed separately (by us or by cert-manager).
    const { caBundle: _omit, ...body } = vwc as { caBundle?: string };
    await client.apply(
      `/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/${configurationName}`,
      {
        ...body,
        webhooks: vwc.webhooks?.map(({ clientConfig, ...w }) => ({
          ...w,
          clientConfig: { ...clientConfig, caBundle: undefined },
        })),
      },
      'cj-operator-webhook',
    );
  }
  const urls = url
    ? Object.fromEntries((vwc.webhooks ?? []).map((w) => [w.name, w.clientConfig.url ?? '']))
    : undefined;
  const server = await startWebhookServer({
    host: config.probeAddress,
    port: Number(env.WEBHOOK_PORT),
    tls:
      env.WEBHOOK_CERT_MODE === 'files'
        ? {
            mode: 'files',
            certFile: `${env.WEBHOOK_CERT_DIR ?? '/tls'}/tls.crt`,
            keyFile: `${env.WEBHOOK_CERT_DIR ?? '/tls'}/tls.key`,
          }
        : {
            mode: 'selfManaged',
            store: new KubeCertStore(client, {
              namespace: config.namespace,
              secretName: env.WEBHOOK_SECRET_NAME || 'cj-operator-webhook-tls',
              webhookConfigurationName: configurationName,
              ...(urls ? { urls } : {}),
            }),
            policy: {
              dnsNames: [...dnsNames, 'localhost'],
              ipAddresses: url ? [url.hostname] : ['127.0.0.1'],
            },
          },
    contextFor: kubeValidationContext(client, { egress: config.egress, platform: platformPolicy(config) }),
    ...(env.WEBHOOK_CLIENT_CA_FILE ? { clientCA: await readFile(env.WEBHOOK_CLIENT_CA_FILE, 'utf8') } : {}),
    log,
  });
  await server.refresh(); // inject the caBundle now that the configuration exists
  log('Serving the validating webhook', { port: server.port });
  return server;
}

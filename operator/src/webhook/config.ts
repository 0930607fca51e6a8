// The ValidatingWebhookConfiguration the operator (or the chart) registers, and the lookups the
// webhook uses against the cluster.
import type * as k8s from '@kubernetes/client-node';
import type { EgressPolicy } from '../../../contract/src/egress.js';
import { GROUP, type LLMProviderPool, RESOURCES, VERSION } from '../api/index.js';
import { isNotFound, type KubeClient, resourcePath } from '../kube/rest.js';
import type { DataObject, ValidationContext } from '../validation/index.js';
import type { PlatformPolicy } from '../validation/platform.js';

export type FailurePolicy = 'Fail' | 'Ignore';

export interface WebhookConfigurationOptions {
  name: string;
  /** Where the apiserver reaches the server: a Service, or a URL (process-based clusters, tests). */
  target: { service: { name: string; namespace: string; port: number } } | { url: string };
  /** Fail: nothing is admitted while the webhook is down. Ignore: CEL still applies; the controller re-validates. */
  failurePolicy?: FailurePolicy;
  timeoutSeconds?: number;
  namespaceSelector?: k8s.V1LabelSelector;
  caBundle?: string; // PEM
}

export const WEBHOOK_PATHS = {
  CJBatch: '/validate-cjbatch',
  LLMProviderPool: '/validate-llmproviderpool',
} as const;

export function webhookConfiguration(o: WebhookConfigurationOptions): k8s.V1ValidatingWebhookConfiguration {
  const hook = (
    kind: keyof typeof WEBHOOK_PATHS,
    resource: string,
    prefix: string,
  ): k8s.V1ValidatingWebhook => ({
    name: `${prefix}.${GROUP}`,
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: o.failurePolicy ?? 'Fail',
    matchPolicy: 'Equivalent',
    timeoutSeconds: o.timeoutSeconds ?? 10,
    clientConfig: {
      ...('url' in o.target
        ? { url: `${o.target.url.replace(/\/$/, '')}${WEBHOOK_PATHS[kind]}` }
        : { service: { ...o.target.service, path: WEBHOOK_PATHS[kind] } }),
      ...(o.caBundle ? { caBundle: Buffer.from(o.caBundle).toString('base64') } : {}),
    },
    rules: [
      {
        apiGroups: [GROUP],
        apiVersions: [VERSION],
        operations: ['CREATE', 'UPDATE'],
        resources: [resource],
        scope: 'Namespaced',
      },
    ],
    ...(o.namespaceSelector ? { namespaceSelector: o.namespaceSelector } : {}),
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: o.name, labels: { 'app.kubernetes.io/managed-by': 'cj-operator' } },
    webhooks: [
      hook('CJBatch', 'cjbatches', 'vcjbatch'),
      hook('LLMProviderPool', 'llmproviderpools', 'vllmproviderpool'),
    ],
  };
}

/** The object, or undefined when it does not exist. */
async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/**
 * ValidationContext backed by the apiserver (needs get on pools and configmaps). Never reads
 * Secrets: admission answers must not reveal whether a Secret or a key exists.
 */
export function kubeValidationContext(
  client: KubeClient,
  opts: { egress?: EgressPolicy; platform?: PlatformPolicy } = {},
) {
  return (namespace: string): ValidationContext => ({
    namespace,
    ...(opts.egress ? { egress: opts.egress } : {}),
    ...(opts.platform ? { platform: opts.platform } : {}),
    getPool: (name) =>
      orUndefined(client.get<LLMProviderPool>(resourcePath(RESOURCES.pools, namespace, name))),
    getConfigMap: (name) =>
      orUndefined(client.get<DataObject>(resourcePath(RESOURCES.configMaps, namespace, name))),
  });
}

// Where each resource the operator and the CLI reach lives in the REST API (group, version,
// plural), in one place: a new CRD version or a renamed plural cannot leave a path behind.
import { GROUP, VERSION } from './common.js';

export const RESOURCES = {
  batches: { group: GROUP, version: VERSION, plural: 'cjbatches' },
  pools: { group: GROUP, version: VERSION, plural: 'llmproviderpools' },
  configMaps: { group: '', version: 'v1', plural: 'configmaps' },
  secrets: { group: '', version: 'v1', plural: 'secrets' },
  jobs: { group: 'batch', version: 'v1', plural: 'jobs' },
  validatingWebhookConfigurations: {
    group: 'admissionregistration.k8s.io',
    version: 'v1',
    plural: 'validatingwebhookconfigurations',
  },
} as const;

/** A pool's key in the store's limiter and share rows: `<namespace>/<name>`. */
export const poolKeyOf = (pool: { metadata: { namespace?: string; name?: string } }) =>
  `${pool.metadata.namespace}/${pool.metadata.name}`;

// CertStore backed by a Secret (tls.crt, tls.key, ca.crt, ca.key) and the
// ValidatingWebhookConfiguration whose caBundle it keeps current.
//
// Both objects may belong to someone else (the Helm chart or the kustomize base render them, so
// that `helm uninstall` / `kubectl delete -k` remove them): then we only fill in what is ours,
// with patches that carry the resourceVersion, never a replace. A replace would drop the owner's
// labels and annotations (Helm's ownership metadata) and the Secret's type is immutable, so an
// existing Secret keeps its type (the chart's is Opaque) and its labels; only `data` and our
// rotation annotation change. Helm's three-way merge keeps fields its manifest does not set, so
// the injected values survive `helm upgrade`.
import type * as k8s from '@kubernetes/client-node';
import { RESOURCES } from '../api/index.js';
import { CONTENT_TYPE, isConflict, isNotFound, type KubeClient, resourcePath } from '../kube/rest.js';
import type { CertStore, StoredCerts } from './rotation.js';

export interface KubeCertStoreOptions {
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
  /**
   * Webhook name → clientConfig.url the apiserver must call. Only for URL targets whose address
   * is known at run time (`WEBHOOK_URL=https://$(POD_IP):9443`): a rendered configuration carries
   * the placeholder and we patch the real address in with the caBundle.
   */
  urls?: Record<string, string>;
}

const ROTATED_AT = 'cj.huleedu.io/ca-rotated-at';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const { secrets: SECRETS, validatingWebhookConfigurations: VWCS } = RESOURCES;
/** The object, or undefined when it does not exist. */
const orMissing = <T>(p: Promise<T>): Promise<T | undefined> =>
  p.catch((e) => {
    if (isNotFound(e)) return undefined;
    throw e;
  });

export class KubeCertStore implements CertStore {
  constructor(
    private readonly client: KubeClient,
    private readonly opts: KubeCertStoreOptions,
  ) {}

  private secretPath(name?: string) {
    return resourcePath(SECRETS, this.opts.namespace, name);
  }

  async load() {
    const s = await orMissing(this.client.get<k8s.V1Secret>(this.secretPath(this.opts.secretName)));
    if (!s) return undefined;
    const d = s.data ?? {};
    if (!d['tls.crt'] || !d['tls.key'] || !d['ca.crt'] || !d['ca.key']) return undefined; // foreign or partial: replace
    const certs: StoredCerts = {
      caBundle: unb64(d['ca.crt']),
      caKey: unb64(d['ca.key']),
      tlsCert: unb64(d['tls.crt']),
      tlsKey: unb64(d['tls.key']),
      caRotatedAt: s.metadata?.annotations?.[ROTATED_AT],
    };
    return { certs, version: s.metadata!.resourceVersion! };
  }

  async save(certs: StoredCerts, version: string | undefined): Promise<boolean> {
    const data = {
      'tls.crt': b64(certs.tlsCert),
      'tls.key': b64(certs.tlsKey),
      'ca.crt': b64(certs.caBundle),
      'ca.key': b64(certs.caKey),
    };
    const { namespace, secretName: name } = this.opts;
    try {
      if (version === undefined) {
        // load() found nothing usable. Read first instead of trying a create: where the
        // installer renders the Secret we may hold no create permission at all.
        const cur = await orMissing(this.client.get<k8s.V1Secret>(this.secretPath(name)));
        if (!cur) {
          await this.client.create(this.secretPath(), {
            apiVersion: 'v1',
            kind: 'Secret',
            type: 'kubernetes.io/tls',
            metadata: {
              name,
              namespace,
              labels: {
                'app.kubernetes.io/managed-by': 'cj-operator',
                'app.kubernetes.io/component': 'webhook',
              },
              annotations: certs.caRotatedAt ? { [ROTATED_AT]: certs.caRotatedAt } : {},
            },
            data,
          });
          return true;
        }
        // Rendered empty by the installer, or partial.
        if (cur.data?.['tls.crt'] && cur.data['ca.key']) return false; // another replica won
        version = cur.metadata!.resourceVersion!;
      }
      // resourceVersion in a merge patch is a precondition: 409 when someone wrote in between.
      await this.client.mergePatch(this.secretPath(name), {
        metadata: { resourceVersion: version, annotations: { [ROTATED_AT]: certs.caRotatedAt ?? null } },
        data,
      });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  async injectCABundle(bundle: string): Promise<void> {
    const want = b64(bundle);
    const name = this.opts.webhookConfigurationName;
    for (let attempt = 0; attempt < 5; attempt++) {
      const cfg = await orMissing(
        this.client.get<k8s.V1ValidatingWebhookConfiguration>(resourcePath(VWCS, undefined, name)),
      );
      // Not registered yet (the chart or the installer creates it): the next check injects.
      if (!cfg) return;
      const changes = (cfg.webhooks ?? []).flatMap((h) => {
        const url = this.opts.urls?.[h.name];
        const clientConfig: Record<string, string> = {};
        if (h.clientConfig.caBundle !== want) clientConfig.caBundle = want;
        if (url && h.clientConfig.url !== url) clientConfig.url = url;
        return Object.keys(clientConfig).length ? [{ name: h.name, clientConfig }] : [];
      });
      if (changes.length === 0) return;
      try {
        // Strategic merge: webhooks merge by name, so only these two fields change.
        await this.client.request(
          'PATCH',
          resourcePath(VWCS, undefined, name),
          { metadata: { resourceVersion: cfg.metadata!.resourceVersion }, webhooks: changes },
          CONTENT_TYPE.strategicMergePatch,
        );
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    throw new Error(`could not update caBundle of ${name}: 5 conflicts`);
  }
}

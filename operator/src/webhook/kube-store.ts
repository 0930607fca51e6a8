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
import * as k8s from '@kubernetes/client-node';
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
const code = (e: unknown) => (e as { code?: number }).code;
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const strategicMergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

export class KubeCertStore implements CertStore {
  private readonly core: k8s.CoreV1Api;
  private readonly admission: k8s.AdmissionregistrationV1Api;

  constructor(
    kc: k8s.KubeConfig,
    private readonly opts: KubeCertStoreOptions,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.admission = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
  }

  async load() {
    let s: k8s.V1Secret;
    try {
      s = await this.core.readNamespacedSecret({
        name: this.opts.secretName,
        namespace: this.opts.namespace,
      });
    } catch (e) {
      if (code(e) === 404) return undefined;
      throw e;
    }
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
        let cur: k8s.V1Secret | undefined;
        try {
          cur = await this.core.readNamespacedSecret({ name, namespace });
        } catch (e) {
          if (code(e) !== 404) throw e;
        }
        if (!cur) {
          await this.core.createNamespacedSecret({
            namespace,
            body: {
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
            },
          });
          return true;
        }
        // Rendered empty by the installer, or partial.
        if (cur.data?.['tls.crt'] && cur.data['ca.key']) return false; // another replica won
        version = cur.metadata!.resourceVersion!;
      }
      // resourceVersion in a merge patch is a precondition: 409 when someone wrote in between.
      await this.core.patchNamespacedSecret(
        {
          name,
          namespace,
          body: {
            metadata: { resourceVersion: version, annotations: { [ROTATED_AT]: certs.caRotatedAt ?? null } },
            data,
          },
        },
        mergePatch,
      );
      return true;
    } catch (e) {
      if (code(e) === 409) return false;
      throw e;
    }
  }

  async injectCABundle(bundle: string): Promise<void> {
    const want = b64(bundle);
    const name = this.opts.webhookConfigurationName;
    for (let attempt = 0; attempt < 5; attempt++) {
      let cfg: k8s.V1ValidatingWebhookConfiguration;
      try {
        cfg = await this.admission.readValidatingWebhookConfiguration({ name });
      } catch (e) {
        // Not registered yet (the chart or the installer creates it): the next check injects.
        if (code(e) === 404) return;
        throw e;
      }
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
        await this.admission.patchValidatingWebhookConfiguration(
          { name, body: { metadata: { resourceVersion: cfg.metadata!.resourceVersion }, webhooks: changes } },
          strategicMergePatch,
        );
        return;
      } catch (e) {
        if (code(e) !== 409) throw e;
      }
    }
    throw new Error(`could not update caBundle of ${name}: 5 conflicts`);
  }
}

// CertStore backed by a Secret (type kubernetes.io/tls, plus ca.key) and the
// ValidatingWebhookConfiguration whose caBundle it keeps current.
import * as k8s from '@kubernetes/client-node';
import type { CertStore, StoredCerts } from './rotation.js';

export interface KubeCertStoreOptions {
  namespace: string;
  secretName: string;
  webhookConfigurationName: string;
}

const ROTATED_AT = 'cj.huleedu.io/ca-rotated-at';
const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString('utf8') : '');
const code = (e: unknown) => (e as { code?: number }).code;

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
    const body: k8s.V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: {
        name: this.opts.secretName,
        namespace: this.opts.namespace,
        resourceVersion: version,
        labels: { 'app.kubernetes.io/managed-by': 'cj-operator', 'app.kubernetes.io/component': 'webhook' },
        annotations: certs.caRotatedAt ? { [ROTATED_AT]: certs.caRotatedAt } : {},
      },
      data: {
        'tls.crt': b64(certs.tlsCert),
        'tls.key': b64(certs.tlsKey),
        'ca.crt': b64(certs.caBundle),
        'ca.key': b64(certs.caKey),
      },
    };
    try {
      if (version === undefined) {
        try {
          await this.core.createNamespacedSecret({ namespace: this.opts.namespace, body });
        } catch (e) {
          // An existing Secret we could not use (partial): replace it unconditionally.
          if (code(e) !== 409) throw e;
          const cur = await this.core.readNamespacedSecret({
            name: this.opts.secretName,
            namespace: this.opts.namespace,
          });
          if (cur.data?.['tls.crt'] && cur.data['ca.key']) return false; // another replica won
          body.metadata!.resourceVersion = cur.metadata!.resourceVersion;
          await this.core.replaceNamespacedSecret({
            name: this.opts.secretName,
            namespace: this.opts.namespace,
            body,
          });
        }
      } else {
        await this.core.replaceNamespacedSecret({
          name: this.opts.secretName,
          namespace: this.opts.namespace,
          body,
        });
      }
      return true;
    } catch (e) {
      if (code(e) === 409) return false;
      throw e;
    }
  }

  async injectCABundle(bundle: string): Promise<void> {
    const want = b64(bundle);
    for (let attempt = 0; attempt < 5; attempt++) {
      let cfg: k8s.V1ValidatingWebhookConfiguration;
      try {
        cfg = await this.admission.readValidatingWebhookConfiguration({
          name: this.opts.webhookConfigurationName,
        });
      } catch (e) {
        // Not registered yet (the chart or the installer creates it): the next check injects.
        if (code(e) === 404) return;
        throw e;
      }
      const hooks = cfg.webhooks ?? [];
      if (hooks.every((h) => h.clientConfig.caBundle === want)) return;
      for (const h of hooks) h.clientConfig.caBundle = want;
      try {
        await this.admission.replaceValidatingWebhookConfiguration({
          name: this.opts.webhookConfigurationName,
          body: cfg,
        });
        return;
      } catch (e) {
        if (code(e) !== 409) throw e;
      }
    }
    throw new Error(`could not update caBundle of ${this.opts.webhookConfigurationName}: 5 conflicts`);
  }
}

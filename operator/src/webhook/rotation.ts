// Self-managed webhook certificates: a CA and a serving certificate kept in one Secret (shared by
// every operator replica), the CA injected as caBundle into the ValidatingWebhookConfiguration,
// and both rotated before they expire without a refused request:
//
// - the serving certificate is re-issued from the same CA: the apiserver already trusts it, so
//   the server swaps its secure context at once;
// - the CA is rotated in two steps: first the new CA joins the caBundle next to the old one while
//   the old serving certificate stays in use; only after `caPropagation` (time for the apiserver
//   to see the new bundle) is the serving certificate re-issued from the new CA. The old CA leaves
//   the bundle when it expires.
//
// Writes use the Secret's resourceVersion; on a conflict (another replica rotated first) we
// re-read and use what the winner stored.
import { X509Certificate } from 'node:crypto';
import { generateCA, generateServingCert, issuedBy, type KeyPair, notAfter, splitPem } from './certs.js';

export interface StoredCerts {
  /** CA bundle, newest first. */
  caBundle: string;
  /** Key of the newest CA (signs serving certificates). */
  caKey: string;
  tlsCert: string;
  tlsKey: string;
  /** When the newest CA was added (ISO time); the serving cert moves to it after caPropagation. */
  caRotatedAt?: string | undefined;
}

export interface CertStore {
  /** Returns the stored certificates and an opaque version for optimistic writes. */
  load(): Promise<{ certs: StoredCerts; version: string } | undefined>;
  /** Creates (version undefined) or replaces; returns false on a conflict. */
  save(certs: StoredCerts, version: string | undefined): Promise<boolean>;
  /** Sets caBundle on every webhook of the configuration (no-op when already equal). */
  injectCABundle(bundle: string): Promise<void>;
}

export interface RotationPolicy {
  dnsNames: string[];
  ipAddresses: string[];
  servingValidityDays: number;
  caValidityDays: number;
  /** Re-issue the serving certificate when it expires within this many ms. */
  renewBeforeMs: number;
  /** Start a CA rotation when the CA expires within this many ms. */
  caRenewBeforeMs: number;
  /** Wait this long after adding a new CA to the bundle before serving a cert it signed. */
  caPropagationMs: number;
}

export const DEFAULT_POLICY: Omit<RotationPolicy, 'dnsNames' | 'ipAddresses'> = {
  servingValidityDays: 90,
  caValidityDays: 3650,
  renewBeforeMs: 30 * 24 * 3600_000,
  caRenewBeforeMs: 180 * 24 * 3600_000,
  caPropagationMs: 60_000,
};

export type Clock = () => Date;

/**
 * Brings the stored certificates up to date and returns the serving pair to use.
 * Idempotent: replicas can all call it on a timer.
 */
export async function ensureCerts(store: CertStore, policy: RotationPolicy, now: Clock = () => new Date()) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const loaded = await store.load();
    const next = await plan(loaded?.certs, policy, now());
    if (next && !(await store.save(next, loaded?.version))) continue; // lost a race: re-read
    const certs = next ?? loaded!.certs;
    await store.injectCABundle(certs.caBundle);
    return { serving: { cert: certs.tlsCert, key: certs.tlsKey } satisfies KeyPair, certs, changed: !!next };
  }
  throw new Error('could not store webhook certificates: the Secret kept changing (5 conflicts)');
}

/** The new stored state, or undefined when nothing needs to change. */
async function plan(
  cur: StoredCerts | undefined,
  p: RotationPolicy,
  now: Date,
): Promise<StoredCerts | undefined> {
  const serving = () => ({
    dnsNames: p.dnsNames,
    ipAddresses: p.ipAddresses,
    validityDays: p.servingValidityDays,
  });
  if (!cur) {
    const ca = await generateCA('cj-operator-webhook-ca', p.caValidityDays);
    const tls = await generateServingCert(ca, serving());
    return {
      caBundle: ca.cert,
      caKey: ca.key,
      tlsCert: tls.cert,
      tlsKey: tls.key,
      caRotatedAt: now.toISOString(),
    };
  }
  let next: StoredCerts = { ...cur };
  let changed = false;
  // Drop expired CAs; they can no longer verify anything.
  const live = splitPem(cur.caBundle).filter((c) => notAfter(c) > now);
  if (live.length === 0) {
    return plan(undefined, p, now); // everything expired: start over (the bundle is replaced at once)
  }
  if (live.join('') !== cur.caBundle) {
    next.caBundle = live.join('');
    changed = true;
  }
  const newestCA = live[0]!;
  const onNewest = issuedBy(cur.tlsCert, newestCA);
  const expiring = notAfter(cur.tlsCert).getTime() - now.getTime() < p.renewBeforeMs;
  const wrongNames = !sameNames(cur.tlsCert, p);
  const propagated =
    now.getTime() - Date.parse(cur.caRotatedAt ?? '1970-01-01T00:00:00Z') >= p.caPropagationMs;
  // Re-issue from the newest CA when the serving cert is expiring or has the wrong names, or when
  // it is still on an older CA and the newest one has had time to reach the apiserver. (An
  // expiring cert on an older CA whose successor has not propagated yet keeps serving: its CA key
  // is gone, and the next check after caPropagation replaces it.)
  if ((onNewest && (expiring || wrongNames)) || (!onNewest && propagated)) {
    const tls = await generateServingCert({ cert: newestCA, key: next.caKey }, serving());
    next = { ...next, tlsCert: tls.cert, tlsKey: tls.key };
    changed = true;
  }
  // Start a CA rotation: the new CA joins the bundle first; the serving cert follows later.
  if (notAfter(newestCA).getTime() - now.getTime() < p.caRenewBeforeMs) {
    const ca = await generateCA('cj-operator-webhook-ca', p.caValidityDays);
    next = { ...next, caBundle: ca.cert + next.caBundle, caKey: ca.key, caRotatedAt: now.toISOString() };
    changed = true;
  }
  return changed ? next : undefined;
}

function sameNames(cert: string, p: RotationPolicy): boolean {
  const san = new X509Certificate(cert).subjectAltName ?? '';
  const have = new Set(san.split(', ').filter(Boolean));
  const want = [...p.dnsNames.map((d) => `DNS:${d}`), ...p.ipAddresses.map((ip) => `IP Address:${ip}`)];
  return want.every((w) => have.has(w));
}

/** In-memory store for tests and for a single process without a cluster. */
export class MemoryCertStore implements CertStore {
  certs: StoredCerts | undefined;
  version = 0;
  bundle = '';
  async load() {
    return this.certs ? { certs: this.certs, version: String(this.version) } : undefined;
  }
  async save(certs: StoredCerts, version: string | undefined) {
    if ((version ?? '') !== (this.certs ? String(this.version) : '')) return false;
    this.certs = certs;
    this.version++;
    return true;
  }
  async injectCABundle(bundle: string) {
    this.bundle = bundle;
  }
}

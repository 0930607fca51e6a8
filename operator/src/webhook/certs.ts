// Certificates for the webhook's serving endpoint, made in-process with @peculiar/x509 on Node's
// WebCrypto (Node can read X.509 but not create it; the runtime image has no `openssl` binary).
// EC P-256 keys: fast to generate and accepted by the apiserver's Go TLS stack.
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs this polyfill
// loaded first.
import 'reflect-metadata';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The library's types name the DOM's Crypto; Node's webcrypto is that API.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKey = webcrypto.CryptoKey;

export interface KeyPair {
  cert: string; // PEM
  key: string; // PEM
}

export interface ServingCertOptions {
  dnsNames: string[];
  ipAddresses: string[];
  validityDays: number;
}

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;
// Back-dated a little: a node whose clock runs behind ours must not see a not-yet-valid cert.
const SKEW_MS = 5 * 60_000;

const newKeys = () =>
  webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64.replace(/\n$/, '')}\n-----END PRIVATE KEY-----\n`;
}

/** Any PEM private key (PKCS#8, or SEC1 from older releases' openssl) as a WebCrypto signing key. */
function signingKey(pem: string): Promise<CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC, false, ['sign']) as Promise<CryptoKey>;
}

// Positive 128-bit serial (RFC 5280: at most 20 octets, non-negative).
const serial = () =>
  randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '1');

const validity = (days: number) => {
  const now = Date.now();
  return { notBefore: new Date(now - SKEW_MS), notAfter: new Date(now + days * DAY) };
};

export async function generateCA(commonName: string, validityDays: number): Promise<KeyPair> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: [{ CN: [commonName] }],
    ...validity(validityDays),
    signingAlgorithm: EC,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

export async function generateServingCert(ca: KeyPair, opts: ServingCertOptions): Promise<KeyPair> {
  if (opts.dnsNames.length + opts.ipAddresses.length === 0)
    throw new Error('a serving certificate needs a DNS name or IP');
  const issuer = new x509.X509Certificate(ca.cert);
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: [{ CN: [opts.dnsNames[0] ?? opts.ipAddresses[0]!] }],
    issuer: issuer.subject,
    ...validity(opts.validityDays),
    signingAlgorithm: EC,
    publicKey: keys.publicKey,
    signingKey: await signingKey(ca.key),
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        ...opts.dnsNames.map((value) => ({ type: 'dns' as const, value })),
        ...opts.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
      ]),
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(issuer),
    ],
  });
  return { cert: cert.toString('pem'), key: await keyPem(keys.privateKey) };
}

/** Splits a PEM bundle into its certificates (newest CA first by our convention). */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

export const notAfter = (pem: string) => new Date(new X509Certificate(pem).validTo);

export const serialOf = (pem: string) => new X509Certificate(pem).serialNumber;

/** True when `cert` was signed by the key of `ca`. */
export function issuedBy(cert: string, ca: string): boolean {
  const c = new X509Certificate(cert);
  const a = new X509Certificate(ca);
  return c.checkIssued(a) && c.verify(a.publicKey);
}

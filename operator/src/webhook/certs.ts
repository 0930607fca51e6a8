// Certificates for the webhook's serving endpoint, made with the `openssl` CLI (Node can read
// X.509 but not create it, and we add no dependency for it). EC P-256 keys: fast to generate and
// accepted by the apiserver's Go TLS stack.
import { execFile } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface KeyPair {
  cert: string; // PEM
  key: string; // PEM
}

export interface ServingCertOptions {
  dnsNames: string[];
  ipAddresses: string[];
  validityDays: number;
}

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cj-webhook-certs-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { timeout: 30_000 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr || err.message}`);
  }
}

export async function generateCA(commonName: string, validityDays: number): Promise<KeyPair> {
  return withTmp(async (dir) => {
    const key = path.join(dir, 'ca.key');
    const cert = path.join(dir, 'ca.crt');
    await openssl([
      'req',
      '-x509',
      '-new',
      ...EC,
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      String(validityDays),
      '-subj',
      `/CN=${commonName}`,
      '-set_serial',
      serial(),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return { cert: await readFile(cert, 'utf8'), key: await readFile(key, 'utf8') };
  });
}

export async function generateServingCert(ca: KeyPair, opts: ServingCertOptions): Promise<KeyPair> {
  if (opts.dnsNames.length + opts.ipAddresses.length === 0)
    throw new Error('a serving certificate needs a DNS name or IP');
  return withTmp(async (dir) => {
    const f = (n: string) => path.join(dir, n);
    await writeFile(f('ca.crt'), ca.cert);
    await writeFile(f('ca.key'), ca.key, { mode: 0o600 });
    const san = [...opts.dnsNames.map((d) => `DNS:${d}`), ...opts.ipAddresses.map((ip) => `IP:${ip}`)].join(
      ',',
    );
    await writeFile(
      f('ext.cnf'),
      `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
    );
    const cn = opts.dnsNames[0] ?? opts.ipAddresses[0]!;
    await openssl([
      'req',
      '-new',
      ...EC,
      '-keyout',
      f('tls.key'),
      '-out',
      f('tls.csr'),
      '-subj',
      `/CN=${cn}`,
    ]);
    await openssl([
      'x509',
      '-req',
      '-in',
      f('tls.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-set_serial',
      serial(),
      '-days',
      String(opts.validityDays),
      '-extfile',
      f('ext.cnf'),
      '-out',
      f('tls.crt'),
    ]);
    return { cert: await readFile(f('tls.crt'), 'utf8'), key: await readFile(f('tls.key'), 'utf8') };
  });
}

const serial = () =>
  `0x${randomBytes(16)
    .toString('hex')
    .replace(/^[89a-f]/, '1')}`;

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

// Certificates for the local control plane, made with the `openssl` CLI: a CA, the apiserver's
// serving certificate (loopback SANs), an admin client certificate (system:masters) and the
// service-account signing key pair.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const SCRIPT = `
set -euo pipefail
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout ca.key -out ca.crt -subj "/CN=cj-local-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out apiserver.crt \\
  -extfile <(printf "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\\nextendedKeyUsage=serverAuth") 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 -out admin.crt \\
  -extfile <(printf "extendedKeyUsage=clientAuth") 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null && openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
`;

export function makeCerts(dir: string): void {
  if (existsSync(path.join(dir, 'sa.pub'))) return;
  execFileSync('bash', ['-c', SCRIPT], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** A kubeconfig usable as is by kubectl, helm, kube-controller-manager and @kubernetes/client-node. */
export function writeKubeconfig(
  file: string,
  server: string,
  caFile: string,
  user: { certFile: string; keyFile: string } | { token: string },
  namespace = 'default',
): void {
  const userYaml =
    'token' in user
      ? `    token: ${user.token}`
      : `    client-certificate: ${user.certFile}\n    client-key: ${user.keyFile}`;
  writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: cj-local
  cluster:
    server: ${server}
    certificate-authority: ${caFile}
users:
- name: cj-user
  user:
${userYaml}
contexts:
- name: cj-local
  context:
    cluster: cj-local
    user: cj-user
    namespace: ${namespace}
current-context: cj-local
`,
    { mode: 0o600 },
  );
}

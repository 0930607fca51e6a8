// The real Kubernetes control plane, run as plain processes on loopback: etcd (data on tmpfs),
// kube-apiserver (RBAC, admission webhooks, ValidatingAdmissionPolicy) and
// kube-controller-manager (Job, garbage collector, namespace, Deployment, ReplicaSet,
// TTL-after-finished, service-account and token controllers, ...). Flags follow envtest's, with
// what the controllers above need.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  alive,
  freePort,
  httpOk,
  type Started,
  sleep,
  startDetached,
  stopPid,
  waitUntil,
} from '../lib/proc.js';
import { requireTool, toolPaths } from '../lib/tools.js';
import { makeCerts, writeKubeconfig } from './certs.js';

export interface ControlPlane {
  dir: string;
  apiPort: number;
  server: string;
  kubeconfig: string;
  caFile: string;
  processes: Started[];
}

export async function startControlPlane(dir: string): Promise<ControlPlane> {
  const tools = toolPaths();
  const etcdBin = requireTool(tools.etcd, 'etcd');
  const apiBin = requireTool(tools.kubeApiserver, 'kube-apiserver');
  const kcmBin = requireTool(tools.kubeControllerManager, 'kube-controller-manager');
  const pki = path.join(dir, 'pki');
  mkdirSync(pki, { recursive: true });
  makeCerts(pki);
  const f = (n: string) => path.join(pki, n);
  const processes: Started[] = [];

  // etcd
  const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  // The flag list is on stdout; the usage banner on stderr is noise in every test run's output.
  const etcdHelp = execFileSync(etcdBin, ['--help'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const etcd = startDetached(
    'etcd',
    etcdBin,
    [
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
      '--log-level=warn',
      ...(etcdHelp.includes('unsafe-no-fsync') ? ['--unsafe-no-fsync=true'] : []),
    ],
    path.join(dir, 'etcd.log'),
  );
  processes.push(etcd);
  await waitUntil(etcd, () => httpOk(`http://127.0.0.1:${etcdPort}/health`));

  // kube-apiserver
  const api = startDetached(
    'kube-apiserver',
    apiBin,
    [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--cert-dir=${pki}`,
      `--tls-cert-file=${f('apiserver.crt')}`,
      `--tls-private-key-file=${f('apiserver.key')}`,
      `--client-ca-file=${f('ca.crt')}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=https://127.0.0.1:${apiPort}/`,
      `--service-account-key-file=${f('sa.pub')}`,
      `--service-account-signing-key-file=${f('sa.key')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook,MutatingAdmissionWebhook,PodSecurity',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v=1',
    ],
    path.join(dir, 'kube-apiserver.log'),
  );
  processes.push(api);
  const tls = {
    ca: readFileSync(f('ca.crt')),
    cert: readFileSync(f('admin.crt')),
    key: readFileSync(f('admin.key')),
  };
  const server = `https://127.0.0.1:${apiPort}`;
  await waitUntil(api, () => httpOk(`${server}/readyz`, tls));
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  writeKubeconfig(kubeconfig, server, f('ca.crt'), { certFile: f('admin.crt'), keyFile: f('admin.key') });

  // kube-controller-manager: every default controller except node lifecycle (our process
  // kubelet does not renew node leases the way a kubelet must for eviction decisions).
  const kcm = startDetached(
    'kube-controller-manager',
    kcmBin,
    [
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--service-account-private-key-file=${f('sa.key')}`,
      `--root-ca-file=${f('ca.crt')}`,
      '--use-service-account-credentials=false',
      '--controllers=*,-node-lifecycle-controller,-cloud-node-lifecycle-controller',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      '--concurrent-job-syncs=10',
      '--v=1',
    ],
    path.join(dir, 'kube-controller-manager.log'),
  );
  processes.push(kcm);
  // Ready when the service-account controller has made `default/default`.
  await waitUntil(kcm, async () => {
    try {
      // Synchronous, so bounded here: waitUntil cannot cut a blocked event loop short.
      execFileSync(
        'kubectl',
        [
          '--kubeconfig',
          kubeconfig,
          '--request-timeout=5s',
          'get',
          'serviceaccount',
          'default',
          '-n',
          'default',
        ],
        { stdio: 'ignore', timeout: 10_000 },
      );
      return true;
    } catch {
      return false;
    }
  });
  return { dir, apiPort, server, kubeconfig, caFile: f('ca.crt'), processes };
}

export interface EtcdRestart {
  process: Started;
  /** From the stop signal until the restarted etcd answered /health. */
  downMs: number;
}

/**
 * Stops etcd (pid `current`) and starts it again with the same arguments (read from
 * /proc/<pid>/cmdline: same data directory, same ports) after `downMs`. `mode` 'crash' is SIGKILL,
 * otherwise SIGTERM. The apiserver keeps running and reconnects by itself.
 */
export async function restartEtcdProcess(
  current: Started,
  opts: { downMs?: number; mode?: 'graceful' | 'crash' } = {},
): Promise<EtcdRestart> {
  const argv = readFileSync(`/proc/${current.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const bin = argv[0]!;
  const args = argv.slice(1);
  const client = args.find((a) => a.startsWith('--listen-client-urls='))?.split('=')[1];
  if (!client) throw new Error(`etcd (pid ${current.pid}) has no --listen-client-urls in its command line`);
  const t0 = Date.now();
  if (opts.mode === 'crash') {
    try {
      process.kill(current.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (alive(current.pid)) await sleep(50);
  } else await stopPid(current.pid, 10_000);
  const wait = (opts.downMs ?? 0) - (Date.now() - t0);
  if (wait > 0) await sleep(wait);
  const etcd = startDetached('etcd', bin, args, current.log);
  await waitUntil(etcd, () => httpOk(`${client}/health`));
  return { process: etcd, downMs: Date.now() - t0 };
}

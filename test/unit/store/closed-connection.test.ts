// postgres.js 3.4.9 ends the process when a statement is sent on a connection whose backend died
// (upstream porsager/postgres#1208): a reserved connection, or a transaction whose statement
// failed (begin then sends ROLLBACK on it). The vendored copy (vendor/postgres/PATCHES.md) rejects
// such a statement with CONNECTION_CLOSED instead. In a child process: an uncaught exception ends
// it, where in vitest's process it could be caught and reported elsewhere.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDb } from '../worker/pg.js';

const root = path.resolve(import.meta.dirname, '../../..');
const CHILD = path.join(import.meta.dirname, 'closed-connection-child.ts');

const db = useTestDb();

function run(scenario: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, scenario], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: db.url, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a statement on a connection whose backend died', () => {
  it('on a reserved connection: rejects with CONNECTION_CLOSED, the process lives', async () => {
    const r = await run('reserved');
    expect(r.stderr).not.toContain('TypeError');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'CONNECTION_CLOSED' });
  });

  it('in a transaction (its ROLLBACK): the transaction rejects, the process lives', async () => {
    const r = await run('begin');
    expect(r.stderr).not.toContain('TypeError');
    expect(r.code, r.stderr).toBe(0);
    const { outcome } = JSON.parse(r.stdout) as { outcome: string };
    expect(['CONNECTION_CLOSED', 'ECONNRESET', '57P01']).toContain(outcome);
  });
});

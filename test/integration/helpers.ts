// Helpers for integration tests: kubectl against the local stack, a namespace per test file,
// and polling with a clear timeout message.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { KubeApi } from '../../hack/lib/kubeapi.js';

export const stack = () => inject('stack');
export const api = () => KubeApi.fromFile(stack().kubeconfig);

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs kubectl with the stack's kubeconfig; never throws on a non-zero exit (tests assert on it). */
export function kubectl(args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', stack().kubeconfig, ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** A fresh namespace whose default ServiceAccount exists (pods need it), removed by the caller. */
export async function newNamespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kubectlOk(['create', 'namespace', ns]);
  await waitFor(
    `serviceaccount default in ${ns}`,
    async () => (await kubectl(['get', 'sa', 'default', '-n', ns])).code === 0,
  );
  return ns;
}

export async function deleteNamespace(ns: string): Promise<void> {
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `; last error: ${last}` : ''}`,
  );
}

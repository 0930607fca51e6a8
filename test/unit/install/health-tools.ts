// The health-check tools `npm run tools` builds from hack/health (hack/tools/build-health.sh):
// argocd-health runs our Argo CD Lua health checks with gopher-lua the way Argo CD does, kstatus
// runs cli-utils' status.Compute. Missing or older than their sources: fail with the fix.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, requireTool, toolPaths } from '../../../hack/lib/tools.js';

export interface Health {
  status: string;
  message: string;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function tool(name: 'argocd-health' | 'kstatus'): string {
  const { cache, versions } = toolPaths();
  const bin = requireTool(
    path.join(
      cache,
      'health',
      `lua-${versions.GOPHER_LUA_VERSION}-kstatus-${versions.CLI_UTILS_VERSION}`,
      name,
    ),
    name,
  );
  if (newestSource(path.join(repoRoot, 'hack/health')) > statSync(bin).mtimeMs)
    throw new Error(`${bin} is older than hack/health: run \`npm run tools\` to rebuild it`);
  return bin;
}

const run = (bin: string, args: string[], obj: unknown): Health =>
  JSON.parse(execFileSync(bin, args, { input: JSON.stringify(obj), encoding: 'utf8', stdio: 'pipe' }));

/** Argo CD's verdict on `obj` with config/health/<kind>.lua. */
export function argoHealth(obj: Record<string, any>): Health {
  const script = path.join(repoRoot, 'config/health', `${String(obj.kind).toLowerCase()}.lua`);
  return run(tool('argocd-health'), [script], obj);
}

/** kstatus (Flux health checks, kpt, cli-utils) on `obj`. */
export function kstatus(obj: unknown): Health {
  return run(tool('kstatus'), [], obj);
}

// What the e2e tier talks to: the kind cluster `npm run e2e:kind` (hack/kind/e2e.sh) made, through
// the kubectl and helm it built, with the images it built and loaded. Run outside that script the
// suite fails at once and says so: it never skips.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../hack/lib/tools.js';

const need = (name: string): string => {
  const v = process.env[name];
  if (!v)
    throw new Error(
      `${name} is not set: the e2e tier runs on the kind cluster that \`npm run e2e:kind\` creates (hack/kind/e2e.sh sets it)`,
    );
  return v;
};

export const env = {
  kubeconfig: need('CJ_E2E_KUBECONFIG'),
  image: need('CJ_E2E_IMAGE'),
  imageId: need('CJ_E2E_IMAGE_ID'),
  judgeImage: need('CJ_E2E_JUDGE_IMAGE'),
  postgresImage: need('CJ_E2E_POSTGRES_IMAGE'),
  kafkaImage: need('CJ_E2E_KAFKA_IMAGE'),
  kubectl: need('CJ_E2E_KUBECTL'),
  helm: need('CJ_E2E_HELM'),
  // The kind node's container (for crictl), on the Docker engine DOCKER_HOST names.
  node: need('CJ_E2E_NODE'),
};

export const CHART = path.join(repoRoot, 'charts/cj-operator');
export const SAMPLES = path.join(repoRoot, 'config/samples');
// kubectl finds `kubectl-cj` on PATH: test/e2e/bin holds a shim that runs the plugin's source.
const PATH = `${path.join(repoRoot, 'test/e2e/bin')}:${process.env.PATH}`;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], input?: string, timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      bin,
      args,
      {
        cwd: repoRoot,
        env: { ...process.env, KUBECONFIG: env.kubeconfig, PATH },
        maxBuffer: 64 << 20,
        timeout: timeoutMs,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export const kubectl = (args: string[], input?: string) => run(env.kubectl, args, input);
export const helm = (args: string[]) => run(env.helm, args, undefined, 600_000);
export const dockerExecNode = (args: string[]) => run('docker', ['exec', env.node, ...args]);

/** Runs and returns stdout; a non-zero exit throws with the command and its stderr. */
export async function ok(p: Promise<Run>, what: string): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}
export const kubectlOk = (args: string[], input?: string) =>
  ok(kubectl(args, input), `kubectl ${args.join(' ')}`);
export const helmOk = (args: string[]) => ok(helm(args), `helm ${args.join(' ')}`);

export async function getJson<T = any>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk(['get', ...args, '-o', 'json']));
}

/** A probe's error that no amount of waiting can fix (a Failed batch): waitFor rethrows it at once. */
export class Fatal extends Error {}

/** Polls until `probe` returns a value (not undefined/false); on timeout throws naming `what`. */

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 120_000,
  everyMs = 1_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      if (e instanceof Fatal) throw e;
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

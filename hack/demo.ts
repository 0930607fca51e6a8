// `npm run demo`: the whole system on this machine, installed the way users install it. Starts (or
// reuses) the local stack, `helm upgrade --install`s the chart (the operator runs as a Deployment
// pod of the process kubelet; image cj-operator:dev is this checkout's dist/), runs the fake
// Anthropic judge, prints `kubectl cj estimate` for the sample batch (40 essays, 12 anchors), applies
// it, follows it with `kubectl cj status` (which ends with the estimate beside the actuals) and
// prints `kubectl cj results` and `kubectl cj explain`.
//   npm run demo                          fake judge (no key needed)
//   npm run demo -- --provider anthropic  the real API; needs ANTHROPIC_API_KEY
//   npm run demo -- --stack NAME          use another running stack (the integration test does)
//   npm run demo -- --no-build            skip the TypeScript build (already built)
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { startDetached } from './lib/proc.js';
import { repoRoot, requireTool, toolPaths } from './lib/tools.js';
import { readExtras, readStack, startStack, writeExtras } from './stack.js';

const NS = 'cj-demo';
const RELEASE = 'cj-demo';
const FAKE_PORT = 8089;
const BATCH = 'sample-demo';
const CRDS = ['cjbatches.cj.huleedu.io', 'llmproviderpools.cj.huleedu.io'];

const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const provider = flag('--provider') ?? 'fake';
const stackName = flag('--stack') ?? 'dev';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, input?: string) {
  return execFileSync(cmd, args, {
    cwd: repoRoot,
    env,
    input,
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'inherit'],
  }).toString();
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

async function main() {
  if (provider !== 'fake' && provider !== 'anthropic') {
    console.error(`--provider must be "fake" or "anthropic", not "${provider}"`);
    process.exit(2);
  }
  if (provider === 'anthropic' && !process.env.ANTHROPIC_API_KEY) {
    console.error('--provider anthropic needs ANTHROPIC_API_KEY in the environment');
    process.exit(2);
  }
  console.log('▶ tools (built once, cached in ~/.cache/cj-operator)');
  execFileSync('bash', ['hack/tools/tools.sh'], { cwd: repoRoot, stdio: 'inherit' });
  if (!process.argv.includes('--no-build')) {
    console.log('▶ build');
    run('npx', ['tsc', '-p', 'tsconfig.build.json']);
  }
  console.log(`▶ local stack "${stackName}"`);
  const s = stackName === 'dev' ? await startStack('dev') : readStack(stackName);
  if (!s) throw new Error(`no running stack named ${stackName}`);
  const env = { ...process.env, KUBECONFIG: s.kubeconfig };
  const kubectl = (args: string[], input?: string) => run('kubectl', args, env, input);
  const helm = (args: string[]) => run(requireTool(toolPaths().helm, 'helm'), args, env);

  // The chart installs the CRDs unless something else (the integration tests) already did.
  const crdOwners = CRDS.map((crd) => {
    const out = run('kubectl', ['get', 'crd', crd, '--ignore-not-found', '-o', 'json'], env).trim();
    return out ? (JSON.parse(out).metadata.annotations?.['meta.helm.sh/release-name'] ?? 'other') : 'none';
  });
  const chartOwnsCrds = crdOwners.every((o) => o === 'none' || o === RELEASE);

  console.log(`▶ namespace ${NS} (Pod Security: restricted)`);
  kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NS, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    }),
  );

  const extras = readExtras(s.name);
  const runtime = path.join(repoRoot, 'dist/runtime/src/main.js');
  if (provider === 'fake' && !(await portOpen(FAKE_PORT))) {
    console.log(`▶ fake Anthropic judge on 127.0.0.1:${FAKE_PORT}`);
    extras.push(
      startDetached(
        'fake-anthropic',
        process.execPath,
        [
          ...[runtime, 'fake-anthropic', '--port', String(FAKE_PORT)],
          ...['--profile', 'test/fixtures/essays/profile.json', '--seed', '7'],
          ...['--lapse', '0.05', '--bias', '0.15'],
        ],
        path.join(s.dir, 'fake-anthropic.log'),
        process.env,
        repoRoot,
      ),
    );
    writeExtras(s.name, extras);
  }

  console.log(`▶ helm upgrade --install ${RELEASE} charts/cj-operator (operator pod, webhook, RBAC)`);
  helm([
    ...['upgrade', '--install', RELEASE, path.join(repoRoot, 'charts/cj-operator'), '-n', NS],
    ...['--set', `crds.install=${chartOwnsCrds}`, '--set', 'fullnameOverride=cj-operator'],
    ...['--set', 'image.repository=cj-operator', '--set', 'image.tag=dev', '--set', 'replicas=1'],
    ...['--set-string', `database.url=${s.postgresUrl}`, '--set-string', `kafka.brokers=${s.kafkaBrokers}`],
    // The chart's defaults: namespaced mode (the release namespace only; other operators, e.g.
    // tests, may share this cluster) and a Secret opt-in label on the sample's key. The fake judge
    // is allowed next to the official endpoint (docs/security.md, "Egress").
    ...['--set', `llm.allowedBaseURLs={https://api.anthropic.com,http://127.0.0.1:${FAKE_PORT}}`],
    // The process cluster has no Service routing and pods share the host network: the apiserver
    // calls the pod's own address and the pod binds it.
    ...['--set-string', 'webhook.url=https://$(POD_IP):9443', '--set', 'probes.address=podIP'],
    ...['--wait', '--timeout', '180s'],
  ]);
  if (!chartOwnsCrds)
    console.log('  (CRDs were already installed by something else; the chart left them alone)');

  console.log(`▶ samples into namespace ${NS}`);
  const pool = YAML.parse(readFileSync(path.join(repoRoot, 'config/samples/llmproviderpool.yaml'), 'utf8'));
  const secret = YAML.parse(readFileSync(path.join(repoRoot, 'config/samples/secret.yaml'), 'utf8'));
  if (provider === 'anthropic') {
    pool.spec.provider = 'anthropic';
    delete pool.spec.baseURL;
    secret.stringData.apiKey = process.env.ANTHROPIC_API_KEY;
  }
  kubectl(
    ['apply', '-n', NS, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [secret, pool] }),
  );
  // kubectl finds plugins on PATH by name: put a kubectl-cj shim next to the stack.
  const bin = path.join(s.dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const shim = path.join(bin, 'kubectl-cj');
  writeFileSync(
    shim,
    `#!/bin/sh\nexec "${process.execPath}" "${path.join(repoRoot, 'dist/operator/src/cli/kubectl-cj.js')}" "$@"\n`,
  );
  chmodSync(shim, 0o755);
  const cj = (args: string[]) =>
    execFileSync('kubectl', ['cj', ...args, '-n', NS], {
      cwd: repoRoot,
      env: { ...env, PATH: `${bin}:${process.env.PATH}` },
      stdio: 'inherit',
    });

  // What the batch will take on this pool, before it runs (the status keeps the operator's own
  // estimate and prints it beside the actuals at the end).
  console.log(`▶ kubectl cj estimate config/samples/cjbatch-demo.yaml`);
  cj(['estimate', 'config/samples/cjbatch-demo.yaml']);

  kubectl(['delete', 'cjbatch', BATCH, '-n', NS, '--ignore-not-found', '--wait=true']);
  // The webhook may need a moment after the rollout to publish its caBundle: retry the apply.
  for (let attempt = 1; ; attempt++) {
    try {
      kubectl(['apply', '-n', NS, '-f', 'config/samples/cjbatch-demo.yaml']);
      break;
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 1500));
    }
  }

  console.log(`\n▶ kubectl cj status ${BATCH} --watch (at the end: the estimate beside the actuals)`);
  try {
    cj(['status', BATCH, '--watch']);
  } catch {
    console.error(`The batch failed; see: kubectl describe cjbatch ${BATCH} -n ${NS}`);
    process.exit(1);
  }
  console.log(`\n▶ kubectl cj results ${BATCH}`);
  cj(['results', BATCH]);
  console.log(`\n▶ kubectl cj explain ${BATCH}`);
  cj(['explain', BATCH]);
  console.log(`
  Explore:   export KUBECONFIG=${s.kubeconfig} PATH=${bin}:$PATH
             kubectl get cj -n ${NS}; kubectl describe cjb ${BATCH} -n ${NS}
             kubectl cj results ${BATCH} -n ${NS} -o csv
  Tear down: helm uninstall ${RELEASE} -n ${NS} after kubectl delete cjbatch --all -n ${NS}
             (or all at once: npm run dev:down)`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

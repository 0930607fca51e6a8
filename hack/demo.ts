// `npm run demo`: the whole system on this machine. Starts (or reuses) the local stack, installs
// the CRDs, runs the fake Anthropic judge and the operator, applies the sample batch (40 essays,
// 12 anchors), shows live progress and prints the results table.
//   npm run demo                          fake judge (no key needed)
//   npm run demo -- --provider anthropic  the real API; needs ANTHROPIC_API_KEY
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { KubeApi } from './lib/kubeapi.js';
import { alive, freePort, sleep, startDetached } from './lib/proc.js';
import { repoRoot } from './lib/tools.js';
import { readExtras, startStack, writeExtras } from './stack.js';

const NS = 'cj-demo';
const FAKE_PORT = 8089;
const provider = process.argv.includes('--provider')
  ? process.argv[process.argv.indexOf('--provider') + 1]
  : 'fake';

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
  if (provider === 'anthropic' && !process.env.ANTHROPIC_API_KEY) {
    console.error('--provider anthropic needs ANTHROPIC_API_KEY in the environment');
    process.exit(2);
  }
  console.log('▶ tools (built once, cached in ~/.cache/cj-operator)');
  execFileSync('bash', ['hack/tools/tools.sh'], { cwd: repoRoot, stdio: 'inherit' });
  console.log('▶ build');
  run('npx', ['tsc', '-p', 'tsconfig.build.json']);
  console.log('▶ local stack');
  const s = await startStack('dev');
  const env = { ...process.env, KUBECONFIG: s.kubeconfig };
  const kubectl = (args: string[], input?: string) => run('kubectl', args, env, input);
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', 'crds/']);
  kubectl([
    'wait',
    '--for=condition=Established',
    'crd/cjbatches.cj.huleedu.io',
    'crd/llmproviderpools.cj.huleedu.io',
  ]);

  const extras = readExtras('dev');
  const runtime = path.join(repoRoot, 'dist/runtime/src/main.js');
  if (provider === 'fake' && !(await portOpen(FAKE_PORT))) {
    console.log(`▶ fake Anthropic judge on 127.0.0.1:${FAKE_PORT}`);
    extras.push(
      startDetached(
        'fake-anthropic',
        process.execPath,
        [
          runtime,
          'fake-anthropic',
          '--port',
          String(FAKE_PORT),
          '--profile',
          'test/fixtures/essays/profile.json',
          '--seed',
          '7',
          '--lapse',
          '0.05',
          '--bias',
          '0.15',
        ],
        path.join(s.dir, 'fake-anthropic.log'),
        process.env,
        repoRoot,
      ),
    );
  }
  if (!extras.some((p) => p.name === 'operator' && alive(p.pid))) {
    console.log('▶ operator');
    kubectl(
      ['apply', '-f', '-'],
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }),
    );
    extras.push(
      startDetached(
        'operator',
        process.execPath,
        [path.join(repoRoot, 'dist/operator/src/main.js')],
        path.join(s.dir, 'operator.log'),
        {
          PATH: process.env.PATH,
          KUBECONFIG: s.kubeconfig,
          DATABASE_URL: s.postgresUrl,
          KAFKA_BROKERS: s.kafkaBrokers,
          POD_NAMESPACE: NS,
          WATCH_NAMESPACE: NS,
          POD_NAME: 'demo-operator',
          OPERATOR_IMAGE: 'cj-operator:dev',
          PROBE_ADDRESS: '127.0.0.1',
          PROBE_PORT: String(await freePort()),
        },
        repoRoot,
      ),
    );
  }
  writeExtras('dev', extras);

  console.log(`▶ samples into namespace ${NS}`);
  kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } }),
  );
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
  kubectl(['delete', 'cjbatch', 'sample-demo', '-n', NS, '--ignore-not-found', '--wait=true']);
  kubectl(['apply', '-n', NS, '-f', 'config/samples/cjbatch-demo.yaml']);

  const api = KubeApi.fromFile(s.kubeconfig);
  const t0 = Date.now();
  let b: any;
  for (;;) {
    b = await api.get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${NS}/cjbatches/sample-demo`);
    const st = b.status ?? {};
    const done = st.comparisons?.completed ?? 0;
    const total = st.budget?.total ?? 0;
    const width = 30;
    const filled = total ? Math.round((done / total) * width) : 0;
    const bar = `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
    const stab =
      st.stability?.rankCorrelation !== undefined ? ` rank-stability ${st.stability.rankCorrelation}` : '';
    process.stdout.write(
      `\r  ${bar} ${done}/${total || '?'}  ${(st.phase ?? 'Pending').padEnd(10)} round ${st.round ?? 0}${stab}  ${Math.round((Date.now() - t0) / 1000)}s   `,
    );
    if (st.phase === 'Succeeded' || st.phase === 'Failed') break;
    await sleep(1000);
  }
  process.stdout.write('\n');
  if (b.status.phase === 'Failed') {
    console.error(
      `The batch failed: ${b.status.conditions?.find((c: any) => c.type === 'Succeeded')?.message}`,
    );
    process.exit(1);
  }
  const cm = await api.get(`/api/v1/namespaces/${NS}/configmaps/${b.status.result.resultsConfigMap}`);
  const results = JSON.parse(cm.data['results.json']);
  console.log('\n  rank  essay        score ±  se   grade  P(grade)   80% interval');
  for (const e of results.essays.filter((x: any) => !x.anchor)) {
    const g = e.grade;
    console.log(
      `  ${String(e.rank).padStart(4)}  ${e.essayId.padEnd(11)} ${e.score.toFixed(2).padStart(6)} ± ${e.se.toFixed(2)}   ${(g?.modal ?? '-').padEnd(5)}  ${g ? g.modalProbability.toFixed(2) : '   -'}       ${g ? `${g.interval80[0]}–${g.interval80[1]}` : ''}`,
    );
  }
  console.log(`\n  grades: ${results.gradeDistribution.map((g: any) => `${g.grade} ${g.count}`).join(', ')}`);
  console.log(
    `  comparisons: ${b.status.comparisons.completed} completed, ${b.status.comparisons.failed} failed; ${b.status.round} rounds; stopped: ${b.status.conditions.find((c: any) => c.type === 'Succeeded').reason}`,
  );
  console.log(`
  Explore:  export KUBECONFIG=${s.kubeconfig}
            kubectl get cj -n ${NS}; kubectl describe cjb sample-demo -n ${NS}
            kubectl get configmap sample-demo-results -n ${NS} -o jsonpath='{.data.results\\.csv}'
  Tear down: npm run dev:down`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// Runs the real operator (the built dist/ entry point) as a process against the local stack, with
// its own database, plus the fake Anthropic server; for the operator's integration tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import YAML from 'yaml';
import { freePort } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import { type FakeAnthropic, startFakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { kubectlOk, stack } from './helpers.js';

export const OPERATOR_MAIN = path.join(repoRoot, 'dist/operator/src/main.js');
export const RUNTIME_MAIN = path.join(repoRoot, 'dist/runtime/src/main.js');

export function requireBuild(): void {
  for (const f of [OPERATOR_MAIN, RUNTIME_MAIN])
    if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` first (npm test does)`);
}

/** A fresh database in the stack's Postgres, so each test file starts from an empty schema. */
export async function freshDatabase(prefix: string): Promise<string> {
  const admin = postgres(stack().postgresUrl, { max: 1, onnotice: () => {} });
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  return stack().postgresUrl.replace(/\/[^/]+$/, `/${name}`);
}

export async function installCrds(): Promise<void> {
  await kubectlOk(['apply', '--server-side', '--force-conflicts', '-f', path.join(repoRoot, 'crds')]);
  await kubectlOk([
    'wait',
    '--for=condition=Established',
    'crd/cjbatches.cj.huleedu.io',
    'crd/llmproviderpools.cj.huleedu.io',
  ]);
}

export interface OperatorProcess {
  proc: ChildProcess;
  log: string;
  probePort: number;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  logText(): string;
}

export async function startOperator(opts: {
  namespace: string;
  databaseUrl: string;
  identity?: string;
  env?: Record<string, string>;
}): Promise<OperatorProcess> {
  requireBuild();
  const probePort = await freePort();
  const dir = path.join(stack().dir, 'operators');
  mkdirSync(dir, { recursive: true });
  const identity = opts.identity ?? `op-${randomBytes(3).toString('hex')}`;
  const log = path.join(dir, `${identity}.log`);
  const fd = openSync(log, 'a');
  const proc = spawn(process.execPath, [OPERATOR_MAIN], {
    stdio: ['ignore', fd, fd],
    env: {
      PATH: process.env.PATH,
      KUBECONFIG: stack().kubeconfig,
      DATABASE_URL: opts.databaseUrl,
      POD_NAMESPACE: opts.namespace,
      // Tests share one cluster: each operator only sees its own namespace.
      WATCH_NAMESPACE: opts.namespace,
      POD_NAME: identity,
      OPERATOR_IMAGE: 'cj-operator:dev',
      PROBE_ADDRESS: '127.0.0.1',
      PROBE_PORT: String(probePort),
      KAFKA_BROKERS: stack().kafkaBrokers,
      // CJ_TEST_ROUNDS_MODE=rounds runs a test file's batches round by round (the drills too; the
      // operator's default is pipelined). A batch's annotation or opts.env still wins.
      ...(process.env.CJ_TEST_ROUNDS_MODE ? { ROUNDS_MODE: process.env.CJ_TEST_ROUNDS_MODE } : {}),
      COMPARISON_LEASE_SECONDS: '15',
      LOG_LEVEL: 'info',
      // The official endpoint and the fake servers the tests start on loopback (any port).
      LLM_ALLOWED_BASE_URLS: 'https://api.anthropic.com,http://127.0.0.1:*',
      ...opts.env,
    },
  });
  return {
    proc,
    log,
    probePort,
    logText: () => readFileSync(log, 'utf8'),
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
        proc.once('exit', (code) => resolve(code));
        proc.kill(signal);
      }),
  };
}

export async function startFake(
  extra: Parameters<typeof startFakeAnthropic>[0] = {},
): Promise<FakeAnthropic> {
  return startFakeAnthropic({
    host: '127.0.0.1',
    port: 0,
    profilePath: path.join(repoRoot, 'test/fixtures/essays/profile.json'),
    seed: 7,
    lapse: 0.05,
    bias: 0.15,
    ...extra,
  });
}

/** An LLMProviderPool of the fake judge at `baseURL`, in `ns`, keyed by the Secret `secret`. */
export function fakePool(ns: string, baseURL: string, name = 'fake-pool', secret = 'llm-api-key') {
  return {
    apiVersion: 'cj.huleedu.io/v1alpha1',
    kind: 'LLMProviderPool',
    metadata: { name, namespace: ns },
    spec: {
      provider: 'fake',
      baseURL,
      model: 'claude-sonnet-5-5',
      apiKeySecretRef: { name: secret, key: 'apiKey' },
      tier: 'start',
      limits: { requestsPerMinute: 1000, maxConcurrency: 16 },
      retry: { maxAttempts: 5, initialBackoff: '200ms', maxBackoff: '5s' },
      pricing: { inputPerMTok: '2.00', outputPerMTok: '10.00' },
    },
  };
}

/** Secret + pool pointing at `baseURL`, in `ns`. */
export function poolManifests(
  ns: string,
  baseURL: string,
  name = 'fake-pool',
  secret = 'llm-api-key',
): any[] {
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      // Opted in to pool use: the operator uses only Secrets with this label as API keys.
      metadata: { name: secret, namespace: ns, labels: { 'cj.huleedu.io/llm-api-key': 'true' } },
      stringData: { apiKey: 'test-key-do-not-log' },
    },
    fakePool(ns, baseURL, name, secret),
  ];
}

/** A sample CJBatch (config/samples/<file>) renamed into `ns`, as a plain object to adjust and apply. */
export function sampleBatch(file: string, name: string, ns: string): any {
  const b = YAML.parse(readFileSync(path.join(repoRoot, 'config/samples', file), 'utf8'));
  b.metadata = { name, namespace: ns };
  return b;
}

/** A cheap sample batch (cjbatch-small) in `ns`: a small budget and one worker; `adjust` changes the rest. */
export function smallBatch(
  name: string,
  ns: string,
  maxComparisons: number,
  adjust: (b: any) => void = () => {},
): any {
  const b = sampleBatch('cjbatch-small.yaml', name, ns);
  b.spec.budget = { maxComparisons };
  b.spec.workers = { parallelism: 1 };
  adjust(b);
  return b;
}

/**
 * What a test prints when a batch did not get where it should: the namespace's objects and
 * events, the operator's last log lines, the worker pods' last log lines (the process kubelet's
 * files) and the store's view (comparisons by round and status, limiter rows, reservations in
 * flight, and what the database's sessions wait on). Never throws: a diagnosis that fails says so.
 */
export async function diagnose(o: {
  namespace: string;
  databaseUrl?: string;
  operator?: OperatorProcess;
}): Promise<string> {
  const out: string[] = [];
  const section = async (title: string, f: () => Promise<string> | string) => {
    try {
      out.push(`--- ${title}\n${(await f()).trimEnd()}`);
    } catch (err) {
      out.push(`--- ${title}: could not be read: ${err}`);
    }
  };
  const ns = o.namespace;
  await section('objects', () => kubectlOk(['get', 'cjbatch,llmpool,jobs,pods', '-n', ns, '-o', 'wide']));
  await section('events (last 30)', async () =>
    (await kubectlOk(['get', 'events', '-n', ns, '--sort-by=.lastTimestamp']))
      .split('\n')
      .slice(-30)
      .join('\n'),
  );
  if (o.operator) {
    const op = o.operator;
    await section('operator log (last 40 lines)', () => op.logText().split('\n').slice(-40).join('\n'));
  }
  await section('worker pods (last 15 log lines each, newest 4 pods)', () => {
    const dir = path.join(stack().dir, 'kubelet', 'pods');
    if (!existsSync(dir)) return '(no pod has run on the process kubelet yet)';
    const pods = readdirSync(dir)
      .filter((d) => d.startsWith(`${ns}_`))
      .map((d) => ({ d, t: statSync(path.join(dir, d)).mtimeMs }))
      .sort((a, b) => b.t - a.t)
      .slice(0, 4);
    return pods
      .map(({ d }) => {
        const f = path.join(dir, d, 'worker.log');
        const text = existsSync(f) ? readFileSync(f, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
        return `[${d}]\n${text}`;
      })
      .join('\n');
  });
  if (o.databaseUrl) {
    const url = o.databaseUrl;
    await section('store', async () => {
      const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
      try {
        const q = async (text: string) => JSON.stringify(await sql.unsafe(text));
        return [
          `comparisons: ${await q(`SELECT left(batch_uid::text, 8) AS batch, round, status, count(*)::int AS n,
             max(lease_expires) AS lease_max FROM comparisons
             GROUP BY batch_uid, round, status ORDER BY max(created_at) DESC, status LIMIT 12`)}`,
          `rounds: ${await q(`SELECT left(batch_uid::text, 8) AS batch, round, decision, reason, created_at
             FROM rounds ORDER BY created_at DESC LIMIT 3`)}`,
          `limiter: ${await q(`SELECT pool_key, rpm, req_level, blocked_until, ramp_started_at, last_grant_at, now() AS now
             FROM llm_pool_limiter`)}`,
          `reservations in flight: ${await q(`SELECT pool_key, owner, granted_at, lease_expires FROM llm_pool_reservations
             WHERE settled_at IS NULL ORDER BY granted_at LIMIT 20`)}`,
          `sessions: ${await q(`SELECT usename, state, wait_event_type, wait_event, now() - xact_start AS xact_age,
             left(query, 120) AS query FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'`)}`,
        ].join('\n');
      } finally {
        await sql.end({ timeout: 5 }).catch(() => undefined);
      }
    });
  }
  return out.join('\n');
}

/**
 * Watches a batch's progress (phase, round, finished comparisons) and resolves with what it saw
 * once nothing moved for `stallMs`: a test that waits half an hour for a batch fails within
 * minutes of a stall instead, with the stall's moment in its message. `stop()` ends the watch.
 */
export function watchStall(
  namespace: string,
  name: string,
  stallMs: number,
): { stalled: Promise<string>; stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<string>((resolve) => {
    let last = '';
    let since = Date.now();
    const look = async () => {
      if (stopped) return;
      try {
        const b = JSON.parse(await kubectlOk(['get', 'cjbatch', name, '-n', namespace, '-o', 'json']));
        const s = b.status ?? {};
        const c = s.comparisons ?? {};
        const now = `phase ${s.phase} round ${s.round} finished ${(c.completed ?? 0) + (c.failed ?? 0)}`;
        if (now !== last) {
          last = now;
          since = Date.now();
        } else if (Date.now() - since >= stallMs) {
          return resolve(
            `cjbatch/${name} made no progress for ${stallMs / 1000}s (${now}, unchanged since ${new Date(since).toISOString()})`,
          );
        }
      } catch {
        // the apiserver is busy: look again
      }
      if (!stopped) timer = setTimeout(look, 5_000);
    };
    void look();
  });
  return {
    stalled,
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

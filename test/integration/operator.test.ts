// The operator end to end on the local cluster: real apiserver, real Job controller running the
// worker pods (process kubelet), real Postgres, the fake Anthropic server as the provider.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../hack/lib/proc.js';
import { repoRoot } from '../../hack/lib/tools.js';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

let ns: string;
let dbUrl: string;
let sql: postgres.Sql;
/** The demo batch's rounds mode as registered (the operator's default unless CJ_TEST_ROUNDS_MODE). */
let mode: 'rounds' | 'pipelined' = 'rounds';
let fake: FakeAnthropic;
let operator: OperatorProcess;

const getJson = async (args: string[]) => JSON.parse(await kubectlOk([...args, '-n', ns, '-o', 'json']));
const batchStatus = async (name: string) => (await getJson(['get', 'cjbatch', name])).status ?? {};
const cond = (status: any, type: string) => status.conditions?.find((c: any) => c.type === type);
/** The value of one series (name with its labels in exposition order) in a Prometheus scrape. */
const sample = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((x) => x.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

beforeAll(async () => {
  await installCrds();
  ns = await newNamespace('operator');
  dbUrl = await freshDatabase('op');
  sql = postgres(dbUrl, { max: 2, onnotice: () => {} });
  fake = await startFake();
  const webhookPort = await freePort();
  operator = await startOperator({
    namespace: ns,
    databaseUrl: dbUrl,
    // The operator serves its validating webhook too (url-based: no Service routing here).
    env: {
      WEBHOOK_PORT: String(webhookPort),
      WEBHOOK_URL: `https://127.0.0.1:${webhookPort}`,
      WEBHOOK_CONFIGURATION_NAME: `cj-validating-${ns}`,
      // The usage figures behind /metrics are read from the database this often.
      METRICS_REFRESH_SECONDS: '2',
    },
  });
  await kubectlOk(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: poolManifests(ns, fake.url) }),
  );
});

afterAll(async () => {
  await operator?.stop();
  // Cluster-scoped and named by the operator: remove it so no later test meets a dead webhook.
  if (ns)
    await kubectl(['delete', 'validatingwebhookconfiguration', `cj-validating-${ns}`, '--ignore-not-found']);
  await fake?.close();
  await sql?.end();
  if (ns) await deleteNamespace(ns);
});

describe('a CJBatch applied with kubectl', () => {
  it('reaches Succeeded with status counters equal to the database and readable results', async () => {
    await waitFor(
      'pool Ready',
      async () =>
        cond((await getJson(['get', 'llmpool', 'fake-pool'])).status ?? {}, 'Ready')?.status === 'True',
    );
    await kubectlOk(['apply', '-n', ns, '-f', path.join(repoRoot, 'config/samples/cjbatch-demo.yaml')]);
    const final = await waitFor(
      'sample-demo Succeeded',
      async () => {
        const s = await batchStatus('sample-demo');
        if (s.phase === 'Failed') throw new Error(`batch failed: ${JSON.stringify(s.conditions)}`);
        return s.phase === 'Succeeded' ? s : undefined;
      },
      600_000,
    );
    const uid = (await getJson(['get', 'cjbatch', 'sample-demo'])).metadata.uid;
    [{ mode }] = (await sql`
      SELECT coalesce(config->>'rounds', 'rounds') AS mode FROM batches WHERE uid = ${uid}`) as any;
    const [db] = await sql`
      SELECT count(*)::int AS planned, count(*) FILTER (WHERE status = 'succeeded')::int AS completed,
             count(*) FILTER (WHERE status = 'failed')::int AS failed, max(round)::int AS rounds
        FROM comparisons WHERE batch_uid = ${uid}`;
    expect(final.comparisons.planned).toBe(db!.planned);
    expect(final.comparisons.completed).toBe(db!.completed);
    expect(final.comparisons.failed).toBe(db!.failed);
    expect(final.comparisons.pending).toBe(0);
    expect(final.comparisons.completed).toBeGreaterThan(40);
    expect(final.comparisons.completed).toBeLessThanOrEqual(final.budget.total);
    expect(final.budget.source).toBe('default');
    expect(cond(final, 'Succeeded').status).toBe('True');
    expect(final.result.resultsConfigMap).toBe('sample-demo-results');
    // No pair was judged twice within a round (the unique key guarantees it; this proves nothing slipped past).
    const [dups] = await sql`
      SELECT count(*)::int AS n FROM (SELECT 1 FROM comparisons WHERE batch_uid = ${uid}
        GROUP BY round, essay_a, essay_b HAVING count(*) > 1) d`;
    expect(dups!.n).toBe(0);

    const cm = await getJson(['get', 'configmap', 'sample-demo-results']);
    const results = JSON.parse(cm.data['results.json']);
    expect(results.essays).toHaveLength(52);
    expect(results.gradeDistribution.reduce((a: number, g: any) => a + g.count, 0)).toBe(40);

    const table = await kubectlOk(['get', 'cjb', 'sample-demo', '-n', ns]);
    expect(table).toMatch(/PHASE\s+PROGRESS\s+ROUND\s+STABILITY/);
    expect(table).toContain('Succeeded');
    const events = await kubectlOk([
      'get',
      'events',
      '-n',
      ns,
      '--field-selector',
      'involvedObject.name=sample-demo',
    ]);
    // Round by round announces each round; a pipelined batch its long-lived workers.
    const started = mode === 'pipelined' ? 'WorkersStarted' : 'RoundStarted';
    for (const reason of ['Prepared', started, 'Succeeded']) expect(events).toContain(reason);

    // The worker pods' LLM figures reach the operator's /metrics (read back from the database).
    const [usage] = await sql`
      SELECT coalesce(sum(input_tokens), 0)::int AS input, coalesce(sum(output_tokens), 0)::int AS output,
             coalesce(sum(greatest(attempts - 1, 0)), 0)::int AS retries
        FROM comparisons WHERE batch_uid = ${uid}`;
    const l = `tenant_namespace="${ns}",pool="fake-pool",model="claude-sonnet-5-5",mode="per_request"`;
    // The figures refresh every METRICS_REFRESH_SECONDS: wait for a refresh that saw both the
    // last comparison and the batch's final phase (the status may land after the rows).
    const phaseLabel = `tenant_namespace="${ns}",phase="Succeeded"`;
    const scrape = await waitFor('usage figures on /metrics', async () => {
      const text = await (await fetch(`http://127.0.0.1:${operator.probePort}/metrics`)).text();
      return sample(text, `cj_llm_comparisons_total{${l},status="succeeded"}`) === db!.completed &&
        sample(text, `cj_batches{${phaseLabel}}`) === 1
        ? text
        : undefined;
    });
    expect(sample(scrape, `cj_llm_tokens_total{${l},direction="input"}`)).toBe(usage!.input);
    expect(sample(scrape, `cj_llm_tokens_total{${l},direction="output"}`)).toBe(usage!.output);
    expect(sample(scrape, `cj_llm_retries_total{${l}}`) ?? 0).toBe(usage!.retries);
    expect(sample(scrape, `cj_llm_estimated_cost_usd_total{${l}}`)).toBeCloseTo(
      Number(final.cost.estimatedUSD),
      5,
    );
    // Every comparison took at least one HTTP attempt through the pool limiter.
    expect(sample(scrape, `cj_llm_requests_total{${l}}`)).toBeGreaterThanOrEqual(db!.completed + db!.failed);
    expect(sample(scrape, `cj_llm_rate_limited_total{tenant_namespace="${ns}",pool="fake-pool"}`)).toBe(0);
    const b = `tenant_namespace="${ns}",batch="sample-demo"`;
    expect(sample(scrape, `cj_batch_comparisons{${b},status="succeeded"}`)).toBe(db!.completed);
    expect(sample(scrape, `cj_batch_estimated_cost_usd{${b}}`)).toBeCloseTo(
      Number(final.cost.estimatedUSD),
      5,
    );
    expect(sample(scrape, `cj_batches{${phaseLabel}}`)).toBe(1);
  }, 660_000);

  it('keeps the API key and essay text out of every log; worker pods get no API token', async () => {
    const logs = [operator.log];
    const podsDir = path.join(stack().dir, 'kubelet', 'pods');
    for (const d of readdirSync(podsDir).filter((d) => d.startsWith(`${ns}_`)))
      for (const f of readdirSync(path.join(podsDir, d)).filter((f) => f.endsWith('.log')))
        logs.push(path.join(podsDir, d, f));
    // The operator and the worker pods: many round by round; pipelined, at least round 0's
    // scoring pod and one long-lived worker.
    expect(logs.length).toBeGreaterThan(mode === 'pipelined' ? 2 : 10);
    const essays = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/essays/essays.json'), 'utf8'));
    const snippets = [...essays.essays, ...essays.anchors].map((e: { text: string }) =>
      e.text.slice(40, 100),
    );
    for (const file of logs) {
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toContain('test-key-do-not-log');
      for (const snippet of snippets) expect(text.includes(snippet), `essay text in ${file}`).toBe(false);
    }
    const pods = (await getJson(['get', 'pods', '-l', 'cj.huleedu.io/batch=sample-demo'])).items;
    expect(pods.length).toBeGreaterThan(0);
    for (const p of pods) {
      expect(p.spec.automountServiceAccountToken).toBe(false);
      expect(JSON.stringify(p.spec.volumes ?? [])).not.toContain('serviceAccountToken');
      expect(p.spec.containers[0].securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ['ALL'] },
      });
    }
  });

  it("refuses, through the operator's own webhook, a batch whose pool does not exist", async () => {
    const batch = sampleBatch('cjbatch-small.yaml', 'orphan', ns);
    batch.spec.providerPoolRef.name = 'no-such-pool';
    const r = await waitFor('the webhook answering', async () => {
      const res = await kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(batch));
      return res.stderr.includes('admission webhook') ? res : undefined;
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('LLMProviderPool "no-such-pool" not found');
  });

  it('waits on a pool whose Secret is missing and proceeds once it is created', async () => {
    const [secret, pool] = poolManifests(ns, fake.url, 'late-pool', 'late-key');
    await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(pool));
    const batch = sampleBatch('cjbatch-small.yaml', 'waits', ns);
    batch.spec.providerPoolRef.name = 'late-pool';
    await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(batch));
    await waitFor('pool Degraded (SecretNotFound)', async () => {
      const c = cond((await getJson(['get', 'llmpool', 'late-pool'])).status ?? {}, 'Degraded');
      return c?.status === 'True' && c.reason === 'SecretNotFound';
    });
    await waitFor(
      'batch waiting for its pool',
      async () => cond(await batchStatus('waits'), 'PoolReady')?.status === 'False',
    );
    expect((await batchStatus('waits')).phase).not.toBe('Failed');
    await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(secret));
    await waitFor(
      'batch waits Succeeded',
      async () => (await batchStatus('waits')).phase === 'Succeeded',
      300_000,
    );
  });

  it('removes the Jobs, pods and rows of a running batch that is deleted', async () => {
    const batch = sampleBatch('cjbatch-demo.yaml', 'doomed', ns);
    await kubectlOk(['apply', '-n', ns, '-f', '-'], JSON.stringify(batch));
    await waitFor(
      'doomed Comparing',
      async () => (await batchStatus('doomed')).phase === 'Comparing',
      120_000,
    );
    const uid = (await getJson(['get', 'cjbatch', 'doomed'])).metadata.uid;
    await kubectlOk(['delete', 'cjbatch', 'doomed', '-n', ns, '--timeout=90s']);
    const [rows] = await sql`SELECT count(*)::int AS n FROM comparisons WHERE batch_uid = ${uid}`;
    expect(rows!.n).toBe(0);
    await waitFor(
      'children garbage-collected',
      async () => {
        const jobs = (await getJson(['get', 'jobs', '-l', 'cj.huleedu.io/batch=doomed'])).items;
        const pods = (await getJson(['get', 'pods', '-l', 'cj.huleedu.io/batch=doomed'])).items;
        const cms = (await kubectl(['get', 'secret', 'doomed-worker', '-n', ns])).code;
        return jobs.length === 0 && pods.length === 0 && cms !== 0;
      },
      120_000,
    );
  });
});

// The CJBatch phase handlers and their dispatcher, without a cluster or a database: the ports
// (store, Jobs, owned children, events) are fakes that record what the handlers did.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import {
  type CJBatch,
  CJBatchSpecSchema,
  type LLMProviderPool,
  LLMProviderPoolSpecSchema,
} from '../../../operator/src/api/index.js';
import { loadConfig } from '../../../operator/src/config.js';
import { ChildJobs, type JobObject } from '../../../operator/src/controllers/cjbatch/child-jobs.js';
import type { PhaseContext, PhaseStore } from '../../../operator/src/controllers/cjbatch/context.js';
import { audit } from '../../../operator/src/controllers/cjbatch/phases/audit.js';
import {
  comparing,
  pipelineLow,
  pipelining,
  workersWanted,
} from '../../../operator/src/controllers/cjbatch/phases/comparing.js';
import { nextWork } from '../../../operator/src/controllers/cjbatch/phases/index.js';
import { pending } from '../../../operator/src/controllers/cjbatch/phases/pending.js';
import { preparing } from '../../../operator/src/controllers/cjbatch/phases/preparing.js';
import { stopWorkers } from '../../../operator/src/controllers/cjbatch/phases/retiring.js';
import { scoring } from '../../../operator/src/controllers/cjbatch/phases/scoring.js';
import { terminal } from '../../../operator/src/controllers/cjbatch/phases/terminal.js';
import { CJBatchReconciler } from '../../../operator/src/controllers/cjbatch/reconciler.js';
import { TerminalError } from '../../../operator/src/kube/controller.js';
import type { EventRecorder } from '../../../operator/src/kube/events.js';
import type { Informer } from '../../../operator/src/kube/informer.js';
import { ApiError, type KubeClient } from '../../../operator/src/kube/rest.js';
import { conditionSetter } from '../../../operator/src/kube/status.js';
import type { Progress } from '../../../runtime/src/store/progress.js';
import type { RoundRow } from '../../../runtime/src/store/rounds.js';
import { loadEventSchema, validate } from '../outbox/event-schemas.js';

const UID = '0b1c2d3e-0000-4000-8000-000000000001';
const EV = '0b1c2d3e-0000-4000-8000-0000000000e1';
const config = loadConfig({ DATABASE_URL: 'postgres://op@db/cj' });

function batchOf(over: Partial<CJBatch['spec']> = {}): CJBatch {
  const sample = YAML.parse(readFileSync('config/samples/cjbatch-small.yaml', 'utf8'));
  return {
    apiVersion: 'cj.huleedu.io/v1alpha1',
    kind: 'CJBatch',
    metadata: {
      name: 'b',
      namespace: 'ns',
      uid: UID,
      generation: 1,
      finalizers: ['cj.huleedu.io/finalizer'],
    },
    spec: { ...CJBatchSpecSchema.parse({ ...sample.spec, timeouts: { round: '10m' } }), ...over },
  };
}

const pool: LLMProviderPool = {
  apiVersion: 'cj.huleedu.io/v1alpha1',
  kind: 'LLMProviderPool',
  metadata: { name: 'fake-pool', namespace: 'ns', generation: 1 },
  spec: LLMProviderPoolSpecSchema.parse({
    provider: 'anthropic',
    model: 'claude-sonnet-4-5',
    apiKeySecretRef: { name: 's', key: 'k' },
  }),
  status: { conditions: [readyCondition()] },
};

function readyCondition() {
  return {
    type: 'Ready',
    status: 'True' as const,
    reason: 'Authenticated',
    message: 'ok',
    lastTransitionTime: '2026-01-01T00:00:00Z',
    observedGeneration: 1,
  };
}

/** A store whose every function throws unless the test gave it. */
function fakeStore(given: Partial<PhaseStore>): PhaseStore {
  return new Proxy(given as PhaseStore, {
    get: (t, k: string) =>
      k in t
        ? t[k as keyof PhaseStore]
        : () => {
            throw new Error(`the handler called store.${k}, which this test did not expect`);
          },
  });
}

/** A Job of the batch as the Job controller would report it. */
function job(
  name: string,
  role: string,
  round: number | 'batch',
  state: 'running' | 'Complete' | 'Failed',
  ageMs = 0,
) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace: 'ns',
      labels: {
        'cj.huleedu.io/batch': 'b',
        'cj.huleedu.io/round': String(round),
        'cj.huleedu.io/role': role,
      },
      ownerReferences: [{ apiVersion: 'cj.huleedu.io/v1alpha1', kind: 'CJBatch', name: 'b', uid: UID }],
      creationTimestamp: new Date(Date.now() - ageMs).toISOString(),
    },
    status:
      state === 'running'
        ? {}
        : { conditions: [{ type: state, status: 'True', reason: 'BackoffLimitExceeded' }] },
  } satisfies JobObject;
}

function world(opts: { jobs?: JobObject[]; store?: Partial<PhaseStore>; batch?: CJBatch } = {}) {
  const batch = opts.batch ?? batchOf();
  const jobs: JobObject[] = [...(opts.jobs ?? [])];
  const created: { metadata: { name: string }; spec: Record<string, unknown> }[] = [];
  const deleted: string[] = [];
  const patched: { path: string; body: unknown }[] = [];
  const propagation: (string | undefined)[] = [];
  const events: string[] = [];
  const api = {
    create: async (_path: string, body: unknown) => {
      const b = body as (typeof created)[number];
      if (jobs.some((j) => j.metadata?.name === b.metadata.name))
        throw Object.assign(new Error('exists'), { status: 409 });
      created.push(b);
      return b;
    },
    delete: async (path: string, opts?: { propagationPolicy?: string }) => {
      deleted.push(path);
      propagation.push(opts?.propagationPolicy);
      return {};
    },
    mergePatch: async (path: string, body: unknown) => {
      patched.push({ path, body });
      return {};
    },
  } as unknown as Pick<KubeClient, 'create' | 'delete' | 'mergePatch'>;
  const status = {};
  const ctx: PhaseContext = {
    batch,
    status,
    cond: conditionSetter(status, 1),
    pool,
    registered: undefined,
    store: fakeStore({ upsertLimiterRow: async () => {}, deleteLimiterRow: async () => {}, ...opts.store }),
    jobs: new ChildJobs(batch, api, { list: () => jobs }),
    owned: {
      workerSecret: async () => undefined,
      configMap: async () => undefined,
      applyConfigMap: async () => {},
    },
    event: (type, reason, message) => events.push(`${type} ${reason}: ${message}`),
    config,
  };
  return {
    ctx,
    jobs,
    created,
    deleted,
    patched,
    propagation,
    events,
    status: status as PhaseContext['status'],
  };
}

const progress = (over: Partial<Progress>): Progress => ({
  planned: 0,
  submitted: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
  retried: 0,
  pending: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  currentRound: null,
  ...over,
});
const row = (over: Partial<RoundRow>): RoundRow => ({
  round: 0,
  decision: 'continue',
  reason: 'continue',
  pairs: 10,
  stability: { rankSpearman: null, gradeChangeShare: null },
  summary: {},
  ...over,
});

describe('nextWork: what the rounds need, from the store summary', () => {
  it('plans round 0 first, judges a round until every pair is final, then scores it', () => {
    expect(nextWork(undefined, progress({}), 0.5)).toEqual({ kind: 'score', round: 0 });
    const judging = progress({ currentRound: { round: 1, planned: 10, done: 4 } });
    expect(nextWork(row({}), judging, 0.5)).toEqual({ kind: 'judge', round: 1, planned: 10, done: 4 });
    const done = progress({ completed: 10, currentRound: { round: 1, planned: 10, done: 10 } });
    expect(nextWork(row({}), done, 0.5)).toEqual({ kind: 'score', round: 1 });
  });

  it('finishes on a stop decision or on a round that planned nothing', () => {
    const stop = row({ decision: 'stop', reason: 'converged' });
    expect(nextWork(stop, progress({}), 0.5)).toEqual({ kind: 'finish', latest: stop });
    const empty = row({ pairs: 0 });
    expect(nextWork(empty, progress({}), 0.5)).toEqual({ kind: 'finish', latest: empty });
  });

  it('fails a batch whose comparisons mostly failed, but only from 20 finished on', () => {
    const bad = (completed: number, failed: number) =>
      progress({
        completed,
        failed,
        currentRound: { round: 1, planned: completed + failed, done: completed + failed },
      });
    expect(nextWork(row({}), bad(5, 15), 0.5)).toMatchObject({ kind: 'fail', reason: 'LowSuccessRate' });
    expect(nextWork(row({}), bad(4, 15), 0.5)).toEqual({ kind: 'score', round: 1 });
  });
});

describe('scoring: one Job per round, retried with the next attempt, then the batch fails', () => {
  it('creates the round Job under its deterministic name and says so in status', async () => {
    const w = world();
    expect(await scoring(w.ctx, 2)).toEqual({ requeueAfter: 60_000 });
    expect(w.created.map((j) => j.metadata.name)).toEqual(['b-score-2']);
    expect(w.status.currentJobs?.scoring).toBe('b-score-2');
    expect(w.status.phase).toBe('Scoring');
  });

  it('waits for a running Job and creates nothing', async () => {
    const w = world({ jobs: [job('b-score-2', 'scoring', 2, 'running')] });
    expect(await scoring(w.ctx, 2)).toEqual({ requeueAfter: 60_000 });
    expect(w.created).toEqual([]);
  });

  it('a Job that ended without the round row is retried as attempt 1', async () => {
    const w = world({
      jobs: [job('b-score-2', 'scoring', 2, 'Failed')],
      store: { isScored: async () => false },
    });
    await scoring(w.ctx, 2);
    expect(w.created.map((j) => j.metadata.name)).toEqual(['b-score-2-1']);
    expect(w.events.some((e) => e.startsWith('Warning ScoringRetried: scoring Job b-score-2 ended'))).toBe(
      true,
    );
  });

  it('a Job that ended after writing the round row is not a failure', async () => {
    const w = world({
      jobs: [job('b-score-2', 'scoring', 2, 'Complete')],
      store: { isScored: async () => true },
    });
    expect(await scoring(w.ctx, 2)).toEqual({ requeueAfter: 1 });
    expect(w.created).toEqual([]);
  });

  it('after the fourth attempt the batch fails with ScoringFailed', async () => {
    const jobs = ['b-score-2', 'b-score-2-1', 'b-score-2-2', 'b-score-2-3'].map((n) =>
      job(n, 'scoring', 2, 'Failed'),
    );
    const w = world({ jobs, store: { isScored: async () => false } });
    const step = await scoring(w.ctx, 2);
    expect(step.fail?.reason).toBe('ScoringFailed');
    expect(step.fail?.message).toMatch(/^scoring round 2 failed 4 times: BackoffLimitExceeded/);
    expect(w.created).toEqual([]);
  });
});

describe('comparing: one Indexed Job per round, timeouts recovered or failed', () => {
  const judge = { round: 1, planned: 10, done: 4 };

  it('creates an Indexed Job with one completion per shard and records the round start', async () => {
    const w = world({ store: { shards: async () => 3 } });
    expect(await comparing(w.ctx, judge)).toEqual({ requeueAfter: 30_000 });
    expect(w.created.map((j) => j.metadata.name)).toEqual(['b-compare-1']);
    expect(w.created[0]!.spec).toMatchObject({ completionMode: 'Indexed', completions: 3 });
    expect(w.events).toContain('Normal RoundStarted: round 1: 10 comparisons in 3 shards');
  });

  it('a round past spec.timeouts.round with half its pairs judged is scored with what exists', async () => {
    const failed: unknown[] = [];
    const w = world({
      jobs: [job('b-compare-1', 'comparison', 1, 'running', 11 * 60_000)],
      store: { shards: async () => 2, failOpenComparisons: async (...a) => void failed.push(a) },
    });
    expect(await comparing(w.ctx, { round: 1, planned: 10, done: 5 })).toEqual({ requeueAfter: 1_000 });
    expect(w.deleted).toEqual(['/apis/batch/v1/namespaces/ns/jobs/b-compare-1']);
    expect(failed).toEqual([[UID, 1, 'round_timeout']]);
    expect(w.events.some((e) => e.startsWith('Warning RoundTimedOut'))).toBe(true);
  });

  it('a round past its timeout with less than half judged fails the batch', async () => {
    const w = world({
      jobs: [job('b-compare-1', 'comparison', 1, 'running', 11 * 60_000)],
      store: { shards: async () => 2, failOpenComparisons: async () => {} },
    });
    const step = await comparing(w.ctx, judge);
    expect(step.fail).toEqual({
      reason: 'RoundTimeout',
      message: 'round 1 exceeded spec.timeouts.round (10m) with only 4/10 comparisons finished',
    });
    // Foreground: the Job stays in the cache until its pods are gone, so the role waits for them.
    expect(w.deleted).toEqual(['/apis/batch/v1/namespaces/ns/jobs/b-compare-1']);
    expect(w.propagation).toEqual(['Foreground']);
  });

  it('a Job that ended with pairs open is retried as the next attempt', async () => {
    const w = world({
      jobs: [job('b-compare-1', 'comparison', 1, 'Failed')],
      store: { shards: async () => 2, openComparisons: async () => 6 },
    });
    await comparing(w.ctx, judge);
    expect(w.created.map((j) => j.metadata.name)).toEqual(['b-compare-1-1']);
  });
});

describe('preparing: the rounds mode is fixed in the registration', () => {
  /** The registered config's rounds mode (absent: rounds, as batches registered before the key). */
  async function registeredMode(over: {
    annotation?: string;
    config?: Partial<typeof config>;
    batchApi?: boolean;
  }) {
    const batch = batchOf();
    if (over.annotation) batch.metadata.annotations = { 'cj.huleedu.io/rounds': over.annotation };
    let registered: Record<string, unknown> | undefined;
    const w = world({
      batch,
      store: {
        registerBatch: async (reg) => {
          registered = reg.config as Record<string, unknown>;
          return { uid: UID, budget_total: 66, budget_source: 'default', config: reg.config } as never;
        },
      },
    });
    w.ctx.config = { ...config, ...over.config };
    if (over.batchApi)
      w.ctx.pool = {
        ...pool,
        spec: { ...pool.spec, batching: { ...pool.spec.batching, mode: 'batch_api' } },
      };
    await preparing(w.ctx);
    expect(registered, w.events.join('\n')).toBeDefined();
    return (registered!.rounds as string | undefined) ?? 'rounds';
  }

  it('pipelined by default (ROUNDS_MODE unset, or a config without it); rounds by annotation or env', async () => {
    expect(await registeredMode({})).toBe('pipelined');
    expect(await registeredMode({ config: { roundsMode: undefined } })).toBe('pipelined');
    expect(await registeredMode({ annotation: 'rounds' })).toBe('rounds');
    expect(await registeredMode({ config: { roundsMode: 'rounds' } })).toBe('rounds');
    expect(await registeredMode({ config: { roundsMode: 'rounds' }, annotation: 'pipelined' })).toBe(
      'pipelined',
    );
    // A pool that batches through the provider's batch API runs rounds whatever the default.
    expect(await registeredMode({ batchApi: true })).toBe('rounds');
  });
});

describe('pipelined rounds: long-lived workers plan ahead until a committed stop', () => {
  const P = (over: Partial<Progress>) => progress(over);
  it('scores round 0 with a Job, then keeps the workers running whatever the round holds', () => {
    expect(nextWork(undefined, P({}), 0.5, 'pipelined')).toEqual({ kind: 'score', round: 0 });
    // Unlike rounds, an unfinished round does not wait, and a drained one is not scored by a Job.
    const judging = P({ pending: 7, currentRound: { round: 3, planned: 10, done: 3 } });
    expect(nextWork(row({ round: 2 }), judging, 0.5, 'pipelined')).toEqual({
      kind: 'pipeline',
      round: 2,
      open: 7,
    });
    const drained = P({ completed: 10, currentRound: { round: 1, planned: 10, done: 10 } });
    expect(nextWork(row({}), drained, 0.5, 'pipelined')).toEqual({ kind: 'pipeline', round: 0, open: 0 });
  });

  it('a pass that planned no pairs is not the end (the workers plan again); only a stop finishes', () => {
    const empty = row({ pairs: 0 });
    expect(nextWork(empty, P({ pending: 4 }), 0.5, 'pipelined')).toEqual({
      kind: 'pipeline',
      round: 0,
      open: 4,
    });
    const stop = row({ decision: 'stop', reason: 'converged', pairs: 0 });
    expect(nextWork(stop, P({ pending: 0 }), 0.5, 'pipelined')).toEqual({ kind: 'finish', latest: stop });
  });

  it('fails on a low success rate without waiting for a round boundary', () => {
    const bad = P({
      completed: 5,
      failed: 15,
      pending: 9,
      currentRound: { round: 4, planned: 30, done: 21 },
    });
    expect(nextWork(row({ round: 3 }), bad, 0.5, 'pipelined')).toMatchObject({
      kind: 'fail',
      reason: 'LowSuccessRate',
    });
    expect(nextWork(row({ round: 3 }), bad, 0.5, 'rounds')).toMatchObject({ kind: 'judge' });
  });

  it('carries when the last comparison finished to the workers phase (spec.timeouts.round)', () => {
    const at = new Date('2026-12-03T10:00:00Z');
    expect(nextWork(row({ round: 2 }), P({ pending: 3, lastFinishedAt: at }), 0.5, 'pipelined')).toEqual({
      kind: 'pipeline',
      round: 2,
      open: 3,
      lastFinishedAt: at.getTime(),
    });
  });

  it('workers that finish nothing for spec.timeouts.round: Progressing=False NothingJudged, an Event once, not failed', async () => {
    const MIN = 60_000;
    const workers = (ageMs: number) => [job('b-workers', 'comparison', 'batch', 'running', ageMs)];
    const progressing = (w: ReturnType<typeof world>) =>
      w.status.conditions?.find((c) => c.type === 'Progressing');
    // The workers ran 11 minutes (timeouts.round is 10m), the last verdict 11 minutes ago: idle.
    const idle = world({ jobs: workers(11 * MIN) });
    const step = await pipelining(idle.ctx, { round: 3, open: 5, lastFinishedAt: Date.now() - 11 * MIN });
    expect(step).toEqual({ requeueAfter: 5_000 });
    expect(progressing(idle)).toMatchObject({ status: 'False', reason: 'NothingJudged' });
    expect(progressing(idle)!.message).toContain(
      'no comparison finished for 10m (spec.timeouts.round) with 5 open',
    );
    expect(idle.events.filter((e) => e.startsWith('Warning NothingJudged'))).toHaveLength(1);
    expect(idle.deleted).toEqual([]); // nothing stopped, nothing failed
    // Still idle on the next pass: the condition stays (since when: its lastTransitionTime does
    // not move), no second Event.
    const idleSince = '2000-01-01T00:00:00Z';
    progressing(idle)!.lastTransitionTime = idleSince;
    await pipelining(idle.ctx, { round: 3, open: 5, lastFinishedAt: Date.now() - 12 * MIN });
    expect(progressing(idle)).toMatchObject({ status: 'False', reason: 'NothingJudged' });
    expect(progressing(idle)!.lastTransitionTime).toBe(idleSince);
    expect(idle.events.filter((e) => e.startsWith('Warning NothingJudged'))).toHaveLength(1);
    // A verdict arrives: progressing again.
    await pipelining(idle.ctx, { round: 3, open: 4, lastFinishedAt: Date.now() - 1_000 });
    expect(progressing(idle)).toMatchObject({ status: 'True', reason: 'Comparing' });
    // No verdict yet, but the workers started 2 minutes ago (e.g. a retried Job): not idle yet.
    const fresh = world({ jobs: workers(2 * MIN) });
    await pipelining(fresh.ctx, { round: 3, open: 5, lastFinishedAt: Date.now() - 30 * MIN });
    expect(progressing(fresh)).toMatchObject({ status: 'True', reason: 'Comparing' });
    // Nothing open (a pass is about to plan, or the stop is near): not a stall.
    const drained = world({ jobs: workers(30 * MIN) });
    await pipelining(drained.ctx, { round: 3, open: 0, lastFinishedAt: Date.now() - 30 * MIN });
    expect(progressing(drained)).toMatchObject({ status: 'True' });
    expect(drained.events.filter((e) => e.includes('NothingJudged'))).toEqual([]);
  });

  it('the queue low-water mark: two pairs per call in flight, never more than a round', () => {
    expect(pipelineLow(26, 12)).toBe(24);
    expect(pipelineLow(26, 24)).toBe(26);
    expect(pipelineLow(1, 1)).toBe(1);
    expect(pipelineLow(100, 1)).toBe(2);
  });

  it('creates one workers Job for the batch (an index per worker), with the low-water mark', async () => {
    const w = world({ store: { upsertLimiterRow: async () => {}, deleteLimiterRow: async () => {} } });
    w.ctx.registered = { config: { roundSize: 26 } } as unknown as PhaseContext['registered'];
    expect(await pipelining(w.ctx, { round: 0, open: 26 })).toEqual({ requeueAfter: 5_000 });
    expect(w.created.map((j) => j.metadata.name)).toEqual(['b-workers']);
    const spec = w.created[0]!.spec as any;
    expect(spec).toMatchObject({ completionMode: 'Indexed', completions: 2, parallelism: 2 });
    expect(w.created[0]!.metadata).toMatchObject({ labels: { 'cj.huleedu.io/round': 'batch' } });
    const env = spec.template.spec.containers[0].env as { name: string; value?: string }[];
    // 2 workers × 16 lanes (the pool's default concurrency) in flight: capped by a round.
    expect(env.find((e) => e.name === 'CJ_PIPELINE_LOW')?.value).toBe('26');
    // Later passes find it running and create nothing, whatever the round.
    const again = world({ jobs: [job('b-workers', 'comparison', 'batch', 'running')] });
    await pipelining(again.ctx, { round: 5, open: 3 });
    expect(again.created).toEqual([]);
  });

  it("workers follow the batch's share of the pool: calls it can have in flight × 2, in pods of `lanes`", () => {
    const shared = {
      parallelism: 2,
      lanes: 16,
      requestsPerMinute: 600,
      maxConcurrency: 16,
      weight: 10,
      latencyMs: 10_000,
    };
    // 25 batches on 600/min: 24/min each, 4 in flight at 10 s, 8 with headroom: one pod
    expect(workersWanted({ ...shared, poolWeight: 250 })).toBe(1);
    // alone: 100 in flight wanted, capped by the pool's 16, then by spec.workers.parallelism
    expect(workersWanted({ ...shared, poolWeight: 10 })).toBe(1);
    expect(workersWanted({ ...shared, lanes: 4, poolWeight: 10 })).toBe(2);
    // a fast pool with a slow judge: 1,000/min × 4 s × 2, capped at 50 in flight = 4 pods of 16
    const fast = { ...shared, parallelism: 8, requestsPerMinute: 1000, maxConcurrency: 50, latencyMs: 4000 };
    expect(workersWanted({ ...fast, poolWeight: 0 })).toBe(4);
    // priority counts: 30 of 50 on 1,000/min at 4 s wants 80 in flight → 50 → 4 pods; 10 of 50 → 27 → 2
    expect(workersWanted({ ...fast, poolWeight: 50, weight: 30 })).toBe(4);
    expect(workersWanted({ ...fast, poolWeight: 50, weight: 10 })).toBe(2);
    // never none
    expect(workersWanted({ ...shared, latencyMs: 0, poolWeight: 1e6 })).toBe(1);
  });

  it('a batch among many starts one worker and grows its Job when its share grows', async () => {
    const lanes2 = { ...pool, spec: { ...pool.spec, concurrency: 4 } } as LLMProviderPool;
    const w = world();
    w.ctx.pool = lanes2;
    w.ctx.registered = { config: { roundSize: 26 } } as unknown as PhaseContext['registered'];
    w.ctx.poolWeight = () => 250;
    await pipelining(w.ctx, { round: 0, open: 26 });
    expect(w.created[0]!.spec).toMatchObject({ completions: 1, parallelism: 1, maxFailedIndexes: 1 });
    expect(w.events.some((e) => e.includes('WorkersStarted: 1 of at most 2 workers'))).toBe(true);
    // the others ended: alone, the batch may use the whole pool
    const running = {
      ...job('b-workers', 'comparison', 'batch', 'running'),
      spec: { completions: 1, parallelism: 1 },
    };
    const later = world({ jobs: [running] });
    later.ctx.pool = lanes2;
    later.ctx.poolWeight = () => 10;
    later.ctx.pace = {
      finishedLastMinute: 0,
      windowSeconds: 0,
      batchRequestsLastMinute: 0,
      poolRequestsLastMinute: 0,
      poolLatencyMs: 5_000,
    };
    await pipelining(later.ctx, { round: 3, open: 10 });
    expect(later.patched).toEqual([
      {
        path: '/apis/batch/v1/namespaces/ns/jobs/b-workers',
        body: { spec: { completions: 2, parallelism: 2, maxFailedIndexes: 2 } },
      },
    ]);
    expect(later.created).toEqual([]);
    // and never shrinks
    const crowded = world({ jobs: [{ ...running, spec: { completions: 2, parallelism: 2 } }] });
    crowded.ctx.pool = lanes2;
    crowded.ctx.poolWeight = () => 500;
    await pipelining(crowded.ctx, { round: 3, open: 10 });
    expect(crowded.patched).toEqual([]);
  });

  it('spec.suspend stops the running workers (they release their leases); resuming starts them again', async () => {
    const w = world({
      batch: batchOf({ suspend: true }),
      jobs: [job('b-workers', 'comparison', 'batch', 'running')],
    });
    expect(await pending(w.ctx)).toEqual({});
    expect(w.deleted).toEqual(['/apis/batch/v1/namespaces/ns/jobs/b-workers']);
    // Foreground: the Job stays, marked deleted, until its pods are gone (a delete meanwhile waits for them).
    expect(w.propagation).toEqual(['Foreground']);
    // Marked deleted: the next suspended pass deletes nothing more.
    w.jobs[0]!.metadata!.deletionTimestamp = new Date().toISOString();
    expect(await pending(w.ctx)).toEqual({});
    expect(w.deleted).toHaveLength(1);
    // Resumed while its pods terminate: the workers Job is not started again until it is gone.
    const resumed = world({ jobs: w.jobs });
    expect(await pipelining(resumed.ctx, { round: 3, open: 5 })).toEqual({ requeueAfter: 5_000 });
    expect(resumed.created).toEqual([]);
    resumed.jobs.splice(0, 1);
    await pipelining(resumed.ctx, { round: 3, open: 5 });
    expect(resumed.created.map((j) => j.metadata.name)).toEqual(['b-workers']);
  });

  it('a suspended batch being deleted waits for the pods of its stopped workers before its role goes', async () => {
    const w = world({
      batch: batchOf({ suspend: true }),
      jobs: [job('b-workers', 'comparison', 'batch', 'running')],
    });
    await pending(w.ctx);
    // The delete of the batch comes while the suspended workers' pods terminate.
    const at = Date.now();
    w.jobs[0]!.metadata!.deletionTimestamp = new Date(at).toISOString();
    w.ctx.batch.metadata.deletionTimestamp = new Date(at + 1_000).toISOString();
    const stopped = await stopWorkers(w.ctx, at + 2_000);
    expect(stopped).toEqual({ wait: { requeueAfter: 5_000 } });
    expect(w.status.conditions?.find((c) => c.type === 'RoleRetired')).toMatchObject({
      status: 'False',
      reason: 'StoppingWorkers',
    });
    expect(w.deleted).toHaveLength(1);
    w.jobs.splice(0, 1);
    expect(await stopWorkers(w.ctx, at + 3_000)).toEqual({ left: [] });
  });

  it('a workers Job that ended while the batch continues is retried; one that ended on a stop is not', async () => {
    const ended = job('b-workers', 'comparison', 'batch', 'Complete');
    const cont = world({
      jobs: [ended],
      store: {
        latestRound: async () => row({ round: 4 }),
        upsertLimiterRow: async () => {},
        deleteLimiterRow: async () => {},
      },
    });
    await pipelining(cont.ctx, { round: 4, open: 5 });
    expect(cont.created.map((j) => j.metadata.name)).toEqual(['b-workers-1']);
    const stopped = world({ jobs: [ended], store: { latestRound: async () => row({ decision: 'stop' }) } });
    expect(await pipelining(stopped.ctx, { round: 4, open: 0 })).toEqual({ requeueAfter: 1 });
    expect(stopped.created).toEqual([]);
    const exhausted = world({
      jobs: [0, 1, 2, 3].map((a) => job(a ? `b-workers-${a}` : 'b-workers', 'comparison', 'batch', 'Failed')),
      store: { latestRound: async () => row({ round: 4 }) },
    });
    expect((await pipelining(exhausted.ctx, { round: 4, open: 5 })).fail?.reason).toBe('ComparisonsFailed');
  });
});

describe('terminal: waits for the relay, not on a short timer', () => {
  const done = () => {
    const w = world();
    w.status.phase = 'Succeeded';
    return w;
  };

  it('a published event sets EventPublished=True and asks for nothing more', async () => {
    const w = done();
    w.ctx.store = fakeStore({
      eventState: async () => ({ eventId: 'e1', sent: true, parkedReason: null }),
      retireRole: async () => {},
    });
    expect(await terminal(w.ctx)).toEqual({});
    expect(w.status.conditions?.find((c) => c.type === 'EventPublished')?.status).toBe('True');
  });

  it('an unsent event leaves only a slow safety net (the relay enqueues the batch)', async () => {
    const w = done();
    w.ctx.store = fakeStore({
      eventState: async () => ({ eventId: 'e1', sent: false, parkedReason: null }),
      retireRole: async () => {},
    });
    expect(await terminal(w.ctx)).toEqual({ requeueAfter: 60_000 });
  });
});

describe('retiring: the role goes only once the worker pods are gone', () => {
  const T0 = Date.parse('2026-12-03T06:00:00Z');
  /** An ended batch (completionTime T0) on a fake clock, with its Jobs and a store that records the retire. */
  const ended = (jobs: JobObject[], phase: 'Succeeded' | 'Failed' = 'Failed') => {
    const w = world({ jobs });
    const clock = { t: T0 };
    w.ctx.now = () => clock.t;
    w.status.phase = phase;
    w.status.completionTime = new Date(T0).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const retired: string[] = [];
    w.ctx.store = fakeStore({
      retireRole: async (uid) => {
        retired.push(uid);
      },
      eventState: async () => ({ eventId: 'e1', sent: true, parkedReason: null }),
    });
    const cond = () => w.status.conditions?.find((c) => c.type === 'RoleRetired');
    /** The API server marks a Foreground-deleted Job as deleted; the cache then shows it so. */
    const markDeleted = (name: string, at: number) => {
      const j = w.jobs.find((x) => x.metadata?.name === name)!;
      j.metadata!.deletionTimestamp = new Date(at).toISOString();
    };
    const gone = (name: string) =>
      w.jobs.splice(
        w.jobs.findIndex((x) => x.metadata?.name === name),
        1,
      );
    return { ...w, clock, retired, cond, markDeleted, gone };
  };

  it('no worker Job running: the role is retired on the first pass, finished Jobs untouched', async () => {
    const w = ended([
      job('b-compare-3', 'comparison', 3, 'Complete'),
      job('b-score-3', 'scoring', 3, 'Failed'),
    ]);
    expect(await terminal(w.ctx)).toEqual({});
    expect(w.retired).toEqual([UID]);
    expect(w.deleted).toEqual([]);
    expect(w.cond()).toMatchObject({ status: 'True', reason: 'Retired' });
    // Idempotent: a later pass retires nothing again.
    await terminal(w.ctx);
    expect(w.retired).toEqual([UID]);
  });

  it('running workers get 30 s to end by themselves: no delete, no retire, a requeue at the deadline', async () => {
    const w = ended([
      job('b-workers', 'comparison', 'batch', 'running'),
      job('b-score-0', 'scoring', 0, 'Complete'),
    ]);
    w.clock.t = T0 + 10_000;
    expect(await terminal(w.ctx)).toEqual({ requeueAfter: 20_000 });
    expect(w.cond()).toMatchObject({ status: 'False', reason: 'WaitingForWorkers' });
    expect(w.cond()?.message).toContain('b-workers');
    expect(w.deleted).toEqual([]);
    expect(w.retired).toEqual([]);
    // The worker exits 0 by itself (it saw the committed outcome): the role goes at once.
    w.jobs[0] = job('b-workers', 'comparison', 'batch', 'Complete');
    w.clock.t = T0 + 12_000;
    expect(await terminal(w.ctx)).toEqual({});
    expect(w.retired).toEqual([UID]);
    expect(w.deleted).toEqual([]);
    expect(w.cond()).toMatchObject({ status: 'True', reason: 'Retired' });
  });

  it('after the grace: running Jobs are deleted Foreground (finished kept), the role waits until they are gone', async () => {
    const w = ended([
      job('b-compare-2', 'comparison', 2, 'running'),
      job('b-compare-1', 'comparison', 1, 'Complete'),
    ]);
    w.clock.t = T0 + 30_000;
    const step = await terminal(w.ctx);
    expect(step.requeueAfter).toBeGreaterThan(0);
    expect(step.requeueAfter).toBeLessThanOrEqual(5_000);
    expect(w.deleted).toEqual(['/apis/batch/v1/namespaces/ns/jobs/b-compare-2']);
    expect(w.propagation).toEqual(['Foreground']);
    expect(w.events.filter((e) => e.includes('StoppingWorkers'))).toHaveLength(1);
    expect(w.cond()).toMatchObject({ status: 'False', reason: 'StoppingWorkers' });
    expect(w.retired).toEqual([]);
    // The Job is marked deleted while its pods terminate: no second delete, no second event, no retire.
    w.markDeleted('b-compare-2', T0 + 30_000);
    w.clock.t = T0 + 40_000;
    expect((await terminal(w.ctx)).requeueAfter).toBeGreaterThan(0);
    expect(w.deleted).toHaveLength(1);
    expect(w.events.filter((e) => e.includes('StoppingWorkers'))).toHaveLength(1);
    expect(w.retired).toEqual([]);
    // Its pods are gone (so is the Job): now the role goes.
    w.gone('b-compare-2');
    w.clock.t = T0 + 45_000;
    expect(await terminal(w.ctx)).toEqual({});
    expect(w.retired).toEqual([UID]);
    expect(w.cond()).toMatchObject({ status: 'True', reason: 'Retired' });
    expect(w.events.some((e) => e.includes('WorkersNotGone'))).toBe(false);
  });

  it('pods still there 60 s after the delete: the role is retired anyway, and the status and an event say so', async () => {
    const w = ended([job('b-workers', 'comparison', 'batch', 'running')]);
    w.clock.t = T0 + 31_000;
    await terminal(w.ctx);
    w.markDeleted('b-workers', T0 + 31_000);
    w.clock.t = T0 + 31_000 + 59_000;
    expect((await terminal(w.ctx)).requeueAfter).toBeGreaterThan(0);
    expect(w.retired).toEqual([]);
    w.clock.t = T0 + 31_000 + 60_000;
    expect(await terminal(w.ctx)).toEqual({});
    expect(w.retired).toEqual([UID]);
    expect(w.cond()).toMatchObject({ status: 'True', reason: 'WorkersNotGone' });
    expect(w.cond()?.message).toContain('b-workers');
    expect(w.events.filter((e) => e.startsWith('Warning WorkersNotGone'))).toHaveLength(1);
  });

  /** A CJBatch being deleted at T0, its Jobs, and a reconciler on a fake clock that records every call. */
  const deletion = (jobs: JobObject[], endedAt?: number) => {
    const deleting = batchOf();
    deleting.metadata.deletionTimestamp = new Date(T0).toISOString();
    if (endedAt !== undefined)
      deleting.status = { phase: 'Failed', completionTime: new Date(endedAt).toISOString() };
    const calls: string[] = [];
    const client = {
      mergePatch: async (path: string) => {
        calls.push(`status ${path.endsWith('/status')}`);
        return {};
      },
      delete: async (path: string, opts?: { propagationPolicy?: string }) => {
        calls.push(`delete ${path} ${opts?.propagationPolicy}`);
        return {};
      },
      jsonPatch: async (path: string) => {
        calls.push(`finalizer ${path}`);
        return {};
      },
    } as unknown as KubeClient;
    const clock = { t: T0 + 5_000 };
    const reconciler = new CJBatchReconciler({
      client,
      sql: undefined as never,
      batches: { get: () => deleting } as unknown as Informer<CJBatch>,
      pools: { get: () => pool } as unknown as Informer<LLMProviderPool>,
      jobs: { list: () => jobs } as unknown as Informer<JobObject>,
      recorder: {
        event: async (_o: unknown, _t: string, reason: string) => void calls.push(`event ${reason}`),
      } as unknown as EventRecorder,
      config,
      store: fakeStore({
        deleteRows: async () => void calls.push('rows'),
        dropRole: async () => {
          calls.push('drop');
          return true;
        },
      }),
      now: () => clock.t,
    });
    const rc = { log: pino({ level: 'silent' }), reconcileID: 'r', signal: new AbortController().signal };
    const reconcile = () => reconciler.reconcile({ namespace: 'ns', name: 'b' }, rc);
    return { calls, clock, reconcile };
  };

  it('the delete path: running workers are stopped at once; rows, role and finalizer only once they are gone', async () => {
    const jobs: JobObject[] = [job('b-workers', 'comparison', 'batch', 'running')];
    const d = deletion(jobs);
    // Deleted before it ended: no grace (its rows go next); the Job is deleted Foreground.
    expect((await d.reconcile())?.requeueAfter).toBeGreaterThan(0);
    expect(d.calls).toContain('delete /apis/batch/v1/namespaces/ns/jobs/b-workers Foreground');
    expect(d.calls).toContain('event StoppingWorkers');
    expect(d.calls.some((c) => c === 'rows' || c === 'drop' || c.startsWith('finalizer'))).toBe(false);
    // The Job (and with it its pods) is gone: rows, role, then the finalizer, in that order.
    jobs.length = 0;
    d.calls.length = 0;
    expect(await d.reconcile()).toBeUndefined();
    expect(d.calls).toEqual([
      'rows',
      'drop',
      'finalizer /apis/cj.huleedu.io/v1alpha1/namespaces/ns/cjbatches/b',
    ]);
  });

  it('the delete path of a batch that ended: the grace counts from its end, the finalizer waits', async () => {
    const jobs: JobObject[] = [job('b-compare-4', 'comparison', 4, 'running')];
    const d = deletion(jobs, T0 - 10_000);
    // Ended at T0-10 s, now T0+5 s: 15 s of grace left; only the status (WaitingForWorkers) is written.
    expect(await d.reconcile()).toEqual({ requeueAfter: 15_000 });
    expect(d.calls).toEqual(['status true']);
    d.clock.t = T0 + 20_000;
    d.calls.length = 0;
    await d.reconcile();
    expect(d.calls).toContain('delete /apis/batch/v1/namespaces/ns/jobs/b-compare-4 Foreground');
    expect(d.calls.some((c) => c === 'rows' || c === 'drop' || c.startsWith('finalizer'))).toBe(false);
  });
});

describe('TerminalError: an invalid spec is shown as a condition and not retried', () => {
  const invalid = () => batchOf({ essays: { configMapRefs: [{ name: 'missing', format: 'perKey' }] } });

  it('pending throws TerminalError(reason InvalidSpec) after setting InvalidSpec=True', async () => {
    const w = world({ batch: invalid() });
    const err = await pending(w.ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect((err as TerminalError).reason).toBe('InvalidSpec');
    const c = w.status.conditions?.find((x) => x.type === 'InvalidSpec');
    expect(c?.status).toBe('True');
    expect(c?.message).toMatch(/spec\.essays\.configMapRefs\[0\]/);
  });

  it('the reconciler writes Progressing=False/InvalidSpec, then rethrows for the controller', async () => {
    const batch = invalid();
    const patches: { path: string; body: { status: Record<string, unknown> } }[] = [];
    const client = {
      get: async () => {
        throw new ApiError(404, 'NotFound', 'not found', undefined);
      },
      mergePatch: async (path: string, body: { status: Record<string, unknown> }) => {
        patches.push({ path, body });
        return {};
      },
    } as unknown as KubeClient;
    const reconciler = new CJBatchReconciler({
      client,
      sql: undefined as never,
      batches: { get: () => batch } as unknown as Informer<CJBatch>,
      pools: { get: () => pool } as unknown as Informer<LLMProviderPool>,
      jobs: { list: () => [] } as unknown as Informer<JobObject>,
      recorder: { event: async () => {} } as unknown as EventRecorder,
      config,
      store: fakeStore({ committedOutcome: async () => undefined, getBatch: async () => undefined }),
    });
    const rc = { log: pino({ level: 'silent' }), reconcileID: 'r', signal: new AbortController().signal };
    const err = await reconciler.reconcile({ namespace: 'ns', name: 'b' }, rc).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TerminalError);
    expect(patches).toHaveLength(1);
    expect(patches[0]!.path).toBe('/apis/cj.huleedu.io/v1alpha1/namespaces/ns/cjbatches/b/status');
    const conds = patches[0]!.body.status.conditions as { type: string; status: string; reason: string }[];
    expect(conds.find((c) => c.type === 'Progressing')).toMatchObject({
      status: 'False',
      reason: 'InvalidSpec',
    });
    expect(conds.find((c) => c.type === 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
  });
});

describe('audit: pairs out through the ConfigMap, answers in, one event', () => {
  // 8 essays in a chain: the LLM mostly agrees with the scores (theta = -index), except e1>e0.
  const ids = Array.from({ length: 8 }, (_, i) => `e${i}`);
  const theta = new Map(ids.map((id, i) => [id, -i]));
  const verdicts = ids.flatMap((a, i) =>
    ids.slice(i + 1).map((b) => ({ a, b, winner: a === 'e0' && b === 'e1' ? 'e1' : a })),
  );
  const audited = (annotation: string, cmData?: Record<string, string>) => {
    const batch = batchOf();
    batch.metadata.annotations = {
      'cj.huleedu.io/audit': annotation,
      'cj.huleedu.io/audit-pairs': '6',
      'cj.huleedu.io/audit-nonce': `n-${annotation}`,
    };
    const w = world({ batch });
    w.status.phase = 'Succeeded';
    const applied: { name: string; body: any }[] = [];
    const commits: any[] = [];
    w.ctx.owned.applyConfigMap = async (name, body) => {
      applied.push({ name, body });
    };
    w.ctx.owned.configMap = async () =>
      cmData ? ({ metadata: { ownerReferences: [{ uid: UID }] }, data: cmData } as never) : undefined;
    w.ctx.store = fakeStore({
      llmVerdicts: async () => verdicts,
      finalThetas: async () => theta,
      essayTexts: async (_uid, want) => new Map(want.map((id) => [id, `text of ${id}`])),
      commitAudit: async (x) => {
        commits.push(x);
        return { eventId: EV, created: true, payload: x.event(EV) };
      },
    });
    return { ...w, applied, commits };
  };

  it('requested: writes the pairs and their texts, never a verdict, and waits', async () => {
    const w = audited('requested');
    await audit(w.ctx);
    expect(w.applied.map((a) => a.name)).toEqual(['b-audit']);
    const data = w.applied[0]!.body.data;
    const pairs = JSON.parse(data['pairs.json']);
    expect(pairs).toHaveLength(6);
    // The strongest disagreement (the LLM's e1 over e0) is among them.
    expect(pairs.some((p: any) => [p.a, p.b].sort().join() === 'e0,e1')).toBe(true);
    expect(data['pairs.json']).not.toMatch(/winner|llm/);
    expect(Object.keys(JSON.parse(data['essays.json'])).sort()).toEqual(
      [...new Set(pairs.flatMap((p: any) => [p.a, p.b]))].sort(),
    );
    expect(w.applied[0]!.body.metadata.ownerReferences[0].uid).toBe(UID);
    // The state says which step of the CLI it answers.
    expect(w.status.audit).toMatchObject({
      state: 'Waiting',
      pairs: 6,
      configMap: 'b-audit',
      nonce: 'n-requested',
    });
  });

  it('submitted: stores the answers with the event and reports the agreement', async () => {
    const pairs = [
      { id: 'p1', a: 'e1', b: 'e0' },
      { id: 'p2', a: 'e2', b: 'e3' },
      { id: 'p3', a: 'e4', b: 'e5' },
    ];
    const answers = [
      { id: 'p1', winner: 'e0', seconds: 3 }, // the LLM said e1: disagree
      { id: 'p2', winner: 'e2', seconds: 2 }, // agree
      { id: 'p3', winner: null }, // skipped
    ];
    const w = audited('submitted', {
      'pairs.json': JSON.stringify(pairs),
      'answers.json': JSON.stringify({ judge: 'ms-lee', answers }),
    });
    await audit(w.ctx);
    expect(w.commits).toHaveLength(1);
    expect(w.commits[0].judge).toBe('ms-lee');
    expect(w.commits[0].judgements).toEqual([
      { a: 'e1', b: 'e0', winner: 'e0', seconds: 3 },
      { a: 'e2', b: 'e3', winner: 'e2', seconds: 2 },
    ]);
    expect(w.status.audit).toMatchObject({
      state: 'Audited',
      judge: 'ms-lee',
      pairs: 3,
      judged: 2,
      agreements: 1,
      agreement: 0.5,
      modelAgreements: 2,
      eventId: EV,
    });
    expect(w.events.join('\n')).toMatch(/Normal Audited: ms-lee agreed with the AI judge on 1 of 2 pairs/);
    const event = w.commits[0].event(EV);
    expect(validate(loadEventSchema('cj.batch.audited.v1'), event)).toEqual([]);
    expect(event.type).toBe('cj.batch.audited.v1');
  });

  it('submitted with answers for pairs never asked: Invalid with the reason, nothing stored', async () => {
    const w = audited('submitted', {
      'pairs.json': JSON.stringify([{ id: 'p1', a: 'e1', b: 'e0' }]),
      'answers.json': JSON.stringify({ answers: [{ id: 'p1', winner: 'e7' }] }),
    });
    await audit(w.ctx);
    expect(w.commits).toHaveLength(0);
    expect(w.status.audit).toMatchObject({ state: 'Invalid', nonce: 'n-submitted' });
    expect(w.status.audit?.message).toMatch(/answers\[0\]\.winner must be "e1", "e0" or null/);
  });

  it('does nothing without the annotation, or on a batch that did not succeed', async () => {
    const w = world();
    w.status.phase = 'Succeeded';
    await audit(w.ctx); // the fake store throws on any call
    expect(w.status.audit).toBeUndefined();
    const f = audited('requested');
    f.status.phase = 'Failed';
    await audit(f.ctx);
    expect(f.applied).toEqual([]);
  });
});

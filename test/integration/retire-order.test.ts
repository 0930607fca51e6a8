// The retire order on the real apiserver (docs/architecture.md, "Retiring the batch's role"): a
// pipelined batch that ends while its long-lived workers Job is still live keeps its database role
// until that Job is over. Two batches fail side by side (every answer of the fake judge is a
// refusal: LowSuccessRate) while their workers still judge:
//  - `ends`: its workers see the committed outcome and exit 0 by themselves; the Job completes and
//    is kept, and only then is the role retired (RoleRetired False WaitingForWorkers, then True Retired);
//  - `hung`: one of its two worker pods is frozen (SIGSTOP) and never exits; after the grace the
//    Job is deleted Foreground (Event StoppingWorkers) and the role goes once the Job is gone.
// A sampler reads, every 250 ms and in this order, the role (Postgres), the batch and its Job
// (apiserver): a role retired while a later read still shows the Job live is a broken order. Both
// end with the drills' invariants: the Failed outcome cancelled every open pair, nothing pending.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobState } from '../../operator/src/controllers/cjbatch/jobs.js';
import { Drill } from './drill-invariants.js';
import { api, waitFor } from './helpers.js';

const pipelined = (b: any) => {
  b.metadata.annotations = { 'cj.huleedu.io/rounds': 'pipelined' };
  b.spec.workers = { parallelism: 2 };
  // Two lanes per pod: the batch's share of the pool then asks for both pods (workersWanted), so
  // `hung` has one pod to freeze and one that keeps judging until the batch fails.
  b.spec.overrides = { limits: { maxConcurrency: 2 } };
};

/** What one read of the batch, its role and its workers Job showed. */
interface Sample {
  t: number;
  finalized: boolean;
  retired: boolean;
  phase?: string;
  role?: string;
  /** Undefined: the Job is gone (or not created yet). */
  job?: { state: string; deleting: boolean; foreground: boolean };
}

const podPid = (pod: any): number =>
  Number(/^process:\/\/(\d+)$/.exec(pod.status?.containerStatuses?.[0]?.containerID ?? '')?.[1]);

const compact = (s: Sample[]) =>
  s
    .map(
      (x) =>
        `${x.phase}/${x.finalized ? 'outcome' : '-'}/${x.role ?? '-'}/${x.retired ? 'NOLOGIN' : 'login'}/${
          x.job ? `${x.job.state}${x.job.deleting ? '+deleting' : ''}` : 'no-job'
        }`,
    )
    .filter((x, i, a) => i === 0 || a[i - 1] !== x)
    .join(' → ');

describe('retire order: the role goes only after the workers Job is over', () => {
  const d = new Drill('retire');
  const frozen: number[] = [];
  beforeAll(async () => {
    // Slow answers, so that workers are judging when the outcome is committed.
    await d.setup({ latencyMs: 3_000 });
    // Every answer a refusal: comparisons fail without a re-ask, the batch fails (LowSuccessRate).
    d.fake.setFaults({ stopReasonNext: { reason: 'refusal', count: 1_000_000 } });
    await d.startOperator('retire-op', { LEADER_ELECTION: 'false' });
    await d.poolReady();
  }, 120_000);
  afterAll(async () => {
    for (const pid of frozen)
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    await d.teardown();
  });

  /** Samples `name` until its RoleRetired is True and its Job is over, plus a second of tail. */
  async function watch(name: string, until = 240_000): Promise<Sample[]> {
    const k = api();
    const samples: Sample[] = [];
    const end = Date.now() + until;
    let doneAt: number | undefined;
    let uid: string | undefined;
    while (Date.now() < end && (doneAt === undefined || Date.now() < doneAt + 1_000)) {
      uid ??= (await k.get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${d.ns}/cjbatches/${name}`)).metadata.uid;
      // The role first: a Job read afterwards that is still live was live when the role was read.
      const [db] = await d.sql`
        SELECT (SELECT finalized_at IS NOT NULL FROM batches WHERE uid = ${uid!}) AS finalized,
               coalesce((SELECT retired_at IS NOT NULL FROM cj_batch_roles WHERE batch_uid = ${uid!}), false) AS retired`;
      const b = await k.get(`/apis/cj.huleedu.io/v1alpha1/namespaces/${d.ns}/cjbatches/${name}`);
      const j = await k.get(`/apis/batch/v1/namespaces/${d.ns}/jobs/${name}-workers`).catch(() => undefined);
      const rr = (b.status?.conditions ?? []).find((c: any) => c.type === 'RoleRetired');
      const s: Sample = {
        t: Date.now(),
        finalized: !!db?.finalized,
        retired: !!db?.retired,
        phase: b.status?.phase,
        role: rr ? `${rr.status}:${rr.reason}` : undefined,
        job: j && {
          state: jobState(j),
          deleting: !!j.metadata.deletionTimestamp,
          foreground: (j.metadata.finalizers ?? []).includes('foregroundDeletion'),
        },
      };
      samples.push(s);
      const over = !s.job || s.job.state === 'complete' || s.job.state === 'failed';
      if (doneAt === undefined && rr?.status === 'True' && over) doneAt = Date.now();
      await new Promise((r) => setTimeout(r, 250));
    }
    return samples;
  }

  /** The invariant of the order, on every sample; the timeline goes into the message. */
  function expectOrder(name: string, samples: Sample[]) {
    const timeline = `${name}: ${compact(samples)}`;
    console.log(`[retire-order] ${timeline}`);
    const broken = samples.filter(
      (s) => s.retired && s.job && s.job.state !== 'complete' && s.job.state !== 'failed',
    );
    expect(broken, `role retired while the workers Job was live\n${timeline}`).toEqual([]);
    // The outcome is committed before anything about the role is said.
    expect(
      samples.filter((s) => s.role && !s.finalized),
      `RoleRetired before the outcome\n${timeline}`,
    ).toEqual([]);
    expect(samples.at(-1)!.role, timeline).toBe('True:Retired');
    expect(samples.at(-1)!.retired, timeline).toBe(true);
    return timeline;
  }

  const events = async (name: string, reason: string) =>
    ((await api().get(`/apis/events.k8s.io/v1/namespaces/${d.ns}/events`)).items as any[]).filter(
      (e) => e.regarding?.name === name && e.reason === reason,
    );

  it.concurrent('workers that end by themselves: outcome, WaitingForWorkers, the Job completes (kept), then Retired', async () => {
    await d.applyBatch('ends', pipelined);
    const samples = await watch('ends');
    const timeline = expectOrder('ends', samples);
    // Seen waiting while the Job was live: the order was exercised, not skipped.
    expect(
      samples.some((s) => s.role === 'False:WaitingForWorkers' && s.job?.state === 'running'),
      `never saw WaitingForWorkers with the Job live\n${timeline}`,
    ).toBe(true);
    expect(samples.at(-1)!.phase).toBe('Failed');
    const st = await d.status('ends');
    expect(st.conditions.find((c: any) => c.type === 'Succeeded')?.reason).toBe('LowSuccessRate');
    // The Job completed by itself (every pod exit 0) and is still there: never deleted.
    const job = await api().get(`/apis/batch/v1/namespaces/${d.ns}/jobs/ends-workers`);
    expect(job.metadata.deletionTimestamp, timeline).toBeUndefined();
    expect(jobState(job), timeline).toBe('complete');
    expect(samples.some((s) => s.job?.deleting)).toBe(false);
    const pods = (
      await d.get(['get', 'pods', '-l', 'cj.huleedu.io/batch=ends,cj.huleedu.io/role=comparison'])
    ).items as any[];
    expect(pods.length).toBeGreaterThan(0);
    expect(pods.map((p) => p.status.containerStatuses?.[0]?.state?.terminated?.exitCode)).toEqual(
      pods.map(() => 0),
    );
    expect(await events('ends', 'StoppingWorkers')).toEqual([]);
    // The drills' invariants: the Failed outcome cancelled what was open (nothing pending or
    // leased), status counters == rows, one event.
    await d.finish('ends', { expectPhase: 'Failed' });
  }, 300_000);

  it.concurrent('a worker that does not exit: StoppingWorkers, the Job deleted Foreground, Retired once it is gone', async () => {
    await d.applyBatch('hung', pipelined);
    const pod = await waitFor(
      'a running worker pod of hung',
      async () => (await d.comparisonPods('hung')).find((p) => podPid(p) > 0),
      120_000,
    );
    const job = await api().get(`/apis/batch/v1/namespaces/${d.ns}/jobs/hung-workers`);
    expect(job.spec.parallelism, 'hung-workers must run two pods: one frozen, one to end the batch').toBe(2);
    process.kill(podPid(pod), 'SIGSTOP');
    frozen.push(podPid(pod));
    const samples = await watch('hung');
    const timeline = expectOrder('hung', samples);
    expect(samples.at(-1)!.phase).toBe('Failed');
    // The grace ran out with the frozen pod still there: stopped, Foreground, and waited for.
    expect(
      samples.some((s) => s.role === 'False:WaitingForWorkers'),
      timeline,
    ).toBe(true);
    expect(
      samples.some((s) => s.role === 'False:StoppingWorkers' && s.job?.deleting && s.job.foreground),
      `never saw the Job deleted Foreground while StoppingWorkers\n${timeline}`,
    ).toBe(true);
    expect(samples.at(-1)!.job, timeline).toBeUndefined();
    expect(await events('hung', 'StoppingWorkers')).toHaveLength(1);
    expect(await events('hung', 'WorkersNotGone')).toEqual([]);
    // The frozen pod's leased pairs too: cancelled with the outcome, nothing left open.
    await d.finish('hung', { expectPhase: 'Failed' });
  }, 300_000);
});

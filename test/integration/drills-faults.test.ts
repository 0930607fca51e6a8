// Fault drills of issue 9, data plane: the LLM provider failing (30% 529s with bursts of 429s),
// Postgres restarted mid-round, and a worker whose leases expire (stalled process). Each drill runs
// the small sample batch in its own namespace and database and ends with the invariants of
// drill-invariants.ts: no lost comparison, no duplicated event id, a terminal phase with a reason.
// Kafka down at finalization is covered by events.test.ts.
//
// The Postgres drill restarts the stack's own Postgres: it is skipped on the shared dev stack
// (run with CJ_REUSE_DEV=0 for a private one) and leaves the stack healthy for the next file.
import { spawn } from 'node:child_process';
import { existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStack, restartPostgres } from '../../hack/stack.js';
import { Drill, report } from './drill-invariants.js';
import { stack, waitFor } from './helpers.js';
import { RUNTIME_MAIN } from './operator-harness.js';

const onDevStack = () => stack().name === 'dev';

/** A smaller budget than the sample's default (66): about 5 rounds, enough to interrupt. */
const small = (b: any) => {
  b.spec.budget = { maxComparisons: 36 };
};

async function drill<T>(d: Drill, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } finally {
    await d.teardown();
  }
}

describe('LLM provider faults and a stalled worker (run side by side)', () => {
  it.concurrent('drill 5: the LLM at 30% 529 overloaded with bursts of 429 (retry-after): completes; retries account for it', async () => {
    const d = new Drill('drill-llm');
    await drill(d, async () => {
      await d.setup({}, (spec) => {
        spec.retry = { maxAttempts: 8, initialBackoff: '100ms', maxBackoff: '2s' };
      });
      // 30% of requests overloaded; of every 40 requests, the first 4 are 429 with retry-after 1 s.
      d.fake.setFaults({ inject529: 0.3, burst429: { every: 40, length: 4, retryAfterS: 1 } });
      await d.startOperator('llm-op', { LEADER_ELECTION: 'false' });
      await d.poolReady();
      await d.applyBatch('flaky', small);
      const f = await d.finish('flaky', { expectPhase: 'Succeeded' });
      const s = d.fake.stats();
      const st = await d.status('flaky');
      report('llm-529-429', f, {
        fakeMessages: s.messages.total,
        fakeOk: s.messages.ok,
        byStatus: s.messages.byStatus,
        injected529: s.injected529,
        burst429: s.burst429,
        statusRetried: st.comparisons?.retried,
      });
      expect(s.injected529).toBeGreaterThan(0);
      expect(s.burst429).toBeGreaterThan(0);
      // Every HTTP attempt the workers counted reached the fake; every success is one stored verdict
      // (calls cut short by a lost lease or a restart are the only difference).
      expect(f.attempts).toBeLessThanOrEqual(s.messages.total);
      expect(s.messages.ok).toBeGreaterThanOrEqual(f.completed);
      expect(f.retried).toBeGreaterThan(0);
      expect(st.comparisons.retried).toBe(f.retried);
      // 30% 529s and 8 attempts: a comparison failing for good is very unlikely; failures would carry a reason.
      expect(f.completed / f.planned).toBeGreaterThan(0.9);
      expect(f.lost).toBe(0);
    });
  }, 360_000);

  it.concurrent(
    'drill 6: a stalled worker (SIGSTOP beyond its lease): another takes its pairs; its late writes are refused',
    () => stalledWorker(),
    360_000,
  );
});

describe.skipIf(onDevStack())('drill 3: Postgres restarted mid-round', () => {
  it('workers and the operator recover; nothing lost; the stack is healthy again', async () => {
    const d = new Drill('drill-pg');
    await drill(d, async () => {
      await d.setup({ latencyMs: 200 });
      await d.startOperator('pg-op');
      await d.poolReady();
      await d.applyBatch('pgdown', small);
      await waitFor(
        'round 1 comparing with comparisons written',
        async () => {
          const s = await d.status('pgdown');
          return s.phase === 'Comparing' && (s.comparisons?.completed ?? 0) >= 3;
        },
        180_000,
      );
      const pods = (await d.comparisonPods('pgdown')).length;
      const r = await restartPostgres(stack(), { downMs: 5_000, mode: 'fast' });
      const upAt = new Date();
      // The first comparison written after the restart: the workers are back.
      const resumed = await waitFor(
        'a comparison written after the restart',
        async () => {
          const [row] =
            await d.sql`SELECT min(completed_at) AS t FROM comparisons WHERE completed_at > ${upAt}`;
          return row?.t ? (row.t as Date) : undefined;
        },
        180_000,
      );
      const f = await d.finish('pgdown', { expectPhase: 'Succeeded' });
      const pgPods = (await d.get(['get', 'pods', '-l', 'cj.huleedu.io/batch=pgdown'])).items as any[];
      const failedPods = pgPods.filter((p) => p.status?.phase === 'Failed').length;
      const jobs = (await d.get(['get', 'jobs', '-l', 'cj.huleedu.io/batch=pgdown'])).items.map(
        (j: any) => j.metadata.name as string,
      );
      report('postgres-restart', f, {
        downMs: r.downMs,
        resumedAfterMs: resumed.getTime() - upAt.getTime(),
        podsRunningAtRestart: pods,
        failedPods,
        retriedJobs: jobs.filter((n: string) => /-\d+-\d+$/.test(n)),
      });
      expect(f.lost).toBe(0);
      // The workers rode out the outage: no pod failed, no Job had to be retried.
      expect(failedPods).toBe(0);
      // The operator rode it out (no crash), and the stack is alive for the next test file.
      expect(d.operators[0]!.proc.exitCode).toBeNull();
      expect(readStack(stack().name), 'stack.json records the new Postgres pid').toBeDefined();
    });
  }, 420_000);
});

/** The pid of a pod's container on the process kubelet (containerID process://<pid>). */
const podPid = (pod: any): number =>
  Number(/^process:\/\/(\d+)$/.exec(pod.status?.containerStatuses?.[0]?.containerID ?? '')?.[1]);

function podLog(ns: string, name: string): string {
  const dir = path.join(stack().dir, 'kubelet', 'pods');
  const d = readdirSync(dir).find((x) => x.startsWith(`${ns}_${name}_`));
  const f = d ? path.join(dir, d, 'worker.log') : '';
  return f && existsSync(f) ? readFileSync(f, 'utf8') : '';
}

async function stalledWorker(): Promise<void> {
  const d = new Drill('drill-stall');
  const LEASE_S = 4;
  await drill(d, async () => {
    // Slow answers: the stalled worker is frozen with calls in flight.
    await d.setup({ latencyMs: 1_500 }, (spec) => {
      spec.limits.maxConcurrency = 24;
    });
    await d.startOperator('stall-op', { COMPARISON_LEASE_SECONDS: String(LEASE_S) });
    await d.poolReady();
    const uid = await d.applyBatch('stall', small);
    const { pod, held } = await waitFor(
      'a comparison pod holding leases',
      async () => {
        for (const p of await d.comparisonPods('stall')) {
          if (!podPid(p)) continue;
          const held = await d.leasedBy(uid, p.metadata.name);
          if (held.length >= 2) return { pod: p, held };
        }
        return undefined;
      },
      180_000,
    );
    const pid = podPid(pod);
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    let rescuer: ReturnType<typeof spawn> | undefined;
    try {
      // The leases it held when it froze (it may have taken a few more between the query and the stop).
      const owned = await d.leasedBy(uid, pod.metadata.name);
      const env = Object.fromEntries(
        (pod.spec.containers[0].env as any[])
          .filter((e) => e.value !== undefined)
          .map((e) => [e.name, e.value]),
      );
      const shard = pod.metadata.annotations['batch.kubernetes.io/job-completion-index'];
      // A second worker on the same shard (what a replacement pod would be).
      const log = path.join(stack().dir, `stall-rescuer-${uid.slice(0, 8)}.log`);
      rescuer = spawn(process.execPath, [RUNTIME_MAIN, 'compare'], {
        stdio: ['ignore', openSync(log, 'a'), openSync(log, 'a')],
        env: {
          PATH: process.env.PATH,
          ...env,
          DATABASE_URL: d.dbUrl,
          JOB_COMPLETION_INDEX: shard,
          POD_NAME: 'stall-rescuer',
          ANTHROPIC_API_KEY: 'test-key-do-not-log',
        },
      });
      const exit = new Promise<number | null>((r) => rescuer!.once('exit', (c) => r(c)));
      const code = await Promise.race([
        exit,
        new Promise<string>((r) => setTimeout(() => r('timeout'), 120_000)),
      ]);
      expect(code, `rescuer exit (log ${log}):\n${readFileSync(log, 'utf8').slice(-2000)}`).toBe(0);
      const takeover = await d.sql`
        SELECT id::text AS id, status, lease_owner FROM comparisons WHERE id = ANY(${owned}::bigint[])`;
      // Every pair the frozen worker held is final, written by another worker: the rescuer, or a
      // worker of another shard helping with the rest of the round (ShardRef.anyShard).
      expect(takeover.every((r) => r.status !== 'pending' && r.status !== 'leased')).toBe(true);
      expect(takeover.every((r) => r.lease_owner !== pod.metadata.name)).toBe(true);
      const takenOverMs = Date.now() - stoppedAt;
      process.kill(pid, 'SIGCONT');
      // The stalled worker wakes up, finds its leases gone, writes nothing and exits.
      await waitFor(
        'the stalled pod finishes',
        async () => {
          const p = (await d.get(['get', 'pod', pod.metadata.name])) as any;
          return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : undefined;
        },
        120_000,
      );
      const wlog = podLog(d.ns, pod.metadata.name);
      const lostWrites = wlog.split('\n').filter((l) => l.includes('outcome not written')).length;
      const f = await d.finish('stall', { expectPhase: 'Succeeded' });
      report('stalled-worker', f, {
        leaseSeconds: LEASE_S,
        heldWhenFrozen: owned.length,
        firstSeen: held.length,
        takenOverMs,
        lateWritesRefused: lostWrites,
      });
      expect(lostWrites, `stalled worker log:\n${wlog.slice(-3000)}`).toBeGreaterThan(0);
      expect(f.lost).toBe(0);
    } finally {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      if (rescuer && rescuer.exitCode === null) rescuer.kill('SIGKILL');
    }
  });
}

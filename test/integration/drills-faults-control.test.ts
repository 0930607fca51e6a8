// Fault drills of issue 9, control plane: etcd restarted under a running batch, the operator
// leader killed again and again, worker pods deleted at random. Each drill runs the small sample
// batch in its own namespace and database and ends with the invariants of drill-invariants.ts: no
// lost comparison, no duplicated event id, a terminal phase with a reason.
//
// The etcd drill restarts the stack's own etcd: it is skipped on the shared dev stack (run with
// CJ_REUSE_DEV=0 for a private one) and leaves the stack healthy for the next file.
import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readStack, restartEtcd } from '../../hack/stack.js';
import { Drill, report } from './drill-invariants.js';
import { kubectl, kubectlOk, stack, waitFor } from './helpers.js';
import type { OperatorProcess } from './operator-harness.js';

const onDevStack = () => stack().name === 'dev';

async function drill<T>(d: Drill, run: () => Promise<T>, before: () => void = () => {}): Promise<T> {
  try {
    return await run();
  } finally {
    before(); // e.g. stop replacing operators before they are killed
    await d.teardown();
  }
}

/**
 * Keeps `replicas` operator processes running, like a Deployment: a process that exits (killed, or
 * leaving after it lost the Lease) is replaced by a new one with a new identity.
 */
function supervise(d: Drill, prefix: string, replicas: number, env: Record<string, string> = {}) {
  let n = 0;
  let stopped = false;
  const restarts: string[] = [];
  const live = new Set<OperatorProcess>();
  const spawnOne = async (): Promise<void> => {
    const id = `${prefix}-${n++}`;
    const o = await d.startOperator(id, env);
    if (stopped) {
      await o.stop('SIGKILL');
      return;
    }
    live.add(o);
    o.proc.once('exit', () => {
      live.delete(o);
      if (stopped) return;
      restarts.push(id);
      void spawnOne();
    });
  };
  return {
    start: async () => {
      for (let i = 0; i < replicas; i++) await spawnOne();
    },
    restarts,
    live,
    stop: () => {
      stopped = true;
    },
  };
}

describe.skipIf(onDevStack())('drill 7: etcd restarted under a running batch', () => {
  it('the apiserver recovers, the operator re-lists and re-watches, the batch completes', async () => {
    const d = new Drill('drill-etcd');
    const ops = supervise(d, 'etcd-op', 1);
    await drill(
      d,
      async () => {
        await d.setup({ latencyMs: 200 });
        await ops.start();
        await d.poolReady();
        await d.applyBatch('etcd', (b) => {
          b.spec.budget = { maxComparisons: 36 };
        });
        await waitFor(
          'round 1 comparing',
          async () => {
            const s = await d.status('etcd');
            return s.phase === 'Comparing' && (s.comparisons?.completed ?? 0) >= 2 ? s : undefined;
          },
          180_000,
        );
        const r = await restartEtcd(stack(), { downMs: 5_000 });
        const etcdUp = Date.now();
        await waitFor(
          'apiserver /readyz',
          async () => (await kubectl(['get', '--raw', '/readyz'])).code === 0,
          120_000,
        );
        const apiReadyMs = Date.now() - etcdUp;
        // The operator sees progress again: the round moves on after the restart.
        const before = (await d.status('etcd')).comparisons?.completed ?? 0;
        await waitFor(
          'status progress after the restart',
          async () => ((await d.status('etcd')).comparisons?.completed ?? 0) > before,
          180_000,
        );
        const progressMs = Date.now() - etcdUp;
        const f = await d.finish('etcd', { expectPhase: 'Succeeded' });
        report('etcd-restart', f, {
          etcdDownMs: r.downMs,
          apiserverReadyAfterMs: apiReadyMs,
          statusProgressAfterMs: progressMs,
          operatorRestarts: ops.restarts.length,
        });
        expect(f.lost).toBe(0);
        // Every component of the stack is alive (stack.json has etcd's new pid): the next file runs.
        expect(readStack(stack().name), 'the stack is alive').toBeDefined();
        await kubectlOk(['get', 'nodes']);
      },
      ops.stop,
    );
  }, 420_000);
});

describe('operator and worker disruptions (run side by side)', () => {
  it.concurrent('drill 1: the operator leader killed repeatedly (2 replicas, Lease election)', async () => {
    const d = new Drill('drill-leader');
    const ops = supervise(d, 'leader-op', 2);
    await drill(
      d,
      async () => {
        await d.setup({ latencyMs: 150 });
        await ops.start();
        await d.poolReady();
        await d.applyBatch('leader');
        const kills: { holder: string; round: number; takeoverMs: number }[] = [];
        for (let k = 0; k < 3; k++) {
          const s = await waitFor(
            `batch running before kill ${k + 1}`,
            async () => {
              const st = await d.status('leader');
              return ['Scoring', 'Comparing'].includes(st.phase) && (st.round ?? 0) >= 1 + k ? st : undefined;
            },
            180_000,
          );
          if (s.phase === 'Succeeded' || s.phase === 'Failed') break;
          const holder = await waitFor('a Lease holder', () => d.leaseHolder(), 60_000);
          const leader = [...ops.live].find((o) => o.log.endsWith(`${holder}.log`));
          if (!leader) throw new Error(`no live process for Lease holder ${holder}`);
          const t0 = Date.now();
          await leader.stop('SIGKILL');
          await waitFor(
            `a new leader after killing ${holder}`,
            async () => {
              const h = await d.leaseHolder();
              return h !== undefined && h !== holder;
            },
            90_000,
          );
          kills.push({ holder, round: s.round ?? 0, takeoverMs: Date.now() - t0 });
          // A few seconds of work under the new leader before the next kill.
          await new Promise((r) => setTimeout(r, 3_000));
        }
        const f = await d.finish('leader', { expectPhase: 'Succeeded', timeoutMs: 420_000 });
        const jobs = (await d.get(['get', 'jobs', '-l', 'cj.huleedu.io/batch=leader'])).items.map(
          (j: any) => j.metadata.name as string,
        );
        report('leader-kills', f, { kills, operatorRestarts: ops.restarts.length, jobs: jobs.length });
        expect(kills.length).toBeGreaterThanOrEqual(3);
        expect(f.lost).toBe(0);
        // No Job was created twice: one scoring Job per round, names unique, no retry attempts needed.
        expect(new Set(jobs).size).toBe(jobs.length);
        expect(jobs.filter((n: string) => /-score-\d+$/.test(n))).toHaveLength(f.rounds);
      },
      ops.stop,
    );
  }, 600_000);

  it.concurrent('drill 2: random worker pods deleted during rounds', async () => {
    const d = new Drill('drill-pods');
    await drill(d, async () => {
      await d.setup({ latencyMs: 200 });
      await d.startOperator('pods-op', { LEADER_ELECTION: 'false' });
      await d.poolReady();
      await d.applyBatch('pods', (b) => {
        b.spec.budget = { maxComparisons: 48 };
      });
      const deleted: { pod: string; round: number }[] = [];
      let lastRound = 0;
      for (let k = 0; k < 4; k++) {
        // A running comparison pod of a later round than the last deletion.
        const hit = await waitFor(
          `a running comparison pod (deletion ${k + 1})`,
          async () => {
            const st = await d.status('pods');
            if (st.phase === 'Succeeded' || st.phase === 'Failed') return { done: true as const };
            if ((st.round ?? 0) <= lastRound) return undefined;
            const pods = await d.comparisonPods('pods');
            return pods.length > 0
              ? { pod: pods[randomInt(pods.length)], round: st.round as number }
              : undefined;
          },
          180_000,
        );
        if ('done' in hit) break;
        // Let it work a moment, so it holds leases when it goes.
        await new Promise((r) => setTimeout(r, 700));
        await kubectl(['delete', 'pod', hit.pod.metadata.name, '-n', d.ns, '--wait=false']);
        deleted.push({ pod: hit.pod.metadata.name, round: hit.round });
        lastRound = hit.round;
      }
      const f = await d.finish('pods', { expectPhase: 'Succeeded' });
      const uid = (await d.get(['get', 'cjbatch', 'pods'])).metadata.uid;
      // The deleted pods' pairs were finished by their replacements, not failed.
      const [byDeleted] = await d.sql`
        SELECT count(*)::int AS n FROM comparisons
         WHERE batch_uid = ${uid} AND lease_owner = ANY(${deleted.map((x) => x.pod)})`;
      report('worker-pods-deleted', f, { deleted, rowsWrittenByDeletedPods: byDeleted!.n });
      expect(deleted.length).toBeGreaterThanOrEqual(3);
      expect(f.failed).toBe(0);
      expect(f.lost).toBe(0);
    });
  }, 600_000);
});

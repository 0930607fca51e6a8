// Pipelined rounds (long-lived workers per batch) next to round-by-round on the same stack, fake
// judge and sample: the pipelined batch creates at most 2 × parallelism + 2 pods whatever its
// rounds, plans while pairs are still open, and ends with the drill invariants (0 lost, 0
// duplicated, counters equal to the rows). Wall times of both are reported side by side.
import { describe, expect, it } from 'vitest';
import { Drill, report } from './drill-invariants.js';
import { waitFor } from './helpers.js';

const P = 2;
const mode = (rounds: 'rounds' | 'pipelined') => (b: any) => {
  b.metadata.annotations = { 'cj.huleedu.io/rounds': rounds };
  b.spec.workers = { parallelism: P };
};

describe('pipelined rounds: one Job of long-lived workers per batch', () => {
  it('rounds, then pipelined: pods ≤ 2P+2, planned ahead, 0 lost, 0 duplicated', async () => {
    const d = new Drill('pipe');
    try {
      // A judge with a latency, so that planning ahead has something to overlap.
      await d.setup({ latencyMs: 300 });
      await d.startOperator('pipe-op', { LEADER_ELECTION: 'false' });
      await d.poolReady();
      const pods = async (name: string) =>
        (await d.get(['get', 'pods', '-l', `cj.huleedu.io/batch=${name}`])).items.length as number;
      const jobs = async (name: string) =>
        ((await d.get(['get', 'jobs', '-l', `cj.huleedu.io/batch=${name}`])).items as any[])
          .map((j) => j.metadata.name as string)
          .sort();

      await d.applyBatch('by-rounds', mode('rounds'));
      const base = await d.finish('by-rounds', { expectPhase: 'Succeeded' });
      const basePods = await pods('by-rounds');

      const uid = await d.applyBatch('pipelined', mode('pipelined'));
      const f = await d.finish('pipelined', { expectPhase: 'Succeeded' });
      const pipePods = await pods('pipelined');
      const pipeJobs = await jobs('pipelined');
      // Passes that planned while pairs were still open (the engine's counts say how many).
      const ahead = await d.sql`
        SELECT count(*)::int AS n FROM rounds
         WHERE batch_uid = ${uid} AND round > 0 AND (summary->'counts'->>'pending')::int > 0`;
      const [tokens] = await d.sql`
        SELECT coalesce(sum(input_tokens), 0)::int AS input FROM comparisons
         WHERE batch_uid = ${uid} AND failure_reason = 'cancelled_at_stop'`;
      report('pipelined-vs-rounds', f, {
        pods: pipePods,
        jobs: pipeJobs,
        plannedAhead: ahead[0]!.n,
        cancelledTokens: tokens!.input,
        baseline: { seconds: base.seconds, rounds: base.rounds, completed: base.completed, pods: basePods },
      });

      expect(pipeJobs).toEqual(['pipelined-score-0', 'pipelined-workers']);
      expect(pipePods, 'pods created for the pipelined batch').toBeLessThanOrEqual(2 * P + 2);
      expect(f.rounds, 'passes of the pipelined batch').toBeGreaterThan(2);
      expect(ahead[0]!.n, 'passes that planned while pairs were open').toBeGreaterThan(0);
      expect(f.lost).toBe(0);
      expect(f.duplicatedEvents).toBe(0);
      expect(base.lost).toBe(0);
      // The budget holds: judged and cancelled pairs together never exceed it (default 66 here).
      const st = await d.status('pipelined');
      expect(f.completed + f.failed + f.cancelled).toBeLessThanOrEqual(st.budget.total);
      // Round by round needs a Job per round and a pod per shard of each: more than pipelining.
      expect(basePods).toBeGreaterThan(pipePods);
    } finally {
      await d.teardown();
    }
  }, 600_000);

  it('spec.timeouts.round: workers that finish nothing for that long get Progressing=False NothingJudged, then recover', async () => {
    const d = new Drill('pipe-idle');
    try {
      // Every answer takes 80 s; the batch allows 1 minute (the least admitted) without a finished comparison.
      await d.setup({ latencyMs: 80_000 });
      await d.startOperator('idle-op', { LEADER_ELECTION: 'false' });
      await d.poolReady();
      await d.applyBatch('idle', (b) => {
        mode('pipelined')(b);
        b.spec.timeouts = { round: '1m' };
      });
      const progressing = async () =>
        ((await d.status('idle')).conditions ?? []).find((c: any) => c.type === 'Progressing');
      const idle = await waitFor(
        'Progressing=False NothingJudged',
        async () => {
          const c = await progressing();
          return c?.reason === 'NothingJudged' ? c : undefined;
        },
        120_000,
      );
      expect(idle.status).toBe('False');
      expect(idle.message).toMatch(/no comparison finished for 1m \(spec\.timeouts\.round\) with \d+ open/);
      const events = (await d.get(['get', 'events', '--field-selector', 'reason=NothingJudged'])).items;
      expect(events.length, 'one Warning Event NothingJudged').toBe(1);
      expect(events[0].type).toBe('Warning');
      // Not failed: the answers arrive, the batch is progressing again.
      expect((await d.status('idle')).phase).toBe('Comparing');
      await waitFor(
        'Progressing=True after the first verdicts',
        async () => (await progressing())?.status === 'True',
        120_000,
      );
    } finally {
      await d.teardown();
    }
  }, 300_000);
});

// The live pace in a CJBatch status (throughput, pool share, ETA) and how the CLI shows it.
import { describe, expect, it } from 'vitest';
import type { CJBatchStatus } from '../../../operator/src/api/index.js';
import { statusLine } from '../../../operator/src/cli/render.js';
import { paceStatus } from '../../../operator/src/controllers/cjbatch/status.js';

const NOW = Date.parse('2026-12-02T17:00:00Z');
const running: CJBatchStatus = {
  phase: 'Comparing',
  round: 3,
  comparisons: { completed: 100, failed: 2, pending: 20 },
  budget: { total: 312, source: 'default' },
  estimate: { comparisons: 250 },
  startTime: '2026-12-02T16:58:00Z',
};
const pace = {
  finishedLastMinute: 60,
  windowSeconds: 60,
  batchRequestsLastMinute: 62,
  poolRequestsLastMinute: 124,
  weight: 10,
  activeWeight: 30,
};

describe('paceStatus', () => {
  it('projects the estimate left at the last minute pace, and names the pool share', () => {
    const t = paceStatus(pace, running, NOW)!;
    // 250 expected - 102 with an outcome = 148 at 60/min: 148 s, rounded up to 10 s
    expect(t).toEqual({
      comparisonsPerMinute: 60,
      poolShare: 0.5,
      fairShare: 0.33,
      remaining: 148,
      eta: '2026-12-02T17:02:30.000Z',
    });
  });

  it('never expects fewer than already planned, nor more than the budget', () => {
    const over = { ...running, comparisons: { completed: 240, failed: 0, pending: 30 } };
    expect(paceStatus(pace, over, NOW)!.remaining).toBe(30);
    const capped = { ...running, estimate: { comparisons: 900 } };
    expect(paceStatus(pace, capped, NOW)!.remaining).toBe(312 - 102);
    const noEstimate = { ...running, estimate: undefined };
    expect(paceStatus(pace, noEstimate, NOW)!.remaining).toBe(312 - 102);
  });

  it('a young window (under 10 s) gives no rate and no ETA; nothing left gives an ETA of now', () => {
    const young = paceStatus({ ...pace, windowSeconds: 4, finishedLastMinute: 8 }, running, NOW)!;
    expect(young.comparisonsPerMinute).toBeUndefined();
    expect(young.eta).toBeUndefined();
    expect(young.remaining).toBe(148);
    const idle = paceStatus({ ...pace, finishedLastMinute: 0 }, running, NOW)!;
    expect(idle.comparisonsPerMinute).toBe(0);
    expect(idle.eta).toBeUndefined();
    const done = paceStatus(
      pace,
      { ...running, comparisons: { completed: 250, failed: 0, pending: 0 } },
      NOW,
    )!;
    expect(done).toMatchObject({ remaining: 0, eta: '2026-12-02T17:00:00.000Z' });
  });

  it('without share rows or pool grants (an operator-side caller) the shares are left out', () => {
    const t = paceStatus(
      { finishedLastMinute: 30, windowSeconds: 30, batchRequestsLastMinute: 0, poolRequestsLastMinute: 0 },
      running,
      NOW,
    )!;
    expect(t.poolShare).toBeUndefined();
    expect(t.fairShare).toBeUndefined();
    expect(t.comparisonsPerMinute).toBe(60);
  });
});

describe('kubectl cj status line', () => {
  it('shows the operator ETA with the pace and the pool share', () => {
    const status = { ...running, throughput: paceStatus(pace, running, NOW) };
    expect(statusLine({ status }, NOW)).toMatch(
      / 100\/312 \(2 failed\) Comparing round 3 ETA ~2m30s \(60\/min, 50% of the pool\)$/,
    );
  });

  it('falls back to the budget at the average pace (an upper bound) without an ETA', () => {
    expect(statusLine({ status: running }, NOW)).toMatch(/ ~\d+s left \(at most\)$/);
    expect(statusLine({ status: { ...running, throughput: { comparisonsPerMinute: 0 } } }, NOW)).toMatch(
      / ~\d+s left \(at most\)$/,
    );
  });
});

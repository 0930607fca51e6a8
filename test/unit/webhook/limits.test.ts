// The webhook's guards against hostile callers, and the child names that stay valid for any
// admissible batch name.
import { describe, expect, it } from 'vitest';
import {
  childName,
  comparisonJobName,
  scoringJobName,
} from '../../../operator/src/controllers/cjbatch/jobs.js';
import { limiter } from '../../../operator/src/webhook/server.js';

describe('review limiter', () => {
  it('runs at most maxConcurrent at once, queues maxQueued, refuses the rest', async () => {
    const gate = limiter(1, 2);
    let running = 0;
    let most = 0;
    const release: (() => void)[] = [];
    const task = () =>
      gate.run(async () => {
        running++;
        most = Math.max(most, running);
        await new Promise<void>((r) => release.push(r));
        running--;
        return 'ok';
      });
    const runs = [task(), task(), task(), task()];
    await new Promise((r) => setImmediate(r));
    expect(await runs[3]).toBeUndefined(); // the fourth: one running, two queued, no room
    expect([gate.active, gate.queued]).toEqual([1, 2]);
    while (release.length || gate.active) {
      release.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect(await Promise.all(runs.slice(0, 3))).toEqual([{ value: 'ok' }, { value: 'ok' }, { value: 'ok' }]);
    expect(most).toBe(1);
  });
});

describe('child names', () => {
  it('keep the plain form when it fits and stay within 63 characters, distinct per batch, when not', () => {
    expect(comparisonJobName('essays-7b', 3, 1)).toBe('essays-7b-compare-3-1');
    const a = 'a'.repeat(60);
    const b = `${'a'.repeat(59)}b`;
    for (const n of [scoringJobName(a, 120, 3), comparisonJobName(a, 999, 3), comparisonJobName(b, 999, 3)]) {
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    }
    expect(comparisonJobName(a, 1)).not.toBe(comparisonJobName(b, 1));
    expect(childName(a, 'compare-1')).toBe(childName(a, 'compare-1'));
  });
});

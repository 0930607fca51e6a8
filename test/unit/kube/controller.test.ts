import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  Controller,
  type Reconciler,
  type Request,
  type Result,
  TerminalError,
} from '../../../operator/src/kube/controller.js';

const logger = pino({ level: 'silent' });
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

function run(reconcile: (req: Request) => Promise<Result | undefined>, opts: Record<string, unknown> = {}) {
  const registry = new Registry();
  const reconciler: Reconciler = { reconcile: (req) => reconcile(req) };
  const c = new Controller({ name: 'test', reconciler, workers: 3, logger, registry, ...opts });
  const ac = new AbortController();
  const done = c.start(ac.signal);
  return { c, ac, done, registry };
}

describe('Controller', () => {
  it('success forgets; errors retry with growing backoff; sync throws are contained', async () => {
    const times: number[] = [];
    const { c, ac, done, registry } = run(
      async (req) => {
        times.push(Date.now());
        if (req.name === 'boom' && times.length < 4) {
          if (times.length === 2) throw 'not an Error';
          throw new Error('transient');
        }
        return undefined;
      },
      { queue: { baseDelayMs: 20 } },
    );
    c.enqueue({ namespace: 'ns', name: 'boom' });
    await tick(400);
    expect(times.length).toBe(4); // 3 failures then success, then no more
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(15);
    expect(gaps[1]).toBeGreaterThanOrEqual(35);
    expect(gaps[2]).toBeGreaterThanOrEqual(75);
    expect(c.queue.numRequeues('ns/boom')).toBe(0);
    const text = await registry.metrics();
    expect(text).toContain('controller_runtime_reconcile_total{controller="test",result="error"} 3');
    expect(text).toContain('controller_runtime_reconcile_total{controller="test",result="success"} 1');
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="test"} 3');
    expect(text).toContain('controller_runtime_max_concurrent_reconciles{controller="test"} 3');
    ac.abort();
    await done;
  });

  it('requeueAfter reconciles again after the delay without errors', async () => {
    const times: number[] = [];
    const { c, ac, done, registry } = run(async () => {
      times.push(Date.now());
      return times.length < 3 ? { requeueAfter: 100 } : {};
    });
    c.enqueue({ namespace: 'ns', name: 'poll' });
    await tick(400);
    expect(times.length).toBe(3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(95);
    expect(await registry.metrics()).toContain(
      'controller_runtime_reconcile_total{controller="test",result="requeue_after"} 2',
    );
    ac.abort();
    await done;
  });

  it('TerminalError is not retried', async () => {
    let n = 0;
    const { c, ac, done, registry } = run(async () => {
      n++;
      throw new TerminalError('bad spec');
    });
    c.enqueue({ namespace: 'ns', name: 't' });
    await tick(200);
    expect(n).toBe(1);
    expect(await registry.metrics()).toContain(
      'controller_runtime_terminal_reconcile_errors_total{controller="test"} 1',
    );
    ac.abort();
    await done;
  });

  it('a timed-out reconcile is aborted and retried, never overlapping with itself', async () => {
    let active = 0;
    let overlap = false;
    let calls = 0;
    const { c, ac, done, registry } = run(
      async () => {
        calls++;
        active++;
        if (active > 1) overlap = true;
        await tick(calls === 1 ? 150 : 1); // first call ignores its signal and overruns
        active--;
        return undefined;
      },
      { reconcileTimeoutMs: 50, queue: { baseDelayMs: 1 } },
    );
    c.enqueue({ namespace: 'ns', name: 'slow' });
    await tick(400);
    expect(overlap).toBe(false);
    expect(calls).toBe(2);
    expect(await registry.metrics()).toContain(
      'controller_runtime_reconcile_timeouts_total{controller="test"} 1',
    );
    ac.abort();
    await done;
  });

  it('start() resolves after abort once in-flight reconciles return', async () => {
    let finished = false;
    const { c, ac, done } = run(async () => {
      await tick(100);
      finished = true;
      return undefined;
    });
    c.enqueue({ namespace: '', name: 'cluster-scoped' });
    await tick(10);
    ac.abort();
    await done;
    expect(finished).toBe(true);
  });
});

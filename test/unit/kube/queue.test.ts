import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ItemExponentialBackoff, TokenBucket, WorkQueue } from '../../../operator/src/kube/queue.js';

const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('dedupes keys waiting in the queue', async () => {
    const q = new WorkQueue({ registry: new Registry() });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.len()).toBe(0);
  });

  it('never hands out a key being processed; re-queues it once after done()', async () => {
    const q = new WorkQueue({ registry: new Registry() });
    q.add('a');
    const first = await q.get();
    expect(first).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0); // held back while processing
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await tick(10);
    expect(second).toBeUndefined(); // a second worker must not get it
    q.done('a');
    await tick();
    expect(second).toBe('a'); // exactly once
    q.done('a');
    expect(q.len()).toBe(0);
  });

  it('hands distinct keys to concurrent workers', async () => {
    const q = new WorkQueue({ registry: new Registry() });
    const active = new Set<string>();
    const seen: string[] = [];
    let overlaps = 0;
    const worker = async () => {
      for (;;) {
        const k = await q.get();
        if (k === undefined) return;
        if (active.has(k)) overlaps++;
        active.add(k);
        seen.push(k);
        await tick(2);
        if (Math.random() < 0.5) q.add(k); // re-add while processing
        active.delete(k);
        q.done(k);
      }
    };
    const ws = [worker(), worker(), worker(), worker()];
    for (let i = 0; i < 200; i++) q.add(`k${i % 7}`);
    await tick(150);
    q.shutDown();
    await Promise.all(ws);
    expect(overlaps).toBe(0);
    expect(new Set(seen).size).toBe(7);
  });

  it('per-item backoff grows exponentially from 5 ms and caps at 1000 s; forget resets', () => {
    const b = new ItemExponentialBackoff();
    const delays = Array.from({ length: 5 }, () => b.when('x'));
    expect(delays).toEqual([5, 10, 20, 40, 80]);
    for (let i = 0; i < 40; i++) b.when('x');
    expect(b.when('x')).toBe(1_000_000);
    expect(b.when('y')).toBe(5);
    b.forget('x');
    expect(b.when('x')).toBe(5);
  });

  it('the global token bucket allows a burst of 100 then 10 qps', () => {
    let now = 0;
    const tb = new TokenBucket(10, 100, () => now);
    for (let i = 0; i < 100; i++) expect(tb.reserve()).toBe(0);
    expect(tb.reserve()).toBe(100);
    expect(tb.reserve()).toBe(200);
    now = 1000; // 10 tokens refilled, 2 already reserved
    expect(tb.reserve()).toBe(0);
  });

  it('addRateLimited delays by the max of item backoff and bucket; numRequeues counts', async () => {
    const q = new WorkQueue({ registry: new Registry(), baseDelayMs: 20 });
    q.addRateLimited('a'); // 20 ms
    expect(q.len()).toBe(0);
    expect(q.delayedLen()).toBe(1);
    await tick(40);
    expect(q.len()).toBe(1);
    expect(q.numRequeues('a')).toBe(1);
    const k = (await q.get())!;
    q.done(k);
    const t0 = Date.now();
    q.addRateLimited('a'); // 40 ms
    expect(await q.get()).toBe('a');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(35);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
    q.shutDown();
  });

  it('addAfter keeps the earliest deadline and dedupes', async () => {
    const q = new WorkQueue({ registry: new Registry() });
    q.addAfter('a', 500);
    q.addAfter('a', 20);
    q.addAfter('a', 300);
    expect(q.delayedLen()).toBe(1);
    const t0 = Date.now();
    expect(await q.get()).toBe('a');
    expect(Date.now() - t0).toBeLessThan(250);
    q.done('a');
    await tick(30);
    expect(q.len()).toBe(0);
    q.shutDown();
  });

  it('shutDown releases waiting workers with undefined and ignores later adds', async () => {
    const q = new WorkQueue({ registry: new Registry() });
    const waiting = [q.get(), q.get()];
    q.addAfter('late', 10);
    q.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
    q.add('x');
    expect(q.len()).toBe(0);
    expect(await q.get()).toBeUndefined();
    await tick(20);
    expect(q.len()).toBe(0);
  });

  it('exports workqueue_* metrics with name/controller labels', async () => {
    const registry = new Registry();
    const q = new WorkQueue({ registry, name: 'demo', controller: 'demo' });
    q.add('a');
    q.add('b');
    const k = (await q.get())!;
    await tick(5);
    q.addRateLimited('c');
    const text = await registry.metrics();
    expect(text).toContain('workqueue_depth{name="demo",controller="demo"} 1');
    expect(text).toContain('workqueue_adds_total{name="demo",controller="demo"} 2');
    expect(text).toContain('workqueue_retries_total{name="demo",controller="demo"} 1');
    expect(text).toMatch(/workqueue_unfinished_work_seconds\{name="demo",controller="demo"\} 0\.0\d+/);
    expect(text).toMatch(
      /workqueue_longest_running_processor_seconds\{name="demo",controller="demo"\} 0\.0\d+/,
    );
    expect(text).toContain('workqueue_queue_duration_seconds_count{name="demo",controller="demo"} 1');
    q.done(k);
    expect(await registry.metrics()).toContain(
      'workqueue_work_duration_seconds_count{name="demo",controller="demo"} 1',
    );
    q.shutDown();
  });
});

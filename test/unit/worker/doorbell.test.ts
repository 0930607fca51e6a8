import { describe, expect, it } from 'vitest';
import { Doorbell } from '../../../runtime/src/worker/doorbell.js';

describe('Doorbell (idle lanes of a pipelined worker)', () => {
  it('one ring wakes every waiter; a later wait waits for the next ring', async () => {
    const bell = new Doorbell();
    const woke: number[] = [];
    const waits = [1, 2, 3].map((i) => bell.wait(60_000).then(() => woke.push(i)));
    expect(bell.waiting).toBe(3);
    bell.ring();
    await Promise.all(waits);
    expect(woke.sort()).toEqual([1, 2, 3]);
    expect(bell.waiting).toBe(0);
    let late = false;
    const next = bell.wait(60_000).then(() => {
      late = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(late, 'a wait begun after the ring is not woken by it').toBe(false);
    bell.ring();
    await next;
  });

  it('a wait that times out leaves nothing behind, however many there were', async () => {
    const bell = new Doorbell();
    for (let i = 0; i < 2_000; i++) await bell.wait(0);
    expect(bell.waiting).toBe(0);
  });

  it('close wakes everyone and every later wait returns at once', async () => {
    const bell = new Doorbell();
    const w = bell.wait(60_000);
    bell.close();
    await w;
    const t0 = Date.now();
    await bell.wait(60_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(bell.waiting).toBe(0);
  });
});

// Where a pipelined worker's idle lanes wait: until the planner rings (claimable pairs, the batch
// done), the worker stops, or a timeout. Each wait removes itself when it ends, so lanes that idle
// every 2 s for hours hold nothing. (The way it was done before kept a little per wait: a
// Promise.race on a long-pending "woken" promise keeps a reaction per call until that promise
// settles, and AbortSignal.any on the process-long stop signal keeps an entry per call in Node 20.)

export class Doorbell {
  private readonly waiters = new Set<() => void>();
  private closed = false;

  /** Resolves on the next ring(), on close(), or after `ms`; at once when closed. Never rejects. */
  wait(ms: number): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
    });
  }

  /** Wakes every lane waiting now (a lane that starts waiting later waits for the next ring). */
  ring(): void {
    for (const done of [...this.waiters]) done();
  }

  /** Wakes everyone, and every later wait returns at once (the worker is stopping). */
  close(): void {
    this.closed = true;
    this.ring();
  }

  /** Waits in progress (for tests and diagnostics). */
  get waiting(): number {
    return this.waiters.size;
  }
}

// A rate-limited work queue with client-go's semantics (k8s.io/client-go/util/workqueue):
//
// - Keys are deduplicated: a key waiting in the queue is held once however often it is added.
// - A key is never handed to two workers at once: a key added while it is being processed is
//   marked dirty and queued again (once) when its worker calls done().
// - addRateLimited() delays by max(per-item exponential backoff 5 ms·2^n capped at 1000 s,
//   a global token bucket of 10 qps / burst 100) — client-go's DefaultControllerRateLimiter.
//   forget() resets the item's backoff (call it on success).
// - addAfter() delays a key (requeueAfter); the earliest pending deadline wins.
// - After shutDown(), get() resolves undefined and adds are ignored.
import type { Registry } from 'prom-client';
import { type RuntimeMetrics, runtimeMetrics, type UnfinishedWorkSource } from './metrics.js';

export interface WorkQueueOptions {
  name?: string;
  controller?: string;
  registry?: Registry;
  baseDelayMs?: number;
  maxDelayMs?: number;
  qps?: number;
  burst?: number;
}

/** Per-item exponential failure backoff (client-go ItemExponentialFailureRateLimiter). */
export class ItemExponentialBackoff {
  private readonly failures = new Map<string, number>();
  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1_000_000,
  ) {}
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }
  forget(key: string): void {
    this.failures.delete(key);
  }
}

/** A token bucket that reserves tokens in advance (golang.org/x/time/rate Reserve semantics). */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }
  /** Reserves one token; returns how long (ms) the caller must wait for it. */
  reserve(): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.qps);
    this.last = t;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

export class WorkQueue implements UnfinishedWorkSource {
  readonly labels: { name: string; controller: string };
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>(); // key → start time (ms)
  private readonly addedAt = new Map<string, number>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly backoff: ItemExponentialBackoff;
  private readonly bucket: TokenBucket;
  private readonly metrics: RuntimeMetrics;
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    const name = opts.name ?? 'default';
    this.labels = { name, controller: opts.controller ?? name };
    this.backoff = new ItemExponentialBackoff(opts.baseDelayMs ?? 5, opts.maxDelayMs ?? 1_000_000);
    this.bucket = new TokenBucket(opts.qps ?? 10, opts.burst ?? 100);
    this.metrics = runtimeMetrics(opts.registry);
    this.metrics.queues.add(this);
    this.metrics.wqDepth.set(this.labels, 0);
  }

  /** Queues `key` now (deduplicated; deferred until done() if it is being processed). */
  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) return;
    this.metrics.wqAdds.inc(this.labels);
    this.dirty.add(key);
    this.addedAt.set(key, Date.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Queues `key` after `ms`; if it is already waiting with an earlier deadline, that one wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /** Queues `key` after max(its exponential backoff, the global token bucket's delay). */
  addRateLimited(key: string): void {
    if (this.shuttingDown) return;
    this.metrics.wqRetries.inc(this.labels);
    this.addAfter(key, this.when(key));
  }

  /** The delay addRateLimited would use now (and records a failure). Exposed for tests. */
  when(key: string): number {
    return Math.max(this.backoff.when(key), this.bucket.reserve());
  }

  numRequeues(key: string): number {
    return this.backoff.numRequeues(key);
  }

  /** Resets the backoff of `key` (it does not remove it from the queue). */
  forget(key: string): void {
    this.backoff.forget(key);
  }

  /** The next key to process; undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks `key` as processed; if it was added meanwhile it is queued again now. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined) return;
    this.processing.delete(key);
    this.metrics.wqWorkDuration.observe(this.labels, (Date.now() - started) / 1000);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
  }

  /** Stops the queue: pending get()s resolve undefined, timers are cleared, adds are ignored. */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
    this.queue.length = 0;
    this.metrics.wqDepth.set(this.labels, 0);
    this.metrics.queues.delete(this);
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Keys ready to be handed out (not counting delayed or in-process keys). */
  len(): number {
    return this.queue.length;
  }

  /** Keys waiting for an addAfter/addRateLimited deadline. */
  delayedLen(): number {
    return this.delayed.size;
  }

  /** Keys currently handed out and not yet done(). */
  processingLen(): number {
    return this.processing.size;
  }

  unfinishedWorkSeconds(): number {
    const now = Date.now();
    let total = 0;
    for (const t of this.processing.values()) total += (now - t) / 1000;
    return total;
  }

  longestRunningProcessorSeconds(): number {
    const now = Date.now();
    let oldest = now;
    for (const t of this.processing.values()) oldest = Math.min(oldest, t);
    return (now - oldest) / 1000;
  }

  private push(key: string): void {
    const w = this.waiters.shift();
    if (w) {
      w(this.take(key));
      return;
    }
    this.queue.push(key);
    this.metrics.wqDepth.set(this.labels, this.queue.length);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.set(key, Date.now());
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.metrics.wqQueueDuration.observe(this.labels, (Date.now() - added) / 1000);
    this.metrics.wqDepth.set(this.labels, this.queue.length);
    return key;
  }
}

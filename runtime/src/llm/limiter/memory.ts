/**
 * In-process token-bucket limiter: three buckets (requests, input tokens, output tokens per
 * minute), a concurrency cap, a pool block (`blockUntil`), a slow-start ramp and tightening from
 * server headers. It serves one process (tests, a single worker); the Postgres implementation of
 * the same `RateLimiter` interface shares the buckets across pods.
 *
 * Algorithm: each bucket refills continuously at `limit * safetyFactor / 60 s` up to a capacity
 * of `burstSeconds` worth of refill (Anthropic also uses a continuously refilled bucket, and may
 * enforce "60 RPM" as "1 per second", so a small burst is the safe default). Reservations are
 * granted FIFO. An estimate bigger than a bucket's capacity waits for a full bucket and then
 * drives it negative, so a single huge request cannot starve forever.
 */
import { randomUUID } from 'node:crypto';
import {
  LIMITER_DEFAULTS,
  type LimiterTuning,
  type PoolLimits,
} from '../../../../contract/src/pool-runtime.js';
import { sleep as defaultSleep, type Sleep } from '../../../../contract/src/sleep.js';
import {
  type ActualUsage,
  type HeaderSource,
  type LimiterSnapshot,
  parseRateLimitHeaders,
  type RateLimiter,
  type Reservation,
  type TokenEstimate,
} from './types.js';

/**
 * The pool's limits and the limiter tuning of the contract (defaults: LIMITER_DEFAULTS), except
 * that the slow start is off unless asked for: this limiter serves one process (benchmarks and
 * tests of steady-state throughput), where no pool of pods wakes up cold.
 */
export interface MemoryLimiterOptions
  extends Omit<PoolLimits, 'maxConcurrency'>,
    Pick<LimiterTuning, 'safetyFactor' | 'burstSeconds' | 'rampUp'> {
  maxConcurrency?: number;
  now?: () => number;
  sleep?: Sleep;
}

class Bucket {
  level: number;
  private updatedAt: number;
  constructor(
    public limitPerMinute: number,
    private readonly burstSeconds: number,
    now: number,
    initialFraction: number,
  ) {
    this.level = this.capacity * initialFraction;
    this.updatedAt = now;
  }
  get capacity(): number {
    return Math.max(1, (this.limitPerMinute / 60) * this.burstSeconds);
  }
  refill(now: number, rateFraction: number): void {
    const dt = Math.max(0, now - this.updatedAt);
    this.updatedAt = now;
    this.level = Math.min(this.capacity, this.level + (dt / 60_000) * this.limitPerMinute * rateFraction);
  }
  /** ms until `n` (capped at capacity) is available. */
  waitFor(n: number, rateFraction: number): number {
    const need = Math.min(n, this.capacity);
    if (this.level >= need) return 0;
    const perMs = (this.limitPerMinute * rateFraction) / 60_000;
    return perMs > 0 ? Math.ceil((need - this.level) / perMs) : 1000;
  }
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly now: () => number;
  private readonly sleep: Sleep;
  private readonly safety: number;
  private readonly configured: { rpm: number; itpm: number; otpm: number };
  private readonly requests: Bucket;
  private readonly input: Bucket;
  private readonly output: Bucket;
  private readonly maxConcurrency: number;
  private readonly ramp?: { initialFraction: number; durationMs: number };
  private startedAt: number | null = null;
  private blockedUntilMs = 0;
  private inFlight = 0;
  private queue: Promise<void> = Promise.resolve();
  private slotWaiters: Array<() => void> = [];
  private readonly open = new Set<string>();
  private readonly grants: Array<{
    id: string;
    at: number;
    requests: number;
    input: number;
    output: number;
  }> = [];
  private throttled = 0;
  private lastThrottledAt: number | null = null;

  constructor(opts: MemoryLimiterOptions) {
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? defaultSleep;
    this.safety = opts.safetyFactor ?? LIMITER_DEFAULTS.safetyFactor;
    this.maxConcurrency = opts.maxConcurrency ?? Number.POSITIVE_INFINITY;
    this.ramp = opts.rampUp && opts.rampUp.durationMs > 0 ? opts.rampUp : undefined;
    this.configured = {
      rpm: opts.requestsPerMinute,
      itpm: opts.inputTokensPerMinute,
      otpm: opts.outputTokensPerMinute,
    };
    const burst = opts.burstSeconds ?? LIMITER_DEFAULTS.burstSeconds;
    const t = this.now();
    const init = this.ramp ? this.ramp.initialFraction : 1;
    this.requests = new Bucket(opts.requestsPerMinute * this.safety, burst, t, init);
    this.input = new Bucket(opts.inputTokensPerMinute * this.safety, burst, t, init);
    this.output = new Bucket(opts.outputTokensPerMinute * this.safety, burst, t, init);
  }

  private rateFraction(now: number): number {
    if (!this.ramp || this.startedAt === null) return 1;
    const f =
      this.ramp.initialFraction +
      ((1 - this.ramp.initialFraction) * (now - this.startedAt)) / this.ramp.durationMs;
    return Math.min(1, Math.max(this.ramp.initialFraction, f));
  }

  private refillAll(now: number): number {
    const f = this.rateFraction(now);
    this.requests.refill(now, f);
    this.input.refill(now, f);
    this.output.refill(now, f);
    return f;
  }

  async reserve(estimate: TokenEstimate, signal?: AbortSignal): Promise<Reservation> {
    const requested = {
      requests: estimate.requests ?? 1,
      inputTokens: Math.max(0, Math.ceil(estimate.inputTokens)),
      outputTokens: Math.max(0, Math.ceil(estimate.outputTokens)),
    };
    const start = this.now();
    if (this.startedAt === null) this.startedAt = start;
    // FIFO: each reserve waits for the previous one to be granted.
    let release!: () => void;
    const turn = new Promise<void>((r) => {
      release = r;
    });
    const prev = this.queue;
    this.queue = prev.then(() => turn);
    try {
      await prev;
      for (;;) {
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        const now = this.now();
        if (this.blockedUntilMs > now) {
          await this.sleep(Math.min(this.blockedUntilMs - now, 1000), signal);
          continue;
        }
        if (this.inFlight >= this.maxConcurrency) {
          await new Promise<void>((r) => this.slotWaiters.push(r));
          continue;
        }
        const f = this.refillAll(now);
        const wait = Math.max(
          this.requests.waitFor(requested.requests, f),
          this.input.waitFor(requested.inputTokens, f),
          this.output.waitFor(requested.outputTokens, f),
        );
        if (wait > 0) {
          // Cap each sleep so a new block or tightening is noticed promptly.
          await this.sleep(Math.min(wait, 250), signal);
          continue;
        }
        this.requests.level -= requested.requests;
        this.input.level -= requested.inputTokens;
        this.output.level -= requested.outputTokens;
        this.inFlight++;
        const r: Reservation = { id: randomUUID(), ...requested, grantedAtMs: now, waitedMs: now - start };
        this.open.add(r.id);
        this.grants.push({
          id: r.id,
          at: now,
          requests: r.requests,
          input: r.inputTokens,
          output: r.outputTokens,
        });
        this.trimGrants(now);
        return r;
      }
    } finally {
      release();
    }
  }

  async reconcile(reservation: Reservation, actual: ActualUsage | null): Promise<void> {
    if (!this.open.delete(reservation.id)) return;
    this.inFlight--;
    const now = this.now();
    this.refillAll(now);
    const inTok = actual ? actual.inputTokens : 0;
    const outTok = actual ? actual.outputTokens : 0;
    this.input.level = Math.min(this.input.capacity, this.input.level + reservation.inputTokens - inTok);
    this.output.level = Math.min(this.output.capacity, this.output.level + reservation.outputTokens - outTok);
    const g = this.grants.find((x) => x.id === reservation.id);
    if (g) {
      g.input = inTok;
      g.output = outTok;
    }
    const w = this.slotWaiters.shift();
    w?.();
  }

  async blockUntil(untilMs: number): Promise<void> {
    const now = this.now();
    if (untilMs > now) {
      this.throttled++;
      this.lastThrottledAt = now;
    }
    this.blockedUntilMs = Math.max(this.blockedUntilMs, untilMs);
  }

  async observeHeaders(headers: HeaderSource): Promise<void> {
    const s = parseRateLimitHeaders(headers);
    const now = this.now();
    this.refillAll(now);
    const tighten = (
      b: Bucket,
      configured: number,
      dim: { limit?: number; remaining?: number } | undefined,
      slack: number,
    ) => {
      if (!dim) return;
      if (dim.limit !== undefined && dim.limit > 0) {
        b.limitPerMinute = Math.min(configured, dim.limit) * this.safety;
      }
      // The server saw less headroom than we think we have (others share the org limit, or it
      // was lowered): come down to it. Token counts are rounded to 1,000 by the API.
      if (dim.remaining !== undefined && dim.remaining + slack < b.level) {
        b.level = Math.max(0, dim.remaining);
      }
      b.level = Math.min(b.level, b.capacity);
    };
    tighten(this.requests, this.configured.rpm, s.requests, 0);
    tighten(this.input, this.configured.itpm, s.inputTokens, 1000);
    tighten(this.output, this.configured.otpm, s.outputTokens, 1000);
  }

  private trimGrants(now: number): void {
    while (this.grants.length > 0 && this.grants[0]!.at < now - 60_000) this.grants.shift();
  }

  async snapshot(): Promise<LimiterSnapshot> {
    const now = this.now();
    this.trimGrants(now);
    const f = this.rateFraction(now);
    return {
      blockedUntilMs: this.blockedUntilMs > now ? this.blockedUntilMs : 0,
      inFlight: this.inFlight,
      effective: {
        requestsPerMinute: this.requests.limitPerMinute * f,
        inputTokensPerMinute: this.input.limitPerMinute * f,
        outputTokensPerMinute: this.output.limitPerMinute * f,
      },
      lastMinute: this.grants.reduce(
        (acc, g) => ({
          requests: acc.requests + g.requests,
          inputTokens: acc.inputTokens + g.input,
          outputTokens: acc.outputTokens + g.output,
        }),
        { requests: 0, inputTokens: 0, outputTokens: 0 },
      ),
      throttled429: this.throttled,
      lastThrottledAtMs: this.lastThrottledAt,
    };
  }
}

/** A limiter that never waits; for tools and tests that do not exercise limiting. */
export class UnlimitedRateLimiter implements RateLimiter {
  private n = 0;
  private blocked = 0;
  constructor(private readonly sleep: Sleep = defaultSleep) {}
  async reserve(e: TokenEstimate, signal?: AbortSignal): Promise<Reservation> {
    const start = Date.now();
    while (this.blocked > Date.now()) await this.sleep(Math.min(this.blocked - Date.now(), 1000), signal);
    return {
      id: String(++this.n),
      requests: e.requests ?? 1,
      inputTokens: e.inputTokens,
      outputTokens: e.outputTokens,
      grantedAtMs: Date.now(),
      waitedMs: Date.now() - start,
    };
  }
  async reconcile(): Promise<void> {}
  async blockUntil(untilMs: number): Promise<void> {
    this.blocked = Math.max(this.blocked, untilMs);
  }
  async observeHeaders(): Promise<void> {}
  async snapshot(): Promise<LimiterSnapshot> {
    return {
      blockedUntilMs: this.blocked > Date.now() ? this.blocked : 0,
      inFlight: 0,
      effective: {
        requestsPerMinute: Infinity,
        inputTokensPerMinute: Infinity,
        outputTokensPerMinute: Infinity,
      },
      lastMinute: { requests: this.n, inputTokens: 0, outputTokens: 0 },
      throttled429: 0,
      lastThrottledAtMs: null,
    };
  }
}

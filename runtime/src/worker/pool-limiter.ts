/**
 * The pool-wide rate limiter (the worker's: it implements runtime/src/llm's `RateLimiter` over the
 * store's limiter functions, runtime/src/store/limiter.ts): token buckets in Postgres, shared by every process and pod of an
 * LLMProviderPool (one row per pool in `llm_pool_limiter`, migration 2). This is what keeps N
 * worker pods under ONE limit — the failure of gateways that enforce per replica (N replicas let
 * N times the limit through) cannot happen, because every grant is debited from the same row
 * under its row lock.
 *
 * Algorithm (same buckets as `MemoryRateLimiter`, state in the database):
 *  - `reserve`: one statement (`cj_limiter_reserve`, migration 3) that locks the pool row only
 *    while it runs (never across client round trips, so a CPU-starved pod cannot stall the
 *    pool), reads the database clock and the in-flight count, and refills the three buckets
 *    (requests, input tokens, output tokens per minute) from the elapsed time at
 *    `min(configured, server-reported) × safety × ramp` per minute, capacity `burstSeconds` of
 *    refill. If the pool is not blocked, a slot is free and the estimate fits, it debits the
 *    estimate and inserts a reservation row (the in-flight slot, with a lease); otherwise it
 *    changes nothing and returns the time to wait (the deficit over the refill rate, the rest of
 *    the block, or a short poll when concurrency-bound), which the caller sleeps before retrying.
 *    Within a process only the head of a FIFO queue asks, so waiting costs a few statements per
 *    second per process, never a busy loop.
 *  - `reconcile`: settle the reservation row once (`WHERE settled_at IS NULL`, idempotent) and
 *    give back the difference between the estimate and the reported usage; `null` usage refunds
 *    the tokens (the request stays counted).
 *  - Concurrency: in-flight = unsettled reservations whose lease has not expired, so a crashed
 *    process's slots come back after `leaseMs` (default 180 s > the 120 s per-attempt timeout).
 *  - Fair share (migration 7): a batch role's grants advance its virtual time (granted pool
 *    capacity ÷ its weight, from spec.priority); a batch ahead of another that waits is told to
 *    retry shortly (`share`), so the pool's rate divides by weight among the batches that want it.
 *  - `blockUntil`: `blocked_until = greatest(blocked_until, db now + delay)` for the whole pool.
 *  - Ramp-up (acceleration limits): the rate and the burst start at `initialFraction` and grow
 *    linearly to 100% over `durationMs`; the ramp restarts when the pool was idle for
 *    `rampIdleResetMs`.
 *  - `observeHeaders`: a server-reported `-limit` below the configured one becomes the effective
 *    limit for the whole pool (and follows it back up to the configured value); a `-remaining`
 *    lower than our bucket level (others share the org's limit) lowers the level.
 *
 * All times are the database's clock (`clock_timestamp()`), so pods with skewed clocks agree.
 */
import { randomUUID } from 'node:crypto';
import { LIMITER_DEFAULTS, type LimiterTuning, type PoolLimits } from '../../../contract/src/pool-runtime.js';
import { sleep as defaultSleep, type Sleep } from '../../../contract/src/sleep.js';
import {
  type ActualUsage,
  type HeaderSource,
  type LimiterSnapshot,
  parseRateLimitHeaders,
  type RateLimiter,
  type Reservation,
  type TokenEstimate,
} from '../llm/limiter/types.js';
import type { Sql } from '../store/index.js';
import {
  type Dim,
  limiterBlock,
  limiterObserve,
  limiterPrune,
  limiterReserve,
  limiterSettle,
  type PoolUsage,
  poolUsage,
} from '../store/limiter.js';
import { upsertLimiterRow } from '../store/tenancy.js';

/** The pool's limits and the contract's limiter tuning (defaults: LIMITER_DEFAULTS; `rampUp.durationMs: 0` turns the slow start off). */
export interface PostgresLimiterOptions extends Omit<PoolLimits, 'maxConcurrency'>, LimiterTuning {
  sql: Sql;
  /** `<namespace>/<name>` of the LLMProviderPool. */
  poolKey: string;
  /**
   * false: the row is the operator's (pool limits, per-batch overrides in their own row) and this
   * process only reserves through the limiter functions. Default true (one process owns the pool).
   */
  managed?: boolean;
  /** Who holds the reservations (pod name); informational. */
  owner: string;
  /** In-flight requests across the whole pool. Default: unlimited (1,000,000). */
  maxConcurrency?: number;
  /** Restart the ramp when no request was granted for this long. */
  rampIdleResetMs?: number;
  /** Poll interval while every concurrency slot is taken (default 50 ms). */
  slotPollMs?: number;
  /** Longest single sleep while waiting, so blocks and tightening are noticed (default 1 s). */
  maxSleepMs?: number;
  sleep?: Sleep;
  random?: () => number;
}

type Attempt =
  | { granted: Reservation }
  | { waitMs: number; why: 'blocked' | 'concurrency' | 'tokens' | 'share' };

export class PostgresRateLimiter implements RateLimiter {
  readonly poolKey: string;
  private readonly sql: Sql;
  private readonly o: PostgresLimiterOptions;
  private readonly sleep: Sleep;
  private readonly random: () => number;
  private ready: Promise<void> | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Server limits this process last wrote, to write only on change. */
  private readonly seenServer: Partial<Record<Dim, number | null>> = {};
  /** Capacity seen at the last grant, to decide cheaply whether a `-remaining` matters. */
  private lastCapacity: Record<Dim, number> = { req: 0, in: 0, out: 0 };
  private reconciles = 0;

  constructor(opts: PostgresLimiterOptions) {
    this.o = opts;
    this.sql = opts.sql;
    this.poolKey = opts.poolKey;
    this.sleep = opts.sleep ?? defaultSleep;
    this.random = opts.random ?? Math.random;
  }

  /**
   * Create or update the pool row (configured limits; levels, server limits and history stay).
   * With `managed: false` (worker pods) the operator keeps the row and this does nothing: a
   * worker's role may not write limiter rows at all.
   */
  init(): Promise<void> {
    this.ready ??=
      this.o.managed === false
        ? Promise.resolve()
        : upsertLimiterRow(this.sql, this.poolKey, {
            requestsPerMinute: this.o.requestsPerMinute,
            inputTokensPerMinute: this.o.inputTokensPerMinute,
            outputTokensPerMinute: this.o.outputTokensPerMinute,
            maxConcurrency: this.o.maxConcurrency ?? 1_000_000,
            ...(this.o.safetyFactor !== undefined ? { safetyFactor: this.o.safetyFactor } : {}),
            ...(this.o.burstSeconds !== undefined ? { burstSeconds: this.o.burstSeconds } : {}),
            ...(this.o.rampUp ? { rampUp: this.o.rampUp } : {}),
          });
    return this.ready;
  }

  async reserve(estimate: TokenEstimate, signal?: AbortSignal): Promise<Reservation> {
    const want = {
      requests: estimate.requests ?? 1,
      inputTokens: Math.max(0, Math.ceil(estimate.inputTokens)),
      outputTokens: Math.max(0, Math.ceil(estimate.outputTokens)),
    };
    await this.init();
    const start = Date.now();
    // FIFO within the process: only the head of the queue polls the database.
    let release!: () => void;
    const turn = new Promise<void>((r) => {
      release = r;
    });
    const prev = this.queue;
    this.queue = prev.then(() => turn);
    try {
      await prev;
      const maxSleep = this.o.maxSleepMs ?? 1000;
      for (;;) {
        if (signal?.aborted) throw signal.reason ?? new Error('aborted');
        const a = await this.tryReserve(want);
        if ('granted' in a) return { ...a.granted, waitedMs: Date.now() - start };
        // Jitter so the heads of several processes do not wake in lockstep.
        const jitter = 1 + Math.floor(this.random() * 10);
        const ms =
          a.why === 'blocked' ? Math.min(a.waitMs, 5000) + jitter : Math.min(a.waitMs, maxSleep) + jitter;
        await this.sleep(ms, signal);
      }
    } finally {
      release();
    }
  }

  /** One grant attempt: a single statement (`cj_limiter_reserve`, migration 3) under the row lock. */
  private async tryReserve(want: {
    requests: number;
    inputTokens: number;
    outputTokens: number;
  }): Promise<Attempt> {
    const o = this.o;
    const id = randomUUID();
    const r = await limiterReserve(this.sql, {
      poolKey: this.poolKey,
      id,
      owner: o.owner,
      ...want,
      leaseMs: o.leaseMs ?? LIMITER_DEFAULTS.leaseMs,
      rampIdleResetMs: o.rampIdleResetMs ?? LIMITER_DEFAULTS.rampIdleResetMs,
      slotPollMs: o.slotPollMs ?? 50,
    });
    if (r.o_why !== 'tokens' && r.o_why !== 'granted') return { waitMs: r.o_wait_ms, why: r.o_why };
    this.lastCapacity = { req: r.o_cap_req, in: r.o_cap_in, out: r.o_cap_out };
    if (!r.o_granted) return { waitMs: r.o_wait_ms, why: 'tokens' };
    return { granted: { id, ...want, grantedAtMs: Date.now(), waitedMs: 0 } };
  }

  async reconcile(reservation: Reservation, actual: ActualUsage | null): Promise<void> {
    // Settled once, server-side: the difference between the stored estimate and the usage goes
    // back to the pool's bucket (and the batch's), capped at capacity; `null` refunds the tokens.
    const usedIn = actual ? Math.max(0, Math.round(actual.inputTokens)) : 0;
    const usedOut = actual ? Math.max(0, Math.round(actual.outputTokens)) : 0;
    await limiterSettle(this.sql, reservation.id, usedIn, usedOut);
    if (++this.reconciles % 200 === 0) await this.prune();
  }

  /** Delete reservations older than two minutes that are settled or whose lease expired. */
  async prune(): Promise<void> {
    await limiterPrune(this.sql, this.poolKey);
  }

  async blockUntil(untilMs: number): Promise<void> {
    const delay = untilMs - Date.now();
    if (delay <= 0) return;
    await this.init();
    // On the database clock (pods with skewed clocks block the same interval), and never longer
    // than the row's max_block_ms whatever a provider's retry-after says.
    await limiterBlock(this.sql, this.poolKey, delay);
  }

  async observeHeaders(headers: HeaderSource): Promise<void> {
    const s = parseRateLimitHeaders(headers);
    const dims: Array<[Dim, { limit?: number; remaining?: number } | undefined, number, number]> = [
      ['req', s.requests, this.o.requestsPerMinute, 0],
      ['in', s.inputTokens, this.o.inputTokensPerMinute, 1000],
      ['out', s.outputTokens, this.o.outputTokensPerMinute, 1000],
    ];
    // Only changes are sent: a server limit that moved across the configured one, a remaining
    // count below our whole burst (others share the org's limit).
    const limit: Record<Dim, number | null> = { req: null, in: null, out: null };
    const remaining: Record<Dim, number | null> = { req: null, in: null, out: null };
    const seen: Array<[Dim, number | null]> = [];
    for (const [d, dim, configured, slack] of dims) {
      if (!dim) continue;
      if (dim.limit !== undefined && dim.limit > 0) {
        const server = dim.limit < configured ? dim.limit : null;
        if (this.seenServer[d] !== server) {
          limit[d] = dim.limit;
          seen.push([d, server]);
        }
      }
      if (dim.remaining !== undefined && dim.remaining + slack < this.lastCapacity[d])
        remaining[d] = Math.max(0, dim.remaining);
    }
    if (Object.values(limit).every((v) => v === null) && Object.values(remaining).every((v) => v === null))
      return;
    await this.init();
    await limiterObserve(this.sql, this.poolKey, limit, remaining);
    for (const [d, server] of seen) this.seenServer[d] = server;
  }

  /** The pool's usage for its status (see `poolUsage`). */
  async usage(poolKey: string = this.poolKey): Promise<PoolUsage | undefined> {
    return poolUsage(this.sql, poolKey);
  }

  async snapshot(): Promise<LimiterSnapshot> {
    await this.init();
    const u = await poolUsage(this.sql, this.poolKey);
    if (!u) throw new Error(`limiter row for pool ${this.poolKey} is missing`);
    return {
      blockedUntilMs: u.blockedUntil ? Date.parse(u.blockedUntil) : 0,
      inFlight: u.inFlight,
      effective: u.effective,
      lastMinute: {
        requests: u.requestsLastMinute,
        inputTokens: u.inputTokensLastMinute,
        outputTokens: u.outputTokensLastMinute,
      },
      throttled429: u.throttled,
      lastThrottledAtMs: u.last429Time ? Date.parse(u.last429Time) : null,
    };
  }
}

/**
 * The `Comparer` facade: pool configuration + assignment in, one outcome per comparison out.
 *
 *   const comparer = new Comparer({ pool, assignment, anthropic: createAnthropic({ apiKey, baseURL }), limiter });
 *   const outcomes = await comparer.compare(jobs, { onOutcome: (o) => store.writeOnce(o) });
 *
 * Guarantees: exactly one outcome per `comparisonId` (duplicates in the input are rejected);
 * an outcome is `succeeded` only with a validated verdict; every failure carries a
 * `failureReason`. If the run is aborted (`signal`), `compare` rejects with an `AbortError`
 * after in-flight calls settle — outcomes already delivered through `onOutcome` stand, the rest
 * should be released (not failed) by the caller. In `batch_api` mode a polling failure rejects
 * with `BatchPollError` for the same reason: a later run resumes the stored provider batch.
 *
 * After a 401/403 the Comparer stops calling the provider: remaining comparisons fail fast with
 * `auth_failed`, `authFailure` is set and `onAuthError` is called once so the pool can be marked
 * Degraded.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { Logger } from 'pino';
import { PoolRuntimeConfigSchema } from '../../../contract/src/pool-runtime.js';
import { sleep as defaultSleep, type Sleep } from '../../../contract/src/sleep.js';
import { type BatchStore, MemoryBatchStore } from './batch-store.js';
import { type ErrorClassification, LlmClient } from './client.js';
import type { RateLimiter } from './limiter/types.js';
import type { LlmMetrics } from './metrics.js';
import { runBatches } from './modes/batch-api.js';
import { AbortedError, type JobState, type ModeContext, newState } from './modes/context.js';
import { askIndividually } from './modes/per-request.js';
import { askBundle, planBundles } from './modes/serial-bundle.js';
import type {
  Assignment,
  ComparisonOutcome,
  PairJob,
  PoolRuntimeConfig,
  PoolRuntimeConfigInput,
} from './types.js';
import { mapPool } from './util.js';

export interface ComparerOptions {
  pool: PoolRuntimeConfigInput;
  assignment: Assignment;
  /** An SDK client created with `maxRetries: 0` (see `createAnthropic`). */
  anthropic: Anthropic;
  limiter: RateLimiter;
  /** Required for restart-safe `batch_api`; defaults to an in-memory store. */
  batchStore?: BatchStore;
  /** Namespace of batch keys, e.g. `<cjbatch uid>/<shard>`. */
  batchKeyPrefix?: string;
  metrics?: LlmMetrics;
  logger?: Logger;
  onAuthError?: (c: ErrorClassification) => void;
  /** Test hook: called after a provider batch id has been stored and before polling. */
  onBatchSubmitted?: (providerBatchId: string, key: string) => void;
  sleep?: Sleep;
  random?: () => number;
  now?: () => number;
}

export interface CompareOptions {
  signal?: AbortSignal;
  /** Called once per comparison as soon as its outcome is settled. */
  onOutcome?: (o: ComparisonOutcome) => void;
}

export class Comparer {
  readonly pool: PoolRuntimeConfig;
  readonly client: LlmClient;
  private readonly o: ComparerOptions;
  private readonly store: BatchStore;
  private readonly warmPrefixes = new Map<string, number>();
  private auth: ErrorClassification | undefined;

  constructor(opts: ComparerOptions) {
    this.o = opts;
    this.pool = PoolRuntimeConfigSchema.parse(opts.pool);
    this.store = opts.batchStore ?? new MemoryBatchStore();
    this.client = new LlmClient({
      anthropic: opts.anthropic,
      limiter: opts.limiter,
      retry: this.pool.retry,
      labels: { provider: this.pool.provider, model: this.pool.model, mode: this.pool.mode },
      metrics: opts.metrics,
      pricing: this.pool.pricing,
      logger: opts.logger,
      sleep: opts.sleep,
      random: opts.random,
      now: opts.now,
      onAuthError: (c) => {
        if (!this.auth) {
          this.auth = c;
          opts.onAuthError?.(c);
        }
      },
    });
  }

  /** Set after a 401/403 from the provider; the pool should be marked Degraded. */
  get authFailure(): ErrorClassification | undefined {
    return this.auth;
  }

  async compare(jobs: readonly PairJob[], opts: CompareOptions = {}): Promise<ComparisonOutcome[]> {
    const ids = new Set<string>();
    for (const j of jobs) {
      if (ids.has(j.comparisonId)) throw new Error(`duplicate comparisonId in input: ${j.comparisonId}`);
      ids.add(j.comparisonId);
    }
    const now = this.o.now ?? Date.now;
    const outcomes = new Map<string, ComparisonOutcome>();
    const labels = this.client.labels;
    const ctx: ModeContext = {
      pool: this.pool,
      assignment: this.o.assignment,
      client: this.client,
      metrics: this.o.metrics,
      logger: this.o.logger,
      sleep: this.o.sleep ?? defaultSleep,
      now,
      signal: opts.signal,
      batchStore: this.store,
      batchKeyPrefix: this.o.batchKeyPrefix ?? 'cj',
      onBatchSubmitted: this.o.onBatchSubmitted,
      isAuthFailed: () => this.auth !== undefined,
      warmPrefixes: this.warmPrefixes,
      settle: (o) => {
        if (outcomes.has(o.comparisonId)) {
          throw new Error(`internal: second outcome for comparison ${o.comparisonId}`);
        }
        outcomes.set(o.comparisonId, o);
        this.o.metrics?.comparisons.inc({
          ...labels,
          status: o.status,
          reason: o.status === 'failed' ? o.failureReason : '',
        });
        if (o.status === 'failed') {
          this.o.logger?.warn(
            {
              comparisonId: o.comparisonId,
              reason: o.failureReason,
              detail: o.failureDetail,
              attempts: o.attempts,
            },
            'comparison failed',
          );
        }
        opts.onOutcome?.(o);
      },
    };

    try {
      await this.run(ctx, jobs);
    } catch (err) {
      if (opts.signal?.aborted && !(err instanceof AbortedError)) throw new AbortedError(err);
      throw err;
    }
    if (opts.signal?.aborted) throw new AbortedError(opts.signal.reason);
    return jobs.map((j) => {
      const o = outcomes.get(j.comparisonId);
      if (!o) throw new Error(`internal: no outcome for comparison ${j.comparisonId}`);
      return o;
    });
  }

  private async run(ctx: ModeContext, jobs: readonly PairJob[]): Promise<void> {
    const now = ctx.now;
    const t0 = now();
    const states = jobs.map((j) => newState(j, t0));
    if (this.pool.mode === 'batch_api') {
      await runBatches(ctx, states);
    } else {
      const units: JobState[][] =
        this.pool.mode === 'serial_bundle'
          ? planBundles(states, this.pool, this.o.assignment)
          : states.map((s) => [s]);
      const run = async (unit: JobState[]) => {
        const start = now();
        for (const st of unit) st.startedAt = start;
        if (unit.length === 1) await askIndividually(ctx, unit[0]!, true);
        else await askBundle(ctx, unit);
      };
      let rest = units;
      // Warm the prompt cache with one call before fanning out: a cache entry is only usable
      // once the first response has begun, so N parallel cold calls would all pay the write.
      if (this.pool.promptCaching.enabled && units.length > 1 && !this.isWarm(units[0]![0]!)) {
        await run(units[0]!);
        rest = units.slice(1);
      }
      await mapPool(rest, this.pool.concurrency, run);
    }
  }

  private isWarm(_st: JobState): boolean {
    const t = (this.o.now ?? Date.now)();
    for (const until of this.warmPrefixes.values()) if (until > t) return true;
    return false;
  }
}

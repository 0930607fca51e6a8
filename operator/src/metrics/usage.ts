/**
 * The LLM work of the worker pods and the state of the batches, as Prometheus metrics on the
 * operator's /metrics. Worker pods are short-lived and sit in tenant namespaces; rather than have
 * them push figures (a network path from every tenant into the operator, and figures a hostile
 * tenant could forge for others), the leader reads back what the workers already write to Postgres
 * under their batch's role: each comparison's tokens and attempts, and the pool limiter's grants
 * and 429s (see docs/observability.md).
 *
 * Counters grow by the change in each batch's totals since the last refresh, so a deleted batch
 * (its rows go with it) never makes a counter go down; a fresh leader starts from zero, as a
 * restarted process does. Per-batch gauges exist while a batch runs and for `recentSeconds` after.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { estimateCostUsd } from '../../../contract/src/cost.js';
import { POOL_DEFAULTS, resolvePricing } from '../../../contract/src/pool-runtime.js';
import type { BatchUsageRow, GrantedAttempt, PoolLimiterState } from '../../../runtime/src/store/usage.js';
import { type CJBatch, type LLMProviderPool, poolKeyOf } from '../api/index.js';

export interface UsageSource {
  batches(recentSeconds: number): Promise<BatchUsageRow[]>;
  pools(): Promise<PoolLimiterState[]>;
  grants(seconds: number): Promise<GrantedAttempt[]>;
}

export interface UsageMetricsOptions {
  registry: Registry;
  source: UsageSource;
  /** The informers' caches: pool model, mode and pricing; batch phase. */
  listPools: () => LLMProviderPool[];
  listBatches: () => CJBatch[];
  /** How long a finished batch keeps its per-batch gauges (default one hour). */
  recentSeconds?: number;
  /** Grants looked back at on each refresh; must exceed the refresh interval (default 150 s). */
  grantWindowSeconds?: number;
}

type Totals = Pick<
  BatchUsageRow,
  'succeeded' | 'failed' | 'retries' | 'inputTokens' | 'outputTokens' | 'cacheReadTokens' | 'cacheWriteTokens'
>;
const ZERO: Totals = {
  succeeded: 0,
  failed: 0,
  retries: 0,
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
};
const TOTAL_KEYS = Object.keys(ZERO) as (keyof Totals)[];

const LLM_LABELS = ['tenant_namespace', 'pool', 'model', 'mode'] as const;
const BATCH_LABELS = ['tenant_namespace', 'batch'] as const;
const TERMINAL = new Set(['Succeeded', 'Failed']);
// The apiserver applies the CRD defaults; a cache entry written before a default existed lacks it.
const modeOf = (p: LLMProviderPool) => p.spec.batching?.mode ?? POOL_DEFAULTS.batching.mode;

export class UsageMetrics {
  private readonly o: Required<UsageMetricsOptions>;
  private readonly seen = new Map<string, Totals>();
  private readonly throttled = new Map<string, number>();
  private readonly grantIds = new Map<string, number>();

  readonly requests: Counter<(typeof LLM_LABELS)[number]>;
  readonly tokens: Counter<(typeof LLM_LABELS)[number] | 'direction'>;
  readonly cost: Counter<(typeof LLM_LABELS)[number]>;
  readonly comparisons: Counter<(typeof LLM_LABELS)[number] | 'status'>;
  readonly retries: Counter<(typeof LLM_LABELS)[number]>;
  readonly rateLimited: Counter<'tenant_namespace' | 'pool'>;
  readonly poolBlocked: Gauge<'tenant_namespace' | 'pool'>;
  readonly poolReady: Gauge<'tenant_namespace' | 'pool'>;
  readonly batchesByPhase: Gauge<'tenant_namespace' | 'phase'>;
  readonly batchInfo: Gauge<'tenant_namespace' | 'batch' | 'pool' | 'phase' | 'suspended'>;
  readonly batchComparisons: Gauge<'tenant_namespace' | 'batch' | 'status'>;
  readonly batchBudget: Gauge<'tenant_namespace' | 'batch'>;
  readonly batchRate: Gauge<'tenant_namespace' | 'batch'>;
  readonly batchCost: Gauge<'tenant_namespace' | 'batch'>;
  readonly batchIdle: Gauge<'tenant_namespace' | 'batch'>;
  readonly lastRefresh: Gauge;

  constructor(opts: UsageMetricsOptions) {
    this.o = { recentSeconds: 3600, grantWindowSeconds: 150, ...opts };
    const registers = [opts.registry];
    const llm = [...LLM_LABELS];
    this.requests = new Counter({
      name: 'cj_llm_requests_total',
      help: 'HTTP attempts to the LLM provider granted by the pool limiter (retries included; a bundle or a Message Batch call counts its requests).',
      labelNames: llm,
      registers,
    });
    this.tokens = new Counter({
      name: 'cj_llm_tokens_total',
      help: 'Tokens the provider reported for finished comparisons, by direction (input, output, cache_read, cache_write).',
      labelNames: [...llm, 'direction'],
      registers,
    });
    this.cost = new Counter({
      name: 'cj_llm_estimated_cost_usd_total',
      help: "Estimated cost in USD from the pool's pricing (the formula of status.cost.estimatedUSD).",
      labelNames: llm,
      registers,
    });
    this.comparisons = new Counter({
      name: 'cj_llm_comparisons_total',
      help: 'Finished comparisons by status (succeeded, failed).',
      labelNames: [...llm, 'status'],
      registers,
    });
    this.retries = new Counter({
      name: 'cj_llm_retries_total',
      help: 'HTTP attempts beyond the first, summed over finished comparisons.',
      labelNames: llm,
      registers,
    });
    this.rateLimited = new Counter({
      name: 'cj_llm_rate_limited_total',
      help: "Provider 429 answers whose retry-after blocked the pool (the pool limiter's count).",
      labelNames: ['tenant_namespace', 'pool'],
      registers,
    });
    this.poolBlocked = new Gauge({
      name: 'cj_pool_blocked_seconds',
      help: "Seconds the pool stays blocked by a provider's retry-after (0: not blocked).",
      labelNames: ['tenant_namespace', 'pool'],
      registers,
    });
    this.poolReady = new Gauge({
      name: 'cj_pool_ready',
      help: "1 when the pool's Ready condition is True, else 0.",
      labelNames: ['tenant_namespace', 'pool'],
      registers,
    });
    this.batchesByPhase = new Gauge({
      name: 'cj_batches',
      help: 'CJBatches by phase (active: any phase but Succeeded and Failed).',
      labelNames: ['tenant_namespace', 'phase'],
      registers,
    });
    this.batchInfo = new Gauge({
      name: 'cj_batch_info',
      help: 'Always 1: a batch with its pool, phase and whether it is suspended.',
      labelNames: ['tenant_namespace', 'batch', 'pool', 'phase', 'suspended'],
      registers,
    });
    this.batchComparisons = new Gauge({
      name: 'cj_batch_comparisons',
      help: "A batch's comparisons by status (succeeded, failed, pending).",
      labelNames: [...BATCH_LABELS, 'status'],
      registers,
    });
    this.batchBudget = new Gauge({
      name: 'cj_batch_budget_comparisons',
      help: "A batch's comparison budget.",
      labelNames: [...BATCH_LABELS],
      registers,
    });
    this.batchRate = new Gauge({
      name: 'cj_batch_comparisons_per_minute',
      help: 'Comparisons a batch finished per minute over the last five minutes.',
      labelNames: [...BATCH_LABELS],
      registers,
    });
    this.batchCost = new Gauge({
      name: 'cj_batch_estimated_cost_usd',
      help: "A batch's estimated cost so far in USD (its status.cost.estimatedUSD).",
      labelNames: [...BATCH_LABELS],
      registers,
    });
    this.batchIdle = new Gauge({
      name: 'cj_batch_seconds_since_progress',
      help: 'Seconds since an unfinished batch last finished a comparison (or registered, before any).',
      labelNames: [...BATCH_LABELS],
      registers,
    });
    this.lastRefresh = new Gauge({
      name: 'cj_usage_last_refresh_timestamp_seconds',
      help: 'When the operator last read the usage figures from the database.',
      registers,
    });
  }

  /** Reads the database once and updates every metric. */
  async refresh(): Promise<void> {
    const [rows, limiters, grants] = await Promise.all([
      this.o.source.batches(this.o.recentSeconds),
      this.o.source.pools(),
      this.o.source.grants(this.o.grantWindowSeconds),
    ]);
    const pools = new Map(this.o.listPools().map((p) => [poolKeyOf(p), p]));
    const batches = this.o.listBatches();
    const llmLabels = (poolKey: string | null) => {
      const [ns = 'unknown', name = 'unknown'] = (poolKey ?? '/').split('/');
      const p = poolKey ? pools.get(poolKey) : undefined;
      return {
        tenant_namespace: ns || 'unknown',
        pool: name || 'unknown',
        model: p?.spec.model ?? 'unknown',
        mode: p ? modeOf(p) : 'unknown',
      };
    };
    const costOf = (t: Totals, poolKey: string | null): number | undefined => {
      const p = poolKey ? pools.get(poolKey) : undefined;
      const pricing = p ? resolvePricing(p.spec.pricing) : undefined;
      if (!p || !pricing) return undefined;
      const usage = {
        input: t.inputTokens,
        output: t.outputTokens,
        cacheRead: t.cacheReadTokens,
        cacheWrite: t.cacheWriteTokens,
      };
      return estimateCostUsd(
        usage,
        pricing,
        modeOf(p),
        p.spec.promptCaching?.ttl ?? POOL_DEFAULTS.promptCaching.ttl,
      );
    };

    // Counters: the growth of each batch's totals since the last refresh.
    const present = new Set<string>();
    for (const r of rows) {
      present.add(r.uid);
      const before = this.seen.get(r.uid) ?? ZERO;
      const d = { ...ZERO };
      const now = { ...ZERO };
      for (const k of TOTAL_KEYS) {
        d[k] = Math.max(0, r[k] - before[k]);
        now[k] = r[k];
      }
      this.seen.set(r.uid, now);
      const l = llmLabels(r.poolKey);
      if (d.succeeded > 0) this.comparisons.inc({ ...l, status: 'succeeded' }, d.succeeded);
      if (d.failed > 0) this.comparisons.inc({ ...l, status: 'failed' }, d.failed);
      if (d.retries > 0) this.retries.inc(l, d.retries);
      const dirs: [string, number][] = [
        ['input', d.inputTokens],
        ['output', d.outputTokens],
        ['cache_read', d.cacheReadTokens],
        ['cache_write', d.cacheWriteTokens],
      ];
      for (const [direction, n] of dirs) if (n > 0) this.tokens.inc({ ...l, direction }, n);
      const usd = costOf(d, r.poolKey);
      if (usd !== undefined && usd > 0) this.cost.inc(l, usd);
      // Series appear at zero so that rate() sees a batch's first increase.
      this.comparisons.inc({ ...l, status: 'succeeded' }, 0);
      this.tokens.inc({ ...l, direction: 'input' }, 0);
      this.cost.inc(l, 0);
    }
    for (const uid of this.seen.keys()) if (!present.has(uid)) this.seen.delete(uid);

    // Requests: every grant once (ids remembered for longer than the window they are read from).
    for (const g of grants) {
      if (this.grantIds.has(g.id)) continue;
      this.grantIds.set(g.id, g.grantedMs);
      if (g.poolKey.startsWith('batch:')) continue;
      this.requests.inc(llmLabels(g.poolKey), g.requests);
    }
    const horizon = (grants.at(-1)?.grantedMs ?? Date.now()) - (this.o.grantWindowSeconds + 60) * 1000;
    for (const [id, t] of this.grantIds) if (t < horizon) this.grantIds.delete(id);

    // 429s: the limiter's own cumulative count per pool; a recreated row starts again at zero.
    this.poolBlocked.reset();
    for (const s of limiters) {
      const [ns = 'unknown', pool = 'unknown'] = s.poolKey.split('/');
      // A row seen for the first time (or recreated, its count lower) counts from zero.
      const before = this.throttled.get(s.poolKey) ?? 0;
      const d = s.throttled >= before ? s.throttled - before : s.throttled;
      this.throttled.set(s.poolKey, s.throttled);
      this.rateLimited.inc({ tenant_namespace: ns, pool }, d);
      this.poolBlocked.set({ tenant_namespace: ns, pool }, s.blockedSeconds);
    }

    // Gauges from the caches and the rows.
    this.poolReady.reset();
    for (const p of pools.values()) {
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      this.poolReady.set(
        { tenant_namespace: p.metadata.namespace ?? '', pool: p.metadata.name ?? '' },
        ready ? 1 : 0,
      );
    }
    this.batchesByPhase.reset();
    this.batchInfo.reset();
    const phases = new Map<string, number>();
    const byName = new Map(rows.map((r) => [`${r.namespace}/${r.name}`, r]));
    for (const b of batches) {
      const ns = b.metadata.namespace ?? '';
      const phase = b.status?.phase ?? 'Pending';
      const k = `${ns}\u0000${phase}`;
      phases.set(k, (phases.get(k) ?? 0) + 1);
      const row = byName.get(`${ns}/${b.metadata.name}`);
      if (TERMINAL.has(phase) && !row) continue;
      this.batchInfo.set(
        {
          tenant_namespace: ns,
          batch: b.metadata.name ?? '',
          pool: b.spec.providerPoolRef?.name ?? '',
          phase,
          suspended: String(b.spec.suspend === true),
        },
        1,
      );
    }
    for (const [k, n] of phases) {
      const [tenant_namespace = '', phase = ''] = k.split('\u0000');
      this.batchesByPhase.set({ tenant_namespace, phase }, n);
    }
    for (const g of [this.batchComparisons, this.batchBudget, this.batchRate, this.batchCost, this.batchIdle])
      g.reset();
    for (const r of rows) {
      const l = { tenant_namespace: r.namespace, batch: r.name };
      this.batchComparisons.set({ ...l, status: 'succeeded' }, r.succeeded);
      this.batchComparisons.set({ ...l, status: 'failed' }, r.failed);
      this.batchComparisons.set({ ...l, status: 'pending' }, r.pending);
      this.batchBudget.set(l, r.budget);
      this.batchRate.set(l, r.finishedLast5m / 5);
      const usd = costOf(r, r.poolKey);
      if (usd !== undefined) this.batchCost.set(l, usd);
      if (!r.finalized) this.batchIdle.set(l, Math.max(0, (r.nowMs - r.lastProgressMs) / 1000));
    }
    this.lastRefresh.set(Date.now() / 1000);
  }

  /** Refreshes every `intervalMs` until `signal` aborts; a failed refresh is reported and retried. */
  async run(intervalMs: number, signal: AbortSignal, onError: (err: unknown) => void): Promise<void> {
    while (!signal.aborted) {
      await this.refresh().catch(onError);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, intervalMs);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
  }
}

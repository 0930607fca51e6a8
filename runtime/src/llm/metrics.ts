/**
 * Prometheus metrics of the LLM runtime. The registry is passed in (never the global one) so a
 * worker, a test and a benchmark can each have their own.
 *
 * Names follow the `cj_llm_*` prefix; label values are bounded (provider, model, mode, status,
 * direction, reason).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { estimateCostUsd } from '../../../contract/src/cost.js';
import type { BatchingMode, CacheTtl, Pricing, TokenUsage } from './types.js';

export interface MetricLabels {
  provider: string;
  model: string;
  mode: BatchingMode;
}

export class LlmMetrics {
  readonly requests: Counter<'provider' | 'model' | 'mode' | 'status'>;
  readonly latency: Histogram<'provider' | 'model' | 'mode'>;
  readonly tokens: Counter<'provider' | 'model' | 'mode' | 'direction'>;
  readonly cost: Counter<'provider' | 'model' | 'mode'>;
  readonly limiterWait: Histogram<'provider' | 'model'>;
  readonly retries: Counter<'provider' | 'model' | 'mode' | 'reason'>;
  readonly comparisons: Counter<'provider' | 'model' | 'mode' | 'status' | 'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'cj_llm_requests_total',
      help: 'HTTP attempts to the LLM provider by outcome status (ok or a failure reason).',
      labelNames: ['provider', 'model', 'mode', 'status'],
      registers,
    });
    this.latency = new Histogram({
      name: 'cj_llm_request_duration_seconds',
      help: 'Latency of one HTTP attempt to the LLM provider.',
      labelNames: ['provider', 'model', 'mode'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160],
      registers,
    });
    this.tokens = new Counter({
      name: 'cj_llm_tokens_total',
      help: 'Tokens reported by the provider, by direction (input, output, cache_read, cache_write).',
      labelNames: ['provider', 'model', 'mode', 'direction'],
      registers,
    });
    this.cost = new Counter({
      name: 'cj_llm_estimated_cost_usd_total',
      help: 'Estimated cost in USD from the pool pricing configuration.',
      labelNames: ['provider', 'model', 'mode'],
      registers,
    });
    this.limiterWait = new Histogram({
      name: 'cj_llm_limiter_wait_seconds',
      help: 'Time spent waiting for the rate limiter before an attempt.',
      labelNames: ['provider', 'model'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120],
      registers,
    });
    this.retries = new Counter({
      name: 'cj_llm_retries_total',
      help: 'Retries by reason (rate_limited, overloaded, server_error, connection_error, timeout, unparseable, missing_answer, batch_*).',
      labelNames: ['provider', 'model', 'mode', 'reason'],
      registers,
    });
    this.comparisons = new Counter({
      name: 'cj_llm_comparisons_total',
      help: 'Comparison outcomes; failures are counted apart with their reason.',
      labelNames: ['provider', 'model', 'mode', 'status', 'reason'],
      registers,
    });
  }

  recordUsage(l: MetricLabels, usage: TokenUsage, pricing?: Pricing, ttl?: CacheTtl): void {
    const dirs: Array<[string, number]> = [
      ['input', usage.input],
      ['output', usage.output],
      ['cache_read', usage.cacheRead],
      ['cache_write', usage.cacheWrite],
    ];
    for (const [direction, n] of dirs) if (n > 0) this.tokens.inc({ ...l, direction }, n);
    if (pricing) this.cost.inc(l, estimateCostUsd(usage, pricing, l.mode, ttl));
  }
}

// The one cost formula: the worker's metrics and the batch's status.cost.estimatedUSD both use it,
// so a batch_api pool is shown at its discounted price and a 1-hour cache write at its own price.
import type { BatchingMode, CacheTtl, Pricing } from './pool-runtime.js';

/** Tokens as the provider reports them (cache writes and reads apart from uncached input). */
export interface TokenUsage {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/**
 * Estimated cost in USD of `usage` under `pricing`. Cache prices default to the documented
 * multipliers of input (write 1.25× for the 5-minute TTL, 2× for 1 hour; read 0.1×); batch_api
 * multiplies everything by `batchMultiplier` (Message Batches are half price).
 */
export function estimateCostUsd(
  usage: TokenUsage,
  pricing: Pricing,
  mode: BatchingMode,
  ttl: CacheTtl = '5m',
): number {
  const write = pricing.cacheWritePerMTok ?? pricing.inputPerMTok * (ttl === '1h' ? 2 : 1.25);
  const read = pricing.cacheReadPerMTok ?? pricing.inputPerMTok * 0.1;
  const usd =
    (usage.input * pricing.inputPerMTok +
      usage.output * pricing.outputPerMTok +
      usage.cacheWrite * write +
      usage.cacheRead * read) /
    1_000_000;
  return mode === 'batch_api' ? usd * (pricing.batchMultiplier ?? 0.5) : usd;
}

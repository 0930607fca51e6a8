/**
 * Types shared by the LLM comparison runtime. The pool configuration is the Job contract's
 * (contract/src/pool-runtime.ts): the operator resolves it from the LLMProviderPool, the worker
 * decodes it, and the Comparer runs with it.
 *
 * This module knows nothing of CJ statistics: a comparison is "two essays in, one winner out".
 */

import type { TokenUsage } from '../../../contract/src/cost.js';
import type { InjectionKind } from '../../../contract/src/injection.js';

export {
  type ComparisonOutcome,
  type Confidence,
  FAILURE_REASONS,
  type FailedOutcome,
  type FailureReason,
  type InjectionFlag,
  type SucceededOutcome,
  type Winner,
} from '../../../contract/src/outcome.js';
// The pool's runtime config and its parts are the Job contract's (contract/src/pool-runtime.ts).
export type {
  BatchingMode,
  CacheTtl,
  PoolRuntimeConfig,
  PoolRuntimeConfigInput,
  Pricing,
  RetryPolicy,
} from '../../../contract/src/pool-runtime.js';
export type { InjectionKind, TokenUsage };

/** The assignment shown to the judge, part of the cached static prefix. */
export interface Assignment {
  title: string;
  instructions: string;
  rubric: string;
}

export interface EssayRef {
  id: string;
  text: string;
}

/** One comparison to make. `pairId` identifies the (unordered) pair, `comparisonId` this judgement. */
export interface PairJob {
  comparisonId: string;
  pairId: string;
  essayA: EssayRef;
  essayB: EssayRef;
}

export const zeroUsage = (): TokenUsage => ({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 });

export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    input: a.input + b.input,
    output: a.output + b.output,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite: a.cacheWrite + b.cacheWrite,
  };
}

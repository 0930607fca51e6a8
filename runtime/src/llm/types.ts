/**
 * Types shared by the LLM comparison runtime. The pool configuration is the Job contract's
 * (contract/src/pool-runtime.ts): the operator resolves it from the LLMProviderPool, the worker
 * decodes it, and the Comparer runs with it.
 *
 * This module knows nothing of CJ statistics: a comparison is "two essays in, one winner out".
 */

import type { TokenUsage } from '../../../contract/src/cost.js';
import type { InjectionKind } from '../../../contract/src/injection.js';

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

export type Winner = 'A' | 'B';
export type Confidence = 'low' | 'medium' | 'high';

/**
 * Why a comparison failed. Stable strings: they are stored with the comparison and used as a
 * metric label.
 */
export const FAILURE_REASONS = [
  'unparseable',
  'refused',
  'rate_limited',
  'overloaded',
  'server_error',
  'connection_error',
  'timeout',
  'auth_failed',
  'permission_denied',
  'spend_limit',
  'invalid_request',
  'request_too_large',
  'not_found',
  'batch_errored',
  'batch_expired',
  'batch_canceled',
  'aborted',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export const zeroUsage = (): TokenUsage => ({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0 });

export function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    input: a.input + b.input,
    output: a.output + b.output,
    cacheRead: a.cacheRead + b.cacheRead,
    cacheWrite: a.cacheWrite + b.cacheWrite,
  };
}

/** An essay that seems to talk to the grader. Recorded with the comparison; the verdict still stands. */
export interface InjectionFlag {
  essayId: string;
  position: Winner;
  kinds: InjectionKind[];
}

interface OutcomeBase {
  comparisonId: string;
  pairId: string;
  injectionFlags: InjectionFlag[];
  usage: TokenUsage;
  /** HTTP attempts that carried this comparison (bundle calls count for each pair in them). */
  attempts: number;
  latencyMs: number;
  /** sha256 of the last prompt sent for this comparison, and its correlation id. */
  promptSha256?: string;
  correlationId?: string;
}

export interface SucceededOutcome extends OutcomeBase {
  status: 'succeeded';
  winner: Winner;
  confidence: Confidence;
  justification: string;
}

export interface FailedOutcome extends OutcomeBase {
  status: 'failed';
  failureReason: FailureReason;
  /** Short, key-free and essay-free description of the last error. */
  failureDetail?: string;
}

/** What the Comparer returns for each job: exactly one outcome per comparisonId. */
export type ComparisonOutcome = SucceededOutcome | FailedOutcome;

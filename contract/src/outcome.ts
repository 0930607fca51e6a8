// What one comparison produced, as the worker writes it into the store and the results carry it:
// the verdict or the failure with its stable reason, the tokens and the injection flags.
import type { TokenUsage } from './cost.js';
import type { InjectionKind } from './injection.js';

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

/**
 * Riding out a database outage (Postgres restarted, failed over, briefly unreachable): errors that
 * mean "the connection is gone" are retried with backoff until a deadline, instead of failing the
 * worker pod and spending the Job's retries. Anything else (a constraint, a bad query) is thrown at
 * once.
 */
import type { Logger } from 'pino';
import { sleep } from '../../../contract/src/sleep.js';

const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);
/** postgres.js connection errors. */
const CLIENT_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);
/** SQLSTATEs: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections. */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300']);

/** True when the error means the database connection failed, not that the statement was wrong. */
export function isTransientDbError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const code = String((err as { code?: unknown }).code ?? '');
  if (NODE_CODES.has(code) || CLIENT_CODES.has(code) || SQLSTATES.has(code)) return true;
  if (/^08/.test(code)) return true; // connection_exception class
  const errors = (err as { errors?: unknown }).errors; // AggregateError from a multi-address connect
  return Array.isArray(errors) && errors.length > 0 && errors.every(isTransientDbError);
}

export interface TransientOptions {
  /** Give up (rethrow) once the outage lasted this long. */
  deadlineMs: number;
  signal?: AbortSignal;
  logger?: Logger;
  /** First backoff; doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Runs `fn`, retrying it while it fails with a transient database error, until the deadline. */
export async function retryTransient<T>(what: string, fn: () => Promise<T>, o: TransientOptions): Promise<T> {
  const start = Date.now();
  let backoff = o.initialBackoffMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientDbError(err) || o.signal?.aborted || Date.now() - start >= o.deadlineMs) throw err;
      if (attempt === 1 || attempt % 10 === 0)
        o.logger?.warn({ what, attempt, err: String(err) }, 'database unavailable; retrying');
      await sleep(Math.min(backoff, Math.max(0, o.deadlineMs - (Date.now() - start))), o.signal).catch(
        () => undefined,
      );
      backoff = Math.min(backoff * 2, o.maxBackoffMs ?? 5_000);
    }
  }
}

/**
 * postgres.js can reject a promise nobody awaits when a pooled connection drops (Postgres
 * restarted): that is an outage the callers' retries ride out, not a reason to crash. Installs an
 * `unhandledRejection` listener that only logs such rejections and hands every other one to
 * `other` (which decides how fatal it is). Returns the function that removes the listener.
 */
export function tolerateLostConnections(other: (reason: unknown) => void, logger?: Logger): () => void {
  const listener = (reason: unknown) => {
    if (isTransientDbError(reason)) {
      logger?.warn({ err: String(reason) }, 'a dropped database connection rejected an unawaited promise');
      return;
    }
    other(reason);
  };
  process.on('unhandledRejection', listener);
  return () => {
    process.off('unhandledRejection', listener);
  };
}

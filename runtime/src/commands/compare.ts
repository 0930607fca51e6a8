/**
 * `runtime compare`: the comparison worker of one shard of a CJBatch round (an indexed Job pod).
 *
 * Env and exit codes: the Job contract (contract/src/job.ts) — DATABASE_URL, BATCH_UID, ROUND,
 * JOB_COMPLETION_INDEX (the shard), POD_NAME (lease owner), CJ_POOL_KEY, CJ_POOL_CONFIG (the
 * resolved pool runtime config), ANTHROPIC_API_KEY, CJ_LEASE_SECONDS (default 60); LOG_LEVEL
 * (default info). Exit `authFailed` leaves the rows pending; `terminated` (SIGTERM) aborts
 * in-flight calls and releases unfinished rows. Never logs the API key or essay text.
 */
import pino from 'pino';
import { type CompareEnv, EXIT, JobInputError, readCompareEnv } from '../../../contract/src/job.js';
import { runWorker } from '../worker/compare-worker.js';

/** Hard stop after SIGTERM, well within a 30 s termination grace period. */
const TERM_DEADLINE_MS = 20_000;

export async function main(_argv: string[]): Promise<number> {
  const logger = pino({
    level: process.env.LOG_LEVEL ?? 'info',
    base: { component: 'compare', pod: process.env.POD_NAME },
    redact: {
      paths: ['apiKey', '*.apiKey', 'headers.authorization', 'headers["x-api-key"]'],
      censor: '[redacted]',
    },
  });
  let env: CompareEnv;
  try {
    env = readCompareEnv(process.env, `pid-${process.pid}`);
  } catch (err) {
    if (err instanceof JobInputError) {
      logger.error({ reason: err.message }, 'bad input');
      return EXIT.badInput;
    }
    throw err;
  }
  const ac = new AbortController();
  const onTerm = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) return;
    logger.info({ signal: sig }, 'stopping: no new claims, aborting in-flight calls, releasing leases');
    ac.abort(new Error(sig));
    setTimeout(() => {
      logger.error('did not stop in time; exiting');
      process.exit(EXIT.terminated);
    }, TERM_DEADLINE_MS).unref();
  };
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onTerm);
  const t0 = Date.now();
  logger.info(
    {
      batchUid: env.batchUid,
      round: env.round,
      shard: env.shard,
      pool: env.poolKey,
      mode: env.pool.mode,
    },
    'compare worker starting',
  );
  try {
    const r = await runWorker(env, { signal: ac.signal, logger });
    logger.info({ ...r, ms: Date.now() - t0 }, 'compare worker finished');
    return r.code;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onTerm);
  }
}

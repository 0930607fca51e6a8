// Comparing round r: one Indexed `runtime compare` Job, one pod per shard, judges the round's pairs.
// A Job that ends with pairs still open is retried with a fresh attempt, a few times; a round that
// outlives spec.timeouts.round is recovered: scored with what was judged, or failed.

import { batchLimiterKey } from '../../../../../runtime/src/store/tenancy.js';
import { DEFAULT_PRIORITY, parseDuration, poolKeyOf } from '../../../api/index.js';
import { MAX_JOB_ATTEMPTS } from '../child-jobs.js';
import { jobContext, type PhaseContext, type Step, setPhase, uidOf } from '../context.js';
import { BATCH_SCOPE, comparisonJob, jobFailure } from '../jobs.js';
import { batchLimiterSettings, poolLimiterSettings } from '../prepare.js';
import { condition } from '../status.js';

/** Pipelined: the Progressing reason of a batch whose workers finished nothing for spec.timeouts.round. */
export const NOTHING_JUDGED = 'NothingJudged';

/** A round that timed out is still scored when at least this share of it was judged. */
export const TIMEOUT_RECOVERY_SHARE = 0.5;

export interface RoundProgress {
  round: number;
  planned: number;
  done: number;
}

export async function comparing(ctx: PhaseContext, { round, planned, done }: RoundProgress): Promise<Step> {
  const { batch, status, jobs } = ctx;
  const uid = uidOf(ctx);
  setPhase(ctx, 'Comparing');
  ctx.cond('Progressing', 'True', 'Comparing', `round ${round}: ${done}/${planned} comparisons finished`);
  const shards = (await ctx.store.shards(uid)) ?? 1;
  const cur = jobs.current('comparison', round);
  const start = async (attempt: number) => {
    await ensureLimiterRows(ctx);
    await jobs.create(comparisonJob(batch, round, shards, jobContext(ctx, ctx.pool!), attempt));
  };
  if (cur.state === 'missing') {
    await start(cur.attempt);
    status.currentJobs = { ...status.currentJobs, comparison: cur.name };
    ctx.event('Normal', 'RoundStarted', `round ${round}: ${planned} comparisons in ${shards} shards`);
    return { requeueAfter: 30_000 };
  }
  const timeout = parseDuration(batch.spec.timeouts.round);
  const age = Date.now() - cur.createdAt;
  if (cur.state === 'running' && Number.isFinite(cur.createdAt) && age > timeout) {
    // Foreground: the Job stays in the cache, marked deleted, until its pods are gone; a batch that
    // fails here retires its role only after that (retiring.ts).
    await jobs.remove(cur.name, 'Foreground');
    await ctx.store.failOpenComparisons(uid, round, 'round_timeout');
    const spec = batch.spec.timeouts.round;
    if ((planned ? done / planned : 0) < TIMEOUT_RECOVERY_SHARE)
      return {
        fail: {
          reason: 'RoundTimeout',
          message: `round ${round} exceeded spec.timeouts.round (${spec}) with only ${done}/${planned} comparisons finished`,
        },
      };
    ctx.event(
      'Warning',
      'RoundTimedOut',
      `round ${round} exceeded ${spec}; scoring the ${done}/${planned} finished comparisons`,
    );
    return { requeueAfter: 1_000 };
  }
  if (cur.state === 'failed' || cur.state === 'complete') {
    // As with scoring: the Job may have finished after this reconcile read the progress.
    if ((await ctx.store.openComparisons(uid, round)) === 0) return { requeueAfter: 1 };
    // The Job ended but some pairs are still open (auth failure, a failed index, released leases).
    const f =
      cur.state === 'failed' ? jobFailure(cur.job!) : { reason: 'Incomplete', message: 'pairs left open' };
    const next = jobs.nextAttempt(cur);
    if (next === undefined)
      return {
        fail: {
          reason: 'ComparisonsFailed',
          message: `round ${round}: comparison Job failed ${MAX_JOB_ATTEMPTS} times: ${f.reason} ${f.message}`,
        },
      };
    ctx.event(
      'Warning',
      'ComparisonJobRetried',
      `comparison Job ${cur.name} ended (${f.reason}: ${f.message}); starting another`,
    );
    await start(next);
  }
  return { requeueAfter: Math.min(30_000, Math.max(1_000, timeout - age)) };
}

/**
 * Pipelined rounds: how few open pairs make the workers plan the next ones. Two per call in
 * flight (the workers' lanes, capped by the pool's maxConcurrency) keeps every lane busy while a pass runs and verdicts come back in any order; never more
 * than a round, so each pass still sees about a round's new verdicts (the stopping rule's lag
 * counts passes, as it counted rounds).
 */
export function pipelineLow(roundSize: number, inFlight: number): number {
  return Math.max(1, Math.min(roundSize, 2 * inFlight));
}

/** The judge's latency assumed until the pool has settled requests in the last minute. */
export const ASSUMED_LATENCY_MS = 10_000;
/** Lanes beyond Little's law: verdicts bunch, lanes wait on the limiter, stragglers hold a lane. */
const LANE_HEADROOM = 2;

/**
 * Pipelined rounds: how many long-lived workers the batch runs. Its part of the pool's request
 * rate (priority over the pool's active priorities) times the judge's latency is the calls it
 * can have in flight (Little's law); twice that, capped by the pool's maxConcurrency, in lanes of
 * `lanes` per pod; at least one pod, at most spec.workers.parallelism. 50 batches on one pool
 * thus run one idle-cheap pod each instead of `parallelism`, while a batch alone on a fast pool
 * with a slow judge still gets every pod it may have.
 */
export function workersWanted(o: {
  parallelism: number;
  lanes: number;
  requestsPerMinute: number;
  maxConcurrency: number;
  weight: number;
  poolWeight: number;
  latencyMs: number;
}): number {
  const share = o.weight / Math.max(o.weight, o.poolWeight);
  const inFlight = Math.min(
    o.maxConcurrency,
    ((share * o.requestsPerMinute) / 60) * (o.latencyMs / 1000) * LANE_HEADROOM,
  );
  return Math.max(1, Math.min(o.parallelism, Math.ceil(inFlight / Math.max(1, o.lanes))));
}

/**
 * Pipelined rounds: the batch's one Job of long-lived workers judges and plans ahead until the
 * batch stops (the pods exit 0 then, which wakes this reconciler). A Job that ended while the
 * batch still continues is retried with a fresh attempt, a few times. The Job is an elastic
 * Indexed Job: it starts with `workersWanted` pods and grows (completions and parallelism
 * together) when the batch's share grows, e.g. as the pool's other batches end; it never shrinks
 * (a pod taken away mid-call would only give its pairs back).
 *
 * spec.timeouts.round has no round to bound here: when the running workers have finished no
 * comparison for that long while pairs are open, `Progressing=False, reason NothingJudged` says so
 * (and a Warning Event once). The batch is not failed for it: expiring leases and the Job's
 * retries recover workers, and a judge that is merely slow would lose a whole batch.
 */
export async function pipelining(
  ctx: PhaseContext,
  { round, open, lastFinishedAt }: { round: number; open: number; lastFinishedAt?: number },
): Promise<Step> {
  const { batch, status, jobs } = ctx;
  const wasIdle = condition(status, 'Progressing')?.reason === NOTHING_JUDGED;
  setPhase(ctx, 'Comparing');
  const parallelism = batch.spec.workers?.parallelism ?? 2;
  const cur = jobs.current('comparison', BATCH_SCOPE);
  const running = cur.state === 'running' && !cur.job?.metadata?.deletionTimestamp;
  // Idle since the last comparison finished, or since these workers started if none has yet. One
  // Progressing condition per pass (setting True then False would move its lastTransitionTime).
  const since = Math.max(cur.createdAt, lastFinishedAt ?? 0);
  const now = ctx.now?.() ?? Date.now();
  if (
    running &&
    open > 0 &&
    Number.isFinite(since) &&
    now - since > parseDuration(batch.spec.timeouts.round)
  ) {
    const message = `no comparison finished for ${batch.spec.timeouts.round} (spec.timeouts.round) with ${open} open: the workers of ${cur.name} judge nothing (see their pods' logs and the pool's conditions); leases expire and failed pods are retried, the batch is not failed for this`;
    ctx.cond('Progressing', 'False', NOTHING_JUDGED, message);
    if (!wasIdle) ctx.event('Warning', NOTHING_JUDGED, message);
  } else {
    ctx.cond('Progressing', 'True', 'Comparing', `round ${round} planned; ${open} comparisons open`);
  }
  const pool = ctx.pool;
  if (!pool) return { requeueAfter: 5_000 }; // the gates wait for a missing pool; it went since
  const jc = jobContext(ctx, pool);
  const lanes = jc.pool.config.mode === 'batch_api' ? 1 : jc.pool.config.concurrency;
  const limits = jc.pool.config.limits;
  const wanted = workersWanted({
    parallelism,
    lanes,
    requestsPerMinute: limits.requestsPerMinute,
    maxConcurrency: limits.maxConcurrency,
    weight: batch.spec.priority ?? DEFAULT_PRIORITY,
    poolWeight: ctx.poolWeight?.() ?? 0,
    latencyMs: ctx.pace?.poolLatencyMs ?? ASSUMED_LATENCY_MS,
  });
  const start = async (attempt: number) => {
    await ensureLimiterRows(ctx);
    // The queue is sized for every pod the batch may grow to, so growing needs no new mark.
    const inFlight = Math.min(parallelism * lanes, limits.maxConcurrency);
    const roundSize = Number(ctx.registered?.config.roundSize ?? 1);
    await jobs.create(
      comparisonJob(batch, round, wanted, jc, attempt, { low: pipelineLow(roundSize, inFlight) }),
    );
  };
  if (cur.state === 'missing') {
    await start(cur.attempt);
    status.currentJobs = { ...status.currentJobs, comparison: cur.name };
    ctx.event(
      'Normal',
      'WorkersStarted',
      `${wanted} of at most ${parallelism} workers judge and plan ahead from round ${round}`,
    );
  } else if (running) {
    const have = cur.job?.spec?.completions ?? wanted;
    if (wanted > have) {
      await jobs.scale(cur.name, wanted);
      ctx.event('Normal', 'WorkersScaled', `${have} → ${wanted} workers: the batch's share of its pool grew`);
    }
  } else if (cur.state === 'failed' || cur.state === 'complete') {
    // The workers exit 0 on a stop this reconcile may not have read yet: look again first.
    if ((await ctx.store.latestRound(uidOf(ctx)))?.decision === 'stop') return { requeueAfter: 1 };
    const f =
      cur.state === 'failed'
        ? jobFailure(cur.job!)
        : { reason: 'Incomplete', message: 'workers ended early' };
    const next = jobs.nextAttempt(cur);
    if (next === undefined)
      return {
        fail: {
          reason: 'ComparisonsFailed',
          message: `the workers Job failed ${MAX_JOB_ATTEMPTS} times: ${f.reason} ${f.message}`,
        },
      };
    ctx.event(
      'Warning',
      'ComparisonJobRetried',
      `workers Job ${cur.name} ended (${f.reason}: ${f.message}); starting another`,
    );
    await start(next);
  }
  // Status counters are read from the store on each pass: look often enough for a live display.
  return { requeueAfter: 5_000 };
}

/**
 * The limiter rows the batch's workers reserve from: the pool's (its own limits, written by the
 * operator only) and, with overrides, the batch's own (clamped to the pool, so it only tightens).
 */
async function ensureLimiterRows(ctx: PhaseContext): Promise<void> {
  const pool = ctx.pool;
  if (!pool) return;
  const maxBlockMs = ctx.config.maxRetryAfterMs;
  await ctx.store.upsertLimiterRow(poolKeyOf(pool), {
    ...poolLimiterSettings(pool),
    maxBlockMs,
  });
  const own = batchLimiterSettings(pool, ctx.batch);
  const key = batchLimiterKey(uidOf(ctx));
  if (own) await ctx.store.upsertLimiterRow(key, { ...own, maxBlockMs });
  else await ctx.store.deleteLimiterRow(key);
}

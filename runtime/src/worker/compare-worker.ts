/**
 * The comparison worker (`runtime compare`): one pod of a CJBatch round's indexed Job, working
 * on one shard. It claims the shard's comparisons with leases, runs them through the `Comparer`
 * (pool-wide `PostgresRateLimiter`, `PostgresBatchStore` for batch_api), writes each outcome
 * exactly once, and exits 0 when every row of the shard is final.
 *
 * Lanes: `pool.concurrency` independent loops (one in batch_api mode), each claiming a small
 * chunk (1 row, or `bundleSize` rows in serial_bundle, up to 10,000 in batch_api), comparing it
 * and writing the outcomes, so slots never idle on a chunk's slowest call and several workers on
 * one shard share it evenly. With prompt caching on, lane 0 runs its first call alone (cache
 * warm-up) before the others start.
 *
 * When nothing is claimable but rows of the shard are leased by someone else, the lanes sleep
 * until the earliest of those leases expires and take the rows over (a killed pod's work is
 * picked up by its replacement or a sibling).
 *
 * Pipelined rounds (`env.pipelineLow` set): the pod is one of the batch's long-lived workers. Its
 * lanes claim open pairs of any round and shard, oldest first; a planner loop beside them plans
 * the next pairs whenever at most `pipelineLow` are open (one pass at a time per batch, see
 * `planAhead`), and the pod exits 0 once the batch's latest round says stop, or its outcome is
 * committed (Succeeded or Failed; the operator retires the batch's role only after its workers are
 * gone), or its rows are gone, and it holds nothing.
 *
 * Exit codes (for the Job's podFailurePolicy): 0 shard done (pipelined: batch stopped or its outcome committed); 3 the provider rejected the
 * credentials (401/403) — nothing was marked completed, the rows are back to pending; 4 bad
 * input (env, pool config, batch row or assignment); 143 stopped by SIGTERM — unfinished rows
 * released to pending; 1 anything unexpected (leases are released when possible, otherwise they
 * expire).
 */

import { setMaxListeners } from 'node:events';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { type CompareEnv, EXIT } from '../../../contract/src/job.js';
import { sleep } from '../../../contract/src/sleep.js';
import { createAnthropic } from '../llm/client.js';
import { Comparer } from '../llm/comparer.js';
import { LlmMetrics } from '../llm/metrics.js';
import { BatchPollError, MAX_REQUESTS_PER_BATCH } from '../llm/modes/batch-api.js';
import { AbortedError } from '../llm/modes/context.js';
import type { Assignment, ComparisonOutcome, PairJob } from '../llm/types.js';
import { planAheadOnce } from '../scoring/score-round.js';
import { getBatch, loadEssays } from '../store/batches.js';
import {
  type ClaimedRow,
  claimChunk,
  releaseLeases,
  releaseStaleOwn,
  renewLeases,
  type ShardRef,
  shardState,
  writeOutcome,
  writeOutcomes,
} from '../store/claims.js';
import { connect, type Sql } from '../store/index.js';
import { PostgresBatchStore } from '../store/provider-batches.js';
import { passDue, pipelineState } from '../store/rounds.js';
import { isTransientDbError, retryTransient, tolerateLostConnections } from '../store/transient.js';
import { Doorbell } from './doorbell.js';
import { PostgresRateLimiter } from './pool-limiter.js';

const AssignmentSchema = z.object({
  title: z.string().min(1),
  instructions: z.string().min(1),
  rubric: z.string().min(1),
});

export interface WorkerResult {
  code: number;
  succeeded: number;
  failed: number;
  lostLeases: number;
  released: number;
}

/**
 * Pipelined rounds: how often the planner looks at the batch's open pairs (the pod's one poll);
 * idle lanes wait for its word that something is claimable, or this long at most.
 */
const PLAN_POLL_MS = 250;
const IDLE_WAIT_MS = 2_000;

export interface WorkerOptions {
  signal?: AbortSignal;
  logger?: Logger;
  /** Test hook: an existing connection instead of `connect(env.databaseUrl)`. */
  sql?: Sql;
}

export async function runWorker(env: CompareEnv, opts: WorkerOptions = {}): Promise<WorkerResult> {
  const log = opts.logger;
  const low = env.pipelineLow;
  const pipelined = low !== undefined;
  const ref: ShardRef = {
    batchUid: env.batchUid,
    round: env.round,
    shard: env.shard,
    ...(pipelined ? { allRounds: true } : {}),
  };
  const pool = env.pool;
  const lanes = pool.mode === 'batch_api' ? 1 : pool.concurrency;
  // Few connections per pod: many pods share one Postgres; lanes only hold one briefly.
  const sql = opts.sql ?? connect(env.databaseUrl, Math.min(4, lanes + 1));
  const result: WorkerResult = { code: EXIT.done, succeeded: 0, failed: 0, lostLeases: 0, released: 0 };
  const held = new Set<string>();
  const stop = new AbortController();
  // Every lane's calls, sleeps and database retries listen on it at once: many listeners by
  // design, not a leak (Node warns past 10).
  setMaxListeners(0, stop.signal);
  const onExternal = () => stop.abort(opts.signal?.reason ?? new Error('terminated'));
  if (opts.signal?.aborted) onExternal();
  opts.signal?.addEventListener('abort', onExternal, { once: true });
  let authFailed = false;
  let fatal: unknown;
  /** Pipelined: the batch stopped, its outcome is committed, or its rows are gone; lanes finish what they hold and return. */
  let batchDone = false;
  let renewal: NodeJS.Timeout | undefined;
  // Database calls ride out an outage (Postgres restarted) instead of failing the pod.
  const outageMs = env.dbOutageMs ?? 120_000;
  // A dropped pooled connection (e.g. after the limiter's transaction) must not crash the worker
  // with leases held; anything else unhandled still fails the worker (exit 1).
  const untolerate = tolerateLostConnections((reason) => {
    fatal ??= reason;
    stop.abort(reason);
  }, log);
  const db = <T>(what: string, fn: () => Promise<T>) =>
    retryTransient(what, fn, { deadlineMs: outageMs, signal: stop.signal, ...(log ? { logger: log } : {}) });

  try {
    const batch = await db('read batch', () => getBatch(sql, env.batchUid));
    if (!batch) {
      log?.error({ batchUid: env.batchUid }, 'batch not found');
      return { ...result, code: EXIT.badInput };
    }
    const a = AssignmentSchema.safeParse((batch.config as { assignment?: unknown }).assignment);
    if (!a.success) {
      log?.error(
        { batchUid: env.batchUid },
        'batch config has no valid assignment (title, instructions, rubric)',
      );
      return { ...result, code: EXIT.badInput };
    }
    const assignment: Assignment = a.data;
    const essays = new Map(
      (await db('read essays', () => loadEssays(sql, env.batchUid))).map((e) => [e.essay_id, e.text]),
    );
    const limiter = new PostgresRateLimiter({
      sql,
      poolKey: env.poolKey,
      owner: env.owner,
      ...pool.limits,
      ...pool.limiter,
      // Rows kept by the operator: the worker's role can only reserve (never write a row).
      ...(env.limiterRowsByOperator ? { managed: false } : {}),
    });
    await db('limiter init', () => limiter.init());
    const comparer = new Comparer({
      pool,
      assignment,
      anthropic: createAnthropic({
        apiKey: env.apiKey,
        ...(pool.baseURL ? { baseURL: pool.baseURL } : {}),
      }),
      limiter,
      batchStore: new PostgresBatchStore(sql, `${env.batchUid}/r${env.round}/s${env.shard}`, env.batchUid),
      batchKeyPrefix: `${env.batchUid}/r${env.round}/s${env.shard}`,
      metrics: new LlmMetrics(new Registry()),
      ...(log ? { logger: log } : {}),
      onAuthError: (c) =>
        log?.error({ status: c.status, detail: c.detail }, 'provider rejected the pool credentials'),
    });

    const stale = await db('release stale leases', () => releaseStaleOwn(sql, ref, env.owner));
    if (stale > 0) log?.info({ released: stale }, 'released leases of a previous run under this name');

    renewal = setInterval(
      () => {
        renewLeases(sql, [...held], env.owner, env.leaseSeconds).then(
          (lost) => {
            if (lost.length > 0)
              log?.warn({ lost: lost.length }, 'leases lost before the outcome was written');
          },
          (err) => log?.warn({ err: String(err) }, 'lease renewal failed'),
        );
      },
      Math.max(500, (env.leaseSeconds * 1000) / 3),
    );
    renewal.unref();

    const isAuth = (o: ComparisonOutcome) =>
      o.status === 'failed' && (o.failureReason === 'auth_failed' || o.failureReason === 'permission_denied');
    const counted = new Set<string>();
    const count = (o: ComparisonOutcome, written: boolean) => {
      held.delete(o.comparisonId);
      // Each row counts once, whichever write of this process stored it.
      if (written && counted.has(o.comparisonId)) written = false;
      if (written) counted.add(o.comparisonId);
      if (!written) {
        result.lostLeases++;
        log?.warn(
          { comparisonId: o.comparisonId },
          'lease lost: outcome not written (another worker owns it)',
        );
      } else if (o.status === 'succeeded') result.succeeded++;
      else result.failed++;
    };
    const handle = async (o: ComparisonOutcome) => {
      if (isAuth(o)) {
        // Not the comparison's fault: leave it for a run with working credentials.
        authFailed = true;
        stop.abort(new Error('auth failure'));
        return;
      }
      let tries = 0;
      count(o, await db('write outcome', () => writeOutcome(sql, o, env.owner, tries++ > 0)));
    };

    const toJob = (r: ClaimedRow): PairJob | undefined => {
      const ta = essays.get(r.essay_a);
      const tb = essays.get(r.essay_b);
      if (ta === undefined || tb === undefined) return undefined;
      return {
        comparisonId: r.id,
        pairId: [r.essay_a, r.essay_b].sort().join('~'),
        essayA: { id: r.essay_a, text: ta },
        essayB: { id: r.essay_b, text: tb },
      };
    };

    const claimSize =
      pool.mode === 'batch_api'
        ? MAX_REQUESTS_PER_BATCH
        : pool.mode === 'serial_bundle'
          ? pool.bundleSize
          : 1;
    let openGate!: () => void;
    const warm = new Promise<void>((r) => {
      openGate = r;
    });
    if (!pool.promptCaching.enabled || lanes === 1) openGate();

    // Pipelined: the planner wakes the idle lanes when it sees claimable pairs (or the stop), so
    // a pod polls the database once per PLAN_POLL_MS however many lanes it runs.
    const bell = new Doorbell();
    if (stop.signal.aborted) bell.close();
    else stop.signal.addEventListener('abort', () => bell.close(), { once: true });

    const lane = async (i: number) => {
      if (i > 0) await warm;
      let outageSince: number | undefined;
      // Own shard first; once it is done, the rest of the round (see ShardRef.anyShard).
      let scope: ShardRef = ref;
      try {
        for (;;) {
          if (stop.signal.aborted) return;
          // Pipelined: once the batch is done, claim nothing more (a failed batch still has open pairs).
          if (pipelined && batchDone) {
            openGate();
            return;
          }
          const claimed = await db('claim', () =>
            claimChunk(sql, scope, env.owner, env.leaseSeconds, claimSize),
          );
          // A lease of ours that expired while the database was away is claimable again, by us too:
          // the lane still working on it writes it; never compare a pair twice in one process.
          const rows = claimed.filter((r) => !held.has(r.id));
          if (rows.length === 0 && claimed.length > 0) {
            await sleep(100, stop.signal).catch(() => undefined);
            continue;
          }
          if (rows.length === 0 && pipelined) {
            openGate();
            if (batchDone) return;
            await bell.wait(IDLE_WAIT_MS);
            continue;
          }
          if (rows.length === 0) {
            openGate();
            const st = await db('shard state', () => shardState(sql, scope, env.owner));
            if (st.pending === 0 && st.leasedByOthers === 0) {
              if (scope.anyShard) return;
              scope = { ...ref, anyShard: true };
              continue;
            }
            const wait =
              st.pending === 0 && st.nextExpiryMs !== null
                ? Math.min(5000, Math.max(100, st.nextExpiryMs + 50))
                : 100;
            await sleep(wait, stop.signal).catch(() => undefined);
            continue;
          }
          for (const r of rows) held.add(r.id);
          const jobs: PairJob[] = [];
          const writes: Promise<void>[] = [];
          for (const r of rows) {
            const j = toJob(r);
            if (j) jobs.push(j);
            else
              writes.push(
                handle({
                  status: 'failed',
                  comparisonId: r.id,
                  pairId: `${r.essay_a}~${r.essay_b}`,
                  failureReason: 'invalid_request',
                  failureDetail: 'essay not found in the batch',
                  injectionFlags: [],
                  usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 },
                  attempts: 0,
                  latencyMs: 0,
                }),
              );
          }
          try {
            if (jobs.length > 0 && pool.mode === 'batch_api') {
              // All or nothing: a chunk's outcomes are written in one transaction once every
              // round is collected. Until then the claimed set stays the same, so a restarted
              // worker derives the same batch keys and resumes the stored provider batches
              // (results are re-read) instead of submitting any pair again.
              const outcomes = await comparer.compare(jobs, { signal: stop.signal });
              if (outcomes.some(isAuth)) {
                authFailed = true;
                stop.abort(new Error('auth failure'));
              } else {
                let tries = 0;
                const written = await db('write outcomes', () =>
                  writeOutcomes(sql, outcomes, env.owner, tries++ > 0),
                );
                outcomes.forEach((o, k) => {
                  count(o, written[k]!);
                });
              }
            } else if (jobs.length > 0) {
              await comparer.compare(jobs, { signal: stop.signal, onOutcome: (o) => writes.push(handle(o)) });
            }
            outageSince = undefined;
          } catch (err) {
            if (isTransientDbError(err) && !stop.signal.aborted) {
              // The limiter's database went away mid-call: give the chunk's unfinished rows back
              // (they are compared again once it is back) and carry on, within the outage budget.
              outageSince ??= Date.now();
              if (Date.now() - outageSince > outageMs) throw err;
              log?.warn(
                { err: String(err) },
                'database unavailable during a comparison; releasing the chunk',
              );
              await Promise.allSettled(writes);
              const open = rows.map((r) => r.id).filter((id) => held.has(id));
              for (const id of open) held.delete(id);
              await db('release chunk', () => releaseLeases(sql, open, env.owner));
              await sleep(500, stop.signal).catch(() => undefined);
            } else if (err instanceof BatchPollError) {
              // The provider batch id is stored: release, a later run resumes polling it.
              fatal = err;
              stop.abort(err);
            } else if (!(err instanceof AbortedError)) throw err;
          } finally {
            await Promise.all(writes);
            openGate();
          }
        }
      } catch (err) {
        fatal ??= err;
        stop.abort(err);
      }
    };

    // Pipelined: plan ahead while the lanes judge; says when the batch is done.
    const planner = async () => {
      while (!stop.signal.aborted) {
        const st = await db('pipeline state', () => pipelineState(sql, env.batchUid));
        // A committed outcome ends the batch too (a Failed one has no stop round): exit 0 before
        // the operator stops the Job and retires the role.
        if (!st.latest || st.latest.decision === 'stop' || st.finalized) {
          batchDone = true;
          bell.ring();
          return;
        }
        if (st.claimable > 0) bell.ring();
        if (passDue(st, low!)) {
          const p = await db('plan ahead', () => planAheadOnce(sql, env.batchUid, low!));
          if (p) {
            log?.info({ ...p }, 'planned ahead');
            bell.ring();
            continue;
          }
        }
        await sleep(PLAN_POLL_MS, stop.signal).catch(() => undefined);
      }
    };
    const planning = pipelined
      ? planner().catch((err) => {
          fatal ??= err;
          stop.abort(err);
        })
      : undefined;

    for (;;) {
      await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i)));
      if (pipelined) {
        await planning;
        break;
      }
      if (stop.signal.aborted) break;
      const st = await db('shard state', () => shardState(sql, ref, env.owner));
      if (st.open === 0) break;
    }
  } catch (err) {
    fatal ??= err;
  } finally {
    if (renewal) clearInterval(renewal);
    untolerate();
    opts.signal?.removeEventListener('abort', onExternal);
    try {
      result.released = await releaseLeases(sql, [...held], env.owner);
    } catch (err) {
      log?.warn({ err: String(err) }, 'could not release leases; they will expire');
    }
    if (!opts.sql) await sql.end({ timeout: 5 }).catch(() => undefined);
  }
  if (result.code !== EXIT.done) return result;
  if (authFailed) result.code = EXIT.authFailed;
  else if (fatal) {
    log?.error({ err: fatal instanceof Error ? fatal.message : String(fatal) }, 'worker failed');
    result.code = EXIT.unexpected;
  } else if (opts.signal?.aborted) result.code = EXIT.terminated;
  return result;
}

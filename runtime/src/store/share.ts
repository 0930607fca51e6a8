// A batch's fair share of its pool (migration 7): the operator writes the weight (spec.priority);
// `cj_limiter_reserve` advances the batch's virtual time on every grant and makes a batch that is
// ahead yield to one that waits behind it. Batch roles cannot read or write these rows.
import type { Sql } from './db.js';

/** Creates or updates the batch's share row; its virtual time and history stay. */
export async function upsertPoolShare(
  sql: Sql,
  s: { uid: string; poolKey: string; weight: number },
): Promise<void> {
  if (!(s.weight > 0)) throw new Error(`share weight must be positive, got ${s.weight}`);
  await sql`
    INSERT INTO llm_pool_shares (batch_uid, pool_key, weight) VALUES (${s.uid}, ${s.poolKey}, ${s.weight})
    ON CONFLICT (batch_uid) DO UPDATE SET weight = excluded.weight, pool_key = excluded.pool_key
     -- called on every reconcile pass: no new row version (no dead tuple) when nothing changed
     WHERE (llm_pool_shares.weight, llm_pool_shares.pool_key) IS DISTINCT FROM (excluded.weight, excluded.pool_key)`;
}

/** The batch is gone: its share row goes with it. */
export async function deletePoolShare(sql: Sql, uid: string): Promise<void> {
  await sql`DELETE FROM llm_pool_shares WHERE batch_uid = ${uid}`;
}

/** What the batch's status shows about its pace: its verdicts and its part of the pool, last minute. */
export interface BatchPace {
  /** Comparisons that reached an outcome in the last 60 s. */
  finishedLastMinute: number;
  /** Seconds the last-minute window covers (less than 60 right after the first outcome). */
  windowSeconds: number;
  /** Requests the pool granted in the last 60 s: to this batch, and to every caller. */
  batchRequestsLastMinute: number;
  poolRequestsLastMinute: number;
  /** This batch's weight and the sum over the pool's batches that asked in the last 10 s (self included). */
  weight?: number;
  activeWeight?: number;
  /** Mean time from grant to settle of the pool's requests settled in the last 60 s (the judge's latency), ms. */
  poolLatencyMs?: number;
}

export async function batchPace(sql: Sql, uid: string, poolKey: string): Promise<BatchPace> {
  const [c] = await sql<{ n: number; window_s: number | null }[]>`
    SELECT count(*) FILTER (WHERE completed_at > clock_timestamp() - interval '60 seconds')::int AS n,
           least(60, extract(epoch FROM clock_timestamp() - min(completed_at)))::float8 AS window_s
      FROM comparisons WHERE batch_uid = ${uid} AND completed_at IS NOT NULL`;
  const [r] = await sql<{ mine: number; all: number; latency_ms: number | null }[]>`
    SELECT coalesce(sum(requests) FILTER (WHERE batch_uid = ${uid}), 0)::int AS mine,
           coalesce(sum(requests), 0)::int AS all,
           (avg(extract(epoch FROM settled_at - granted_at)) FILTER (WHERE settled_at IS NOT NULL) * 1000)::float8
             AS latency_ms
      FROM llm_pool_reservations
     WHERE pool_key = ${poolKey} AND granted_at > clock_timestamp() - interval '60 seconds'`;
  const [w] = await sql<{ weight: number | null; active: number | null }[]>`
    SELECT (SELECT weight FROM llm_pool_shares WHERE batch_uid = ${uid}) AS weight,
           (SELECT sum(weight) FROM llm_pool_shares
             WHERE pool_key = ${poolKey}
               AND (batch_uid = ${uid} OR last_ask_at > clock_timestamp() - interval '10 seconds')) AS active`;
  return {
    finishedLastMinute: c!.n,
    windowSeconds: Math.max(0, c!.window_s ?? 0),
    batchRequestsLastMinute: r!.mine,
    poolRequestsLastMinute: r!.all,
    ...(w?.weight != null ? { weight: w.weight } : {}),
    ...(w?.active != null ? { activeWeight: w.active } : {}),
    ...(r!.latency_ms != null ? { poolLatencyMs: r!.latency_ms } : {}),
  };
}

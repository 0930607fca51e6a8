// What the operator's /metrics reports about the LLM work the worker pods did (operator/src/metrics):
// the workers write every comparison's tokens and attempts here anyway, under their batch's own
// role, so the operator reads the figures back instead of workers pushing them over the network.
// Read-only queries; the operator's role owns the tables.
import type { Sql } from './db.js';

/** One batch's totals, for batches still running or finished in the last `recentSeconds`. */
export interface BatchUsageRow {
  uid: string;
  namespace: string;
  name: string;
  /** "<namespace>/<name>" of the pool the batch's role may use; null before the role exists. */
  poolKey: string | null;
  finalized: boolean;
  budget: number;
  succeeded: number;
  failed: number;
  pending: number;
  /** HTTP attempts beyond the first, summed over comparisons. */
  retries: number;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Comparisons finished (succeeded or failed) in the last five minutes. */
  finishedLast5m: number;
  /** Last finished comparison, else the batch's registration (epoch ms). */
  lastProgressMs: number;
  nowMs: number;
}

export async function batchUsage(sql: Sql, recentSeconds: number): Promise<BatchUsageRow[]> {
  const rows = await sql<
    {
      uid: string;
      namespace: string;
      name: string;
      pool_key: string | null;
      finalized: boolean;
      budget_total: number;
      succeeded: number;
      failed: number;
      pending: number;
      retries: string;
      input_tokens: string;
      output_tokens: string;
      cache_read_tokens: string;
      cache_write_tokens: string;
      finished_5m: number;
      last_progress_ms: number;
      now_ms: number;
    }[]
  >`
    SELECT b.uid, b.namespace, b.name, r.pool_key, b.finalized_at IS NOT NULL AS finalized, b.budget_total,
           coalesce(c.succeeded, 0)::int AS succeeded, coalesce(c.failed, 0)::int AS failed,
           coalesce(c.pending, 0)::int AS pending, coalesce(c.retries, 0)::bigint AS retries,
           coalesce(c.input_tokens, 0)::bigint AS input_tokens,
           coalesce(c.output_tokens, 0)::bigint AS output_tokens,
           coalesce(c.cache_read_tokens, 0)::bigint AS cache_read_tokens,
           coalesce(c.cache_write_tokens, 0)::bigint AS cache_write_tokens,
           coalesce(c.finished_5m, 0)::int AS finished_5m,
           (extract(epoch FROM greatest(b.created_at, c.last_completed)) * 1000)::float8 AS last_progress_ms,
           (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms
      FROM batches b
      LEFT JOIN cj_batch_roles r ON r.batch_uid = b.uid
      LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status IN ('pending', 'leased')) AS pending,
               sum(greatest(attempts - 1, 0)) AS retries,
               sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
               sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
               count(*) FILTER (WHERE completed_at > clock_timestamp() - interval '5 minutes') AS finished_5m,
               max(completed_at) AS last_completed
          FROM comparisons WHERE batch_uid = b.uid
      ) c ON true
     WHERE b.finalized_at IS NULL OR b.finalized_at > clock_timestamp() - make_interval(secs => ${recentSeconds})`;
  return rows.map((r) => ({
    uid: r.uid,
    namespace: r.namespace,
    name: r.name,
    poolKey: r.pool_key,
    finalized: r.finalized,
    budget: r.budget_total,
    succeeded: r.succeeded,
    failed: r.failed,
    pending: r.pending,
    retries: Number(r.retries),
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    cacheReadTokens: Number(r.cache_read_tokens),
    cacheWriteTokens: Number(r.cache_write_tokens),
    finishedLast5m: r.finished_5m,
    lastProgressMs: Number(r.last_progress_ms),
    nowMs: Number(r.now_ms),
  }));
}

/** A pool's limiter row: its 429 count (cumulative) and any retry-after block in force. */
export interface PoolLimiterState {
  poolKey: string;
  throttled: number;
  /** Seconds the pool stays blocked by a provider's retry-after (0: not blocked). */
  blockedSeconds: number;
}

export async function poolLimiterStates(sql: Sql): Promise<PoolLimiterState[]> {
  const rows = await sql<{ pool_key: string; throttled: string; blocked: number }[]>`
    SELECT pool_key, throttled,
           greatest(0, coalesce(extract(epoch FROM blocked_until - clock_timestamp()), 0))::float8 AS blocked
      FROM llm_pool_limiter WHERE pool_key NOT LIKE 'batch:%'`;
  return rows.map((r) => ({
    poolKey: r.pool_key,
    throttled: Number(r.throttled),
    blockedSeconds: r.blocked,
  }));
}

/**
 * Attempts the pool limiter granted in the last `seconds` (one row per HTTP attempt; a bundle or a
 * Message Batch submission is one row with its request count). Rows are pruned two minutes after
 * they settle, so a caller polling more often than that and remembering ids sees every attempt once.
 */
export interface GrantedAttempt {
  id: string;
  poolKey: string;
  requests: number;
  grantedMs: number;
}

export async function recentGrants(sql: Sql, seconds: number, limit = 100_000): Promise<GrantedAttempt[]> {
  const rows = await sql<{ id: string; pool_key: string; requests: number; granted_ms: number }[]>`
    SELECT id, pool_key, requests, (extract(epoch FROM granted_at) * 1000)::float8 AS granted_ms
      FROM llm_pool_reservations
     WHERE granted_at > clock_timestamp() - make_interval(secs => ${seconds})
     ORDER BY granted_at LIMIT ${limit}`;
  return rows.map((r) => ({
    id: r.id,
    poolKey: r.pool_key,
    requests: r.requests,
    grantedMs: Number(r.granted_ms),
  }));
}

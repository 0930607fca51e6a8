/**
 * Claims: the comparison worker's queries — claim a chunk of a shard with leases, renew them, write each
 * outcome exactly once, release what is unfinished.
 *
 * Row life cycle: `pending` → (claim) `leased` by `lease_owner` until `lease_expires` →
 * `succeeded` | `failed` (final, written once). A lease that expires (its worker died) makes the
 * row claimable again; a released row goes back to `pending`. The outcome write only succeeds
 * while the writer still holds the lease (`status = 'leased' AND lease_owner = $me`), so a
 * comparison can never be written twice, by the same worker or by two workers.
 *
 * Counters (runtime/src/store/progress.ts): `attempts` is incremented by the HTTP attempts the
 * outcome reports, so `attempts > 0` means submitted and `attempts - 1` are retries; `failed`
 * rows always carry `failure_reason` and never a winner.
 */

import type postgres from 'postgres';
import type { ComparisonOutcome, Confidence } from '../../../contract/src/outcome.js';
import type { Sql } from './db.js';

/** A connection or an open transaction. */
export type Querier = Sql | postgres.TransactionSql;

export interface ShardRef {
  batchUid: string;
  round: number;
  shard: number;
  /**
   * Claim from every shard of the round, not just this one. A worker that finished its own shard
   * helps with the rest (pods start at different times) and takes over pairs whose lease expired
   * in a frozen pod, so a round never waits for one stalled worker.
   */
  anyShard?: boolean;
  /**
   * Every round of the batch (pipelined rounds: the long-lived workers judge whatever is open,
   * oldest first, whichever pass planned it). Implies every shard.
   */
  allRounds?: boolean;
}

export interface ClaimedRow {
  id: string;
  essay_a: string;
  essay_b: string;
  attempts: number;
}

/**
 * The failure reason of pairs that were still open when a pipelined batch committed its stop
 * decision, or when any batch's outcome was committed (a Failed batch: commitOutcomeEvent): never
 * judged (or judged too late to count), not the judge's failure. Progress counts them apart from
 * `failed` (progress.ts). The value keeps its first name: rows already stored carry it.
 */
export const CANCELLED = 'cancelled_at_stop';

/** Confidence labels as the judge's probability that its pick is better (see docs/cj-engine.md). */
export const CONFIDENCE_VALUE: Record<Confidence, number> = { low: 0.6, medium: 0.75, high: 0.9 };

/**
 * Lease up to `limit` claimable rows of the shard: pending ones, or leased ones whose lease has
 * expired. `FOR UPDATE SKIP LOCKED` lets concurrent workers claim disjoint rows without waiting.
 */
export async function claimChunk(
  sql: Sql,
  s: ShardRef,
  owner: string,
  leaseSeconds: number,
  limit: number,
): Promise<ClaimedRow[]> {
  return sql<ClaimedRow[]>`
    WITH c AS (
      SELECT id FROM comparisons
       WHERE batch_uid = ${s.batchUid} AND (${s.allRounds ?? false} OR round = ${s.round})
         AND (${s.allRounds || s.anyShard || false} OR shard = ${s.shard})
         AND (status = 'pending' OR (status = 'leased' AND lease_expires < now()))
       ORDER BY id
       LIMIT ${limit}
       FOR UPDATE SKIP LOCKED)
    UPDATE comparisons t
       SET status = 'leased', lease_owner = ${owner},
           lease_expires = now() + make_interval(secs => ${leaseSeconds})
      FROM c WHERE t.id = c.id
    RETURNING t.id::text AS id, t.essay_a, t.essay_b, t.attempts`;
}

/** Extend the leases this worker still holds. Returns the ids it no longer holds. */
export async function renewLeases(
  sql: Sql,
  ids: readonly string[],
  owner: string,
  leaseSeconds: number,
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await sql<{ id: string }[]>`
    UPDATE comparisons SET lease_expires = now() + make_interval(secs => ${leaseSeconds})
     WHERE id = ANY(${ids as string[]}::bigint[]) AND status = 'leased' AND lease_owner = ${owner}
    RETURNING id::text AS id`;
  const kept = new Set(rows.map((r) => r.id));
  return ids.filter((id) => !kept.has(id));
}

/** Put unfinished leases back to `pending` (SIGTERM, auth failure). Returns how many. */
export async function releaseLeases(sql: Sql, ids: readonly string[], owner: string): Promise<number> {
  if (ids.length === 0) return 0;
  const rows = await sql`
    UPDATE comparisons SET status = 'pending', lease_owner = NULL, lease_expires = NULL
     WHERE id = ANY(${ids as string[]}::bigint[]) AND status = 'leased' AND lease_owner = ${owner}
    RETURNING id`;
  return rows.length;
}

/** Release every lease of the shard held under this owner name (a previous run of the same pod). */
export async function releaseStaleOwn(sql: Sql, s: ShardRef, owner: string): Promise<number> {
  const rows = await sql`
    UPDATE comparisons SET status = 'pending', lease_owner = NULL, lease_expires = NULL
     WHERE batch_uid = ${s.batchUid} AND (${s.allRounds ?? false} OR (round = ${s.round} AND shard = ${s.shard}))
       AND status = 'leased' AND lease_owner = ${owner}
    RETURNING id`;
  return rows.length;
}

export function flagsOf(o: ComparisonOutcome): string[] {
  const flags: string[] = [];
  for (const f of o.injectionFlags) for (const k of f.kinds) flags.push(`injection:${f.position}:${k}`);
  return flags;
}

/**
 * Write one outcome, once: only while this worker holds the lease. Returns false when the lease
 * was lost (expired and taken by another worker, or already final): nothing is written then. A
 * `retry` of a write whose connection dropped returns true when its first try committed.
 */
export async function writeOutcome(
  sql: Querier,
  o: ComparisonOutcome,
  owner: string,
  /** This is a retry of the same write after a dropped connection: its first try may have committed. */
  retry = false,
): Promise<boolean> {
  const ok = o.status === 'succeeded';
  const rows = await sql`
    UPDATE comparisons SET
      status = ${o.status},
      winner = ${ok ? o.winner : null},
      confidence = ${ok ? CONFIDENCE_VALUE[o.confidence] : null},
      justification = ${ok ? o.justification : null},
      failure_reason = ${ok ? null : o.failureReason},
      flags = ${flagsOf(o)}::text[],
      attempts = attempts + ${o.attempts},
      input_tokens = input_tokens + ${o.usage.input},
      output_tokens = output_tokens + ${o.usage.output},
      cache_read_tokens = cache_read_tokens + ${o.usage.cacheRead},
      cache_write_tokens = cache_write_tokens + ${o.usage.cacheWrite},
      latency_ms = ${Math.round(o.latencyMs)},
      lease_expires = NULL,
      completed_at = now()
     WHERE id = ${o.comparisonId}::bigint AND status = 'leased' AND lease_owner = ${owner}
    RETURNING id`;
  if (rows.length === 1) return true;
  // Cancelled at a stop while this worker was judging it: the verdict is not wanted, but the
  // tokens were spent, so they are counted (the row keeps its owner for exactly this).
  await sql`
    UPDATE comparisons SET
      attempts = attempts + ${o.attempts},
      input_tokens = input_tokens + ${o.usage.input},
      output_tokens = output_tokens + ${o.usage.output},
      cache_read_tokens = cache_read_tokens + ${o.usage.cacheRead},
      cache_write_tokens = cache_write_tokens + ${o.usage.cacheWrite},
      lease_owner = NULL
     WHERE id = ${o.comparisonId}::bigint AND status = 'failed' AND failure_reason = ${CANCELLED}
       AND lease_owner = ${owner}`;
  if (!retry) return false;
  // A retry after the connection dropped may find its own first write committed (the row is final
  // and still names this worker: only the lease holder can write, and a takeover renames it).
  const mine = await sql`
    SELECT 1 FROM comparisons
     WHERE id = ${o.comparisonId}::bigint AND status IN ('succeeded', 'failed') AND lease_owner = ${owner}`;
  return mine.length === 1;
}

export interface ShardState {
  /** Rows not final. */
  open: number;
  pending: number;
  /** Rows leased by someone else (another worker, or a dead one whose lease has not expired). */
  leasedByOthers: number;
  /** ms until the earliest of those leases expires (database clock). */
  nextExpiryMs: number | null;
}

export async function shardState(sql: Sql, s: ShardRef, owner: string): Promise<ShardState> {
  const [r] = await sql<{ open: number; pending: number; others: number; next_ms: number | null }[]>`
    SELECT count(*) FILTER (WHERE status IN ('pending', 'leased'))::int AS open,
           count(*) FILTER (WHERE status = 'pending')::int AS pending,
           count(*) FILTER (WHERE status = 'leased' AND lease_owner IS DISTINCT FROM ${owner})::int AS others,
           (extract(epoch from min(lease_expires) FILTER (
              WHERE status = 'leased' AND lease_owner IS DISTINCT FROM ${owner})) * 1000
            - extract(epoch from now()) * 1000)::float8 AS next_ms
      FROM comparisons
     WHERE batch_uid = ${s.batchUid} AND (${s.allRounds ?? false} OR round = ${s.round})
       AND (${s.allRounds || s.anyShard || false} OR shard = ${s.shard})`;
  return {
    open: r!.open,
    pending: r!.pending,
    leasedByOthers: r!.others,
    nextExpiryMs: r!.next_ms === null ? null : Number(r!.next_ms),
  };
}

/** Writes a chunk's outcomes in one transaction (batch_api: all or nothing); one flag per outcome. */
export async function writeOutcomes(
  sql: Sql,
  outcomes: readonly ComparisonOutcome[],
  owner: string,
  retry = false,
): Promise<boolean[]> {
  return sql.begin(async (tx) => {
    const ok: boolean[] = [];
    for (const o of outcomes) ok.push(await writeOutcome(tx, o, owner, retry));
    return ok;
  });
}

// The pool-wide limiter's row (`llm_pool_limiter`, migrations 2–3) as the store reads it, the
// bucket arithmetic over it, and the pool's usage that the operator shows in the pool's status.
// The limiter that runs on them is runtime/src/worker/pool-limiter.ts.
import { LIMITER_DEFAULTS } from '../../../contract/src/pool-runtime.js';
import type { Sql } from './db.js';

export interface LimiterRow {
  pool_key: string;
  rpm: number;
  itpm: number;
  otpm: number;
  max_concurrency: number;
  safety: number;
  burst_seconds: number;
  server_rpm: number | null;
  server_itpm: number | null;
  server_otpm: number | null;
  req_level: number;
  in_level: number;
  out_level: number;
  updated_ms: number;
  ramp_started_ms: number;
  ramp_initial: number;
  ramp_ms: number;
  last_grant_ms: number | null;
  blocked_until_ms: number | null;
  throttled: string | number;
  last_429_ms: number | null;
}

/** Everything the operator shows in the pool's `status.usage`, plus the limiter's view. */
export interface PoolUsage {
  requestsLastMinute: number;
  inputTokensLastMinute: number;
  outputTokensLastMinute: number;
  throttled: number;
  /** RFC 3339, when the provider last answered 429 (through `blockUntil`). */
  last429Time?: string;
  /** RFC 3339, set only while the pool is blocked. */
  blockedUntil?: string;
  inFlight: number;
  effective: { requestsPerMinute: number; inputTokensPerMinute: number; outputTokensPerMinute: number };
  serverLimits: { requestsPerMinute?: number; inputTokensPerMinute?: number; outputTokensPerMinute?: number };
}

export const ROW_COLUMNS = `pool_key, rpm, itpm, otpm, max_concurrency, safety, burst_seconds,
  server_rpm, server_itpm, server_otpm, req_level, in_level, out_level,
  (extract(epoch from updated_at) * 1000)::float8 AS updated_ms,
  (extract(epoch from ramp_started_at) * 1000)::float8 AS ramp_started_ms, ramp_initial, ramp_ms,
  (extract(epoch from last_grant_at) * 1000)::float8 AS last_grant_ms,
  (extract(epoch from blocked_until) * 1000)::float8 AS blocked_until_ms, throttled,
  (extract(epoch from last_429_at) * 1000)::float8 AS last_429_ms`;

export type Dim = 'req' | 'in' | 'out';

/** Pure bucket arithmetic over one row at time `now` (ms). */
export class BucketMath {
  constructor(private readonly row: LimiterRow) {}
  /** The slow start's fraction of the rate at `now`: a row that never granted, or idle longer than `idleMs`, starts over (cj_limiter_eval). */
  rampFraction(now: number, idleMs: number = LIMITER_DEFAULTS.rampIdleResetMs): number {
    const r = this.row;
    if (r.ramp_ms <= 0) return 1;
    const cold = r.last_grant_ms === null || now - Number(r.last_grant_ms) > idleMs;
    const started = cold ? now : Number(r.ramp_started_ms);
    const f = r.ramp_initial + ((1 - r.ramp_initial) * (now - started)) / r.ramp_ms;
    return Math.min(1, Math.max(r.ramp_initial, f));
  }
  /** Effective per-minute limit of a dimension (before ramp): min(configured, server) × safety. */
  limit(d: Dim): number {
    const r = this.row;
    const [conf, server] =
      d === 'req' ? [r.rpm, r.server_rpm] : d === 'in' ? [r.itpm, r.server_itpm] : [r.otpm, r.server_otpm];
    return Math.min(conf, server ?? Number.POSITIVE_INFINITY) * r.safety;
  }
  capacity(d: Dim, f: number): number {
    return Math.max(1, ((this.limit(d) * f) / 60) * this.row.burst_seconds);
  }
  /** Level of a bucket refilled to `now`. */
  level(d: Dim, now: number, f: number): number {
    const r = this.row;
    const stored = d === 'req' ? r.req_level : d === 'in' ? r.in_level : r.out_level;
    const dt = Math.max(0, now - Number(r.updated_ms));
    return Math.min(this.capacity(d, f), stored + (dt / 60_000) * this.limit(d) * f);
  }
  /** ms until `n` (capped at capacity) is available in a bucket at `level`. */
  waitFor(d: Dim, level: number, n: number, f: number): number {
    const need = Math.min(n, this.capacity(d, f));
    if (level >= need) return 0;
    const perMs = (this.limit(d) * f) / 60_000;
    return perMs > 0 ? Math.ceil((need - level) / perMs) : 1000;
  }
}

const toIso = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? undefined : new Date(Number(ms)).toISOString();

/** Read a pool's usage for its status (requests and tokens of the last minute, 429s, block). */
export async function poolUsage(sql: Sql, poolKey: string): Promise<PoolUsage | undefined> {
  const [row] = await sql.unsafe<(LimiterRow & { now_ms: number })[]>(
    `SELECT ${ROW_COLUMNS}, (extract(epoch from clock_timestamp()) * 1000)::float8 AS now_ms
       FROM llm_pool_limiter WHERE pool_key = $1`,
    [poolKey],
  );
  if (!row) return undefined;
  const [u] = await sql<{ requests: number; input: string; output: string; in_flight: number }[]>`
    SELECT coalesce(sum(requests), 0)::int AS requests,
           coalesce(sum(input_tokens), 0)::bigint AS input,
           coalesce(sum(output_tokens), 0)::bigint AS output,
           count(*) FILTER (WHERE settled_at IS NULL AND lease_expires > clock_timestamp())::int AS in_flight
      FROM llm_pool_reservations
     WHERE pool_key = ${poolKey} AND granted_at > clock_timestamp() - interval '60 seconds'`;
  const [inflight] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM llm_pool_reservations
     WHERE pool_key = ${poolKey} AND settled_at IS NULL AND lease_expires > clock_timestamp()`;
  const now = Number(row.now_ms);
  const m = new BucketMath(row);
  const f = m.rampFraction(now);
  const blocked = row.blocked_until_ms !== null && Number(row.blocked_until_ms) > now;
  return {
    requestsLastMinute: u!.requests,
    inputTokensLastMinute: Number(u!.input),
    outputTokensLastMinute: Number(u!.output),
    throttled: Number(row.throttled),
    ...(row.last_429_ms !== null ? { last429Time: toIso(row.last_429_ms) } : {}),
    ...(blocked ? { blockedUntil: toIso(row.blocked_until_ms) } : {}),
    inFlight: inflight!.n,
    effective: {
      requestsPerMinute: m.limit('req') * f,
      inputTokensPerMinute: m.limit('in') * f,
      outputTokensPerMinute: m.limit('out') * f,
    },
    serverLimits: {
      ...(row.server_rpm !== null ? { requestsPerMinute: row.server_rpm } : {}),
      ...(row.server_itpm !== null ? { inputTokensPerMinute: row.server_itpm } : {}),
      ...(row.server_otpm !== null ? { outputTokensPerMinute: row.server_otpm } : {}),
    },
  };
}

// The limiter's statements. Each is one call of a SECURITY DEFINER function (migrations), which
// locks the pool row only while it runs and checks that the caller may use the pool.

export interface ReserveResult {
  o_granted: boolean;
  o_wait_ms: number;
  /** `share`: the batch is ahead of another batch of the pool that waits (migration 7). */
  o_why: 'granted' | 'blocked' | 'concurrency' | 'tokens' | 'share';
  o_cap_req: number;
  o_cap_in: number;
  o_cap_out: number;
}

/** One grant attempt under the row lock (`cj_limiter_reserve`). */
export async function limiterReserve(
  sql: Sql,
  r: {
    poolKey: string;
    id: string;
    owner: string;
    requests: number;
    inputTokens: number;
    outputTokens: number;
    leaseMs: number;
    rampIdleResetMs: number;
    slotPollMs: number;
  },
): Promise<ReserveResult> {
  const [row] = await sql<
    ReserveResult[]
  >`SELECT * FROM cj_limiter_reserve(${r.poolKey}, ${r.id}::uuid, ${r.owner},
      ${r.requests}::float8, ${r.inputTokens}::float8, ${r.outputTokens}::float8,
      ${r.leaseMs}::float8, ${r.rampIdleResetMs}::float8, ${r.slotPollMs}::float8)`;
  if (!row) throw new Error('cj_limiter_reserve returned nothing');
  return row;
}

/** Settle a reservation once with the usage the provider reported (0 refunds the estimate). */
export async function limiterSettle(sql: Sql, id: string, usedIn: number, usedOut: number): Promise<void> {
  await sql`SELECT cj_limiter_settle(${id}::uuid, ${usedIn}::float8, ${usedOut}::float8)`;
}

/** Delete the pool's old settled or expired reservations. */
export async function limiterPrune(sql: Sql, poolKey: string): Promise<void> {
  await sql`SELECT cj_limiter_prune(${poolKey})`;
}

/** Block the whole pool for `delayMs` on the database clock (capped by the row's max_block_ms). */
export async function limiterBlock(sql: Sql, poolKey: string, delayMs: number): Promise<void> {
  await sql`SELECT cj_limiter_block(${poolKey}, ${delayMs}::float8)`;
}

/** Server-reported limits and remaining counts per dimension (null: unchanged). */
export async function limiterObserve(
  sql: Sql,
  poolKey: string,
  limit: Record<Dim, number | null>,
  remaining: Record<Dim, number | null>,
): Promise<void> {
  await sql`SELECT cj_limiter_observe(${poolKey},
    ${limit.req}::float8, ${limit.in}::float8, ${limit.out}::float8,
    ${remaining.req}::float8, ${remaining.in}::float8, ${remaining.out}::float8)`;
}

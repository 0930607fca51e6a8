// Data isolation between batches (docs/security.md, "Data isolation"). Each batch gets its own
// Postgres role: the only database credentials that ever reach a tenant namespace (the
// `<batch>-worker` Secret). The role sees its own batch's rows through row-level security, has no
// privilege on the outbox or the limiter tables, and reaches its pool's limiter only through
// SECURITY DEFINER functions that check the pool (migration 4). The operator's own role owns the
// tables and needs CREATEROLE to manage these roles.
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { LIMITER_DEFAULTS, type LimiterTuning, type PoolLimits } from '../../../contract/src/pool-runtime.js';
import type { Sql } from './db.js';
import { deletePoolShare } from './share.js';

/** The role name of a batch: fixed by its uid, so every operator replica derives the same one. */
export const batchRoleName = (uid: string) => `cj_b_${uid.replace(/-/g, '').toLowerCase()}`;

/** The limiter row of a batch's own (override) bucket; a colon cannot occur in a pool key. */
export const batchLimiterKey = (uid: string) => `batch:${uid}`;

/**
 * A SCRAM-SHA-256 verifier (RFC 5802/7677, Postgres' stored format) for `password`: the server
 * stores it as is, so the password in clear never travels to Postgres or into its logs.
 */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export interface BatchCredentials {
  role: string;
  password: string;
}

/**
 * Creates the batch's role (or resets its password when it exists) with a fresh random password
 * and a connection limit; returns the credentials, which the caller puts in the worker Secret and
 * nowhere else.
 */
export async function createBatchRole(
  sql: Sql,
  b: { uid: string; poolKey: string; connectionLimit: number },
): Promise<BatchCredentials> {
  const password = randomBytes(24).toString('base64url');
  const [r] = await sql<{ role: string }[]>`
    SELECT cj_create_batch_role(${b.uid}::uuid, ${b.poolKey}, ${scramVerifier(password)},
                                ${Math.max(1, Math.floor(b.connectionLimit))}::int) AS role`;
  return { role: r!.role, password };
}

/** The role the batch has, if any, and whether it was retired. */
export async function batchRole(
  sql: Sql,
  uid: string,
): Promise<{ role: string; poolKey: string; retired: boolean } | undefined> {
  const [r] = await sql<{ role_name: string; pool_key: string; retired: boolean }[]>`
    SELECT role_name, pool_key, retired_at IS NOT NULL AS retired FROM cj_batch_roles WHERE batch_uid = ${uid}`;
  return r ? { role: r.role_name, poolKey: r.pool_key, retired: r.retired } : undefined;
}

/** The batch ended: NOLOGIN, its open sessions see no row and no limiter, its share row is gone. Idempotent. */
export async function retireBatchRole(sql: Sql, uid: string): Promise<void> {
  await sql`SELECT cj_retire_batch_role(${uid}::uuid)`;
  // An ended batch asks the limiter no more: its share row goes, so that the reserve function's
  // look at the pool's shares stays as short as the list of batches that can still ask.
  await deletePoolShare(sql, uid);
}

/** The batch was deleted: revoke and drop its role, its limiter row and its share. False if the drop failed. */
export async function dropBatchRole(sql: Sql, uid: string): Promise<boolean> {
  const [r] = await sql<{ ok: boolean }[]>`SELECT cj_drop_batch_role(${uid}::uuid) AS ok`;
  await deletePoolShare(sql, uid);
  return r!.ok;
}

/** The operator's URL with the batch's credentials instead of its own (host, database, options kept). */
export function workerDatabaseUrl(operatorUrl: string, c: BatchCredentials): string {
  const u = new URL(operatorUrl);
  u.username = encodeURIComponent(c.role);
  u.password = encodeURIComponent(c.password);
  return u.toString();
}

/** Limits of one limiter row (per minute), as the operator writes them; tuning defaults: LIMITER_DEFAULTS. */
export interface LimiterRowSettings extends PoolLimits, Omit<LimiterTuning, 'leaseMs'> {
  /** Longest pool-wide block a retry-after may impose. */
  maxBlockMs?: number;
}

/**
 * Creates or updates a limiter row's configuration (levels, server limits and history stay). The
 * operator writes the pool's row from the pool's spec and a batch's row from its overrides; worker
 * roles cannot write either.
 */
export async function upsertLimiterRow(sql: Sql, key: string, o: LimiterRowSettings): Promise<void> {
  const safety = o.safetyFactor ?? LIMITER_DEFAULTS.safetyFactor;
  const burst = o.burstSeconds ?? LIMITER_DEFAULTS.burstSeconds;
  const ramp = o.rampUp ?? LIMITER_DEFAULTS.rampUp;
  const init = ramp.durationMs > 0 ? ramp.initialFraction : 1;
  const cap = (perMin: number) => Math.max(1, ((perMin * safety * init) / 60) * burst);
  await sql`
    INSERT INTO llm_pool_limiter (pool_key, rpm, itpm, otpm, max_concurrency, safety, burst_seconds,
                                  req_level, in_level, out_level, ramp_initial, ramp_ms, max_block_ms)
    VALUES (${key}, ${o.requestsPerMinute}, ${o.inputTokensPerMinute}, ${o.outputTokensPerMinute},
            ${o.maxConcurrency}, ${safety}, ${burst},
            ${cap(o.requestsPerMinute)}, ${cap(o.inputTokensPerMinute)}, ${cap(o.outputTokensPerMinute)},
            ${init}, ${Math.max(0, ramp.durationMs)}, ${o.maxBlockMs ?? DEFAULT_MAX_BLOCK_MS})
    ON CONFLICT (pool_key) DO UPDATE SET
      rpm = excluded.rpm, itpm = excluded.itpm, otpm = excluded.otpm,
      max_concurrency = excluded.max_concurrency, safety = excluded.safety,
      burst_seconds = excluded.burst_seconds, ramp_initial = excluded.ramp_initial,
      ramp_ms = excluded.ramp_ms, max_block_ms = excluded.max_block_ms,
      -- a block set under a longer clamp never outlasts the new one
      -- (LEAST ignores NULL, hence the CASE: no block stays no block)
      blocked_until = CASE WHEN llm_pool_limiter.blocked_until IS NOT NULL
        THEN least(llm_pool_limiter.blocked_until,
                   clock_timestamp() + make_interval(secs => excluded.max_block_ms / 1000)) END`;
}

/** Removes a limiter row (the pool or the batch is gone); its reservations go with it. */
export async function deleteLimiterRow(sql: Sql, key: string): Promise<void> {
  await sql`DELETE FROM llm_pool_limiter WHERE pool_key = ${key}`;
}

/** Ten minutes: the longest a provider's retry-after may stop a pool (MAX_RETRY_AFTER_SECONDS). */
export const DEFAULT_MAX_BLOCK_MS = 600_000;

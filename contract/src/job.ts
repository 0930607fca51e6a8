// The Job contract between the operator (which writes the worker Jobs, operator/src/controllers/
// cjbatch/jobs.ts) and the worker entry points (runtime/src/commands): the command, the
// environment and the exit codes. Reading the environment is a pure function of the env record.
import { baseUrlProblem, egressPolicyFromEnv } from './egress.js';
import { decodePoolRuntimeConfig, PoolConfigError, type PoolRuntimeConfig } from './pool-runtime.js';

/** The worker entry point inside the image. */
export const WORKER_MAIN = '/app/dist/runtime/src/main.js';
export const workerCommand = (sub: 'score' | 'compare') => ['node', WORKER_MAIN, sub];

/** Environment variable names the Jobs set and the workers read. */
export const ENV = {
  databaseUrl: 'DATABASE_URL',
  batchUid: 'BATCH_UID',
  round: 'ROUND',
  podName: 'POD_NAME',
  /** Set by the Job controller in an Indexed Job: the shard. */
  shard: 'JOB_COMPLETION_INDEX',
  poolKey: 'CJ_POOL_KEY',
  poolConfig: 'CJ_POOL_CONFIG',
  leaseSeconds: 'CJ_LEASE_SECONDS',
  dbOutageSeconds: 'CJ_DB_OUTAGE_SECONDS',
  apiKey: 'ANTHROPIC_API_KEY',
  /**
   * `operator`: the pool's and the batch's limiter rows are the operator's; the worker's role only
   * reserves through the limiter functions and never writes a row.
   */
  limiterRows: 'CJ_LIMITER_ROWS',
  /**
   * Set: the pod is one of the batch's long-lived workers (pipelined rounds). It judges open pairs
   * of any round until the batch stops, and plans the next pairs when at most this many are open.
   */
  pipelineLow: 'CJ_PIPELINE_LOW',
} as const;

/**
 * Exit codes of the workers, and what the Job's podFailurePolicy makes of them: `authFailed`
 * fails the whole comparison Job (no pod can do better with the same key), `badInput` fails the
 * scoring Job or the comparison Job's index (a retry reads the same input), `terminated` is a
 * SIGTERM (the pod is replaced), anything else is retried up to the backoff limit.
 */
export const EXIT = { done: 0, unexpected: 1, authFailed: 3, badInput: 4, terminated: 143 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A worker's input cannot work (env, pool config, batch row): exit `EXIT.badInput`, no retry. */
export class JobInputError extends Error {
  override name = 'JobInputError';
}

type Env = Record<string, string | undefined>;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function int(env: Env, k: string, min: number): number {
  const v = Number(env[k]);
  if (env[k] === undefined || env[k] === '' || !Number.isInteger(v) || v < min)
    throw new JobInputError(`${k} must be an integer >= ${min}`);
  return v;
}

function uid(env: Env): string {
  const v = env[ENV.batchUid];
  if (!v || !UUID_RE.test(v)) throw new JobInputError(`${ENV.batchUid} must be a uid (uuid)`);
  return v;
}

export interface ScoreEnv {
  batchUid: string;
  round: number;
}

/** The scoring Job's environment (BATCH_UID, ROUND); throws `JobInputError`. */
export function readScoreEnv(env: Env): ScoreEnv {
  if (!env[ENV.batchUid] || !Number.isInteger(Number(env[ENV.round])) || Number(env[ENV.round]) < 0)
    throw new JobInputError(`${ENV.batchUid} and ${ENV.round} (an integer >= 0) must be set`);
  return { batchUid: env[ENV.batchUid]!, round: Number(env[ENV.round]) };
}

export interface CompareEnv {
  databaseUrl: string;
  batchUid: string;
  round: number;
  shard: number;
  /** Lease owner: the pod name. */
  owner: string;
  poolKey: string;
  pool: PoolRuntimeConfig;
  apiKey: string;
  leaseSeconds: number;
  /** How long a database outage is ridden out (retries with backoff) before the worker fails. */
  dbOutageMs: number;
  /** The limiter rows are kept by the operator (see ENV.limiterRows). */
  limiterRowsByOperator: boolean;
  /** Pipelined rounds: plan the next pairs when at most this many of the batch's are open. */
  pipelineLow?: number;
}

/** The comparison Job's environment; throws `JobInputError` with a key-free message. */
export function readCompareEnv(env: Env, fallbackOwner: string): CompareEnv {
  const missing: string[] = [
    ENV.databaseUrl,
    ENV.batchUid,
    ENV.round,
    ENV.shard,
    ENV.poolKey,
    ENV.poolConfig,
  ].filter((k) => !env[k]);
  if (!env[ENV.apiKey]?.trim()) missing.push(ENV.apiKey);
  if (missing.length > 0) throw new JobInputError(`missing environment: ${missing.join(', ')}`);
  const batchUid = uid(env);
  const lease = env[ENV.leaseSeconds] ? Number(env[ENV.leaseSeconds]) : 60;
  if (!Number.isFinite(lease) || lease < 1)
    throw new JobInputError(`${ENV.leaseSeconds} must be a number >= 1`);
  const outage = env[ENV.dbOutageSeconds] ? Number(env[ENV.dbOutageSeconds]) : 120;
  if (!Number.isFinite(outage) || outage < 0)
    throw new JobInputError(`${ENV.dbOutageSeconds} must be a number >= 0`);
  const pool = decodePool(env[ENV.poolConfig]);
  // The key goes only to an endpoint the platform allowed (the operator passes its allowlist;
  // without one, only the provider's official endpoint), whatever the pool config says.
  let egress: string | undefined;
  try {
    egress = baseUrlProblem(pool.baseURL, egressPolicyFromEnv(env));
  } catch (e) {
    throw new JobInputError((e as Error).message);
  }
  if (egress) throw new JobInputError(`${ENV.poolConfig} baseURL: ${egress}`);
  return {
    databaseUrl: env[ENV.databaseUrl]!,
    batchUid,
    round: int(env, ENV.round, 0),
    shard: int(env, ENV.shard, 0),
    owner: env[ENV.podName] || fallbackOwner,
    poolKey: env[ENV.poolKey]!,
    pool,
    apiKey: env[ENV.apiKey]!.trim(),
    leaseSeconds: lease,
    dbOutageMs: outage * 1000,
    limiterRowsByOperator: env[ENV.limiterRows] === 'operator',
    ...(env[ENV.pipelineLow] !== undefined ? { pipelineLow: int(env, ENV.pipelineLow, 1) } : {}),
  };
}

function decodePool(value: string | undefined): PoolRuntimeConfig {
  try {
    return decodePoolRuntimeConfig(value);
  } catch (e) {
    if (e instanceof PoolConfigError) throw new JobInputError(e.message);
    throw e;
  }
}

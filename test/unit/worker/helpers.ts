// Shared set-up of the worker tests: a batch with essays and planned comparisons in Postgres,
// the pool config, and `runtime compare` worker processes.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import {
  encodePoolRuntimeConfig,
  type PoolRuntimeConfigInput,
  type PoolSpecForRuntime,
  resolvePoolRuntimeConfig,
} from '../../../contract/src/pool-runtime.js';
import { repoRoot } from '../../../hack/lib/tools.js';
import { registerBatch } from '../../../runtime/src/store/batches.js';
import type { Sql } from '../../../runtime/src/store/db.js';
import { fixture } from '../llm/helpers.js';

export interface SeededBatch {
  uid: string;
  rows: number;
}

/** A batch with the fixture essays and `rows` distinct comparisons of `round` over `shards`. */
export async function seedBatch(sql: Sql, rows: number, shards: number, round = 1): Promise<SeededBatch> {
  const uid = randomUUID();
  await registerBatch(sql, {
    uid,
    namespace: 'test',
    name: `b-${uid.slice(0, 8)}`,
    config: { assignment: fixture.assignment },
    budgetTotal: rows * 10,
    budgetSource: 'spec',
    essays: fixture.essays,
    anchors: fixture.anchors,
  });
  const ids = [...fixture.essays, ...fixture.anchors].map((e) => e.id);
  const pairs: Array<{ batch_uid: string; round: number; shard: number; essay_a: string; essay_b: string }> =
    [];
  for (let k = 1; pairs.length < rows; k++) {
    for (let i = 0; i < ids.length && pairs.length < rows; i++) {
      const j = (i + k) % ids.length;
      if (j === i) continue;
      pairs.push({ batch_uid: uid, round, shard: pairs.length % shards, essay_a: ids[i]!, essay_b: ids[j]! });
    }
  }
  for (let i = 0; i < pairs.length; i += 500)
    await sql`INSERT INTO comparisons ${sql(pairs.slice(i, i + 500))}`;
  return { uid, rows };
}

/**
 * CJ_POOL_CONFIG as the operator writes it: a pool spec (with `spec` merged over a fast test
 * pool) resolved and encoded by the Job contract, plus runtime tuning the CRD does not have.
 */
export function poolConfig(
  baseURL: string,
  spec: Partial<PoolSpecForRuntime> = {},
  tuning: Partial<PoolRuntimeConfigInput> = {},
): string {
  const resolved = resolvePoolRuntimeConfig({
    provider: 'fake',
    baseURL,
    model: 'claude-sonnet-5-5',
    tier: 'custom',
    limits: {
      requestsPerMinute: 60_000,
      inputTokensPerMinute: 100_000_000,
      outputTokensPerMinute: 10_000_000,
      maxConcurrency: 200,
    },
    retry: { maxAttempts: 5, initialBackoff: '5ms', maxBackoff: '40ms' },
    batching: { mode: 'per_request' },
    promptCaching: { enabled: true, ttl: '5m' },
    ...spec,
  });
  return encodePoolRuntimeConfig({
    ...resolved,
    concurrency: 4,
    limiter: { rampUp: { initialFraction: 1, durationMs: 0 } },
    ...tuning,
  });
}

export interface WorkerSummary {
  code: number;
  succeeded: number;
  failed: number;
  lostLeases: number;
  released: number;
}

export interface WorkerProc {
  child: ChildProcess;
  name: string;
  exit: Promise<number>;
  output: () => string;
  /** The final "compare worker finished" log line, parsed. */
  summary: () => WorkerSummary | undefined;
}

export function spawnWorker(env: Record<string, string>, name = `w-${randomUUID().slice(0, 6)}`): WorkerProc {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(repoRoot, 'runtime/src/main.ts'), 'compare'],
    {
      cwd: repoRoot,
      env: { ...process.env, POD_NAME: name, LOG_LEVEL: 'info', ...env, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exit = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128)));
  });
  return {
    child,
    name,
    exit,
    output: () => out,
    summary: () => {
      const line = out.split('\n').find((l) => l.includes('compare worker finished'));
      return line ? (JSON.parse(line) as WorkerSummary) : undefined;
    },
  };
}

export function workerEnv(
  dbUrl: string,
  b: SeededBatch,
  shard: number,
  pool: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    DATABASE_URL: dbUrl,
    BATCH_UID: b.uid,
    ROUND: '1',
    JOB_COMPLETION_INDEX: String(shard),
    CJ_POOL_KEY: `test/pool-${b.uid.slice(0, 8)}`,
    CJ_POOL_CONFIG: pool,
    ANTHROPIC_API_KEY: 'sk-test-key',
    // The fake servers of these tests listen on loopback (the operator passes its allowlist).
    LLM_ALLOWED_BASE_URLS: 'http://127.0.0.1:*',
    ...extra,
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v as T;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function rowsOf(sql: Sql, uid: string) {
  return sql<
    {
      id: string;
      shard: number;
      status: string;
      attempts: number;
      winner: string | null;
      failure_reason: string | null;
      lease_owner: string | null;
    }[]
  >`SELECT id::text, shard, status, attempts, winner, failure_reason, lease_owner FROM comparisons
     WHERE batch_uid = ${uid} ORDER BY id`;
}

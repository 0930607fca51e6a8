// What a phase handler sees and may do: the batch, the status being built, its pool, and ports
// onto the store and the batch's children. The dispatcher (reconciler.ts) builds one context per
// reconcile; the handlers (phases/) are plain async functions over it, so their unit tests pass
// fakes for the ports instead of a cluster and a database.
import { policyText } from '../../../../contract/src/egress.js';
import {
  type AuditWrite,
  commitAudit,
  essayTexts,
  finalThetas,
  llmVerdicts,
} from '../../../../runtime/src/store/audit.js';
import {
  type BatchRegistration,
  type BatchRow,
  batchShards,
  deleteBatchRows,
  getBatch,
  registerBatch,
} from '../../../../runtime/src/store/batches.js';
import type { Sql } from '../../../../runtime/src/store/index.js';
import { batchEventState } from '../../../../runtime/src/store/outbox.js';
import { type Progress, readProgress } from '../../../../runtime/src/store/progress.js';
import {
  failOpenComparisons,
  latestRound,
  openComparisons,
  type RoundRow,
  scoredRound,
} from '../../../../runtime/src/store/rounds.js';
import { type BatchPace, batchPace, upsertPoolShare } from '../../../../runtime/src/store/share.js';
import {
  deleteLimiterRow,
  dropBatchRole,
  type LimiterRowSettings,
  retireBatchRole,
  upsertLimiterRow,
} from '../../../../runtime/src/store/tenancy.js';
import {
  type CJBatch,
  type CJBatchStatus,
  DEFAULT_PRIORITY,
  type LLMProviderPool,
  poolKeyOf,
} from '../../api/index.js';
import { type OperatorConfig, platformPolicy } from '../../config.js';
import type { EventType } from '../../kube/events.js';
import type { SetCondition } from '../../kube/status.js';
import { imageAllowed } from '../../validation/platform.js';
import type { ChildJobs } from './child-jobs.js';
import { type BatchResults, commitOutcome, committedOutcome, type Outcome, readResults } from './finalize.js';
import type { JobContext } from './jobs.js';
import { workerPoolConfig } from './prepare.js';
import { mirrorProgress, paceStatus } from './status.js';

/** The store as the phases use it: typed store functions bound to the operator's connection. */
export function storePort(sql: Sql) {
  return {
    committedOutcome: (uid: string) => committedOutcome(sql, uid),
    getBatch: (uid: string) => getBatch(sql, uid),
    registerBatch: (r: BatchRegistration) => registerBatch(sql, r),
    latestRound: (uid: string) => latestRound(sql, uid),
    readProgress: (uid: string) => readProgress(sql, uid),
    shards: (uid: string) => batchShards(sql, uid),
    /** Whether `round` has its round row (its scoring pass committed). */
    isScored: async (uid: string, round: number) => (await scoredRound(sql, uid, round)) !== undefined,
    openComparisons: (uid: string, round: number) => openComparisons(sql, uid, round),
    failOpenComparisons: (uid: string, round: number, reason: string) =>
      failOpenComparisons(sql, uid, round, reason),
    eventState: (uid: string) => batchEventState(sql, uid),
    retireRole: (uid: string) => retireBatchRole(sql, uid),
    /** The batch was deleted: its role is dropped; false if the drop failed (it stays NOLOGIN). */
    dropRole: (uid: string) => dropBatchRole(sql, uid),
    deleteRows: (uid: string) => deleteBatchRows(sql, uid),
    commitOutcome: (batch: CJBatch, o: Outcome) => commitOutcome(sql, batch, o),
    readResults: (uid: string, grades: string[]): Promise<BatchResults> => readResults(sql, uid, grades),
    upsertLimiterRow: (key: string, s: LimiterRowSettings) => upsertLimiterRow(sql, key, s),
    deleteLimiterRow: (key: string) => deleteLimiterRow(sql, key),
    llmVerdicts: (uid: string) => llmVerdicts(sql, uid),
    finalThetas: (uid: string) => finalThetas(sql, uid),
    essayTexts: (uid: string, ids: readonly string[]) => essayTexts(sql, uid, ids),
    commitAudit: (w: AuditWrite) => commitAudit(sql, w),
    upsertPoolShare: (uid: string, poolKey: string, weight: number) =>
      upsertPoolShare(sql, { uid, poolKey, weight }),
    batchPace: (uid: string, poolKey: string) => batchPace(sql, uid, poolKey),
  };
}
export type PhaseStore = ReturnType<typeof storePort>;

/** The batch's other children and the ConfigMaps its spec reads (owned.ts). */
export interface OwnedChildren {
  workerSecret(pool: LLMProviderPool): Promise<string | undefined>;
  configMap(name: string): Promise<{ data?: Record<string, string> } | undefined>;
  applyConfigMap(name: string, body: object): Promise<void>;
}

export interface PhaseContext {
  batch: CJBatch;
  /** The status being built; the dispatcher writes it once, when it differs from the object's. */
  status: CJBatchStatus;
  cond: SetCondition;
  /** The batch's pool as the informer has it (undefined: it does not exist). */
  pool: LLMProviderPool | undefined;
  /** The batch's row, once registered (the preparing phase fills it in). */
  registered: BatchRow | undefined;
  store: PhaseStore;
  jobs: ChildJobs;
  owned: OwnedChildren;
  /** Records a Kubernetes Event about the batch (never fails the reconcile). */
  event(type: EventType, reason: string, message: string): void;
  config: OperatorConfig;
  /** Epoch ms (a test's fake clock); Date.now when missing. */
  now?: () => number;
  /** The batch's pace as this pass read it (shareAndPace), once it has a pool. */
  pace?: BatchPace;
  /**
   * The sum of spec.priority over the batches of this batch's pool that may still ask it (not
   * ended, not suspended; this one included), as the informer has them.
   */
  poolWeight?: () => number;
}

/**
 * What a handler asks of the dispatcher: look again after `requeueAfter` ms, or end the batch as
 * Failed (the finalizing phase commits that outcome).
 */
export interface Step {
  requeueAfter?: number;
  fail?: { reason: string; message: string };
}

export const uidOf = (ctx: PhaseContext) => ctx.batch.metadata.uid!;

/** Phase is for humans (conditions carry the truth); each change is also an Event. */
export function setPhase(ctx: PhaseContext, phase: NonNullable<CJBatchStatus['phase']>): void {
  if (ctx.status.phase === phase) return;
  ctx.event(
    phase === 'Failed' ? 'Warning' : 'Normal',
    phase,
    `phase ${ctx.status.phase ?? 'Pending'} → ${phase}`,
  );
  ctx.status.phase = phase;
  // A finished batch has no pace.
  if (phase === 'Succeeded' || phase === 'Failed') delete ctx.status.throughput;
}

/**
 * The batch's weight in its pool's fair share (spec.priority), written every pass so that a changed
 * priority applies at once, and its live pace in the status.
 */
export async function shareAndPace(ctx: PhaseContext): Promise<void> {
  const pool = ctx.pool;
  if (!pool) return;
  const uid = uidOf(ctx);
  await ctx.store.upsertPoolShare(uid, poolKeyOf(pool), ctx.batch.spec.priority ?? DEFAULT_PRIORITY);
  ctx.pace = await ctx.store.batchPace(uid, poolKeyOf(pool));
  ctx.status.throughput = paceStatus(ctx.pace, ctx.status);
}

/** Copies the store's counters (and the latest round's figures) into the status; returns them. */
export async function mirror(ctx: PhaseContext, reg: BatchRow, latest?: RoundRow) {
  const uid = uidOf(ctx);
  const p = await ctx.store.readProgress(uid);
  mirrorFrom(ctx, reg, p, latest ?? (await ctx.store.latestRound(uid)));
  return p;
}

/** `mirror` from counters already read (the failed outcome's own transaction). */
export function mirrorFrom(ctx: PhaseContext, reg: BatchRow, p: Progress, latest: RoundRow | undefined) {
  Object.assign(
    ctx.status,
    mirrorProgress(ctx.status, p, { total: reg.budget_total, source: reg.budget_source }, latest, ctx.pool),
  );
}

/** What every worker Job of the batch is given: image, Secrets, the pool's resolved config. */
export function jobContext(ctx: PhaseContext, pool: LLMProviderPool): JobContext {
  const { batch, config } = ctx;
  const wanted = batch.spec.workers?.image;
  return {
    // Admission and the start-time validation refuse an image the platform does not allow; a
    // spec edited after the start still never gets one.
    image: wanted && imageAllowed(platformPolicy(config), wanted) ? wanted : config.image,
    imagePullPolicy: config.imagePullPolicy,
    workerSecret: `${batch.metadata.name}-worker`,
    ...(config.workerServiceAccount ? { serviceAccount: config.workerServiceAccount } : {}),
    pool: {
      key: poolKeyOf(pool),
      config: workerPoolConfig(pool, batch),
      apiKeySecret: pool.spec.apiKeySecretRef,
    },
    allowedBaseURLs: policyText(config.egress),
    leaseSeconds: config.leaseSeconds,
  };
}

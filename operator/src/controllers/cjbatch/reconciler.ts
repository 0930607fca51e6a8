// The CJBatch reconciler: level-based. Each call reads the batch, its pool, its Jobs and the
// database, takes at most the next step of Pending → Preparing → (Scoring → Comparing)* →
// Finalizing → Succeeded | Failed, and writes status only when it changed. All progress lives in
// the database and in deterministic child names, so a restarted or newly elected operator resumes
// exactly where the last one stopped: no Job is created twice, no round is scored twice.

import { baseUrlProblem, policyText } from '../../../../contract/src/egress.js';
import {
  batchShards,
  deleteBatchRows,
  getBatch,
  registerBatch,
} from '../../../../runtime/src/store/batches.js';
import type { Sql } from '../../../../runtime/src/store/index.js';
import { batchEventState } from '../../../../runtime/src/store/outbox.js';
import { readProgress } from '../../../../runtime/src/store/progress.js';
import {
  failOpenComparisons,
  latestRound,
  openComparisons,
  type RoundRow,
  scoredRound,
} from '../../../../runtime/src/store/rounds.js';
import {
  batchLimiterKey,
  batchRoleName,
  createBatchRole,
  deleteLimiterRow,
  dropBatchRole,
  retireBatchRole,
  upsertLimiterRow,
  workerDatabaseUrl,
} from '../../../../runtime/src/store/tenancy.js';
import type { CJBatch, CJBatchStatus, LLMProviderPool } from '../../api/index.js';
import { parseDuration } from '../../api/index.js';
import { type OperatorConfig, platformPolicy } from '../../config.js';
import type { ReconcileContext, Reconciler, Request, Result } from '../../kube/controller.js';
import type { EventRecorder } from '../../kube/events.js';
import { addFinalizer, removeFinalizer } from '../../kube/finalizer.js';
import type { Informer } from '../../kube/informer.js';
import { setKstatusConditions } from '../../kube/kstatus.js';
import { isNotFound, type KubeClient, type KubeObject, resourcePath } from '../../kube/rest.js';
import { conditionSetter, patchStatusIfChanged, type SetCondition } from '../../kube/status.js';
import { validateBatch } from '../../validation/index.js';
import { imageAllowed } from '../../validation/platform.js';
import {
  commitOutcome,
  committedOutcome,
  completedEventData,
  explainSummary,
  failedEventData,
  readResults,
  resultsConfigMaps,
} from './finalize.js';
import {
  comparisonJob,
  comparisonJobName,
  type JobContext,
  jobFailure,
  jobState,
  LABEL_BATCH,
  LABEL_ROLE,
  LABEL_ROUND,
  ownedObjectMeta,
  scoringJob,
  scoringJobName,
} from './jobs.js';
import {
  batchLimiterSettings,
  buildRegistration,
  InputError,
  poolLimiterSettings,
  workerPoolConfig,
} from './prepare.js';
import { batchKstatus, condition, isTerminal, mirrorProgress } from './status.js';

export const FINALIZER = 'cj.huleedu.io/finalizer';
export const FIELD_MANAGER = 'cj-operator';
const BATCHES = { group: 'cj.huleedu.io', version: 'v1alpha1', plural: 'cjbatches' };
const JOBS = { group: 'batch', version: 'v1', plural: 'jobs' };
const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };
const SECRETS = { group: '', version: 'v1', plural: 'secrets' };
/** Attempts at one round's Job before the batch fails. */
const MAX_JOB_ATTEMPTS = 4;
/** A round that timed out is still scored when at least this share of it was judged. */
const TIMEOUT_RECOVERY_SHARE = 0.5;

export interface JobObject extends KubeObject {
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    active?: number;
  };
}

export interface CJBatchDeps {
  client: KubeClient;
  sql: Sql;
  batches: Informer<KubeObject>;
  pools: Informer<KubeObject>;
  jobs: Informer<JobObject>;
  recorder: EventRecorder;
  config: OperatorConfig;
}

const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class CJBatchReconciler implements Reconciler {
  /** Batches whose worker Secret this process has verified (uid). */
  private readonly secretsChecked = new Set<string>();
  constructor(private readonly d: CJBatchDeps) {}

  async reconcile(req: Request, ctx: ReconcileContext): Promise<Result | undefined> {
    const batch = this.d.batches.get(req.namespace, req.name) as unknown as CJBatch | undefined;
    if (!batch) return undefined;
    if (batch.metadata.deletionTimestamp) return this.cleanup(batch, ctx);
    if (!batch.metadata.finalizers?.includes(FINALIZER)) {
      await addFinalizer(this.d.client, this.path(batch), batch as unknown as KubeObject, FINALIZER);
    }
    const status: CJBatchStatus = structuredClone(batch.status ?? {});
    let out: { status: CJBatchStatus; requeueAfter?: number };
    try {
      out = await this.step(batch, status);
    } catch (err) {
      if (!(err instanceof ForeignChildError)) throw err;
      // Someone else's object holds a name the batch needs: say so and wait (never take it over).
      const cond = conditionSetter(status, batch.metadata.generation ?? 0);
      if (condition(status, 'InvalidSpec')?.status !== 'True')
        this.d.recorder.event(batch as unknown as KubeObject, 'Warning', 'NameTaken', err.message);
      cond('InvalidSpec', 'True', 'NameTaken', err.message);
      cond('Progressing', 'False', 'InvalidSpec', 'rename the batch or remove the other object');
      out = { status, requeueAfter: 60_000 };
    }
    await this.writeStatus(batch, out.status);
    return out.requeueAfter ? { requeueAfter: out.requeueAfter } : undefined;
  }

  // ------------------------------------------------------------------ the state machine
  private async step(
    batch: CJBatch,
    status: CJBatchStatus,
  ): Promise<{ status: CJBatchStatus; requeueAfter?: number }> {
    const t = now();
    const uid = batch.metadata.uid!;
    const gen = batch.metadata.generation ?? 0;
    const cond = conditionSetter(status, gen);
    status.observedGeneration = gen;
    status.phase ??= 'Pending';

    if (isTerminal(batch)) return this.afterTerminal(batch, status, cond);
    // An outcome committed in the database is final even when our copy of the batch (a stale cache
    // or a status write lost in a crash) does not say so yet: re-assert it, never decide again.
    const committed = await committedOutcome(this.d.sql, uid);
    if (committed) return this.reassertOutcome(batch, status, committed, cond);

    const pool = this.d.pools.get(batch.metadata.namespace!, batch.spec.providerPoolRef.name) as unknown as
      | LLMProviderPool
      | undefined;
    const registered = await getBatch(this.d.sql, uid);

    // Validation before start: whatever slipped past a down webhook is refused here, same code.
    if (!registered) {
      const v = await validateBatch(batch, this.validationContext(batch));
      const errors = v.errors.filter((e) => !e.field.startsWith('spec.providerPoolRef')); // pool handled below
      if (errors.length > 0) {
        const message = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
        if (condition(status, 'InvalidSpec')?.status !== 'True')
          this.d.recorder.event(
            batch as unknown as KubeObject,
            'Warning',
            'InvalidSpec',
            message.slice(0, 1000),
          );
        cond('InvalidSpec', 'True', 'ValidationFailed', message.slice(0, 32_000));
        cond('Progressing', 'False', 'InvalidSpec', 'fix the spec; the batch starts once it is valid');
        return { status };
      }
      cond('InvalidSpec', 'False', 'Valid', 'the spec passed validation');
    }

    const readyCond = pool?.status?.conditions?.find((c) => c.type === 'Ready');
    // Ready for the pool's current spec only, and only towards an allowed endpoint: a baseURL
    // edited since the pool's last check waits for the pool reconciler, which checks it again.
    const poolReady =
      !!pool &&
      readyCond?.status === 'True' &&
      (readyCond.observedGeneration ?? pool.metadata.generation) === pool.metadata.generation &&
      baseUrlProblem(pool.spec.baseURL, this.d.config.egress) === undefined;
    if (!pool || !poolReady) {
      const why = !pool
        ? `LLMProviderPool "${batch.spec.providerPoolRef.name}" does not exist in namespace ${batch.metadata.namespace}`
        : `LLMProviderPool "${pool.metadata.name}" is not Ready: ${pool.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? 'no status yet'}`;
      if (condition(status, 'PoolReady')?.status !== 'False')
        this.d.recorder.event(batch as unknown as KubeObject, 'Warning', 'PoolNotReady', why);
      cond('PoolReady', 'False', pool ? 'PoolNotReady' : 'PoolNotFound', why);
      cond('Progressing', 'False', 'WaitingForPool', 'the batch waits for its pool; it continues by itself');
      if (registered) await this.mirror(batch, status, pool, registered);
      return { status, requeueAfter: 10_000 };
    }
    cond('PoolReady', 'True', 'PoolReady', `pool ${pool.metadata.name} is Ready`);

    if (batch.spec.suspend) {
      cond('Progressing', 'False', 'Suspended', 'spec.suspend is true: no new Jobs start');
      if (registered) await this.mirror(batch, status, pool, registered);
      return { status };
    }

    // Preparing: load essays into the database once; fixes the budget for good.
    let reg = registered;
    if (!reg) {
      this.setPhase(batch, status, 'Preparing');
      status.startTime ??= t;
      try {
        const registration = await buildRegistration(batch, (name) => this.getConfigMap(batch, name));
        reg = await registerBatch(this.d.sql, registration);
      } catch (caught) {
        // The database refusing the input itself (a value it cannot store) is the spec's fault
        // too: retrying would fail the same way forever.
        const dbRefused = inputRefusedByDatabase(caught);
        if (!(caught instanceof InputError) && !dbRefused) throw caught;
        const err = dbRefused
          ? new InputError(`the database cannot store this batch's input: ${dbRefused}`)
          : (caught as InputError);
        cond('InvalidSpec', 'True', 'InputUnreadable', err.message);
        cond(
          'Progressing',
          'False',
          'InvalidSpec',
          'fix the inputs; the batch starts once they are readable',
        );
        this.d.recorder.event(batch as unknown as KubeObject, 'Warning', 'InvalidSpec', err.message);
        return { status, requeueAfter: 30_000 };
      }
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Normal',
        'Prepared',
        `loaded the essays; budget ${reg.budget_total} (${reg.budget_source})`,
      );
    }
    const secretProblem = await this.ensureWorkerSecret(batch, pool);
    if (secretProblem) {
      cond('Progressing', 'False', 'WorkerSecretConflict', secretProblem);
      if (condition(status, 'Progressing')?.reason !== 'WorkerSecretConflict')
        this.d.recorder.event(
          batch as unknown as KubeObject,
          'Warning',
          'WorkerSecretConflict',
          secretProblem,
        );
      return { status, requeueAfter: 30_000 };
    }
    const latest = await this.latestRound(uid);
    const progress = await this.mirror(batch, status, pool, reg, latest);
    const jobCtx = this.jobContext(batch, pool);

    // Round 0: plan the first pairs.
    if (!latest) return this.runScoring(batch, status, 0, jobCtx, cond);

    // A 'continue' that planned no pairs cannot make progress: finish with what exists.
    if (latest.decision === 'stop' || latest.pairs === 0)
      return this.finish(batch, status, reg, latest, cond);

    const round = latest.round + 1;
    const cur = progress.currentRound;
    const roundDone = cur !== null && cur.round === round && cur.done === cur.planned;
    if (roundDone) {
      const finished = progress.completed + progress.failed;
      if (finished >= 20 && progress.completed / finished < this.d.config.minSuccessRate) {
        return this.fail(
          batch,
          status,
          'LowSuccessRate',
          `only ${progress.completed} of ${finished} comparisons succeeded (floor ${this.d.config.minSuccessRate * 100}%); see the pool's status and the worker logs`,
          cond,
        );
      }
      return this.runScoring(batch, status, round, jobCtx, cond);
    }
    return this.runComparisons(batch, status, round, jobCtx, cond, cur?.planned ?? 0, cur?.done ?? 0);
  }

  private async runScoring(
    batch: CJBatch,
    status: CJBatchStatus,
    round: number,
    ctx: JobContext,
    cond: SetCondition,
  ) {
    this.setPhase(batch, status, 'Scoring');
    cond('Progressing', 'True', 'Scoring', `scoring round ${round}`);
    const { job, attempt } = this.currentJob(batch, round, 'scoring');
    const state = jobState(job);
    if (state === 'missing') {
      await this.createJob(batch, scoringJob(batch, round, ctx, attempt));
      status.currentJobs = {
        ...status.currentJobs,
        scoring: scoringJobName(batch.metadata.name!, round, attempt),
      };
    } else if (state === 'failed' || state === 'complete') {
      // The Job may have finished after this reconcile read the rounds table: look again before
      // calling it a failure (the informer can be ahead of our earlier database read).
      if (await scoredRound(this.d.sql, batch.metadata.uid!, round)) return { status, requeueAfter: 1 };
      // complete without a round row (or failed): try again with a fresh Job, a few times.
      const f =
        state === 'failed'
          ? jobFailure(job!)
          : { reason: 'NoResult', message: 'the Job ended without scoring' };
      if (attempt + 1 >= MAX_JOB_ATTEMPTS)
        return this.fail(
          batch,
          status,
          'ScoringFailed',
          `scoring round ${round} failed ${MAX_JOB_ATTEMPTS} times: ${f.reason} ${f.message}`,
          cond,
        );
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Warning',
        'ScoringRetried',
        `scoring Job ${job!.metadata!.name} ended (${f.reason}); retrying`,
      );
      await this.createJob(batch, scoringJob(batch, round, ctx, attempt + 1));
    }
    return { status, requeueAfter: 60_000 };
  }

  private async runComparisons(
    batch: CJBatch,
    status: CJBatchStatus,
    round: number,
    ctx: JobContext,
    cond: SetCondition,
    planned: number,
    done: number,
  ) {
    this.setPhase(batch, status, 'Comparing');
    cond('Progressing', 'True', 'Comparing', `round ${round}: ${done}/${planned} comparisons finished`);
    const shards = (await this.shards(batch.metadata.uid!)) ?? 1;
    const { job, attempt } = this.currentJob(batch, round, 'comparison');
    const state = jobState(job);
    if (state === 'missing') {
      await this.ensureLimiterRows(batch);
      await this.createJob(batch, comparisonJob(batch, round, shards, ctx, attempt));
      status.currentJobs = {
        ...status.currentJobs,
        comparison: comparisonJobName(batch.metadata.name!, round, attempt),
      };
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Normal',
        'RoundStarted',
        `round ${round}: ${planned} comparisons in ${shards} shards`,
      );
      return { status, requeueAfter: 30_000 };
    }
    // A round that outlives its timeout is recovered: scored with what exists, or failed.
    const started = Date.parse(job!.metadata!.creationTimestamp ?? '');
    const timeout = parseDuration(batch.spec.timeouts.round);
    if (state === 'running' && Number.isFinite(started) && Date.now() - started > timeout) {
      await this.d.client
        .delete(this.jobPath(batch, job!.metadata!.name!), { propagationPolicy: 'Background' })
        .catch(ignore404);
      const share = planned ? done / planned : 0;
      await failOpenComparisons(this.d.sql, batch.metadata.uid!, round, 'round_timeout');
      if (share < TIMEOUT_RECOVERY_SHARE)
        return this.fail(
          batch,
          status,
          'RoundTimeout',
          `round ${round} exceeded spec.timeouts.round (${batch.spec.timeouts.round}) with only ${done}/${planned} comparisons finished`,
          cond,
        );
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Warning',
        'RoundTimedOut',
        `round ${round} exceeded ${batch.spec.timeouts.round}; scoring the ${done}/${planned} finished comparisons`,
      );
      return { status, requeueAfter: 1_000 };
    }
    if (state === 'failed' || state === 'complete') {
      // As with scoring: the Job may have finished after this reconcile read the progress.
      if ((await openComparisons(this.d.sql, batch.metadata.uid!, round)) === 0)
        return { status, requeueAfter: 1 };
      // The Job ended but some pairs are still open (auth failure, a failed index, released leases).
      const f = state === 'failed' ? jobFailure(job!) : { reason: 'Incomplete', message: 'pairs left open' };
      if (attempt + 1 >= MAX_JOB_ATTEMPTS)
        return this.fail(
          batch,
          status,
          'ComparisonsFailed',
          `round ${round}: comparison Job failed ${MAX_JOB_ATTEMPTS} times: ${f.reason} ${f.message}`,
          cond,
        );
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Warning',
        'ComparisonJobRetried',
        `comparison Job ${job!.metadata!.name} ended (${f.reason}: ${f.message}); starting another`,
      );
      await this.ensureLimiterRows(batch);
      await this.createJob(batch, comparisonJob(batch, round, shards, ctx, attempt + 1));
    }
    return { status, requeueAfter: Math.min(30_000, Math.max(1_000, timeout - (Date.now() - started))) };
  }

  private async finish(
    batch: CJBatch,
    status: CJBatchStatus,
    reg: { config: Record<string, unknown> },
    latest: RoundRow,
    cond: SetCondition,
  ) {
    this.setPhase(batch, status, 'Finalizing');
    const grades = (reg.config.grades as string[]) ?? [];
    const results = await readResults(this.d.sql, batch.metadata.uid!, grades);
    const cmName = `${batch.metadata.name}-results`;
    // Large batches spill over into <name>-2, <name>-3, … (a ConfigMap holds at most 1 MiB).
    const parts = resultsConfigMaps(results, grades);
    for (const part of parts) {
      const name = `${cmName}${part.suffix}`;
      await this.applyOwned(batch, CONFIGMAPS, name, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: ownedObjectMeta(batch, name),
        data:
          part.suffix === ''
            ? { ...part.data, 'summary.json': JSON.stringify(explainSummary(latest, status)) }
            : part.data,
      });
    }
    // The batch's database role is done: no login, no rows, no limiter (its workers have exited).
    await retireBatchRole(this.d.sql, batch.metadata.uid!);
    const eventId = await commitOutcome(this.d.sql, batch, {
      outcome: 'succeeded',
      reason: latest.reason,
      message: `stopped: ${latest.reason}`,
      topic: batch.spec.output?.kafkaTopic ?? this.d.config.kafkaTopic,
      data: completedEventData(results, status, this.poolOf(batch), latest.round, grades, {
        configMap: cmName,
        parts: parts.length,
        maxMessageBytes: this.d.config.kafkaMaxMessageBytes,
      }),
    });
    const flagged = results.essays.filter((e) => e.flags?.length);
    if (flagged.length > 0)
      // Ids and kinds only, never essay text.
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Warning',
        'PossiblePromptInjection',
        `${flagged.length} essay(s) contain text aimed at the judge, judged as data: ${flagged
          .slice(0, 10)
          .map((e) => `${e.essayId} (${e.flags!.map((f) => f.replace('injection:', '')).join(', ')})`)
          .join(
            '; ',
          )}${flagged.length > 10 ? `; and ${flagged.length - 10} more` : ''}; see results.json flags`,
      );
    status.result = { gradeDistribution: results.gradeDistribution, resultsConfigMap: cmName };
    status.completionTime ??= now();
    this.setPhase(batch, status, 'Succeeded');
    cond(
      'Succeeded',
      'True',
      reasonName(latest.reason),
      `finished after ${latest.round} rounds: ${latest.reason}`,
    );
    cond(
      'Stable',
      latest.reason === 'converged' ? 'True' : 'False',
      reasonName(latest.reason),
      `stopping reason: ${latest.reason}`,
    );
    cond('Progressing', 'False', 'Finished', 'the batch is finished');
    cond('EventPublished', 'False', 'Pending', `event ${eventId} is in the outbox`);
    return { status, requeueAfter: 5_000 };
  }

  private async fail(
    batch: CJBatch,
    status: CJBatchStatus,
    reason: string,
    message: string,
    cond: SetCondition,
  ) {
    // Counters as of the failure (a timed-out round's open pairs were just marked failed).
    const reg = await getBatch(this.d.sql, batch.metadata.uid!);
    if (reg) await this.mirror(batch, status, this.poolOf(batch), reg);
    await retireBatchRole(this.d.sql, batch.metadata.uid!);
    const eventId = await commitOutcome(this.d.sql, batch, {
      outcome: 'failed',
      reason,
      message,
      topic: batch.spec.output?.kafkaTopic ?? this.d.config.kafkaTopic,
      data: failedEventData(status, this.poolOf(batch), batch.spec.gradeScale.grades),
    });
    status.completionTime ??= now();
    this.setPhase(batch, status, 'Failed');
    cond('Succeeded', 'False', reason, message);
    cond('Progressing', 'False', reason, message);
    cond('EventPublished', 'False', 'Pending', `event ${eventId} is in the outbox`);
    return { status, requeueAfter: 5_000 };
  }

  /** Writes the terminal status of an outcome committed earlier (idempotent; same event id). */
  private async reassertOutcome(
    batch: CJBatch,
    status: CJBatchStatus,
    committed: NonNullable<Awaited<ReturnType<typeof committedOutcome>>>,
    cond: SetCondition,
  ) {
    const uid = batch.metadata.uid!;
    const reg = await getBatch(this.d.sql, uid);
    const latest = await this.latestRound(uid);
    if (reg) await this.mirror(batch, status, this.poolOf(batch), reg, latest);
    if (committed.outcome === 'failed' || !reg || !latest)
      return this.fail(batch, status, committed.reason, committed.message, cond);
    return this.finish(batch, status, reg, latest, cond);
  }

  /** The batch's pool as the informer has it (the result event names its provider and model). */
  private poolOf(batch: CJBatch) {
    return this.d.pools.get(batch.metadata.namespace!, batch.spec.providerPoolRef.name) as unknown as
      | LLMProviderPool
      | undefined;
  }

  /** Terminal batches only wait for their event to be published (or parked, with its reason). */
  private async afterTerminal(batch: CJBatch, status: CJBatchStatus, cond: SetCondition) {
    if (condition(status, 'EventPublished')?.status === 'True') return { status };
    const ev = await batchEventState(this.d.sql, batch.metadata.uid!);
    if (ev?.sent) {
      cond('EventPublished', 'True', 'Published', `event ${ev.eventId} was published to Kafka`);
      this.d.recorder.event(
        batch as unknown as KubeObject,
        'Normal',
        'EventPublished',
        `event ${ev.eventId} published`,
      );
      return { status };
    }
    if (ev?.parkedReason) {
      const message = `event ${ev.eventId} was set aside and will not be retried: ${ev.parkedReason}; the results are in the results ConfigMap`;
      if (condition(status, 'EventPublished')?.reason !== 'EventParked')
        this.d.recorder.event(
          batch as unknown as KubeObject,
          'Warning',
          'EventParked',
          message.slice(0, 1000),
        );
      cond('EventPublished', 'False', 'EventParked', message.slice(0, 32_000));
      return { status, requeueAfter: 300_000 };
    }
    return { status, requeueAfter: 5_000 };
  }

  // ------------------------------------------------------------------ deletion
  private async cleanup(batch: CJBatch, ctx: ReconcileContext): Promise<Result | undefined> {
    if (!batch.metadata.finalizers?.includes(FINALIZER)) return undefined;
    if ((batch.spec.retention?.policy ?? 'Delete') === 'Delete') {
      await deleteBatchRows(this.d.sql, batch.metadata.uid!);
      ctx.log.info({ uid: batch.metadata.uid }, 'Deleted the batch rows from the database');
    }
    // The role goes whatever the retention: retained rows are the operator's, not the tenant's.
    if (!(await dropBatchRole(this.d.sql, batch.metadata.uid!)))
      ctx.log.warn({ uid: batch.metadata.uid }, 'Could not drop the batch role; it stays NOLOGIN');
    this.secretsChecked.delete(batch.metadata.uid!);
    // Jobs, pods and ConfigMaps go with the garbage collector (owner references).
    await removeFinalizer(this.d.client, this.path(batch), batch as unknown as KubeObject, FINALIZER);
    return undefined;
  }

  // ------------------------------------------------------------------ helpers
  private async mirror(
    batch: CJBatch,
    status: CJBatchStatus,
    pool: LLMProviderPool | undefined,
    reg: { budget_total: number; budget_source: 'spec' | 'default' },
    latest?: RoundRow,
  ) {
    const p = await readProgress(this.d.sql, batch.metadata.uid!);
    Object.assign(
      status,
      mirrorProgress(
        status,
        p,
        { total: reg.budget_total, source: reg.budget_source },
        latest ?? (await this.latestRound(batch.metadata.uid!)),
        pool,
      ),
    );
    return p;
  }

  private latestRound(uid: string): Promise<RoundRow | undefined> {
    return latestRound(this.d.sql, uid);
  }

  private shards(uid: string): Promise<number | undefined> {
    return batchShards(this.d.sql, uid);
  }

  private setPhase(batch: CJBatch, status: CJBatchStatus, phase: NonNullable<CJBatchStatus['phase']>) {
    if (status.phase !== phase) {
      this.d.recorder.event(
        batch as unknown as KubeObject,
        phase === 'Failed' ? 'Warning' : 'Normal',
        phase,
        `phase ${status.phase ?? 'Pending'} → ${phase}`,
      );
      status.phase = phase;
    }
  }

  /** The newest Job of a round and role, and its attempt number (Job names are deterministic). */
  private currentJob(batch: CJBatch, round: number, role: 'scoring' | 'comparison') {
    const jobs = this.d.jobs
      .list(batch.metadata.namespace!)
      .filter(
        (j) =>
          j.metadata?.labels?.[LABEL_BATCH] === batch.metadata.name &&
          j.metadata?.labels?.[LABEL_ROUND] === String(round) &&
          j.metadata?.labels?.[LABEL_ROLE] === role &&
          j.metadata?.ownerReferences?.some((o) => o.uid === batch.metadata.uid),
      );
    const name = (a: number) =>
      role === 'scoring'
        ? scoringJobName(batch.metadata.name!, round, a)
        : comparisonJobName(batch.metadata.name!, round, a);
    let attempt = 0;
    while (jobs.some((j) => j.metadata?.name === name(attempt + 1))) attempt++;
    const job = jobs.find((j) => j.metadata?.name === name(attempt));
    return { job, attempt };
  }

  private async createJob(batch: CJBatch, job: { metadata: { name: string } }) {
    try {
      await this.d.client.create(resourcePath(JOBS, batch.metadata.namespace), job);
    } catch (err) {
      // 409: the Job exists already (our cache was behind): never a second one, by name.
      if (!(err as { status?: number }).status || (err as { status?: number }).status !== 409) throw err;
    }
  }

  /**
   * Server-side apply of a child that only this batch may own: created when missing, and
   * refused (ForeignChildError) when an object of that name exists without this batch as its
   * owner, instead of a forced apply taking a stranger's object over.
   */
  private async applyOwned(batch: CJBatch, gvr: typeof SECRETS, name: string, body: object) {
    const path = resourcePath(gvr, batch.metadata.namespace, name);
    for (let attempt = 0; attempt < 2; attempt++) {
      let cur: KubeObject | undefined;
      try {
        cur = await this.d.client.get<KubeObject>(path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (cur) {
        if (!cur.metadata?.ownerReferences?.some((o) => o.uid === batch.metadata.uid))
          throw new ForeignChildError(
            `${gvr.plural === 'secrets' ? 'Secret' : 'ConfigMap'} "${name}" already exists in ${batch.metadata.namespace} and does not belong to this batch; the operator will not take it over: rename the CJBatch or delete that object`,
          );
        await this.d.client.apply(path, body, FIELD_MANAGER);
        return;
      }
      try {
        await this.d.client.create(resourcePath(gvr, batch.metadata.namespace), body);
        return;
      } catch (err) {
        if ((err as { status?: number }).status !== 409) throw err; // created meanwhile: check again
      }
    }
  }

  /**
   * The `<batch>-worker` Secret holds the batch role's database URL, never the operator's. The
   * password exists only there: when the Secret is missing (first start, or a tenant deleted it)
   * the role gets a fresh password and the Secret is created, never forced over someone else's
   * object. Returns a problem to show when the name is taken by an object the batch does not own.
   */
  private async ensureWorkerSecret(batch: CJBatch, pool: LLMProviderPool): Promise<string | undefined> {
    const uid = batch.metadata.uid!;
    if (this.secretsChecked.has(uid)) return undefined;
    const name = `${batch.metadata.name}-worker`;
    const path = resourcePath(SECRETS, batch.metadata.namespace, name);
    const role = batchRoleName(uid);
    let existing: { metadata?: KubeObject['metadata']; data?: Record<string, string> } | undefined;
    try {
      existing = await this.d.client.get(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (existing && !existing.metadata?.ownerReferences?.some((o) => o.uid === uid))
      return `Secret ${name} exists and is not owned by this batch; delete or rename it (the operator never takes over an object it did not create)`;
    if (existing && secretUser(existing.data?.DATABASE_URL) === role) {
      this.secretsChecked.add(uid);
      return undefined;
    }
    const creds = await createBatchRole(this.d.sql, {
      uid,
      poolKey: `${pool.metadata.namespace}/${pool.metadata.name}`,
      connectionLimit: batchConnectionLimit(batch, this.d.config.maxBatchDbConnections),
    });
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: ownedObjectMeta(batch, name),
      type: 'Opaque',
      stringData: { DATABASE_URL: workerDatabaseUrl(this.d.config.databaseUrl, creds) },
    };
    // Ours but stale (a Secret from before per-batch roles): replace its data.
    if (existing) await this.d.client.apply(path, secret, FIELD_MANAGER);
    else await this.d.client.create(resourcePath(SECRETS, batch.metadata.namespace), secret);
    this.secretsChecked.add(uid);
    return undefined;
  }

  /**
   * The limiter rows the batch's workers reserve from: the pool's (its own limits, written by the
   * operator only) and, with overrides, the batch's own (clamped to the pool, so it only tightens).
   */
  private async ensureLimiterRows(batch: CJBatch) {
    const pool = this.poolOf(batch);
    if (!pool) return;
    const maxBlockMs = this.d.config.maxRetryAfterMs;
    await upsertLimiterRow(this.d.sql, `${pool.metadata.namespace}/${pool.metadata.name}`, {
      ...poolLimiterSettings(pool),
      maxBlockMs,
    });
    const own = batchLimiterSettings(pool, batch);
    const key = batchLimiterKey(batch.metadata.uid!);
    if (own) await upsertLimiterRow(this.d.sql, key, { ...own, maxBlockMs });
    else await deleteLimiterRow(this.d.sql, key);
  }

  private jobContext(batch: CJBatch, pool: LLMProviderPool): JobContext {
    const wanted = batch.spec.workers?.image;
    return {
      // Admission and the start-time validation refuse an image the platform does not allow; a
      // spec edited after the start still never gets one.
      image: wanted && imageAllowed(platformPolicy(this.d.config), wanted) ? wanted : this.d.config.image,
      imagePullPolicy: this.d.config.imagePullPolicy,
      workerSecret: `${batch.metadata.name}-worker`,
      ...(this.d.config.workerServiceAccount ? { serviceAccount: this.d.config.workerServiceAccount } : {}),
      pool: {
        key: `${pool.metadata.namespace}/${pool.metadata.name}`,
        config: workerPoolConfig(pool, batch),
        apiKeySecret: pool.spec.apiKeySecretRef,
      },
      allowedBaseURLs: policyText(this.d.config.egress),
      leaseSeconds: this.d.config.leaseSeconds,
    };
  }

  private validationContext(batch: CJBatch) {
    const ns = batch.metadata.namespace!;
    return {
      namespace: ns,
      platform: platformPolicy(this.d.config),
      getPool: async (name: string) =>
        this.d.pools.get(ns, name) as unknown as { spec?: unknown } | undefined,
      getConfigMap: (name: string) => this.getConfigMap(batch, name),
    };
  }

  private async getConfigMap(batch: CJBatch, name: string) {
    try {
      return await this.d.client.get<{ data?: Record<string, string> }>(
        resourcePath(CONFIGMAPS, batch.metadata.namespace, name),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async writeStatus(batch: CJBatch, status: CJBatchStatus) {
    setKstatusConditions(conditionSetter(status, batch.metadata.generation ?? 0), batchKstatus(status));
    await patchStatusIfChanged(this.d.client, `${this.path(batch)}/status`, batch.status ?? {}, status);
  }

  private path(batch: CJBatch) {
    return resourcePath(BATCHES, batch.metadata.namespace, batch.metadata.name);
  }

  private jobPath(batch: CJBatch, name: string) {
    return resourcePath(JOBS, batch.metadata.namespace, name);
  }
}

/** An object the batch needs to create exists and belongs to someone else. */
class ForeignChildError extends Error {}

/**
 * The Postgres message when an error is the database refusing a value of the input (SQLSTATE
 * class 22, data exception: NUL bytes, invalid encodings, values too long; 54: too large).
 */
function inputRefusedByDatabase(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^(22|54)/.test(code)) return undefined;
  return `${(err as Error).message} (SQLSTATE ${code})`;
}

/** The user name in a database URL, if it parses. */
function secretUser(b64: string | undefined): string | undefined {
  if (!b64) return undefined;
  try {
    return decodeURIComponent(new URL(Buffer.from(b64, 'base64').toString()).username);
  } catch {
    return undefined;
  }
}

/**
 * A batch's database connections: each comparison pod opens at most 4, the scoring pod 2, and a
 * replacement pod may overlap its predecessor; capped by the platform's MAX_BATCH_DB_CONNECTIONS.
 */
export function batchConnectionLimit(batch: CJBatch, max: number): number {
  const parallelism = batch.spec.workers?.parallelism ?? 2;
  return Math.min(max, parallelism * 4 + 4);
}

const ignore404 = (err: unknown) => {
  if (!isNotFound(err)) throw err;
};

/** Condition reasons are CamelCase words. */
const reasonName = (r: string) => r.charAt(0).toUpperCase() + r.slice(1);

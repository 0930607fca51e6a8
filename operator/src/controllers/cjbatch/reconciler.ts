// The CJBatch reconciler: a dispatcher over the phase handlers (phases/). Level-based: each call
// reads the batch, its pool, its Jobs and the store, runs the gates and then the work the rounds
// need (phases/index.ts), and writes status only when it changed. All progress lives in the store
// and in deterministic child names, so a restarted or newly elected operator resumes exactly where
// the last one stopped: no Job is created twice, no round is scored twice.
import { roundsModeOfConfig } from '../../../../runtime/src/store/batch-config.js';
import type { Sql } from '../../../../runtime/src/store/index.js';
import type { CJBatch, CJBatchStatus, LLMProviderPool } from '../../api/index.js';
import { DEFAULT_PRIORITY, RESOURCES } from '../../api/index.js';
import type { OperatorConfig } from '../../config.js';
import {
  type ReconcileContext,
  type Reconciler,
  type Request,
  type Result,
  TerminalError,
} from '../../kube/controller.js';
import type { EventRecorder } from '../../kube/events.js';
import { addFinalizer, removeFinalizer } from '../../kube/finalizer.js';
import type { Informer } from '../../kube/informer.js';
import { setKstatusConditions } from '../../kube/kstatus.js';
import { type KubeClient, resourcePath } from '../../kube/rest.js';
import { conditionSetter, patchStatusIfChanged } from '../../kube/status.js';
import { ChildJobs, type JobObject } from './child-jobs.js';
import { mirror, type PhaseContext, type PhaseStore, type Step, shareAndPace, storePort } from './context.js';
import { applyOwnedConfigMap, ForeignChildError, getConfigMap, WorkerSecrets } from './owned.js';
import { fail, GATES, nextWork, work } from './phases/index.js';
import { stopWorkers, workersNotGone } from './phases/retiring.js';
import { batchKstatus, condition, isTerminal } from './status.js';

export type { JobObject } from './child-jobs.js';
export { batchConnectionLimit, FIELD_MANAGER } from './owned.js';
export const FINALIZER = 'cj.huleedu.io/finalizer';
const { batches: BATCHES } = RESOURCES;

export interface CJBatchDeps {
  client: KubeClient;
  sql: Sql;
  batches: Informer<CJBatch>;
  pools: Informer<LLMProviderPool>;
  jobs: Informer<JobObject>;
  recorder: EventRecorder;
  config: OperatorConfig;
  /** The store as the phases use it; `storePort(sql)` unless a test passes a fake. */
  store?: PhaseStore;
  /** Epoch ms; a test passes a fake clock. */
  now?: () => number;
}

export class CJBatchReconciler implements Reconciler {
  private readonly secrets: WorkerSecrets;
  private readonly store: PhaseStore;
  constructor(private readonly d: CJBatchDeps) {
    this.secrets = new WorkerSecrets(d.client, d.sql, d.config);
    this.store = d.store ?? storePort(d.sql);
  }

  private now(): number {
    return (this.d.now ?? Date.now)();
  }

  async reconcile(req: Request, rc: ReconcileContext): Promise<Result | undefined> {
    const batch = this.d.batches.get(req.namespace, req.name);
    if (!batch) return undefined;
    if (batch.metadata.deletionTimestamp) return this.cleanup(batch, rc);
    if (!batch.metadata.finalizers?.includes(FINALIZER))
      await addFinalizer(this.d.client, this.path(batch), batch, FINALIZER);
    const ctx = this.context(batch);
    let step: Step;
    try {
      step = await this.dispatch(ctx);
    } catch (err) {
      if (err instanceof TerminalError) {
        // Retrying cannot help: say why in the status, and let the controller stop retrying.
        ctx.cond('Progressing', 'False', err.reason, err.message);
        await this.writeStatus(batch, ctx.status);
        throw err;
      }
      if (!(err instanceof ForeignChildError)) throw err;
      // Someone else's object holds a name the batch needs: say so and wait (never take it over).
      if (condition(ctx.status, 'InvalidSpec')?.status !== 'True')
        ctx.event('Warning', 'NameTaken', err.message);
      ctx.cond('InvalidSpec', 'True', 'NameTaken', err.message);
      ctx.cond('Progressing', 'False', 'InvalidSpec', 'rename the batch or remove the other object');
      step = { requeueAfter: 60_000 };
    }
    await this.writeStatus(batch, ctx.status);
    return step.requeueAfter ? { requeueAfter: step.requeueAfter } : undefined;
  }

  /** The gates in order, then the work the rounds need; a `fail` step ends the batch. */
  private async dispatch(ctx: PhaseContext): Promise<Step> {
    for (const gate of GATES) {
      const step = await gate(ctx);
      if (step) return this.settle(ctx, step);
    }
    const latest = await this.store.latestRound(ctx.batch.metadata.uid!);
    const progress = await mirror(ctx, ctx.registered!, latest);
    await shareAndPace(ctx);
    const mode = roundsModeOfConfig(ctx.registered!.config);
    return this.settle(ctx, await work(ctx, nextWork(latest, progress, this.d.config.minSuccessRate, mode)));
  }

  private settle(ctx: PhaseContext, step: Step): Promise<Step> | Step {
    return step.fail ? fail(ctx, step.fail.reason, step.fail.message) : step;
  }

  private context(batch: CJBatch): PhaseContext {
    const gen = batch.metadata.generation ?? 0;
    const status: CJBatchStatus = structuredClone(batch.status ?? {});
    status.observedGeneration = gen;
    status.phase ??= 'Pending';
    const { client } = this.d;
    // One read of each input ConfigMap per pass: validation (pending) and registration
    // (preparing) run in the same pass and see the same object.
    const inputs = new Map<string, ReturnType<typeof getConfigMap>>();
    const configMap = (name: string) => {
      const got = inputs.get(name) ?? getConfigMap(client, batch, name);
      inputs.set(name, got);
      return got;
    };
    return {
      batch,
      status,
      cond: conditionSetter(status, gen),
      pool: this.d.pools.get(batch.metadata.namespace, batch.spec.providerPoolRef.name),
      registered: undefined,
      store: this.store,
      jobs: new ChildJobs(batch, client, this.d.jobs),
      owned: {
        workerSecret: (pool) => this.secrets.ensure(batch, pool),
        configMap,
        applyConfigMap: (name, body) => applyOwnedConfigMap(client, batch, name, body),
      },
      event: (type, reason, message) => void this.d.recorder.event(batch, type, reason, message),
      config: this.d.config,
      now: () => this.now(),
      poolWeight: () =>
        this.d.batches
          .list(batch.metadata.namespace)
          .filter(
            (b) =>
              b.spec.providerPoolRef.name === batch.spec.providerPoolRef.name &&
              !b.metadata.deletionTimestamp &&
              !b.spec.suspend &&
              !isTerminal(b),
          )
          .reduce((sum, b) => sum + (b.spec.priority ?? DEFAULT_PRIORITY), 0),
    };
  }

  /**
   * Deletion: the workers are stopped first (phases/retiring.ts: the same bounded waits as at the
   * end of a batch), then the batch's rows (per spec.retention) and its role go, and only then is
   * the batch released. Finished Jobs and their pods go with GC.
   */
  private async cleanup(batch: CJBatch, rc: ReconcileContext): Promise<Result | undefined> {
    if (!batch.metadata.finalizers?.includes(FINALIZER)) return undefined;
    const uid = batch.metadata.uid!;
    const ctx = this.context(batch);
    if (condition(ctx.status, 'RoleRetired')?.status !== 'True') {
      const stopped = await stopWorkers(ctx);
      if ('wait' in stopped) {
        await this.writeStatus(batch, ctx.status);
        return { requeueAfter: stopped.wait.requeueAfter ?? 5_000 };
      }
      if (stopped.left.length > 0) rc.log.warn({ uid }, workersNotGone(ctx, stopped.left));
    }
    if ((batch.spec.retention?.policy ?? 'Delete') === 'Delete') {
      await this.store.deleteRows(uid);
      rc.log.info({ uid }, 'Deleted the batch rows from the database');
    }
    // The role goes whatever the retention: retained rows are the operator's, not the tenant's.
    if (!(await this.store.dropRole(uid)))
      rc.log.warn({ uid }, 'Could not drop the batch role; it stays NOLOGIN');
    this.secrets.forget(uid);
    await removeFinalizer(this.d.client, this.path(batch), batch, FINALIZER);
    return undefined;
  }

  private async writeStatus(batch: CJBatch, status: CJBatchStatus) {
    setKstatusConditions(conditionSetter(status, batch.metadata.generation ?? 0), batchKstatus(status));
    await patchStatusIfChanged(this.d.client, `${this.path(batch)}/status`, batch.status ?? {}, status);
  }

  private path(batch: CJBatch) {
    return resourcePath(BATCHES, batch.metadata.namespace, batch.metadata.name);
  }
}

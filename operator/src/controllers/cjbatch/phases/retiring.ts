// Retiring: the batch's database role goes only once its worker pods are gone, so that no worker
// still judging (a rounds-mode Job of a failed batch, the pipelined `<batch>-workers`) is cut off
// from its login mid-write. When the batch ends or is deleted: running workers get a short time
// to end by themselves (a pipelined worker exits 0 once the outcome is committed); then the Jobs
// still running are deleted with propagation Foreground (finished Jobs stay: their logs matter);
// then, once the cache shows those Jobs gone (a Foreground-deleted Job stays, marked deleted,
// until its pods are), the role is retired. A batch deleted before it ended gets no grace. Every
// wait is bounded and asked of the controller as a requeue, never slept in the reconciler.
import type { JobObject } from '../child-jobs.js';
import type { PhaseContext, Step } from '../context.js';
import { uidOf } from '../context.js';
import { jobState } from '../jobs.js';
import { condition } from '../status.js';

/** How long running workers get to end by themselves once the batch ended or was deleted. */
export const WORKER_GRACE_MS = 30_000;
/** How long after their delete the stopped Jobs' pods get to be gone before the role goes anyway. */
export const WORKERS_GONE_MS = 60_000;
/** Shortest requeue while waiting (the Job watch usually wakes the batch sooner). */
const MIN_WAIT_MS = 1_000;

const clock = (ctx: PhaseContext) => ctx.now?.() ?? Date.now();

/** A Job that may still have pods logged in as the batch: not finished (deleted or not). */
const live = (j: JobObject) => {
  const s = jobState(j);
  return s !== 'complete' && s !== 'failed';
};

const names = (jobs: JobObject[]) =>
  jobs
    .map((j) => j.metadata?.name)
    .sort()
    .join(', ');

/** When the stop began: the batch's end or its deletion, whichever came first. */
export function stopSince(ctx: PhaseContext, now: number): number {
  const times = [
    ctx.status.completionTime,
    ctx.batch.metadata.deletionTimestamp,
    condition(ctx.status, 'RoleRetired')?.lastTransitionTime,
  ]
    .map((t) => Date.parse(t ?? ''))
    .filter((t) => Number.isFinite(t));
  return times.length > 0 ? Math.min(...times) : now;
}

/**
 * Stops the batch's workers: `wait` while some may still run (the condition says why), otherwise
 * the Jobs whose pods outlived the bound (empty: none is left).
 */
export async function stopWorkers(
  ctx: PhaseContext,
  now = clock(ctx),
): Promise<{ wait: Step } | { left: string[] }> {
  const running = ctx.jobs.all().filter(live);
  if (running.length === 0) return { left: [] };
  // A batch deleted before it ended gets no grace: its workers have nothing to finish that
  // anyone will read (its rows go next), and each minute costs LLM calls and delays the delete.
  const ended = ctx.status.completionTime !== undefined;
  const graceEnd = stopSince(ctx, now) + (ended ? WORKER_GRACE_MS : 0);
  const deleting = running.filter((j) => j.metadata?.deletionTimestamp);
  if (now < graceEnd && deleting.length === 0) {
    ctx.cond(
      'RoleRetired',
      'False',
      'WaitingForWorkers',
      `${running.length} worker Job(s) still running (${names(running)}); they have until ${new Date(graceEnd).toISOString()} to end by themselves, then they are stopped`,
    );
    return { wait: { requeueAfter: Math.max(MIN_WAIT_MS, graceEnd - now) } };
  }
  const toDelete = running.filter((j) => !j.metadata?.deletionTimestamp);
  if (toDelete.length > 0) {
    for (const j of toDelete) await ctx.jobs.remove(j.metadata!.name!, 'Foreground');
    ctx.event(
      'Normal',
      'StoppingWorkers',
      `deleting ${toDelete.length} worker Job(s) still running (${names(toDelete)})${ended ? ` ${WORKER_GRACE_MS / 1000} s after the batch ended` : ': the batch is being deleted'}; the database role goes once their pods are gone`,
    );
  }
  // The bound counts from the first delete the cache shows (a delete just sent: from now).
  const deletedAt = Math.min(
    now,
    ...deleting.map((j) => Date.parse(j.metadata!.deletionTimestamp!)).filter((t) => Number.isFinite(t)),
  );
  if (toDelete.length === 0 && now >= deletedAt + WORKERS_GONE_MS)
    return { left: running.map((j) => j.metadata!.name!) };
  ctx.cond(
    'RoleRetired',
    'False',
    'StoppingWorkers',
    `waiting for the pods of ${names(running)} to be gone (at most until ${new Date(deletedAt + WORKERS_GONE_MS).toISOString()}) before the database role is retired`,
  );
  return {
    wait: { requeueAfter: Math.max(MIN_WAIT_MS, Math.min(5_000, deletedAt + WORKERS_GONE_MS - now)) },
  };
}

/** Says that the role went with pods of `left` still there (the bound ran out). */
export function workersNotGone(ctx: PhaseContext, left: string[]): string {
  const message = `the pods of ${left.join(', ')} were not gone ${WORKERS_GONE_MS / 1000} s after their Jobs were deleted; the database role was retired anyway (those pods can no longer log in)`;
  ctx.event('Warning', 'WorkersNotGone', message);
  return message;
}

/**
 * An ended batch: its role is retired once no worker pod is left (undefined), or the Step to wait.
 * Idempotent: a batch whose RoleRetired is True is done.
 */
export async function retiring(ctx: PhaseContext, now = clock(ctx)): Promise<Step | undefined> {
  if (condition(ctx.status, 'RoleRetired')?.status === 'True') return undefined;
  const stopped = await stopWorkers(ctx, now);
  if ('wait' in stopped) return stopped.wait;
  await ctx.store.retireRole(uidOf(ctx));
  if (stopped.left.length > 0)
    ctx.cond('RoleRetired', 'True', 'WorkersNotGone', workersNotGone(ctx, stopped.left));
  else
    ctx.cond(
      'RoleRetired',
      'True',
      'Retired',
      'no worker pod of the batch is left; its database role is retired (NOLOGIN, no rows, no limiter)',
    );
  return undefined;
}

// Pending: what must hold before any Job runs, checked on every pass. A spec that slipped past a
// down webhook is refused with the webhook's own code; a batch whose pool is missing or not Ready
// waits (it never fails for it); a suspended batch starts no Job.
import { baseUrlProblem } from '../../../../../contract/src/egress.js';
import { platformPolicy } from '../../../config.js';
import { TerminalError } from '../../../kube/controller.js';
import { validateBatch } from '../../../validation/index.js';
import { mirror, type PhaseContext, type Step } from '../context.js';
import { BATCH_SCOPE } from '../jobs.js';
import { condition } from '../status.js';

export async function pending(ctx: PhaseContext): Promise<Step | undefined> {
  const { batch, status, cond, pool } = ctx;
  // Validation before start: whatever slipped past a down webhook is refused here, same code.
  if (!ctx.registered) await validate(ctx);

  const ready = pool?.status?.conditions?.find((c) => c.type === 'Ready');
  // Ready for the pool's current spec only, and only towards an allowed endpoint: a baseURL
  // edited since the pool's last check waits for the pool reconciler, which checks it again.
  const poolReady =
    !!pool &&
    ready?.status === 'True' &&
    (ready.observedGeneration ?? pool.metadata.generation) === pool.metadata.generation &&
    baseUrlProblem(pool.spec.baseURL, ctx.config.egress) === undefined;
  if (!pool || !poolReady) {
    const why = !pool
      ? `LLMProviderPool "${batch.spec.providerPoolRef.name}" does not exist in namespace ${batch.metadata.namespace}`
      : `LLMProviderPool "${pool.metadata.name}" is not Ready: ${ready?.message ?? 'no status yet'}`;
    if (condition(status, 'PoolReady')?.status !== 'False') ctx.event('Warning', 'PoolNotReady', why);
    cond('PoolReady', 'False', pool ? 'PoolNotReady' : 'PoolNotFound', why);
    cond('Progressing', 'False', 'WaitingForPool', 'the batch waits for its pool; it continues by itself');
    if (ctx.registered) await mirror(ctx, ctx.registered);
    return { requeueAfter: 10_000 };
  }
  cond('PoolReady', 'True', 'PoolReady', `pool ${pool.metadata.name} is Ready`);

  if (batch.spec.suspend) {
    cond('Progressing', 'False', 'Suspended', 'spec.suspend is true: no new Jobs start');
    delete status.throughput;
    // Long-lived workers (pipelined rounds) would judge and plan on by themselves: stop them (they
    // release their leases on SIGTERM). Foreground, as everywhere a live Job is stopped: the Job
    // stays in the cache, marked deleted, until its pods are gone, so a batch deleted meanwhile
    // retires its role only after them (retiring.ts), and a resume starts the workers Job again
    // only once the old pods are gone (pipelining sees it running until then).
    const workers = ctx.jobs.current('comparison', BATCH_SCOPE);
    if (workers.state === 'running' && !workers.job?.metadata?.deletionTimestamp)
      await ctx.jobs.remove(workers.name, 'Foreground');
    if (ctx.registered) await mirror(ctx, ctx.registered);
    return {};
  }
  return undefined;
}

/**
 * An invalid spec cannot start, and retrying cannot fix it: InvalidSpec=True names the fields,
 * and a TerminalError stops the retries until the batch changes (an edit is a new event).
 */
async function validate(ctx: PhaseContext): Promise<void> {
  const { batch, status, cond } = ctx;
  const ns = batch.metadata.namespace!;
  const v = await validateBatch(batch, {
    namespace: ns,
    platform: platformPolicy(ctx.config),
    getPool: async () => ctx.pool,
    getConfigMap: (name) => ctx.owned.configMap(name),
  });
  const errors = v.errors.filter((e) => !e.field.startsWith('spec.providerPoolRef')); // the pool waits
  if (errors.length === 0) {
    cond('InvalidSpec', 'False', 'Valid', 'the spec passed validation');
    return;
  }
  const message = errors.map((e) => `${e.field}: ${e.message}`).join('; ');
  if (condition(status, 'InvalidSpec')?.status !== 'True')
    ctx.event('Warning', 'InvalidSpec', message.slice(0, 1000));
  cond('InvalidSpec', 'True', 'ValidationFailed', message.slice(0, 32_000));
  // The message goes to the log too: it names no field value (those are in the condition).
  throw new TerminalError('fix the spec; the batch starts once it is valid', { reason: 'InvalidSpec' });
}

// Finalizing: the outcome is committed with its result event in one transaction (finalize.ts), and
// the status says it. Succeeded writes the results ConfigMaps first. The batch's database role is
// retired afterwards, once its workers are gone (terminal phase, retiring.ts): a pipelined worker
// sees the committed outcome and exits by itself. An outcome already in the store is re-asserted,
// never decided again.

import type { BatchRow } from '../../../../../runtime/src/store/batches.js';
import type { CommittedOutcome } from '../../../../../runtime/src/store/outcome.js';
import type { RoundRow } from '../../../../../runtime/src/store/rounds.js';
import { metaTime } from '../../../kube/status.js';
import { mirror, mirrorFrom, type PhaseContext, type Step, setPhase, uidOf } from '../context.js';
import { completedEventData, explainSummary, failedEventData, resultsConfigMaps } from '../finalize.js';
import { ownedObjectMeta } from '../jobs.js';

/** The last round decided to stop (or planned nothing more): publish the results. */
export async function finish(ctx: PhaseContext, latest: RoundRow): Promise<Step> {
  const { batch, status, cond } = ctx;
  const uid = uidOf(ctx);
  setPhase(ctx, 'Finalizing');
  const grades = (ctx.registered?.config.grades as string[] | undefined) ?? [];
  const results = await ctx.store.readResults(uid, grades);
  const cmName = `${batch.metadata.name}-results`;
  // Large batches spill over into <name>-2, <name>-3, … (a ConfigMap holds at most 1 MiB).
  const parts = resultsConfigMaps(results, grades);
  for (const part of parts) {
    const name = `${cmName}${part.suffix}`;
    await ctx.owned.applyConfigMap(name, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: ownedObjectMeta(batch, name),
      data:
        part.suffix === ''
          ? { ...part.data, 'summary.json': JSON.stringify(explainSummary(latest, status)) }
          : part.data,
    });
  }
  const eventId = await ctx.store.commitOutcome(batch, {
    outcome: 'succeeded',
    reason: latest.reason,
    message: `stopped: ${latest.reason}`,
    topic: batch.spec.output?.kafkaTopic ?? ctx.config.kafkaTopic,
    data: completedEventData(results, status, ctx.pool, latest.round, grades, {
      configMap: cmName,
      parts: parts.length,
      maxMessageBytes: ctx.config.kafkaMaxMessageBytes,
    }),
  });
  const flagged = results.essays.filter((e) => e.flags?.length);
  if (flagged.length > 0)
    // Ids and kinds only, never essay text.
    ctx.event(
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
  status.completionTime ??= metaTime();
  setPhase(ctx, 'Succeeded');
  const why = reasonName(latest.reason);
  cond('Succeeded', 'True', why, `finished after ${latest.round} rounds: ${latest.reason}`);
  cond('Stable', latest.reason === 'converged' ? 'True' : 'False', why, `stopping reason: ${latest.reason}`);
  cond('Progressing', 'False', 'Finished', 'the batch is finished');
  cond('EventPublished', 'False', 'Pending', `event ${eventId} is in the outbox`);
  return { requeueAfter: 5_000 };
}

/** Ends the batch as Failed: counters as of the failure, the outcome and its event committed. */
export async function fail(ctx: PhaseContext, reason: string, message: string): Promise<Step> {
  const { batch, status, cond } = ctx;
  const uid = uidOf(ctx);
  // Counters as of the failure (a timed-out round's open pairs were just marked failed).
  const reg = await ctx.store.getBatch(uid);
  const latest = reg ? await ctx.store.latestRound(uid) : undefined;
  if (reg) await mirror(ctx, reg, latest);
  const grades = batch.spec.gradeScale.grades;
  const eventId = await ctx.store.commitOutcome(batch, {
    outcome: 'failed',
    reason,
    message,
    topic: batch.spec.output?.kafkaTopic ?? ctx.config.kafkaTopic,
    data: failedEventData(status, ctx.pool, grades),
    // The outcome's transaction cancels the pairs still open (a pipelined batch's workers were
    // judging): status and event both say what the store says from then on.
    recount: (p) => {
      if (reg) mirrorFrom(ctx, reg, p, latest);
      return failedEventData(status, ctx.pool, grades);
    },
  });
  status.completionTime ??= metaTime();
  setPhase(ctx, 'Failed');
  cond('Succeeded', 'False', reason, message);
  cond('Progressing', 'False', reason, message);
  cond('EventPublished', 'False', 'Pending', `event ${eventId} is in the outbox`);
  return { requeueAfter: 5_000 };
}

/**
 * An outcome committed in the store is final even when our copy of the batch (a stale cache or a
 * status write lost in a crash) does not say so yet: write its status again (same event id).
 */
export async function reassert(ctx: PhaseContext, committed: CommittedOutcome): Promise<Step> {
  const uid = uidOf(ctx);
  const reg: BatchRow | undefined = await ctx.store.getBatch(uid);
  ctx.registered = reg;
  const latest = await ctx.store.latestRound(uid);
  if (reg) await mirror(ctx, reg, latest);
  if (committed.outcome === 'failed' || !reg || !latest)
    return fail(ctx, committed.reason, committed.message);
  return finish(ctx, latest);
}

/** Condition reasons are CamelCase words. */
const reasonName = (r: string) => r.charAt(0).toUpperCase() + r.slice(1);

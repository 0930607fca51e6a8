// Scoring round r: one `runtime score` Job fits the model, decides, and writes round r's row with
// the next pairs in one transaction. A Job that ends without that row is retried with a fresh
// attempt, a few times, before the batch fails.
import { MAX_JOB_ATTEMPTS } from '../child-jobs.js';
import { jobContext, type PhaseContext, type Step, setPhase, uidOf } from '../context.js';
import { jobFailure, scoringJob } from '../jobs.js';

export async function scoring(ctx: PhaseContext, round: number): Promise<Step> {
  const { batch, status, jobs } = ctx;
  setPhase(ctx, 'Scoring');
  ctx.cond('Progressing', 'True', 'Scoring', `scoring round ${round}`);
  const cur = jobs.current('scoring', round);
  if (cur.state === 'missing') {
    await jobs.create(scoringJob(batch, round, jobContext(ctx, ctx.pool!), cur.attempt));
    status.currentJobs = { ...status.currentJobs, scoring: cur.name };
  } else if (cur.state === 'failed' || cur.state === 'complete') {
    // The Job may have finished after this reconcile read the rounds table: look again before
    // calling it a failure (the informer can be ahead of our earlier database read).
    if (await ctx.store.isScored(uidOf(ctx), round)) return { requeueAfter: 1 };
    const f =
      cur.state === 'failed'
        ? jobFailure(cur.job!)
        : { reason: 'NoResult', message: 'the Job ended without scoring' };
    const next = jobs.nextAttempt(cur);
    if (next === undefined)
      return {
        fail: {
          reason: 'ScoringFailed',
          message: `scoring round ${round} failed ${MAX_JOB_ATTEMPTS} times: ${f.reason} ${f.message}`,
        },
      };
    ctx.event('Warning', 'ScoringRetried', `scoring Job ${cur.name} ended (${f.reason}); retrying`);
    await jobs.create(scoringJob(batch, round, jobContext(ctx, ctx.pool!), next));
  }
  return { requeueAfter: 60_000 };
}

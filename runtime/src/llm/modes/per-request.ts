/**
 * `per_request` mode: one pair per Messages call. A malformed answer (bad `stop_reason`, not
 * JSON, wrong shape) is asked once more; a second malformed answer fails the comparison as
 * `unparseable`. A refusal fails as `refused` without a re-ask. Also used by `serial_bundle` to
 * re-ask pairs missing from a bundle answer (then without a further re-ask).
 */
import { parseVerdictResponse } from '../verdict.js';
import {
  AbortedError,
  addTo,
  build,
  estimateFor,
  fail,
  type JobState,
  type ModeContext,
  noteCache,
  succeed,
  throwIfAborted,
} from './context.js';

export async function askIndividually(ctx: ModeContext, st: JobState, reaskAllowed: boolean): Promise<void> {
  let multiplier = 1;
  for (;;) {
    throwIfAborted(ctx);
    if (ctx.isAuthFailed())
      return fail(ctx, st, 'auth_failed', 'pool credentials rejected earlier in this run');
    const built = build(ctx, [st.job], `cmp-${st.job.comparisonId}`, multiplier);
    st.promptSha256 = built.meta.promptSha256;
    st.correlationId = built.meta.correlationId;
    const res = await ctx.client.send({
      params: built.params,
      meta: built.meta,
      estimate: estimateFor(ctx, built, 1),
      signal: ctx.signal,
    });
    st.attempts += res.attempts;
    if (!res.ok) {
      if (res.reason === 'aborted') throw new AbortedError();
      return fail(ctx, st, res.reason, res.detail);
    }
    addTo(st, res.usage);
    noteCache(ctx, built, res.usage);
    const parsed = parseVerdictResponse(res.message, ['P1']);
    const v = parsed.verdicts.get('P1');
    if (v) return succeed(ctx, st, v);
    if (parsed.problem?.kind === 'refused') return fail(ctx, st, 'refused', 'stop_reason refusal');
    const detail = parsed.problem ? parsed.problem.kind : 'invalid verdict';
    if (reaskAllowed && !st.reasked) {
      st.reasked = true;
      if (parsed.problem?.kind === 'truncated') multiplier = 2;
      ctx.metrics?.retries.inc({ ...ctx.client.labels, reason: 'unparseable' });
      ctx.logger?.info(
        { correlationId: built.meta.correlationId, detail },
        're-asking after malformed verdict',
      );
      continue;
    }
    return fail(ctx, st, 'unparseable', detail);
  }
}

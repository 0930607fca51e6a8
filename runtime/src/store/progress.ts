// The batch's progress as the database knows it. Status counters are always read from here, so
// they are cumulative across rounds by construction and failures are never counted as completed.
import { CANCELLED, type Querier } from './claims.js';

export interface Progress {
  planned: number;
  submitted: number; // at least one attempt was made
  completed: number; // succeeded: a verdict was written
  failed: number; // gave up with a reason (pairs cancelled at a stop are not failures)
  cancelled: number; // open when a pipelined batch stopped: never judged, in neither planned nor failed
  retried: number; // attempts beyond the first, summed
  pending: number; // not yet final (pending or leased)
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  currentRound: { round: number; planned: number; done: number } | null;
  /** When the last comparison became final (a verdict or a failure; cancelled ones do not count). */
  lastFinishedAt?: Date | null;
}

export async function readProgress(sql: Querier, uid: string): Promise<Progress> {
  const [t] = await sql`
    SELECT count(*) FILTER (WHERE failure_reason IS DISTINCT FROM ${CANCELLED})::int AS planned,
           count(*) FILTER (WHERE attempts > 0)::int AS submitted,
           count(*) FILTER (WHERE status = 'succeeded')::int AS completed,
           count(*) FILTER (WHERE status = 'failed' AND failure_reason IS DISTINCT FROM ${CANCELLED})::int AS failed,
           count(*) FILTER (WHERE failure_reason = ${CANCELLED})::int AS cancelled,
           coalesce(sum(greatest(attempts - 1, 0)), 0)::int AS retried,
           count(*) FILTER (WHERE status IN ('pending', 'leased'))::int AS pending,
           coalesce(sum(input_tokens), 0)::bigint AS input_tokens,
           coalesce(sum(output_tokens), 0)::bigint AS output_tokens,
           coalesce(sum(cache_read_tokens), 0)::bigint AS cache_read_tokens,
           coalesce(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens,
           max(round) AS max_round,
           max(completed_at) FILTER (WHERE status IN ('succeeded', 'failed')
                                       AND failure_reason IS DISTINCT FROM ${CANCELLED}) AS last_finished_at
      FROM comparisons WHERE batch_uid = ${uid}`;
  let currentRound: Progress['currentRound'] = null;
  if (t!.max_round !== null) {
    const [r] = await sql`
      SELECT count(*) FILTER (WHERE failure_reason IS DISTINCT FROM ${CANCELLED})::int AS planned, count(*) FILTER (WHERE status IN ('succeeded', 'failed'))::int AS done
        FROM comparisons WHERE batch_uid = ${uid} AND round = ${t!.max_round}`;
    currentRound = { round: t!.max_round, planned: r!.planned, done: r!.done };
  }
  return {
    planned: t!.planned,
    submitted: t!.submitted,
    completed: t!.completed,
    failed: t!.failed,
    cancelled: t!.cancelled,
    retried: t!.retried,
    pending: t!.pending,
    inputTokens: Number(t!.input_tokens),
    outputTokens: Number(t!.output_tokens),
    cacheReadTokens: Number(t!.cache_read_tokens),
    cacheWriteTokens: Number(t!.cache_write_tokens),
    currentRound,
    lastFinishedAt: t!.last_finished_at ? new Date(t!.last_finished_at) : null,
  };
}

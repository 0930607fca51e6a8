/**
 * `batch_api` mode: Message Batches through the SDK.
 *
 * Rounds: round 1 submits every pair; a later round resubmits the pairs whose line came back
 * `errored` (other than `invalid_request_error`), `expired` or `canceled`, or whose answer was
 * malformed (its one re-ask), up to `retry.maxAttempts` rounds. Each round's batch is
 * remembered in the `BatchStore` under a stable key BEFORE polling, so a restarted worker finds
 * the provider batch id and resumes polling; results of earlier rounds are re-read (they stay
 * available for 29 days), which reconstructs the same next round without resubmitting.
 *
 * `custom_id` = `c<round>_<first 40 hex of sha256(comparisonId)>`: matches
 * `^[a-zA-Z0-9_-]{1,64}$`, unique per batch, and maps back through the stored record.
 * Batch traffic does not draw on the Messages rate limits, so the limiter is not used here.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { BatchRecord } from '../batch-store.js';
import { usageFromMessage } from '../client.js';
import { sha256Hex } from '../prompt.js';
import type { FailureReason } from '../types.js';
import { chunk } from '../util.js';
import { parseVerdictResponse } from '../verdict.js';
import {
  AbortedError,
  addTo,
  build,
  fail,
  type JobState,
  type ModeContext,
  succeed,
  throwIfAborted,
} from './context.js';

/** Requests per provider batch (well under the 100,000 / 256 MB cap). */
export const MAX_REQUESTS_PER_BATCH = 10_000;

export function customIdFor(comparisonId: string, round: number): string {
  return `c${round}_${sha256Hex(comparisonId).slice(0, 40)}`;
}

export function batchBaseKey(prefix: string, comparisonIds: readonly string[]): string {
  return `${prefix}:${sha256Hex([...comparisonIds].sort().join('\u0000')).slice(0, 32)}`;
}

export async function runBatches(ctx: ModeContext, states: JobState[]): Promise<void> {
  const anthropic = ctx.client.anthropic;
  const baseKey = batchBaseKey(
    ctx.batchKeyPrefix,
    states.map((s) => s.job.comparisonId),
  );
  const byComparison = new Map(states.map((s) => [s.job.comparisonId, s]));
  let pending = [...states];
  const lastReason = new Map<string, FailureReason>();
  const maxRounds = ctx.pool.retry.maxAttempts;

  for (let round = 1; round <= maxRounds && pending.length > 0; round++) {
    throwIfAborted(ctx);
    if (ctx.isAuthFailed()) {
      for (const st of pending) fail(ctx, st, 'auth_failed', 'pool credentials rejected earlier in this run');
      return;
    }
    const next: JobState[] = [];
    const parts = chunk(pending, MAX_REQUESTS_PER_BATCH);
    for (const [ci, part] of parts.entries()) {
      const key = `${baseKey}:r${round}:c${ci}`;
      let rec = await ctx.batchStore.get(key);
      if (!rec) {
        const requests: Anthropic.Messages.BatchCreateParams.Request[] = [];
        const customIds: Record<string, string> = {};
        for (const st of part) {
          const built = build(ctx, [st.job], `cmp-${st.job.comparisonId}`, st.reasked ? 2 : 1);
          st.promptSha256 = built.meta.promptSha256;
          st.correlationId = built.meta.correlationId;
          const customId = customIdFor(st.job.comparisonId, round);
          customIds[customId] = st.job.comparisonId;
          requests.push({ custom_id: customId, params: built.params });
        }
        const created = await ctx.client.withRetry(
          (signal) => anthropic.messages.batches.create({ requests }, { signal }),
          ctx.signal,
        );
        if (!created.ok) {
          if (created.c.reason === 'aborted') throw new AbortedError();
          for (const st of part) {
            st.attempts += created.attempts;
            fail(ctx, st, created.c.reason, created.c.detail);
          }
          continue;
        }
        rec = {
          key,
          providerBatchId: created.value.id,
          round,
          customIds,
          submittedAt: new Date(ctx.now()).toISOString(),
          state: 'submitted',
        } satisfies BatchRecord;
        await ctx.batchStore.put(rec); // durable BEFORE the first poll
        ctx.logger?.info(
          { key, providerBatchId: rec.providerBatchId, requests: requests.length },
          'batch submitted',
        );
        ctx.onBatchSubmitted?.(rec.providerBatchId, key);
      } else {
        ctx.logger?.info({ key, providerBatchId: rec.providerBatchId }, 'resuming batch');
      }
      const outcome = await collect(ctx, rec, byComparison, lastReason);
      next.push(
        ...part.filter(
          (st) => outcome.retry.has(st.job.comparisonId) || !outcome.seen.has(st.job.comparisonId),
        ),
      );
    }
    if (next.length > 0) {
      for (const st of next)
        ctx.metrics?.retries.inc({
          ...ctx.client.labels,
          reason: lastReason.get(st.job.comparisonId) ?? 'batch_errored',
        });
    }
    pending = next;
  }
  for (const st of pending) {
    fail(ctx, st, lastReason.get(st.job.comparisonId) ?? 'batch_expired', 'batch retries exhausted');
  }
}

/**
 * Polling or reading results failed after the retry policy. The batch record is kept, so the
 * caller should release its work (not fail it): a later run resumes the same provider batch.
 */
export class BatchPollError extends Error {
  constructor(
    readonly providerBatchId: string,
    readonly reason: FailureReason,
    detail: string,
  ) {
    super(`polling batch ${providerBatchId} failed: ${reason} (${detail})`);
    this.name = 'BatchPollError';
  }
}

/** Poll one batch until it ended, then stream its results. Returns ids seen and ids to retry. */
async function collect(
  ctx: ModeContext,
  rec: BatchRecord,
  byComparison: Map<string, JobState>,
  lastReason: Map<string, FailureReason>,
): Promise<{ seen: Set<string>; retry: Set<string> }> {
  const anthropic = ctx.client.anthropic;
  const seen = new Set<string>();
  const retry = new Set<string>();
  for (;;) {
    throwIfAborted(ctx);
    const got = await ctx.client.withRetry(
      (signal) => anthropic.messages.batches.retrieve(rec.providerBatchId, {}, { signal }),
      ctx.signal,
    );
    if (!got.ok) {
      if (got.c.reason === 'aborted') throw new AbortedError();
      throw new BatchPollError(rec.providerBatchId, got.c.reason, got.c.detail);
    }
    if (got.value.processing_status === 'ended') break;
    await ctx.sleep(ctx.pool.batchPollIntervalMs, ctx.signal).catch((e) => {
      throw new AbortedError(e);
    });
  }
  await ctx.batchStore.setState(rec.key, 'ended');
  const stream = await ctx.client.withRetry(
    (signal) => anthropic.messages.batches.results(rec.providerBatchId, {}, { signal }),
    ctx.signal,
  );
  if (!stream.ok) {
    if (stream.c.reason === 'aborted') throw new AbortedError();
    throw new BatchPollError(rec.providerBatchId, stream.c.reason, stream.c.detail);
  }
  const labels = ctx.client.labels;
  for await (const line of stream.value) {
    const comparisonId = rec.customIds[line.custom_id];
    const st = comparisonId ? byComparison.get(comparisonId) : undefined;
    if (!st || seen.has(st.job.comparisonId)) continue;
    seen.add(st.job.comparisonId);
    st.attempts += 1;
    const r = line.result;
    ctx.metrics?.requests.inc({ ...labels, status: r.type === 'succeeded' ? 'ok' : `batch_${r.type}` });
    if (r.type === 'succeeded') {
      const usage = usageFromMessage(r.message);
      addTo(st, usage);
      ctx.metrics?.recordUsage(labels, usage, ctx.pool.pricing, ctx.pool.promptCaching.ttl);
      const parsed = parseVerdictResponse(r.message, ['P1']);
      const v = parsed.verdicts.get('P1');
      if (v) succeed(ctx, st, v);
      else if (parsed.problem?.kind === 'refused') fail(ctx, st, 'refused', 'stop_reason refusal');
      else if (!st.reasked) {
        st.reasked = true;
        lastReason.set(st.job.comparisonId, 'unparseable');
        retry.add(st.job.comparisonId);
      } else fail(ctx, st, 'unparseable', parsed.problem?.kind ?? 'invalid verdict');
    } else if (r.type === 'errored') {
      const type = r.error?.error?.type;
      if (type === 'invalid_request_error')
        fail(ctx, st, 'invalid_request', 'batch line invalid_request_error');
      else if (type === 'authentication_error' || type === 'permission_error')
        fail(ctx, st, 'auth_failed', `batch line ${type}`);
      else {
        lastReason.set(st.job.comparisonId, 'batch_errored');
        retry.add(st.job.comparisonId);
      }
    } else {
      lastReason.set(st.job.comparisonId, r.type === 'expired' ? 'batch_expired' : 'batch_canceled');
      retry.add(st.job.comparisonId);
    }
  }
  await ctx.batchStore.setState(rec.key, 'collected');
  return { seen, retry };
}

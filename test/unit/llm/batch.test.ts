import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeAnthropic, startFakeAnthropic } from '../../../runtime/src/fake-anthropic/server.js';
import { FileBatchStore, MemoryBatchStore } from '../../../runtime/src/llm/batch-store.js';
import { AbortedError } from '../../../runtime/src/llm/modes/context.js';
import { comparerFor, makeJobs, profilePath } from './helpers.js';

let fake: FakeAnthropic | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const BATCH = {
  mode: 'batch_api' as const,
  batchPollIntervalMs: 20,
  promptCaching: { enabled: true, ttl: '1h' as const },
};

describe('batch_api', () => {
  it('submits one batch with valid custom_ids, streams results, and matches per_request verdicts', async () => {
    fake = await startFakeAnthropic({ profilePath, seed: 2, lapse: 0.1, batchLatencyMs: 50 });
    const jobs = makeJobs(12);
    const outcomes = await comparerFor(fake.url, BATCH).compare(jobs);
    expect(outcomes.every((o) => o.status === 'succeeded')).toBe(true);
    const st = fake.stats();
    expect(st.batches).toMatchObject({ created: 1, requestsSubmitted: 12, resultsFetched: 1 });
    expect(st.messages.total).toBe(0);
    const single = await comparerFor(fake.url, { mode: 'per_request' }).compare(jobs);
    expect(outcomes.map((o) => o.status === 'succeeded' && o.winner)).toEqual(
      single.map((o) => o.status === 'succeeded' && o.winner),
    );
  });

  it('resumes the same provider batch after a restart; nothing is submitted twice', async () => {
    fake = await startFakeAnthropic({ profilePath, batchLatencyMs: 300 });
    const dir = mkdtempSync(join(tmpdir(), 'cj-batch-'));
    const storePath = join(dir, 'batches.json');
    const jobs = makeJobs(10);
    const ac = new AbortController();
    let firstId = '';
    const first = comparerFor(fake.url, BATCH, {
      batchStore: new FileBatchStore(storePath),
      batchKeyPrefix: 'batch-uid/shard-0',
      onBatchSubmitted: (id) => {
        firstId = id;
        ac.abort(); // the worker is "killed" right after the id was persisted
      },
    });
    await expect(first.compare(jobs, { signal: ac.signal })).rejects.toBeInstanceOf(AbortedError);
    expect(firstId).toMatch(/^msgbatch_/);

    // A new process: new Comparer, same store file, same work.
    let resubmitted = false;
    const second = comparerFor(fake.url, BATCH, {
      batchStore: new FileBatchStore(storePath),
      batchKeyPrefix: 'batch-uid/shard-0',
      onBatchSubmitted: () => {
        resubmitted = true;
      },
    });
    const outcomes = await second.compare(jobs);
    expect(resubmitted).toBe(false);
    expect(outcomes.every((o) => o.status === 'succeeded')).toBe(true);
    const st = fake.stats();
    expect(st.batches.created).toBe(1);
    expect(st.batches.requestsSubmitted).toBe(jobs.length);
    const records = await new FileBatchStore(storePath).list();
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ providerBatchId: firstId, state: 'collected', round: 1 });
  });

  it('retries errored and expired lines in a new round, up to maxAttempts; failures keep their reason', async () => {
    fake = await startFakeAnthropic({
      profilePath,
      batchLatencyMs: 10,
      faults: { batchErrorRate: 0.25, batchExpireRate: 0.15 },
    });
    const jobs = makeJobs(40);
    const store = new MemoryBatchStore();
    const c = comparerFor(
      fake.url,
      { ...BATCH, retry: { maxAttempts: 2, initialBackoffMs: 1, maxBackoffMs: 2, jitter: 0 } },
      { batchStore: store },
    );
    const outcomes = await c.compare(jobs);
    expect(new Set(outcomes.map((o) => o.comparisonId)).size).toBe(40);
    const st = fake.stats();
    expect(st.batches.created).toBe(2);
    const failed = outcomes.filter((o) => o.status === 'failed');
    const retried = st.batches.requestsSubmitted - 40;
    expect(retried).toBeGreaterThan(0);
    // Everything that failed was retried once and failed again with a batch reason.
    for (const o of failed) {
      expect(['batch_errored', 'batch_expired']).toContain(o.status === 'failed' && o.failureReason);
      expect(o.attempts).toBe(2);
    }
    expect(outcomes.filter((o) => o.status === 'succeeded').length + failed.length).toBe(40);
    console.log(
      JSON.stringify({ submittedRound1: 40, resubmitted: retried, failedAfter2Rounds: failed.length }),
    );
  });

  it('rejects invalid custom_ids synchronously (real error format)', async () => {
    fake = await startFakeAnthropic({});
    const r = await fetch(`${fake.url}/v1/messages/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'k' },
      body: JSON.stringify({ requests: [{ custom_id: 'has.dot', params: {} }] }),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { message: string } }).error.message).toMatch(/custom_id/);
  });
});

/**
 * `BatchStore` in Postgres (`llm_provider_batches`, migration 2): the batch_api worker stores a
 * provider batch id here right after `batches.create` and before polling, so a worker that is
 * killed and restarted (any pod of the Job) finds the id and resumes polling instead of
 * submitting the pairs again. `put` is durable when it resolves (a committed INSERT).
 *
 * `scope` groups the records of one worker assignment (`<batch uid>/<shard>`); `list()` returns
 * that scope's records. `batchUid`, when given, ties the rows to the CJBatch so they are deleted
 * with it.
 */

import type { BatchRecord, BatchStore } from '../../../contract/src/provider-batch.js';
import type { Sql } from './db.js';

interface Row {
  key: string;
  provider_batch_id: string;
  round: number;
  custom_ids: Record<string, string>;
  state: BatchRecord['state'];
  submitted_at: Date;
}

const toRecord = (r: Row): BatchRecord => ({
  key: r.key,
  providerBatchId: r.provider_batch_id,
  round: r.round,
  customIds: r.custom_ids,
  submittedAt: r.submitted_at.toISOString(),
  state: r.state,
});

export class PostgresBatchStore implements BatchStore {
  constructor(
    private readonly sql: Sql,
    private readonly scope: string,
    private readonly batchUid?: string,
  ) {}

  async get(key: string): Promise<BatchRecord | undefined> {
    const [r] = await this.sql<Row[]>`
      SELECT key, provider_batch_id, round, custom_ids, state, submitted_at
        FROM llm_provider_batches WHERE key = ${key}`;
    return r ? toRecord(r) : undefined;
  }

  async put(record: BatchRecord): Promise<void> {
    await this.sql`
      INSERT INTO llm_provider_batches (key, scope, batch_uid, provider_batch_id, round, custom_ids, state, submitted_at)
      VALUES (${record.key}, ${this.scope}, ${this.batchUid ?? null}, ${record.providerBatchId}, ${record.round},
              ${this.sql.json(record.customIds)}, ${record.state}, ${record.submittedAt})
      ON CONFLICT (key) DO UPDATE SET
        provider_batch_id = excluded.provider_batch_id, round = excluded.round,
        custom_ids = excluded.custom_ids, state = excluded.state,
        submitted_at = excluded.submitted_at, updated_at = now()`;
  }

  async setState(key: string, state: BatchRecord['state']): Promise<void> {
    await this.sql`UPDATE llm_provider_batches SET state = ${state}, updated_at = now() WHERE key = ${key}`;
  }

  async list(): Promise<BatchRecord[]> {
    const rows = await this.sql<Row[]>`
      SELECT key, provider_batch_id, round, custom_ids, state, submitted_at
        FROM llm_provider_batches WHERE scope = ${this.scope} ORDER BY submitted_at, key`;
    return rows.map(toRecord);
  }
}

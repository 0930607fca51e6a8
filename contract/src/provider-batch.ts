/**
 * Where a worker remembers the Message Batches it submitted, so a restarted worker resumes
 * polling the same provider batch instead of submitting the pairs again.
 *
 * Contract: `put` is durable when it resolves, and the batch runner calls it right after
 * `batches.create` returns and BEFORE the first poll. (A crash between `create` returning and
 * `put` resolving can still lose the id; the provider has no idempotency key for batches. The
 * window is one local write.) Keys are stable for the same set of comparisons, round and chunk,
 * so the same work maps to the same record after a restart.
 *
 * The Postgres implementation is runtime/src/store/provider-batches.ts; runtime/src/llm/batch-store.ts
 * has `MemoryBatchStore` (tests) and `FileBatchStore` (a single-process CLI run).
 */

export interface BatchRecord {
  /** Stable submission key: `<prefix>:<sha of comparison ids>:r<round>:c<chunk>`. */
  key: string;
  providerBatchId: string;
  round: number;
  /** custom_id → comparisonId, for every request in the batch. */
  customIds: Record<string, string>;
  /** ISO time of submission. */
  submittedAt: string;
  state: 'submitted' | 'ended' | 'collected';
}

export interface BatchStore {
  get(key: string): Promise<BatchRecord | undefined>;
  /** Insert or replace; durable when resolved. */
  put(record: BatchRecord): Promise<void>;
  setState(key: string, state: BatchRecord['state']): Promise<void>;
  list(): Promise<BatchRecord[]>;
}

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
 * The interface is the contract's (contract/src/provider-batch.ts); the Postgres implementation is
 * the store's. Here: `MemoryBatchStore` for tests and `FileBatchStore` for a single-process CLI run.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { BatchRecord, BatchStore } from '../../../contract/src/provider-batch.js';

export type { BatchRecord, BatchStore };

export class MemoryBatchStore implements BatchStore {
  private readonly records = new Map<string, BatchRecord>();
  async get(key: string) {
    const r = this.records.get(key);
    return r ? structuredClone(r) : undefined;
  }
  async put(record: BatchRecord) {
    this.records.set(record.key, structuredClone(record));
  }
  async setState(key: string, state: BatchRecord['state']) {
    const r = this.records.get(key);
    if (r) r.state = state;
  }
  async list() {
    return [...this.records.values()].map((r) => structuredClone(r));
  }
}

/** JSON file store with atomic replace (write temp file, rename). One process at a time. */
export class FileBatchStore implements BatchStore {
  private chain: Promise<unknown> = Promise.resolve();
  constructor(private readonly path: string) {}

  private async load(): Promise<Record<string, BatchRecord>> {
    try {
      return JSON.parse(await readFile(this.path, 'utf8')) as Record<string, BatchRecord>;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw e;
    }
  }
  private async save(all: Record<string, BatchRecord>) {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(all, null, 2));
    await rename(tmp, this.path);
  }
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }
  get(key: string) {
    return this.serial(async () => (await this.load())[key]);
  }
  put(record: BatchRecord) {
    return this.serial(async () => {
      const all = await this.load();
      all[record.key] = record;
      await this.save(all);
    });
  }
  setState(key: string, state: BatchRecord['state']) {
    return this.serial(async () => {
      const all = await this.load();
      if (all[key]) {
        all[key].state = state;
        await this.save(all);
      }
    });
  }
  list() {
    return this.serial(async () => Object.values(await this.load()));
  }
}

// Batch registration: the batch row and its essays are written once, in one transaction, when a
// CJBatch starts. Re-running it (operator restart, requeue) changes nothing: the budget and its
// source are fixed by the first write and never changed by a continuation.
import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import type { Sql } from './db.js';

export interface EssayRow {
  id: string;
  text: string;
  grade?: string; // anchors only
}

export interface BatchRegistration {
  uid: string;
  namespace: string;
  name: string;
  config: Record<string, unknown>;
  budgetTotal: number;
  budgetSource: 'spec' | 'default';
  essays: EssayRow[];
  anchors: EssayRow[];
}

export interface BatchRow {
  uid: string;
  namespace: string;
  name: string;
  config: Record<string, unknown>;
  budget_total: number;
  budget_source: 'spec' | 'default';
  outcome: 'succeeded' | 'failed' | null;
  outcome_reason: string | null;
  finalized_at: Date | null;
}

export const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Registers the batch and loads its essays; returns the stored row (the first write wins). */
export async function registerBatch(sql: Sql, b: BatchRegistration): Promise<BatchRow> {
  return sql.begin(async (tx) => {
    const inserted = await tx`
      INSERT INTO batches (uid, namespace, name, config, budget_total, budget_source)
      VALUES (${b.uid}, ${b.namespace}, ${b.name}, ${tx.json(b.config as postgres.JSONValue)}, ${b.budgetTotal}, ${b.budgetSource})
      ON CONFLICT (uid) DO NOTHING RETURNING uid`;
    if (inserted.length > 0) {
      const rows = [
        ...b.essays.map((e) => ({
          batch_uid: b.uid,
          essay_id: e.id,
          text: e.text,
          sha256: sha256(e.text),
          is_anchor: false,
          grade: null,
        })),
        ...b.anchors.map((e) => ({
          batch_uid: b.uid,
          essay_id: e.id,
          text: e.text,
          sha256: sha256(e.text),
          is_anchor: true,
          grade: e.grade ?? null,
        })),
      ];
      for (let i = 0; i < rows.length; i += 500) await tx`INSERT INTO essays ${tx(rows.slice(i, i + 500))}`;
    }
    const [row] = await tx<BatchRow[]>`SELECT * FROM batches WHERE uid = ${b.uid}`;
    return row!;
  });
}

export async function getBatch(sql: Sql, uid: string): Promise<BatchRow | undefined> {
  const [row] = await sql<BatchRow[]>`SELECT * FROM batches WHERE uid = ${uid}`;
  return row;
}

/** The shards each comparison Job of the batch has (frozen in its config at registration). */
export async function batchShards(sql: Sql, uid: string): Promise<number | undefined> {
  const [r] = await sql<{ shards: number | null }[]>`
    SELECT (config->>'shards')::int AS shards FROM batches WHERE uid = ${uid}`;
  return r?.shards ?? undefined;
}

/** Removes every row of a batch (essays, rounds, comparisons, scores cascade). Idempotent. */
export async function deleteBatchRows(sql: Sql, uid: string): Promise<void> {
  await sql`DELETE FROM batches WHERE uid = ${uid}`;
}

export async function loadEssays(sql: Sql, uid: string) {
  return sql<{ essay_id: string; text: string; is_anchor: boolean; grade: string | null; sha256: string }[]>`
    SELECT essay_id, text, is_anchor, grade, sha256 FROM essays WHERE batch_uid = ${uid} ORDER BY essay_id`;
}

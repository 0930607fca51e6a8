// What the results of a batch are made of: the last scores of every essay and the injection flags
// recorded with its comparisons.

import type { Sql } from './db.js';

export interface ScoreRow {
  essay_id: string;
  is_anchor: boolean;
  rank: number;
  theta: number;
  se: number;
  /** The engine's grade record of the essay (null before anchors allow grades). */
  grade: unknown;
}

export async function readScores(sql: Sql, uid: string): Promise<ScoreRow[]> {
  const rows = await sql<ScoreRow[]>`
    SELECT essay_id, is_anchor, rank, theta, se, grade FROM scores WHERE batch_uid = ${uid} ORDER BY rank, essay_id`;
  return [...rows];
}

/** Comparisons that carry flags (stored as `injection:<A|B>:<kind>`). */
export async function readFlaggedComparisons(
  sql: Sql,
  uid: string,
): Promise<{ essay_a: string; essay_b: string; flags: string[] }[]> {
  const rows = await sql<{ essay_a: string; essay_b: string; flags: string[] }[]>`
    SELECT essay_a, essay_b, flags FROM comparisons WHERE batch_uid = ${uid} AND cardinality(flags) > 0`;
  return [...rows];
}

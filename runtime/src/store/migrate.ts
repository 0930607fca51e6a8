// Applies MIGRATIONS in order, each in its own transaction, under an advisory lock so that two
// operator replicas starting together cannot race. Idempotent: applied versions are skipped.
import type { Sql } from './db.js';
import { MIGRATIONS, type Migration } from './migrations.js';

export const MIGRATION_LOCK_KEY = 7_214_302_911; // arbitrary, fixed: "cj-operator migrations"

export async function migrate(sql: Sql, migrations: Migration[] = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  await sql.begin(async (tx) => {
    // A migration may outlast the session's statement timeout (a table rewrite), and so may a
    // replica's wait for the lock while another migrates.
    await tx`SET LOCAL statement_timeout = 0`;
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    const done = new Set(
      (await tx<{ version: number }[]>`SELECT version FROM schema_migrations`).map((r) => r.version),
    );
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
      applied.push(m.version);
    }
  });
  return applied;
}

// A throwaway Postgres for one test file: started in beforeAll (~2 s), migrated, stopped after.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopPid } from '../../../hack/lib/proc.js';
import { startPostgres } from '../../../hack/services/postgres.js';
import { connect, type Sql } from '../../../runtime/src/store/db.js';
import { migrate } from '../../../runtime/src/store/migrate.js';

export interface TestDb {
  url: string;
  sql: Sql;
  stop(): Promise<void>;
}

export async function startTestDb(): Promise<TestDb> {
  const dir = mkdtempSync(join(tmpdir(), 'cj-pg-'));
  const pg = await startPostgres(dir);
  const sql = connect(pg.url, 10);
  await migrate(sql);
  return {
    url: pg.url,
    sql,
    async stop() {
      await sql.end({ timeout: 5 });
      await stopPid(pg.process.pid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

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
  /**
   * Another connection (e.g. as a batch's role), ended by stop() before the server. Opened by the
   * store's connect() so its results are compacted like the workers' (db.ts, denseResults).
   */
  connectAs(url: string, max?: number): Sql;
  stop(): Promise<void>;
}

export async function startTestDb(): Promise<TestDb> {
  const dir = mkdtempSync(join(tmpdir(), 'cj-pg-'));
  const pg = await startPostgres(dir);
  const sql = connect(pg.url, 10);
  await migrate(sql);
  const others: Sql[] = [];
  return {
    url: pg.url,
    sql,
    connectAs(url, max = 1) {
      const c = connect(url, max);
      others.push(c);
      return c;
    },
    async stop() {
      await Promise.all(others.map((c) => c.end({ timeout: 1 }).catch(() => {})));
      await sql.end({ timeout: 5 });
      await stopPid(pg.process.pid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

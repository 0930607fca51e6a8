// A throwaway Postgres for one test file: started in beforeAll (~2 s), migrated, stopped after.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
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

/**
 * The file's Postgres: started before its tests, stopped after them. The handle reads the started
 * database when used, so take it at the top of the file and use it inside tests.
 */
export function useTestDb(): TestDb {
  let real: TestDb | undefined;
  beforeAll(async () => {
    real = await startTestDb();
  }, 60_000);
  afterAll(async () => {
    await real?.stop();
  });
  const get = (): TestDb => {
    if (!real) throw new Error('useTestDb: the database starts in beforeAll; use it inside a test or hook');
    return real;
  };
  return {
    get url() {
      return get().url;
    },
    get sql() {
      return get().sql;
    },
    connectAs: (url, max) => get().connectAs(url, max),
    stop: () => get().stop(),
  };
}

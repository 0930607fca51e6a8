/**
 * `runtime migrate`: applies the database migrations (idempotent, safe to run from several
 * replicas at once). The operator runs it before its controllers start.
 */
import { connect } from '../store/index.js';
import { migrate } from '../store/migrate.js';

export async function main(_argv: string[]): Promise<number> {
  const sql = connect(undefined, 1);
  try {
    const applied = await migrate(sql);
    console.log(JSON.stringify({ msg: 'migrations applied', applied }));
    return 0;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

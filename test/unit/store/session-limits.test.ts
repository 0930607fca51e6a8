// The operator's connections carry their own limits (a statement that waits on a lock for ever
// would stop a batch's reconciles for good); a worker's connections keep its role's.
import { expect, it } from 'vitest';
import { connect } from '../../../runtime/src/store/db.js';
import { MIGRATION_LOCK_KEY, migrate } from '../../../runtime/src/store/migrate.js';
import { useTestDb } from '../worker/pg.js';

const db = useTestDb();

it('sets the limits it is given and no others', async () => {
  const limited = connect(db.url, 1, {
    applicationName: 'cj-operator',
    statementTimeoutMs: 1_000,
    idleInTransactionMs: 60_000,
  });
  const plain = connect(db.url, 1);
  try {
    const [l] = await limited`SELECT current_setting('statement_timeout') AS st,
      current_setting('idle_in_transaction_session_timeout') AS it, current_setting('application_name') AS app`;
    expect(l).toEqual({ st: '1s', it: '1min', app: 'cj-operator' });
    const [p] = await plain`SELECT current_setting('statement_timeout') AS st`;
    expect(p!.st).toBe('0');
    // A statement that waits past the limit fails instead of hanging.
    await expect(limited`SELECT pg_sleep(5)`).rejects.toThrow(/statement timeout/);
    // Migrations run without it: a replica waits for the lock while another migrates (here 2 s,
    // twice the limit), and a table rewrite may take longer too.
    let locked!: () => void;
    const held = new Promise<void>((r) => {
      locked = r;
    });
    const other = plain.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      locked();
      await tx`SELECT pg_sleep(2)`;
    });
    await held;
    await expect(migrate(limited)).resolves.toBeDefined();
    await other;
  } finally {
    await limited.end({ timeout: 5 });
    await plain.end({ timeout: 5 });
  }
}, 30_000);

// One way to open the database: `postgres` (porsager) with settings suited to short-lived worker
// pods and the long-lived operator. The URL comes from the environment (a Secret in a cluster).
import postgres from 'postgres';

export type Sql = postgres.Sql;

/** Session settings of a long-lived process's connections (the operator's). */
export interface SessionLimits {
  /** Shown in pg_stat_activity, so a stuck session names its process. */
  applicationName?: string;
  /** A statement that runs (or waits for a lock) longer is cancelled with an error. */
  statementTimeoutMs?: number;
  /** A transaction left open by its client longer is ended by the server, its locks released. */
  idleInTransactionMs?: number;
}

export function connect(url = process.env.DATABASE_URL, max = 5, limits: SessionLimits = {}): Sql {
  if (!url)
    throw new Error(
      'DATABASE_URL is not set: point it at the Postgres database (postgres://user@host:port/db)',
    );
  // Startup parameters override the role's defaults: only set what the caller asks for (a batch
  // role's worker keeps the limits its role was given).
  const connection: Record<string, string> = {};
  if (limits.applicationName) connection.application_name = limits.applicationName;
  if (limits.statementTimeoutMs) connection.statement_timeout = String(limits.statementTimeoutMs);
  if (limits.idleInTransactionMs)
    connection.idle_in_transaction_session_timeout = String(limits.idleInTransactionMs);
  return denseResults(
    postgres(url, {
      max,
      idle_timeout: 30,
      connect_timeout: 10,
      onnotice: () => {},
      ...(Object.keys(connection).length ? { connection } : {}),
      // bigint ids come back as strings; counters we read with ::int
    }),
  );
}

/**
 * postgres.js (3.4.x) keeps a connection's row index when a statement fails after some of its rows
 * arrived (an error mid-result, or Postgres shutting down mid-result during a restart): the next
 * statement on that connection resolves with its rows shifted behind leading holes, so an
 * aggregate "returns no row" (upstream porsager/postgres#1119 and #1181, unfixed). The rows are
 * right, only shifted: every result of the store's connections and reserved connections is
 * compacted before a caller sees it. A transaction needs nothing: its BEGIN (and a ROLLBACK TO after
 * a failed statement) completes without rows, which resets the index.
 */
export function denseResults<T extends object>(sql: T): T {
  return new Proxy(sql, {
    apply: (target, self, args) => denseQuery(Reflect.apply(target as never, self, args)),
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const f = v as (...a: unknown[]) => unknown;
      switch (prop) {
        case 'unsafe':
        case 'file':
          return (...a: unknown[]) => denseQuery(f.apply(target, a));
        case 'reserve':
          return async (...a: unknown[]) => denseResults((await f.apply(target, a)) as object);
        default:
          return v;
      }
    },
  });
}

/** A query (helpers such as `sql(list)` are not) resolves with its rows from index 0. */
function denseQuery<Q>(q: Q): Q {
  const query = q as { resolve?: (x: unknown) => unknown };
  if (typeof query?.resolve !== 'function') return q;
  const resolve = query.resolve;
  query.resolve = (x) => resolve(compact(x));
  return q;
}

/** Removes leading holes from a result in place (it keeps its count, command and columns). */
export function compact<X>(x: X): X {
  if (!Array.isArray(x) || x.length === 0 || 0 in x) return x;
  let k = 0;
  while (k < x.length && !(k in x)) k++;
  x.splice(0, k);
  return x;
}

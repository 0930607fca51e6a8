// One way to open the database: `postgres` (porsager) with settings suited to short-lived worker
// pods and the long-lived operator. The URL comes from the environment (a Secret in a cluster).
import postgres from 'postgres';

export type Sql = postgres.Sql;

export function connect(url = process.env.DATABASE_URL, max = 5): Sql {
  if (!url)
    throw new Error(
      'DATABASE_URL is not set: point it at the Postgres database (postgres://user@host:port/db)',
    );
  return postgres(url, {
    max,
    idle_timeout: 30,
    connect_timeout: 10,
    onnotice: () => {},
    // bigint ids come back as strings; counters we read with ::int
  });
}

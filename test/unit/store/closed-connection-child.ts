// Child of closed-connection.test.ts: sends a statement on a connection whose backend was
// terminated, the way postgres.js 3.4.9 crashed with an uncaught TypeError from a setImmediate
// (upstream porsager/postgres#1208). Run alone, so a crash shows as its exit code and stderr.
//   node --import tsx closed-connection-child.ts reserved|begin   (DATABASE_URL set)
// Prints one JSON line: how the statement (or the transaction) settled.
import postgres from 'postgres';

const scenario = process.argv[2];
let closedConnections = 0;
const sql = postgres(process.env.DATABASE_URL!, {
  max: 2,
  onnotice: () => {},
  onclose: () => {
    closedConnections++;
  },
});

/** 'resolved', or the rejection's code; 'hung' when it settles in neither within 5 s. */
async function settle(p: Promise<unknown>): Promise<string> {
  const hung = new Promise<string>((r) => setTimeout(r, 5_000, 'hung').unref());
  return Promise.race([
    p.then(
      () => 'resolved',
      (e: { code?: string }) => String(e?.code ?? e),
    ),
    hung,
  ]);
}

async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
}

async function reserved(): Promise<string> {
  const r = await sql.reserve();
  const [row] = await r<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
  await sql`SELECT pg_terminate_backend(${row!.pid})`;
  await until(() => closedConnections > 0);
  return settle(r`SELECT 1`);
}

/** A statement of the transaction fails as its backend dies: begin then sends ROLLBACK on it. */
async function begin(): Promise<string> {
  return settle(
    sql.begin(async (tx) => {
      const [row] = await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
      const slow = tx`SELECT pg_sleep(10)`;
      await sql`SELECT pg_terminate_backend(${row!.pid})`;
      await slow;
    }),
  );
}

const outcome = scenario === 'reserved' ? await reserved() : await begin();
// A write scheduled on the dead connection runs on the next turn of the loop: let it.
await new Promise((r) => setTimeout(r, 200));
console.log(JSON.stringify({ scenario, outcome, closedConnections }));
await sql.end({ timeout: 1 });

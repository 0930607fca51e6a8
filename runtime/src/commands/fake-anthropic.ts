/**
 * `runtime fake-anthropic`: serve the fake Anthropic API on loopback until SIGINT/SIGTERM.
 *
 *   runtime fake-anthropic --port 8787 --profile test/fixtures/essays/profile.json --seed 7 \
 *     --lapse 0.05 --bias 0.1 --rpm 600 --itpm 2000000 --otpm 400000 --inject-529 0.1
 *
 * Prints one JSON line `{"msg":"listening","url":...}` once listening. Never logs keys or essays.
 */
import { parseArgs } from 'node:util';
import { startFakeAnthropic } from '../fake-anthropic/server.js';

const USAGE = `usage: runtime fake-anthropic [--port N] [--host 127.0.0.1] [--profile FILE] [--seed S]
  [--lapse P] [--bias LOGIT] [--rpm N] [--itpm N] [--otpm N] [--inject-429 P] [--inject-529 P]
  [--latency-ms N] [--latency-max-ms N] [--batch-latency-ms N] [--api-key KEY]...`;

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name}: not a number: ${v}`);
  return n;
}

export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        port: { type: 'string', default: '8787' },
        host: { type: 'string', default: '127.0.0.1' },
        profile: { type: 'string' },
        seed: { type: 'string', default: '0' },
        lapse: { type: 'string' },
        bias: { type: 'string' },
        rpm: { type: 'string' },
        itpm: { type: 'string' },
        otpm: { type: 'string' },
        'inject-429': { type: 'string' },
        'inject-529': { type: 'string' },
        'latency-ms': { type: 'string' },
        'latency-max-ms': { type: 'string' },
        'batch-latency-ms': { type: 'string' },
        'api-key': { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const s = (k: string) => values[k] as string | undefined;
  let server: Awaited<ReturnType<typeof startFakeAnthropic>>;
  try {
    server = await startFakeAnthropic({
      port: num(s('port'), 'port'),
      host: s('host'),
      profilePath: s('profile'),
      seed: s('seed'),
      lapse: num(s('lapse'), 'lapse'),
      bias: num(s('bias'), 'bias'),
      limits: { rpm: num(s('rpm'), 'rpm'), itpm: num(s('itpm'), 'itpm'), otpm: num(s('otpm'), 'otpm') },
      inject429: num(s('inject-429'), 'inject-429'),
      inject529: num(s('inject-529'), 'inject-529'),
      latencyMs: num(s('latency-ms'), 'latency-ms'),
      latencyMaxMs: num(s('latency-max-ms'), 'latency-max-ms'),
      batchLatencyMs: num(s('batch-latency-ms'), 'batch-latency-ms'),
      apiKeys: values['api-key'] as string[] | undefined,
    });
  } catch (e) {
    process.stderr.write(
      `${JSON.stringify({ level: 'error', msg: 'fake-anthropic failed to start', error: (e as Error).message })}\n`,
    );
    return 1;
  }
  process.stdout.write(
    `${JSON.stringify({ level: 'info', msg: 'listening', url: server.url, port: server.port })}\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  const st = server.stats();
  process.stdout.write(
    `${JSON.stringify({ level: 'info', msg: 'stopped', messages: st.messages.total, batches: st.batches.created })}\n`,
  );
  return 0;
}

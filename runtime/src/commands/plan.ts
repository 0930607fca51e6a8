/**
 * `runtime plan`: reads a plan() input as JSON on stdin, writes the plan as JSON on stdout.
 * Exit codes: 0 ok, 2 invalid input (the message names the offending field), 1 internal error.
 */
import { planParsed } from '../cj/plan.js';
import { PlanInput } from '../cj/types.js';

export interface PlanIo {
  stdin: AsyncIterable<string | Buffer>;
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

async function readAll(stream: AsyncIterable<string | Buffer>): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
  return text;
}

export async function main(argv: string[], io: PlanIo = process): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write('usage: runtime plan < state.json > plan.json  (schema: docs/plan-schema.json)\n');
    return 0;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readAll(io.stdin));
  } catch (err) {
    io.stderr.write(`plan: input is not valid JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const parsed = PlanInput.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const field = issue.path.length > 0 ? issue.path.join('.') : '(root)';
      io.stderr.write(`plan: invalid input at ${field}: ${issue.message}\n`);
    }
    return 2;
  }
  try {
    io.stdout.write(`${JSON.stringify(planParsed(parsed.data))}\n`);
    return 0;
  } catch (err) {
    io.stderr.write(`plan: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}

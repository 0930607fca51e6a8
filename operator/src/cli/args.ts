// Command-line parsing for kubectl-cj, following kubectl's conventions: node:util parseArgs in
// strict mode (an unknown or misspelt flag is refused, naming the nearest real one), `-h/--help`
// on every command, global flags (-n/--namespace, --context, --kubeconfig) before or after the
// command, `--flag=value` or `--flag value`, and help text generated from the same table the
// parser reads, so the two cannot drift apart.
import { parseArgs } from 'node:util';

export class UsageError extends Error {}

export interface Flag {
  name: string;
  short?: string;
  /** A value placeholder (`<pool>`) for string flags; boolean flags have none. */
  value?: string;
  help: string;
}

export interface Command {
  name: string;
  summary: string;
  /** After `kubectl cj <name>`, e.g. `<folder|essays.jsonl> --pool <pool> [flags]`. */
  usage: string;
  flags: Flag[];
  /** `# comment` lines and commands, shown under Examples. */
  examples: string[];
  /** Positional arguments: exactly this many (or a range). */
  args: [min: number, max: number];
  /** Values -o/--output accepts, the first being the default; none = no -o. */
  outputs?: readonly string[];
}

export const GLOBAL_FLAGS: Flag[] = [
  {
    name: 'namespace',
    short: 'n',
    value: '<namespace>',
    help: "Namespace of the batch (default: the context's namespace, else default)",
  },
  { name: 'context', value: '<context>', help: 'The kubeconfig context to use (default: the current one)' },
  {
    name: 'kubeconfig',
    value: '<file>',
    help: 'Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)',
  },
  { name: 'help', short: 'h', help: 'Show this help' },
];

export interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** Levenshtein distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/** The closest of `names` to `word`, if it is close enough to be a plausible typo. */
export function nearest(word: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const n of names) {
    const dist = distance(word, n);
    if (dist < bestD) [best, bestD] = [n, dist];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export const wantsHelp = (argv: string[]) => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '-h' || a === '--help');
};

/** Parses `argv` (after the command name) against the command's flags and the global ones. */
export function parse(cmd: Command, argv: string[]): Parsed {
  const flags = [...cmd.flags, ...GLOBAL_FLAGS];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const f of flags)
    options[f.name] = { type: f.value ? 'string' : 'boolean', ...(f.short ? { short: f.short } : {}) };
  // kubectl's bare --dry-run means client.
  const args = argv.map((a) => (a === '--dry-run' && options['dry-run'] ? '--dry-run=client' : a));
  let out: Parsed;
  try {
    out = parseArgs({ args, options, allowPositionals: true, strict: true }) as Parsed;
  } catch (err) {
    const e = err as { code?: string; message: string };
    const see = `See 'kubectl cj ${cmd.name} --help'.`;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const opt = /Unknown option '([^']+)'/.exec(e.message)?.[1] ?? '';
      const word = opt.replace(/^-+/, '').split('=')[0]!;
      const guess = opt.startsWith('--')
        ? nearest(
            word,
            flags.map((f) => f.name),
          )
        : undefined;
      throw new UsageError(
        `unknown flag ${opt} for "kubectl cj ${cmd.name}"${guess ? `; did you mean --${guess}?` : ''}\n${see}`,
      );
    }
    throw new UsageError(`${e.message.replace(/\. To specify a positional.*$/, '')}\n${see}`);
  }
  if (cmd.outputs && typeof out.values.output === 'string') choice('output', out.values.output, cmd.outputs);
  const [min, max] = cmd.args;
  const n = out.positionals.length;
  if (n < min || n > max) {
    const what = n < min ? 'missing argument' : `unexpected argument "${out.positionals[max]}"`;
    throw new UsageError(
      `${what}\nUsage: kubectl cj ${cmd.name} ${cmd.usage}\nSee 'kubectl cj ${cmd.name} --help'.`,
    );
  }
  return out;
}

/** Splits `kubectl cj [global flags] <command> [args]` into the command name and the rest. */
export function splitCommand(argv: string[]): { name: string | undefined; rest: string[] } {
  const takesValue = new Set(
    GLOBAL_FLAGS.filter((f) => f.value).flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]),
  );
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (takesValue.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-')) return { name: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { name: undefined, rest: argv };
}

function flagLines(flags: Flag[]): string[] {
  const left = flags.map(
    (f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` ${f.value}` : ''}`,
  );
  const width = Math.max(...left.map((l) => l.length));
  return flags.map((f, i) => `  ${left[i]!.padEnd(width)}   ${f.help}`);
}

export function commandHelp(cmd: Command): string {
  return [
    `${cmd.summary}`,
    '',
    'Usage:',
    `  kubectl cj ${cmd.name} ${cmd.usage}`,
    '',
    'Examples:',
    ...cmd.examples.map((e) => `  ${e}`),
    '',
    ...(cmd.flags.length > 0 ? ['Flags:', ...flagLines(cmd.flags), ''] : []),
    'Global flags:',
    ...flagLines(GLOBAL_FLAGS),
    '',
  ].join('\n');
}

export function rootHelp(commands: Command[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `kubectl cj ${version}: Comparative Judgement of essays on Kubernetes (CJBatch).`,
    '',
    'Usage:',
    '  kubectl cj <command> [arguments] [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}   ${c.summary}`),
    '',
    'Examples:',
    '  kubectl cj submit ./class-9a --pool anthropic --wait',
    '  kubectl cj results class-9a -o csv > class-9a.csv',
    '',
    'Global flags:',
    ...flagLines([...GLOBAL_FLAGS, { name: 'version', help: 'Print the version' }]),
    '',
    "Use 'kubectl cj <command> --help' for a command's flags.",
    '',
  ].join('\n');
}

/** Parses a kubectl-style duration: 90s, 30m, 1h30m, or plain seconds. 0 means no limit. */
export function parseDuration(flag: string, v: string): number {
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === '') throw new UsageError(`--${flag} ${v}: use a duration such as 90s, 30m or 1h30m`);
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

/** The value of a flag that takes one of `choices`, or a usage error listing them. */
export function choice<T extends string>(flag: string, v: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(v)) return v as T;
  throw new UsageError(`--${flag}=${v} is not supported here; use one of: ${choices.join(', ')}`);
}

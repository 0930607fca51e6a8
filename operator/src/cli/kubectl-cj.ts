#!/usr/bin/env node
/**
 * kubectl-cj: the teacher's and pipeline's CLI. On PATH as `kubectl-cj`, kubectl runs it as
 * `kubectl cj`. Commands: submit, estimate, status, results, explain, audit, version (`kubectl cj --help`).
 * Shipped as one bundled file (hack/cli/build.ts) that needs only Node ≥ 20.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import {
  AUDIT_DEFAULT_JUDGE,
  AUDIT_MAX_PAIRS,
  AUDIT_MIN_PAIRS,
  validJudge,
} from '../../../contract/src/audit.js';
import { joinResultsParts } from '../../../contract/src/results.js';
import { ROUNDS_MODES } from '../../../contract/src/rounds-mode.js';
import { ApiError, type KubeClient, resourcePath } from '../kube/rest.js';
import {
  type Command,
  choice,
  commandHelp,
  type Parsed,
  parse,
  parseDuration,
  rootHelp,
  splitCommand,
  UsageError,
  wantsHelp,
} from './args.js';
import { type AuditView, auditLine, parsePairs, runAudit } from './audit.js';
import { apiFailure, type Conn, connect, loadKubeConfig } from './connect.js';
import { SourceError } from './essays.js';
import { estimateOf, estimatePool, estimateSource, estimateTable } from './estimate.js';
import { type BatchView, estimateVsActual, explainText, resultsTable, statusLine } from './render.js';
import {
  BATCHES,
  buildSubmission,
  CONFIGMAPS,
  createSubmission,
  get,
  inTeacherTerms,
  serverDryRun,
} from './submit.js';

export { invalidUtf8Offset, readEssays } from './essays.js';
export { estimateVsActual, explainText, resultsTable, statusLine } from './render.js';

declare const __CJ_VERSION__: string | undefined;

/** Set by the bundler; from a checkout, read from package.json. */
export function version(): string {
  if (typeof __CJ_VERSION__ === 'string') return __CJ_VERSION__;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++, dir = path.dirname(dir)) {
    const p = path.join(dir, 'package.json');
    if (existsSync(p)) return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

const OUTPUT = (formats: string) => ({
  name: 'output',
  short: 'o',
  value: '<format>',
  help: `Output format: ${formats}`,
});

/** Where a folder's anchors and assignment come from (submit and estimate read folders alike). */
const FOLDER_FILES = [
  {
    name: 'anchors',
    value: '<file>',
    help: 'Anchor essays with known grades, JSONL (default: anchors.jsonl in the folder)',
  },
  {
    name: 'assignment',
    value: '<file>',
    help: 'Title, instructions and rubric, JSON (default: assignment.json in the folder)',
  },
];

export const COMMANDS: Command[] = [
  {
    name: 'submit',
    summary: "Submit a class's essays as a CJBatch",
    usage: '<folder|essays.jsonl> --pool <pool> [flags]',
    args: [1, 1],
    flags: [
      { name: 'pool', value: '<pool>', help: 'LLMProviderPool that judges the essays (required)' },
      {
        name: 'name',
        value: '<name>',
        help: "Batch name (default: the folder's name, e.g. class-9a)",
      },
      ...FOLDER_FILES,
      { name: 'grades', value: '<list>', help: 'Grade scale, lowest first (default: F,E,D,C,B,A)' },
      { name: 'budget', value: '<n>', help: 'Most comparisons to run (default: computed by the operator)' },
      {
        name: 'dry-run',
        value: '<mode>',
        help: 'none, client (check the files offline, write nothing) or server (the apiserver checks too; prints the estimate)',
      },
      { name: 'wait', help: 'Wait until the batch finishes, printing progress' },
      {
        name: 'timeout',
        value: '<duration>',
        help: 'With --wait: give up waiting after this long (e.g. 30m; 0 = never)',
      },
      OUTPUT('name or yaml|json (the objects, e.g. with --dry-run)'),
    ],
    outputs: ['name', 'yaml', 'json'],
    examples: [
      '# Check a class folder without a cluster (essays/, anchors.jsonl, assignment.json):',
      'kubectl cj submit ./class-9a --pool anthropic --dry-run=client',
      '# Let the cluster check it too, and print the estimate on the pool:',
      'kubectl cj submit ./class-9a --pool anthropic --dry-run=server',
      '# Submit it as cjbatch/class-9a and wait at most an hour:',
      'kubectl cj submit ./class-9a --pool anthropic --wait --timeout 1h',
    ],
  },
  {
    name: 'estimate',
    summary: 'Estimate comparisons, tokens, cost and time of a batch before it runs',
    usage: '<folder|essays.jsonl|cjbatch.yaml> (--pool <pool> | --pool-file <pool.yaml>) [flags]',
    args: [1, 1],
    flags: [
      {
        name: 'pool',
        value: '<pool>',
        help: 'LLMProviderPool read from the cluster (default for a manifest: its providerPoolRef)',
      },
      {
        name: 'pool-file',
        value: '<file>',
        help: 'LLMProviderPool manifest to use instead (no cluster needed)',
      },
      ...FOLDER_FILES,
      {
        name: 'budget',
        value: '<n>',
        help: "Most comparisons to run (default: the operator's default budget)",
      },
      {
        name: 'warm-pool',
        help: "The pool judged something in the last 10 minutes: leave out its limiter's slow start",
      },
      {
        name: 'round-overhead',
        value: '<seconds>',
        help: "Seconds each round's Jobs take on your cluster (default 7; a finished batch's time over its rounds)",
      },
      {
        name: 'rounds-mode',
        value: '<mode>',
        help: "How the batch will run its rounds: pipelined (the operator's default) or rounds (default for a manifest: its cj.huleedu.io/rounds annotation)",
      },
      OUTPUT('table (default), json or yaml'),
    ],
    outputs: ['table', 'json', 'yaml'],
    examples: [
      '# Offline, with the pool manifest the platform team gave you:',
      'kubectl cj estimate ./class-9a --pool-file pool.yaml',
      '# Against the pool in the cluster, for a larger budget:',
      'kubectl cj estimate ./class-9a --pool anthropic --budget 600',
    ],
  },
  {
    name: 'status',
    summary: "Show a batch's progress: comparisons, round, stability, cost",
    usage: '<batch> [flags]',
    args: [1, 1],
    flags: [
      {
        name: 'watch',
        short: 'w',
        help: 'Keep printing progress until the batch finishes (a line per change when piped)',
      },
      {
        name: 'timeout',
        value: '<duration>',
        help: 'With --watch: stop after this long (e.g. 30m; 0 = never)',
      },
      OUTPUT('table (default), json or yaml (the batch status)'),
    ],
    outputs: ['table', 'json', 'yaml'],
    examples: ['kubectl cj status class-9a', 'kubectl cj status class-9a --watch | tee progress.log'],
  },
  {
    name: 'results',
    summary: 'Show the ranking and grades of a finished batch',
    usage: '<batch> [flags]',
    args: [1, 1],
    flags: [OUTPUT('table (default), csv, json or yaml')],
    outputs: ['table', 'csv', 'json', 'yaml'],
    examples: ['kubectl cj results class-9a', 'kubectl cj results class-9a -o csv > class-9a.csv'],
  },
  {
    name: 'explain',
    summary: 'Explain why a batch stopped and how reliable the judge was',
    usage: '<batch> [flags]',
    args: [1, 1],
    flags: [OUTPUT('table (default), json or yaml')],
    outputs: ['table', 'json', 'yaml'],
    examples: ['kubectl cj explain class-9a'],
  },
  {
    name: 'audit',
    summary: 'Judge a sample of pairs yourself and see how often the AI judge agreed',
    usage: '<batch> [flags]',
    args: [1, 1],
    flags: [
      {
        name: 'pairs',
        value: '<n>',
        help: `Pairs to judge, ${AUDIT_MIN_PAIRS}-${AUDIT_MAX_PAIRS} (default 20): half where the AI judge and the final scores disagree most, half at random`,
      },
      {
        name: 'judge',
        value: '<name>',
        help: 'Your name as the human judge in the report and the event (default: teacher)',
      },
      {
        name: 'timeout',
        value: '<duration>',
        help: 'How long to wait for the operator, before and after judging (default 2m)',
      },
    ],
    examples: [
      '# Judge 20 pairs of a finished batch (keys: a, b, s = skip, q = finish and send):',
      'kubectl cj audit class-9a',
      '# More pairs for a narrower interval, under your name:',
      'kubectl cj audit class-9a --pairs 50 --judge ms-lee',
    ],
  },
  {
    name: 'version',
    summary: 'Print the version of kubectl-cj',
    usage: '[flags]',
    args: [0, 0],
    flags: [OUTPUT('name (default), json or yaml')],
    outputs: ['name', 'json', 'yaml'],
    examples: ['kubectl cj version'],
  },
];

const str = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);
const connFlags = (p: Parsed) => ({
  kubeconfig: str(p.values.kubeconfig),
  context: str(p.values.context),
  namespace: str(p.values.namespace),
});

function print(format: 'json' | 'yaml', obj: unknown) {
  process.stdout.write(format === 'json' ? `${JSON.stringify(obj, null, 2)}\n` : YAML.stringify(obj));
}

// ---------------------------------------------------------------- commands
async function submit(p: Parsed, use: (c: Conn) => void): Promise<number> {
  const dryRun = choice('dry-run', str(p.values['dry-run']) ?? 'none', ['none', 'client', 'server'] as const);
  const output = p.values.output
    ? choice('output', str(p.values.output)!, ['name', 'yaml', 'json'] as const)
    : undefined;
  const pool = str(p.values.pool);
  if (!pool)
    throw new UsageError(
      "--pool is required: the LLMProviderPool that judges the essays (list them: kubectl get llmproviderpools)\nSee 'kubectl cj submit --help'.",
    );
  if (p.values.timeout !== undefined && !p.values.wait) throw new UsageError('--timeout needs --wait');
  const timeoutMs = parseDuration('timeout', str(p.values.timeout) ?? '0');
  let conn: Conn | undefined;
  let namespace: string;
  if (dryRun === 'client') {
    // Offline: the namespace from -n or the kubeconfig's context if there is one, else default.
    namespace = str(p.values.namespace) ?? offlineNamespace(p);
  } else {
    conn = await connect(connFlags(p));
    use(conn);
    namespace = conn.namespace;
  }
  const b = await buildSubmission(
    {
      source: p.positionals[0]!,
      pool,
      name: str(p.values.name),
      anchors: str(p.values.anchors),
      assignment: str(p.values.assignment),
      grades: str(p.values.grades),
      budget: str(p.values.budget),
      namespace,
    },
    conn?.client,
  );
  if (b.problems.length > 0) {
    const shown = b.problems.slice(0, 20);
    const more =
      b.problems.length > shown.length ? `\n  ... and ${b.problems.length - shown.length} more` : '';
    console.error(`The batch was not submitted (nothing was written):\n  ${shown.join('\n  ')}${more}`);
    return 2;
  }
  for (const w of b.warnings) console.error(`Warning: ${w}`);
  const objects = { apiVersion: 'v1', kind: 'List', items: [b.configMap, b.batch] };
  if (dryRun !== 'none') {
    const notes =
      dryRun === 'server'
        ? await serverDryRun(conn!.client, b, namespace).catch((err) => refusedInTeacherTerms(err, b))
        : [
            `configmap/${b.configMap.metadata.name} created (dry run)`,
            `cjbatch.cj.huleedu.io/${b.name} created (dry run)`,
          ];
    if (output === 'json' || output === 'yaml') print(output, objects);
    else console.log(notes.join('\n'));
    if (dryRun === 'server' && output === undefined) {
      // What the batch would take on this pool, before anything runs.
      const spec = b.batch.spec as { assignment: Record<string, { value: string }> };
      const src = {
        what: `${b.essays.length} essays and ${b.anchors.length} anchors`,
        spec: (b.batch.spec.budget ? { budget: b.batch.spec.budget } : {}) as never,
        essays: b.essays.map((e) => e.text),
        anchors: b.anchors.map((e) => e.text),
        assignment: {
          title: spec.assignment.title!.value,
          instructions: spec.assignment.instructions!.value,
          rubric: spec.assignment.rubric!.value,
        },
      };
      const pl = await estimatePool({ pool }, conn!.client, namespace);
      console.log(`\n${estimateTable(src, pl.name, pl.spec, estimateOf(src, pl.spec))}`);
    }
    console.error(
      `${b.essays.length} essays and ${b.anchors.length} anchors checked${dryRun === 'client' ? ` offline (pool "${pool}" not checked; --dry-run=server checks it)` : ''}; nothing was written.`,
    );
    return 0;
  }
  await createSubmission(conn!.client, b, namespace).catch((err) => refusedInTeacherTerms(err, b));
  if (output === 'json' || output === 'yaml') print(output, objects);
  else if (output === 'name') console.log(`cjbatch.cj.huleedu.io/${b.name}`);
  else
    console.log(
      `cjbatch/${b.name} submitted in ${namespace}: ${b.essays.length} essays, ${b.anchors.length} anchors, pool ${pool}`,
    );
  return p.values.wait ? watch(conn!.client, namespace, b.name, timeoutMs) : 0;
}

/**
 * A refusal by the apiserver (webhook, quota, policy), its messages in terms of the teacher's
 * files. Whatever was created before the refusal has been removed again.
 */
function refusedInTeacherTerms(err: unknown, b: Awaited<ReturnType<typeof buildSubmission>>): never {
  if (err instanceof ApiError && err.status >= 400 && err.status !== 401) {
    const where = {
      source: path.dirname(b.essays[0]?.from ?? '.'),
      cmName: b.configMap.metadata.name,
      essays: b.essays,
      anchors: b.anchors,
    };
    throw new UsageError(
      `The batch was not submitted (nothing was written): ${inTeacherTerms({ field: '', message: err.message }, where)}`,
    );
  }
  throw err;
}

function offlineNamespace(p: Parsed): string {
  try {
    const { kc } = loadKubeConfig(connFlags(p));
    const ctx = str(p.values.context) ?? kc.getCurrentContext();
    return kc.getContextObject(ctx)?.namespace ?? 'default';
  } catch {
    return 'default';
  }
}

/**
 * Prints progress until the batch ends (or `timeoutMs` passes; 0 = never). On a terminal it
 * redraws one line; piped, it prints a line whenever the progress changes.
 */
async function watch(client: KubeClient, ns: string, name: string, timeoutMs: number): Promise<number> {
  const tty = process.stdout.isTTY;
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Number.POSITIVE_INFINITY;
  let last = '';
  for (;;) {
    const b = await get<BatchView>(client, resourcePath(BATCHES, ns, name));
    if (!b) {
      console.error(`cjbatch ${name} not found in namespace ${ns}`);
      return 1;
    }
    const line = statusLine(b);
    const phase = b.status?.phase;
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    if (tty) process.stdout.write(`\r\x1b[2K${line}`);
    else {
      // The time-left estimate changes every second; a new line only when the progress does.
      const key = line.replace(/ (ETA )?~\S+( left)?.*$/, '');
      if (key !== last) console.log(line);
      last = key;
    }
    if (terminal) {
      if (tty) process.stdout.write('\n');
      // The estimate beside the actuals, then the outcome as the last line (scripts read it).
      const vs = estimateVsActual(b);
      if (vs) console.log(vs);
      const c = b.status?.conditions?.find((x) => x.type === 'Succeeded');
      if (c) console.log(`${phase}: ${c.reason} — ${c.message}`);
      return phase === 'Failed' ? 1 : 0;
    }
    if (Date.now() >= deadline) {
      if (tty) process.stdout.write('\n');
      console.error(
        `timed out after ${timeoutMs / 1000}s waiting for cjbatch/${name} (phase ${phase ?? 'Pending'}); it keeps running: kubectl cj status ${name} -n ${ns} --watch`,
      );
      return 1;
    }
    await new Promise((r) => setTimeout(r, Math.min(1000, Math.max(0, deadline - Date.now()))));
  }
}

async function estimate(p: Parsed, use: (c: Conn) => void): Promise<number> {
  const output = choice('output', str(p.values.output) ?? 'table', ['table', 'json', 'yaml'] as const);
  const source = p.positionals[0]!;
  const poolFile = str(p.values['pool-file']);
  if (poolFile && p.values.pool) throw new UsageError('give --pool or --pool-file, not both');
  // A cluster only when something must be read from it: the pool, or a manifest's ConfigMaps.
  let conn: Conn | undefined;
  const cluster = async () => {
    if (!conn) {
      conn = await connect(connFlags(p));
      use(conn);
    }
    return conn;
  };
  const flags = {
    anchors: str(p.values.anchors),
    assignment: str(p.values.assignment),
    budget: str(p.values.budget),
  };
  let src: Awaited<ReturnType<typeof estimateSource>>;
  try {
    src = await estimateSource(source, flags);
  } catch (err) {
    if (!(err instanceof UsageError) || !/not in the file/.test(err.message)) throw err;
    const c = await cluster().catch((why) => {
      throw new UsageError(`${err.message}\n(no cluster to read it from: ${(why as Error).message})`);
    });
    src = await estimateSource(source, flags, c.client, c.namespace);
  }
  const poolName = str(p.values.pool) ?? src.poolRef;
  const c = poolFile ? undefined : await cluster();
  const pool = await estimatePool({ poolFile, pool: poolName }, c?.client, c?.namespace);
  const ro = str(p.values['round-overhead']);
  const overhead = ro === undefined ? undefined : Number(ro);
  if (overhead !== undefined && !(Number.isFinite(overhead) && overhead >= 0))
    throw new UsageError(`--round-overhead ${ro}: give seconds, a number ≥ 0 (e.g. 7)`);
  const rm = str(p.values['rounds-mode']);
  const e = estimateOf(
    src,
    pool.spec,
    {
      ...(overhead === undefined ? {} : { roundOverheadSeconds: overhead }),
      ...(p.values['warm-pool'] ? { warmPool: true } : {}),
    },
    rm === undefined ? undefined : choice('rounds-mode', rm, ROUNDS_MODES),
  );
  if (output === 'table') console.log(estimateTable(src, pool.name, pool.spec, e));
  else print(output, e);
  return 0;
}

async function status(p: Parsed, conn: Conn): Promise<number> {
  const name = p.positionals[0]!;
  const output = choice('output', str(p.values.output) ?? 'table', ['table', 'json', 'yaml'] as const);
  if (p.values.timeout !== undefined && !p.values.watch) throw new UsageError('--timeout needs --watch');
  if (p.values.watch && output !== 'table') throw new UsageError('--watch prints the table; leave out -o');
  if (p.values.watch)
    return watch(conn.client, conn.namespace, name, parseDuration('timeout', str(p.values.timeout) ?? '0'));
  const b = await get<BatchView>(conn.client, resourcePath(BATCHES, conn.namespace, name));
  if (!b) throw new UsageError(`cjbatch ${name} not found in namespace ${conn.namespace}`);
  if (output !== 'table') {
    print(output, b.status ?? {});
    return 0;
  }
  console.log(statusLine(b));
  const waiting = b.status?.conditions?.find(
    (x) => x.status === 'False' && ['PoolReady', 'Progressing', 'Succeeded'].includes(x.type),
  );
  if (waiting) console.log(`${waiting.type}: ${waiting.reason} — ${waiting.message}`);
  const vs = estimateVsActual(b);
  if (vs) console.log(`\n${vs}`);
  const audited = auditLine((b as AuditView).status?.audit);
  if (audited) console.log(`\n${audited}`);
  return 0;
}

async function resultsOf(client: KubeClient, ns: string, name: string) {
  const b = await get<BatchView>(client, resourcePath(BATCHES, ns, name));
  if (!b) throw new UsageError(`cjbatch ${name} not found in namespace ${ns}`);
  const cmName = b.status?.result?.resultsConfigMap;
  if (!cmName)
    throw new UsageError(
      `cjbatch ${name} has no results yet (phase ${b.status?.phase ?? 'Pending'}); try: kubectl cj status ${name} --watch`,
    );
  const cm = await get<{ data: Record<string, string> }>(client, resourcePath(CONFIGMAPS, ns, cmName));
  if (!cm) throw new UsageError(`results ConfigMap ${cmName} is missing`);
  return { cm, cmName };
}

/** Every essay's results: large batches continue in <name>-2 … <name>-<parts>. */
async function allResults(client: KubeClient, ns: string, cmName: string, first: Record<string, string>) {
  const parts = [first];
  for (let i = 2; i <= Number(first.parts ?? 1); i++) {
    const more = await get<{ data: Record<string, string> }>(
      client,
      resourcePath(CONFIGMAPS, ns, `${cmName}-${i}`),
    );
    if (!more)
      throw new UsageError(`results ConfigMap ${cmName}-${i} (part ${i} of ${first.parts}) is missing`);
    parts.push(more.data);
  }
  return joinResultsParts(parts);
}

async function results(p: Parsed, conn: Conn): Promise<number> {
  const output = choice('output', str(p.values.output) ?? 'table', ['table', 'csv', 'json', 'yaml'] as const);
  const { cm, cmName } = await resultsOf(conn.client, conn.namespace, p.positionals[0]!);
  const r = await allResults(conn.client, conn.namespace, cmName, cm.data);
  if (output === 'csv') process.stdout.write(r.csv);
  else if (output === 'json') console.log(JSON.stringify(r.json));
  else if (output === 'yaml') print('yaml', r.json);
  else console.log(resultsTable(r.json));
  return 0;
}

async function explain(p: Parsed, conn: Conn): Promise<number> {
  const output = choice('output', str(p.values.output) ?? 'table', ['table', 'json', 'yaml'] as const);
  const { cm } = await resultsOf(conn.client, conn.namespace, p.positionals[0]!);
  if (!cm.data['summary.json'])
    throw new UsageError('this batch was finished by an older operator: no summary.json');
  const summary = JSON.parse(cm.data['summary.json']);
  // A teacher's spot check (kubectl cj audit) comes after the batch: it is in the status only.
  const b = await get<AuditView>(conn.client, resourcePath(BATCHES, conn.namespace, p.positionals[0]!));
  const audit = b?.status?.audit;
  if (output === 'table') {
    console.log(explainText(summary));
    const line = auditLine(audit);
    console.log(
      line
        ? `\nHuman check of the AI judge: ${line}`
        : `\nHuman check of the AI judge: none yet (kubectl cj audit ${p.positionals[0]})`,
    );
  } else print(output, audit ? { ...summary, audit } : summary);
  return 0;
}

function checkAuditFlags(p: Parsed) {
  parsePairs(str(p.values.pairs));
  const judge = str(p.values.judge);
  if (judge !== undefined && !validJudge(judge))
    throw new UsageError(`--judge ${judge}: 1–63 letters, digits, spaces or ._@- (e.g. ms-lee)`);
  parseDuration('timeout', str(p.values.timeout) ?? '2m');
}

async function audit(p: Parsed, conn: Conn): Promise<number> {
  return runAudit({
    client: conn.client,
    namespace: conn.namespace,
    name: p.positionals[0]!,
    pairs: parsePairs(str(p.values.pairs)),
    judge: str(p.values.judge) ?? AUDIT_DEFAULT_JUDGE,
    timeoutMs: parseDuration('timeout', str(p.values.timeout) ?? '2m') || Number.POSITIVE_INFINITY,
    input: process.stdin,
    out: process.stdout,
  });
}

function printVersion(p: Parsed): number {
  const output = choice('output', str(p.values.output) ?? 'name', ['name', 'json', 'yaml'] as const);
  const v = { clientVersion: { name: 'kubectl-cj', version: version(), node: process.version } };
  if (output === 'name') console.log(`kubectl-cj ${version()}`);
  else print(output, v);
  return 0;
}

// ---------------------------------------------------------------- main
export async function main(argv: string[]): Promise<number> {
  const { name, rest } = splitCommand(argv);
  if (argv.includes('--version') && (!name || name === 'version'))
    return printVersion({ values: {}, positionals: [] });
  if (!name || name === 'help') {
    const topic = name === 'help' ? rest.find((a) => !a.startsWith('-')) : undefined;
    const cmd = COMMANDS.find((c) => c.name === topic);
    if (cmd) {
      process.stdout.write(commandHelp(cmd));
      return 0;
    }
    if (topic) {
      console.error(`unknown command "${topic}"\nRun 'kubectl cj --help' for the commands.`);
      return 2;
    }
    // `kubectl cj` alone, -h, --help, help: the overview. Anything else is a mistake.
    const asked = name === 'help' || wantsHelp(argv);
    (asked ? process.stdout : process.stderr).write(rootHelp(COMMANDS, version()));
    return asked ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    const { nearest } = await import('./args.js');
    const guess = nearest(
      name,
      COMMANDS.map((c) => c.name),
    );
    console.error(
      `unknown command "${name}" for "kubectl cj"${guess ? `; did you mean ${guess}?` : ''}\nRun 'kubectl cj --help' for the commands.`,
    );
    return 2;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(cmd));
    return 0;
  }
  let conn: Conn | undefined;
  try {
    const p = parse(cmd, rest);
    const withConn = async (f: (p: Parsed, c: Conn) => Promise<number>) => {
      conn = await connect(connFlags(p));
      return f(p, conn);
    };
    switch (cmd.name) {
      case 'submit':
        return await submit(p, (c) => {
          conn = c;
        });
      case 'estimate':
        return await estimate(p, (c) => {
          conn = c;
        });
      case 'status':
        return await withConn(status);
      case 'results':
        return await withConn(results);
      case 'explain':
        return await withConn(explain);
      case 'audit':
        checkAuditFlags(p); // before connecting: a bad flag needs no cluster
        return await withConn(audit);
      default:
        return printVersion(p);
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof SourceError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    const words = conn ? apiFailure(err, conn) : undefined;
    console.error(`error: ${words ?? (err as Error)?.message ?? err}`);
    return 1;
  } finally {
    conn?.client.close();
  }
}

// Run as a program (kubectl-cj on PATH, the built .js, or the .ts through tsx), not when imported.
if (/^kubectl-cj(\.js|\.ts)?$/.test(path.basename(process.argv[1] ?? ''))) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`error: ${err?.message ?? err}`);
      process.exitCode = 1;
    },
  );
}

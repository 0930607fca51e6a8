#!/usr/bin/env node
/**
 * kubectl-cj: the teacher's and pipeline's CLI (kubectl finds it as `kubectl cj` when it is on PATH).
 *   kubectl cj submit <dir|file.jsonl> --pool P [--name N] [--anchors anchors.jsonl] [--grades F,E,D,C,B,A]
 *                     [--assignment assignment.json] [--budget N] [--wait]
 *   kubectl cj status <batch> [--once]     live progress: bar, round, stability, time left, cost
 *   kubectl cj results <batch> [-o table|csv|json]
 *   kubectl cj explain <batch>             why it stopped; judge quality
 * Global: -n/--namespace (default: the kubeconfig context's namespace).
 */
import * as k8s from '@kubernetes/client-node';
import { type BatchResults, joinResultsParts } from '../../../contract/src/results.js';
import { CJBatchSpecSchema, estimateTokens, LLMProviderPoolSpecSchema } from '../api/index.js';
import { isNotFound, KubeClient, resourcePath } from '../kube/rest.js';
import { essayLimitFor, formatErrors, validateBatch } from '../validation/index.js';
import { oversizedEssays, readAnchors, readAssignment, readEssays, SourceError } from './essays.js';

export { invalidUtf8Offset, readEssays } from './essays.js';

const BATCHES = { group: 'cj.huleedu.io', version: 'v1alpha1', plural: 'cjbatches' };
const POOLS = { group: 'cj.huleedu.io', version: 'v1alpha1', plural: 'llmproviderpools' };
const CONFIGMAPS = { group: '', version: 'v1', plural: 'configmaps' };

class UsageError extends Error {}

interface Args {
  positional: string[];
  flags: Record<string, string | true>;
}

function parseArgs(argv: string[]): Args {
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-n' || a === '-o') flags[a === '-n' ? 'namespace' : 'output'] = argv[++i] ?? '';
    else if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2) as [string, string | undefined];
      if (v !== undefined) flags[k] = v;
      else if (['wait', 'once', 'help'].includes(k)) flags[k] = true;
      else flags[k] = argv[++i] ?? '';
    } else positional.push(a);
  }
  return { positional, flags };
}

const str = (v: string | true | undefined) => (typeof v === 'string' ? v : undefined);

async function context(flags: Args['flags']) {
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const ns = str(flags.namespace) ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { kc, ns, client: await KubeClient.fromDefault() };
}

// ---------------------------------------------------------------- submit
async function submit(a: Args): Promise<number> {
  const source = a.positional[0];
  const pool = str(a.flags.pool);
  if (!source || !pool)
    throw new UsageError('usage: kubectl cj submit <dir|essays.jsonl> --pool <pool> [--wait]');
  const { ns, client } = await context(a.flags);
  const name =
    str(a.flags.name) ?? `cj-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '').toLowerCase()}`;
  const { essays: fileEssays, problems } = readEssays(source);
  const anchorsFile = str(a.flags.anchors);
  const anchorItems = anchorsFile ? readAnchors(anchorsFile, problems) : [];
  const assignmentFile = str(a.flags.assignment);
  const assignment = assignmentFile
    ? readAssignment(assignmentFile)
    : { title: name, instructions: 'Write an essay.', rubric: 'Which essay is better overall?' };
  // Essays too large for the pool's model, named by file (the webhook would name ConfigMap lines).
  const poolObj = await get<{ spec?: unknown }>(client, resourcePath(POOLS, ns, pool));
  const poolSpec = LLMProviderPoolSpecSchema.safeParse(poolObj?.spec);
  if (poolSpec.success) {
    const assignmentTokens =
      estimateTokens(assignment.title) +
      estimateTokens(assignment.instructions) +
      estimateTokens(assignment.rubric);
    const limit = essayLimitFor(pool, poolSpec.data, assignmentTokens);
    problems.push(
      ...oversizedEssays('essay', fileEssays, limit),
      ...oversizedEssays('anchor', anchorItems, limit),
    );
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 20);
    const more = problems.length > shown.length ? `\n  ... and ${problems.length - shown.length} more` : '';
    console.error(`The batch was not submitted (nothing was written):\n  ${shown.join('\n  ')}${more}`);
    return 2;
  }
  const essays = fileEssays.map(({ id, text }) => ({ id, text }));
  const anchors = anchorItems.map(({ id, grade, text }) => ({ id, grade, text }));
  const grades = (str(a.flags.grades) ?? 'F,E,D,C,B,A').split(',').map((g) => g.trim());
  // Essays travel in a ConfigMap (JSONL) so a large class never hits the object size of the CJBatch.
  const cmName = `${name}-essays`;
  const spec = {
    providerPoolRef: { name: pool },
    assignment: {
      title: { value: assignment.title },
      instructions: { value: assignment.instructions },
      rubric: { value: assignment.rubric },
    },
    essays: { configMapRefs: [{ name: cmName, format: 'jsonl' }] },
    ...(anchors.length ? { anchors } : {}),
    gradeScale: { grades },
    ...(str(a.flags.budget) ? { budget: { maxComparisons: Number(a.flags.budget) } } : {}),
  };
  const cm = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: cmName, namespace: ns, labels: { 'cj.huleedu.io/batch': name } },
    data: { 'essays.jsonl': `${essays.map((e) => JSON.stringify(e)).join('\n')}\n` },
  };
  const batch = {
    apiVersion: 'cj.huleedu.io/v1alpha1',
    kind: 'CJBatch',
    metadata: { name, namespace: ns },
    spec,
  };
  // Same checks as the webhook, before anything is written: nothing half-submitted.
  const parsed = CJBatchSpecSchema.safeParse(spec);
  const v = await validateBatch(batch, {
    namespace: ns,
    getPool: async (n) => get(client, resourcePath(POOLS, ns, n)),
    getConfigMap: async (n) => (n === cmName ? cm : get(client, resourcePath(CONFIGMAPS, ns, n))),
  });
  if (!parsed.success || v.errors.length > 0) {
    console.error(`The batch was not submitted:\n${formatErrors(v.errors)}`);
    if (!parsed.success)
      for (const i of parsed.error.issues) console.error(`  spec.${i.path.join('.')}: ${i.message}`);
    return 2;
  }
  for (const w of v.warnings) console.error(`Warning: ${w}`);
  await client.apply(resourcePath(CONFIGMAPS, ns, cmName), cm, 'kubectl-cj');
  const created = await client.create<{ metadata: { uid: string } }>(resourcePath(BATCHES, ns), batch);
  // Tie the essays' ConfigMap to the batch so deleting the batch removes it.
  await client.mergePatch(resourcePath(CONFIGMAPS, ns, cmName), {
    metadata: {
      ownerReferences: [{ apiVersion: batch.apiVersion, kind: 'CJBatch', name, uid: created.metadata.uid }],
    },
  });
  console.log(
    `cjbatch/${name} submitted in ${ns}: ${essays.length} essays, ${anchors.length} anchors, pool ${pool}`,
  );
  return a.flags.wait ? watch(client, ns, name, false) : 0;
}

async function get<T>(client: KubeClient, p: string): Promise<T | undefined> {
  try {
    return await client.get<T>(p);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

// ---------------------------------------------------------------- status
interface BatchView {
  status?: {
    phase?: string;
    round?: number;
    comparisons?: { completed?: number; failed?: number; pending?: number };
    budget?: { total?: number; source?: string };
    stability?: { rankCorrelation?: number; reliability?: number; meanGradeConfidence?: number };
    cost?: { estimatedUSD?: string; inputTokens?: number; outputTokens?: number };
    conditions?: { type: string; status: string; reason: string; message: string }[];
    startTime?: string;
    result?: { resultsConfigMap?: string };
  };
}

export function statusLine(b: BatchView, now = Date.now()): string {
  const s = b.status ?? {};
  const done = s.comparisons?.completed ?? 0;
  const total = s.budget?.total ?? 0;
  const width = 24;
  const filled = total ? Math.min(width, Math.round((done / total) * width)) : 0;
  const elapsed = s.startTime ? (now - Date.parse(s.startTime)) / 1000 : 0;
  const rate = elapsed > 0 ? done / elapsed : 0;
  const left = rate > 0 && total > done ? ` ~${Math.ceil((total - done) / rate)}s left (at most)` : '';
  const stab =
    s.stability?.rankCorrelation !== undefined ? ` stability ${s.stability.rankCorrelation.toFixed(3)}` : '';
  const cost = s.cost?.estimatedUSD ? ` $${Number(s.cost.estimatedUSD).toFixed(4)}` : '';
  const failed = s.comparisons?.failed ? ` (${s.comparisons.failed} failed)` : '';
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${done}/${total || '?'}${failed} ${s.phase ?? 'Pending'} round ${s.round ?? 0}${stab}${cost}${s.phase === 'Comparing' || s.phase === 'Scoring' ? left : ''}`;
}

async function watch(client: KubeClient, ns: string, name: string, once: boolean): Promise<number> {
  const tty = process.stdout.isTTY;
  for (;;) {
    const b = await get<BatchView>(client, resourcePath(BATCHES, ns, name));
    if (!b) {
      console.error(`cjbatch ${name} not found in ${ns}`);
      return 1;
    }
    const line = statusLine(b);
    const phase = b.status?.phase;
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    if (tty && !once) process.stdout.write(`\r\x1b[2K${line}`);
    else if (once || terminal) console.log(line);
    if (terminal || once) {
      if (tty && !once) process.stdout.write('\n');
      const c = b.status?.conditions?.find((x) => x.type === 'Succeeded');
      if (terminal && c) console.log(`${phase}: ${c.reason} — ${c.message}`);
      else if (!terminal) {
        const waiting = b.status?.conditions?.find(
          (x) => x.status === 'False' && ['PoolReady', 'Progressing'].includes(x.type),
        );
        if (waiting) console.log(`${waiting.type}: ${waiting.reason} — ${waiting.message}`);
      }
      return phase === 'Failed' ? 1 : 0;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

// ---------------------------------------------------------------- results

async function resultsOf(client: KubeClient, ns: string, name: string) {
  const b = await get<BatchView>(client, resourcePath(BATCHES, ns, name));
  if (!b) throw new UsageError(`cjbatch ${name} not found in ${ns}`);
  const cmName = b.status?.result?.resultsConfigMap;
  if (!cmName)
    throw new UsageError(
      `cjbatch ${name} has no results yet (phase ${b.status?.phase ?? 'Pending'}); try: kubectl cj status ${name}`,
    );
  const cm = await get<{ data: Record<string, string> }>(client, resourcePath(CONFIGMAPS, ns, cmName));
  if (!cm) throw new UsageError(`results ConfigMap ${cmName} is missing`);
  return { batch: b, cm, cmName };
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

/**
 * The teacher's table: the class's essays, best first. RANK counts the class's essays only (the
 * stored `rank` runs over essays and anchors together, so it skips the anchors' places).
 */
export function resultsTable(r: BatchResults): string {
  const rows = r.essays.filter((e) => !e.anchor).sort((x, y) => x.rank - y.rank);
  const lines = ['RANK  ESSAY                SCORE ±   SE  GRADE  P(GRADE)  80% INTERVAL'];
  for (const [t, e] of rows.entries()) {
    const g = e.grade;
    lines.push(
      `${String(t + 1).padStart(4)}  ${e.essayId.padEnd(18).slice(0, 18)} ${e.score.toFixed(2).padStart(7)} ± ${e.se.toFixed(2)}  ${(g?.assigned ?? '-').padEnd(5)}  ${g ? g.assignedProbability.toFixed(2).padStart(8) : '       -'}  ${g ? `${g.interval80[0]}–${g.interval80[1]}` : ''}${e.flags?.length ? '  !' : ''}`,
    );
  }
  lines.push('', `grades: ${r.gradeDistribution.map((g) => `${g.grade} ${g.count}`).join(', ')}`);
  const flagged = rows.filter((e) => e.flags?.length);
  if (flagged.length > 0)
    lines.push(
      `! possible prompt injection (judged as data; worth a read): ${flagged
        .map((e) => `${e.essayId} (${e.flags!.map((f) => f.replace('injection:', '')).join(', ')})`)
        .join('; ')}`,
    );
  return lines.join('\n');
}

async function results(a: Args): Promise<number> {
  const name = a.positional[0];
  if (!name) throw new UsageError('usage: kubectl cj results <batch> [-o table|csv|json]');
  const { ns, client } = await context(a.flags);
  const { cm, cmName } = await resultsOf(client, ns, name);
  const r = await allResults(client, ns, cmName, cm.data);
  const out = str(a.flags.output) ?? 'table';
  if (out === 'csv') process.stdout.write(r.csv);
  else if (out === 'json') console.log(JSON.stringify(r.json));
  else if (out === 'table') console.log(resultsTable(r.json));
  else throw new UsageError(`-o ${out}: use table, csv or json`);
  return 0;
}

// ---------------------------------------------------------------- explain
interface Summary {
  stoppedBecause?: string;
  rounds?: number;
  checks?: { name: string; value: number | null; target: number; pass: boolean }[];
  judge?: {
    positionConsistency?: number;
    reversedPairs?: number;
    lapse?: number;
    bias?: number;
    aWinShare?: number;
  };
  reliability?: { eap?: number; splitHalf?: number };
  expectedSpearman?: number;
  meanModalProbability?: number;
  connected?: boolean;
  anchorCalibration?: {
    heldOut: number;
    exact?: number;
    adjacent?: number;
    qwk?: number;
    coverage80?: number;
  } | null;
}

export function explainText(summary: Summary): string {
  const f = (v: unknown, d = 3) => (typeof v === 'number' ? v.toFixed(d) : 'n/a');
  const lines = [`Stopped because: ${summary.stoppedBecause} after ${summary.rounds} rounds.`];
  for (const c of summary.checks ?? [])
    lines.push(`  ${c.pass ? '✓' : '✗'} ${c.name}: ${f(c.value)} (target ${f(c.target)})`);
  const j = summary.judge ?? {};
  lines.push(
    '',
    'Judge quality:',
    `  position consistency (both orders agree): ${f(j.positionConsistency)} over ${j.reversedPairs ?? 0} reversed pairs`,
    `  model lapse rate (effective, below the judge's true rate): ${f(j.lapse)}; first-position bias: ${f(j.bias)} logits; A-wins share: ${f(j.aWinShare)}`,
    '',
    `Reliability: EAP ${f(summary.reliability?.eap)}, split-half ${f(summary.reliability?.splitHalf)}; expected Spearman with the true order ${f(summary.expectedSpearman)}`,
    `Mean P(modal grade): ${f(summary.meanModalProbability)}; graph connected: ${summary.connected}`,
  );
  const cal = summary.anchorCalibration;
  if (cal)
    lines.push(
      `Held-out anchors (${cal.heldOut}): exact ${f(cal.exact)}, adjacent ${f(cal.adjacent)}, QWK ${f(cal.qwk)}, 80% interval coverage ${f(cal.coverage80)}`,
    );
  return lines.join('\n');
}

async function explain(a: Args): Promise<number> {
  const name = a.positional[0];
  if (!name) throw new UsageError('usage: kubectl cj explain <batch>');
  const { ns, client } = await context(a.flags);
  const { cm } = await resultsOf(client, ns, name);
  if (!cm.data['summary.json'])
    throw new UsageError('this batch was finished by an older operator: no summary.json');
  console.log(explainText(JSON.parse(cm.data['summary.json'])));
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const a = parseArgs(rest);
  try {
    switch (cmd) {
      case 'submit':
        return await submit(a);
      case 'status': {
        if (!a.positional[0]) throw new UsageError('usage: kubectl cj status <batch> [--once]');
        const { ns, client } = await context(a.flags);
        return await watch(client, ns, a.positional[0], !!a.flags.once);
      }
      case 'results':
        return await results(a);
      case 'explain':
        return await explain(a);
      default:
        console.error('usage: kubectl cj <submit|status|results|explain> ... (see --help of each)');
        return 2;
    }
  } catch (err) {
    if (err instanceof UsageError || err instanceof SourceError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('kubectl-cj')) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(err?.message ?? err);
      process.exitCode = 1;
    },
  );
}

// `kubectl cj estimate`: what a class folder (or a CJBatch manifest) will take on a pool before
// anything runs — comparisons, tokens and cost per batching mode, wall time under the pool's
// limits. The model is contract/src/estimate.ts (docs/estimate.md); the operator keeps the same
// estimate in the batch's status when it starts.
import { existsSync, readFileSync, statSync } from 'node:fs';
import YAML from 'yaml';
import { CONVERGES_FROM_ITEMS, type Estimate } from '../../../contract/src/estimate.js';
import { annotatedRoundsMode, type RoundsMode } from '../../../contract/src/rounds-mode.js';
import {
  type CJBatchSpec,
  CJBatchSpecSchema,
  estimateForBatch,
  humanSeconds,
  type LLMProviderPoolSpec,
  LLMProviderPoolSpecSchema,
} from '../api/index.js';
import { type KubeClient, resourcePath } from '../kube/rest.js';
import { parseEssayConfigMap } from '../validation/index.js';
import { UsageError } from './args.js';
import { readAnchors, readAssignment, readEssays, SourceError } from './essays.js';
import { CONFIGMAPS, classFiles, get, POOLS } from './submit.js';

export interface EstimateSource {
  /** Where the texts came from, for the heading. */
  what: string;
  spec: CJBatchSpec;
  essays: string[];
  anchors: string[];
  assignment: { title: string; instructions: string; rubric: string };
  /** The pool the manifest names (a folder names none). */
  poolRef?: string;
  /** The manifest's rounds-mode annotation, if it has one. */
  roundsMode?: RoundsMode;
}

type Doc = {
  kind?: string;
  metadata?: { name?: string; annotations?: Record<string, string> };
  spec?: unknown;
  data?: Record<string, string>;
};

const isManifest = (source: string) =>
  existsSync(source) && statSync(source).isFile() && /\.(ya?ml|json)$/i.test(source);

function readDocs(file: string): Doc[] {
  const text = readFileSync(file, 'utf8');
  try {
    return YAML.parseAllDocuments(text)
      .map((d) => d.toJS() as Doc | null)
      .flatMap((d) =>
        d && (d as { kind?: string }).kind === 'List' ? ((d as { items?: Doc[] }).items ?? []) : [d],
      )
      .filter((d): d is Doc => !!d && typeof d === 'object');
  } catch (err) {
    throw new SourceError(`${file}: not valid YAML or JSON (${(err as Error).message})`);
  }
}

/**
 * The texts and spec of a class folder or JSONL file (as `submit` reads them), or of a CJBatch
 * manifest; a manifest's essay ConfigMaps come from the same file, else from the cluster.
 */
export async function estimateSource(
  source: string,
  flags: { anchors?: string | undefined; assignment?: string | undefined; budget?: string | undefined },
  client?: KubeClient,
  namespace = 'default',
): Promise<EstimateSource> {
  if (!existsSync(source)) throw new UsageError(`${source} does not exist`);
  const budget = flags.budget === undefined ? undefined : Number(flags.budget);
  if (budget !== undefined && (!Number.isInteger(budget) || budget < 1))
    throw new UsageError(`--budget ${flags.budget}: give the most comparisons to run, a whole number ≥ 1`);
  if (!isManifest(source)) {
    const files = classFiles(source, flags.anchors, flags.assignment);
    const { essays, problems } = readEssays(files.essays);
    const anchors = files.anchors ? readAnchors(files.anchors, problems) : [];
    if (problems.length > 0) throw new SourceError(problems.slice(0, 20).join('\n  '));
    const a = files.assignment
      ? readAssignment(files.assignment)
      : { title: files.name, instructions: 'Write an essay.', rubric: 'Which essay is better overall?' };
    // A folder has no spec: the CRD's defaults apply (parallelism 2, minComparisonsPerEssay 4).
    const spec = (budget !== undefined ? { budget: { maxComparisons: budget } } : {}) as CJBatchSpec;
    return {
      what: `${essays.length} essays and ${anchors.length} anchors from ${source}`,
      spec,
      essays: essays.map((e) => e.text),
      anchors: anchors.map((e) => e.text),
      assignment: a,
    };
  }
  const docs = readDocs(source);
  const batch = docs.find((d) => d.kind === 'CJBatch');
  if (!batch)
    throw new SourceError(`${source}: no CJBatch in the file; give a class folder or a CJBatch manifest`);
  const parsed = CJBatchSpecSchema.safeParse(batch.spec);
  if (!parsed.success)
    throw new SourceError(
      `${source}: ${parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  const roundsMode = annotatedRoundsMode(batch.metadata?.annotations, (m) => {
    throw new SourceError(`${source}: ${m}`);
  });
  const spec: CJBatchSpec =
    budget !== undefined ? { ...parsed.data, budget: { maxComparisons: budget } } : parsed.data;
  const configMap = async (name: string): Promise<Doc | undefined> => {
    const local = docs.find((d) => d.kind === 'ConfigMap' && d.metadata?.name === name);
    if (local) return local;
    if (!client)
      throw new UsageError(
        `${source}: ConfigMap "${name}" is not in the file; put it in the same file or run against a cluster where it exists`,
      );
    return get<Doc>(client, resourcePath(CONFIGMAPS, namespace, name));
  };
  const text = async (
    v: { value?: string | undefined; configMapKeyRef?: { name: string; key: string } | undefined },
    field: string,
  ) => {
    if (v.value !== undefined) return v.value;
    const ref = v.configMapKeyRef!;
    const t = (await configMap(ref.name))?.data?.[ref.key];
    if (t === undefined) throw new UsageError(`${field}: ConfigMap "${ref.name}" key "${ref.key}" not found`);
    return t;
  };
  const essays = (spec.essays.inline ?? []).map((e) => e.text);
  for (const [i, ref] of (spec.essays.configMapRefs ?? []).entries()) {
    const cm = await configMap(ref.name);
    if (!cm) throw new UsageError(`spec.essays.configMapRefs[${i}]: ConfigMap "${ref.name}" not found`);
    const r = parseEssayConfigMap(ref.name, ref.format ?? 'perKey', { data: cm.data ?? {} });
    if (r.errors.length > 0) throw new SourceError(r.errors.slice(0, 20).join('\n  '));
    essays.push(...r.essays.map((e) => e.text));
  }
  const anchors: string[] = [];
  for (const [i, a] of (spec.anchors ?? []).entries())
    anchors.push(await text({ value: a.text, configMapKeyRef: a.configMapKeyRef }, `spec.anchors[${i}]`));
  return {
    what: `cjbatch/${batch.metadata?.name ?? '?'} (${essays.length} essays, ${anchors.length} anchors)`,
    spec,
    essays,
    anchors,
    assignment: {
      title: await text(spec.assignment.title, 'spec.assignment.title'),
      instructions: await text(spec.assignment.instructions, 'spec.assignment.instructions'),
      rubric: await text(spec.assignment.rubric, 'spec.assignment.rubric'),
    },
    poolRef: spec.providerPoolRef.name,
    ...(roundsMode ? { roundsMode } : {}),
  };
}

/** A pool from a manifest file (offline) or from the cluster. */
export async function estimatePool(
  opts: { poolFile?: string | undefined; pool?: string | undefined },
  client?: KubeClient,
  namespace = 'default',
): Promise<{ name: string; spec: LLMProviderPoolSpec }> {
  let name: string;
  let raw: unknown;
  if (opts.poolFile) {
    if (!existsSync(opts.poolFile)) throw new UsageError(`--pool-file ${opts.poolFile} does not exist`);
    const doc = readDocs(opts.poolFile).find((d) => d.kind === 'LLMProviderPool');
    if (!doc) throw new UsageError(`--pool-file ${opts.poolFile}: no LLMProviderPool in the file`);
    name = doc.metadata?.name ?? opts.poolFile;
    raw = doc.spec;
  } else {
    if (!opts.pool || !client)
      throw new UsageError(
        'give the pool: --pool <name> (read from the cluster) or --pool-file <pool.yaml> (offline)',
      );
    name = opts.pool;
    const obj = await get<{ spec?: unknown }>(client, resourcePath(POOLS, namespace, name));
    if (!obj)
      throw new UsageError(
        `LLMProviderPool "${name}" not found in namespace ${namespace} (list them: kubectl get llmproviderpools)`,
      );
    raw = obj.spec;
  }
  const spec = LLMProviderPoolSpecSchema.safeParse(raw);
  if (!spec.success)
    throw new UsageError(
      `pool ${name}: ${spec.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return { name, spec: spec.data };
}

export function estimateOf(
  src: EstimateSource,
  pool: LLMProviderPoolSpec,
  assume?: { roundOverheadSeconds?: number; warmPool?: boolean },
  roundsMode?: RoundsMode,
): Estimate {
  if (src.essays.length + src.anchors.length < 2)
    throw new UsageError(`${src.what}: a batch needs at least two essays (anchors included)`);
  const mode = roundsMode ?? src.roundsMode;
  return estimateForBatch(src.spec, src, pool, {
    ...(assume ? { assume } : {}),
    ...(mode ? { roundsMode: mode } : {}),
  });
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const usd = (x: number | undefined) => (x === undefined ? '—' : `$${x.toFixed(x < 1 ? 4 : 2)}`);

export function estimateTable(
  src: EstimateSource,
  poolName: string,
  pool: LLMProviderPoolSpec,
  e: Estimate,
): string {
  const c = e.comparisons;
  const a = e.assumptions;
  const items = src.essays.length + src.anchors.length;
  const stop =
    c.endsBy === 'converged'
      ? `the engine is expected to stop here, before the budget (range ${n(c.low)}–${n(c.high)})`
      : c.endsBy === 'complete'
        ? `every one of the ${n((items * (items - 1)) / 2)} distinct pairs is judged before the budget is spent`
        : a.stopPerItem === null
          ? `the budget ends the batch (the engine is not expected to converge first: ${items < CONVERGES_FROM_ITEMS ? `a class under ${CONVERGES_FROM_ITEMS} items` : "this pool's judge"})`
          : `the budget ends the batch before the engine's stop (expected near ${n(a.stopPerItem * items)})`;
  const rows = [
    ['MODE', 'CALLS', 'INPUT', 'CACHE READ', 'CACHE WRITE', 'OUTPUT', 'COST'],
    ...e.modes.map((m, i) => [
      `${m.mode}${i === 0 ? ' (pool)' : ''}`,
      n(m.calls),
      n(m.tokens.input),
      n(m.tokens.cacheRead),
      n(m.tokens.cacheWrite),
      n(m.tokens.output),
      usd(m.costUsd),
    ]),
  ];
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  const table = rows.map((r) =>
    r.map((x, j) => (j === 0 ? x.padEnd(widths[j]!) : x.padStart(widths[j]!))).join('  '),
  );
  const wall = e.wall.providerDependent
    ? `${humanSeconds(e.wall.seconds)} of our own, plus the provider's batch processing (minutes to 24 h)`
    : humanSeconds(e.wall.seconds);
  return [
    `Estimate for ${src.what} on pool ${poolName} (${pool.model}, ${pool.batching.mode})`,
    `Comparisons: ${n(c.expected)} of a budget of ${n(c.budget)} in ${c.rounds} rounds of ${c.roundSize}: ${stop}`,
    '',
    ...table,
    '',
    `Wall time: about ${wall} (${e.wall.perMinute.toFixed(1)} comparisons/min, limited by ${e.wall.limitedBy})`,
    `Assumed: ${a.outputTokensPerPair} output tokens per verdict; prefix ${n(a.prefixTokens)} tokens ${a.prefixCached ? 'cached' : 'not cached'}; ${n(a.meanPairInputTokens)} input tokens per pair; ${a.latencySeconds} s per call; ${a.roundsMode === 'pipelined' ? `pipelined rounds (${a.roundOverheadSeconds} s for the workers' Job to start and ${a.roundOverheadSeconds} s for the last scoring pass)` : `round by round (${a.roundOverheadSeconds} s per round for its Jobs)`}; ${a.rampSeconds} s for the slow start of an idle pool.`,
    pool.pricing ? '' : 'No cost: the pool has no spec.pricing.',
    'Actual figures vary with the judge and the essays (docs/estimate.md says by how much).',
  ]
    .filter((l, i, all) => l !== '' || (i > 0 && all[i - 1] !== ''))
    .join('\n');
}

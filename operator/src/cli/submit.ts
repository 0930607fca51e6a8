// `kubectl cj submit`: a teacher's folder (or JSONL file) becomes a CJBatch and the ConfigMap that
// carries its essays. Everything is checked before anything is written, with every problem named
// by the teacher's file and line (never by the ConfigMap the CLI builds); a batch the apiserver
// refuses takes its ConfigMap with it, so a failed submit leaves nothing behind.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  CJBatchSpecSchema,
  estimateTokens,
  LLMProviderPoolSpecSchema,
  MAX_INLINE_ESSAYS,
  RESOURCES,
} from '../api/index.js';
import { ApiError, isNotFound, type KubeClient, resourcePath, withQuery } from '../kube/rest.js';
import { essayLimitFor, type FieldError, validateBatch } from '../validation/index.js';
import { UsageError } from './args.js';
import {
  type AssignmentFile,
  type FileEssay,
  oversizedEssays,
  readAnchors,
  readAssignment,
  readEssays,
} from './essays.js';

export const { batches: BATCHES, pools: POOLS, configMaps: CONFIGMAPS } = RESOURCES;

/** What a class folder holds (docs/teachers.md): essays/, and optionally anchors.jsonl, assignment.json. */
export interface ClassFiles {
  essays: string;
  anchors?: string | undefined;
  assignment?: string | undefined;
  /** The batch name when --name is not given: the folder's (or file's) name, as a Kubernetes name. */
  name: string;
}

export function classFiles(source: string, anchors?: string, assignment?: string): ClassFiles {
  if (!existsSync(source)) throw new UsageError(`${source} does not exist`);
  const abs = path.resolve(source);
  const isClass = statSync(abs).isDirectory() && existsSync(path.join(abs, 'essays'));
  const beside = (f: string) => (isClass && existsSync(path.join(abs, f)) ? path.join(source, f) : undefined);
  const base = path.basename(abs).replace(/\.[^.]+$/, '');
  return {
    essays: isClass ? path.join(source, 'essays') : source,
    anchors: anchors ?? beside('anchors.jsonl'),
    assignment: assignment ?? beside('assignment.json'),
    name: kubeName(base),
  };
}

/** A DNS-1123 name from a folder name: Class 9A → class-9a. */
export function kubeName(s: string): string {
  const n = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50)
    .replace(/-+$/, '');
  return n || `cj-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '').toLowerCase()}`;
}

export interface SubmitInput {
  source: string;
  pool: string;
  name?: string | undefined;
  anchors?: string | undefined;
  assignment?: string | undefined;
  grades?: string | undefined;
  budget?: string | undefined;
  namespace: string;
}

interface KubeObj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
}

export interface Built {
  name: string;
  configMap: KubeObj & { data: Record<string, string> };
  batch: KubeObj & { spec: Record<string, unknown> };
  essays: FileEssay[];
  anchors: FileEssay[];
  /** Problems found in the files, each naming file and line. */
  problems: string[];
  warnings: string[];
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Reads the files and builds both objects, checked as the webhook checks them. `client`
 * undefined = offline (--dry-run=client): the pool is not looked up.
 */
export async function buildSubmission(input: SubmitInput, client?: KubeClient): Promise<Built> {
  const files = classFiles(input.source, input.anchors, input.assignment);
  const name = input.name ?? files.name;
  if (!NAME_RE.test(name) || name.length > 50)
    throw new UsageError(
      `--name ${name}: use lower-case letters, digits and '-', start and end with a letter or digit, at most 50 characters`,
    );
  const ns = input.namespace;
  const { essays, problems } = readEssays(files.essays);
  const anchors = files.anchors ? readAnchors(files.anchors, problems) : [];
  const assignment: AssignmentFile = files.assignment
    ? readAssignment(files.assignment)
    : { title: name, instructions: 'Write an essay.', rubric: 'Which essay is better overall?' };
  const poolObj = client
    ? await get<{ spec?: unknown }>(client, resourcePath(POOLS, ns, input.pool))
    : undefined;
  const poolSpec = LLMProviderPoolSpecSchema.safeParse(poolObj?.spec);
  if (poolSpec.success) {
    const assignmentTokens =
      estimateTokens(assignment.title) +
      estimateTokens(assignment.instructions) +
      estimateTokens(assignment.rubric);
    const limit = essayLimitFor(input.pool, poolSpec.data, assignmentTokens);
    problems.push(...oversizedEssays('essay', essays, limit), ...oversizedEssays('anchor', anchors, limit));
  }
  const grades = (input.grades ?? 'F,E,D,C,B,A').split(',').map((g) => g.trim());
  let budget: number | undefined;
  if (input.budget !== undefined) {
    budget = Number(input.budget);
    if (!Number.isInteger(budget) || budget < 1)
      throw new UsageError(`--budget ${input.budget}: give the most comparisons to run, a whole number ≥ 1`);
  }
  // Essays travel in a ConfigMap (JSONL, one essay per line in file order) so a large class never
  // hits the object size of the CJBatch; line n is essays[n-1], which maps messages back to files.
  const cmName = `${name}-essays`;
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: cmName, namespace: ns, labels: { 'cj.huleedu.io/batch': name } },
    data: {
      'essays.jsonl': `${essays.map(({ id, text }) => JSON.stringify({ id, text })).join('\n')}\n`,
    },
  };
  const batch = {
    apiVersion: 'cj.huleedu.io/v1alpha1',
    kind: 'CJBatch',
    metadata: { name, namespace: ns },
    spec: {
      providerPoolRef: { name: input.pool },
      assignment: {
        title: { value: assignment.title },
        instructions: { value: assignment.instructions },
        rubric: { value: assignment.rubric },
      },
      essays: { configMapRefs: [{ name: cmName, format: 'jsonl' }] },
      ...(anchors.length ? { anchors: anchors.map(({ id, grade, text }) => ({ id, grade, text })) } : {}),
      gradeScale: { grades },
      ...(budget !== undefined ? { budget: { maxComparisons: budget } } : {}),
    },
  };
  const built: Built = { name, configMap, batch, essays, anchors, problems, warnings: [] };
  if (problems.length > 0) return built;
  // Same checks as the webhook. Offline, the pool is "unknown" (an object without a spec), which
  // skips the pool-dependent checks instead of reporting it missing.
  const parsed = CJBatchSpecSchema.safeParse(batch.spec);
  const v = await validateBatch(batch, {
    namespace: ns,
    getPool: async (n) => (client ? get(client, resourcePath(POOLS, ns, n)) : {}),
    getConfigMap: async (n) =>
      n === cmName ? configMap : client ? get(client, resourcePath(CONFIGMAPS, ns, n)) : undefined,
  });
  const where = { source: files.essays, cmName, essays, anchors, anchorsFile: files.anchors };
  problems.push(...v.errors.map((e) => inTeacherTerms(e, where)));
  if (!parsed.success && v.errors.length === 0)
    for (const i of parsed.error.issues) problems.push(`spec.${i.path.join('.')}: ${i.message}`);
  built.warnings = v.warnings.map((w) => inTeacherTerms({ field: '', message: w }, where).replace(/^: /, ''));
  return built;
}

interface Where {
  source: string;
  cmName: string;
  essays: FileEssay[];
  anchors: FileEssay[];
  anchorsFile?: string | undefined;
}

/**
 * A validation error (or a webhook's message) in terms of the teacher's files: the ConfigMap line
 * n is the essay read from essays[n-1].from, spec.anchors[i] the i-th line of the anchors file,
 * spec.essays.inline[i] (server dry run) the i-th essay.
 */
export function inTeacherTerms(e: FieldError, w: Where): string {
  const cm = w.cmName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const line = (n: string) => w.essays[Number(n) - 1]?.from ?? `${w.source} (essay ${n})`;
  const fix = (s: string) =>
    s
      .replace(new RegExp(`ConfigMap "${cm}" \\(key "essays\\.jsonl" line (\\d+)\\)`, 'g'), (_, n) => line(n))
      .replace(new RegExp(`ConfigMap "${cm}" key "essays\\.jsonl" line (\\d+)`, 'g'), (_, n) => line(n))
      .replace(new RegExp(`ConfigMap "${cm}"`, 'g'), w.source)
      .replace(/spec\.essays\.inline\[(\d+)\](\.\w+)?/g, (_, i) => w.essays[Number(i)]?.from ?? _)
      .replace(
        /spec\.anchors\[(\d+)\](\.\w+)?/g,
        (_, i) => w.anchors[Number(i)]?.from ?? `${w.anchorsFile} (anchor ${Number(i) + 1})`,
      )
      .replace(/spec\.essays\.configMapRefs\[0\](\.\w+)?/g, w.source)
      .replace(
        /^spec\.anchors is empty/,
        'there are no anchors (anchors.jsonl in the class folder, or --anchors)',
      )
      .replace(/^spec\.anchors\b/, w.anchorsFile ?? '--anchors');
  let field = fix(e.field);
  const message = fix(e.message).replace(/spec\.gradeScale\.grades/g, 'the grade scale (--grades)');
  // A rule over all anchors names the anchor, not its index: point at its line.
  const id = /^anchor (?:id )?"?([^\s"]+)"? /.exec(message)?.[1];
  const anchor =
    id !== undefined && field === (w.anchorsFile ?? '--anchors')
      ? w.anchors.find((a) => a.id === id)
      : undefined;
  if (anchor) field = anchor.from;
  return field && !message.startsWith(field) ? `${field}: ${message}` : message;
}

export async function get<T>(client: KubeClient, p: string): Promise<T | undefined> {
  try {
    return await client.get<T>(p);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** --dry-run=server: the apiserver (and the webhook) check both objects; nothing is stored. */
export async function serverDryRun(client: KubeClient, b: Built, ns: string): Promise<string[]> {
  const notes: string[] = [];
  await client.create(withQuery(resourcePath(CONFIGMAPS, ns), { dryRun: 'All' }), b.configMap);
  notes.push(`configmap/${b.configMap.metadata.name} created (server dry run)`);
  // The webhook reads essays from ConfigMaps that exist: send them inline, so it checks the same
  // essays, when the class fits the inline limit.
  if (b.essays.length <= MAX_INLINE_ESSAYS) {
    const inline = structuredClone(b.batch);
    inline.spec.essays = { inline: b.essays.map(({ id, text }) => ({ id, text })) };
    await client.create(withQuery(resourcePath(BATCHES, ns), { dryRun: 'All' }), inline);
    notes.push(`cjbatch.cj.huleedu.io/${b.name} created (server dry run)`);
  } else
    notes.push(
      `cjbatch.cj.huleedu.io/${b.name} checked by the CLI only: more than ${MAX_INLINE_ESSAYS} essays cannot be sent to the webhook without writing their ConfigMap`,
    );
  return notes;
}

/**
 * Creates the ConfigMap, then the batch; if the batch is refused, deletes the ConfigMap again (a
 * failed submit leaves nothing behind), then makes the batch own it (deleting the batch removes it).
 */
export async function createSubmission(client: KubeClient, b: Built, ns: string): Promise<void> {
  const cmName = b.configMap.metadata.name as string;
  if (await get(client, resourcePath(BATCHES, ns, b.name)))
    throw new UsageError(
      `cjbatch ${b.name} already exists in namespace ${ns}; choose another name with --name (its results: kubectl cj results ${b.name} -n ${ns})`,
    );
  let cm: { metadata: { uid: string } };
  try {
    cm = await client.create(resourcePath(CONFIGMAPS, ns), b.configMap);
  } catch (err) {
    if (err instanceof ApiError && err.status === 409)
      throw new UsageError(
        `ConfigMap ${cmName} already exists in namespace ${ns} (left by another submission?); delete it (kubectl delete configmap ${cmName} -n ${ns}) or choose another --name`,
      );
    throw err;
  }
  let created: { metadata: { uid: string } };
  try {
    created = await client.create(resourcePath(BATCHES, ns), b.batch);
  } catch (err) {
    await client
      .request('DELETE', resourcePath(CONFIGMAPS, ns, cmName), {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        preconditions: { uid: cm.metadata.uid },
      })
      .catch((e) => {
        if (!isNotFound(e))
          process.stderr.write(
            `The ConfigMap ${cmName} could not be removed (${(e as Error).message}); delete it: kubectl delete configmap ${cmName} -n ${ns}\n`,
          );
      });
    throw err;
  }
  await client.mergePatch(resourcePath(CONFIGMAPS, ns, cmName), {
    metadata: {
      ownerReferences: [
        { apiVersion: b.batch.apiVersion, kind: 'CJBatch', name: b.name, uid: created.metadata.uid },
      ],
    },
  });
}

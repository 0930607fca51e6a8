// One validation module for the admission webhook, the controller (which validates again, so an
// object that slipped past a down webhook gets InvalidSpec instead of running) and the CLI
// (which validates before submitting). It checks what the CRD's schema and CEL rules cannot see:
// other objects (the pool, ConfigMaps) and relations across sources (ids over inline essays and
// ConfigMaps). It also re-runs the schema with its CEL twins, so the CLI and the controller refuse
// the same objects as the apiserver even when no apiserver has looked at them.
//
// Lookups come in through `ctx` as async functions, so tests need no cluster.
import type { z } from 'zod';
import {
  type CJBatchSpec,
  CJBatchSpecSchema,
  defaultMaxComparisons,
  distinctPairs,
  effectiveLimits,
  ID_PATTERN,
  LIMIT_FIELDS,
  type LLMProviderPoolSpec,
  LLMProviderPoolSpecSchema,
} from '../api/index.js';

export interface FieldError {
  /** Dotted path with list indexes, e.g. `spec.essays.configMapRefs[1].name`. */
  field: string;
  /** What is wrong and how to fix it. */
  message: string;
}

export interface ValidationResult {
  errors: FieldError[];
  warnings: string[];
}

/** The parts of a ConfigMap or Secret the checks read. */
export interface DataObject {
  data?: Record<string, string> | undefined;
}

export interface ValidationContext {
  /** Namespace of the object under validation (for messages). */
  namespace: string;
  /** The pool's spec is parsed (and defaulted) here, so any object with a spec will do. */
  getPool(name: string): Promise<{ spec?: unknown } | undefined>;
  getConfigMap(name: string): Promise<DataObject | undefined>;
  /** Optional: when given, a missing API-key Secret is reported as a warning. */
  getSecret?(name: string): Promise<DataObject | undefined>;
}

/** Batches with fewer essays than this get a warning: the ranking carries little information. */
export const SMALL_BATCH = 4;
const ID_RE = new RegExp(ID_PATTERN);

/** Formats a zod issue path as a Kubernetes field path: spec.essays.inline[2].id. */
export function fieldPath(prefix: string, p: readonly PropertyKey[]): string {
  let out = prefix;
  for (const seg of p) out += typeof seg === 'number' ? `[${seg}]` : `.${String(seg)}`;
  return out;
}

// One message per field: zod reports e.g. both minLength and pattern for an empty id.
function schemaErrors(prefix: string, error: z.ZodError): FieldError[] {
  const seen = new Map<string, FieldError>();
  for (const i of error.issues) {
    const field = fieldPath(prefix, i.path);
    if (!seen.has(field)) seen.set(field, { field, message: i.message });
  }
  return [...seen.values()];
}

/** Formats errors the way the webhook reports them: `field: message` joined by "; ". */
export function formatErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join('; ');
}

function specOf(obj: unknown): { spec?: unknown } | undefined {
  return obj && typeof obj === 'object' ? (obj as { spec?: unknown }) : undefined;
}

export async function validatePool(pool: unknown, ctx: ValidationContext): Promise<ValidationResult> {
  const result: ValidationResult = { errors: [], warnings: [] };
  const parsed = LLMProviderPoolSpecSchema.safeParse(specOf(pool)?.spec);
  if (!parsed.success) {
    result.errors.push(...schemaErrors('spec', parsed.error));
    return result;
  }
  const spec = parsed.data;
  if (ctx.getSecret) {
    // A warning, not an error: GitOps tools may apply the pool before its Secret, and the pool
    // reports Degraded until the Secret appears.
    const secret = await ctx.getSecret(spec.apiKeySecretRef.name);
    if (!secret) {
      result.warnings.push(
        `spec.apiKeySecretRef: Secret "${spec.apiKeySecretRef.name}" not found in namespace "${ctx.namespace}"; the pool stays Degraded until it exists`,
      );
    } else if (!secret.data?.[spec.apiKeySecretRef.key]) {
      result.warnings.push(
        `spec.apiKeySecretRef.key: Secret "${spec.apiKeySecretRef.name}" has no key "${spec.apiKeySecretRef.key}"; the pool stays Degraded until it does`,
      );
    }
  }
  if (spec.provider === 'anthropic' && spec.baseURL?.startsWith('http://')) {
    result.warnings.push(
      `spec.baseURL: ${spec.baseURL} is plain HTTP; the API key would travel unencrypted unless this is a local proxy`,
    );
  }
  if (spec.batching.mode !== 'serial_bundle' && spec.batching.bundleSize > 1) {
    result.warnings.push(
      `spec.batching.bundleSize ${spec.batching.bundleSize} has no effect in mode ${spec.batching.mode}; it applies to serial_bundle only`,
    );
  }
  return result;
}

interface ItemSource {
  where: string; // field path for messages
  label: string; // human description of where the id came from
}

export async function validateBatch(batch: unknown, ctx: ValidationContext): Promise<ValidationResult> {
  const result: ValidationResult = { errors: [], warnings: [] };
  const err = (field: string, message: string) => result.errors.push({ field, message });
  const parsed = CJBatchSpecSchema.safeParse(specOf(batch)?.spec);
  if (!parsed.success) {
    result.errors.push(...schemaErrors('spec', parsed.error));
    return result;
  }
  const spec = parsed.data;

  await checkPool(spec, ctx, err);
  await checkAssignment(spec, ctx, err);

  // Essays from every source, with where each id came from, for uniqueness across sources.
  const essays = new Map<string, ItemSource>();
  const addEssay = (id: string, src: ItemSource) => {
    const prev = essays.get(id);
    if (prev) {
      err(
        src.where,
        `essay id "${id}" in ${src.label} is also used by ${prev.label}; essay ids must be unique`,
      );
    } else essays.set(id, src);
  };
  spec.essays.inline?.forEach((e, i) => {
    addEssay(e.id, { where: `spec.essays.inline[${i}].id`, label: `spec.essays.inline[${i}]` });
  });
  for (const [i, ref] of (spec.essays.configMapRefs ?? []).entries()) {
    const where = `spec.essays.configMapRefs[${i}]`;
    const cm = await ctx.getConfigMap(ref.name);
    if (!cm) {
      err(
        `${where}.name`,
        `ConfigMap "${ref.name}" not found in namespace "${ctx.namespace}"; create it before the batch or fix the name`,
      );
      continue;
    }
    const parsedEssays = parseEssayConfigMap(ref.name, ref.format, cm);
    for (const e of parsedEssays.errors) err(where, e);
    for (const e of parsedEssays.essays)
      addEssay(e.id, { where, label: `ConfigMap "${ref.name}" (${e.origin})` });
    if (parsedEssays.errors.length === 0 && parsedEssays.essays.length === 0) {
      err(where, `ConfigMap "${ref.name}" holds no essays; add essays to its data or remove the reference`);
    }
  }

  const anchors = spec.anchors ?? [];
  const anchorIds = new Set<string>();
  for (const [i, a] of anchors.entries()) {
    const where = `spec.anchors[${i}]`;
    if (anchorIds.has(a.id))
      err(`${where}.id`, `anchor id "${a.id}" is used twice; anchor ids must be unique`);
    anchorIds.add(a.id);
    const clash = essays.get(a.id);
    if (clash) {
      err(
        `${where}.id`,
        `anchor id "${a.id}" is also an essay id (${clash.label}); rename the anchor or the essay`,
      );
    }
    if (a.configMapKeyRef) {
      const msg = await keyProblem(ctx, a.configMapKeyRef.name, a.configMapKeyRef.key);
      if (msg) err(`${where}.configMapKeyRef`, msg);
    }
  }
  const grades = new Set(anchors.map((a) => a.grade));
  if (anchors.length > 0 && grades.size < 2) {
    err(
      'spec.anchors',
      `anchors cover only grade ${[...grades].join(', ')}; grades are placed between anchors, so add anchors of at least one other grade from spec.gradeScale.grades`,
    );
  }

  // Warnings: legal, but probably not what the author meant. Only for an otherwise valid batch:
  // counts from a half-parsed ConfigMap would mislead.
  if (result.errors.length > 0) return result;
  const essayCount = essays.size;
  const items = essayCount + anchors.length;
  const pairs = distinctPairs(items);
  const budget = spec.budget?.maxComparisons;
  if (budget !== undefined && budget > pairs) {
    result.warnings.push(
      `spec.budget.maxComparisons ${budget} is more than the ${pairs} distinct pairs of ${items} essays and anchors; the batch stops once every pair is judged`,
    );
  }
  if (essayCount > 0 && essayCount < SMALL_BATCH) {
    result.warnings.push(
      `only ${essayCount} ${essayCount === 1 ? 'essay' : 'essays'}: a ranking of fewer than ${SMALL_BATCH} essays carries little information`,
    );
  }
  if (anchors.length === 0) {
    result.warnings.push(
      'spec.anchors is empty: the batch will rank the essays but cannot grade them; add anchors covering at least two grades',
    );
  }
  return result;
}

/** The budget the operator uses: the spec's, or the default for this many essays and anchors. */
export function resolveBudget(
  spec: CJBatchSpec,
  essayCount: number,
): { total: number; source: 'spec' | 'default' } {
  const fromSpec = spec.budget?.maxComparisons;
  if (fromSpec !== undefined) return { total: fromSpec, source: 'spec' };
  return { total: defaultMaxComparisons(essayCount + (spec.anchors?.length ?? 0)), source: 'default' };
}

async function checkPool(
  spec: CJBatchSpec,
  ctx: ValidationContext,
  err: (field: string, message: string) => void,
): Promise<void> {
  const name = spec.providerPoolRef.name;
  const pool = await ctx.getPool(name);
  if (!pool) {
    err(
      'spec.providerPoolRef.name',
      `LLMProviderPool "${name}" not found in namespace "${ctx.namespace}"; create the pool first or fix the name`,
    );
    return;
  }
  const overrides = spec.overrides?.limits;
  if (!overrides) return;
  const poolSpec = LLMProviderPoolSpecSchema.safeParse(pool.spec);
  if (!poolSpec.success) return; // the pool's own validation reports that
  const limits = effectiveLimits(poolSpec.data.tier, (poolSpec.data as LLMProviderPoolSpec).limits);
  if (!limits) return;
  for (const f of LIMIT_FIELDS) {
    const v = overrides[f];
    if (v !== undefined && v > limits[f]) {
      err(
        `spec.overrides.limits.${f}`,
        `${v} exceeds the ${f} of LLMProviderPool "${name}" (${limits[f]}); overrides may only tighten the pool, so set at most ${limits[f]} or remove the override`,
      );
    }
  }
}

async function checkAssignment(
  spec: CJBatchSpec,
  ctx: ValidationContext,
  err: (field: string, message: string) => void,
): Promise<void> {
  for (const part of ['title', 'instructions', 'rubric'] as const) {
    const ref = spec.assignment[part].configMapKeyRef;
    if (!ref) continue;
    const msg = await keyProblem(ctx, ref.name, ref.key);
    if (msg) err(`spec.assignment.${part}.configMapKeyRef`, msg);
  }
}

async function keyProblem(ctx: ValidationContext, name: string, key: string): Promise<string | undefined> {
  const cm = await ctx.getConfigMap(name);
  if (!cm)
    return `ConfigMap "${name}" not found in namespace "${ctx.namespace}"; create it before the batch or fix the name`;
  const value = cm.data?.[key];
  if (value === undefined)
    return `ConfigMap "${name}" has no key "${key}"; add the key or fix configMapKeyRef.key`;
  if (value.trim() === '') return `ConfigMap "${name}" key "${key}" is empty; put the text in it`;
  return undefined;
}

export interface ParsedEssay {
  id: string;
  text: string;
  /** Where in the ConfigMap it came from, e.g. `key "e1"` or `key "set.jsonl" line 3`. */
  origin: string;
}

/**
 * Reads essays from a ConfigMap. perKey: each data key is an essay id, its value the text.
 * jsonl: each key holds lines `{"id": "...", "text": "..."}` (blank lines ignored).
 * Returns essays and human-readable errors (at most 5 per ConfigMap, then a count).
 */
export function parseEssayConfigMap(
  name: string,
  format: 'perKey' | 'jsonl',
  cm: DataObject,
): { essays: ParsedEssay[]; errors: string[] } {
  const essays: ParsedEssay[] = [];
  const errors: string[] = [];
  const data = cm.data ?? {};
  for (const key of Object.keys(data).sort()) {
    const value = data[key]!;
    if (format === 'perKey') {
      if (!ID_RE.test(key)) {
        errors.push(
          `ConfigMap "${name}" key "${key}" is not a valid essay id; use letters, digits, '-', '_' and '.'`,
        );
      } else if (value.trim() === '') {
        errors.push(`ConfigMap "${name}" key "${key}" is empty; put the essay text in it or remove the key`);
      } else essays.push({ id: key, text: value, origin: `key "${key}"` });
      continue;
    }
    value.split('\n').forEach((line, n) => {
      if (line.trim() === '') return;
      const at = `ConfigMap "${name}" key "${key}" line ${n + 1}`;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        errors.push(`${at} is not valid JSON; each line must be {"id": "...", "text": "..."}`);
        return;
      }
      const { id, text } = (obj ?? {}) as { id?: unknown; text?: unknown };
      if (typeof id !== 'string' || !ID_RE.test(id)) {
        errors.push(
          `${at} has no valid "id"; give every line a non-empty id of letters, digits, '-', '_' and '.'`,
        );
      } else if (typeof text !== 'string' || text.trim() === '') {
        errors.push(`${at} (id "${id}") has no text; give every line a non-empty "text"`);
      } else essays.push({ id, text, origin: `key "${key}" line ${n + 1}` });
    });
  }
  if (errors.length > 5) {
    const more = errors.length - 5;
    errors.splice(5, errors.length, `... and ${more} more problems in ConfigMap "${name}"`);
  }
  return { essays, errors };
}

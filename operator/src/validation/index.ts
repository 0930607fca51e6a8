// One validation module for the admission webhook, the controller (which validates again, so an
// object that slipped past a down webhook gets InvalidSpec instead of running) and the CLI
// (which validates before submitting). It checks what the CRD's schema and CEL rules cannot see:
// other objects (the pool, ConfigMaps) and relations across sources (ids over inline essays and
// ConfigMaps). It also re-runs the schema with its CEL twins, so the CLI and the controller refuse
// the same objects as the apiserver even when no apiserver has looked at them.
//
// Lookups come in through `ctx` as async functions, so tests need no cluster.
import type { z } from 'zod';
import { baseUrlProblem, type EgressPolicy, urlShapeProblem } from '../../../contract/src/egress.js';
import { detectInjection, type InjectionKind } from '../../../contract/src/injection.js';
import {
  type CJBatchSpec,
  CJBatchSpecSchema,
  codePoints,
  DEFAULT_CONTEXT_WINDOW_TOKENS,
  defaultMaxComparisons,
  distinctPairs,
  effectiveLimits,
  essayTextProblem,
  essayTokenLimit,
  estimateTokens,
  ID_PATTERN,
  isBlank,
  LIMIT_FIELDS,
  type LLMProviderPoolSpec,
  LLMProviderPoolSpecSchema,
  MAX_ESSAY_CHARS,
  PROMPT_RESERVE_TOKENS,
  parseDuration,
} from '../api/index.js';
import { type PlatformPolicy, platformErrors } from './platform.js';

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
  /**
   * The platform's allowlist of provider base URLs, where known (the webhook and the operator;
   * not the CLI). Secrets are deliberately not looked up: admission must not tell a tenant
   * whether a Secret or a key exists (the pool's status says what it needs).
   */
  egress?: EgressPolicy;
  /** Optional: the platform's allowed worker images and topics (the operator's settings). */
  platform?: PlatformPolicy;
}

/** Batches with fewer essays than this get a warning: the ranking carries little information. */
export const SMALL_BATCH = 4;
/**
 * Caps on what a batch may load, counted after its ConfigMaps are read (inline essays alone are
 * bounded by the schema; 50 ConfigMaps of 1 MiB are not). Beyond these the pair selection and
 * the database rows of one batch would cost every other tenant.
 */
export const MAX_ESSAYS_TOTAL = 5_000;
export const MAX_TEXT_BYTES_TOTAL = 32 * 1024 * 1024;
/**
 * A batch's name is a label value on its Jobs and pods (at most 63 characters); longer names
 * would be admitted and then fail every child write.
 */
export const MAX_BATCH_NAME = 63;
/** A round shorter than this cannot even schedule its pods; it would time out round after round. */
export const MIN_ROUND_TIMEOUT_MS = 60_000;
/** The limits of the inline assignment texts, applied to ConfigMap values too. */
const ASSIGNMENT_MAX_CHARS = { title: 1_000, instructions: 20_000, rubric: 20_000 } as const;
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

/**
 * Strings holding a NUL character, anywhere in a spec: Postgres (text and jsonb) cannot store it
 * and a process environment cannot carry it, so such an object could never run. The apiserver
 * accepts it (JSON allows \u0000), hence this check.
 */
export function nulErrors(spec: unknown, prefix = 'spec'): FieldError[] {
  const out: FieldError[] = [];
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'string') {
      const i = v.indexOf('\u0000');
      if (i >= 0)
        out.push({
          field: at,
          message: `contains a NUL character (U+0000) at character ${i}, which cannot be stored; remove it`,
        });
    } else if (Array.isArray(v)) for (const [n, x] of v.entries()) walk(x, `${at}[${n}]`);
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, `${at}.${k}`);
  };
  walk(spec, prefix);
  return out;
}

/** Schema errors first (one per field), then NUL characters in fields the schema did not blame. */
function specErrors(spec: unknown, error: z.ZodError | undefined): FieldError[] {
  const errors = error ? schemaErrors('spec', error) : [];
  const blamed = new Set(errors.map((e) => e.field));
  return [...errors, ...nulErrors(spec).filter((e) => !blamed.has(e.field))];
}

export async function validatePool(pool: unknown, ctx: ValidationContext): Promise<ValidationResult> {
  const result: ValidationResult = { errors: [], warnings: [] };
  const parsed = LLMProviderPoolSpecSchema.safeParse(specOf(pool)?.spec);
  const early = specErrors(specOf(pool)?.spec, parsed.error);
  if (!parsed.success || early.length > 0) {
    result.errors.push(...early);
    return result;
  }
  const spec = parsed.data;
  {
    const problem = ctx.egress ? baseUrlProblem(spec.baseURL, ctx.egress) : urlShapeProblem(spec.baseURL);
    if (problem) {
      result.errors.push({ field: 'spec.baseURL', message: problem });
      return result;
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

/** The per-essay token budget of a pool's model, for messages that explain it. */
export interface EssayLimit {
  /** Most estimated tokens one essay or anchor may have. */
  tokens: number;
  contextWindowTokens: number;
  assignmentTokens: number;
  model: string;
  pool: string;
}

export function essayLimitFor(
  poolName: string,
  pool: Pick<LLMProviderPoolSpec, 'model' | 'contextWindowTokens'>,
  assignmentTokens: number,
): EssayLimit {
  const contextWindowTokens = pool.contextWindowTokens ?? DEFAULT_CONTEXT_WINDOW_TOKENS;
  return {
    tokens: essayTokenLimit(contextWindowTokens, assignmentTokens),
    contextWindowTokens,
    assignmentTokens,
    model: pool.model,
    pool: poolName,
  };
}

/**
 * An essay (or anchor) too large for one comparison prompt of the pool's model: names it, its
 * estimated tokens, the limit and how it is made up, and the fixes. Undefined when it fits.
 */
export function essayTokenProblem(
  what: string,
  id: string,
  text: string,
  limit: EssayLimit,
): string | undefined {
  const tokens = estimateTokens(text);
  if (tokens <= limit.tokens) return undefined;
  return (
    `${what} ${id} is about ${tokens} tokens (estimated from ${codePoints(text)} characters), over the limit of ` +
    `${limit.tokens} tokens per ${what} for model ${limit.model} of LLMProviderPool "${limit.pool}" (context window ` +
    `${limit.contextWindowTokens} tokens, less ${PROMPT_RESERVE_TOKENS} for instructions and answer and ` +
    `${limit.assignmentTokens} for the assignment, shared by the two essays of a pair); shorten or split the ${what}, ` +
    'or use a pool whose model has a larger context window (spec.contextWindowTokens)'
  );
}

/** At most this many oversized essays are listed one by one; the rest are counted. */
const MAX_SIZE_ERRORS = 5;
/** At most this many essay ids are named in the prompt-injection warning. */
const MAX_FLAGGED_IDS = 3;

interface TextItem {
  what: 'essay' | 'anchor';
  id: string;
  text: string;
  where: string;
}

/**
 * Lets timers and I/O run between stretches of CPU work on large input: the webhook validates on
 * the event loop that also renews the operator's leader Lease.
 */
const breathe = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function validateBatch(batch: unknown, ctx: ValidationContext): Promise<ValidationResult> {
  const result: ValidationResult = { errors: [], warnings: [] };
  const err = (field: string, message: string) => result.errors.push({ field, message });
  await breathe();
  const parsed = CJBatchSpecSchema.safeParse(specOf(batch)?.spec);
  await breathe();
  const early = specErrors(specOf(batch)?.spec, parsed.error);
  if (!parsed.success || early.length > 0) {
    result.errors.push(...early);
    return result;
  }
  const spec = parsed.data;
  if (ctx.platform) result.errors.push(...platformErrors(spec, ctx.platform));
  const name = (batch as { metadata?: { name?: unknown } }).metadata?.name;
  if (typeof name === 'string' && name.length > MAX_BATCH_NAME)
    err(
      'metadata.name',
      `"${name.slice(0, 20)}..." is ${name.length} characters; a CJBatch name may have at most ${MAX_BATCH_NAME} (it labels the batch's Jobs and pods); choose a shorter name`,
    );
  if (parseDuration(spec.timeouts.round) < MIN_ROUND_TIMEOUT_MS)
    err(
      'spec.timeouts.round',
      `${spec.timeouts.round} is too short for a round (pods must start, compare and be scored); set at least 1m`,
    );

  const poolSpec = await checkPool(spec, ctx, err);
  const assignmentTokens = await checkAssignment(spec, ctx, err);
  // Every essay and anchor text that could be read, for the size check and the injection warning.
  const texts: TextItem[] = [];

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
    texts.push({ what: 'essay', id: e.id, text: e.text, where: `spec.essays.inline[${i}].text` });
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
    for (const e of parsedEssays.essays) {
      addEssay(e.id, { where, label: `ConfigMap "${ref.name}" (${e.origin})` });
      texts.push({ what: 'essay', id: e.id, text: e.text, where });
    }
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
    if (a.text !== undefined) texts.push({ what: 'anchor', id: a.id, text: a.text, where: `${where}.text` });
    if (a.configMapKeyRef) {
      const { problem, value } = await keyValue(ctx, a.configMapKeyRef.name, a.configMapKeyRef.key);
      if (problem) err(`${where}.configMapKeyRef`, problem);
      else if (value !== undefined) {
        const p = essayTextProblem('anchor', a.id, value);
        if (p)
          err(
            `${where}.configMapKeyRef`,
            `ConfigMap "${a.configMapKeyRef.name}" key "${a.configMapKeyRef.key}": ${p}`,
          );
        else texts.push({ what: 'anchor', id: a.id, text: value, where: `${where}.configMapKeyRef` });
      }
    }
  }
  // Caps and the budget rule over every source, now that the ConfigMaps are read.
  const itemCount = essays.size + anchors.length;
  if (itemCount > MAX_ESSAYS_TOTAL)
    err(
      'spec.essays',
      `${itemCount} essays and anchors (inline and from ConfigMaps) is more than the ${MAX_ESSAYS_TOTAL} one batch may hold; split the class into several batches`,
    );
  const textBytes = texts.reduce((n, t) => n + Buffer.byteLength(t.text), 0);
  if (textBytes > MAX_TEXT_BYTES_TOTAL)
    err(
      'spec.essays',
      `the essays and anchors hold ${textBytes} bytes of text, more than the ${MAX_TEXT_BYTES_TOTAL} one batch may hold; split the class into several batches`,
    );
  const maxComparisons = spec.budget?.maxComparisons;
  if (maxComparisons !== undefined && spec.essays.configMapRefs?.length && maxComparisons * 2 < itemCount)
    err(
      'spec.budget.maxComparisons',
      `maxComparisons ${maxComparisons} cannot include each of the ${itemCount} essays and anchors (with those read from ConfigMaps) even once; set spec.budget.maxComparisons to at least ${Math.floor((itemCount + 1) / 2)}`,
    );
  // Essays too large for one comparison prompt of the pool's model. Texts over the static bound
  // already have an error of their own (schema or ConfigMap parsing).
  if (poolSpec) {
    await breathe();
    const limit = essayLimitFor(spec.providerPoolRef.name, poolSpec, assignmentTokens);
    const oversized = texts
      .map((t) => ({
        t,
        p: codePoints(t.text) <= MAX_ESSAY_CHARS ? essayTokenProblem(t.what, t.id, t.text, limit) : undefined,
      }))
      .filter((x) => x.p !== undefined);
    for (const { t, p } of oversized.slice(0, MAX_SIZE_ERRORS)) err(t.where, p!);
    if (oversized.length > MAX_SIZE_ERRORS)
      err(
        'spec.essays',
        `... and ${oversized.length - MAX_SIZE_ERRORS} more essays over the limit of ${limit.tokens} tokens`,
      );
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
  // Scanned a slice at a time (about 256 KB of text between breaths).
  const kinds = new Map<TextItem, InjectionKind[]>();
  let scanned = 0;
  for (const t of texts) {
    kinds.set(t, detectInjection(t.text));
    scanned += t.text.length;
    if (scanned > 256_000) {
      scanned = 0;
      await breathe();
    }
  }
  const injection = injectionWarning(texts, (t) => kinds.get(t as TextItem) ?? detectInjection(t.text));
  if (injection) result.warnings.push(injection);
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

/** Checks the pool reference and the limit overrides; returns the pool's parsed spec when valid. */
async function checkPool(
  spec: CJBatchSpec,
  ctx: ValidationContext,
  err: (field: string, message: string) => void,
): Promise<LLMProviderPoolSpec | undefined> {
  const name = spec.providerPoolRef.name;
  const pool = await ctx.getPool(name);
  if (!pool) {
    err(
      'spec.providerPoolRef.name',
      `LLMProviderPool "${name}" not found in namespace "${ctx.namespace}"; create the pool first or fix the name`,
    );
    return undefined;
  }
  const poolSpec = LLMProviderPoolSpecSchema.safeParse(pool.spec);
  if (!poolSpec.success) return undefined; // the pool's own validation reports that
  const overrides = spec.overrides?.limits;
  if (!overrides) return poolSpec.data;
  const limits = effectiveLimits(poolSpec.data.tier, (poolSpec.data as LLMProviderPoolSpec).limits);
  if (!limits) return poolSpec.data;
  for (const f of LIMIT_FIELDS) {
    const v = overrides[f];
    if (v !== undefined && v > limits[f]) {
      err(
        `spec.overrides.limits.${f}`,
        `${v} exceeds the ${f} of LLMProviderPool "${name}" (${limits[f]}); overrides may only tighten the pool, so set at most ${limits[f]} or remove the override`,
      );
    }
  }
  return poolSpec.data;
}

/** Checks the assignment's ConfigMap references; returns the estimated tokens of the assignment. */
async function checkAssignment(
  spec: CJBatchSpec,
  ctx: ValidationContext,
  err: (field: string, message: string) => void,
): Promise<number> {
  let tokens = 0;
  for (const part of ['title', 'instructions', 'rubric'] as const) {
    const ref = spec.assignment[part].configMapKeyRef;
    if (!ref) {
      const value = spec.assignment[part].value ?? '';
      if (isBlank(value))
        err(
          `spec.assignment.${part}.value`,
          `the assignment ${part} is empty or only whitespace or invisible characters; write the ${part}`,
        );
      tokens += estimateTokens(value);
      continue;
    }
    const { problem, value } = await keyValue(ctx, ref.name, ref.key, ASSIGNMENT_MAX_CHARS[part]);
    if (problem) err(`spec.assignment.${part}.configMapKeyRef`, problem);
    else tokens += estimateTokens(value ?? '');
  }
  return tokens;
}

async function keyValue(
  ctx: ValidationContext,
  name: string,
  key: string,
  maxChars?: number,
): Promise<{ problem?: string; value?: string }> {
  const cm = await ctx.getConfigMap(name);
  if (!cm)
    return {
      problem: `ConfigMap "${name}" not found in namespace "${ctx.namespace}"; create it before the batch or fix the name`,
    };
  const value = cm.data?.[key];
  if (value === undefined)
    return { problem: `ConfigMap "${name}" has no key "${key}"; add the key or fix configMapKeyRef.key` };
  if (isBlank(value))
    return {
      problem: `ConfigMap "${name}" key "${key}" is empty (or only whitespace or invisible characters); put the text in it`,
    };
  if (maxChars === undefined) return { value }; // essays and anchors: essayTextProblem decides
  const nul = value.indexOf('\u0000');
  if (nul >= 0)
    return {
      problem: `ConfigMap "${name}" key "${key}" contains a NUL character (U+0000) at character ${nul}, which cannot be stored; remove it`,
    };
  if (codePoints(value) > maxChars)
    return {
      problem: `ConfigMap "${name}" key "${key}" has ${codePoints(value)} characters, more than the ${maxChars} allowed here; shorten it`,
    };
  return { value };
}

/**
 * One warning naming the essays whose text seems aimed at the grader (prompt injection). They are
 * still judged: their text stays escaped inside the prompt's data delimiters, the judge is told to
 * ignore such requests, and each of their comparisons carries an `injection:<A|B>:<kind>` flag.
 * Ids and kinds only: never essay text.
 */
export function injectionWarning<T extends { what: string; id: string; text: string }>(
  items: readonly T[],
  kindsOf: (item: T) => readonly string[] = (i) => detectInjection(i.text),
): string | undefined {
  const flagged = items.map((i) => ({ id: i.id, kinds: kindsOf(i) })).filter((f) => f.kinds.length > 0);
  if (flagged.length === 0) return undefined;
  const kinds = [...new Set(flagged.flatMap((f) => f.kinds))].sort();
  const ids = flagged.slice(0, MAX_FLAGGED_IDS).map((f) => f.id);
  const more = flagged.length > MAX_FLAGGED_IDS ? ` and ${flagged.length - MAX_FLAGGED_IDS} more` : '';
  return `possible prompt injection in ${ids.join(', ')}${more} (${kinds.join(', ')}): judged as data inside the prompt delimiters; their comparisons are flagged`;
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
      } else if (isBlank(value)) {
        errors.push(`ConfigMap "${name}" key "${key}" is empty; put the essay text in it or remove the key`);
      } else if (codePoints(value) > MAX_ESSAY_CHARS || value.includes('\u0000')) {
        errors.push(`ConfigMap "${name}" key "${key}": ${essayTextProblem('essay', key, value)}`);
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
      } else if (typeof text !== 'string' || isBlank(text)) {
        errors.push(`${at} (id "${id}") has no text; give every line a non-empty "text"`);
      } else if (codePoints(text) > MAX_ESSAY_CHARS || text.includes('\u0000')) {
        errors.push(`${at}: ${essayTextProblem('essay', id, text)}`);
      } else essays.push({ id, text, origin: `key "${key}" line ${n + 1}` });
    });
  }
  if (errors.length > 5) {
    const more = errors.length - 5;
    errors.splice(5, errors.length, `... and ${more} more problems in ConfigMap "${name}"`);
  }
  return { essays, errors };
}

// Generates the CustomResourceDefinitions from the zod schemas in operator/src/api (the one
// source of truth) and writes them to crds/, config/crd/ (kustomize) and to the Helm chart, and the
// JSON Schemas of the CloudEvents from contract/src/events.ts to config/schemas/ (and the chart).
// `--check` writes nothing and exits 1 naming every committed file that differs from what the
// schemas produce.
//
//   node --import tsx hack/gen-crds.ts [--check]
//
// z.toJSONSchema gives JSON Schema 2020-12; a CRD needs a *structural* OpenAPI v3 schema, so
// this post-processes it: no $schema/$ref/propertyNames, int-or-string unions become
// x-kubernetes-int-or-string, zod's implicit safe-integer bounds are dropped. CEL rules
// (x-kubernetes-validations) and list types come from .meta() on the schemas themselves.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import YAML from 'yaml';
import { z } from 'zod';
import {
  dataSchemaUri,
  EVENT_DATA,
  EVENT_TYPES,
  type EventType,
  eventSchema,
  eventSchemaUri,
} from '../contract/src/events.js';
import { GROUP, KINDS, TIER_CEILINGS, VERSION } from '../operator/src/api/index.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

type Json = Record<string, any>;

/** Makes one JSON Schema node (recursively) structural and apiserver-friendly. */
export function structural(node: Json, where = '$'): Json {
  if (node.$ref || node.$defs || node.oneOf || node.allOf || node.not) {
    throw new Error(`${where}: $ref/$defs/oneOf/allOf/not cannot be expressed in a structural schema`);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$schema' || k === 'propertyNames' || k === 'id') continue;
    if (k === 'additionalProperties' && v === false) continue;
    out[k] = v;
  }
  if (out.anyOf) {
    const types = (out.anyOf as Json[]).map((s) => s.type).sort();
    if (types.join(',') !== 'integer,string') {
      throw new Error(`${where}: only integer|string unions are supported (x-kubernetes-int-or-string)`);
    }
    out['x-kubernetes-int-or-string'] = true;
    // The apiserver accepts exactly anyOf [{type: integer}, {type: string}] under int-or-string.
    // Value validations move to the node itself: pattern/maxLength apply to the string form only,
    // minimum/maximum to the integer form only, so nothing is lost.
    for (const branch of out.anyOf as Json[]) {
      for (const [k, v] of Object.entries(structural(branch, where))) {
        if (k !== 'type' && k !== 'description' && k !== 'default') out[k] = v;
      }
    }
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    delete out.type;
  }
  if (out.type === 'integer' || out.type === 'number') {
    if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
    if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  }
  // The date-time format is validated by the apiserver; zod's regex would only duplicate it.
  if (out.type === 'string' && out.format === 'date-time') delete out.pattern;
  if (out.properties) {
    out.properties = Object.fromEntries(
      Object.entries(out.properties as Json).map(([k, v]) => [k, structural(v as Json, `${where}.${k}`)]),
    );
  }
  if (out.items) out.items = structural(out.items, `${where}[]`);
  if (out.additionalProperties && typeof out.additionalProperties === 'object') {
    out.additionalProperties = structural(out.additionalProperties, `${where}.*`);
  }
  if (out.type === undefined && !out['x-kubernetes-int-or-string']) {
    throw new Error(`${where}: every node needs a type in a structural schema`);
  }
  return out;
}

/** Orders keys so the YAML reads like kubebuilder's: description first, properties last. */
function tidy(node: Json): Json {
  const first = ['description', 'type', 'format', 'default', 'enum'];
  const last = ['properties', 'items', 'additionalProperties', 'required', 'x-kubernetes-validations'];
  const keys = Object.keys(node).sort((a, b) => rank(a) - rank(b));
  function rank(k: string) {
    const i = first.indexOf(k);
    if (i >= 0) return i;
    const j = last.indexOf(k);
    return j >= 0 ? 100 + j : 50;
  }
  const out: Json = {};
  for (const k of keys) {
    const v = node[k];
    if (k === 'properties')
      out[k] = Object.fromEntries(Object.entries(v).map(([p, s]) => [p, tidy(s as Json)]));
    else if ((k === 'items' || k === 'additionalProperties') && typeof v === 'object') out[k] = tidy(v);
    else if (k === 'anyOf') out[k] = (v as Json[]).map(tidy);
    else out[k] = v;
  }
  return out;
}

export const schemaOf = (s: z.ZodType) => tidy(structural(z.toJSONSchema(s, { io: 'input' }) as Json));

const PRINTER_COLUMNS = {
  CJBatch: [
    { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Lifecycle phase.' },
    {
      name: 'Progress',
      type: 'string',
      jsonPath: '.status.progress',
      description: 'Completed comparisons / budget.',
    },
    { name: 'Round', type: 'integer', jsonPath: '.status.round', description: 'Current round.' },
    {
      name: 'Stability',
      type: 'number',
      jsonPath: '.status.stability.rankCorrelation',
      description: 'Rank correlation with the previous round.',
    },
    { name: 'Pool', type: 'string', jsonPath: '.spec.providerPoolRef.name', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
  LLMProviderPool: [
    { name: 'Provider', type: 'string', jsonPath: '.spec.provider' },
    { name: 'Model', type: 'string', jsonPath: '.spec.model' },
    { name: 'Tier', type: 'string', jsonPath: '.spec.tier' },
    { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
    { name: 'Batches', type: 'integer', jsonPath: '.status.batches.count', priority: 1 },
    { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  ],
} as const;

export function crdFor(kind: keyof typeof KINDS): Json {
  const k = KINDS[kind];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${k.plural}.${GROUP}`,
      annotations: { 'cj.huleedu.io/generated-by': 'hack/gen-crds.ts' },
    },
    spec: {
      group: GROUP,
      names: {
        kind,
        listKind: `${kind}List`,
        plural: k.plural,
        singular: k.singular,
        shortNames: [...k.shortNames],
        categories: ['cj'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: PRINTER_COLUMNS[kind],
          schema: {
            openAPIV3Schema: {
              description: k.description,
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: {
                  description: 'APIVersion defines the versioned schema of this representation of an object.',
                  type: 'string',
                },
                kind: {
                  description: 'Kind is a string value representing the REST resource.',
                  type: 'string',
                },
                metadata: { type: 'object' },
                spec: schemaOf(k.spec),
                status: schemaOf(k.status),
              },
            },
          },
        },
      ],
    },
  };
}

const HEADER =
  '# Generated by hack/gen-crds.ts from operator/src/api. Do not edit; run `node --import tsx hack/gen-crds.ts`.\n';

function toYaml(obj: Json): string {
  return YAML.stringify(obj, { lineWidth: 0, aliasDuplicateObjects: false });
}

/** The chart copy: installed unless crds.install=false, kept on uninstall when crds.keep. */
function chartYaml(plain: string): string {
  if (plain.includes('{{')) throw new Error('a schema description contains "{{", which Helm would template');
  const marker = '  annotations:\n    cj.huleedu.io/generated-by: hack/gen-crds.ts\n';
  if (!plain.includes(marker)) throw new Error('annotations block not found in generated CRD');
  const body = plain.replace(
    marker,
    marker + '    {{- if .Values.crds.keep }}\n    helm.sh/resource-policy: keep\n    {{- end }}\n',
  );
  return HEADER + '{{- if .Values.crds.install }}\n' + body + '{{- end }}\n';
}

/** One row per field: path, type with constraints, default, description. */
function fieldRows(node: Json, prefix: string, rows: string[][]): void {
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Json>)) {
    const p = `${prefix}.${name}`;
    const required = ((node.required ?? []) as string[]).includes(name);
    rows.push([
      `\`${p}\`${required ? ' (required)' : ''}`,
      typeOf(child),
      defaultOf(child),
      cell(child.description),
    ]);
    if (child.properties) fieldRows(child, p, rows);
    if (child.items?.properties) fieldRows(child.items, `${p}[]`, rows);
  }
}

function typeOf(n: Json): string {
  const parts: string[] = [];
  if (n['x-kubernetes-int-or-string']) parts.push('integer or string');
  else if (n.type === 'array') parts.push(`[]${n.items?.type ?? 'object'}`);
  else if (n.type === 'object' && n.additionalProperties) parts.push('map[string]string');
  else parts.push(n.type);
  if (n.enum) parts.push(`one of ${(n.enum as string[]).join(', ')}`);
  if (n.items?.enum) parts.push(`items one of ${(n.items.enum as string[]).join(', ')}`);
  if (n.minimum !== undefined || n.maximum !== undefined)
    parts.push(`${n.minimum ?? ''}..${n.maximum ?? ''}`);
  if (n.minItems !== undefined || n.maxItems !== undefined)
    parts.push(`${n.minItems ?? 0}..${n.maxItems ?? ''} items`);
  if (n.maxLength !== undefined && n.type === 'string' && !n.pattern) parts.push(`max ${n.maxLength} chars`);
  if (n.pattern) parts.push(`pattern \`${n.pattern}\``);
  if (n.format) parts.push(n.format);
  return cell(parts.join(', '));
}

const defaultOf = (n: Json) => (n.default === undefined ? '' : cell(`\`${JSON.stringify(n.default)}\``));
const cell = (s: string | undefined) => (s ?? '').replaceAll('|', '\\|').replaceAll('\n', ' ');

function celRows(node: Json, prefix: string, rows: string[][]): void {
  for (const r of (node['x-kubernetes-validations'] ?? []) as Json[]) {
    const field = r.fieldPath ? `${prefix}${r.fieldPath}` : prefix;
    rows.push([
      `\`${field}\``,
      cell(`\`${r.rule}\``),
      cell(r.message ?? `(expression) ${r.messageExpression}`),
    ]);
  }
  for (const [name, child] of Object.entries((node.properties ?? {}) as Record<string, Json>)) {
    celRows(child, `${prefix}.${name}`, rows);
    if (child.items) celRows(child.items, `${prefix}.${name}[]`, rows);
  }
}

const table = (head: string[], rows: string[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

/** The generated field reference that goes between the markers in docs/api.md. */
export function apiReference(): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const tiers = Object.entries(TIER_CEILINGS).map(([t, c]) => [
    `\`${t}\``,
    n(c.requestsPerMinute),
    n(c.inputTokensPerMinute),
    n(c.outputTokensPerMinute),
    n(c.maxConcurrency),
  ]);
  tiers.push(['`custom`', 'no ceiling: all four limits must be set', '', '', '']);
  const out: string[] = [
    `### Tier ceilings (per minute)\n\n${table(['tier', 'requests', 'input tokens', 'output tokens', 'maxConcurrency'], tiers)}`,
  ];
  for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
    const root = crdFor(kind).spec.versions[0].schema.openAPIV3Schema;
    for (const part of ['spec', 'status'] as const) {
      const rows: string[][] = [];
      fieldRows(root.properties[part], part, rows);
      out.push(`### ${kind} \`${part}\`\n\n${table(['field', 'type', 'default', 'description'], rows)}`);
    }
    const cel: string[][] = [];
    celRows(root.properties.spec, 'spec', cel);
    out.push(`### ${kind} CEL rules\n\n${table(['field', 'rule', 'message'], cel)}`);
  }
  return out.join('\n\n');
}

const DOC = 'docs/api.md';
const BEGIN = '<!-- BEGIN GENERATED REFERENCE (hack/gen-crds.ts) -->';
const END = '<!-- END GENERATED REFERENCE -->';

/** docs/api.md with the generated reference between its markers (prose around it is hand-written). */
function apiDoc(): string | undefined {
  const abs = path.join(root, DOC);
  if (!existsSync(abs)) return undefined;
  const cur = readFileSync(abs, 'utf8');
  const a = cur.indexOf(BEGIN);
  const b = cur.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC} needs the markers ${BEGIN} and ${END}`);
  return `${cur.slice(0, a + BEGIN.length)}\n\n${apiReference()}\n\n${cur.slice(b)}`;
}

/**
 * A plain JSON Schema 2020-12 for consumers (no structural rewriting, unlike a CRD): zod's implicit
 * safe-integer bounds and its date-time regex (the `format` says it) are noise, and an open object
 * says `additionalProperties: true` rather than `{}`.
 */
function plainSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(plainSchema);
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node as Json)) out[k] = plainSchema(v);
  if (out.maximum === Number.MAX_SAFE_INTEGER) delete out.maximum;
  if (out.minimum === Number.MIN_SAFE_INTEGER) delete out.minimum;
  if (out.format === 'date-time') delete out.pattern;
  if (typeof out.additionalProperties === 'object' && Object.keys(out.additionalProperties).length === 0)
    out.additionalProperties = true;
  return out;
}

function jsonSchemaFile(s: z.ZodType, head: Json): string {
  const { $schema, ...body } = plainSchema(
    z.toJSONSchema(s, { target: 'draft-2020-12', io: 'output' }),
  ) as Json;
  return `${JSON.stringify({ $schema, ...head, ...body }, null, 2)}\n`;
}

/** config/schemas/<type>.json (the whole record value) and <type>.data.json (`data`) per event type. */
export function eventSchemaFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const type of EVENT_TYPES as readonly EventType[]) {
    const e = EVENT_DATA[type];
    const generated = `Generated by hack/gen-crds.ts from contract/src/events.ts; do not edit.`;
    files.set(
      `config/schemas/${type}.json`,
      jsonSchemaFile(eventSchema(type), {
        $id: eventSchemaUri(type),
        title: type,
        description: e.description,
        $comment: generated,
      }),
    );
    files.set(
      `config/schemas/${type}.data.json`,
      jsonSchemaFile(e.data, {
        $id: dataSchemaUri(type),
        title: `${type} data`,
        description: `The data of ${type}. ${e.description}`,
        $comment: generated,
      }),
    );
  }
  return files;
}

/** Every generated file, path relative to the repository root → content. */
export function generate(): Map<string, string> {
  const files = new Map<string, string>();
  const doc = apiDoc();
  if (doc !== undefined) files.set(DOC, doc);
  for (const [rel, content] of eventSchemaFiles()) {
    files.set(rel, content);
    // The chart carries them too (`helm pull` gives consumers the schemas of the version they run).
    files.set(`charts/cj-operator/${rel.replace('config/', '')}`, content);
  }
  for (const kind of Object.keys(KINDS) as (keyof typeof KINDS)[]) {
    const crd = crdFor(kind);
    const file = `${GROUP}_${KINDS[kind].plural}.yaml`;
    const plain = toYaml(crd);
    files.set(`crds/${file}`, HEADER + plain);
    // Kustomize loads only files under its own folder: the base gets its own copy.
    files.set(`config/crd/${file}`, HEADER + plain);
    files.set(`charts/cj-operator/templates/crds/${file}`, chartYaml(plain));
  }
  return files;
}

/** Paths whose committed content differs from the generated content. */
export function drifted(): string[] {
  const out: string[] = [];
  for (const [rel, content] of generate()) {
    const abs = path.join(root, rel);
    if (!existsSync(abs) || readFileSync(abs, 'utf8') !== content) out.push(rel);
  }
  return out;
}

function main() {
  if (process.argv.includes('--check')) {
    const bad = drifted();
    if (bad.length) {
      for (const f of bad)
        process.stderr.write(`${f} is out of date with operator/src/api or contract/src/events.ts\n`);
      process.stderr.write('run: node --import tsx hack/gen-crds.ts\n');
      process.exit(1);
    }
    process.stdout.write('CRDs and event schemas are up to date\n');
    return;
  }
  for (const [rel, content] of generate()) {
    const abs = path.join(root, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, content);
    process.stdout.write(`wrote ${rel}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) main();

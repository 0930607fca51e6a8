// A small JSON Schema (2020-12) validator for the subset the event schemas in config/schemas/ use,
// until a full validator (ajv) is a dev dependency. It refuses any keyword it does not implement, so
// a schema can never pass here by being misunderstood.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export type Schema = Record<string, unknown> | boolean;

const ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', '$defs', '$comment', 'examples']);
const ASSERTIONS = new Set([
  '$ref',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'enum',
  'const',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'format',
]);

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function hasType(v: unknown, t: string): boolean {
  if (t === 'integer') return typeof v === 'number' && Number.isInteger(v);
  if (t === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeOf(v) === t;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeOf(v) === 'object';

/** Validates `value` against `root`; returns the errors as "<json pointer>: <message>" (empty = valid). */
export function validate(root: Schema, value: unknown): string[] {
  const errors: string[] = [];
  const resolve = (ref: string): Schema => {
    const m = /^#\/\$defs\/([^/]+)$/.exec(ref);
    const defs = isObject(root) ? (root.$defs as Record<string, Schema> | undefined) : undefined;
    const target = m ? defs?.[m[1]!] : undefined;
    if (target === undefined) throw new Error(`unsupported or unknown $ref ${ref}`);
    return target;
  };
  const walk = (s: Schema, v: unknown, at: string): void => {
    if (s === true) return;
    if (s === false) {
      errors.push(`${at}: not allowed`);
      return;
    }
    for (const k of Object.keys(s))
      if (!ANNOTATIONS.has(k) && !ASSERTIONS.has(k))
        throw new Error(`json-schema-subset: keyword "${k}" is not supported (at ${at || '/'})`);
    if (typeof s.$ref === 'string') walk(resolve(s.$ref), v, at);
    if (s.type !== undefined) {
      const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
      if (!types.some((t) => hasType(v, t))) {
        errors.push(`${at}: expected ${types.join(' or ')}, got ${typeOf(v)}`);
        return;
      }
    }
    if ('const' in s && JSON.stringify(s.const) !== JSON.stringify(v))
      errors.push(`${at}: expected ${JSON.stringify(s.const)}`);
    if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(v)))
      errors.push(`${at}: not one of ${JSON.stringify(s.enum)}`);
    if (typeof v === 'number') {
      if (typeof s.minimum === 'number' && v < s.minimum) errors.push(`${at}: below ${s.minimum}`);
      if (typeof s.maximum === 'number' && v > s.maximum) errors.push(`${at}: above ${s.maximum}`);
    }
    if (typeof v === 'string') {
      const len = [...v].length;
      if (typeof s.minLength === 'number' && len < s.minLength)
        errors.push(`${at}: shorter than ${s.minLength}`);
      if (typeof s.maxLength === 'number' && len > s.maxLength)
        errors.push(`${at}: longer than ${s.maxLength}`);
      if (typeof s.pattern === 'string' && !new RegExp(s.pattern, 'u').test(v))
        errors.push(`${at}: does not match ${s.pattern}`);
      if (s.format === 'date-time' && !(DATE_TIME.test(v) && Number.isFinite(Date.parse(v))))
        errors.push(`${at}: not an RFC 3339 date-time`);
    }
    if (Array.isArray(v)) {
      if (typeof s.minItems === 'number' && v.length < s.minItems)
        errors.push(`${at}: fewer than ${s.minItems} items`);
      if (typeof s.maxItems === 'number' && v.length > s.maxItems)
        errors.push(`${at}: more than ${s.maxItems} items`);
      if (s.items !== undefined)
        for (const [i, item] of v.entries()) walk(s.items as Schema, item, `${at}/${i}`);
    }
    if (isObject(v)) {
      for (const r of (s.required as string[] | undefined) ?? [])
        if (!(r in v)) errors.push(`${at}: missing required property "${r}"`);
      const props = (s.properties as Record<string, Schema> | undefined) ?? {};
      for (const [k, pv] of Object.entries(v)) {
        if (k in props) walk(props[k]!, pv, `${at}/${k}`);
        else if (s.additionalProperties !== undefined)
          walk(s.additionalProperties as Schema, pv, `${at}/${k}`);
      }
    }
  };
  walk(root, value, '');
  return errors;
}

/** The schema of an event type, from config/schemas/<type>.json. */
export function loadEventSchema(type: string): Schema {
  const file = path.join(import.meta.dirname, '../../../config/schemas', `${type}.json`);
  return JSON.parse(readFileSync(file, 'utf8')) as Schema;
}

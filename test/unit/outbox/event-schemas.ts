// Validates against the generated event schemas in config/schemas/ (JSON Schema 2020-12) with ajv,
// a complete validator (it is in node_modules through the `cloudevents` dev dependency, which
// validates with it too). Strict mode: a keyword ajv does not know throws instead of being ignored,
// so a schema can never pass here by being misunderstood. Errors read "<json pointer>: <message>".
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export type Schema = Record<string, unknown> | boolean;

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, verbose: true });
// ajv-formats is CommonJS with a default export; under NodeNext its type is the module object.
(addFormats as unknown as (a: Ajv2020) => void)(ajv);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function message(e: ErrorObject): string {
  const at = e.instancePath;
  const p = e.params as Record<string, any>;
  switch (e.keyword) {
    case 'required':
      return `${at}: missing required property "${p.missingProperty}"`;
    case 'additionalProperties':
      return `${at}/${p.additionalProperty}: not allowed`;
    case 'type':
      return `${at}: expected ${[p.type].flat().join(' or ')}, got ${typeOf(e.data)}`;
    case 'const':
      return `${at}: expected ${JSON.stringify(p.allowedValue)}`;
    case 'enum':
      return `${at}: not one of ${JSON.stringify(p.allowedValues)}`;
    case 'pattern':
      return `${at}: does not match ${p.pattern}`;
    case 'minimum':
      return `${at}: below ${p.limit}`;
    case 'maximum':
      return `${at}: above ${p.limit}`;
    case 'minItems':
      return `${at}: fewer than ${p.limit} items`;
    case 'maxItems':
      return `${at}: more than ${p.limit} items`;
    case 'format':
      return p.format === 'date-time' ? `${at}: not an RFC 3339 date-time` : `${at}: not a ${p.format}`;
    default:
      return `${at}: ${e.message}`;
  }
}

const compiled = new Map<string, ValidateFunction>();

function validator(schema: Schema): ValidateFunction {
  const id = typeof schema === 'object' && typeof schema.$id === 'string' ? schema.$id : undefined;
  if (id === undefined) return ajv.compile(schema);
  const key = JSON.stringify(schema);
  let v = compiled.get(key);
  if (!v) {
    ajv.removeSchema(id); // a schema of that $id compiled before with other content
    v = ajv.compile(schema);
    compiled.set(key, v);
  }
  return v;
}

/** Validates `value` against `schema`; returns the errors as "<json pointer>: <message>" (empty = valid). */
export function validate(schema: Schema, value: unknown): string[] {
  const v = validator(schema);
  if (v(value)) return [];
  // A nullable field's value that fits neither branch reports each branch and the anyOf: the
  // branches say what is wrong.
  return (v.errors ?? []).filter((e) => e.keyword !== 'anyOf').map(message);
}

const SCHEMAS = path.join(import.meta.dirname, '../../../config/schemas');

/** The schema of a whole event (envelope and data), from config/schemas/<type>.json. */
export function loadEventSchema(type: string): Schema {
  return JSON.parse(readFileSync(path.join(SCHEMAS, `${type}.json`), 'utf8')) as Schema;
}

/** The schema of an event's `data`, from config/schemas/<type>.data.json (its $id is the dataschema). */
export function loadEventDataSchema(type: string): Schema {
  return JSON.parse(readFileSync(path.join(SCHEMAS, `${type}.data.json`), 'utf8')) as Schema;
}

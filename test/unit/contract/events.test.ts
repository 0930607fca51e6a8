// The event contract's versioning: each type's data schema revision is in its dataschema URI, the
// major equals the type's v<N>, and a change of what the data schema accepts cannot go out under
// the same revision (the fingerprints below make the author bump it; rules in contract/src/events.ts).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  dataSchemaUri,
  EVENT_DATA,
  EVENT_DATA_VERSIONS,
  EVENT_TYPES,
  type EventType,
} from '../../../contract/src/events.js';

/**
 * sha256 of each data schema as JSON Schema without its descriptions, per revision. When a test
 * below fails, bump EVENT_DATA_VERSIONS by the rules in contract/src/events.ts (a minor for a new
 * optional field, a new type for anything else), then record the new revision and fingerprint.
 */
const FINGERPRINTS: Record<EventType, { version: string; sha256: string }> = {
  'cj.batch.completed.v1': {
    version: '1.0',
    sha256: '055e5381b2acb312a170bf069b5ce554d46769c573ae27c64b8ccd78e7c993ce',
  },
  'cj.batch.failed.v1': {
    version: '1.0',
    sha256: '2c5405fbeec21abf1fbecbd3f2dd402ca10438e191cf7b8381bbb041ef6679df',
  },
  'cj.batch.audited.v1': {
    version: '1.0',
    sha256: '0a61bc8d02d8040aea5fb9a4e878e9528ccfa688212b87e400a750ce553309b9',
  },
};

function fingerprint(type: EventType): string {
  const strip = (n: unknown): unknown =>
    Array.isArray(n)
      ? n.map(strip)
      : typeof n === 'object' && n !== null
        ? Object.fromEntries(
            Object.entries(n)
              .filter(([k]) => k !== 'description')
              .map(([k, v]) => [k, strip(v)]),
          )
        : n;
  const schema = strip(z.toJSONSchema(EVENT_DATA[type].data, { target: 'draft-2020-12', io: 'output' }));
  return createHash('sha256').update(JSON.stringify(schema)).digest('hex');
}

describe('event data schema revisions', () => {
  for (const type of EVENT_TYPES) {
    it(`${type}: the revision's major is the type's v<N> and the dataschema URI names both`, () => {
      const [major] = EVENT_DATA_VERSIONS[type].split('.');
      expect(`v${major}`).toBe(type.split('.').at(-1));
      expect(dataSchemaUri(type)).toBe(
        `https://cj.huleedu.io/schemas/${type}/${EVENT_DATA_VERSIONS[type]}/data.json`,
      );
    });

    it(`${type}: the data schema is the one recorded for its revision (else bump the revision)`, () => {
      expect(
        { version: EVENT_DATA_VERSIONS[type], sha256: fingerprint(type) },
        `the data schema of ${type} changed: bump EVENT_DATA_VERSIONS (rules in contract/src/events.ts) and record the new fingerprint in this file`,
      ).toEqual(FINGERPRINTS[type]);
    });
  }
});

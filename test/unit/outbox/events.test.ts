// The events as the operator builds them, checked against the JSON Schemas generated into
// config/schemas/ (whole event and data alone) and against the zod schemas they come from, plus
// the relay's pure parts (Kafka record, backoff).
import { describe, expect, it } from 'vitest';
import { auditReport } from '../../../contract/src/audit.js';
import {
  dataSchemaUri,
  EVENT_AUDITED,
  EVENT_TYPES,
  type EventType,
  eventSchema,
} from '../../../contract/src/events.js';
import { eventSchemaFiles } from '../../../hack/gen-crds.js';
import type { CJBatch, CJBatchStatus } from '../../../operator/src/api/index.js';
import {
  type BatchResults,
  completedEventData,
  EVENT_COMPLETED,
  EVENT_FAILED,
  failedEventData,
  joinResultsParts,
  RESULTS_BYTES_PER_CONFIGMAP,
  resultEvent,
  resultsConfigMaps,
} from '../../../operator/src/controllers/cjbatch/finalize.js';
import { auditEvent } from '../../../operator/src/controllers/cjbatch/phases/audit.js';
import {
  INITIAL_BACKOFF_MS,
  MAX_BACKOFF_MS,
  nextBackoff,
  toKafkaMessage,
} from '../../../operator/src/outbox/relay.js';
import { manyResults } from '../../fixtures/results.js';
import { loadEventDataSchema, loadEventSchema, validate } from './event-schemas.js';

const UID = '0b5c8a52-3f0e-4b7e-9d3a-6a1f2c4d5e6f';
const EVENT_ID = 'e0e4f5a6-1b2c-4d3e-8f90-a1b2c3d4e5f6';
const GRADES = ['F', 'D', 'B', 'A'];
const batch = {
  apiVersion: 'cj.huleedu.io/v1alpha1',
  kind: 'CJBatch',
  metadata: { name: 'sample-small', namespace: 'events-1a2b3c', uid: UID },
  spec: {},
} as unknown as CJBatch;
const pool = { spec: { provider: 'fake', model: 'claude-sonnet-4-5' } };
const status: CJBatchStatus = {
  round: 3,
  comparisons: { planned: 40, submitted: 40, completed: 38, failed: 2, retried: 5, pending: 0 },
  stability: { rankCorrelation: 0.97, gradeChanges: 0, reliability: 0.91, meanGradeConfidence: 0.82 },
  cost: {
    inputTokens: 41000,
    outputTokens: 3800,
    cacheReadTokens: 12000,
    cacheWriteTokens: 900,
    estimatedUSD: '0.184575',
  },
};
const results: BatchResults = {
  essays: [
    {
      essayId: 'essay-04',
      anchor: false,
      rank: 1,
      score: 1.92,
      se: 0.41,
      grade: {
        assigned: 'A',
        assignedProbability: 0.71,
        modal: 'A',
        modalProbability: 0.71,
        expected: 2.68,
        interval80: ['B', 'A'],
        probabilities: [
          { grade: 'F', p: 0 },
          { grade: 'D', p: 0.04 },
          { grade: 'B', p: 0.25 },
          { grade: 'A', p: 0.71 },
        ],
      },
      flags: ['injection:instruction_override', 'injection:verdict_request'],
    },
    { essayId: 'anchor-a', anchor: true, rank: 2, score: 1.5, se: 0.5 },
  ],
  gradeDistribution: GRADES.map((grade) => ({ grade, count: grade === 'A' ? 1 : 0 })),
};

const completed = () =>
  resultEvent(
    batch,
    {
      outcome: 'succeeded',
      reason: 'converged',
      message: 'stopped: converged',
      data: completedEventData(structuredClone(results), status, pool, 3, GRADES),
    },
    EVENT_ID,
    new Date('2025-11-22T07:00:00Z'),
  );
const failed = () =>
  resultEvent(
    batch,
    {
      outcome: 'failed',
      reason: 'RoundTimeout',
      message: 'round 1 exceeded spec.timeouts.round (1s) with only 0/8 comparisons finished',
      data: failedEventData({ round: 1, comparisons: { planned: 8 } }, pool, GRADES),
    },
    EVENT_ID,
    new Date('2025-11-22T07:00:00Z'),
  );
const audited = () => {
  const pairs = [
    { id: 'p1', a: 'essay-04', b: 'anchor-a' },
    { id: 'p2', a: 'essay-01', b: 'essay-02' },
  ];
  const report = auditReport(
    pairs,
    [
      { id: 'p1', winner: 'essay-04', seconds: 4 },
      { id: 'p2', winner: null },
    ],
    [{ a: 'essay-04', b: 'anchor-a', winner: 'essay-04' }],
    new Map([
      ['essay-04', 1.92],
      ['anchor-a', 1.5],
    ]),
  );
  return auditEvent(batch, 'ms-lee', report, pool, EVENT_ID, new Date('2025-11-23T07:00:00Z'));
};
/** One event of each type, built by the operator's own builders. */
const built: Record<EventType, () => { type: string; dataschema: string; data: object }> = {
  'cj.batch.completed.v1': completed,
  'cj.batch.failed.v1': failed,
  'cj.batch.audited.v1': audited,
};

describe('result events against config/schemas', () => {
  it('a completed event is valid and carries every per-essay and per-batch field', () => {
    const e = completed();
    expect(validate(loadEventSchema(EVENT_COMPLETED), e)).toEqual([]);
    expect(e.type).toBe(EVENT_COMPLETED);
    expect(e.partitionkey).toBe(UID);
    expect(e.data).toMatchObject({
      model: 'claude-sonnet-4-5',
      rounds: 3,
      reliability: 0.91,
      comparisons: status.comparisons,
      stability: { rankCorrelation: 0.97, gradeChanges: 0, meanGradeConfidence: 0.82 },
      tokens: { input: 41000, output: 3800, cacheRead: 12000, cacheWrite: 900 },
      cost: { estimatedUSD: '0.184575' },
      gradeDistribution: results.gradeDistribution,
    });
  });

  it('results too large for one Kafka message leave the event with a reference to the ConfigMaps', () => {
    const event = (maxMessageBytes: number) =>
      resultEvent(
        batch,
        {
          outcome: 'succeeded',
          reason: 'converged',
          message: 'stopped: converged',
          data: completedEventData(structuredClone(results), status, pool, 3, GRADES, {
            configMap: 'sample-small-results',
            parts: 3,
            maxMessageBytes,
          }),
        },
        EVENT_ID,
        new Date('2025-11-22T07:00:00Z'),
      );
    const whole = event(1_000_000);
    expect(whole.data).not.toHaveProperty('resultsRef');
    expect((whole.data as unknown as { results: unknown[] }).results).toHaveLength(2);
    const ref = event(2_500);
    expect(validate(loadEventSchema(EVENT_COMPLETED), ref)).toEqual([]);
    expect(ref.data).toMatchObject({
      results: [],
      gradeDistribution: results.gradeDistribution,
      resultsRef: { configMap: 'sample-small-results', parts: 3, essays: 2 },
    });
    expect((ref.data as unknown as { resultsRef: { reason: string } }).resultsRef.reason).toMatch(
      /do not fit one Kafka message \(limit 2500 bytes, KAFKA_MAX_MESSAGE_BYTES\).*sample-small-results-2 … -3/,
    );
    expect(Buffer.byteLength(JSON.stringify(ref))).toBeLessThan(2_500);
  });

  it('a failed event is valid, has its reason and no results', () => {
    const e = failed();
    expect(validate(loadEventSchema(EVENT_FAILED), e)).toEqual([]);
    expect(e.data).toMatchObject({ outcome: 'failed', reason: 'RoundTimeout', rounds: 1, reliability: null });
    expect(e.data).not.toHaveProperty('results');
    expect((e.data as unknown as { comparisons: Record<string, number> }).comparisons).toEqual({
      planned: 8,
      submitted: 0,
      completed: 0,
      failed: 0,
      retried: 0,
      pending: 0,
    });
    // A failed event is not a completed one.
    expect(validate(loadEventSchema(EVENT_COMPLETED), e).length).toBeGreaterThan(0);
  });

  it('the schemas reject drift: a missing field, a wrong type, an unknown data field', () => {
    const schema = loadEventSchema(EVENT_COMPLETED);
    const noModel = completed();
    delete (noModel.data as Record<string, unknown>).model;
    expect(validate(schema, noModel)).toContain('/data: missing required property "model"');
    const badRank = completed();
    (badRank.data as unknown as { results: { rank: unknown }[] }).results[0]!.rank = '1';
    expect(validate(schema, badRank)).toContain('/data/results/0/rank: expected integer, got string');
    const extra = completed();
    (extra.data as Record<string, unknown>).surprise = 1;
    expect(validate(schema, extra)).toEqual(['/data/surprise: not allowed']);
    const badFlag = completed();
    (badFlag.data as unknown as { results: { flags: unknown }[] }).results[0]!.flags = ['essay text here'];
    expect(validate(schema, badFlag)[0]).toMatch(/^\/data\/results\/0\/flags\/0: does not match/);
    const badId = completed();
    badId.id = 'not-a-uuid';
    expect(validate(schema, badId)[0]).toMatch(/^\/id: does not match/);
  });

  it('the ConfigMap and the event carry the same results', () => {
    const parts = resultsConfigMaps(results, GRADES);
    expect(parts.map((p) => p.suffix)).toEqual(['']);
    const cm = parts[0]!.data;
    expect(cm.parts).toBeUndefined();
    expect(JSON.parse(cm['results.json']!)).toEqual({
      essays: (completed().data as unknown as { results: unknown }).results,
      gradeDistribution: results.gradeDistribution,
    });
    expect(cm['results.csv']!.split('\n')[0]).toBe(
      'rank,essay,anchor,score,se,grade,p_grade,modal_grade,p_modal,p_F,p_D,p_B,p_A,flags',
    );
    expect(cm['results.csv']!.split('\n')[1]).toMatch(
      /,injection:instruction_override injection:verdict_request$/,
    );
  });
});

describe('every event type against its generated schemas', () => {
  it('the committed schema files are what contract/src/events.ts generates (npm run check:crds)', () => {
    const files = eventSchemaFiles();
    expect([...files.keys()].sort()).toEqual(
      EVENT_TYPES.flatMap((t) => [`config/schemas/${t}.data.json`, `config/schemas/${t}.json`]).sort(),
    );
    for (const t of EVENT_TYPES) {
      expect(loadEventSchema(t)).toEqual(JSON.parse(files.get(`config/schemas/${t}.json`)!));
      expect(loadEventDataSchema(t)).toEqual(JSON.parse(files.get(`config/schemas/${t}.data.json`)!));
    }
  });

  for (const type of EVENT_TYPES) {
    it(`${type}: the built event is valid (whole, data alone, zod) and names its data schema`, () => {
      const e = built[type]();
      expect(e.type).toBe(type);
      expect(validate(loadEventSchema(type), e)).toEqual([]);
      expect(validate(loadEventDataSchema(type), e.data)).toEqual([]);
      expect(eventSchema(type).safeParse(e).success).toBe(true);
      // The dataschema attribute is the $id of <type>.data.json: the file a consumer validates with.
      expect(e.dataschema).toBe(dataSchemaUri(type));
      expect(e.dataschema).toBe((loadEventDataSchema(type) as { $id: string }).$id);
      expect(e.dataschema).toMatch(new RegExp(`/${type.replaceAll('.', '\\.')}/1\\.\\d+/data\\.json$`));
    });

    it(`${type}: a missing required field is refused, naming the field`, () => {
      const field = (
        { [EVENT_COMPLETED]: 'results', [EVENT_FAILED]: 'reason', [EVENT_AUDITED]: 'judge' } as const
      )[type];
      const e = built[type]() as { data: Record<string, unknown> };
      delete e.data[field];
      expect(validate(loadEventSchema(type), e)).toEqual([`/data: missing required property "${field}"`]);
      expect(validate(loadEventDataSchema(type), e.data)).toEqual([`: missing required property "${field}"`]);
      const z = eventSchema(type).safeParse(e);
      expect(z.success).toBe(false);
      expect(z.error!.issues.map((i) => i.path.join('.'))).toEqual([`data.${field}`]);
      // The envelope's attributes are required too.
      const noSchema = built[type]() as Record<string, unknown>;
      delete noSchema.dataschema;
      expect(validate(loadEventSchema(type), noSchema)).toEqual([': missing required property "dataschema"']);
    });
  }
});

describe('results split over ConfigMaps', () => {
  it('splits in rank order, each part within its budget, and joins back to the single-part output', () => {
    const r = manyResults(300, GRADES);
    const whole = resultsConfigMaps(r, GRADES, Number.POSITIVE_INFINITY);
    expect(whole).toHaveLength(1);
    const parts = resultsConfigMaps(r, GRADES, 40_000);
    expect(parts.map((p) => p.suffix)).toEqual(parts.map((_, i) => (i === 0 ? '' : `-${i + 1}`)));
    expect(parts.length).toBeGreaterThan(2);
    expect(parts[0]!.data.parts).toBe(String(parts.length));
    for (const p of parts) {
      const bytes = Object.values(p.data).reduce((t, v) => t + Buffer.byteLength(v), 0);
      expect(bytes).toBeLessThanOrEqual(40_000);
    }
    const joined = joinResultsParts(parts.map((p) => p.data));
    expect(joined.csv).toBe(whole[0]!.data['results.csv']);
    expect(JSON.stringify(joined.json)).toBe(whole[0]!.data['results.json']);
  });

  it('2000 essays with 20 grades fit ConfigMaps the apiserver accepts (1 MiB each)', () => {
    const grades = Array.from({ length: 20 }, (_, i) => `grade-${i + 1}`);
    const parts = resultsConfigMaps(manyResults(2000, grades), grades);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) {
      const bytes = Object.values(p.data).reduce((t, v) => t + Buffer.byteLength(v), 0);
      expect(bytes).toBeLessThanOrEqual(RESULTS_BYTES_PER_CONFIGMAP);
    }
    expect(joinResultsParts(parts.map((p) => p.data)).json.essays).toHaveLength(2000);
  });
});

describe('event-schemas (ajv)', () => {
  it('refuses keywords it does not know instead of ignoring them', () => {
    expect(() => validate({ minValue: 1, type: 'number' }, 0)).toThrow(/unknown keyword: "minValue"/);
  });
  it('checks nullable types, bounds, const, enum, items and date-time', () => {
    expect(validate({ type: ['number', 'null'], minimum: 0 }, null)).toEqual([]);
    expect(validate({ type: ['number', 'null'], minimum: 0 }, -1)).toEqual([': below 0']);
    expect(validate({ anyOf: [{ type: 'number', minimum: 0 }, { type: 'null' }] }, -1)).toEqual([
      ': below 0',
      ': expected null, got number',
    ]);
    expect(validate({ const: '1.0' }, '1.1')).toEqual([': expected "1.0"']);
    expect(validate({ enum: ['a', 'b'] }, 'c')).toHaveLength(1);
    expect(validate({ type: 'array', items: { type: 'integer' }, maxItems: 2 }, [1, 2.5, 3]).sort()).toEqual([
      '/1: expected integer, got number',
      ': more than 2 items',
    ]);
    expect(validate({ type: 'string', format: 'date-time' }, '2025-11-22T07:00:00.123Z')).toEqual([]);
    expect(validate({ type: 'string', format: 'date-time' }, '2025-13-40T07:00:00Z')).toHaveLength(1);
  });
});

describe('relay', () => {
  it('writes structured-mode records keyed by the batch UID, content-type the only header (no ce_ headers)', () => {
    const e = completed();
    const m = toKafkaMessage({ event_id: e.id, event_type: e.type, topic: 't', key: UID, payload: e });
    expect(m.key).toBe(UID);
    expect(m.headers).toEqual({ 'content-type': 'application/cloudevents+json; charset=utf-8' });
    expect(JSON.parse(m.value)).toEqual(e);
  });

  it('gives an event committed before dataschema existed the 1.0 revision of its type', () => {
    const { dataschema: _, ...old } = completed();
    const m = toKafkaMessage({ event_id: old.id, event_type: old.type, topic: 't', key: UID, payload: old });
    const sent = JSON.parse(m.value);
    expect(sent.dataschema).toBe('https://cj.huleedu.io/schemas/cj.batch.completed.v1/1.0/data.json');
    expect(validate(loadEventSchema(EVENT_COMPLETED), sent)).toEqual([]);
    expect({ ...sent, dataschema: undefined }).toEqual({ ...old, dataschema: undefined });
  });

  it('backs off by doubling up to a cap', () => {
    const seq: number[] = [];
    let b = INITIAL_BACKOFF_MS;
    for (let i = 0; i < 8; i++) {
      b = nextBackoff(b);
      seq.push(b);
    }
    expect(seq).toEqual([
      1000,
      2000,
      4000,
      8000,
      MAX_BACKOFF_MS,
      MAX_BACKOFF_MS,
      MAX_BACKOFF_MS,
      MAX_BACKOFF_MS,
    ]);
  });
});

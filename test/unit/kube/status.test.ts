import { describe, expect, it } from 'vitest';
import {
  type Condition,
  getCondition,
  isTrue,
  mergePatchDiff,
  metaTime,
  microTime,
  setCondition,
} from '../../../operator/src/kube/status.js';

const t1 = new Date('2026-01-01T10:00:00.123Z');
const t2 = new Date('2026-01-01T11:00:00Z');

describe('setCondition', () => {
  it('adds a condition with all five metav1 fields', () => {
    const c = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Waiting', message: 'x' },
      t1,
    );
    expect(c).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Waiting',
        message: 'x',
        lastTransitionTime: '2026-01-01T10:00:00Z',
        observedGeneration: 0,
      },
    ]);
  });

  it('keeps lastTransitionTime when the status is unchanged, moves it on a change', () => {
    let c: Condition[] = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'A', message: 'a', observedGeneration: 1 },
      t1,
    );
    c = setCondition(
      c,
      { type: 'Ready', status: 'False', reason: 'B', message: 'b', observedGeneration: 2 },
      t2,
    );
    expect(c[0]).toMatchObject({ reason: 'B', message: 'b', observedGeneration: 2 });
    expect(c[0]!.lastTransitionTime).toBe('2026-01-01T10:00:00Z');
    c = setCondition(
      c,
      { type: 'Ready', status: 'True', reason: 'Ok', message: '', observedGeneration: 2 },
      t2,
    );
    expect(c[0]!.lastTransitionTime).toBe('2026-01-01T11:00:00Z');
    expect(isTrue(c, 'Ready')).toBe(true);
  });

  it('replaces in place, keeps other types and does not mutate the input', () => {
    const a = setCondition([], { type: 'A', status: 'True', reason: 'R', message: '' }, t1);
    const ab = setCondition(a, { type: 'B', status: 'Unknown', reason: 'R', message: '' }, t1);
    const ab2 = setCondition(ab, { type: 'A', status: 'False', reason: 'R2', message: '' }, t2);
    expect(ab2.map((c) => c.type)).toEqual(['A', 'B']);
    expect(getCondition(ab, 'A')!.status).toBe('True');
    expect(getCondition(ab2, 'A')!.status).toBe('False');
    expect(getCondition(ab2, 'C')).toBeUndefined();
    expect(isTrue(ab2, 'C')).toBe(false);
  });

  it('formats metav1.Time and MicroTime', () => {
    expect(metaTime(t1)).toBe('2026-01-01T10:00:00Z');
    expect(microTime(t1)).toBe('2026-01-01T10:00:00.123000Z');
  });
});

describe('mergePatchDiff', () => {
  it('is undefined for deep-equal values regardless of key order', () => {
    expect(mergePatchDiff({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBeUndefined();
  });
  it('nulls removed members, recurses into objects, replaces arrays', () => {
    expect(mergePatchDiff({ a: 1, b: { c: 1, d: 2 }, l: [1] }, { b: { c: 1, d: 3 }, l: [1, 2] })).toEqual({
      a: null,
      b: { d: 3 },
      l: [1, 2],
    });
  });
});

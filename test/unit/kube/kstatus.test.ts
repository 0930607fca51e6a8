// Reconciling/Stalled for kstatus (Flux, kubectl wait), derived from our own conditions.
import { describe, expect, it } from 'vitest';
import type { CJBatchStatus } from '../../../operator/src/api/index.js';
import { batchKstatus } from '../../../operator/src/controllers/cjbatch/status.js';
import { setKstatusConditions } from '../../../operator/src/kube/kstatus.js';
import { conditionSetter } from '../../../operator/src/kube/status.js';

const c = (type: string, status: 'True' | 'False', reason: string, message = reason) => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-11-22T00:00:00Z',
});

function kstatusConditions(status: CJBatchStatus) {
  const out: { conditions?: unknown } = {};
  setKstatusConditions(conditionSetter(out, 3), batchKstatus(status));
  return Object.fromEntries(
    (out.conditions as { type: string; status: string; reason: string }[]).map((x) => [
      x.type,
      `${x.status}/${x.reason}`,
    ]),
  );
}

describe('batchKstatus', () => {
  it('a batch on its way is Reconciling, with its phase as the reason', () => {
    for (const phase of ['Pending', 'Preparing', 'Scoring', 'Comparing', 'Finalizing'] as const)
      expect(kstatusConditions({ phase })).toEqual({
        Reconciling: `True/${phase}`,
        Stalled: 'False/NotStalled',
      });
  });

  it('waiting for a pool is still Reconciling (it resolves by itself)', () => {
    const s: CJBatchStatus = {
      phase: 'Pending',
      conditions: [c('Progressing', 'False', 'WaitingForPool', 'the batch waits for its pool')],
    };
    expect(batchKstatus(s)).toEqual({
      reconciling: { reason: 'Pending', message: 'the batch waits for its pool' },
    });
  });

  it('Failed and InvalidSpec are Stalled with the reason; Succeeded and suspended are neither', () => {
    expect(
      kstatusConditions({ phase: 'Failed', conditions: [c('Succeeded', 'False', 'RoundTimeout')] }),
    ).toEqual({ Stalled: 'True/RoundTimeout', Reconciling: 'False/Stalled' });
    expect(
      kstatusConditions({ phase: 'Pending', conditions: [c('InvalidSpec', 'True', 'ValidationFailed')] }),
    ).toEqual({ Stalled: 'True/InvalidSpec', Reconciling: 'False/Stalled' });
    expect(kstatusConditions({ phase: 'Succeeded' })).toEqual({
      Reconciling: 'False/Reconciled',
      Stalled: 'False/NotStalled',
    });
    expect(
      kstatusConditions({ phase: 'Comparing', conditions: [c('Progressing', 'False', 'Suspended')] }),
    ).toEqual({ Reconciling: 'False/Reconciled', Stalled: 'False/NotStalled' });
  });
});

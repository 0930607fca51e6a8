// The Argo CD health checks (config/health/*.lua, run by gopher-lua as Argo CD runs them) and
// kstatus (cli-utils status.Compute, what Flux's health checks use) on status shapes the operator
// writes, including the ones the live test cannot easily reach (suspended, invalid spec, an
// unobserved generation, deletion). Reconciling/Stalled come from the operator's own functions,
// so the table follows what it writes. docs/gitops.md has the same tables.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../../../hack/lib/tools.js';
import type { CJBatchStatus } from '../../../operator/src/api/index.js';
import { batchKstatus } from '../../../operator/src/controllers/cjbatch/status.js';
import { setPoolConditions } from '../../../operator/src/controllers/llmproviderpool/reconciler.js';
import { setKstatusConditions } from '../../../operator/src/kube/kstatus.js';
import { conditionSetter } from '../../../operator/src/kube/status.js';
import { argoHealth, kstatus } from './health-tools.js';

type Obj = Record<string, any>;
const cond = (type: string, status: string, reason: string, message = `${type} ${reason}`) => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
});
/** A batch status with our own conditions, completed with Reconciling/Stalled as the operator does. */
const written = (status: Obj): Obj => {
  setKstatusConditions(conditionSetter(status, 1), batchKstatus(status as CJBatchStatus));
  return status;
};
/** A pool status as the operator writes it for the outcome of its Secret and key check. */
const poolWritten = (ok: boolean, reason: string, message: string): Obj => {
  const status: Obj = { observedGeneration: 1 };
  setPoolConditions(conditionSetter(status, 1), { ok, reason, message });
  return status;
};
const batch = (status?: Obj, meta: Obj = {}): Obj => ({
  apiVersion: 'cj.huleedu.io/v1alpha1',
  kind: 'CJBatch',
  metadata: { name: 'b', namespace: 'ns', generation: 1, ...meta },
  spec: {},
  ...(status ? { status } : {}),
});
const pool = (status?: Obj, meta: Obj = {}): Obj => ({
  ...batch(status, meta),
  kind: 'LLMProviderPool',
});
/** A batch in `phase` with these conditions, as the operator writes it (plus `extra` status). */
const batchIn = (phase: string, conditions: Obj[], extra: Obj = {}, meta: Obj = {}): Obj =>
  batch(written({ observedGeneration: 1, phase, ...extra, conditions }), meta);
const running = (phase: string, reason: string, meta: Obj = {}) =>
  batchIn(
    phase,
    [cond('PoolReady', 'True', 'PoolReady'), cond('Progressing', 'True', reason, `round 1: 12/60`)],
    { progress: '12/60' },
    meta,
  );

// [name, object, Argo CD status, message part, kstatus status]
const cases: [string, Obj, string, string, string][] = [
  ['batch without status', batch(), 'Progressing', 'Waiting for the operator', 'Current'],
  [
    'batch Pending on a pool that is not Ready',
    batchIn('Pending', [
      cond('PoolReady', 'False', 'PoolNotReady', 'pool p is not Ready'),
      cond('Progressing', 'False', 'WaitingForPool'),
    ]),
    'Progressing',
    'Waiting for the pool: pool p is not Ready',
    'InProgress',
  ],
  [
    'batch Comparing',
    running('Comparing', 'Comparing'),
    'Progressing',
    'Comparing (12/60 comparisons): round 1: 12/60',
    'InProgress',
  ],
  ['batch Scoring', running('Scoring', 'Scoring'), 'Progressing', 'Scoring', 'InProgress'],
  [
    'batch Succeeded',
    batchIn(
      'Succeeded',
      [
        cond('Succeeded', 'True', 'Converged', 'finished after 3 rounds: converged'),
        cond('Progressing', 'False', 'Finished'),
      ],
      { progress: '60/60' },
    ),
    'Healthy',
    'finished after 3 rounds: converged (60/60 comparisons)',
    'Current',
  ],
  [
    'batch Failed',
    batchIn('Failed', [
      cond('Succeeded', 'False', 'RoundTimeout', 'round 1 timed out'),
      cond('Progressing', 'False', 'RoundTimeout'),
    ]),
    'Degraded',
    'round 1 timed out',
    'Failed',
  ],
  [
    'batch with an invalid spec',
    batchIn('Pending', [
      cond('InvalidSpec', 'True', 'ValidationFailed', 'spec.essays: fix it'),
      cond('Progressing', 'False', 'InvalidSpec'),
    ]),
    'Degraded',
    'spec.essays: fix it',
    'Failed',
  ],
  [
    'batch suspended',
    batchIn('Comparing', [
      cond('Progressing', 'False', 'Suspended', 'spec.suspend is true: no new Jobs start'),
    ]),
    'Suspended',
    'spec.suspend is true',
    'Current',
  ],
  [
    'batch with a generation the operator has not seen',
    running('Comparing', 'Comparing', { generation: 2 }),
    'Progressing',
    'observe generation 2',
    'InProgress',
  ],
  [
    'batch being deleted',
    running('Comparing', 'Comparing', { deletionTimestamp: '2026-01-01T00:00:00Z' }),
    'Progressing',
    'Comparing',
    'Terminating',
  ],
  ['pool without status', pool(), 'Progressing', 'Waiting for the operator', 'Current'],
  [
    'pool Ready',
    pool(poolWritten(true, 'Authenticated', 'the API key authenticated')),
    'Healthy',
    'the API key authenticated',
    'Current',
  ],
  [
    'pool whose Secret is missing (needs a person)',
    pool(poolWritten(false, 'SecretNotFound', 'Secret "k" not found')),
    'Degraded',
    'SecretNotFound: Secret "k" not found',
    'Failed',
  ],
  [
    'pool whose provider is unreachable (re-checked)',
    pool(poolWritten(false, 'Unreachable', 'provider unreachable')),
    'Degraded',
    'Unreachable: provider unreachable',
    'InProgress',
  ],
  [
    'pool with a generation the operator has not seen',
    pool(poolWritten(true, 'Authenticated', 'the API key authenticated'), { generation: 3 }),
    'Progressing',
    'observe generation 3',
    'InProgress',
  ],
];

describe('health of CJBatch and LLMProviderPool', () => {
  const rows = cases.map(([name, obj, argo, message, ks]) => ({ name, obj, argo, message, ks }));
  it.each(rows)('$name: Argo CD $argo, kstatus $ks', ({ obj, argo, message, ks }) => {
    const a = argoHealth(obj);
    expect(a.status).toBe(argo);
    expect(a.message).toContain(message);
    expect(kstatus(obj).status).toBe(ks);
  });

  it('a kind without a script fails loudly', () => {
    expect(() => argoHealth({ kind: 'NoSuchKind' })).toThrow(/nosuchkind\.lua/);
  });

  it('argocd-cm.yaml carries exactly the .lua files', () => {
    const dir = path.join(repoRoot, 'config/health');
    const cm = parse(readFileSync(path.join(dir, 'argocd-cm.yaml'), 'utf8'));
    expect(cm.metadata).toEqual({ name: 'argocd-cm', namespace: 'argocd' });
    expect(cm.data).toEqual({
      'resource.customizations.health.cj.huleedu.io_CJBatch': readFileSync(
        path.join(dir, 'cjbatch.lua'),
        'utf8',
      ),
      'resource.customizations.health.cj.huleedu.io_LLMProviderPool': readFileSync(
        path.join(dir, 'llmproviderpool.lua'),
        'utf8',
      ),
    });
  });
});

// Argo CD health checks (config/health/*.lua on gopher-lua, as Argo CD runs them) and kstatus
// (cli-utils status.Compute, as Flux's health checks use it) on real CJBatch and LLMProviderPool
// objects, read from the apiserver while the operator moves them through their phases: no status
// yet, Pending on a Degraded pool, suspended, Comparing, Succeeded, Failed, and a spec change the
// operator has not seen. The expectations are docs/gitops.md's tables.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeAnthropic } from '../../runtime/src/fake-anthropic/server.js';
import { argoHealth, kstatus } from '../unit/install/health-tools.js';
import { deleteNamespace, kubectlOk, newNamespace, waitFor } from './helpers.js';
import {
  freshDatabase,
  installCrds,
  type OperatorProcess,
  poolManifests,
  requireBuild,
  sampleBatch,
  startFake,
  startOperator,
} from './operator-harness.js';

type Obj = Record<string, any>;

describe('health checks on live objects', () => {
  let ns: string;
  const setSuspend = (batch: string, suspend: boolean) =>
    kubectlOk([
      'patch',
      'cjbatch',
      batch,
      '-n',
      ns,
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { suspend } }),
    ]);
  let fake: FakeAnthropic;
  let slow: FakeAnthropic;
  let operator: OperatorProcess | undefined;
  const get = async (kind: string, name: string): Promise<Obj> =>
    JSON.parse(await kubectlOk(['get', kind, name, '-n', ns, '-o', 'json']));
  /** The object once `ok` holds for it. */
  const when = (kind: string, name: string, what: string, ok: (o: Obj) => boolean, timeoutMs = 120_000) =>
    waitFor(
      `${kind} ${name}: ${what}`,
      async () => {
        const o = await get(kind, name);
        return ok(o) ? o : undefined;
      },
      timeoutMs,
    );
  const phase = (p: string) => (o: Obj) => {
    if (o.status?.phase === 'Failed' && p !== 'Failed')
      throw new Error(`failed: ${JSON.stringify(o.status.conditions)}`);
    return o.status?.phase === p;
  };
  const jobsOf = async (batch: string) =>
    JSON.parse(await kubectlOk(['get', 'jobs', '-n', ns, '-l', `cj.huleedu.io/batch=${batch}`, '-o', 'json']))
      .items.length as number;
  const cond = (o: Obj, type: string) => o.status?.conditions?.find((c: Obj) => c.type === type);
  const expectHealth = (o: Obj, argo: string, ks: string) => {
    const a = argoHealth(o);
    expect(a.status, `${o.kind} ${o.metadata.name}: ${a.message}`).toBe(argo);
    expect(kstatus(o).status, `${o.kind} ${o.metadata.name} kstatus`).toBe(ks);
    return a;
  };
  const batch = (name: string, pool: string, edit: (b: Obj) => void = () => {}) => {
    const b = sampleBatch('cjbatch-small.yaml', name, ns);
    b.spec.providerPoolRef.name = pool;
    edit(b);
    return b;
  };

  beforeAll(async () => {
    requireBuild();
    // Fail before anything starts when a tool is missing.
    argoHealth({ kind: 'CJBatch' });
    kstatus({ kind: 'CJBatch', metadata: { name: 'x' } });
    await installCrds();
    ns = await newNamespace('health');
    [fake, slow] = await Promise.all([startFake(), startFake({ latencyMs: 120_000 })]);
  });

  afterAll(async () => {
    await operator?.stop();
    await Promise.all([fake?.close(), slow?.close()]);
    if (ns) await deleteNamespace(ns);
  });

  it('objects the operator has not seen yet are Progressing (kstatus: Current, see docs/gitops.md)', async () => {
    // No operator yet: everything is applied without status.
    const lost = poolManifests(ns, fake.url, 'lost-pool', 'no-such-secret')[1]!;
    await kubectlOk(
      ['apply', '-n', ns, '-f', '-'],
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [
          ...poolManifests(ns, fake.url),
          ...poolManifests(ns, slow.url, 'slow-pool', 'slow-key'),
          lost,
          batch('sample-small', 'fake-pool'),
          // Every call to the slow fake takes 120 s; a round may last 1 min (the admission minimum): RoundTimeout.
          // Round by round: a pipelined batch is not failed for it (NothingJudged, pipeline.test.ts).
          batch('late', 'slow-pool', (b) => {
            b.metadata.annotations = { ...b.metadata.annotations, 'cj.huleedu.io/rounds': 'rounds' };
            b.spec.timeouts = { round: '1m' };
          }),
          batch('waiting', 'lost-pool'),
          batch('held', 'fake-pool', (b) => {
            b.spec.suspend = true;
          }),
        ],
      }),
    );
    const b = await get('cjbatch', 'sample-small');
    const p = await get('llmproviderpool', 'fake-pool');
    expect(b.status?.observedGeneration).toBeUndefined();
    expect(expectHealth(b, 'Progressing', 'Current').message).toContain('Waiting for the operator');
    expectHealth(p, 'Progressing', 'Current');
    operator = await startOperator({ namespace: ns, databaseUrl: await freshDatabase('health') });
  });

  it('pools: Ready is Healthy/Current; a missing Secret is Degraded/Failed (Stalled)', async () => {
    const ready = await when(
      'llmproviderpool',
      'fake-pool',
      'Ready',
      (o) => cond(o, 'Ready')?.status === 'True',
    );
    expectHealth(ready, 'Healthy', 'Current');
    const lost = await when(
      'llmproviderpool',
      'lost-pool',
      'Degraded',
      (o) => cond(o, 'Degraded')?.status === 'True',
    );
    expect(expectHealth(lost, 'Degraded', 'Failed').message).toContain('SecretNotFound');
  });

  it('batches: Pending on a Degraded pool and suspended', async () => {
    const waiting = await when(
      'cjbatch',
      'waiting',
      'PoolReady=False',
      (o) => cond(o, 'PoolReady')?.status === 'False',
    );
    expect(waiting.status.phase).toBe('Pending');
    expect(expectHealth(waiting, 'Progressing', 'InProgress').message).toContain('Waiting for the pool');
    const held = await when(
      'cjbatch',
      'held',
      'Suspended',
      (o) => cond(o, 'Progressing')?.reason === 'Suspended',
    );
    expectHealth(held, 'Suspended', 'Current');
    // suspended from creation: it started no Job and shows no pace (docs/kueue.md)
    expect(await jobsOf('held')).toBe(0);
    expect(held.status.throughput).toBeUndefined();
  });

  it('batches: Comparing, then Succeeded; a timed-out round Failed', async () => {
    const comparing = await when('cjbatch', 'sample-small', 'Comparing', phase('Comparing'));
    expect(expectHealth(comparing, 'Progressing', 'InProgress').message).toMatch(/^Comparing/);
    const failed = await when('cjbatch', 'late', 'Failed', phase('Failed'), 240_000);
    expect(cond(failed, 'Succeeded').reason).toBe('RoundTimeout');
    expectHealth(failed, 'Degraded', 'Failed');
    const done = await when('cjbatch', 'sample-small', 'Succeeded', phase('Succeeded'), 150_000);
    expect(expectHealth(done, 'Healthy', 'Current').message).toContain(cond(done, 'Succeeded').message);
    expect(done.status.throughput).toBeUndefined();
    // released, the held batch runs: its first Job starts
    expect(await jobsOf('held')).toBe(0);
    await setSuspend('held', false);
    await when('cjbatch', 'held', 'running after release', (o) =>
      ['Scoring', 'Comparing', 'Succeeded'].includes(o.status?.phase),
    );
    expect(await jobsOf('held')).toBeGreaterThan(0);
  }, 420_000);

  it('a spec change the operator has not observed is Progressing/InProgress', async () => {
    await operator!.stop();
    operator = undefined;
    await setSuspend('held', true);
    const changed = await get('cjbatch', 'held');
    expect(changed.metadata.generation).toBeGreaterThan(changed.status.observedGeneration);
    expectHealth(changed, 'Progressing', 'InProgress');
    // The batches keep the operator's finalizer; the namespace deletion in afterAll waits for no one.
    await kubectlOk([
      'patch',
      'cjbatch',
      'held',
      'waiting',
      'sample-small',
      'late',
      '-n',
      ns,
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]);
  });
});

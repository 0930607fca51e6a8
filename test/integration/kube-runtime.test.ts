// The controller runtime (operator/src/kube) against the real local kube-apiserver: informer,
// controller with SSA and requeueAfter, Lease leader election, finalizers, Events, probes.
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller, type Request } from '../../operator/src/kube/controller.js';
import { EventRecorder } from '../../operator/src/kube/events.js';
import { addFinalizer, removeFinalizer } from '../../operator/src/kube/finalizer.js';
import { startHealthServer } from '../../operator/src/kube/health.js';
import { Informer, type InformerEventType } from '../../operator/src/kube/informer.js';
import { LeaderElector } from '../../operator/src/kube/leader.js';
import {
  ApiError,
  isNotFound,
  KubeClient,
  type KubeObject,
  resourcePath,
} from '../../operator/src/kube/rest.js';
import { patchStatusIfChanged, setCondition } from '../../operator/src/kube/status.js';
import { deleteNamespace, kubectl, kubectlOk, newNamespace, stack, waitFor } from './helpers.js';

const CM = { group: '', version: 'v1', plural: 'configmaps' };
const logger = pino({ level: process.env.LOG_LEVEL ?? 'silent' });
let ns: string;
let client: KubeClient;
let registry: Registry;

beforeAll(async () => {
  process.env.KUBECONFIG = stack().kubeconfig;
  registry = new Registry();
  client = await KubeClient.fromDefault({ registry });
  ns = await newNamespace('kube-runtime');
});
afterAll(async () => {
  // Leave no finalizer behind that would block the namespace deletion.
  const cms = await client.get<{ items: KubeObject[] }>(resourcePath(CM, ns)).catch(() => ({ items: [] }));
  for (const cm of cms.items)
    if (cm.metadata?.finalizers?.length)
      await client.mergePatch(resourcePath(CM, ns, cm.metadata.name), { metadata: { finalizers: null } });
  await deleteNamespace(ns);
  client.close();
});

const cmJson = async (name: string) =>
  JSON.parse(await kubectlOk(['get', 'cm', name, '-n', ns, '-o', 'json']));

describe('KubeClient', () => {
  it('maps errors to ApiError with status and reason; counts requests', async () => {
    const err = (await client.get(resourcePath(CM, ns, 'does-not-exist')).catch((e) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
    expect(err.reason).toBe('NotFound');
    expect(isNotFound(err)).toBe(true);
    const created = await client.create<KubeObject>(resourcePath(CM, ns), {
      metadata: { name: 'dup' },
      data: {},
    });
    expect(created.metadata?.uid).toBeTruthy();
    const dup = (await client
      .create(resourcePath(CM, ns), { metadata: { name: 'dup' } })
      .catch((e) => e)) as ApiError;
    expect(dup.status).toBe(409);
    expect(dup.reason).toBe('AlreadyExists');
    // DELETE with a body (framed with Content-Length) works and the connection stays usable.
    await client.delete(resourcePath(CM, ns, 'dup'), { propagationPolicy: 'Background' });
    expect(isNotFound(await client.get(resourcePath(CM, ns, 'dup')).catch((e) => e))).toBe(true);
    const text = await registry.metrics();
    expect(text).toMatch(/rest_client_requests_total\{code="404",method="GET",host="[^"]+"\} \d+/);
    expect(text).toMatch(/rest_client_requests_total\{code="201",method="POST",host="[^"]+"\} \d+/);
  });
});

describe('Informer on the real apiserver', () => {
  it('sees create, update and delete, and keeps going across a forced watch restart', async () => {
    const events: Array<[InformerEventType, string, string | undefined]> = [];
    const inf = new Informer<KubeObject & { data?: Record<string, string> }>(client, CM, {
      namespace: ns,
      labelSelector: 'test=informer',
      registry,
    });
    inf.onEvent((t, o) => events.push([t, o.metadata!.name!, o.data?.v]));
    await kubectlOk(['create', 'cm', 'pre', '-n', ns, '--from-literal=v=0']);
    await kubectlOk(['label', 'cm', 'pre', '-n', ns, 'test=informer']);
    await inf.start();
    expect(inf.hasSynced()).toBe(true);
    expect(events).toEqual([['ADDED', 'pre', '0']]);
    expect(inf.get(ns, 'pre')?.metadata?.managedFields).toBeUndefined();

    await kubectlOk(['create', 'cm', 'w1', '-n', ns, '--from-literal=v=1']);
    await kubectlOk(['label', 'cm', 'w1', '-n', ns, 'test=informer']);
    await waitFor('ADDED w1', async () => inf.get(ns, 'w1'));
    await kubectlOk(['patch', 'cm', 'w1', '-n', ns, '-p', '{"data":{"v":"2"}}']);
    await waitFor('MODIFIED w1', async () => inf.get(ns, 'w1')?.data?.v === '2');

    const watchesBefore = inf.stats.watches;
    inf.restartWatch();
    await waitFor('watch restarted', async () => inf.stats.watches > watchesBefore);
    // Changes made right after the restart are delivered, nothing is lost or replayed.
    await kubectlOk(['patch', 'cm', 'w1', '-n', ns, '-p', '{"data":{"v":"3"}}']);
    await kubectlOk(['delete', 'cm', 'pre', '-n', ns]);
    await waitFor(
      'MODIFIED w1 v3 and DELETED pre',
      async () => inf.get(ns, 'w1')?.data?.v === '3' && !inf.get(ns, 'pre'),
    );
    expect(inf.stats.lists).toBe(1); // a restart resumes from the last resourceVersion
    expect(events.filter(([t, n]) => t === 'ADDED' && n === 'w1')).toHaveLength(1);
    expect(events).toContainEqual(['DELETED', 'pre', '0']);
    expect(inf.list(ns).map((o) => o.metadata!.name)).toEqual(['w1']);
    expect(inf.isHealthy()).toBe(true);
    await inf.stop();
  });
});

describe('Controller with server-side apply', () => {
  it('copies a label into an annotation with SSA and polls with requeueAfter', async () => {
    const MANAGER = 'kube-runtime-test';
    const polls = new Map<string, number>();
    const inf = new Informer<KubeObject>(client, CM, { namespace: ns, labelSelector: 'copy', registry });
    const controller = new Controller({
      name: 'copier',
      workers: 2,
      logger,
      registry,
      reconciler: {
        async reconcile(req: Request, ctx) {
          expect(ctx.reconcileID).toMatch(/^[0-9a-f-]{36}$/);
          const cm = inf.get(req.namespace, req.name);
          if (!cm) return undefined;
          const want = cm.metadata?.labels?.copy ?? '';
          if (cm.metadata?.annotations?.copied !== want) {
            await client.apply(
              resourcePath(CM, req.namespace, req.name),
              {
                apiVersion: 'v1',
                kind: 'ConfigMap',
                metadata: { name: req.name, namespace: req.namespace, annotations: { copied: want } },
              },
              MANAGER,
            );
          }
          if (cm.metadata?.labels?.poll === 'true') {
            polls.set(req.name, (polls.get(req.name) ?? 0) + 1);
            return { requeueAfter: 300 };
          }
          return undefined;
        },
      },
    }).watch(inf);
    const ac = new AbortController();
    const running = controller.start(ac.signal);
    for (const [name, poll] of [
      ['c1', 'false'],
      ['c2', 'true'],
    ] as const) {
      await kubectlOk(['create', 'cm', name, '-n', ns]);
      await kubectlOk(['label', 'cm', name, '-n', ns, `copy=value-${name}`, `poll=${poll}`]);
    }
    await waitFor('annotations copied', async () => {
      const [a, b] = await Promise.all([cmJson('c1'), cmJson('c2')]);
      return a.metadata.annotations?.copied === 'value-c1' && b.metadata.annotations?.copied === 'value-c2';
    });
    const c1 = await client.get<KubeObject>(resourcePath(CM, ns, 'c1'));
    expect(c1.metadata?.managedFields).toContainEqual(
      expect.objectContaining({ manager: MANAGER, operation: 'Apply' }),
    );
    // A label change is followed.
    await kubectlOk(['label', 'cm', 'c1', '-n', ns, '--overwrite', 'copy=changed']);
    await waitFor(
      'changed copied',
      async () => (await cmJson('c1')).metadata.annotations?.copied === 'changed',
    );
    // requeueAfter keeps polling c2 without any event.
    const before = polls.get('c2') ?? 0;
    await new Promise((r) => setTimeout(r, 1500));
    expect((polls.get('c2') ?? 0) - before).toBeGreaterThanOrEqual(3);
    expect(polls.get('c1')).toBeUndefined();
    ac.abort();
    await running;
    await inf.stop();
    const text = await registry.metrics();
    expect(text).toMatch(/controller_runtime_reconcile_total\{controller="copier",result="success"\} [1-9]/);
    expect(text).toMatch(
      /controller_runtime_reconcile_total\{controller="copier",result="requeue_after"\} [1-9]/,
    );
    expect(text).toMatch(/workqueue_adds_total\{name="copier",controller="copier"\} [1-9]/);
  });
});

describe('LeaderElector on a Lease', () => {
  const timing = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500 };

  /** A client whose Lease requests fail while `blocked` is set (a partitioned leader). */
  function blockable(c: KubeClient) {
    const state = { blocked: false };
    const proxy = new Proxy(c, {
      get(target, prop, receiver) {
        if (prop === 'request')
          return (method: string, path: string, ...rest: unknown[]) => {
            if (state.blocked && path.includes('/leases'))
              return Promise.reject(new ApiError(0, 'NetworkError', 'blocked by test', undefined));
            return (target.request as (...a: unknown[]) => Promise<unknown>).call(
              receiver,
              method,
              path,
              ...rest,
            );
          };
        return Reflect.get(target, prop, receiver);
      },
    });
    return { client: proxy, state };
  }

  function elector(c: KubeClient, identity: string, name: string) {
    const log = {
      started: 0,
      stopped: 0,
      signal: undefined as AbortSignal | undefined,
    };
    const e = new LeaderElector(c, { namespace: ns, name, identity, registry, ...timing });
    const run = e.run({
      onStartedLeading: (signal) => {
        log.started++;
        log.signal = signal;
      },
      onStoppedLeading: () => {
        log.stopped++;
      },
    });
    return { e, log, run };
  }

  it('exactly one leads; release hands over at once', async () => {
    const a = elector(client, 'replica-a', 'lease-release');
    await waitFor('a leads', async () => a.e.isLeader(), 10_000);
    const b = elector(client, 'replica-b', 'lease-release');
    await new Promise((r) => setTimeout(r, 2000));
    expect(a.e.isLeader()).toBe(true);
    expect(b.e.isLeader()).toBe(false);
    expect(b.log.started).toBe(0);
    const lease = JSON.parse(await kubectlOk(['get', 'lease', 'lease-release', '-n', ns, '-o', 'json']));
    expect(lease.spec.holderIdentity).toBe('replica-a');
    expect(lease.spec.leaseDurationSeconds).toBe(3);

    const t0 = Date.now();
    await a.e.release();
    await a.run;
    expect(a.log.signal?.aborted).toBe(true);
    expect(a.log.stopped).toBe(0); // a release is not a loss
    await waitFor('b leads', async () => b.e.isLeader(), 10_000);
    const handover = Date.now() - t0;
    // Well under the 3 s lease duration: b did not wait for expiry.
    expect(handover).toBeLessThan(2000);
    const after = JSON.parse(await kubectlOk(['get', 'lease', 'lease-release', '-n', ns, '-o', 'json']));
    expect(after.spec.holderIdentity).toBe('replica-b');
    expect(after.spec.leaseTransitions).toBeGreaterThanOrEqual(1);
    // One gauge per lease name per process: b (same process) now reports 1.
    expect(await registry.metrics()).toContain('leader_election_master_status{name="lease-release"} 1');
    await b.e.release();
    await b.run;
    console.info(`[kube-runtime] leader handover after release: ${handover} ms`);
  });

  it('a leader whose renewals are blocked steps down; the other takes over after expiry', async () => {
    const blocked = blockable(await KubeClient.fromDefault({ registry }));
    const a = elector(blocked.client, 'stalled-a', 'lease-stall');
    await waitFor('a leads', async () => a.e.isLeader(), 10_000);
    const b = elector(client, 'healthy-b', 'lease-stall');
    await new Promise((r) => setTimeout(r, 1000));
    expect(b.e.isLeader()).toBe(false);

    const t0 = Date.now();
    blocked.state.blocked = true;
    await waitFor('a steps down', async () => a.log.stopped === 1, 10_000);
    const stepDown = Date.now() - t0;
    expect(a.log.signal?.aborted).toBe(true);
    expect(a.e.isLeader()).toBe(false);
    // renewDeadline (2 s) after the last successful renewal, checked every retry period.
    expect(stepDown).toBeLessThan(2000 + 2 * 500 + 500);
    await waitFor('b takes over', async () => b.e.isLeader(), 15_000);
    const takeover = Date.now() - t0;
    // b must wait out the lease (3 s since it last saw a change), never overlapping with a.
    expect(takeover).toBeGreaterThan(stepDown);
    await a.run;
    await b.e.release();
    await b.run;
    console.info(
      `[kube-runtime] stalled leader stepped down after ${stepDown} ms; takeover after ${takeover} ms`,
    );
  });
});

describe('finalizers', () => {
  it('add/remove are idempotent and never clobber a foreign finalizer', async () => {
    const path = resourcePath(CM, ns, 'fin');
    const original = await client.create<KubeObject>(resourcePath(CM, ns), { metadata: { name: 'fin' } });
    const ours = 'cj.huleedu.io/cleanup';
    const foreign = 'other.example.com/keep';
    // Someone else adds a finalizer after we read the object: our stale copy has none.
    await kubectlOk([
      'patch',
      'cm',
      'fin',
      '-n',
      ns,
      '--type=merge',
      '-p',
      `{"metadata":{"finalizers":["${foreign}"]}}`,
    ]);
    const added = await addFinalizer(client, path, original, ours);
    expect(added.metadata?.finalizers).toEqual([foreign, ours]);
    const again = await addFinalizer(client, path, added, ours);
    expect(again.metadata?.finalizers).toEqual([foreign, ours]);
    expect(again.metadata?.resourceVersion).toBe(added.metadata?.resourceVersion); // no write

    // Remove with a stale copy in which ours sits at another index.
    await kubectlOk([
      'patch',
      'cm',
      'fin',
      '-n',
      ns,
      '--type=json',
      '-p',
      `[{"op":"add","path":"/metadata/finalizers/0","value":"third.example.com/x"}]`,
    ]);
    const removed = await removeFinalizer(client, path, added, ours);
    expect(removed?.metadata?.finalizers).toEqual(['third.example.com/x', foreign]);
    const removedAgain = await removeFinalizer(client, path, removed!, ours);
    expect(removedAgain?.metadata?.finalizers).toEqual(['third.example.com/x', foreign]);
    expect((await cmJson('fin')).metadata.finalizers).toEqual(['third.example.com/x', foreign]);

    // On a deleted object, removing the last finalizer lets it go; a second remove is a no-op.
    const solo = await client.create<KubeObject>(resourcePath(CM, ns), {
      metadata: { name: 'fin2', finalizers: [ours] },
    });
    await client.delete(resourcePath(CM, ns, 'fin2'));
    const gone = await removeFinalizer(client, resourcePath(CM, ns, 'fin2'), solo, ours);
    await waitFor('fin2 deleted', async () => (await kubectl(['get', 'cm', 'fin2', '-n', ns])).code !== 0);
    expect(await removeFinalizer(client, resourcePath(CM, ns, 'fin2'), solo, ours)).toBeUndefined();
    expect(gone === undefined || gone.metadata?.finalizers === undefined).toBe(true);
  });
});

describe('EventRecorder', () => {
  it('writes events.k8s.io/v1 Events about an object and aggregates repeats into a series', async () => {
    const cm = await client.create<KubeObject>(resourcePath(CM, ns), { metadata: { name: 'evt' } });
    const rec = new EventRecorder(client, 'cj-operator', 'test-host', logger);
    await rec.event({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, 'Normal', 'Tested', 'first note', 'Test');
    await rec.event({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, 'Normal', 'Tested', 'first note', 'Test');
    await rec.event({ ...cm, apiVersion: 'v1', kind: 'ConfigMap' }, 'Warning', 'Other', 'second note');
    const list = JSON.parse(
      await kubectlOk([
        'get',
        'events.v1.events.k8s.io',
        '-n',
        ns,
        '-o',
        'json',
        '--field-selector',
        'regarding.name=evt',
      ]),
    );
    const tested = list.items.filter((e: any) => e.reason === 'Tested');
    expect(tested).toHaveLength(1);
    expect(tested[0].series?.count).toBe(2);
    expect(tested[0].regarding).toMatchObject({ kind: 'ConfigMap', name: 'evt', uid: cm.metadata?.uid });
    expect(tested[0].reportingController).toBe('cj-operator');
    expect(tested[0].note).toBe('first note');
    expect(list.items.some((e: any) => e.reason === 'Other' && e.type === 'Warning')).toBe(true);
    // `kubectl get events` (core/v1 view) shows them too.
    const plain = await kubectlOk(['get', 'events', '-n', ns]);
    expect(plain).toContain('Tested');
    // Never throws: an event in a namespace that does not exist is dropped.
    await expect(
      rec.event({ metadata: { name: 'x', namespace: 'no-such-ns-zz' } }, 'Normal', 'X', 'y'),
    ).resolves.toBeUndefined();
  });
});

describe('status on the /status subresource', () => {
  it('writes conditions with a merge patch only when they changed', async () => {
    // A CRD of our own with a status subresource (no operator watches it).
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.kube-runtime.test.io' },
      spec: {
        group: 'kube-runtime.test.io',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                  status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                },
              },
            },
          },
        ],
      },
    };
    await kubectlOk(['apply', '-f', '-'], JSON.stringify(crd));
    await kubectlOk(['wait', '--for=condition=Established', 'crd/widgets.kube-runtime.test.io']);
    const WIDGETS = { group: 'kube-runtime.test.io', version: 'v1', plural: 'widgets' };
    await waitFor('widgets served', async () => {
      await client.get(resourcePath(WIDGETS, ns));
      return true;
    });
    await client.create(resourcePath(WIDGETS, ns), {
      apiVersion: 'kube-runtime.test.io/v1',
      kind: 'Widget',
      metadata: { name: 'fake-pool' },
      spec: { size: 1 },
    });
    const path = resourcePath(WIDGETS, ns, 'fake-pool');
    type Pool = KubeObject & { status?: { conditions?: ReturnType<typeof setCondition> } };
    let pool = await client.get<Pool>(path);
    const gen = pool.metadata!.generation!;
    const desired = {
      conditions: setCondition([], {
        type: 'Ready',
        status: 'False',
        reason: 'SecretMissing',
        message: 'no key',
        observedGeneration: gen,
      }),
    };
    expect(await patchStatusIfChanged(client, path, pool.status, desired)).toBe(true);
    pool = await client.get<Pool>(path);
    expect(pool.status?.conditions).toEqual(desired.conditions);
    const rv = pool.metadata!.resourceVersion;
    // Same status again: no write.
    expect(await patchStatusIfChanged(client, path, pool.status, desired)).toBe(false);
    expect((await client.get<Pool>(path)).metadata!.resourceVersion).toBe(rv);
    // A status write does not touch spec/generation; a removed member is deleted.
    expect(pool.metadata!.generation).toBe(gen);
    const next = {
      conditions: setCondition(desired.conditions, {
        type: 'Ready',
        status: 'False',
        reason: 'StillMissing',
        message: 'still no key',
        observedGeneration: gen,
      }),
    };
    expect(await patchStatusIfChanged(client, path, { ...pool.status, extra: 1 }, next)).toBe(true);
    pool = await client.get<Pool>(path);
    expect(pool.status?.conditions?.[0]).toMatchObject({ reason: 'StillMissing' });
    expect(pool.status?.conditions?.[0]?.lastTransitionTime).toBe(desired.conditions[0]!.lastTransitionTime);
  });
});

describe('health server', () => {
  it('answers /healthz, /readyz and /metrics', async () => {
    let ready = false;
    const h = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      readyz: () => ready,
      healthz: async () => true,
    });
    try {
      const base = `http://127.0.0.1:${h.port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(500);
      ready = true;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      const m = await fetch(`${base}/metrics`);
      expect(m.status).toBe(200);
      expect(await m.text()).toContain('rest_client_requests_total');
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      await h.close();
    }
  });
});

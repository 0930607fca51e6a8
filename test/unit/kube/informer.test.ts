import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Informer, type InformerEventType } from '../../../operator/src/kube/informer.js';
import { KubeClient, type KubeObject } from '../../../operator/src/kube/rest.js';
import { FakeApiserver } from './fake-apiserver.js';

const CM = { group: '', version: 'v1', plural: 'configmaps' };
const until = async (what: string, fn: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('Informer (fault injection on a fake apiserver)', () => {
  let api: FakeApiserver;
  let client: KubeClient;
  let inf: Informer<KubeObject>;
  let events: Array<[InformerEventType, string]>;

  const make = (opts: Record<string, unknown> = {}) => {
    inf = new Informer<KubeObject>(client, CM, {
      namespace: 'ns',
      registry: new Registry(),
      backoffInitialMs: 20,
      backoffMaxMs: 100,
      ...opts,
    });
    inf.onEvent((t, o) => events.push([t, o.metadata!.name!]));
    return inf;
  };

  beforeEach(async () => {
    api = new FakeApiserver();
    await api.start();
    client = new KubeClient({ server: api.url, registry: new Registry() });
    events = [];
  });
  afterEach(async () => {
    await inf?.stop();
    await api.stop();
    client.close();
  });

  it('lists, then watches from the list RV with bookmarks and a 300–360 s server timeout', async () => {
    api.put('a', { k: '1' });
    make();
    await inf.start();
    expect(inf.hasSynced()).toBe(true);
    expect(events).toEqual([['ADDED', 'a']]);
    expect(inf.get('ns', 'a')?.metadata?.managedFields).toBeUndefined(); // stripped
    expect(inf.get('ns', 'a')?.apiVersion).toBe('v1');
    const w = await api.waitWatch(1);
    expect(w.query.get('resourceVersion')).toBe('101');
    expect(w.query.get('allowWatchBookmarks')).toBe('true');
    const t = Number(w.query.get('timeoutSeconds'));
    expect(t).toBeGreaterThanOrEqual(300);
    expect(t).toBeLessThanOrEqual(360);

    w.send('ADDED', api.put('b'));
    w.send('MODIFIED', api.put('a', { k: '2' }));
    const gone = api.items.get('b')!;
    api.items.delete('b');
    w.send('DELETED', { ...gone, metadata: { ...gone.metadata, resourceVersion: String(++api.rv) } });
    await until('3 watch events', () => events.length === 4);
    expect(events.slice(1)).toEqual([
      ['ADDED', 'b'],
      ['MODIFIED', 'a'],
      ['DELETED', 'b'],
    ]);
    expect(inf.list('ns').map((o) => o.metadata!.name)).toEqual(['a']);
  });

  it('bookmarks advance the resourceVersion used by the next watch', async () => {
    make();
    await inf.start();
    const w = await api.waitWatch(1);
    w.send('BOOKMARK', { metadata: { resourceVersion: '555' } });
    await new Promise((r) => setTimeout(r, 30));
    w.end(); // server-side timeout: clean end
    const w2 = await api.waitWatch(2);
    expect(w2.query.get('resourceVersion')).toBe('555');
    expect(api.lists.length).toBe(1); // no relist on a clean end
    expect(events).toEqual([]); // bookmarks are not delivered
  });

  it('410 Gone in the stream → relist with diff delivery (DELETED for vanished keys)', async () => {
    api.put('keep');
    api.put('vanish');
    api.put('change');
    make();
    await inf.start();
    const w = await api.waitWatch(1);
    // While "disconnected", the world changes and the watch history is compacted.
    api.items.delete('vanish');
    api.put('change', { v: '2' });
    api.put('new');
    w.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    await api.waitWatch(2);
    expect(api.lists.length).toBe(2);
    expect(inf.stats.relistsOnGone).toBe(1);
    expect(events.slice(3).sort()).toEqual([
      ['ADDED', 'new'],
      ['DELETED', 'vanish'],
      ['MODIFIED', 'change'],
    ]);
    expect(inf.keys().sort()).toEqual(['ns/change', 'ns/keep', 'ns/new']);
    expect(api.watches[1]!.query.get('resourceVersion')).toBe(String(api.rv));
  });

  it('HTTP 410 on the watch request → relist', async () => {
    make();
    await inf.start();
    const w = await api.waitWatch(1);
    api.nextWatchStatus = 410;
    w.end();
    await api.waitWatch(3);
    expect(api.lists.length).toBe(2);
    expect(api.watches[2]!.query.get('resourceVersion')).toBe(String(api.rv));
  });

  it('a dropped stream reconnects from the last seen resourceVersion after a backoff', async () => {
    make();
    await inf.start();
    const w = await api.waitWatch(1);
    const obj = api.put('x');
    w.send('ADDED', obj);
    await until('event', () => events.length === 1);
    w.drop();
    const w2 = await api.waitWatch(2);
    expect(w2.query.get('resourceVersion')).toBe(obj.metadata.resourceVersion);
    expect(api.lists.length).toBe(1);
    expect(inf.stats.errors).toBeGreaterThanOrEqual(1);
    // The reconnected watch keeps delivering.
    w2.send('MODIFIED', api.put('x', { a: 'b' }));
    await until('event after reconnect', () => events.length === 2);
  });

  it('silence beyond the inactivity timeout → watchdog aborts and re-watches', async () => {
    make({ inactivityTimeoutMs: 300 });
    await inf.start();
    const w1 = await api.waitWatch(1);
    // Keep the first stream alive with bookmarks for a while: no restart.
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      w1.send('BOOKMARK', { metadata: { resourceVersion: String(200 + i) } });
    }
    expect(api.watches.length).toBe(1);
    const t0 = Date.now();
    const w2 = await api.waitWatch(2); // now silent: the watchdog fires
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(inf.stats.watchdogAborts).toBe(1);
    expect(w2.query.get('resourceVersion')).toBe('203');
    expect(api.lists.length).toBe(1);
  });

  it('401/403 make the informer unhealthy; it keeps retrying with backoff and recovers', async () => {
    api.listStatus = 403;
    make();
    const started = inf.start();
    await until('a few list attempts', () => api.lists.length >= 3);
    expect(inf.hasSynced()).toBe(false);
    expect(inf.isHealthy()).toBe(false);
    api.listStatus = undefined;
    await started;
    expect(inf.isHealthy()).toBe(true);
  });

  it('stop() ends the watch and the loop', async () => {
    make();
    await inf.start();
    const w = await api.waitWatch(1);
    await inf.stop();
    await until('stream closed', () => w.res.destroyed || w.res.writableEnded || w.res.closed);
    await new Promise((r) => setTimeout(r, 100));
    expect(api.watches.length).toBe(1);
  });
});

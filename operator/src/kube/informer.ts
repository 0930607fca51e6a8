// A hardened reflector + cache, replacing client-node's makeInformer:
//
// 1. LIST (resourceVersion ""), diff against the cache: DELETED for vanished keys, ADDED for new
//    ones, MODIFIED when the resourceVersion changed (unchanged objects are not re-delivered).
// 2. WATCH from the list's resourceVersion with allowWatchBookmarks and a server-side
//    timeoutSeconds of 300 s + jitter; a clean end re-watches from the last resourceVersion.
// 3. An inactivity watchdog aborts a stream that has shown no event or bookmark for 90 s
//    (half-open TCP, idle LBs), then re-watches.
// 4. 410 Gone (HTTP or an in-stream ERROR with code 410) → relist with diff-delivery.
// 5. Other errors → exponential backoff with jitter (1 s → 30 s); 401/403 make the informer
//    unhealthy (readiness) until a request succeeds again.
// Cached objects have metadata.managedFields stripped. Handlers are called synchronously and
// their exceptions are contained.
import { randomInt } from 'node:crypto';
import type { Registry } from 'prom-client';
import { pause } from '../../../contract/src/sleep.js';
import { runtimeMetrics } from './metrics.js';
import {
  ApiError,
  type GVR,
  type KubeClient,
  type KubeList,
  type KubeObject,
  resourcePath,
  type WatchEventType,
  withQuery,
} from './rest.js';

export type InformerEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type InformerHandler<T> = (type: InformerEventType, obj: T) => void;

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side watch timeout base (s); a random 0..60 s is added. Default 300. */
  watchTimeoutSeconds?: number;
  /** No event or bookmark for this long → abort the stream and re-watch. Default 90 000. */
  inactivityTimeoutMs?: number;
  /** Backoff for errors: initial and cap (ms). Default 1 000 → 30 000. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  registry?: Registry;
  /** Called on errors (for logging); the informer keeps going. */
  onError?: (err: unknown) => void;
}

/** The cache key of an object: "namespace/name", or "name" when cluster-scoped. */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

export class Informer<T extends KubeObject> {
  /** Epoch ms of the last list, watch connect, event or bookmark (0 before any). */
  lastActivityAt = 0;
  /** The last error seen, cleared by the next successful list or watch connect. */
  lastError: unknown;
  /** Counters, for tests and debugging. */
  readonly stats = { lists: 0, watches: 0, relistsOnGone: 0, watchdogAborts: 0, errors: 0 };
  private readonly store = new Map<string, T>();
  private readonly handlers: InformerHandler<T>[] = [];
  private readonly abort = new AbortController();
  private readonly resource: string;
  private synced = false;
  private authFailed = false;
  private running: Promise<void> | undefined;
  private syncedPromise: Promise<void> | undefined;
  private resolveSynced: (() => void) | undefined;
  private rv = '';
  private streamAbort: AbortController | undefined;
  private failures = 0;

  constructor(
    private readonly client: KubeClient,
    readonly gvr: GVR,
    private readonly opts: InformerOptions = {},
  ) {
    this.resource = `${gvr.group || 'core'}/${gvr.version}/${gvr.plural}`;
  }

  /** Starts list+watch (idempotent); resolves when the initial list is in the cache. */
  start(): Promise<void> {
    if (!this.syncedPromise) {
      this.syncedPromise = new Promise<void>((resolve) => {
        this.resolveSynced = resolve;
      });
      this.running = this.run().catch((err) => this.report(err));
    }
    return this.syncedPromise;
  }

  /** Stops the watch; the cache stays readable. Resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.streamAbort?.abort();
    // Unblock anyone waiting for the first sync.
    this.resolveSynced?.();
    await this.running;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Synced, no auth failure, and activity within `maxSilenceMs` (default 2 min). */
  isHealthy(maxSilenceMs = 120_000): boolean {
    return this.synced && !this.authFailed && Date.now() - this.lastActivityAt < maxSilenceMs;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(namespace ? `${namespace}/${name}` : name);
  }

  list(namespace?: string): T[] {
    const out: T[] = [];
    for (const o of this.store.values()) if (!namespace || o.metadata?.namespace === namespace) out.push(o);
    return out;
  }

  keys(): string[] {
    return [...this.store.keys()];
  }

  onEvent(handler: InformerHandler<T>): void {
    this.handlers.push(handler);
  }

  /** Aborts the current watch stream (it reconnects from the last resourceVersion). For tests/ops. */
  restartWatch(): void {
    this.streamAbort?.abort();
  }

  private get collectionPath(): string {
    return resourcePath(this.gvr, this.opts.namespace);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const initial = this.opts.backoffInitialMs ?? 1000;
    const max = this.opts.backoffMaxMs ?? 30_000;
    let needList = true;
    const backoff = async () => {
      const base = Math.min(max, initial * 2 ** Math.min(this.failures, 20));
      this.failures++;
      // Full jitter on the upper half: [base/2, base].
      await pause(base / 2 + Math.random() * (base / 2), signal);
    };
    while (!signal.aborted) {
      if (needList) {
        try {
          await this.relist();
          needList = false;
          this.failures = 0;
        } catch (err) {
          this.report(err);
          await backoff();
          continue;
        }
      }
      const outcome = await this.watchOnce();
      if (signal.aborted) break;
      switch (outcome.kind) {
        case 'ended':
          this.failures = 0;
          break;
        case 'gone':
          this.stats.relistsOnGone++;
          this.rv = '';
          needList = true;
          break;
        case 'inactive':
          break;
        case 'error':
          this.report(outcome.err);
          // A watch that cannot even start after repeated failures: relist (the RV may be stale).
          if (this.failures >= 3) needList = true;
          await backoff();
          break;
      }
    }
  }

  private async relist(): Promise<void> {
    const path = withQuery(this.collectionPath, {
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
      resourceVersion: '',
    });
    this.stats.lists++;
    runtimeMetrics(this.opts.registry).informerRelists.inc({ resource: this.resource });
    const list = await this.client.get<KubeList<T>>(path);
    this.authFailed = false;
    this.lastError = undefined;
    this.lastActivityAt = Date.now();
    const seen = new Set<string>();
    const events: Array<[InformerEventType, T]> = [];
    for (const raw of list.items ?? []) {
      const obj = strip(raw, list, this.gvr);
      const key = objectKey(obj);
      seen.add(key);
      const old = this.store.get(key);
      this.store.set(key, obj);
      if (!old) events.push(['ADDED', obj]);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion)
        events.push(['MODIFIED', obj]);
    }
    for (const [key, old] of this.store) {
      if (!seen.has(key)) {
        this.store.delete(key);
        events.push(['DELETED', old]);
      }
    }
    this.rv = list.metadata?.resourceVersion ?? '';
    for (const [type, obj] of events) this.emit(type, obj);
    if (!this.synced) {
      this.synced = true;
      this.resolveSynced?.();
    }
  }

  private async watchOnce(): Promise<
    { kind: 'ended' } | { kind: 'gone' } | { kind: 'inactive' } | { kind: 'error'; err: unknown }
  > {
    const ac = new AbortController();
    this.streamAbort = ac;
    const stopOuter = () => ac.abort();
    this.abort.signal.addEventListener('abort', stopOuter, { once: true });
    const timeout = (this.opts.watchTimeoutSeconds ?? 300) + randomInt(0, 61);
    const inactivityMs = this.opts.inactivityTimeoutMs ?? 90_000;
    let gone = false;
    let inactive = false;
    let streamError: unknown;
    let lastSeen = Date.now();
    const watchdog = setInterval(
      () => {
        if (Date.now() - lastSeen > inactivityMs) {
          inactive = true;
          this.stats.watchdogAborts++;
          ac.abort();
        }
      },
      Math.max(50, Math.min(5000, inactivityMs / 4)),
    );
    watchdog.unref?.();
    const path = withQuery(this.collectionPath, {
      watch: 1,
      allowWatchBookmarks: true,
      timeoutSeconds: timeout,
      resourceVersion: this.rv,
      labelSelector: this.opts.labelSelector,
      fieldSelector: this.opts.fieldSelector,
    });
    this.stats.watches++;
    const touch = () => {
      lastSeen = Date.now();
      this.lastActivityAt = lastSeen;
    };
    try {
      await this.client.watch(
        path,
        (type: WatchEventType, raw: unknown) => {
          touch();
          if (type === 'ERROR') {
            const st = raw as { code?: number; message?: string; reason?: string } | undefined;
            if (st?.code === 410) gone = true;
            else
              streamError = new ApiError(
                st?.code ?? 0,
                st?.reason ?? 'WatchError',
                `watch ${this.resource}: ${st?.message ?? 'ERROR event'}`,
                raw,
              );
            ac.abort();
            return;
          }
          const obj = raw as T;
          const rv = obj?.metadata?.resourceVersion;
          if (type === 'BOOKMARK') {
            if (rv) this.rv = rv;
            return;
          }
          if (!obj?.metadata) return;
          if (rv) this.rv = rv;
          this.apply(type, obj);
        },
        ac.signal,
        () => {
          touch();
          this.failures = 0;
          this.authFailed = false;
          this.lastError = undefined;
        },
      );
    } catch (err) {
      if (err instanceof ApiError && err.status === 410) gone = true;
      else if (!ac.signal.aborted) streamError = err;
    } finally {
      clearInterval(watchdog);
      this.abort.signal.removeEventListener('abort', stopOuter);
    }
    const m = runtimeMetrics(this.opts.registry).informerWatchRestarts;
    if (gone) {
      m.inc({ resource: this.resource, reason: 'gone' });
      return { kind: 'gone' };
    }
    if (streamError) {
      m.inc({ resource: this.resource, reason: 'error' });
      return { kind: 'error', err: streamError };
    }
    if (inactive) {
      m.inc({ resource: this.resource, reason: 'inactivity' });
      return { kind: 'inactive' };
    }
    m.inc({ resource: this.resource, reason: ac.signal.aborted ? 'aborted' : 'timeout' });
    return { kind: 'ended' };
  }

  private apply(type: Exclude<WatchEventType, 'BOOKMARK' | 'ERROR'>, raw: T): void {
    const obj = strip(raw, undefined, this.gvr);
    const key = objectKey(obj);
    if (type === 'DELETED') {
      this.store.delete(key);
      this.emit('DELETED', obj);
      return;
    }
    const old = this.store.get(key);
    this.store.set(key, obj);
    if (!old) this.emit('ADDED', obj);
    else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('MODIFIED', obj);
  }

  private emit(type: InformerEventType, obj: T): void {
    for (const h of this.handlers) {
      try {
        h(type, obj);
      } catch (err) {
        this.report(err);
      }
    }
  }

  private report(err: unknown): void {
    this.stats.errors++;
    this.lastError = err;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) this.authFailed = true;
    this.opts.onError?.(err);
  }
}

/** Drops managedFields and fills apiVersion/kind (list items lack them). */
function strip<T extends KubeObject>(obj: T, list: KubeList<T> | undefined, gvr: GVR): T {
  if (obj.metadata?.managedFields) {
    const { managedFields: _drop, ...meta } = obj.metadata;
    obj = { ...obj, metadata: meta };
  }
  if (!obj.apiVersion) {
    const apiVersion = gvr.group ? `${gvr.group}/${gvr.version}` : gvr.version;
    const kind = list?.kind?.endsWith('List') ? list.kind.slice(0, -4) : undefined;
    obj = { ...obj, apiVersion, ...(kind && !obj.kind ? { kind } : {}) };
  }
  return obj;
}

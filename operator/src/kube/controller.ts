// The controller: informers feed keys into a rate-limited work queue; N workers take keys and
// call the reconciler. Reconciliation is level-based: the request carries only the object's
// key, never the event, so the reconciler reads the current state (from an informer cache or
// the apiserver) and acts on the difference.
//
// Outcome of a reconcile (controller-runtime semantics):
// - returns undefined / {}            → success: forget the key's backoff.
// - returns {requeueAfter: ms > 0}    → forget the backoff, look again after ms.
// - throws TerminalError              → logged and counted, not retried (until the next event).
// - throws anything else / times out  → retried with per-key exponential backoff.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type Informer, objectKey } from './informer.js';
import { type RuntimeMetrics, runtimeMetrics } from './metrics.js';
import { WorkQueue } from './queue.js';
import type { KubeObject } from './rest.js';

/** What to reconcile: an object's key. `namespace` is '' for cluster-scoped objects. */
export interface Request {
  namespace: string;
  name: string;
}

/** `requeueAfter` (ms): reconcile this key again after that long, even without events. */
export interface Result {
  requeueAfter?: number;
}

/**
 * An error that retrying cannot fix (bad spec, missing permission the user must grant): the
 * controller logs and counts it and forgets the key, so only a new event of the object (an edit)
 * reconciles it again. `reason` is a CamelCase word for the condition the reconciler shows; the
 * message is logged, so it must not carry user data.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
  readonly reason: string;
  constructor(message: string, options?: { cause?: unknown; reason?: string }) {
    super(message, options);
    this.reason = options?.reason ?? 'TerminalError';
  }
}

export interface ReconcileContext {
  log: Logger;
  reconcileID: string;
  /** Aborted on controller shutdown or when the per-reconcile timeout expires. */
  signal: AbortSignal;
}

export interface Reconciler {
  reconcile(req: Request, ctx: ReconcileContext): Promise<Result | undefined>;
}

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  workers?: number;
  logger: Logger;
  registry?: Registry;
  /** Per-reconcile timeout (ms); default 5 min. A timed-out reconcile counts as an error. */
  reconcileTimeoutMs?: number;
  /** How long start() waits for informers to sync before failing; default 2 min. */
  cacheSyncTimeoutMs?: number;
  /** Work queue tuning (tests). */
  queue?: { baseDelayMs?: number; maxDelayMs?: number; qps?: number; burst?: number };
}

export type MapFn<T> = (obj: T) => Request | Request[] | undefined;

export function requestKey(req: Request): string {
  return req.namespace ? `${req.namespace}/${req.name}` : req.name;
}

export function keyToRequest(key: string): Request {
  const i = key.indexOf('/');
  return i < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

class ReconcileTimeout extends Error {
  override readonly name = 'ReconcileTimeout';
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly workers: number;
  private readonly log: Logger;
  private readonly metrics: RuntimeMetrics;
  private readonly timeoutMs: number;
  private readonly syncTimeoutMs: number;
  /** The informers to start and sync before the workers run. */
  private readonly informers: Pick<Informer<KubeObject>, 'start'>[] = [];
  private started = false;

  constructor(opts: ControllerOptions) {
    this.name = opts.name;
    this.reconciler = opts.reconciler;
    this.workers = Math.max(1, opts.workers ?? 2);
    this.log = opts.logger.child({ controller: opts.name });
    this.metrics = runtimeMetrics(opts.registry);
    this.timeoutMs = opts.reconcileTimeoutMs ?? 5 * 60_000;
    this.syncTimeoutMs = opts.cacheSyncTimeoutMs ?? 120_000;
    this.queue = new WorkQueue({
      name: opts.name,
      controller: opts.name,
      registry: opts.registry,
      ...opts.queue,
    });
    this.metrics.maxConcurrent.set({ controller: this.name }, this.workers);
    this.metrics.activeWorkers.set({ controller: this.name }, 0);
  }

  /** Enqueues keys for every event of `informer`; by default the object's own key. */
  watch<T extends KubeObject>(informer: Informer<T>, mapFn?: MapFn<T>): this {
    this.informers.push(informer);
    informer.onEvent((_type, obj) => {
      if (!mapFn) {
        this.queue.add(objectKey(obj));
        return;
      }
      const out = mapFn(obj);
      if (!out) return;
      for (const r of Array.isArray(out) ? out : [out]) this.queue.add(requestKey(r));
    });
    return this;
  }

  /**
   * Enqueues the controlling owner of every object of `informer` whose ownerReference with
   * controller: true has kind `ownerKind` and the API group of `ownerApiVersion` (any version).
   */
  watchOwned<T extends KubeObject>(informer: Informer<T>, ownerKind: string, ownerApiVersion: string): this {
    const group = apiGroup(ownerApiVersion);
    return this.watch(informer, (obj) => {
      const ref = obj.metadata?.ownerReferences?.find(
        (r) => r.controller === true && r.kind === ownerKind && apiGroup(r.apiVersion) === group,
      );
      return ref ? { namespace: obj.metadata?.namespace ?? '', name: ref.name } : undefined;
    });
  }

  /** Enqueues a key directly (e.g. from an external trigger). */
  enqueue(req: Request, afterMs = 0): void {
    this.queue.addAfter(requestKey(req), afterMs);
  }

  /**
   * Starts the informers (idempotent), waits for them to sync, runs the workers until `signal`
   * aborts, then shuts the queue down and waits for in-flight reconciles to return.
   */
  async start(signal: AbortSignal): Promise<void> {
    if (this.started) throw new Error(`controller ${this.name} already started`);
    this.started = true;
    const log = this.log;
    let syncTimer: NodeJS.Timeout | undefined;
    const synced = Promise.all(this.informers.map((i) => i.start()));
    const timeout = new Promise<never>((_, reject) => {
      syncTimer = setTimeout(
        () => reject(new Error(`controller ${this.name}: caches not synced within ${this.syncTimeoutMs} ms`)),
        this.syncTimeoutMs,
      );
    });
    try {
      await Promise.race([synced, timeout]);
    } finally {
      clearTimeout(syncTimer);
    }
    if (signal.aborted) return;
    log.info({ workers: this.workers }, 'Starting workers');
    const onAbort = () => this.queue.shutDown();
    signal.addEventListener('abort', onAbort, { once: true });
    const workers = Array.from({ length: this.workers }, () => this.worker(signal));
    await Promise.all(workers);
    signal.removeEventListener('abort', onAbort);
    log.info('All workers finished');
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      this.metrics.activeWorkers.inc({ controller: this.name });
      let released: Promise<void> = Promise.resolve();
      try {
        released = (await this.process(key, signal)).settled;
      } finally {
        this.metrics.activeWorkers.dec({ controller: this.name });
        // The key stays "processing" until the reconcile really returned (a timed-out reconcile
        // that ignores its signal frees the worker but not the key): no two reconciles of a key.
        void released.then(() => this.queue.done(key));
      }
    }
  }

  /** Runs one reconcile; resolves (with a promise for when the reconcile has really ended). */
  private async process(key: string, outer: AbortSignal): Promise<{ settled: Promise<void> }> {
    const req = keyToRequest(key);
    const reconcileID = randomUUID();
    const log = this.log.child({ namespace: req.namespace, name: req.name, reconcileID });
    const ac = new AbortController();
    const onOuter = () => ac.abort(outer.reason);
    outer.addEventListener('abort', onOuter, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new ReconcileTimeout(`reconcile timed out after ${this.timeoutMs} ms`);
        ac.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    const labels = { controller: this.name };
    const end = this.metrics.reconcileTime.startTimer(labels);
    // Promise.resolve().then(): a synchronous throw inside reconcile() is caught too.
    const running = Promise.resolve().then(() =>
      this.reconciler.reconcile(req, { log, reconcileID, signal: ac.signal }),
    );
    const settled = running.then(
      () => undefined,
      () => undefined,
    );
    try {
      const result = await Promise.race([running, timedOut]);
      if (result?.requeueAfter && result.requeueAfter > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, result.requeueAfter);
        this.metrics.reconcileTotal.inc({ ...labels, result: 'requeue_after' });
        log.debug({ requeueAfter: result.requeueAfter }, 'Reconciled; requeue scheduled');
      } else {
        this.queue.forget(key);
        this.metrics.reconcileTotal.inc({ ...labels, result: 'success' });
        log.debug('Reconciled');
      }
    } catch (err) {
      this.metrics.reconcileTotal.inc({ ...labels, result: 'error' });
      this.metrics.reconcileErrors.inc(labels);
      if (err instanceof TerminalError) {
        this.metrics.terminalErrors.inc(labels);
        this.queue.forget(key);
        log.error({ err }, 'Reconciler error (terminal, not retried)');
      } else {
        if (err instanceof ReconcileTimeout) this.metrics.reconcileTimeouts.inc(labels);
        else if (!(err instanceof Error) || err instanceof TypeError || err instanceof RangeError)
          this.metrics.reconcilePanics.inc(labels);
        if (!outer.aborted) this.queue.addRateLimited(key);
        log.error({ err, retries: this.queue.numRequeues(key) }, 'Reconciler error');
      }
    } finally {
      end();
      clearTimeout(timer);
      outer.removeEventListener('abort', onOuter);
    }
    return { settled };
  }
}

function apiGroup(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

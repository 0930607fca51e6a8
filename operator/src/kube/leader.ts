// Leader election on a coordination.k8s.io/v1 Lease, following client-go's leaderelection:
//
// - Acquire: GET the Lease (create it if missing). If another identity holds it and the record
//   we observed has not changed for leaseDuration (measured on OUR clock since we first saw that
//   record, so clock skew between replicas does not matter), take it over with a PUT carrying
//   the read resourceVersion (optimistic lock: a concurrent taker gets 409 and retries).
// - Renew every retryPeriod. If no renewal succeeded for renewDeadline, leadership is lost:
//   the leading signal aborts and onStoppedLeading runs (the caller exits the process).
//   Seeing another holder during renewal also ends leadership at once.
// - release() clears holderIdentity (leaseDurationSeconds 1) so another replica takes over on
//   its next retry instead of waiting for expiry. It aborts the leading signal but does not
//   call onStoppedLeading (that is for losing the lease, not giving it up).
import type { Registry } from 'prom-client';
import { pause } from '../../../contract/src/sleep.js';
import { type RuntimeMetrics, runtimeMetrics } from './metrics.js';
import { ApiError, isConflict, isNotFound, type KubeClient } from './rest.js';
import { microTime } from './status.js';

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  registry?: Registry;
  /** Called with errors of acquire/renew attempts (for logging). */
  onError?: (err: unknown) => void;
}

export interface LeaderCallbacks {
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  onStoppedLeading(): void;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?(identity: string): void;
}

interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

const JITTER = 1.2;

export class LeaderElector {
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly path: string;
  private readonly metrics: RuntimeMetrics;
  private readonly stopped = new AbortController();
  private leading: AbortController | undefined;
  private observedRaw = '';
  private observedAt = 0;
  private lastObservedHolder = '';
  private runPromise: Promise<void> | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectorOptions,
  ) {
    this.identity = opts.identity;
    this.leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (this.leaseDurationMs <= this.renewDeadlineMs)
      throw new Error('leaseDuration must exceed renewDeadline');
    if (this.renewDeadlineMs <= this.retryPeriodMs * JITTER)
      throw new Error('renewDeadline must exceed retryPeriod × 1.2');
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(opts.namespace)}/leases/${encodeURIComponent(opts.name)}`;
    this.metrics = runtimeMetrics(opts.registry);
    this.metrics.leaderStatus.set({ name: opts.name }, 0);
  }

  isLeader(): boolean {
    return this.leading !== undefined && !this.leading.signal.aborted;
  }

  /**
   * Competes for the Lease until acquired, then leads until the lease is lost or released.
   * Resolves when leadership ended (or release() was called before acquiring).
   */
  run(cb: LeaderCallbacks): Promise<void> {
    if (!this.runPromise) this.runPromise = this.loop(cb);
    return this.runPromise;
  }

  private async loop(cb: LeaderCallbacks): Promise<void> {
    // Acquire.
    while (!this.stopped.signal.aborted) {
      if (await this.attempt(cb, this.retryPeriodMs)) break;
      await pause(this.retryPeriodMs * (1 + Math.random() * (JITTER - 1)), this.stopped.signal);
    }
    if (this.stopped.signal.aborted) return;
    const leading = new AbortController();
    this.leading = leading;
    this.metrics.leaderStatus.set({ name: this.opts.name }, 1);
    try {
      void Promise.resolve()
        .then(() => cb.onStartedLeading(leading.signal))
        .catch((err: unknown) => this.opts.onError?.(err));
    } catch (err) {
      this.opts.onError?.(err);
    }
    // Renew.
    let lastRenew = Date.now();
    let lost = false;
    while (!this.stopped.signal.aborted) {
      await pause(this.retryPeriodMs, this.stopped.signal);
      if (this.stopped.signal.aborted) break;
      const remaining = this.renewDeadlineMs - (Date.now() - lastRenew);
      const ok =
        remaining > 0
          ? await this.attempt(cb, Math.max(250, Math.min(remaining, this.retryPeriodMs)))
          : false;
      if (this.stopped.signal.aborted) break;
      if (ok) {
        lastRenew = Date.now();
        continue;
      }
      const otherHolder = this.lastObservedHolder !== '' && this.lastObservedHolder !== this.identity;
      if (otherHolder || Date.now() - lastRenew >= this.renewDeadlineMs) {
        lost = true;
        break;
      }
    }
    this.metrics.leaderStatus.set({ name: this.opts.name }, 0);
    leading.abort(new Error(lost ? 'leader lease lost' : 'leader lease released'));
    if (lost) cb.onStoppedLeading();
  }

  /** One acquire-or-renew; true when we hold the lease afterwards. */
  private async attempt(cb: LeaderCallbacks, timeoutMs: number): Promise<boolean> {
    try {
      return await this.tryAcquireOrRenew(cb, timeoutMs);
    } catch (err) {
      this.opts.onError?.(err);
      return false;
    }
  }

  private async tryAcquireOrRenew(cb: LeaderCallbacks, timeoutMs: number): Promise<boolean> {
    const now = new Date();
    const desired: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(this.path, { timeoutMs });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created = await this.client.create<Lease>(
        `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.opts.namespace)}/leases`,
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: desired,
        },
        { timeoutMs },
      );
      this.observe(created, cb);
      return true;
    }
    const spec = lease.spec ?? {};
    this.observe(lease, cb);
    const holder = spec.holderIdentity ?? '';
    const iHold = holder === this.identity;
    const expired = Date.now() > this.observedAt + (spec.leaseDurationSeconds ?? 0) * 1000;
    if (holder !== '' && !iHold && !expired) return false;
    if (iHold) {
      desired.acquireTime = spec.acquireTime ?? desired.acquireTime;
      desired.leaseTransitions = spec.leaseTransitions ?? 0;
    } else {
      desired.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    try {
      const updated = await this.client.replace<Lease>(this.path, { ...lease, spec: desired }, { timeoutMs });
      this.observe(updated, cb);
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private observe(lease: Lease, cb: LeaderCallbacks): void {
    const raw = JSON.stringify(lease.spec ?? {});
    if (raw !== this.observedRaw) {
      this.observedRaw = raw;
      this.observedAt = Date.now();
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.lastObservedHolder) {
      this.lastObservedHolder = holder;
      if (holder) {
        try {
          cb.onNewLeader?.(holder);
        } catch (err) {
          this.opts.onError?.(err);
        }
      }
    }
  }

  /**
   * Gives up the lease (graceful shutdown): stops competing/renewing, aborts the leading
   * signal, and clears holderIdentity if we hold it, so another replica takes over at once.
   */
  async release(): Promise<void> {
    const wasLeading = this.isLeader();
    this.stopped.abort();
    await this.runPromise?.catch(() => undefined);
    if (!wasLeading) return;
    try {
      const lease = await this.client.get<Lease>(this.path, { timeoutMs: 5_000 });
      if (lease.spec?.holderIdentity !== this.identity) return;
      const now = microTime();
      await this.client.replace(
        this.path,
        {
          ...lease,
          spec: {
            ...lease.spec,
            holderIdentity: null,
            leaseDurationSeconds: 1,
            acquireTime: now,
            renewTime: now,
          },
        },
        { timeoutMs: 5_000 },
      );
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 409))) this.opts.onError?.(err);
    }
  }
}

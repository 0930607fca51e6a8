// Kubernetes Events (events.k8s.io/v1) about our objects, for `kubectl describe` / `get events`.
//
// Repeats of the same (object, type, reason, action, message) within 10 minutes update the
// existing Event's `series` (count, lastObservedTime) instead of creating a new one, as
// client-go's event recorder does. Recording never throws and never blocks reconciliation
// for long: failures are logged at debug/warn and dropped.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { isNotFound, type KubeClient, type KubeObject } from './rest.js';
import { microTime } from './status.js';

export type EventType = 'Normal' | 'Warning';

const SERIES_WINDOW_MS = 10 * 60_000;
const MAX_NOTE = 1024;
const MAX_CACHE = 4096;

interface SeriesEntry {
  namespace: string;
  name: string;
  count: number;
  lastAt: number;
}

export class EventRecorder {
  private readonly series = new Map<string, SeriesEntry>();
  private readonly log: Logger | undefined;

  constructor(
    private readonly client: KubeClient,
    readonly component: string,
    readonly hostIdentity: string,
    logger?: Logger,
  ) {
    this.log = logger?.child({ component: 'events' });
  }

  /** Records an event about `obj`; resolves when written (or dropped); never rejects. */
  async event(
    obj: KubeObject,
    type: EventType,
    reason: string,
    message: string,
    action?: string,
  ): Promise<void> {
    try {
      await this.write(obj, type, reason, message, action ?? reason);
    } catch (err) {
      this.log?.warn(
        { err: err instanceof Error ? err.message : String(err), reason, object: obj.metadata?.name },
        'Failed to record event',
      );
    }
  }

  private async write(obj: KubeObject, type: EventType, reason: string, message: string, action: string) {
    const md = obj.metadata ?? {};
    const namespace = md.namespace || 'default';
    const note = message.length > MAX_NOTE ? `${message.slice(0, MAX_NOTE - 3)}...` : message;
    const key = [md.uid ?? `${namespace}/${md.name}`, type, reason, action, note].join('\u0000');
    const now = Date.now();
    const prev = this.series.get(key);
    if (prev && now - prev.lastAt < SERIES_WINDOW_MS) {
      const count = prev.count + 1;
      try {
        await this.client.mergePatch(
          `/apis/events.k8s.io/v1/namespaces/${prev.namespace}/events/${prev.name}`,
          {
            series: { count, lastObservedTime: microTime(new Date(now)) },
          },
        );
        prev.count = count;
        prev.lastAt = now;
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.series.delete(key); // expired or deleted: create a new one
      }
    }
    const name = `${(md.name ?? 'object').slice(0, 200)}.${Date.now().toString(16)}${randomBytes(2).toString('hex')}`;
    const event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace },
      eventTime: microTime(new Date(now)),
      reportingController: this.component,
      reportingInstance: this.hostIdentity.slice(0, 128),
      action: action.slice(0, 128),
      reason: reason.slice(0, 128),
      note,
      type,
      regarding: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: md.name,
        namespace: md.namespace,
        uid: md.uid,
        resourceVersion: md.resourceVersion,
      },
    };
    await this.client.create(`/apis/events.k8s.io/v1/namespaces/${namespace}/events`, event);
    if (this.series.size >= MAX_CACHE) this.prune(now);
    this.series.set(key, { namespace, name, count: 1, lastAt: now });
  }

  private prune(now: number): void {
    for (const [k, v] of this.series) if (now - v.lastAt >= SERIES_WINDOW_MS) this.series.delete(k);
    // Still full: drop the oldest half (Map iterates in insertion order).
    if (this.series.size >= MAX_CACHE) {
      let n = Math.floor(this.series.size / 2);
      for (const k of this.series.keys()) {
        if (n-- <= 0) break;
        this.series.delete(k);
      }
    }
  }
}

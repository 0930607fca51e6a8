// Prometheus metrics of the controller runtime, with controller-runtime's names so dashboards and
// alerts written for Go operators work unchanged. Metrics are created once per Registry (a
// WeakMap keyed by the registry), so many queues/controllers share one metric with labels.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** A fresh Registry; `defaults` adds the process_* and nodejs_* metrics. */
export function createRegistry(opts: { defaults?: boolean; prefix?: string } = {}): Registry {
  const registry = new Registry();
  if (opts.defaults) collectDefaultMetrics({ register: registry, prefix: opts.prefix });
  return registry;
}

/** The registry used when a component is given none. */
export const defaultRegistry: Registry = new Registry();

/** Something that can report in-flight work at scrape time (a WorkQueue). */
export interface UnfinishedWorkSource {
  readonly labels: { name: string; controller: string };
  unfinishedWorkSeconds(): number;
  longestRunningProcessorSeconds(): number;
}

export interface RuntimeMetrics {
  restRequests: Counter<'code' | 'method' | 'host'>;
  restDuration: Histogram<'verb' | 'host'>;
  wqDepth: Gauge<'name' | 'controller'>;
  wqAdds: Counter<'name' | 'controller'>;
  wqQueueDuration: Histogram<'name' | 'controller'>;
  wqWorkDuration: Histogram<'name' | 'controller'>;
  wqRetries: Counter<'name' | 'controller'>;
  wqUnfinished: Gauge<'name' | 'controller'>;
  wqLongest: Gauge<'name' | 'controller'>;
  reconcileTotal: Counter<'controller' | 'result'>;
  reconcileErrors: Counter<'controller'>;
  terminalErrors: Counter<'controller'>;
  reconcilePanics: Counter<'controller'>;
  reconcileTimeouts: Counter<'controller'>;
  reconcileTime: Histogram<'controller'>;
  activeWorkers: Gauge<'controller'>;
  maxConcurrent: Gauge<'controller'>;
  leaderStatus: Gauge<'name'>;
  leaderSlowpath: Counter<'name'>;
  informerRelists: Counter<'resource'>;
  informerWatchRestarts: Counter<'resource' | 'reason'>;
  /** Queues reporting unfinished work at scrape time. */
  queues: Set<UnfinishedWorkSource>;
}

const cache = new WeakMap<Registry, RuntimeMetrics>();

// controller-runtime's workqueue buckets: 1e-8 .. 1e3 (×10).
const wqBuckets = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000];
const reconcileBuckets = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5,
  1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/** The runtime's metrics registered in `registry` (created on first use). */
export function runtimeMetrics(registry: Registry = defaultRegistry): RuntimeMetrics {
  const hit = cache.get(registry);
  if (hit) return hit;
  const registers = [registry];
  const queues = new Set<UnfinishedWorkSource>();
  const wl = ['name', 'controller'] as const;
  const m: RuntimeMetrics = {
    queues,
    restRequests: new Counter({
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'],
      registers,
    }),
    restDuration: new Histogram({
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds. Broken down by verb and host.',
      labelNames: ['verb', 'host'],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
      registers,
    }),
    wqDepth: new Gauge({
      name: 'workqueue_depth',
      help: 'Current depth of workqueue',
      labelNames: wl,
      registers,
    }),
    wqAdds: new Counter({
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames: wl,
      registers,
    }),
    wqQueueDuration: new Histogram({
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames: wl,
      buckets: wqBuckets,
      registers,
    }),
    wqWorkDuration: new Histogram({
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames: wl,
      buckets: wqBuckets,
      registers,
    }),
    wqRetries: new Counter({
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames: wl,
      registers,
    }),
    wqUnfinished: new Gauge({
      name: 'workqueue_unfinished_work_seconds',
      help:
        'How many seconds of work has been done that is in progress and hasn’t been observed by work_duration. ' +
        'Large values indicate stuck threads.',
      labelNames: wl,
      registers,
      collect() {
        for (const q of queues) this.set(q.labels, q.unfinishedWorkSeconds());
      },
    }),
    wqLongest: new Gauge({
      name: 'workqueue_longest_running_processor_seconds',
      help: 'How many seconds has the longest running processor for workqueue been running.',
      labelNames: wl,
      registers,
      collect() {
        for (const q of queues) this.set(q.labels, q.longestRunningProcessorSeconds());
      },
    }),
    reconcileTotal: new Counter({
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
      registers,
    }),
    reconcileErrors: new Counter({
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    terminalErrors: new Counter({
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcilePanics: new Counter({
      name: 'controller_runtime_reconcile_panics_total',
      help: 'Total number of reconciliation panics (unexpected exceptions) per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTimeouts: new Counter({
      name: 'controller_runtime_reconcile_timeouts_total',
      help: 'Total number of reconciliation timeouts per controller',
      labelNames: ['controller'],
      registers,
    }),
    reconcileTime: new Histogram({
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames: ['controller'],
      buckets: reconcileBuckets,
      registers,
    }),
    activeWorkers: new Gauge({
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames: ['controller'],
      registers,
    }),
    maxConcurrent: new Gauge({
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames: ['controller'],
      registers,
    }),
    leaderStatus: new Gauge({
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.',
      labelNames: ['name'],
      registers,
    }),
    leaderSlowpath: new Counter({
      name: 'leader_election_slowpath_total',
      help: 'Total number of slow path exercised in renewing leader leases.',
      labelNames: ['name'],
      registers,
    }),
    informerRelists: new Counter({
      name: 'informer_relists_total',
      help: 'Full lists made by an informer (initial sync, 410 Gone, repeated failures)',
      labelNames: ['resource'],
      registers,
    }),
    informerWatchRestarts: new Counter({
      name: 'informer_watch_restarts_total',
      help: 'Watch streams restarted by an informer, by reason (timeout, gone, inactivity, error)',
      labelNames: ['resource', 'reason'],
      registers,
    }),
  };
  cache.set(registry, m);
  return m;
}

#!/usr/bin/env node
import { setMaxListeners } from 'node:events';
import { connect } from '../../runtime/src/store/index.js';
/**
 * The operator process: migrate the database, serve probes and metrics, then (as Lease leader)
 * run the CJBatch and LLMProviderPool controllers and the outbox relay. Exits when leadership is
 * lost (the Deployment restarts it) and shuts down gracefully on SIGTERM.
 */
import { poolUsage } from '../../runtime/src/store/limiter.js';
import { migrate } from '../../runtime/src/store/migrate.js';
import { deleteLimiterRow, upsertLimiterRow } from '../../runtime/src/store/tenancy.js';
import { tolerateLostConnections } from '../../runtime/src/store/transient.js';
import { batchUsage, poolLimiterStates, recentGrants } from '../../runtime/src/store/usage.js';
import type { CJBatch, LLMProviderPool } from './api/index.js';
import { poolKeyOf, RESOURCES } from './api/index.js';
import { loadConfig, platformPolicy } from './config.js';
import { poolLimiterSettings } from './controllers/cjbatch/prepare.js';
import { CJBatchReconciler, type JobObject } from './controllers/cjbatch/reconciler.js';
import { LLMProviderPoolReconciler } from './controllers/llmproviderpool/reconciler.js';
import { Controller, type Request } from './kube/controller.js';
import { EventRecorder } from './kube/events.js';
import { startHealthServer } from './kube/health.js';
import { LeaderElector } from './kube/leader.js';
import { createLogger } from './kube/log.js';
import { createRegistry } from './kube/metrics.js';
import { scopedInformer } from './kube/namespaces.js';
import { KubeClient } from './kube/rest.js';
import { UsageMetrics } from './metrics/usage.js';
import { startRelay } from './outbox/relay.js';
import { topicAllowed } from './validation/platform.js';
import { runWebhook } from './webhook/run.js';

const { batches: BATCHES, pools: POOLS, jobs: JOBS } = RESOURCES;

export async function main(): Promise<void> {
  const log = createLogger({ name: 'cj-operator' });
  const config = loadConfig();
  const registry = createRegistry({ defaults: true });
  const client = await KubeClient.fromDefault({ registry });
  // Every reconcile waits on its statements: one that hung (a lock never released) would stop its
  // batch for good, so a statement gives up after 2 minutes and the reconcile is retried; a
  // transaction this process left open is ended by the server, releasing the workers' rows.
  const sql = connect(config.databaseUrl, 10, {
    applicationName: 'cj-operator',
    statementTimeoutMs: 120_000,
    idleInTransactionMs: 60_000,
  });

  const applied = await migrate(sql);
  log.info({ applied }, 'Applied database migrations');

  // Namespaced mode watches each listed namespace (a Role in each); cluster-wide mode everything.
  const scope = config.watchNamespaces;
  // Typed by the CRDs' structural schemas, which the apiserver enforces on every object it serves.
  const batches = scopedInformer<CJBatch>(client, BATCHES, { registry }, scope);
  const pools = scopedInformer<LLMProviderPool>(client, POOLS, { registry }, scope);
  const jobs = scopedInformer<JobObject>(
    client,
    JOBS,
    { labelSelector: 'app.kubernetes.io/managed-by=cj-operator', registry },
    scope,
  );
  const recorder = new EventRecorder(client, 'cj-operator', config.identity);
  const shutdown = new AbortController();
  let leading = false;

  let webhook: Awaited<ReturnType<typeof runWebhook>>;
  const health = await startHealthServer({
    host: config.probeAddress,
    port: config.probePort,
    registry,
    healthz: () => !leading || [batches, pools, jobs].every((i) => i.isHealthy()),
    // Ready only once the webhook listens (when enabled): a Service endpoint must not receive
    // admission calls it would refuse at the TCP level.
    readyz: () =>
      (webhook !== undefined || !process.env.WEBHOOK_PORT) &&
      (!leading || [batches, pools, jobs].every((i) => i.hasSynced())),
  });
  log.info({ port: config.probePort }, 'Serving /healthz, /readyz and /metrics');
  webhook = await runWebhook(config, client, (msg, fields) => log.info(fields ?? {}, msg));

  const batchController = new Controller({
    name: 'cjbatch',
    reconciler: new CJBatchReconciler({ client, sql, batches, pools, jobs, recorder, config }),
    workers: 4,
    logger: log,
    registry,
  })
    .watch(batches)
    .watchOwned(jobs, 'CJBatch', 'cj.huleedu.io/v1alpha1')
    // A pool becoming Ready releases the batches waiting for it.
    .watch(pools, (pool) =>
      batches
        .list(pool.metadata.namespace)
        .filter((b) => b.spec.providerPoolRef.name === pool.metadata.name)
        .map((b): Request => ({ namespace: b.metadata.namespace!, name: b.metadata.name! })),
    );
  const poolController = new Controller({
    name: 'llmproviderpool',
    reconciler: new LLMProviderPoolReconciler({
      client,
      pools,
      batches,
      recorder,
      egress: config.egress,
      limiter: {
        sync: (pool) =>
          upsertLimiterRow(sql, poolKeyOf(pool), {
            ...poolLimiterSettings(pool),
            maxBlockMs: config.maxRetryAfterMs,
          }),
        remove: (key) => deleteLimiterRow(sql, key),
      },
      // Live usage from the limiter shared by all worker pods of the pool.
      usage: async (key) => {
        const u = await poolUsage(sql, key);
        if (!u) return undefined;
        return {
          requestsLastMinute: u.requestsLastMinute,
          inputTokensLastMinute: u.inputTokensLastMinute,
          outputTokensLastMinute: u.outputTokensLastMinute,
          throttled: u.throttled,
          ...(u.last429Time ? { last429Time: u.last429Time } : {}),
          ...(u.blockedUntil ? { blockedUntil: u.blockedUntil } : {}),
        };
      },
    }),
    workers: 2,
    logger: log,
    registry,
  }).watch(pools);

  // Figures of the workers' LLM calls and of the batches, read from the database by the leader only
  // (every replica is scraped; one reporting them keeps sums across pods right).
  const usage = new UsageMetrics({
    registry,
    source: {
      batches: (recent) => batchUsage(sql, recent),
      pools: () => poolLimiterStates(sql),
      grants: (seconds) => recentGrants(sql, seconds),
    },
    listPools: () => pools.list(),
    listBatches: () => batches.list(),
  });

  const runControllers = async (signal: AbortSignal) => {
    // Every informer, controller worker and loop listens on this one signal for the process's
    // life: many listeners by design, not a leak (Node warns past 10).
    setMaxListeners(0, signal);
    leading = true;
    log.info({ identity: config.identity }, 'Started leading');
    if (!config.kafkaBrokers) log.warn('KAFKA_BROKERS is not set: result events stay in the outbox');
    const relay = config.kafkaBrokers
      ? startRelay({
          sql,
          brokers: config.kafkaBrokers,
          log,
          registry,
          signal,
          topicAllowed: (t) => topicAllowed(platformPolicy(config), t),
          // The batch whose event was published (or parked) shows it in its status right away.
          onSettled: (uid) => {
            const b = batches.list().find((x) => x.metadata.uid === uid);
            if (b) batchController.enqueue({ namespace: b.metadata.namespace!, name: b.metadata.name! });
          },
        })
      : undefined;
    const metrics = usage.run(config.metricsRefreshMs, signal, (err) =>
      log.warn({ err }, 'Could not read the usage figures for /metrics; retrying at the next refresh'),
    );
    await Promise.all([batchController.start(signal), poolController.start(signal), relay, metrics]);
  };

  const stop = async (code: number) => {
    shutdown.abort();
    // A connection or handle that will not close must not keep a terminating pod alive until
    // SIGKILL: exit anyway well inside the default 30 s grace period.
    setTimeout(() => process.exit(code), 10_000).unref();
    await Promise.allSettled([sql.end({ timeout: 5 }), health.close(), webhook?.close()]);
    process.exit(code);
  };
  // postgres.js can reject outside any awaited call when the server goes away (seen when Postgres
  // restarts): a lost connection is retried by the next reconcile, so it must not kill the process.
  // Anything else stays fatal, as Node's default would make it.
  tolerateLostConnections((err) => {
    log.fatal({ err }, 'unhandled rejection');
    void stop(1);
  }, log);
  for (const sig of ['SIGTERM', 'SIGINT'] as const)
    process.once(sig, () => {
      log.info({ signal: sig }, 'Shutting down');
      void elector?.release().finally(() => stop(0));
      if (!elector) void stop(0);
    });

  const elector = config.leaderElection
    ? new LeaderElector(client, {
        namespace: config.namespace,
        name: 'cj-operator-leader',
        identity: config.identity,
        leaseDurationMs: config.leaderLease.durationMs,
        renewDeadlineMs: config.leaderLease.renewDeadlineMs,
        retryPeriodMs: config.leaderLease.retryPeriodMs,
      })
    : undefined;
  if (elector) {
    await elector.run({
      onStartedLeading: (signal) => {
        const both = AbortSignal.any([signal, shutdown.signal]);
        runControllers(both).catch((err) => {
          log.error({ err }, 'Controllers stopped with an error');
          void stop(1);
        });
      },
      onStoppedLeading: () => {
        log.error('Lost the leader lease; exiting so that a fresh process can compete again');
        void stop(1);
      },
    });
  } else {
    await runControllers(shutdown.signal);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

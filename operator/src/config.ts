// Operator settings, read once from the environment (the chart sets them). Nothing here is secret
// except DATABASE_URL, which is passed on to workers only through a Secret.
export interface OperatorConfig {
  /** Namespace the operator runs in (leases, webhook certificates). */
  namespace: string;
  /** Only this namespace is watched when set (one operator per tenant or per test); else all. */
  watchNamespace?: string;
  /** Pod name: the leader-election identity. */
  identity: string;
  /** Image of the operator; workers run the same image unless spec.workers.image says otherwise. */
  image: string;
  imagePullPolicy: string;
  databaseUrl: string;
  kafkaBrokers?: string;
  kafkaTopic: string;
  /** Bind address of /healthz, /readyz and /metrics. */
  probeAddress: string;
  probePort: number;
  /** ServiceAccount of worker pods (no token is mounted). */
  workerServiceAccount?: string;
  leaderElection: boolean;
  /** Seconds a comparison lease lasts before another worker may take the pair. */
  leaseSeconds: number;
  /** Fail a batch when fewer than this share of finished comparisons succeeded (after 20). */
  minSuccessRate: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set; the operator needs it (see docs/operations.md)`);
    return v;
  };
  return {
    namespace: env.POD_NAMESPACE ?? 'cj-system',
    watchNamespace: env.WATCH_NAMESPACE || undefined,
    identity: env.POD_NAME ?? `cj-operator-${process.pid}`,
    image: env.OPERATOR_IMAGE ?? 'ghcr.io/huleedu/cj-operator:dev',
    imagePullPolicy: env.IMAGE_PULL_POLICY ?? 'IfNotPresent',
    databaseUrl: need('DATABASE_URL'),
    kafkaBrokers: env.KAFKA_BROKERS || undefined,
    kafkaTopic: env.KAFKA_TOPIC ?? 'cj.batch.events',
    probeAddress: env.PROBE_ADDRESS ?? '0.0.0.0',
    probePort: Number(env.PROBE_PORT ?? 8081),
    workerServiceAccount: env.WORKER_SERVICE_ACCOUNT || undefined,
    leaderElection: env.LEADER_ELECTION !== 'false',
    leaseSeconds: Number(env.COMPARISON_LEASE_SECONDS ?? 60),
    minSuccessRate: Number(env.MIN_SUCCESS_RATE ?? 0.5),
  };
}

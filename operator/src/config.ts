// Operator settings, read once from the environment (the chart sets them). Nothing here is secret
// except DATABASE_URL, which is passed on to workers only through a Secret.
import { type EgressPolicy, egressPolicyFromEnv } from '../../contract/src/egress.js';
import {
  DEFAULT_ROUNDS_MODE,
  isRoundsMode,
  ROUNDS_MODES,
  type RoundsMode,
} from '../../contract/src/rounds-mode.js';
import type { PlatformPolicy } from './validation/platform.js';

export interface OperatorConfig {
  /** Namespace the operator runs in (leases, webhook certificates). */
  namespace: string;
  /**
   * Namespaced mode: only these namespaces are watched (and the operator needs RBAC in them
   * only). Undefined: cluster-wide mode, every namespace (needs a ClusterRole).
   */
  watchNamespaces?: string[];
  /** Pod name: the leader-election identity. */
  identity: string;
  /** Image of the operator; workers run the same image unless spec.workers.image says otherwise. */
  image: string;
  imagePullPolicy: string;
  databaseUrl: string;
  kafkaBrokers?: string;
  kafkaTopic: string;
  /**
   * Largest result event the operator publishes whole (bytes; Kafka's default limit for one
   * message is 1 MB). Larger results leave the event with a reference to the results ConfigMaps.
   */
  kafkaMaxMessageBytes: number;
  /** Bind address of /healthz, /readyz and /metrics. */
  probeAddress: string;
  probePort: number;
  /** ServiceAccount of worker pods (no token is mounted). */
  workerServiceAccount?: string;
  leaderElection: boolean;
  /** Leader election timings in ms (controller-runtime's defaults: 15 s, 10 s, 2 s). */
  leaderLease: { durationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  /** Seconds a comparison lease lasts before another worker may take the pair. */
  leaseSeconds: number;
  /** Fail a batch when fewer than this share of finished comparisons succeeded (after 20). */
  minSuccessRate: number;
  /** Provider base URLs a pool may send its API key to (LLM_ALLOWED_BASE_URLS). */
  egress: EgressPolicy;
  /**
   * Images `spec.workers.image` may name besides the operator's own (WORKER_IMAGES, comma-separated;
   * an entry ending in `*` is a prefix). Empty: workers run the operator's image only.
   */
  workerImages: string[];
  /**
   * Topics `spec.output.kafkaTopic` may name (KAFKA_ALLOWED_TOPICS, comma-separated; an entry
   * ending in `*` is a prefix). Empty: only the configured KAFKA_TOPIC.
   */
  kafkaAllowedTopics: string[];
  /** Longest a provider's retry-after may block a pool (MAX_RETRY_AFTER_SECONDS, default 600). */
  maxRetryAfterMs: number;
  /** Upper bound of one batch's Postgres connections (its role's CONNECTION LIMIT). */
  maxBatchDbConnections: number;
  /**
   * How batches run their rounds unless their annotation says otherwise (ROUNDS_MODE, default
   * `pipelined`): `pipelined` runs long-lived workers that plan ahead; `rounds` scores and judges
   * one round at a time (see docs/architecture.md). Fixed per batch when it starts.
   */
  roundsMode?: RoundsMode;
  /** How often the leader reads the LLM usage figures for /metrics (METRICS_REFRESH_SECONDS, default 15). */
  metricsRefreshMs: number;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set; the operator needs it (see docs/operations.md)`);
    return v;
  };
  return {
    namespace: env.POD_NAMESPACE ?? 'cj-system',
    watchNamespaces: watchNamespaces(env),
    identity: env.POD_NAME ?? `cj-operator-${process.pid}`,
    image: env.OPERATOR_IMAGE ?? 'ghcr.io/huleedu/cj-operator:dev',
    imagePullPolicy: env.IMAGE_PULL_POLICY ?? 'IfNotPresent',
    databaseUrl: need('DATABASE_URL'),
    kafkaBrokers: env.KAFKA_BROKERS || undefined,
    kafkaTopic: env.KAFKA_TOPIC ?? 'cj.batch.events',
    kafkaMaxMessageBytes: positiveInteger(env, 'KAFKA_MAX_MESSAGE_BYTES', 1_000_000),
    probeAddress: env.PROBE_ADDRESS ?? '0.0.0.0',
    probePort: Number(env.PROBE_PORT ?? 8081),
    workerServiceAccount: env.WORKER_SERVICE_ACCOUNT || undefined,
    leaderElection: env.LEADER_ELECTION !== 'false',
    leaderLease: leaderLease(env),
    leaseSeconds: Number(env.COMPARISON_LEASE_SECONDS ?? 60),
    minSuccessRate: Number(env.MIN_SUCCESS_RATE ?? 0.5),
    egress: egressPolicyFromEnv(env),
    workerImages: list(env.WORKER_IMAGES),
    kafkaAllowedTopics: list(env.KAFKA_ALLOWED_TOPICS),
    maxRetryAfterMs: positiveInteger(env, 'MAX_RETRY_AFTER_SECONDS', 600) * 1000,
    maxBatchDbConnections: positiveInteger(env, 'MAX_BATCH_DB_CONNECTIONS', 64),
    metricsRefreshMs: positiveInteger(env, 'METRICS_REFRESH_SECONDS', 15) * 1000,
    roundsMode: roundsModeOf(env.ROUNDS_MODE),
  };
}

function roundsModeOf(v: string | undefined): RoundsMode {
  if (v === undefined || v === '') return DEFAULT_ROUNDS_MODE;
  if (!isRoundsMode(v)) throw new Error(`ROUNDS_MODE must be one of ${ROUNDS_MODES.join(', ')}, not "${v}"`);
  return v;
}

/** WATCH_NAMESPACES (comma-separated) and the older single WATCH_NAMESPACE, merged; unset = all. */
function watchNamespaces(env: NodeJS.ProcessEnv): string[] | undefined {
  const list = [env.WATCH_NAMESPACES ?? '', env.WATCH_NAMESPACE ?? '']
    .flatMap((v) => v.split(/[\s,]+/))
    .filter((n) => n.length > 0);
  for (const n of list)
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n))
      throw new Error(`WATCH_NAMESPACES: "${n}" is not a namespace name`);
  return list.length > 0 ? [...new Set(list)] : undefined;
}

const list = (v: string | undefined) =>
  (v ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** The variable as a number, or `d` when it is unset or empty (NaN when it is not a number). */
const numberOr = (env: NodeJS.ProcessEnv, k: string, d: number): number =>
  env[k] === undefined || env[k] === '' ? d : Number(env[k]);

function positiveInteger(env: NodeJS.ProcessEnv, k: string, d: number): number {
  const v = numberOr(env, k, d);
  if (!Number.isInteger(v) || v <= 0)
    throw new Error(`${k} must be a positive whole number, not "${env[k]}"`);
  return v;
}

/** LEADER_LEASE_DURATION / LEADER_RENEW_DEADLINE / LEADER_RETRY_PERIOD in seconds; checked for sense. */
function leaderLease(env: NodeJS.ProcessEnv): OperatorConfig['leaderLease'] {
  const seconds = (k: string, d: number) => {
    const v = numberOr(env, k, d);
    if (!Number.isFinite(v) || v <= 0)
      throw new Error(`${k} must be a positive number of seconds, not "${env[k]}"`);
    return Math.round(v * 1000);
  };
  const l = {
    durationMs: seconds('LEADER_LEASE_DURATION', 15),
    renewDeadlineMs: seconds('LEADER_RENEW_DEADLINE', 10),
    retryPeriodMs: seconds('LEADER_RETRY_PERIOD', 2),
  };
  if (!(l.retryPeriodMs < l.renewDeadlineMs && l.renewDeadlineMs < l.durationMs))
    throw new Error(
      'leader election needs LEADER_RETRY_PERIOD < LEADER_RENEW_DEADLINE < LEADER_LEASE_DURATION; ' +
        `got ${l.retryPeriodMs / 1000}s, ${l.renewDeadlineMs / 1000}s, ${l.durationMs / 1000}s`,
    );
  return l;
}

/** The platform's choices tenants must stay within (admission and the reconciler use the same). */
export function platformPolicy(c: OperatorConfig): PlatformPolicy {
  return {
    operatorImage: c.image,
    workerImages: c.workerImages,
    defaultTopic: c.kafkaTopic,
    allowedTopics: c.kafkaAllowedTopics,
  };
}

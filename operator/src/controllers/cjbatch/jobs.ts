// The worker Jobs of a round, as plain manifests (pure functions). Every child is owned by its
// CJBatch (garbage collection removes it with the batch), runs without a service-account token,
// and meets the restricted Pod Security Standard. The command, environment and exit codes are
// the Job contract's (contract/src/job.ts), which the workers read back.
import { createHash } from 'node:crypto';
import { ALLOWED_BASE_URLS_ENV } from '../../../../contract/src/egress.js';
import { ENV, EXIT, workerCommand } from '../../../../contract/src/job.js';
import { encodePoolRuntimeConfig, type PoolRuntimeConfig } from '../../../../contract/src/pool-runtime.js';
import type { CJBatch } from '../../api/index.js';

export const LABEL_BATCH = 'cj.huleedu.io/batch';
export const LABEL_ROUND = 'cj.huleedu.io/round';
export const LABEL_ROLE = 'cj.huleedu.io/role';

export interface JobContext {
  /** The operator's image, or `spec.workers.image` when the platform allows it (jobContext). */
  image: string;
  imagePullPolicy: string;
  /** Secret (owned by the batch) holding the batch role's DATABASE_URL for workers. */
  workerSecret: string;
  serviceAccount?: string;
  pool: { key: string; config: PoolRuntimeConfig; apiKeySecret: { name: string; key: string } };
  leaseSeconds: number;
  /** The operator's allowlist of provider base URLs; the worker checks it before any request. */
  allowedBaseURLs?: string;
}

export function ownerRef(batch: CJBatch) {
  return {
    apiVersion: batch.apiVersion,
    kind: batch.kind,
    name: batch.metadata.name!,
    uid: batch.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Metadata of an object the batch owns: deleted with it by the garbage collector, labelled with it. */
export function ownedObjectMeta(batch: CJBatch, name: string, labels: Record<string, string> = {}) {
  return {
    name,
    namespace: batch.metadata.namespace,
    labels: { [LABEL_BATCH]: batch.metadata.name!, ...labels, 'app.kubernetes.io/managed-by': 'cj-operator' },
    ownerReferences: [ownerRef(batch)],
  };
}

/**
 * `<batch>-<suffix>`, or when that exceeds the 63 characters a Job name may have (it becomes a
 * label value on the Job's pods), the batch name shortened and followed by a hash of it, so
 * different batches still get different names. Deterministic like the plain form.
 */
export function childName(batch: string, suffix: string): string {
  const full = `${batch}-${suffix}`;
  if (full.length <= 63) return full;
  const hash = createHash('sha256').update(batch).digest('hex').slice(0, 8);
  const head = batch.slice(0, Math.max(1, 63 - suffix.length - hash.length - 2)).replace(/[-.]+$/, '');
  return `${head}-${hash}-${suffix}`;
}

/** Job names are deterministic: a restarted operator finds its Jobs instead of creating new ones. */
export const scoringJobName = (batch: string, round: number, attempt = 0) =>
  childName(batch, `score-${round}${attempt ? `-${attempt}` : ''}`);
export const comparisonJobName = (batch: string, round: number, attempt = 0) =>
  childName(batch, `compare-${round}${attempt ? `-${attempt}` : ''}`);
/** Pipelined rounds: the batch's one Job of long-lived workers (label round `batch`). */
export const workersJobName = (batch: string, attempt = 0) =>
  childName(batch, `workers${attempt ? `-${attempt}` : ''}`);
export const BATCH_SCOPE = 'batch';

const restrictedContainer = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function podSpec(batch: CJBatch, ctx: JobContext, command: string[], env: object[]) {
  const w = batch.spec.workers;
  return {
    restartPolicy: 'Never',
    automountServiceAccountToken: false,
    ...(ctx.serviceAccount ? { serviceAccountName: ctx.serviceAccount } : {}),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    terminationGracePeriodSeconds: 30,
    ...(w?.nodeSelector ? { nodeSelector: w.nodeSelector } : {}),
    ...(w?.tolerations ? { tolerations: w.tolerations } : {}),
    containers: [
      {
        name: 'worker',
        image: ctx.image,
        imagePullPolicy: ctx.imagePullPolicy,
        command,
        env: [
          {
            name: ENV.databaseUrl,
            valueFrom: { secretKeyRef: { name: ctx.workerSecret, key: 'DATABASE_URL' } },
          },
          { name: ENV.batchUid, value: batch.metadata.uid },
          { name: ENV.podName, valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ...env,
        ],
        ...(w?.resources ? { resources: w.resources } : {}),
        terminationMessagePolicy: 'FallbackToLogsOnError',
        securityContext: restrictedContainer,
        volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
      },
    ],
    volumes: [{ name: 'tmp', emptyDir: {} }],
  };
}

function meta(batch: CJBatch, name: string, round: number | typeof BATCH_SCOPE, role: string) {
  return ownedObjectMeta(batch, name, { [LABEL_ROUND]: String(round), [LABEL_ROLE]: role });
}

/** `runtime score` for `round`: one pod, retried a few times (it is idempotent). */
export function scoringJob(batch: CJBatch, round: number, ctx: JobContext, attempt = 0) {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(batch, scoringJobName(batch.metadata.name!, round, attempt), round, 'scoring'),
    spec: {
      backoffLimit: 3,
      ttlSecondsAfterFinished: 3600,
      podFailurePolicy: {
        rules: [
          {
            action: 'FailJob',
            onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT.badInput] },
          },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
        ],
      },
      template: {
        metadata: { labels: meta(batch, '', round, 'scoring').labels },
        spec: podSpec(batch, ctx, workerCommand('score'), [{ name: ENV.round, value: String(round) }]),
      },
    },
  };
}

/**
 * `runtime compare` for `round`: an Indexed Job, one completion per shard. Per-index retries,
 * fail fast on auth (the whole Job) or bad input (that index), ignore disruptions.
 *
 * With `pipeline`, the batch's one Job of long-lived workers instead (pipelined rounds): one index
 * per worker (`spec.workers.parallelism`), each pod judging open pairs of any round and planning
 * ahead until the batch stops; `round` is the round it started at (for the logs).
 */
export function comparisonJob(
  batch: CJBatch,
  round: number,
  shards: number,
  ctx: JobContext,
  attempt = 0,
  pipeline?: { low: number },
) {
  const scope = pipeline ? BATCH_SCOPE : round;
  const name = pipeline
    ? workersJobName(batch.metadata.name!, attempt)
    : comparisonJobName(batch.metadata.name!, round, attempt);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(batch, name, scope, 'comparison'),
    spec: {
      completionMode: 'Indexed',
      completions: shards,
      parallelism: Math.min(shards, batch.spec.workers?.parallelism ?? 2),
      backoffLimitPerIndex: 3,
      maxFailedIndexes: shards,
      ttlSecondsAfterFinished: 3600,
      podReplacementPolicy: 'Failed',
      podFailurePolicy: {
        rules: [
          {
            action: 'FailJob',
            onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT.authFailed] },
          },
          {
            action: 'FailIndex',
            onExitCodes: { containerName: 'worker', operator: 'In', values: [EXIT.badInput] },
          },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
        ],
      },
      template: {
        metadata: { labels: meta(batch, '', scope, 'comparison').labels },
        spec: podSpec(batch, ctx, workerCommand('compare'), [
          { name: ENV.round, value: String(round) },
          { name: ENV.poolKey, value: ctx.pool.key },
          { name: ENV.poolConfig, value: encodePoolRuntimeConfig(ctx.pool.config) },
          { name: ENV.leaseSeconds, value: String(ctx.leaseSeconds) },
          ...(ctx.allowedBaseURLs !== undefined
            ? [{ name: ALLOWED_BASE_URLS_ENV, value: ctx.allowedBaseURLs }]
            : []),
          { name: ENV.limiterRows, value: 'operator' },
          ...(pipeline ? [{ name: ENV.pipelineLow, value: String(pipeline.low) }] : []),
          {
            name: ENV.apiKey,
            valueFrom: {
              secretKeyRef: { name: ctx.pool.apiKeySecret.name, key: ctx.pool.apiKeySecret.key },
            },
          },
        ]),
      },
    },
  };
}

type JobLike = {
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
};

/** 'running' until the Job controller sets a terminal condition. */
export function jobState(job: JobLike | undefined): 'missing' | 'running' | 'complete' | 'failed' {
  if (!job) return 'missing';
  const c = job.status?.conditions ?? [];
  if (c.some((x) => x.type === 'Complete' && x.status === 'True')) return 'complete';
  if (c.some((x) => x.type === 'Failed' && x.status === 'True')) return 'failed';
  return 'running';
}

export function jobFailure(job: JobLike): { reason: string; message: string } {
  const c = (job.status?.conditions ?? []).find((x) => x.type === 'Failed' && x.status === 'True');
  return { reason: c?.reason ?? 'Failed', message: c?.message ?? '' };
}

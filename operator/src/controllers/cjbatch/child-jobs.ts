// The batch's worker Jobs, seen from the phases: find the newest attempt of a (role, round),
// create one, retry with the next attempt, delete one that outlived its timeout. Job names are
// deterministic (jobs.ts), so a restarted operator finds its Jobs instead of creating new ones, and
// a create that meets an existing name (409: our cache was behind) is taken as done.
import type { CJBatch } from '../../api/index.js';
import { RESOURCES } from '../../api/index.js';
import type { Informer } from '../../kube/informer.js';
import { isNotFound, type KubeClient, type KubeObject, resourcePath } from '../../kube/rest.js';
import {
  BATCH_SCOPE,
  comparisonJobName,
  jobState,
  LABEL_BATCH,
  LABEL_ROLE,
  LABEL_ROUND,
  scoringJobName,
  workersJobName,
} from './jobs.js';

/** Attempts at one round's Job before the batch fails. */
export const MAX_JOB_ATTEMPTS = 4;

const { jobs: JOBS } = RESOURCES;

export interface JobObject extends KubeObject {
  spec?: { completions?: number; parallelism?: number; maxFailedIndexes?: number };
  status?: {
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    active?: number;
  };
}

export type JobRole = 'scoring' | 'comparison';

/** The newest Job of a round and role as the cache has it. */
export interface CurrentJob {
  job: JobObject | undefined;
  /** 0 for the first Job of the round; a retry is attempt + 1. */
  attempt: number;
  state: ReturnType<typeof jobState>;
  /** Epoch ms of the Job's creation (NaN when missing). */
  createdAt: number;
  /** The Job's name (the name attempt `attempt` has when the Job is missing). */
  name: string;
}

export class ChildJobs {
  constructor(
    private readonly batch: CJBatch,
    private readonly api: Pick<KubeClient, 'create' | 'delete' | 'mergePatch'>,
    private readonly cache: Pick<Informer<JobObject>, 'list'>,
  ) {}

  /**
   * The round's newest Job of `role` owned by this batch, and its attempt number; round `batch`:
   * the batch's long-lived workers (pipelined rounds).
   */
  current(role: JobRole, round: number | typeof BATCH_SCOPE): CurrentJob {
    const b = this.batch.metadata;
    const jobs = this.cache
      .list(b.namespace)
      .filter(
        (j) =>
          j.metadata?.labels?.[LABEL_BATCH] === b.name &&
          j.metadata?.labels?.[LABEL_ROUND] === String(round) &&
          j.metadata?.labels?.[LABEL_ROLE] === role &&
          j.metadata?.ownerReferences?.some((o) => o.uid === b.uid),
      );
    const name = (a: number) =>
      round === BATCH_SCOPE
        ? workersJobName(b.name!, a)
        : role === 'scoring'
          ? scoringJobName(b.name!, round, a)
          : comparisonJobName(b.name!, round, a);
    let attempt = 0;
    while (jobs.some((j) => j.metadata?.name === name(attempt + 1))) attempt++;
    const job = jobs.find((j) => j.metadata?.name === name(attempt));
    return {
      job,
      attempt,
      state: jobState(job),
      createdAt: Date.parse(job?.metadata?.creationTimestamp ?? ''),
      name: name(attempt),
    };
  }

  /** The attempt that follows `cur`, or undefined when the round's Jobs were tried enough. */
  nextAttempt(cur: CurrentJob): number | undefined {
    return cur.attempt + 1 >= MAX_JOB_ATTEMPTS ? undefined : cur.attempt + 1;
  }

  /** Creates a Job manifest; one that exists already (by name) is left as it is. */
  async create(job: { metadata: { name: string } }): Promise<void> {
    try {
      await this.api.create(resourcePath(JOBS, this.batch.metadata.namespace), job);
    } catch (err) {
      // 409: the Job exists already (our cache was behind): never a second one, by name.
      if ((err as { status?: number }).status !== 409) throw err;
    }
  }

  /**
   * Grows an Indexed Job of the batch to `n` pods (elastic Indexed Job: completions and parallelism
   * change together; maxFailedIndexes follows, as at creation).
   */
  async scale(name: string, n: number): Promise<void> {
    await this.api.mergePatch(resourcePath(JOBS, this.batch.metadata.namespace, name), {
      spec: { completions: n, parallelism: n, maxFailedIndexes: n },
    });
  }

  /** Every Job of the batch (any role and round) as the cache has it. */
  all(): JobObject[] {
    const b = this.batch.metadata;
    return this.cache
      .list(b.namespace)
      .filter(
        (j) =>
          j.metadata?.labels?.[LABEL_BATCH] === b.name &&
          j.metadata?.ownerReferences?.some((o) => o.uid === b.uid),
      );
  }

  /**
   * Deletes a Job and its pods (gone already is fine). Foreground: the Job object stays, marked
   * deleted, until its pods are gone, so the cache shows when they are.
   */
  async remove(name: string, propagationPolicy: 'Background' | 'Foreground' = 'Background'): Promise<void> {
    await this.api
      .delete(resourcePath(JOBS, this.batch.metadata.namespace, name), { propagationPolicy })
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  }
}
